"""Shared machinery of the concrete tasks: a base dataclass, validation, batching, losses.

Every concrete task is a ``flax.struct`` dataclass deriving from :class:`TaskBase`. Static fields
(``pytree_node=False``) fix shapes; array fields are leaves. ``default_steps`` (the recommended
training horizon) is static but excluded from :attr:`TaskBase.group_key` and
:func:`arch_key`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tasks import data as data_lib

# Static fields that do not change the compiled program or the architecture.
_NOT_IN_GROUP_KEY = ("default_steps",)
# Fields that an augmentation may change; ignored when comparing architectures.
_NOT_IN_ARCH_KEY = ("default_steps", "batch_size", "eval_batch_size")

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "elu": jax.nn.elu,
    "sigmoid": jax.nn.sigmoid,
}
IMAGE_DATASETS = {"mnist": 28, "fashion_mnist": 28, "mnist1d": 40}  # native side / length
SHORT = {"mnist": "mnist", "fashion_mnist": "fmnist", "mnist1d": "mnist1d"}


def static(default: Any = dataclasses.MISSING) -> Any:
    """A static (shape-fixing, hashable) dataclass field."""
    return struct.field(pytree_node=False, default=default)


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_choice(name: str, value: Any, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def check_image_source(dataset: str, image_size: int | None) -> None:
    """Validate (dataset, image_size); any tfds image dataset name is allowed at native size."""
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(f"dataset must be a non-empty string, got {dataset!r}")
    if dataset == "mnist1d":
        if image_size not in (None, IMAGE_DATASETS["mnist1d"]):
            raise ValueError(
                f"image_size must be None or 40 for dataset 'mnist1d', got {image_size}"
            )
    elif image_size is not None:
        check_positive_int("image_size", image_size)


def static_items(task: Any, exclude=()) -> tuple:
    """(name, value) of the static fields of a task dataclass, recursing into nested tasks."""
    out = []
    for f in dataclasses.fields(task):
        v = getattr(task, f.name)
        if f.metadata.get("pytree_node", True):
            if dataclasses.is_dataclass(v):
                out.append((f.name, (type(v).__name__, static_items(v, exclude))))
            continue
        if f.name not in exclude:
            out.append((f.name, v))
    return tuple(out)


def arch_key(task: Any) -> tuple:
    """What a task computes up to batch size and horizon: (class, static fields).

    Used to check that a held-out suite shares no architecture-and-data with a training zoo.
    Wrappers (e.g. reparameterisation) are unwrapped.
    """
    while hasattr(task, "base") and dataclasses.is_dataclass(task.base):
        task = task.base
    return (type(task).__name__, static_items(task, _NOT_IN_ARCH_KEY))


def draw_indices(key: jax.Array, n: int, batch_size: int) -> jax.Array:
    """``batch_size`` uniform indices in [0, n) (with replacement); int32 ``[batch_size]``."""
    return jax.random.randint(key, (batch_size,), 0, n, dtype=jnp.int32)


def softmax_xent(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean cross entropy -log softmax(logits)[label] over the leading axes, float32."""
    logits = logits.astype(jnp.float32)
    logz = jax.nn.logsumexp(logits, axis=-1)
    # A one-hot product rather than a gather: its gradient avoids a scatter (slow on CPU).
    onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return (jnp.sum(logz) - jnp.sum(logits * onehot)) / logz.size


def log_uniform(key: jax.Array, lo: float, hi: float, shape=()) -> jax.Array:
    """float32 samples with log x ~ U[log lo, log hi] (exactly ``lo`` when lo == hi)."""
    if lo <= 0 or hi < lo:
        raise ValueError(f"log-uniform range must satisfy 0 < lo <= hi, got ({lo}, {hi})")
    u = jax.random.uniform(key, shape, jnp.float32)
    return jnp.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))).astype(jnp.float32)


def as_float_images(x: jax.Array) -> jax.Array:
    """uint8 pixels -> float32 in [0, 1]; float inputs pass through as float32."""
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) * (1.0 / 255.0)
    return x.astype(jnp.float32)


