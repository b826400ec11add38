"""``scale_free_v5``'s recipe: ``scale_free_mup`` with a meta-loss that leans toward the end of each
episode (``late_weight=1``: step t of L weighs 2 (t + 1) / L).

Outcome: shipped as ``scale_free_v5`` (export 900, output layer x0.5): ``validation_scale``
median 1.12x its initial rule, held-out 1.50x tuned AdamW + cosine
(``results/validation_scale_free_late/``).
    lopt-meta-train --config=experiments/scale_free_late --workdir=runs/scale_free_late
"""

from meta_train.configs.experiments import scale_free_mup


def get_config():
    c = scale_free_mup.get_config()
    c.late_weight = 1.0
    c.export_every = 150
    return c
