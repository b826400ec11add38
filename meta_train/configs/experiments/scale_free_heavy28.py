"""``scale_free_late28`` continued from ``scale_free_v6`` over ``broad_28_heavy`` (4x the weight on
the 28x28 families: 41% of the group draws instead of 15%).

Outcome: not shipped: the 28x28 validation tasks drifted down faster (worst task 0.48-0.56 against
v6's 0.66; ``results/validation_scale_free_heavy28/``).
    lopt-meta-train --config=experiments/scale_free_heavy28 --workdir=runs/scale_free_heavy28
"""

from meta_train.configs.experiments import scale_free_late28


def get_config():
    c = scale_free_late28.get_config()
    c.zoo = "broad_28_heavy"
    c.init_from = "scale_free_v6"
    c.outer_steps = 3000
    return c
