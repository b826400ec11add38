"""The settings and the weights' shapes of the scale-free learned optimizer, without JAX.

:class:`ScaleFreeSettings` holds the fields of ``learned_opt.ScaleFreeLOpt`` with the same
defaults and ranges (``tests/learned_opt/test_torch_port.py`` checks that they agree), read from
the ``config`` of a ``lopt.json``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import numpy as np

from learned_opt import files

ZERO_INIT_FACTORS = ("one", "fan_in")
NUM_OUTPUTS = 5  # o_s, o_a, o_ns, o_adam, o_grad


def _in_range(ok, text):
    return ok, text


_DECAY = _in_range(lambda x: 0 <= x < 1, "a number in [0, 1)")
_POSITIVE = _in_range(lambda x: x > 0, "a finite number > 0")
_NON_NEGATIVE = _in_range(lambda x: x >= 0, "a finite number >= 0")
_RANGES = {
    "learning_rate": _POSITIVE,
    "hidden": _in_range(lambda x: x >= 1, "an integer >= 1"),
    "muon_beta": _DECAY,
    "adam_b1": _DECAY,
    "adam_b2": _DECAY,
    "eps": _POSITIVE,
    "ns_steps": _in_range(lambda x: x >= 1, "an integer >= 1"),
    "rms_floor": _POSITIVE,
    "ratio_decay": _DECAY,
    "init_scale": _NON_NEGATIVE,
    "log_scale_bound": _POSITIVE,
    "alpha_bound": _POSITIVE,
    "mixing_fan_cap": _in_range(lambda x: x >= 0, "a finite number >= 0 (0: off)"),
}
_INTEGERS = ("hidden", "ns_steps")
_SEQUENCE_RANGES = {"loss_decays": _DECAY, "timescales": _POSITIVE}


@dataclasses.dataclass(frozen=True)
class ScaleFreeSettings:
    """The settings of a ``scale_free`` optimizer (``learned_opt.ScaleFreeLOpt``'s fields; the
    update rule and the meaning of each field are in ``learned_opt/scale_free.py``)."""

    learning_rate: float = 0.02
    hidden: int = 32
    muon_beta: float = 0.95
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    eps: float = 1e-8
    ns_steps: int = 5
    rms_floor: float = 1e-3
    loss_decays: tuple[float, float] = (0.9, 0.99)
    ratio_decay: float = 0.9
    timescales: tuple[float, ...] = (10, 100, 1000, 10000)
    init_scale: float = 1.0
    relative: bool = True
    log_scale_bound: float = 4.0
    alpha_bound: float = 1.0
    zero_init: str = "fan_in"
    mixing_fan_cap: float = 64.0

    def __post_init__(self):
        for f in ("loss_decays", "timescales"):
            value = getattr(self, f)
            if isinstance(value, list | tuple):
                object.__setattr__(self, f, tuple(value))
        who = type(self).__name__
        for name, (ok, text) in _RANGES.items():
            value = getattr(self, name)
            whole = name not in _INTEGERS or isinstance(value, int)
            if not (_is_real(value) and whole and ok(value)):
                raise ValueError(f"{who}: {name} must be {text}, got {value!r}")
        for name, (ok, text) in _SEQUENCE_RANGES.items():
            for x in getattr(self, name):
                if not (_is_real(x) and ok(x)):
                    raise ValueError(
                        f"{who}: {name} has the entry {x!r}; every entry must be {text}"
                    )
        if len(self.loss_decays) != 2:
            raise ValueError(f"{who}: loss_decays must be (fast, slow), got {self.loss_decays}")
        if not isinstance(self.relative, bool):
            raise ValueError(f"{who}: relative must be true or false, got {self.relative!r}")
        if self.zero_init not in ZERO_INIT_FACTORS:
            raise ValueError(
                f"{who}: zero_init must be one of {ZERO_INIT_FACTORS}, got {self.zero_init!r}"
            )

    @classmethod
    def from_config(cls, config: dict) -> ScaleFreeSettings:
        """The settings of a ``lopt.json``'s ``config`` (every field optional, none unknown);
        ``ValueError`` naming the setting otherwise."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - set(fields))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown} for architecture 'scale_free'")
        for key, value in config.items():
            files.check_setting("scale_free", key, value, fields[key].default)
        return cls(**config)

    @property
    def num_features(self) -> int:
        """``T``: 4 schedule and loss features, the step embeddings, 4 log RMS, the signal to
        noise ratio, 2 log fans, 3 muP tags, the Muon flag, the update ratio and the size."""
        return 4 + len(self.timescales) + 5 + 2 + 3 + 1 + 2


def _is_real(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class Spec(NamedTuple):
    """Shape and dtype of one array of theta (what ``files.check_theta`` compares with)."""

    shape: tuple[int, ...]
    dtype: np.dtype = np.dtype(np.float32)


def theta_template(settings: ScaleFreeSettings) -> dict[str, Spec]:
    """theta's arrays: the per-tensor MLP ``T -> H -> H -> 5`` (``w`` laid out (in, out))."""
    t, h = settings.num_features, settings.hidden
    shapes = {"w1": (t, h), "b1": (h,), "w2": (h, h), "b2": (h,)}
    shapes |= {"w3": (h, NUM_OUTPUTS), "b3": (NUM_OUTPUTS,)}
    return {k: Spec(s) for k, s in shapes.items()}
