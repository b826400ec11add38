"""``experiments/char_lm_specialist_lower_lr`` continued from its chosen snapshot on a zoo with
sequence length 64 as well (``char_lm_long_seq``), chosen on a validation suite with a
sequence-64 member (``char_lm_validation_long_seq``): the runs before it gained on validation and
lost on the held-out task with a sequence longer than the zoo's.

Outcome: stopped at outer step 476 of 600 (the machine was needed); on
``char_lm_validation_long_seq`` the exports at steps 200 and 400 are level with the start (median
over tuned AdamW + cosine 1.12 each; on the sequence-64 member 0.86 each), so the start stays the
specialist (``results/char_lm_specialist_long/validation_long_seq/``).

    lopt-meta-train --config=experiments/char_lm_specialist_long_seq --workdir=runs/char_lm_long_seq
"""

from meta_train.configs.experiments import char_lm_specialist_lower_lr


def get_config():
    c = char_lm_specialist_lower_lr.get_config()
    c.init_from = "results/char_lm_specialist_long/export_lower_lr_step_400"
    c.zoo = "char_lm_long_seq"
    c.outer_steps = 600
    return c
