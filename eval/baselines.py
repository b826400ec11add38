"""Candidates of an evaluation: optax baselines (swept or at a fixed rate) and learned optimizers.

A candidate is named by a string, as on the ``lopt-eval --optimizers`` command line:

    adam | adamw | sgd | lion | rmsprop    an optax baseline, tuned over a learning-rate grid
    adam@1e-3                               the baseline at one fixed learning rate (no sweep)
    hyper_small_v2 | /path/to/saved_lopt    a learned optimizer: a shipped name or a saved file
    LABEL=SPEC                              any of the above under the column name LABEL

Every candidate builds an ``optax.GradientTransformationExtraArgs`` from a *hyper-parameter*
``hp`` that may be a traced array, so one compiled program can ``vmap`` over it: the learning rate
(a float32 scalar) for baselines, the meta-parameters ``theta`` (a pytree) for learned optimizers.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optax

# name -> factory(learning_rate) -> transform. Settings other than the rate are optax defaults.
BASELINES: dict[str, Callable[[Any], optax.GradientTransformation]] = {
    "adam": lambda lr: optax.adam(lr),
    "adamw": lambda lr: optax.adamw(lr, weight_decay=1e-4),
    "sgd": lambda lr: optax.sgd(lr, momentum=0.9),
    "lion": lambda lr: optax.lion(lr),
    "rmsprop": lambda lr: optax.rmsprop(lr),
}


def lr_grid(lr_min: float = 1e-4, lr_max: float = 1e-1, num: int = 7) -> tuple[float, ...]:
    """Log-spaced learning rates ``lr_min * (lr_max/lr_min)**(i/(num-1))``, ``i = 0..num-1``."""
    if not (0 < lr_min <= lr_max) or num < 1:
        raise ValueError(f"bad learning-rate grid: lr_min={lr_min}, lr_max={lr_max}, num={num}")
    if num == 1:
        return (float(lr_min),)
    return tuple(float(v) for v in np.geomspace(lr_min, lr_max, num))


DEFAULT_LR_GRID = lr_grid()


class EvalError(ValueError):
    """A user error in an evaluation request (unknown name, missing file, ...)."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One column of the evaluation table.

    label:     the column name (unique in an evaluation), e.g. "adam", "adam@0.001".
    kind:      "baseline" or "learned".
    optimizer: the baseline name ("adam", ...) or the learned optimizer's architecture name.
    rates:     learning rates to run (baselines: the grid, or one fixed rate); () for learned.
    source:    for a learned optimizer, the shipped name or path it was loaded from.
    lopt, theta: for a learned optimizer, the architecture object and its meta-parameters.
    """

    label: str
    kind: str
    optimizer: str
    rates: tuple[float, ...] = ()
    source: str | None = None
    lopt: Any = dataclasses.field(default=None, compare=False, repr=False)
    theta: Any = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def tuned(self) -> bool:
        """True for a baseline whose rate is chosen from a sweep of more than one rate."""
        return self.kind == "baseline" and len(self.rates) > 1

    def make(self, hp: Any, *, num_steps: int, param_tags: Any = None):
        """The optax transform for hyper-parameter ``hp`` (learning rate, or theta)."""
        if self.kind == "baseline":
            return optax.with_extra_args_support(BASELINES[self.optimizer](hp))
        return self.lopt.optimizer(hp, num_steps=num_steps, param_tags=param_tags)


def _known_names_message() -> str:
    msg = f"known baselines: {', '.join(sorted(BASELINES))} (optionally NAME@RATE, e.g. adam@1e-3)"
    try:
        import learned_opt

        names = list(learned_opt.pretrained_names())
        msg += f"; shipped learned optimizers: {', '.join(names) if names else '(none)'}"
    except (ImportError, AttributeError):
        pass
    return msg + "; or a path to a saved learned optimizer"


def _load_learned(spec: str, label: str) -> Candidate:
    import learned_opt

    looks_like_path = os.sep in spec or spec.startswith(".") or os.path.exists(spec)
    if looks_like_path and not os.path.exists(spec):
        raise EvalError(f"learned optimizer file not found: {spec!r}")
    if not looks_like_path:
        shipped = list(getattr(learned_opt, "pretrained_names", lambda: [])())
        if spec not in shipped:
            raise EvalError(f"unknown optimizer {spec!r}: {_known_names_message()}")
    try:
        lopt, theta = learned_opt.load_meta_params(spec)
    except (FileNotFoundError, ValueError) as e:  # learned_opt.LoadError is a ValueError
        raise EvalError(f"learned optimizer {spec!r} could not be loaded: {e}") from e
    return Candidate(
        label=label,
        kind="learned",
        optimizer=getattr(lopt, "name", type(lopt).__name__),
        source=spec,
        lopt=lopt,
        theta=theta,
    )


def parse_candidate(spec: str, rates: Sequence[float] = DEFAULT_LR_GRID) -> Candidate:
    """Turn one ``--optimizers`` item into a :class:`Candidate` (see the module docstring).

    Raises:
      EvalError: for an unknown name (listing the known ones), a bad rate, or a missing file.
    """
    spec = spec.strip()
    if not spec:
        raise EvalError("empty optimizer name in the list")
    label = None
    if "=" in spec:
        label, spec = (s.strip() for s in spec.split("=", 1))
        if not label or not spec:
            raise EvalError(f"bad LABEL=SPEC optimizer item {label}={spec}")
    if spec in BASELINES:
        rates = tuple(float(r) for r in rates)
        if not rates:
            raise EvalError(f"baseline {spec!r} needs at least one learning rate")
        return Candidate(label=label or spec, kind="baseline", optimizer=spec, rates=rates)
    name, at, rate_text = spec.partition("@")
    if at and name in BASELINES:
        try:
            rate = float(rate_text)
        except ValueError:
            raise EvalError(f"bad learning rate {rate_text!r} in optimizer {spec!r}") from None
        if not rate > 0:
            raise EvalError(f"learning rate must be positive in optimizer {spec!r}")
        return Candidate(
            label=label or f"{name}@{rate:g}", kind="baseline", optimizer=name, rates=(rate,)
        )
    if at:
        raise EvalError(f"unknown optimizer {name!r} in {spec!r}: {_known_names_message()}")
    default_label = os.path.basename(os.path.normpath(spec)) if os.sep in spec else spec
    return _load_learned(spec, label or default_label)


def parse_candidates(
    specs: str | Sequence[str], rates: Sequence[float] = DEFAULT_LR_GRID
) -> list[Candidate]:
    """Parse a comma-separated string (or a list) of optimizer items; labels must be unique."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    if not specs:
        raise EvalError(f"no optimizers given: {_known_names_message()}")
    out = [parse_candidate(s, rates) for s in specs]
    labels = [c.label for c in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise EvalError(f"duplicate optimizer labels {dupes}; rename with LABEL=SPEC")
    return out
