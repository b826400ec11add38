"""``experiments/char_lm_specialist_elementwise`` with twice the per-parameter network's width
(``elementwise_hidden=16``, 128 more meta-parameters instead of 64), from the same snapshot, for the
200 outer steps where the 8-wide run peaked on validation: does the per-parameter term gain
with capacity?

Outcome: running.

    lopt-meta-train --config=experiments/char_lm_specialist_elementwise16 --workdir=DIR
"""

from meta_train.configs.experiments import char_lm_specialist_elementwise


def get_config():
    c = char_lm_specialist_elementwise.get_config()
    c.lopt.config = dict(c.lopt.config, elementwise_hidden=16)
    c.outer_steps = 200
    return c
