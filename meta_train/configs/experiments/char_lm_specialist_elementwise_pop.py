"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot (step 200)
with twice the population: 4 task groups x 8 antithetic pairs per outer step instead of 2 x 8,
so each meta-gradient averages twice the members (half the variance of the estimate) over twice
the task draws. Everything else is that run's recipe (zoo ``char_lm_wide``, meta-LR 3e-4).

Outcome: pending; the choice rule is
``results/char_lm_specialist_long/choice_rule_elementwise_pop.md``.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise_pop --workdir=runs/pop
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.get_config()
    c.init_from = "results/char_lm_specialist_long/export_elementwise_step_200"
    c.num_groups = 4
    c.outer_steps = 400
    return c
