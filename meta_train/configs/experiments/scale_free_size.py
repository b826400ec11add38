"""``scale_free_mup`` with size-free features (``size_free=True``: fans and sizes clamped to the
zoo's largest) over ``broad_synthetic`` (twice the weight on quadratics and linear regression).

Outcome: not shipped: every export had validation tasks below 0.5x, the 16x16 ones as much as the
28x28 ones, so input size was not the cause (``results/validation_scale_free_v5/``).
    lopt-meta-train --config=experiments/scale_free_size --workdir=runs/scale_free_size
"""

from meta_train.configs.experiments import scale_free_mup


def get_config():
    c = scale_free_mup.get_config()
    c.lopt.architecture = "scale_free_experimental"
    c.lopt.config = dict(c.lopt.config, size_free=True)
    c.zoo = "broad_synthetic"
    return c
