"""The shipped optimizer's recipe: VeLO-style HyperLOpt on the ``small`` zoo, sized for 2 CPU cores.

MNIST / Fashion-MNIST MLPs at 8x8 and 16x16 (+ reparameterised and small-batch variants) and the
embedded tasks; PES with truncation 50, episodes log-uniform in 100..1000 steps (the held-out
suite trains 2,000..5,000 steps: 2-5x longer), 4 task groups x 8 antithetic pairs. HyperLOpt
starts as Adam(1e-3) and costs about 1.5x Adam per update, so it is cheap to meta-train and to use.
    lopt-meta-train --config=hyper_small --workdir=runs/hyper_small
"""

from meta_train import config as config_lib


def get_config():
    c = config_lib.base()
    c.zoo = "small"
    c.lopt.architecture = "hyper"
    c.episode.max_length = 1000
    c.group_resample_every = 50
    c.outer_steps = 500
    c.meta_opt.learning_rate = 3e-3
    c.checkpoint_every = 50
    c.export_every = 50
    c.eval.update(config_lib.EMBEDDED_EVAL, num_tasks=0)  # recorded in its runs; not run
    return c
