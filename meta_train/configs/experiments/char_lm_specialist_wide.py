"""``experiments/char_lm_specialist_lower_lr`` continued from its chosen snapshot on a zoo with
width 64 as well (``char_lm_wide``), at meta-learning rate 3e-4, chosen on a validation suite with
a width-64 member (``char_lm_validation_wide``): the held-out family members are 40-56 wide, beyond
the widest member (32) the runs before it saw, so their per-tensor size features extrapolated.

Outcome: the export at outer step 400 was chosen on ``char_lm_validation_wide`` (1.16 over tuned
AdamW + cosine, against 1.12 for the start). On ``char_lm_heldout`` it is 1.20x tuned AdamW +
cosine and 1.35x its initial rule (1.20 and 1.33 for the start); the 56-wide task rose from 0.86
to 1.12, the others stayed level (``results/char_lm_specialist_long/``).

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
