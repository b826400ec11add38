"""``experiments/char_lm_specialist_elementwise`` with twice the per-parameter network's width
(``elementwise_hidden=16``, 128 more meta-parameters instead of 64), from the same snapshot, for the
200 outer steps where the 8-wide run peaked on validation: does the per-parameter term gain
with capacity?

Outcome: no: 1.16 and 1.15 on ``char_lm_validation_wide`` at outer steps 100 and 200, level with
the wide-zoo start (1.16) and below the 8-wide run's step 200 (1.18); the member that run lifted
(``s16_w24_d1_b8``: 1.18) stayed at 1.12 here. Not shipped
(``results/char_lm_specialist_long/validation_elementwise/``). 200 outer steps in 18 minutes,
tests beside it.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise16 --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.get_config()
    c.lopt.config = dict(c.lopt.config, elementwise_hidden=16)
    c.outer_steps = 200
    return c
