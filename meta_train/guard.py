"""Keep non-finite numbers out of theta: skip such an update, count it, stop after N in a row.

Inside the jitted meta-update :func:`keep_if_finite` keeps the old theta and meta-optimizer
state when the meta-gradient or the updated theta holds NaN/inf. On the host
:class:`NonFiniteStreak` logs each skipped update and raises :class:`DivergedError` after
``config.max_nonfinite_steps`` skipped updates in a row (the last checkpoint stays as it was).
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp

log = logging.getLogger(__name__)


class DivergedError(RuntimeError):
    """Too many non-finite meta-updates in a row."""


def all_finite(tree) -> jax.Array:
    """Scalar bool: every element of every leaf of ``tree`` is finite."""
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else True


def keep_if_finite(new, old, *checked):
    """``(new, True)`` if ``new`` and all trees in ``checked`` are finite, else ``(old, False)``."""
    ok = all_finite((new, checked))
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old), ok


class NonFiniteStreak:
    """Host-side count of consecutive skipped (non-finite) meta-updates."""

    def __init__(self, limit: int):
        self.limit, self.streak, self.total = limit, 0, 0

    def update(self, step: int, skipped: bool) -> None:
        """Record step ``step``; raise :class:`DivergedError` after ``limit`` skips in a row."""
        if not skipped:
            self.streak = 0
            return
        self.streak += 1
        self.total += 1
        log.warning(
            "step %d: non-finite meta-gradient or theta; update skipped (%d in a row, %d in all)",
            step,
            self.streak,
            self.total,
        )
        if self.streak >= self.limit:
            raise DivergedError(
                f"{self.streak} meta-updates in a row were non-finite (NaN/inf) up to step {step}; "
                f"stopped (config.max_nonfinite_steps={self.limit}). Theta was never updated "
                "with them: the last checkpoint and export are intact. Try a lower "
                "config.meta_opt.learning_rate or config.sigma"
            )
