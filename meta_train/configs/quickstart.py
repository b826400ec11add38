"""Quickstart: the embedded zoo (MNIST-1D MLPs, quadratics, linear regression; no prepared data).

A few minutes on 2 CPU cores; the result beats its initial theta on held-out embedded tasks.
The optimizer is the VeLO-style ``HyperLOpt`` (it starts as Adam(1e-3) and is cheap per step); set
``--config.lopt.architecture=mlp`` for the per-parameter MLP of the LOLv2 family.
    lopt-meta-train --config=quickstart --workdir=/tmp/quickstart
"""

from meta_train import config as config_lib


def get_config():
    c = config_lib.base()
    c.lopt.architecture = "hyper"
    c.truncation_length = 20
    c.episode.min_length = 50
    c.episode.max_length = 400
    c.num_groups = 2
    c.group_resample_every = 100
    c.outer_steps = 600
    c.checkpoint_every = 50
    c.export_every = 100
    # at the end: held-out loss of the initial vs the trained theta on embedded held-out tasks
    c.eval.update(config_lib.EMBEDDED_EVAL)
    return c
