"""``scale_free_late`` over ``broad_28`` with matched-RMS mixing (``matched_mixing``): on Muon
leaves, Adam's directions are scaled to the Newton-Schulz direction's RMS before the learned
weights mix them in, so a learned mixing weight means the same share of the update on a 64-wide
and a 784-input matrix. Started exactly as ``muon_rel_mup`` (not from v5 / v6, whose mixing
weights were learned at the unmatched scale).

Why: v5 / v6 lose to their initial rule on 28x28 and wide tasks because their learned mixing of
Adam's normalised gradient (weight ~0.08) grows, relative to the Muon step, with the matrix;
zeroing it lifted v6's worst validation task from 0.66x to 1.00x but also removed its gains
(README, ``scale_free_v6``).

What the run showed (2,077 steps, README): no export reached v6 on ``validation_scale`` (medians
0.95-1.09, worst task 0.45-0.75); the 28x28 tasks drift down with meta-training as before, so
the mixing's scale was not the cause. Kept as the recipe that measured it.
    lopt-meta-train --config=scale_free_matched --workdir=runs/scale_free_matched
"""

from meta_train.configs import scale_free_late


def get_config():
    c = scale_free_late.get_config()
    c.zoo = "broad_28"
    c.lopt.config = dict(c.lopt.config, matched_mixing=True)
    c.outer_steps = 3000
    return c
