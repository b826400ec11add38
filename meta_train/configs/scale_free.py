"""The scale-free optimizer's recipe: ScaleFreeLOpt (starts as Muon + Adam with warmup/cosine)
meta-trained with PES over the ``broad`` zoo (MLPs, muP and reparameterised MLPs, autoencoders,
quadratics, linear regression, 8x8 conv nets and small char transformers).

``hyper_small``'s PES settings (truncation 50, episodes log-uniform in 100..1000 steps, 4 task
groups x 8 antithetic pairs, meta-LR 3e-3, new groups every 50 steps), run longer.
    lopt-meta-train --config=scale_free --workdir=runs/scale_free
"""

from meta_train.configs import hyper_small


def get_config():
    c = hyper_small.get_config()
    c.zoo = "broad"
    c.lopt.architecture = "scale_free"
    c.outer_steps = 3000
    c.export_every = 100
    return c