@struct.dataclass(kw_only=True)
class TaskBase:
    """Fields and methods shared by concrete tasks (see ``tasks/base.py`` for the contract).

    Static: ``batch_size`` (training minibatch), ``eval_batch_size`` (test examples per
    ``eval_loss``), ``default_steps`` (recommended horizon). Array: ``init_scale`` (multiplies
    the initial parameters; a float32 scalar that may be traced / vmapped).
    """

    batch_size: int = static(128)
    eval_batch_size: int = static(1000)
    default_steps: int = static(1000)
    init_scale: Any = struct.field(default_factory=lambda: np.float32(1.0))

    def __post_init__(self):
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("eval_batch_size", self.eval_batch_size)
        check_positive_int("default_steps", self.default_steps)
        self.validate()

    def validate(self) -> None:  # overridden by subclasses
        pass

    # ---- identity --------------------------------------------------------------------------
    @property
    def group_key(self) -> tuple:
        """(class name, static fields except ``default_steps``); equal => same program."""
        return (type(self).__name__, static_items(self, _NOT_IN_GROUP_KEY))

    @property
    def param_shape_key(self) -> tuple:
        """Hashable; equal keys mean equal parameter shapes (:func:`param_shapes` caches by it):
        the group key, or less where a task knows which static fields fix its shapes."""
        return (type(self).__name__, self.group_key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"

    # ---- data ------------------------------------------------------------------------------
    def load_data(self) -> dict:
        """Host numpy arrays ``{"train": {...}, "test": {...}}`` (cached per dataset)."""
        return data_lib.load(self.dataset, getattr(self, "image_size", None))

    def batch(self, key: jax.Array, data: dict, split: str = "train", size: int | None = None):
        """Uniform minibatch of ``size`` (default ``batch_size``) examples drawn inside jit.

        ``data[split]`` is a dict of arrays sharing the leading example axis; the same indices
        (``draw_indices(key, n, size)``) index every array.
        """
        arrays = data[split]
        n = next(iter(arrays.values())).shape[0]
        idx = draw_indices(key, n, size or self.batch_size)
        return {k: jnp.asarray(v)[idx] for k, v in arrays.items()}

    def eval_loss(self, params, key: jax.Array, data: dict) -> jax.Array:
        """Loss on ``eval_batch_size`` test examples drawn with ``key`` (float32 scalar)."""
        k1, k2 = jax.random.split(key)
        return self.loss(params, k2, self.batch(k1, data, "test", self.eval_batch_size))

    def sample_arrays(self, key: jax.Array, init_scale=(1.0, 1.0)):
        """Redraw the array fields (pure JAX): ``init_scale`` log-uniform in the given range."""
        return self.replace(init_scale=log_uniform(key, *init_scale))

    # ---- params ----------------------------------------------------------------------------
    def param_tags(self) -> Any:
        """Pytree like the params of str tags ('input'/'hidden'/'output'); default by position."""
        return default_tags(param_shapes(self))

    def scale_init(self, params):
        return jax.tree.map(lambda p: p * jnp.asarray(self.init_scale, p.dtype), params)

    @property
    def num_params(self) -> int:
        return int(sum(math.prod(s.shape) for s in jax.tree.leaves(param_shapes(self))))


_PARAM_SHAPES: dict = {}


def param_shapes(task) -> Any:
    """``jax.eval_shape(task.init, key)``, cached by ``task.param_shape_key`` (or its group
    key): building a zoo's shared programs asks for it hundreds of times (flax's init traces
    the model, about 8 ms each), for a few dozen distinct shapes."""
    try:
        key = getattr(task, "param_shape_key", None) or (type(task), task.group_key)
        hash(key)
    except (AttributeError, TypeError):  # a task without a hashable group key
        return jax.eval_shape(task.init, jax.random.key(0))
    if key not in _PARAM_SHAPES:
        _PARAM_SHAPES[key] = jax.eval_shape(task.init, jax.random.key(0))
    return _PARAM_SHAPES[key]


def default_tags(param_shapes) -> Any:
    """muP tags from layer names: a top-level layer named ``input*`` is 'input', ``output*`` is
    'output'; elsewhere matrices (ndim >= 2) are 'hidden' and vectors (biases, norm scales:
    fan-in 1 in muP terms) are 'input'."""

    def tag(layer, shapes):
        if layer.startswith("input"):
            return jax.tree.map(lambda _: "input", shapes)
        if layer.startswith("output"):
            return jax.tree.map(lambda _: "output", shapes)
        return jax.tree.map(lambda s: "hidden" if len(s.shape) >= 2 else "input", shapes)

    return {k: tag(k, v) for k, v in param_shapes.items()}
