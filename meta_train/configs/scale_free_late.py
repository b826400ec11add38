"""``scale_free_mup`` (``scale_free_v4``'s recipe, started exactly as ``muon_rel_mup``) with a
meta-loss that leans toward the end of each inner run: step t of an episode of L steps weighs
``2 (t + 1) / L`` (``late_weight=1``; :func:`meta_train.estimators.late_weights`).

Why: every meta-trained export so far (v2-v4's runs, ``scale_free_size``, ``scale_free_balanced``)
ends the Fashion-MNIST MLPs and the autoencoders of ``validation_scale`` at a *higher* training
loss than its initial rule while it gains on quadratics and 8x8 MLPs, and the losses grow with
meta-training. The mean log-loss over the episode rewards a fast early fall, while the yardstick
(steps to reach the reference's final loss) is decided at the end: the short-horizon bias.
    lopt-meta-train --config=scale_free_late --workdir=runs/scale_free_late
"""

from meta_train.configs import scale_free_mup


def get_config():
    c = scale_free_mup.get_config()
    c.late_weight = 1.0
    c.export_every = 150
    return c
