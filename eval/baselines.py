"""Candidates of an evaluation: optax baselines (swept or at a fixed rate) and learned optimizers.

A candidate is named by a string, as on the ``lopt-eval --optimizers`` command line:

    adamw_cos | nadamw_cos | lion_cos | muon   optax baselines with warmup + cosine decay over the
    | muon_rel | muon_rel_mup                  run (see :func:`warmup_cosine`), tuned over a grid;
                                               muon_rel: Muon, matrix steps relative to
                                               their initial RMS; muon_rel_mup: and
                                               zero-initialised matrices (muP readouts) x fan_in
    adam | adamw | sgd | lion | rmsprop        constant-rate optax baselines, tuned over a grid
    adam@1e-3                                  a baseline at one fixed learning rate (no sweep)
    scale_free_v7 | /path/to/saved_lopt        a learned optimizer: a shipped name (scale_free_v7
                                               is learned_opt.RECOMMENDED) or a saved file
    LABEL=SPEC                                 any of the above under the column name LABEL

Every candidate builds an ``optax.GradientTransformationExtraArgs`` from a *hyper-parameter*
``hp`` that may be a traced array, so one compiled program can ``vmap`` over it: the learning rate
(a float32 scalar) for baselines, the meta-parameters ``theta`` (a pytree) for learned optimizers.
A baseline factory receives the rate and the run's number of steps, so schedules know the horizon.

A candidate's :meth:`Candidate.fingerprint` is a hash of everything that produced its runs (a
baseline's settings and schedule; a learned optimizer's architecture settings and weights): the
evaluation keys its records by it, never by the label alone.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from learned_opt.scale_free import initial_rms_factor

WARMUP_FRACTION = 0.05


class EvalError(ValueError):
    """A user error in an evaluation request (unknown name, missing file, ...)."""


def warmup_cosine(lr: Any, num_steps: int) -> optax.Schedule:
    """Linear warm-up from 0 to ``lr`` over 5% of the run, then cosine decay to 0 at ``num_steps``.

    The same arithmetic as ``optax.warmup_cosine_decay_schedule(init_value=0.0, peak_value=lr,
    warmup_steps=max(1, int(0.05 * num_steps)), decay_steps=num_steps, end_value=0.0)``, built
    from its two parts so that ``lr`` may be a traced array (optax's function tests
    ``peak_value == 0`` in Python). With ``W`` the warm-up steps and ``T = num_steps``::

        lr(t) = lr * t / W                                      t <= W
        lr(t) = lr * 0.5 * (1 + cos(pi * min(t - W, T - W) / (T - W)))   t > W

    so ``lr(W) = lr`` (the peak) and ``lr(T) = 0``. Every ``*_cos`` baseline and ``muon`` use it.
    """
    if num_steps < 2:
        raise ValueError(f"warmup_cosine needs num_steps >= 2, got {num_steps}")
    warmup = max(1, int(WARMUP_FRACTION * num_steps))
    return optax.join_schedules(
        [
            optax.linear_schedule(init_value=0.0, end_value=lr, transition_steps=warmup),
            optax.cosine_decay_schedule(init_value=lr, decay_steps=num_steps - warmup, alpha=0.0),
        ],
        [warmup],
    )


def muon_dimension_numbers(params: Any) -> Any:
    """Muon's reshaping of each leaf: 2-D ``[in, out]`` matrices and 4-D HWIO conv kernels
    (reduced over H, W, I) are orthogonalised; every other leaf (biases, scales) gets Adam."""
    from optax.contrib import MuonDimensionNumbers

    def leaf(p):
        if p.ndim == 2:
            return MuonDimensionNumbers(reduction_axis=0, output_axis=1)
        if p.ndim == 4:
            return MuonDimensionNumbers(reduction_axis=(0, 1, 2), output_axis=3)
        return None

    return jax.tree.map(leaf, params)


def _muon(lr, num_steps):
    return optax.contrib.muon(
        learning_rate=warmup_cosine(lr, num_steps),
        muon_weight_dimension_numbers=muon_dimension_numbers,
    )


def scale_by_initial_rms(zero_init: str = "one") -> optax.GradientTransformation:
    """Multiply the update of each Muon leaf (2-D, 4-D HWIO) by ``RMS(p_0) sqrt(fan_in)``, with
    ``p_0`` the parameters ``init`` saw and fan_in the product of all dims but the last (where
    ``p_0 = 0``: by 1, or with ``zero_init="fan_in"`` by fan_in, a muP readout); other leaves pass
    through (``learned_opt.scale_free.initial_rms_factor``). After ``muon`` a matrix's step is
    then proportional to its initial scale: Muon's own step on a LeCun-initialised matrix (RMS
    1/sqrt(fan_in)), and unchanged in relative terms when a tensor is stored rescaled."""

    def init_fn(params):
        def leaf(p):
            if p.ndim not in (2, 4):
                return jnp.ones((), jnp.float32)
            return initial_rms_factor(p, zero_init)

        return jax.tree.map(leaf, params)

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, f: (u * f).astype(u.dtype), updates, state), state

    return optax.GradientTransformation(init_fn, update_fn)


def _muon_rel(lr, num_steps, zero_init="one"):
    return optax.chain(_muon(lr, num_steps), scale_by_initial_rms(zero_init))


@dataclasses.dataclass(frozen=True)
class Baseline:
    """An optax baseline: ``make(lr, num_steps) -> transform``; ``settings`` says what it runs
    (it enters the records' content key, so changing a baseline re-runs it)."""

    make: Callable[[Any, int], optax.GradientTransformation]
    settings: str
    schedule: str = "constant"
    # ``(opt_state, params) -> params`` where the loss is evaluated, when that is not where the
    # gradients are taken (Schedule-Free's averaged iterate x; the gradients are taken at y)
    eval_params: Callable[[Any, Any], Any] | None = None


_COS = "warmup_cosine(lr, num_steps): 5% linear warm-up, cosine decay to 0"

# Settings other than the rate and schedule are optax defaults.
BASELINES: dict[str, Baseline] = {
    "adam": Baseline(lambda lr, n: optax.adam(lr), "optax.adam(lr)"),
    "adamw": Baseline(
        lambda lr, n: optax.adamw(lr, weight_decay=1e-4), "optax.adamw(lr, weight_decay=1e-4)"
    ),
    "sgd": Baseline(lambda lr, n: optax.sgd(lr, momentum=0.9), "optax.sgd(lr, momentum=0.9)"),
    "lion": Baseline(lambda lr, n: optax.lion(lr), "optax.lion(lr)"),
    "rmsprop": Baseline(lambda lr, n: optax.rmsprop(lr), "optax.rmsprop(lr)"),
    "adamw_cos": Baseline(
        lambda lr, n: optax.adamw(warmup_cosine(lr, n), weight_decay=1e-4),
        "optax.adamw(schedule, weight_decay=1e-4)",
        _COS,
    ),
    "nadamw_cos": Baseline(
        lambda lr, n: optax.nadamw(warmup_cosine(lr, n), weight_decay=1e-4),
        "optax.nadamw(schedule, weight_decay=1e-4)",
        _COS,
    ),
    "lion_cos": Baseline(
        lambda lr, n: optax.lion(warmup_cosine(lr, n)), "optax.lion(schedule)", _COS
    ),
    "muon": Baseline(
        _muon,
        "optax.contrib.muon(schedule, muon_weight_dimension_numbers: 2-D (0->1), "
        "4-D HWIO ((0,1,2)->3), else Adam; other settings optax defaults)",
        _COS,
    ),
    "muon_rel": Baseline(
        _muon_rel,
        "muon, then Muon leaves times RMS(p_0) sqrt(fan_in) (1 where p_0 = 0) "
        "(eval.baselines.scale_by_initial_rms)",
        _COS,
    ),
    "schedule_free_adamw": Baseline(
        lambda lr, n: optax.contrib.schedule_free_adamw(
            lr, warmup_steps=max(1, int(0.05 * n)), weight_decay=1e-4
        ),
        "optax.contrib.schedule_free_adamw(lr, warmup_steps=5%, weight_decay=1e-4); losses "
        "evaluated at optax.contrib.schedule_free_eval_params",
        "schedule-free (5% warm-up, no decay)",
        eval_params=optax.contrib.schedule_free_eval_params,
    ),
    "prodigy": Baseline(
        lambda lr, n: optax.contrib.prodigy(lr),
        "optax.contrib.prodigy(lr) (lr multiplies the estimated step; its default is 1)",
    ),
    "muon_rel_mup": Baseline(
        functools.partial(_muon_rel, zero_init="fan_in"),
        "muon_rel, but zero-initialised Muon leaves (muP readouts) times fan_in",
        _COS,
    ),
}


def check_rate(rate: Any, where: str = "") -> float:
    """``float(rate)`` if it is a finite positive number, else :class:`EvalError` (one line)."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise EvalError(f"bad learning rate {rate!r}{where}") from None
    if not (math.isfinite(value) and value > 0):
        raise EvalError(f"learning rate must be positive and finite, got {rate!r}{where}")
    return value


def lr_grid(lr_min: float = 1e-4, lr_max: float = 1.0, num: int = 9) -> tuple[float, ...]:
    """Log-spaced learning rates ``lr_min * (lr_max/lr_min)**(i/(num-1))``, ``i = 0..num-1``."""
    if not (0 < lr_min <= lr_max < math.inf) or num < 1:
        raise ValueError(f"bad learning-rate grid: lr_min={lr_min}, lr_max={lr_max}, num={num}")
    if num == 1:
        return (float(lr_min),)
    return tuple(float(v) for v in np.geomspace(lr_min, lr_max, num))


DEFAULT_LR_GRID = lr_grid()


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

    def __post_init__(self):
        object.__setattr__(self, "_fingerprint", _fingerprint(self))

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 digits) of what produces this candidate's runs: a baseline's name,
        settings and schedule; a learned optimizer's ``to_description`` and weights (theta)."""
        return self._fingerprint

    @property
    def settings(self) -> dict:
        """The human-readable part of the fingerprint (stored in every record)."""
        if self.kind == "baseline":
            b = BASELINES[self.optimizer]
            return {"optimizer": self.optimizer, "settings": b.settings, "schedule": b.schedule}
        import learned_opt

        try:
            return {"learned": learned_opt.to_description(self.lopt)}
        except AttributeError:  # an object without to_config(): its dataclass repr
            return {"learned": repr(self.lopt)}

    @property
    def tuned(self) -> bool:
        """True for a baseline whose rate is chosen from a sweep of more than one rate."""
        return self.kind == "baseline" and len(self.rates) > 1

    def eval_params(self, opt_state: Any, params: Any) -> Any:
        """The parameters whose loss is evaluated: ``params``, or the baseline's own view of its
        state (Schedule-Free's averaged iterate)."""
        view = BASELINES[self.optimizer].eval_params if self.kind == "baseline" else None
        return params if view is None else view(opt_state, params)

    def make(self, hp: Any, *, num_steps: int, param_tags: Any = None):
        """The optax transform for hyper-parameter ``hp`` (learning rate, or theta)."""
        if self.kind == "baseline":
            return optax.with_extra_args_support(BASELINES[self.optimizer].make(hp, num_steps))
        return self.lopt.optimizer(hp, num_steps=num_steps, param_tags=param_tags)


def _fingerprint(c: Candidate) -> str:
    h = hashlib.sha256(json.dumps(c.settings, sort_keys=True, default=str).encode())
    if c.kind != "baseline":
        leaves, _ = jax.tree_util.tree_flatten_with_path(c.theta)
        for path, leaf in leaves:
            arr = np.ascontiguousarray(np.asarray(leaf))
            h.update(f"{jax.tree_util.keystr(path)}:{arr.dtype}:{arr.shape}".encode())
            h.update(arr.tobytes())
    return h.hexdigest()[:16]


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
        rates = tuple(check_rate(r, f" in the grid of {spec!r}") for r in rates)
        if not rates:
            raise EvalError(f"baseline {spec!r} needs at least one learning rate")
        return Candidate(label=label or spec, kind="baseline", optimizer=spec, rates=rates)
    name, at, rate_text = spec.partition("@")
    if at and name in BASELINES:
        rate = check_rate(rate_text, f" in optimizer {spec!r}")
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
