"""``scale_free_late28`` continued from ``scale_free_v6`` with a meta-loss at the evaluation
horizon: episodes of 1,000..3,000 steps and ``late_weight=2``.

Outcome: not shipped: no export reached v6 on ``validation_scale``; the 28x28 deficit grew
(``results/validation_scale_free_horizon/``).
    lopt-meta-train --config=experiments/scale_free_horizon --workdir=runs/scale_free_horizon
"""

from meta_train.configs.experiments import scale_free_late28


def get_config():
    c = scale_free_late28.get_config()
    c.init_from = "scale_free_v6"
    c.episode.min_length = 1000
    c.episode.max_length = 3000
    c.late_weight = 2.0
    c.outer_steps = 3000
    return c
