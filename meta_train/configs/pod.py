"""Pod scale: the full zoo (MLPs, conv nets, autoencoders, char transformers), many particles.

Meant for many devices / hosts: ``pairs_per_group`` must be a multiple of the device count.
    srun lopt-meta-train --config=pod --workdir=/shared/runs/pod --distributed   (README)
"""

from meta_train.configs import small


def get_config():
    c = small.get_config()
    c.zoo = "pod"
    c.num_groups = 16
    c.pairs_per_group = 64
    c.group_resample_every = 500
    c.outer_steps = 100000
    c.meta_opt.learning_rate = 3e-4
    c.checkpoint_every = 200
    c.export_every = 1000
    return c
