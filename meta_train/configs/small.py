"""Small: MNIST / Fashion-MNIST MLPs at 8x8 and 16x16 (+ the embedded zoo); CPU hours.

Needs the prepared tfds datasets (``lopt-data prepare mnist fashion_mnist``).
"""

from meta_train.configs import quickstart


def get_config():
    c = quickstart.get_config()
    c.zoo = "small"
    c.lopt.architecture = "mlp"  # the LOLv2-style per-parameter MLP (hyper_small: HyperLOpt)
    c.lopt.config = dict(hidden_sizes=(32, 32))
    c.truncation_length = 50
    c.episode.min_length = 100
    c.episode.max_length = 2000
    c.num_groups = 4
    c.pairs_per_group = 8
    c.group_resample_every = 200
    c.outer_steps = 5000
    c.meta_opt.learning_rate = 1e-3
    c.checkpoint_every = 100
    c.export_every = 500
    return c
