"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot (step 200)
with twice the population: 4 task groups x 8 antithetic pairs per outer step instead of 2 x 8,
so each meta-gradient averages twice the members (half the variance of the estimate) over twice
the task draws. Everything else is that run's recipe (zoo ``char_lm_wide``, meta-LR 3e-4).

Outcome: on ``char_lm_validation_wide`` its exports scored 1.15, 1.13, 1.11 at outer steps
100-300 against 1.18 for its start (``results/char_lm_specialist_long/validation_continued``):
further from it at each export, so it was stopped at step 302 and not shipped (choice rule:
``results/char_lm_specialist_long/choice_rule_elementwise_pop.md``). With half the variance, the
meta-gradient follows the zoo's meta-loss more steadily, and that leads away from the validation
speedup: the two are not aligned beyond the start. 302 outer steps in 43 minutes, other runs
beside it.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise_pop --workdir=runs/pop
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.continued(outer_steps=400)
    c.num_groups = 4
    return c
