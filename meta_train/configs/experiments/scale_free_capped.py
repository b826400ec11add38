"""``scale_free_late28`` continued from ``scale_free_v7`` with its capped mixing
(``mixing_fan_cap=64``) kept during meta-training.

Outcome: not shipped: export 1,200 matched v7's ``validation_scale`` median (1.14) but its worst
task fell to 0.64 (v7 0.80; ``results/validation_scale_free_capped/``).
    lopt-meta-train --config=experiments/scale_free_capped --workdir=runs/scale_free_capped
"""

from meta_train.configs.experiments import scale_free_late28


def get_config():
    c = scale_free_late28.get_config()
    c.init_from = "scale_free_v7"
    c.lopt.config = dict(c.lopt.config, mixing_fan_cap=64.0)
    c.outer_steps = 3000
    return c
