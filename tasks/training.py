"""The inner training loop: one optax transform training one task, inside ``lax.scan``.

    step = train_step(task, tx, data)             # (params, opt_state), key -> ..., loss
    (params, opt_state), losses = train(task, tx, params, data, jax.random.split(key, T))

Every caller (evaluation, held-out checks during meta-training, benchmarks, tests) trains with
this step, so a loss curve means the same thing everywhere. The transform gets the minibatch loss
as ``value`` (the learned optimizers read it; optax's own transforms ignore it).
"""

from __future__ import annotations

from typing import Any

import jax
import optax


def train_step(task: Any, tx: optax.GradientTransformationExtraArgs, data: Any):
    """The ``lax.scan`` body ``((params, opt_state), key) -> ((params, opt_state), loss)``.

    ``key`` (one PRNG key) is split into the minibatch key and the loss key; the minibatch is
    ``task.batch(batch_key, data)`` (the train split, drawn inside the compiled program), and
    ``loss`` is the scalar minibatch loss *before* the update."""

    def step(carry, key):
        params, opt_state = carry
        batch_key, loss_key = jax.random.split(key)
        batch = task.batch(batch_key, data)
        loss, grads = jax.value_and_grad(task.loss)(params, loss_key, batch)
        updates, opt_state = tx.update(grads, opt_state, params, value=loss)
        return (optax.apply_updates(params, updates), opt_state), loss

    return step


def train(task: Any, tx: optax.GradientTransformationExtraArgs, params: Any, data: Any, keys):
    """Train ``params`` with ``tx`` for ``T = keys.shape[0]`` steps, one key per step.

    Returns ``((params, opt_state), losses)``: the trained params, the final optimizer state
    (``tx.init(params)`` at the start) and ``losses`` of shape ``[T]``, ``losses[t]`` the minibatch
    loss before update ``t + 1``. Pure: jit or vmap it as a whole."""
    return jax.lax.scan(train_step(task, tx, data), (params, tx.init(params)), keys)
