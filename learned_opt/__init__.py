"""Learned optimizers in JAX, exported as optax transforms.

The recommended pretrained optimizer, :data:`RECOMMENDED` (``"scale_free_v7"``), loads with no
name; ``num_steps`` is the planned number of training steps (its warmup + cosine schedule is laid
out over it)::

    import learned_opt
    tx = learned_opt.load(num_steps=10_000)       # optax.GradientTransformationExtraArgs
    state = tx.init(params)
    updates, state = tx.update(grads, state, params, value=loss)
    params = optax.apply_updates(params, updates)

:func:`pretrained_info` lists the shipped optimizers (the others are archived, still loadable).
To build or meta-train one yourself::

    lopt = learned_opt.ScaleFreeLOpt()            # the recommended architecture; or HyperLOpt()
    theta = lopt.init_meta_params(jax.random.key(0))
    tx = lopt.optimizer(theta, num_steps=1000)
    learned_opt.save("my_lopt", lopt, theta)      # then learned_opt.load("my_lopt", ...)

See ``learned_opt.base`` for the contract, ``scale_free`` / ``mlp`` / ``hyper`` for the update
rules and ``storage`` for the on-disk format. The core install (``pip install learned-opt``)
needs only jax, optax, numpy and msgpack; training, evaluation and data are the extras
``[train]``, ``[eval]`` and ``[all]``.
"""

__version__ = "0.1.0"  # the package version (pyproject.toml reads it from here)

from learned_opt.base import LearnedOptimizer, MetaParams
from learned_opt.common import mup_multipliers, mup_tags
from learned_opt.hyper import HyperLOpt, HyperLOptState
from learned_opt.mlp import MLPLOpt, MLPLOptState
from learned_opt.scale_free import ExperimentalScaleFreeLOpt, ScaleFreeLOpt, ScaleFreeState
from learned_opt.storage import (
    ARCHITECTURES,
    FORMAT_VERSION,
    RECOMMENDED,
    LoadError,
    PretrainedInfo,
    archived_names,
    from_config,
    load,
    load_description,
    load_meta_params,
    pretrained_info,
    pretrained_names,
    save,
    to_description,
)
from learned_opt.training import apply_gradients

__all__ = [
    "__version__",
    "ARCHITECTURES",
    "ExperimentalScaleFreeLOpt",
    "FORMAT_VERSION",
    "HyperLOpt",
    "HyperLOptState",
    "LearnedOptimizer",
    "LoadError",
    "MLPLOpt",
    "MLPLOptState",
    "MetaParams",
    "PretrainedInfo",
    "RECOMMENDED",
    "ScaleFreeLOpt",
    "ScaleFreeState",
    "apply_gradients",
    "archived_names",
    "from_config",
    "load",
    "load_description",
    "load_meta_params",
    "mup_multipliers",
    "mup_tags",
    "pretrained_info",
    "pretrained_names",
    "save",
    "to_description",
]
