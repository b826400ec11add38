"""The per-tensor LSTM learned optimizer (``learned_opt.HyperLOpt``, the archived
``hyper_small_*``) as a ``torch.optim.Optimizer``.

The update rule is the optax transform's (``learned_opt/hyper.py`` states it in full): per
tensor, an LSTM of width ``H`` reads ``T`` tensor features (fraction done, step embeddings, the
loss trend, log RMS of the accumulators and of ``p``, a signal-to-noise ratio, the rank, the
size) and a linear generator turns its output into the weights of a per-parameter MLP ``F -> W ->
1`` and a log step size; per parameter with 1-based step ``t``::

    m_k <- b_k m_k + (1 - b_k) g,   v <- b_v v + (1 - b_v) g^2
    r = 1 / (sqrt(v / (1 - b_v^t)) + eps)
    x = (m_1 r / (1 - b_1^t), ..., m_K r / (1 - b_K^t), g r)                  (F = K + 1)
    p <- p - exp(log_lr) mup_scale (w2 . relu(x W1 + b1) + b2)

``mup_scale`` is 1/fan_in on ``'hidden'`` tensors when ``mup`` (fan-in by the PyTorch layout,
``learned_opt.torch.layout``), else 1. State per parameter: ``accumulators`` ((K + 1, *n)
float32: the momenta and v), ``lstm_h`` and ``lstm_c`` ((H,)), ``mup_scale`` and ``step``; the
global ``count`` and ``loss_ema`` under ``"learned_opt"``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from learned_opt import files
from learned_opt.torch import layout as lay
from learned_opt.torch.scale_free import (
    _F32,
    ScaleFreeOptimizer,
    _loss_ema,
)
from learned_opt.torch.settings import Spec, _is_real

_MAX_RANK = 4  # ranks >= 4 share one one-hot slot


@dataclasses.dataclass(frozen=True)
class HyperSettings:
    """The settings of a ``hyper`` optimizer (``learned_opt.HyperLOpt``'s fields)."""

    lstm_hidden: int = 32
    mlp_hidden: int = 4
    momentum_decays: tuple[float, ...] = (0.9, 0.99)
    rms_decay: float = 0.999
    loss_decays: tuple[float, float] = (0.9, 0.99)
    timescales: tuple[float, ...] = (10, 100, 1000, 10000)
    default_num_steps: int = 1000
    step_init: float = 1e-3
    eps: float = 1e-8
    generator_init_scale: float = 1e-2
    mup: bool = False

    def __post_init__(self):
        for f in ("momentum_decays", "loss_decays", "timescales"):
            value = getattr(self, f)
            if isinstance(value, list | tuple):
                object.__setattr__(self, f, tuple(value))
        who = type(self).__name__
        ints = {"lstm_hidden": 1, "mlp_hidden": 2, "default_num_steps": 1}
        for name, lo in ints.items():
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= lo):
                raise ValueError(f"{who}: {name} must be an integer >= {lo}, got {value!r}")
        checks = {
            "rms_decay": (lambda x: 0 <= x < 1, "a number in [0, 1)"),
            "step_init": (lambda x: x > 0, "a finite number > 0"),
            "eps": (lambda x: x > 0, "a finite number > 0"),
            "generator_init_scale": (lambda x: x >= 0, "a finite number >= 0"),
        }
        for name, (ok, text) in checks.items():
            value = getattr(self, name)
            if not (_is_real(value) and ok(value)):
                raise ValueError(f"{who}: {name} must be {text}, got {value!r}")
        sequences = {
            "momentum_decays": (lambda x: 0 <= x < 1, "a number in [0, 1)"),
            "loss_decays": (lambda x: 0 <= x < 1, "a number in [0, 1)"),
            "timescales": (lambda x: x > 0, "a finite number > 0"),
        }
        for name, (ok, text) in sequences.items():
            for x in getattr(self, name):
                if not (_is_real(x) and ok(x)):
                    raise ValueError(
                        f"{who}: {name} has the entry {x!r}; every entry must be {text}"
                    )
        if not self.momentum_decays:
            raise ValueError(f"{who}: momentum_decays must not be empty")
        if len(self.loss_decays) != 2:
            raise ValueError(f"{who}: loss_decays must be (fast, slow), got {self.loss_decays}")
        if not isinstance(self.mup, bool):
            raise ValueError(f"{who}: mup must be true or false, got {self.mup!r}")

    @classmethod
    def from_config(cls, config: dict) -> HyperSettings:
        """The settings of a ``lopt.json``'s ``config``; ``ValueError`` naming the setting."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - set(fields))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown} for architecture 'hyper'")
        for key, value in config.items():
            files.check_setting("hyper", key, value, fields[key].default)
        return cls(**config)

    @property
    def num_tensor_features(self) -> int:
        """``T``: fraction done, step embeddings, 2 loss trends, K + 2 log RMS, the
        signal-to-noise ratio, the rank one-hot and the size."""
        return 1 + len(self.timescales) + 2 + len(self.momentum_decays) + 2 + 1 + _MAX_RANK + 2

    @property
    def num_param_features(self) -> int:
        """``F = K + 1``."""
        return len(self.momentum_decays) + 1

    @property
    def num_generated(self) -> int:
        """Outputs of the generator: W1, b1, w2, b2 and log_lr."""
        return self.num_param_features * self.mlp_hidden + 2 * self.mlp_hidden + 2


def hyper_template(settings: HyperSettings) -> dict[str, dict[str, Spec]]:
    """theta's arrays: the LSTM (gates i, f, g, o) and the generator."""
    t, h, p = settings.num_tensor_features, settings.lstm_hidden, settings.num_generated
    return {
        "lstm": {"wx": Spec((t, 4 * h)), "wh": Spec((h, 4 * h)), "b": Spec((4 * h,))},
        "generator": {"w": Spec((h, p)), "b": Spec((p,))},
    }


