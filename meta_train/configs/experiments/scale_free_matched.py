"""``scale_free_late`` over ``broad_28`` with matched-RMS mixing (``matched_mixing``: Adam's
directions scaled to the Newton-Schulz direction's RMS on Muon leaves), started as ``muon_rel_mup``.

Outcome: not shipped: no export reached v6 on ``validation_scale``; the 28x28 tasks drifted down as
before, so the mixing's scale was not the cause (``results/validation_scale_free_matched/``).
    lopt-meta-train --config=experiments/scale_free_matched --workdir=runs/scale_free_matched
"""

from meta_train.configs.experiments import scale_free_late


def get_config():
    c = scale_free_late.get_config()
    c.zoo = "broad_28"
    c.lopt.architecture = "scale_free_experimental"
    c.lopt.config = dict(c.lopt.config, matched_mixing=True)
    c.outer_steps = 3000
    return c
