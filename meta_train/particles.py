"""A population of antithetic particles for truncated evolution strategies on one task group.

A *particle pair* ``i`` trains one optimizee twice in parallel: once with meta-parameters
``theta + eps_i`` (sign index 0) and once with ``theta - eps_i`` (sign index 1). Both members share
the task instance, the initial parameters and every minibatch, so the difference of their losses
isolates the effect of ``eps_i`` (antithetic sampling).

Layout: the leading axis of *every* array is the pair axis ``P`` (so the population can be sharded
along a mesh axis ``"particles"``); inner parameters and optimizer state have a second axis of size
2 for the sign:

    params, opt_state   leaves [P, 2, ...]   optimizee parameters / learned-optimizer state
    step                int32 [P]            inner steps done in the current episode
    length              int32 [P]            length of the current episode (steps)
    offset              int32 [P]            random initial offset of the first episode
    eps                 theta leaves [P,...] perturbation used in the current truncation
    xi                  theta leaves [P,...] sum of the distinct perturbations seen this episode
    redraw              bool  [P]            a new episode began: NRES draws a fresh eps
    task                task leaves [P,...]  per-pair task (array fields of the group's task)
    key                 uint32 [P, 2]        per-pair RNG stream (raw PRNGKey data)

Episode lengths follow a :class:`LengthSchedule`: constant, or log-uniform in ``[min, max]``.
Initial offsets are uniform in ``[0, length)`` so that particles are out of step: the first
episode of a particle starts at ``step = offset`` and therefore ends early. Because every episode
is at least one truncation long, at most one natural episode end falls inside a truncation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class LengthSchedule(NamedTuple):
    """Episode-length distribution (static). ``kind`` is 'constant' (uses ``max_length``) or
    'log_uniform' (``exp(U[log min, log max])`` rounded down)."""

    kind: str = "constant"
    min_length: int = 100
    max_length: int = 100

    def validate(self, truncation_length: int) -> None:
        if self.kind not in ("constant", "log_uniform"):
            raise ValueError(
                f"length schedule kind must be 'constant' or 'log_uniform', got {self.kind!r}"
            )
        lo = self.max_length if self.kind == "constant" else self.min_length
        if lo < truncation_length or self.max_length < lo:
            raise ValueError(
                f"episode lengths must satisfy truncation_length ({truncation_length}) <= "
                f"min_length ({lo}) <= max_length ({self.max_length})"
            )


def sample_length(key: jax.Array, schedule: LengthSchedule) -> jax.Array:
    """Draw one episode length (int32 scalar) from ``schedule``."""
    if schedule.kind == "constant":
        return jnp.asarray(schedule.max_length, jnp.int32)
    lo, hi = jnp.log(schedule.min_length), jnp.log(schedule.max_length + 1.0)
    u = jax.random.uniform(key, (), minval=lo, maxval=hi)
    return jnp.clip(jnp.floor(jnp.exp(u)), schedule.min_length, schedule.max_length).astype(
        jnp.int32
    )


class Particles(NamedTuple):
    """State of ``P`` antithetic pairs (see module docstring for shapes)."""

    params: Any
    opt_state: Any
    step: jax.Array
    length: jax.Array
    offset: jax.Array
    eps: Any
    xi: Any
    redraw: jax.Array
    task: Any
    key: jax.Array

    @property
    def num_pairs(self) -> int:
        return self.step.shape[0]


def fresh_episode(
    task, lopt, theta_pm, key, schedule: LengthSchedule, param_tags=None, resample_task=None
):
    """Start a new episode for ONE pair (vmap over pairs for a population).

    Args:
      task: the pair's task instance (array fields may be traced).
      lopt: learned optimizer (static).
      theta_pm: meta-parameters of the two members, leaves [2, ...].
      key: raw PRNGKey.
      resample_task: optional ``(key, task) -> task`` (``family.sample_arrays``) redrawing the
        task's array fields for the new episode.

    Returns:
      ``(task, params [2,...], opt_state [2,...], length)``.
    """
    k_task, k_init, k_len = jax.random.split(key, 3)
    if resample_task is not None:
        task = resample_task(k_task, task)
    length = sample_length(k_len, schedule)
    params = task.init(k_init)

    def init_state(theta_s):
        tx = lopt.optimizer(theta_s, num_steps=length, param_tags=param_tags)
        return tx.init(params)

    opt_state = jax.vmap(init_state)(theta_pm)
    params2 = jax.tree.map(lambda p: jnp.broadcast_to(p, (2, *p.shape)), params)
    return task, params2, opt_state, length


def init_particles(
    key,
    task,
    lopt,
    theta,
    num_pairs: int,
    schedule: LengthSchedule,
    param_tags=None,
    resample_task=None,
    random_offset: bool = True,
) -> Particles:
    """Create ``num_pairs`` pairs at the start of their (offset) first episode.

    ``task`` is the group's template; every pair gets its own array fields through
    ``resample_task`` (when given). Pure and jit-able (shapes depend only on static values), so it
    can be jitted with ``out_shardings`` to build a sharded population directly.
    """
    keys = jax.random.split(key, num_pairs)
    theta_pm = jax.tree.map(lambda t: jnp.broadcast_to(t, (2, *t.shape)), theta)

    def one(k):
        k_ep, k_off, k_pair = jax.random.split(k, 3)
        tsk, params, opt_state, length = fresh_episode(
            task, lopt, theta_pm, k_ep, schedule, param_tags, resample_task
        )
        offset = (
            jax.random.randint(k_off, (), 0, length) if random_offset else jnp.zeros((), jnp.int32)
        )
        zeros = lambda: jax.tree.map(jnp.zeros_like, theta)  # distinct buffers (donation)
        return Particles(
            params=params,
            opt_state=opt_state,
            step=offset.astype(jnp.int32),
            length=length,
            offset=offset.astype(jnp.int32),
            eps=zeros(),
            xi=zeros(),
            redraw=jnp.ones((), bool),
            task=tsk,
            key=k_pair,
        )

    # jit: every output gets its own buffer (eager vmap may alias equal outputs, which breaks
    # buffer donation)
    return jax.jit(jax.vmap(one))(keys)