class HyperOptimizer(ScaleFreeOptimizer):
    """``learned_opt.HyperLOpt``'s update (module docstring) on PyTorch parameters.

    Built by :func:`learned_opt.torch.load` from ``hyper`` weights. Arguments, group options
    (``layout`` and ``tag``; no ``lr``: the step size is generated), ``step`` and the state
    dict are :class:`ScaleFreeOptimizer`'s; ``theta`` is ``{"lstm": {...}, "generator":
    {...}}``.
    """

    def __init__(self, params, theta, settings: HyperSettings, *, num_steps: int):
        super().__init__(params, {}, settings, num_steps=num_steps)
        self._theta = {
            group: {k: v.detach().to(torch.float32) for k, v in arrays.items()}
            for group, arrays in theta.items()
        }

    def _defaults(self) -> dict[str, Any]:
        return {}  # no lr: the step size is generated

    def _init_param_state(self, p: torch.Tensor, layout: str) -> None:
        del p, layout  # nothing depends on the initial value

    def _mup_scales(self) -> dict[int, float]:
        """The muP step multiplier of each parameter (by ``id``): 1/fan_in on ``'hidden'``."""
        tags = self._tags()
        scales = {}
        for g in self.param_groups:
            for p in g["params"]:
                hidden = self.settings.mup and tags[id(p)] == "hidden"
                scales[id(p)] = 1.0 / lay.fans(tuple(p.shape), g["layout"])[0] if hidden else 1.0
        return scales

    def _update(self, work: list, loss: Any) -> None:
        """One update of the (group, parameter) pairs of ``work``: accumulators and statistics,
        the LSTM and the generator on all tensors at once, then each per-parameter MLP."""
        s = self.settings
        device = work[0][1].device
        k, h = len(s.momentum_decays), s.lstm_hidden
        decays = [*s.momentum_decays, s.rms_decay]
        glob = self._global_state(device)
        count = glob["count"]
        glob["loss_ema"] = _loss_ema(glob["loss_ema"], count, loss, s.loss_decays)
        scales = self._mup_scales()
        means, hs, cs = [], [], []
        for _, p in work:
            st = self.state[p]
            if "accumulators" not in st:
                st["step"] = 0
                st["accumulators"] = torch.zeros(
                    (k + 1, *p.shape), dtype=torch.float32, device=p.device
                )
                st["lstm_h"] = torch.zeros(h, dtype=torch.float32, device=p.device)
                st["lstm_c"] = torch.zeros(h, dtype=torch.float32, device=p.device)
            st["step"] += 1
            g = p.grad.to(torch.float32)
            acc = st["accumulators"]
            for j, b in enumerate(decays):
                alpha = float(_F32(1) - _F32(b))  # float32 arithmetic, as the optax transform
                if j < k:
                    acc[j].mul_(b).add_(g, alpha=alpha)
                else:
                    acc[j].mul_(b).addcmul_(g, g, value=alpha)
            n = max(p.numel(), 1)
            sums = [torch.linalg.vector_norm(acc[j]).square() for j in range(k + 1)]
            sums.append(torch.linalg.vector_norm(p.detach().to(torch.float32)).square())
            means.append((torch.stack(sums) / n).to(device))
            hs.append(st["lstm_h"].to(device))
            cs.append(st["lstm_c"].to(device))
        x = self._hyper_features(work, torch.stack(means), glob["loss_ema"], count)
        if self._theta["lstm"]["wx"].device != device:
            self._theta = {
                group: {n_: v.to(device) for n_, v in arrays.items()}
                for group, arrays in self._theta.items()
            }
        lstm, gen_p = self._theta["lstm"], self._theta["generator"]
        z = x @ lstm["wx"] + torch.stack(hs) @ lstm["wh"] + lstm["b"]
        i, f, gg, o = torch.split(z, h, dim=-1)
        c = torch.sigmoid(f) * torch.stack(cs) + torch.sigmoid(i) * torch.tanh(gg)
        hh = torch.sigmoid(o) * torch.tanh(c)
        gen = (hh @ gen_p["w"] + gen_p["b"]).tolist()  # (N, P): one transfer per step
        for row, (_, p) in enumerate(work):
            st = self.state[p]
            st["lstm_h"], st["lstm_c"] = hh[row].to(p.device), c[row].to(p.device)
            u = self._param_update(gen[row], p, scales[id(p)])
            p.add_(u.to(p.dtype))
        glob["count"] = count + 1

    def _hyper_features(self, work, means, loss_ema, count) -> torch.Tensor:
        """The (N, T) LSTM inputs from ``means`` (N, K + 2): mean m_k^2, mean v^2, mean p^2."""
        s = self.settings
        k = len(s.momentum_decays)
        frac = np.clip(_F32(count) / _F32(max(self.num_steps, 1)), _F32(0), _F32(2))
        embed = np.tanh(_F32(count) / np.asarray(s.timescales, _F32))
        fast, slow, first = loss_ema[0], loss_ema[1], loss_ema[2]
        trend = torch.tanh((fast - slow) / (torch.abs(slow) + 1e-8))
        progress = torch.tanh((fast - first) / (torch.abs(first) + 1e-8))
        device = means.device
        shared = torch.cat(
            [
                torch.tensor([float(frac), *map(float, embed)], device=device),
                torch.stack([trend, progress]).to(device),
            ]
        )
        powers = torch.tensor([0.5] * k + [0.25, 0.5], dtype=torch.float32, device=device)
        logs = torch.clamp(powers * torch.log(means + 1e-30), -80.0, 80.0)
        snr = torch.clamp(logs[:, 0] - logs[:, -2], -10.0, 10.0)
        static = []
        for _, p in work:
            rank = [0.0] * (_MAX_RANK + 1)
            rank[min(p.ndim, _MAX_RANK)] = 1.0
            static.append([*rank, 0.1 * math.log1p(p.numel())])
        static = torch.tensor(static, dtype=torch.float32, device=device)
        n = len(work)
        return torch.cat([shared.expand(n, -1), 0.1 * logs, snr[:, None], static], 1)

    def _param_update(self, gen: list[float], p: torch.Tensor, mup_scale: float):
        """The per-parameter MLP of one tensor: ``-exp(log_lr) mup_scale (w2 . relu(x W1 + b1)
        + b2)`` with ``x`` as in the module docstring, as elementwise passes with the generated
        weights (``gen``, the generator's outputs for this tensor) folded into float32 scalars
        as the optax transform folds them. float32, ``p``'s shape."""
        s = self.settings
        st = self.state[p]
        f, w, k = s.num_param_features, s.mlp_hidden, len(s.momentum_decays)
        t = _F32(st["step"])
        bias = [_F32(1) - _F32(b) ** t for b in (*s.momentum_decays, s.rms_decay)]
        gen32 = np.asarray(gen, np.float32)
        in_scale = [_F32(1) / b for b in bias[:k]] + [_F32(1)]
        w1 = gen32[: f * w].reshape(f, w) * np.asarray(in_scale, np.float32)[:, None]
        b1 = gen32[f * w : f * w + w]
        step = -np.exp(gen32[-1]) * _F32(mup_scale)
        w2, b2 = gen32[f * w + w : f * w + 2 * w] * step, gen32[-2] * step
        acc = st["accumulators"]
        rsqrt = float(_F32(1) / np.sqrt(bias[k]))
        r = torch.sqrt(acc[k]).mul_(rsqrt).add_(s.eps).reciprocal_()
        xs = [acc[j] * r for j in range(k)] + [p.grad.to(torch.float32) * r]
        d = None
        for j in range(w):
            pre = torch.mul(xs[0], float(w1[0, j])).add_(float(b1[j]))
            for i in range(1, f):
                pre.add_(xs[i], alpha=float(w1[i, j]))
            pre.relu_()
            if d is None:
                d = pre.mul_(float(w2[j])).add_(float(b2))
            else:
                d.add_(pre, alpha=float(w2[j]))
        return d
