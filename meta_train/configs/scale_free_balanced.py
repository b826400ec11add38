"""``scale_free_mup`` (``scale_free_v4``'s recipe, started exactly as ``muon_rel_mup``) with a
balanced meta-gradient: every task group's estimate is scaled to unit norm before the mean
(``balance_groups``; :func:`meta_train.outer.combine_groups`).

Why: the size-free run (``scale_free_size``, README) showed that more meta-training keeps buying
speed on quadratics, 8x8 MLPs and reparameterised MLPs (up to 3.5x) at the cost of the
autoencoders and Fashion-MNIST MLPs (down to 0.11x), at any input size. With the plain mean, a
draw whose log-loss can fall by orders of magnitude (a quadratic) sends a far larger estimate
than one whose loss falls by a fraction (an autoencoder) and sets the direction alone.
    lopt-meta-train --config=scale_free_balanced --workdir=runs/scale_free_balanced
"""

from meta_train.configs import scale_free_mup


def get_config():
    c = scale_free_mup.get_config()
    c.balance_groups = True
    c.export_every = 150
    return c
