"""``scale_free_mup`` with a balanced meta-gradient: each task group's estimate scaled to unit norm
before the mean (``balance_groups``).

Outcome: not shipped: the same tasks gained (quadratics, 8x8 MLPs) and lost (autoencoders,
Fashion-MNIST MLPs) as with the plain mean (``results/validation_scale_free_balanced/``).
    lopt-meta-train --config=experiments/scale_free_balanced --workdir=runs/scale_free_balanced
"""

from meta_train.configs.experiments import scale_free_mup


def get_config():
    c = scale_free_mup.get_config()
    c.balance_groups = True
    c.export_every = 150
    return c
