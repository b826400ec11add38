"""``scale_free_v6``'s (and so ``scale_free_v7``'s) recipe as it was built, the chain of the
shipping ``scale_free``: ``scale_free_late`` continued from ``scale_free_v5`` over ``broad_28``.

Outcome: ``scale_free_v6`` (export 600, output layer x0.5), v5's equal; the 28x28 validation tasks
did not improve (``results/validation_scale_free_late28/``).
    lopt-meta-train --config=experiments/scale_free_late28 --workdir=runs/scale_free_late28
"""

from meta_train.configs.experiments import scale_free_late


def get_config():
    c = scale_free_late.get_config()
    c.zoo = "broad_28"
    c.init_from = "scale_free_v5"
    c.outer_steps = 1500
    return c
