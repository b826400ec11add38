"""Task augmentations: parameter reparameterisation (a wrapper task) and a smaller batch.

Reparameterisation (as in the learned-optimizer task augmentations of Metz et al. 2022, "VeLO"):
each parameter tensor p_k gets a scale s_k, log-uniform in [1e-3, 1e3]. The optimizer sees and
updates u_k = p_k / s_k; the loss is computed at p_k = u_k * s_k. So
``ReparamTask.loss(u) == base.loss(u * s)`` and gradients w.r.t. u are s times larger. The
scales are array fields (vmap-able, traced), not static.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from flax import struct

from tasks import common


@struct.dataclass
class ReparamTask:
    """``base`` with per-tensor parameter scales (``scales``: params-shaped pytree of scalars)."""

    base: Any
    scales: Any

    @classmethod
    def create(cls, base, key: jax.Array, low: float = 1e-3, high: float = 1e3) -> ReparamTask:
        return cls(base=base, scales=draw_scales(base, key, low, high))

    @property
    def name(self) -> str:
        return f"{self.base.name}_reparam"

    @property
    def group_key(self) -> tuple:
        return ("ReparamTask", self.base.group_key)

    # Static attributes of the base (batch_size, default_steps, dataset, ...) read through.
    def __getattr__(self, item):
        if item in ("base", "scales") or item.startswith("__"):
            raise AttributeError(item)
        return getattr(self.base, item)

    def _to_base(self, params):
        return jax.tree.map(lambda u, s: u * s.astype(u.dtype), params, self.scales)

    def init(self, key):
        return jax.tree.map(lambda p, s: p / s.astype(p.dtype), self.base.init(key), self.scales)

    def loss(self, params, key, batch):
        return self.base.loss(self._to_base(params), key, batch)

    def eval_loss(self, params, key, data):
        return self.base.eval_loss(self._to_base(params), key, data)

    def load_data(self):
        return self.base.load_data()

    def batch(self, key, data, split: str = "train", size: int | None = None):
        return self.base.batch(key, data, split, size)

    @property
    def loss_normalizer(self) -> float:
        return self.base.loss_normalizer

    def param_tags(self):
        return self.base.param_tags()

    def sample_arrays(self, key, low: float = 1e-3, high: float = 1e3, **base_ranges):
        kb, ks = jax.random.split(key)
        base = self.base.sample_arrays(kb, **base_ranges)
        return self.replace(base=base, scales=draw_scales(base, ks, low, high))


def draw_scales(base, key: jax.Array, low: float = 1e-3, high: float = 1e3):
    """Per-tensor scalar scales, log-uniform in [low, high], shaped like ``base``'s params."""
    shapes = common.param_shapes(base)
    leaves, treedef = jax.tree.flatten(shapes)
    draws = common.log_uniform(key, low, high, shape=(len(leaves),))
    return jax.tree.unflatten(treedef, [draws[i] for i in range(len(leaves))])


def with_batch_size(task, batch_size: int):
    """The same task with another (e.g. smaller) training batch size; wrappers are kept."""
    if isinstance(task, ReparamTask):
        return task.replace(base=with_batch_size(task.base, batch_size))
    return task.replace(batch_size=batch_size)


@dataclasses.dataclass(frozen=True)
class ReparamFamily:
    """Wraps a family: every task gets per-tensor scales log-uniform in [low, high]."""

    base: Any
    low: float = 1e-3
    high: float = 1e3

    @property
    def name(self) -> str:
        return f"{self.base.name}+reparam"

    def sample(self, key) -> ReparamTask:
        kb, ks = jax.random.split(key)
        return ReparamTask.create(self.base.sample(kb), ks, self.low, self.high)

    def sample_arrays(self, key, task: ReparamTask) -> ReparamTask:
        kb, ks = jax.random.split(key)
        base = self.base.sample_arrays(kb, task.base)
        return task.replace(base=base, scales=draw_scales(base, ks, self.low, self.high))

    def arch_keys(self) -> frozenset:
        return self.base.arch_keys()

    def contains(self, task) -> bool:
        return isinstance(task, ReparamTask) and self.base.contains(task.base)


@dataclasses.dataclass(frozen=True)
class SmallBatchFamily:
    """Wraps a family: the batch size is replaced by one of ``batch_sizes`` (uniformly)."""

    base: Any
    batch_sizes: tuple = (8, 16, 32)

    @property
    def name(self) -> str:
        return f"{self.base.name}+small_batch"

    def sample(self, key):
        kb, kc = jax.random.split(key)
        rng = np.random.default_rng(np.asarray(jax.random.key_data(kc)))
        return with_batch_size(self.base.sample(kb), int(rng.choice(self.batch_sizes)))

    def sample_arrays(self, key, task):
        return self.base.sample_arrays(key, task)

    def arch_keys(self) -> frozenset:
        return self.base.arch_keys()

    def contains(self, task) -> bool:
        return task.batch_size in self.batch_sizes and common.arch_key(task) in self.arch_keys()

    def support(self):
        return [with_batch_size(t, b) for t in self.base.support() for b in self.batch_sizes]
