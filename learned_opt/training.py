"""Helpers for dropping a learned optimizer into flax training loops.

flax.linen's ``TrainState.apply_gradients(grads=...)`` calls ``tx.update(grads, opt_state,
params)`` and cannot forward the loss that learned optimizers read as ``value``. Use::

    state = learned_opt.apply_gradients(state, grads=grads, value=loss)

instead (same result as ``TrainState.apply_gradients`` for optimizers that ignore ``value``).
flax NNX's ``nnx.Optimizer.update(model, grads, value=loss)`` forwards it already.
"""

from __future__ import annotations

from typing import Any

import optax


def apply_gradients(state: Any, *, grads: Any, value: Any, **kwargs: Any) -> Any:
    """``state.apply_gradients`` of a flax ``TrainState``, forwarding ``value`` to ``tx.update``.

    Returns ``state.replace(step=step + 1, params=new_params, opt_state=new_opt_state,
    **kwargs)``; ``state`` needs the fields ``step``, ``params``, ``opt_state`` and ``tx``.
    """
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params, value=value)
    params = optax.apply_updates(state.params, updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, **kwargs)
