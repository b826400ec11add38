"""Small: MNIST / Fashion-MNIST MLPs at 8x8 and 16x16 (+ the embedded zoo); CPU hours.

Needs the prepared tfds datasets (``lopt-data prepare mnist fashion_mnist``).
"""

from meta_train import config as config_lib


def get_config():
    c = config_lib.base()
    c.zoo = "small"
    # lopt: the LOLv2-style per-parameter MLP (hyper_small: HyperLOpt)
    c.lopt.config = dict(hidden_sizes=(32, 32))
    c.outer_steps = 5000
    c.export_every = 500
    c.eval.update(config_lib.EMBEDDED_EVAL)
    return c
