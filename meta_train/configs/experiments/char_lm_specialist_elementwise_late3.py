"""``experiments/char_lm_specialist_elementwise`` continued from its chosen snapshot (step 200)
with the meta-loss leaning harder on the end of each episode: ``late_weight=3`` (inner step ``t``
of ``L`` weighs ``4 ((t + 1) / L)^3``: the last quarter of an episode carries 68% of the
weight, against 44% at 1). The continuations before it, with the same meta-loss, all lost
validation speedup (steps to reach tuned AdamW + cosine's final loss) while their meta-loss
went on falling; this run tests whether a meta-loss closer to the end of training lines up
with that speedup. Everything else is that run's recipe.

Outcome: on ``char_lm_validation_wide`` its exports scored 1.16, 1.16, 1.16, 1.16 at outer
steps 100-400 (1.165, 1.165, 1.162, 1.156) against 1.18 for its start
(``results/char_lm_specialist_long/validation_continued``): not shipped (choice rule
``results/char_lm_specialist_long/choice_rule_elementwise_late3.md``). It kept a little more of
the start's gain on ``s16_w24_d1_b8`` than the other continuations (1.14 at steps 100-200, then
1.12), and the 32-wide member reached 1.24 at step 200, but no export beat the start. 400 outer
steps in about 31 minutes, evaluations beside it.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise_late3 --workdir=runs/late3
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.continued(outer_steps=400)
    c.late_weight = 3.0
    return c
