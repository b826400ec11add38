"""``experiments/char_lm_specialist_lower_lr`` continued from its chosen snapshot on a zoo with
width 64 as well (``char_lm_wide``), at meta-learning rate 3e-4, chosen on a validation suite with
a width-64 member (``char_lm_validation_wide``): the held-out family members are 40-56 wide, beyond
the widest member (32) the runs before it saw, so their per-tensor size features extrapolated.

Outcome: running; the choice rule is ``results/char_lm_specialist_long/choice_rule_wide.md``.

    lopt-meta-train --config=experiments/char_lm_specialist_wide --workdir=runs/char_lm_wide
"""

from meta_train.configs.experiments import char_lm_specialist_lower_lr


def get_config():
    c = char_lm_specialist_lower_lr.get_config()
    c.init_from = "results/char_lm_specialist_long/export_lower_lr_step_400"
    c.zoo = "char_lm_wide"
    c.meta_opt.learning_rate = 3e-4
    c.outer_steps = 800
    return c
