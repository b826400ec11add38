"""The floor of meta-training's cost: the members of its task groups just trained.

An outer step of PES trains every member of every group (``2 * pairs_per_group`` per group) for
one truncation, at ``theta + eps`` or ``theta - eps``, and keeps the books of the estimate
(perturbations, episode ends and resets, the meta-loss sums, non-finite checks). This module
trains the same members, tasks and minibatches for the same number of steps at ``theta`` itself,
in a plain vmapped, scanned loop with none of that: what meta-training could not run faster than.
``benchmarks/meta_train_throughput.py --config NAME`` reports the ratio of the two.

Members, minibatches and the learned optimizer's state are those of the estimator's
``_unroll`` (the same keys, :func:`meta_train.estimators.unroll_keys` and
:func:`meta_train.estimators.step_keys`), so at zero perturbation and within an episode both give
the same training losses (``tests/meta_train/test_floor.py``).
"""

from __future__ import annotations

import functools
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from meta_train import estimators, outer
from meta_train.particles import Particles, init_particles


def train_members(task, lopt, theta, particles: Particles, keys, data, num_steps: int, tags=None):
    """Train every member of ``particles`` for ``num_steps`` steps at ``theta``.

    Args:
        task: the group's task (its static fields; the members' array fields are
            ``particles.task``).
        lopt: the learned optimizer.
        theta: its meta-parameters (one set for every member: no perturbation).
        particles: the population (params / opt_state leaves [P, 2, ...], task and length [P]).
        keys: the pairs' keys of this call [P, 2] (the estimator's ``k_run``).
        data: the task's device-resident arrays.
        num_steps: inner steps (a truncation).
        tags: the task's parameter tags (``task.param_tags()``).

    Returns:
        ``(params, opt_state, losses)``: the members' parameters and optimizer states after
        ``num_steps`` steps (no episode ends or resets) and their training losses
        ``[num_steps, P, 2]`` (of each minibatch at the parameters before the step).
    """
    del task  # the members' own tasks carry the static fields too
    _, k_steps = estimators.unroll_keys(keys)

    def member_update(p, s, grads, loss, length):
        tx = lopt.optimizer(theta, num_steps=length, param_tags=tags)
        updates, s = tx.update(grads, s, p, value=loss)
        return optax.apply_updates(p, updates), s

    def pair_grads(tsk, params2, key, batch):
        return jax.vmap(jax.value_and_grad(lambda q: tsk.loss(q, key, batch)))(params2)

    def body(carry, t):
        params, opt_state = carry
        k_batch, k_loss = estimators.step_keys(k_steps, t)
        batches = jax.vmap(lambda tsk, k: tsk.batch(k, data))(particles.task, k_batch)
        loss, grads = jax.vmap(pair_grads)(particles.task, params, k_loss, batches)
        pair_update = jax.vmap(member_update, in_axes=(0, 0, 0, 0, None))
        params, opt_state = jax.vmap(pair_update)(params, opt_state, grads, loss, particles.length)
        return (params, opt_state), loss

    carry = (particles.params, particles.opt_state)
    (params, opt_state), losses = jax.lax.scan(body, carry, jnp.arange(num_steps))
    return params, opt_state, losses


def measure(run, zoo, theta, mesh=None, repeats: int = 3, epoch: int = 0) -> dict:
    """Time the floor of one outer step of ``run`` (a ``meta_train.spec.RunSpec``): the groups
    of its draw ``epoch``, each trained one truncation by :func:`train_members`, populations
    split over ``mesh`` as the run splits them.

    Returns:
        dict: ``inner_steps_per_s`` (all members' steps of all groups / the median over
        ``repeats`` of the time to run every group once), ``outer_step_s`` (that median),
        ``compile_s``, the groups' task names and the step counts.
    """
    mesh = outer.make_mesh() if mesh is None else mesh
    part, rep = outer.particles_sharding(run, mesh), outer.replicated(mesh)
    pairs, steps = run.groups.pairs_per_group, run.estimator.truncation_length
    programs, names, compile_s = [], [], 0.0
    key = jax.random.PRNGKey(run.seed)
    draws = outer.draw_groups(zoo, run.seed, epoch, run.groups.num_groups)
    for g, (family, task) in enumerate(draws):
        tags = task.param_tags()
        init = jax.jit(
            functools.partial(
                init_particles,
                task=task,
                lopt=run.lopt,
                num_pairs=pairs,
                schedule=run.estimator.episode,
                param_tags=tags,
                resample_task=family.sample_arrays,
            ),
            out_shardings=part,
        )
        particles = init(jax.random.fold_in(key, g), theta=theta)
        data = jax.device_put(task.load_data(), rep)
        fn = jax.jit(
            functools.partial(train_members, task, run.lopt, num_steps=steps, tags=tags),
            in_shardings=(rep, part, part.key, rep),
        )
        args = (theta, particles, particles.key, data)
        t0 = time.perf_counter()
        compiled = fn.lower(*args).compile()
        compile_s += time.perf_counter() - t0
        programs.append((compiled, args))
        names.append(task.name)
    for compiled, args in programs:  # warm-up
        jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready([compiled(*args) for compiled, args in programs])
        times.append(time.perf_counter() - t0)
    outer_step_s = statistics.median(times)
    inner = len(programs) * 2 * pairs * steps
    return dict(
        inner_steps_per_s=inner / outer_step_s,
        outer_step_s=outer_step_s,
        outer_step_s_runs=[round(t, 4) for t in times],
        inner_steps_per_outer_step=inner,
        compile_s=round(compile_s, 2),
        tasks=names,
        devices=int(mesh.devices.size),
    )
