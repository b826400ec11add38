"""Fine-tune the shipped ``hyper_small_v2`` on a broader zoo: ``small`` + muP MLPs + autoencoders.

``hyper_small_v2`` loses to tuned Adam on muP MLPs and autoencoders, neither of which its zoo
(``small``) contains. This run starts from its theta (``init_from``) and meta-trains on
``small_broad`` (muP MLPs only up to width 128, so the held-out width-1024 MLPs stay 8x wider),
with episodes of 100..2000 steps (held-out horizons are 1,000..5,000).
    lopt-meta-train --config=hyper_broad --workdir=runs/hyper_broad
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
