"""``experiments/char_lm_specialist_lower_lr`` continued from its chosen snapshot on a zoo with
sequence length 64 as well (``char_lm_long_seq``), chosen on a validation suite with a
sequence-64 member (``char_lm_validation_long_seq``): the runs before it gained on validation and
lost on the held-out task with a sequence longer than the zoo's.

    lopt-meta-train --config=experiments/char_lm_specialist_long_seq --workdir=runs/char_lm_long_seq
"""

from meta_train.configs.experiments import char_lm_specialist_lower_lr


def get_config():
    c = char_lm_specialist_lower_lr.get_config()
    c.init_from = "results/char_lm_specialist_long/export_lower_lr_step_400"
    c.zoo = "char_lm_long_seq"
    c.outer_steps = 600
    return c
