"""``scale_free_late28`` (``scale_free_late`` over ``broad_28``) continued from ``scale_free_v7``
with its capped mixing (``mixing_fan_cap=64``) kept during meta-training: on Muon leaves of fan-in
n > 64 the learned mixing of Adam's directions is scaled by sqrt(64 / n), so its share of the
update cannot grow with the matrix while theta moves.

Why: v7 is v6's theta with that cap applied afterwards, which lifted the 28x28 validation tasks
(0.66 -> 0.80) without touching the small ones; every run since v5 meta-trained the mixing without
a bound on large matrices, and the 28x28 tasks drifted down as it went on.

What the run showed (1,208 steps, README): no export passed v7 on ``validation_scale``; export
1,200 had a higher median (1.14 against 1.134) but its worst task at 0.64 (v7: 0.80). The learned
corrections moved the same way on every task (a larger step), so the 28x28 tasks drifted down as
before. Kept as the recipe that measured it.
    lopt-meta-train --config=scale_free_capped --workdir=runs/scale_free_capped
"""

from meta_train.configs import scale_free_late28


def get_config():
    c = scale_free_late28.get_config()
    c.init_from = "scale_free_v7"
    c.lopt.config = dict(c.lopt.config, mixing_fan_cap=64.0)
    c.outer_steps = 3000
    return c
