"""Task families over finite grids of static settings, and zoos (weighted mixtures of families).

A :class:`GridFamily` draws each static field uniformly from its list of choices (host side:
this fixes the task group) and then the array fields with the task's own pure-JAX
``sample_arrays`` (e.g. ``init_scale`` log-uniform in ``init_scale``). Its support is finite and
enumerable (:meth:`GridFamily.support`), so disjointness of a held-out suite from a training zoo
is checkable: :meth:`arch_keys` lists every architecture-and-data the family can produce.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import jax
import numpy as np

from tasks import common


def host_rng(key: jax.Array) -> np.random.Generator:
    """A numpy Generator seeded by a JAX key (for host-side choices of static fields)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


@dataclasses.dataclass(frozen=True)
class GridFamily:
    """Tasks of class ``task_cls`` with static fields drawn from ``choices``.

    Args:
      name: family name.
      task_cls: a task dataclass with a ``sample_arrays(key, **array_ranges)`` method.
      choices: ``((field, (option, ...)), ...)``: each field uniform over its options.
      fixed: ``((field, value), ...)``: static fields shared by all tasks of the family.
      array_ranges: ``((name, value), ...)`` keyword arguments of ``task.sample_arrays``,
        e.g. ``(("init_scale", (0.5, 2.0)),)``.
    """

    name: str
    task_cls: type
    choices: tuple = ()
    fixed: tuple = ()
    array_ranges: tuple = ()

    def __post_init__(self):
        fields = {f.name for f in dataclasses.fields(self.task_cls)}
        for field, options in self.choices:
            if field not in fields:
                raise ValueError(
                    f"family {self.name}: {self.task_cls.__name__} has no field {field!r}"
                )
            if not options:
                raise ValueError(f"family {self.name}: no choices for field {field!r}")
        for field, _ in self.fixed:
            if field not in fields:
                raise ValueError(
                    f"family {self.name}: {self.task_cls.__name__} has no field {field!r}"
                )
        self.support()  # validates every grid point now, with the field name on error

    def _build(self, values: dict):
        return self.task_cls(**dict(self.fixed), **values)

    def support(self) -> list:
        """Every static configuration as a task (array fields at their defaults)."""
        names = [f for f, _ in self.choices]
        grids = itertools.product(*(opts for _, opts in self.choices))
        return [self._build(dict(zip(names, vals, strict=True))) for vals in grids]

    def arch_keys(self) -> frozenset:
        return frozenset(common.arch_key(t) for t in self.support())

    def group_keys(self) -> frozenset:
        return frozenset(t.group_key for t in self.support())

    def contains(self, task) -> bool:
        """Whether ``task``'s static configuration is in this family's support."""
        return type(task) is self.task_cls and task.group_key in self.group_keys()

    def sample(self, key: jax.Array):
        """Host side: static fields uniformly from ``choices``, then the array fields."""
        k_static, k_arrays = jax.random.split(key)
        rng = host_rng(k_static)
        values = {f: opts[int(rng.integers(len(opts)))] for f, opts in self.choices}
        return self.sample_arrays(k_arrays, self._build(values))

    def sample_arrays(self, key: jax.Array, task):
        """Pure JAX (jit/vmap-able): redraw only the array fields of ``task``."""
        return task.sample_arrays(key, **dict(self.array_ranges))


@dataclasses.dataclass(frozen=True)
class Zoo:
    """A meta-training distribution: ``families`` is a tuple of (family, weight)."""

    name: str
    families: tuple

    def __post_init__(self):
        if not self.families:
            raise ValueError(f"zoo {self.name}: no families")
        for fam, w in self.families:
            if not w > 0:
                raise ValueError(f"zoo {self.name}: weight of family {fam.name} must be > 0")

    @property
    def probabilities(self) -> np.ndarray:
        w = np.array([w for _, w in self.families], np.float64)
        return w / w.sum()

    def sample_with_family(self, key: jax.Array) -> tuple[Any, Any]:
        """Host side: a family by weight, then a task from it; returns (family, task)."""
        k_fam, k_task = jax.random.split(key)
        i = int(host_rng(k_fam).choice(len(self.families), p=self.probabilities))
        fam = self.families[i][0]
        return fam, fam.sample(k_task)

    def sample(self, key: jax.Array):
        return self.sample_with_family(key)[1]

    def family_of(self, task):
        """The first family whose support contains ``task`` (to call its ``sample_arrays``)."""
        for fam, _ in self.families:
            if fam.contains(task):
                return fam
        raise ValueError(f"task {task.name} is not in zoo {self.name!r}")

    def arch_keys(self) -> frozenset:
        return frozenset().union(*(fam.arch_keys() for fam, _ in self.families))
