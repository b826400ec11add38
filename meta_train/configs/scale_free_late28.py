"""``scale_free_late`` continued from ``scale_free_v5`` (its export at step 900, output layer
x 0.5) over ``broad_28``: ``broad`` plus MLPs and autoencoders on 28x28 images.

Why: every meta-trained export so far loses ground on the 28x28 tasks of ``validation_scale``
(v5: its 28x28 autoencoder at 0.58x and its 28x28 Fashion-MNIST MLP at 0.64x the initial rule)
while it gains on the 8x8 / 16x16 ones the zoo shows; the held-out suite is mostly 28x28. The
zoo's new families miss every held-out and validation width (``tasks.registry``).
Outcome (``scale_free_v6``, README): the 28x28 validation tasks did not improve. Their loss
comes from the learned mixing of Adam's normalised gradient into Muon leaves, whose size relative
to the Newton-Schulz direction grows with the matrix, not from the zoo's image sizes.
    lopt-meta-train --config=scale_free_late28 --workdir=runs/scale_free_late28
"""

from meta_train.configs import scale_free_late


def get_config():
    c = scale_free_late.get_config()
    c.zoo = "broad_28"
    c.init_from = "scale_free_v5"
    c.outer_steps = 1500
    return c
