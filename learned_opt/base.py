"""The contract every learned optimizer in this package follows.

A learned optimizer is a frozen dataclass of *static* settings (sizes, feature choices). Its
meta-parameters ``theta`` are a plain pytree of arrays that is never stored on the object:

    lopt = ScaleFreeLOpt()
    theta = lopt.init_meta_params(jax.random.key(0))
    tx = lopt.optimizer(theta, num_steps=1000)   # optax.GradientTransformationExtraArgs
    state = tx.init(params)
    updates, state = tx.update(grads, state, params, value=loss)
    params = optax.apply_updates(params, updates)

``optimizer`` is a pure function of ``theta`` (which may be a traced array, e.g. inside
``jax.vmap`` over particles in the meta-trainer), so the meta-trainer runs exactly the transform
that users load: there is no second copy of the update rule.

Keyword arguments of ``optimizer``:
  num_steps:  the planned number of training steps (an int >= 1, or a traced int array), the
              horizon of the fraction-of-training-done feature (``HyperLOpt``, ``ScaleFreeLOpt``)
              and of ``ScaleFreeLOpt``'s warmup + cosine prior (required there; the update is 0
              from step ``num_steps`` on). ``None``: the architecture's default (``HyperLOpt``:
              1,000; ``MLPLOpt`` does not use it). Anything else (0, a float, a string, a bool)
              raises ``ValueError`` naming it.
  param_tags: optional pytree (same structure as params) of 'input' / 'hidden' / 'output' / None
              strings (muP tags); when None they are derived from the params
              (:func:`learned_opt.mup_tags`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax
import optax

MetaParams = Any  # a pytree of float32 arrays


@runtime_checkable
class LearnedOptimizer(Protocol):
    """Protocol for learned optimizers (see module docstring)."""

    name: str  # architecture name used by save/load, e.g. "mlp" or "hyper"

    def init_meta_params(self, key: jax.Array) -> MetaParams: ...

    def optimizer(
        self, theta: MetaParams, *, num_steps: Any = None, param_tags: Any = None
    ) -> optax.GradientTransformationExtraArgs: ...

    def to_config(self) -> dict:
        """JSON-serialisable static settings; ``cls(**to_config())`` rebuilds the object."""
        ...
