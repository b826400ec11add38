"""Learned optimizers in JAX, exported as optax transforms.

    import learned_opt
    lopt = learned_opt.ScaleFreeLOpt()            # or HyperLOpt(), MLPLOpt(mup=True)
    theta = lopt.init_meta_params(jax.random.key(0))
    tx = lopt.optimizer(theta, num_steps=1000)    # optax.GradientTransformationExtraArgs
    tx = learned_opt.load("path/or/shipped-name")

See ``learned_opt.base`` for the contract, ``mlp`` / ``hyper`` for the update rules and
``storage`` for the on-disk format. The core install (``pip install learned-opt``) needs only
jax, optax, numpy and msgpack; training, evaluation and data are the extras ``[train]``,
``[eval]`` and ``[all]``.
"""

__version__ = "0.1.0"  # the package version (pyproject.toml reads it from here)

from learned_opt.base import LearnedOptimizer, MetaParams
from learned_opt.common import mup_multipliers, mup_tags
from learned_opt.hyper import HyperLOpt, HyperLOptState
from learned_opt.mlp import MLPLOpt, MLPLOptState
from learned_opt.scale_free import ScaleFreeLOpt, ScaleFreeState
from learned_opt.storage import (
    ARCHITECTURES,
    FORMAT_VERSION,
    LoadError,
    from_config,
    load,
    load_description,
    load_meta_params,
    pretrained_names,
    save,
    to_description,
)
from learned_opt.training import apply_gradients

__all__ = [
    "__version__",
    "ARCHITECTURES",
    "FORMAT_VERSION",
    "HyperLOpt",
    "HyperLOptState",
    "LearnedOptimizer",
    "LoadError",
    "MLPLOpt",
    "MLPLOptState",
    "apply_gradients",
    "MetaParams",
    "ScaleFreeLOpt",
    "ScaleFreeState",
    "from_config",
    "load",
    "load_description",
    "load_meta_params",
    "mup_multipliers",
    "mup_tags",
    "pretrained_names",
    "save",
    "to_description",
]
