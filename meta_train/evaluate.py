"""Held-out evaluation of a learned optimizer during / after meta-training (small and cheap).

``heldout_loss(lopt, theta, tasks, steps, seeds)`` trains every task for ``steps`` steps with
``lopt.optimizer(theta, num_steps=steps)`` from ``seeds`` initialisations and returns the mean of
the final held-out loss divided by ``task.loss_normalizer``. ``theta`` is a jit argument, so
evaluating several thetas compiles once per task. (The full evaluation suite lives in ``eval/``.)
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from tasks import training


@functools.lru_cache(maxsize=16)
def _trainer(lopt, steps: int):
    """Jitted ``(theta, task, keys [S], data) -> [S]``; the task is a pytree argument (its static
    fields select the compiled program)."""

    def run(theta, task, key, data):
        tx = lopt.optimizer(theta, num_steps=steps, param_tags=task.param_tags())
        k_init, k_run, k_eval = jax.random.split(key, 3)
        params = task.init(k_init)
        (params, _), _ = training.train(task, tx, params, data, jax.random.split(k_run, steps))
        return task.eval_loss(params, k_eval, data) / task.loss_normalizer

    return jax.jit(jax.vmap(run, in_axes=(None, None, 0, None)))


def heldout_loss(lopt, theta, tasks, steps: int, seeds: int = 2, seed: int = 0) -> float:
    """Mean normalised final held-out loss over ``tasks`` x ``seeds`` (non-finite counts as inf)."""
    out = []
    for i, task in enumerate(tasks):
        data = jax.device_put(task.load_data())
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), i), seeds)
        out.append(np.asarray(_trainer(lopt, int(steps))(theta, task, keys, data)))
    vals = np.concatenate(out)
    return float(np.mean(np.where(np.isfinite(vals), vals, np.inf)))
