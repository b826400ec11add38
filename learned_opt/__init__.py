"""Learned optimizers in JAX, exported as optax transforms.

The recommended pretrained optimizer, :data:`RECOMMENDED` (``"scale_free_v7"``), loads with no
name; ``num_steps`` is the planned number of training steps (its warmup + cosine schedule is laid
out over it)::

    import learned_opt
    tx = learned_opt.load(num_steps=10_000)       # optax.GradientTransformationExtraArgs
    state = tx.init(params)
    updates, state = tx.update(grads, state, params, value=loss)
    params = optax.apply_updates(params, updates)

:func:`pretrained_info` lists the shipped optimizers: the recommended one, specialists for one model
family each (:data:`SPECIALISTS`), and archived ones (still loadable).
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

import importlib

# Attributes load on first use (PEP 562), so that ``learned_opt.torch`` and ``learned_opt.files``
# import without JAX; ``import learned_opt`` alone imports nothing heavy.
_EXPORTS = {
    "base": ("LearnedOptimizer", "MetaParams"),
    "common": ("mup_multipliers", "mup_tags"),
    "hyper": ("HyperLOpt", "HyperLOptState"),
    "mlp": ("MLPLOpt", "MLPLOptState"),
    "scale_free": ("ExperimentalScaleFreeLOpt", "ScaleFreeLOpt", "ScaleFreeState"),
    "storage": (
        "ARCHITECTURES",
        "FORMAT_VERSION",
        "LoadError",
        "PretrainedInfo",
        "archived_names",
        "from_config",
        "load",
        "load_description",
        "load_meta_params",
        "pretrained_info",
        "pretrained_names",
        "save",
        "to_description",
    ),
    "files": ("RECOMMENDED", "SPECIALISTS"),
    "training": ("apply_gradients",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    """An exported name (imported from its module on first use) or a submodule."""
    module = _MODULE_OF.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"learned_opt.{module}"), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"learned_opt.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"learned_opt.{name}":
            raise
        raise AttributeError(f"module 'learned_opt' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


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
