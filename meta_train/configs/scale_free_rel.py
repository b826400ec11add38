"""``scale_free_v2``'s recipe: ScaleFreeLOpt started as *relative* Muon (steps proportional to
RMS(p), scale-free on reparameterised tensors), meta-trained with PES over the ``broad`` zoo.

Changes from ``scale_free`` (whose meta-training made held-out results worse than its start):
longer episodes (log-uniform 200..2,000 steps, the held-out horizon), the log meta-loss (a
halving of the loss counts the same on every task and at every stage), a lower meta-LR (1e-3),
tighter bounds on the learned corrections (x e^4 on the step, +-1 on the relative exponent),
and exports every 50 steps to choose from on ``validation_scale``.
    lopt-meta-train --config=scale_free_rel --workdir=runs/scale_free_rel
"""

from meta_train.configs import scale_free


def get_config():
    c = scale_free.get_config()
    c.lopt.config = dict(relative=True, log_scale_bound=4.0, alpha_bound=1.0)
    c.episode.min_length = 200
    c.episode.max_length = 2000
    c.log_loss = True
    c.meta_opt.learning_rate = 1e-3
    c.export_every = 50
    return c
