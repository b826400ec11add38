"""Refuse a particle population that cannot fit, before allocating it.

``check_population(run, draws, mesh)`` measures the bytes of one antithetic pair of each task
group of the first draw (``jax.eval_shape`` of the estimator's ``init``: nothing is allocated),
multiplies by ``pairs_per_group`` and by :data:`WORKING_FACTOR` (the inner step's copies of
parameters, optimizer state, gradients and activations), divides by the devices the pairs are
spread over (in ``shared_randomness`` mode every device also holds every pair's two theta-sized
perturbations, ``meta_train.communication``), and raises ``ConfigError`` naming
``config.pairs_per_group`` and the estimate when it exceeds the memory of one device (host RAM
on CPU).
"""

from __future__ import annotations

import os

import jax
import numpy as np

from meta_train import config as config_lib
from meta_train import estimators
from meta_train.spec import RunSpec

WORKING_FACTOR = 4  # state + its donated update + gradients/activations of the unroll


def device_memory(device) -> int:
    """Bytes one device may use: the accelerator's limit, or available host RAM on CPU."""
    try:
        stats = device.memory_stats() or {}
    except Exception:  # noqa: BLE001 - not every backend reports memory stats
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    try:
        with open("/proc/meminfo") as f:
            info = {ln.split(":")[0]: ln.split()[1] for ln in f}
        return int(info["MemAvailable"]) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def pair_bytes(est: estimators.EstimatorSettings, lopt, family, task) -> int:
    """Bytes of one antithetic pair's state (params, optimizer state, noise, ...) for ``task``.

    Args:
        est: the run's estimator settings.
        lopt: the learned optimizer.
        family: ``task``'s family (its per-episode redraw of the task's arrays).
        task: the group's task.

    Returns:
        The bytes of one pair, from shapes only (nothing is allocated).
    """
    estimator = estimators.build(est, task, lopt, family)
    theta = jax.eval_shape(lopt.init_meta_params, jax.random.key(0))
    shapes = jax.eval_shape(lambda th: estimator.init(jax.random.PRNGKey(0), th, 1), theta)
    return sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(shapes))


def check_population(run: RunSpec, draws, mesh) -> int:
    """Raise ``ConfigError`` if the population of the first group draw cannot fit.

    Args:
        run: the run's spec (its optimizer, estimator and group settings).
        draws: the ``(family, task)`` of every group of the run's first draw
            (``outer.draw_groups``).
        mesh: the ``particles`` mesh the pairs are split over.

    Returns:
        The estimated bytes per device.
    """
    lopt, groups = run.lopt, run.groups
    per_pair = max(pair_bytes(run.estimator, lopt, fam, task) for fam, task in draws)
    n_dev = mesh.devices.size
    pairs = groups.pairs_per_group * groups.num_groups
    need = WORKING_FACTOR * per_pair * pairs // n_dev
    if run.estimator.communication == "shared_randomness":  # eps, xi replicated
        theta = jax.eval_shape(lopt.init_meta_params, jax.random.key(0))
        noise = 2 * sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(theta))
        need += noise * pairs * (n_dev - 1) // n_dev
    have = device_memory(mesh.devices.flat[0])
    if need > have:
        raise config_lib.ConfigError(
            f"config.pairs_per_group={groups.pairs_per_group}: the population needs about "
            f"{need / 2**30:.3g} GiB per device ({per_pair} bytes per pair x "
            f"{groups.pairs_per_group} pairs x {groups.num_groups} groups x {WORKING_FACTOR} "
            f"for the inner step, over {n_dev} device(s)) but a device has "
            f"{have / 2**30:.3g} GiB; use fewer pairs or more devices"
        )
    return need
