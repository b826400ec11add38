"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot (step 200)
with the meta-loss leaning harder on the end of each episode: ``late_weight=3`` (inner step ``t``
of ``L`` weighs ``4 ((t + 1) / L)^3``: the last quarter of an episode carries 68% of the
weight, against 44% at 1). The continuations before it, with the same meta-loss, all lost
validation speedup (steps to reach tuned AdamW + cosine's final loss) while their meta-loss
went on falling; this run tests whether a meta-loss closer to the end of training lines up
with that speedup. Everything else is that run's recipe.

Outcome: pending; the choice rule is
``results/char_lm_specialist_long/choice_rule_elementwise_late3.md``.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise_late3 --workdir=runs/late3
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.get_config()
    c.init_from = "results/char_lm_specialist_long/export_elementwise_step_200"
    c.late_weight = 3.0
    c.outer_steps = 400
    return c
