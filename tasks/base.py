"""The contract of the task zoo.

Task
----
A task is a ``flax.struct`` dataclass (a pytree). Its *static* fields (``pytree_node=False``:
widths, depth, batch size, dataset name, ...) fix every shape; its *array* fields (init scale,
reparameterisation scales, ...) are pytree leaves that may vary freely, be traced, and be stacked
along a leading axis and ``jax.vmap``-ed over (one task instance per particle). Tasks with equal
``group_key`` share one compiled program.

    task.init(key) -> params                       a plain pytree of float arrays
    task.loss(params, key, batch) -> scalar        mean training loss on ``batch``
    task.load_data() -> Data                       host numpy arrays {"train": {...}, "test": {...}}
                                                   (call once per group, then jax.device_put)
    task.batch(key, data, split="train") -> Batch  draw a minibatch INSIDE jit from device data
    task.eval_loss(params, key, data) -> scalar    held-out loss (a larger batch of the test split)
    task.loss_normalizer -> float                  loss of a trivial predictor (e.g. log(#classes));
                                                   meta-training uses loss / loss_normalizer
    task.param_tags() -> pytree of str | None      'input' / 'hidden' / 'output' tags for muP
    task.group_key -> hashable                     (class name, static fields); equal => same shapes
    task.name -> str                               human-readable, unique within a suite

Extensions (backward compatible, implemented by every task in this package)
---------------------------------------------------------------------------
    task.default_steps -> int                      recommended horizon (static; NOT in group_key)
    task.batch_size -> int                         training minibatch (static)
    task.batch(key, data, split, size=None)        ``size`` overrides the batch size
    task.sample_arrays(key, **ranges) -> Task      redraw this task's array fields (pure JAX)
    tasks.arch_key(task) -> hashable               architecture-and-data (no batch size/horizon;
                                                   wrappers unwrapped): used for disjointness
    Data passed into jit should be an ARGUMENT, not a closed-over constant (large constants make
    XLA compile slowly).

TaskFamily
----------
    family.name -> str
    family.sample(key) -> Task                     host-side: draws static AND array fields
    family.sample_arrays(key, task) -> Task        pure JAX, jit/vmap-able: redraws only the array
                                                   fields, keeping the static ones (same group)
    family.contains(task) -> bool                  task's static config is in the family's support
    family.arch_keys() -> frozenset                every arch_key the family can sample

Zoo (``tasks.zoo(name)``): ``.name``, ``.families`` ((family, weight), ...), ``.sample(key)``,
``.sample_with_family(key) -> (family, task)``, ``.family_of(task)``, ``.arch_keys()``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax

Params = Any
Batch = Any
Data = Any


@runtime_checkable
class Task(Protocol):
    name: str

    def init(self, key: jax.Array) -> Params: ...

    def loss(self, params: Params, key: jax.Array, batch: Batch) -> jax.Array: ...

    def load_data(self) -> Data: ...

    def batch(self, key: jax.Array, data: Data, split: str = "train") -> Batch: ...

    def eval_loss(self, params: Params, key: jax.Array, data: Data) -> jax.Array: ...

    @property
    def loss_normalizer(self) -> float: ...

    def param_tags(self) -> Any: ...

    @property
    def group_key(self) -> Any: ...


@runtime_checkable
class TaskFamily(Protocol):
    name: str

    def sample(self, key: jax.Array) -> Task: ...

    def sample_arrays(self, key: jax.Array, task: Task) -> Task: ...
