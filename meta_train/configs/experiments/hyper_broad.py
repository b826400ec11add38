"""``hyper_small`` fine-tuned from ``hyper_small_v2`` (``init_from``) on ``small_broad`` (adds muP
MLPs and autoencoders), episodes of 100..2,000 steps, meta-LR 1e-3.

Outcome: no export beat ``hyper_small_v2`` on ``validation_broad`` (medians 0.36-1.2 against its
1.19); not shipped (``CHANGELOG.md``).
    lopt-meta-train --config=experiments/hyper_broad --workdir=runs/hyper_broad
"""

from meta_train.configs import hyper_small


def get_config():
    c = hyper_small.get_config()
    c.zoo = "small_broad"
    c.init_from = "hyper_small_v2"
    c.episode.max_length = 2000
    c.meta_opt.learning_rate = 1e-3
    c.outer_steps = 2000
    c.checkpoint_every = 250
    c.export_every = 250
    return c
