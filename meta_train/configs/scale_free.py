"""The scale-free optimizer's recipe: ScaleFreeLOpt (starts as Muon + Adam with warmup/cosine)
meta-trained with PES over the ``broad`` zoo (MLPs, muP and reparameterised MLPs, autoencoders,
quadratics, linear regression, 8x8 conv nets and small char transformers).

Truncation 50, episodes log-uniform in 100..1000 steps, 4 task groups x 8 antithetic pairs.
    lopt-meta-train --config=scale_free --workdir=runs/scale_free
"""

from meta_train.configs import small


def get_config():
    c = small.get_config()
    c.zoo = "broad"
    c.lopt.architecture = "scale_free"
    c.lopt.config = dict()
    c.truncation_length = 50
    c.episode.kind = "log_uniform"
    c.episode.min_length = 100
    c.episode.max_length = 1000
    c.num_groups = 4
    c.pairs_per_group = 8
    c.group_resample_every = 50
    c.outer_steps = 3000
    c.meta_opt.learning_rate = 3e-3
    c.checkpoint_every = 50
    c.export_every = 100
    c.eval.num_tasks = 0
    return c
