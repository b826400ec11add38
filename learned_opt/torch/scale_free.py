"""The scale-free learned optimizer (``learned_opt.ScaleFreeLOpt``) as a ``torch.optim.Optimizer``.

The update rule is the optax transform's (``learned_opt/scale_free.py`` states it in full), step
for step: per parameter ``p`` with gradient ``g`` and 1-based step ``t``::

    m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2          (b1 = muon_beta on Muon params)
    m^ = b1 m / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t)        Nesterov, bias-corrected
    d_ns = NS_k(m^) sqrt(max(1, fan_out / fan_in))               Muon params only
    d_adam = m^ / (sqrt(v / (1 - b2^t)) + eps),  d_grad = g / (sqrt(v / (1 - b2^t)) + eps)
    o = MLP_theta(features of the tensor)                        5 outputs per tensor
    d = (e_ns + o_ns) d_ns + c ((e_adam + o_adam) d_adam + o_grad d_grad)
    p <- p - lr prior(t - 1) r exp(B tanh(o_s / B)) max(RMS(p), floor)^(A tanh(o_a / A)) d

with ``(e_ns, e_adam) = (1, 0)`` on Muon params and ``(0, 1)`` elsewhere, ``c`` the mixing cap,
``r`` relative Muon's factor from the initial RMS and ``prior`` the warmup + cosine schedule over
``num_steps``. The roles (Muon or not, fan-in, fan-out) of a PyTorch tensor are decided in
``learned_opt.torch.layout``: ``nn.Linear`` and conv weights are ``(out, in, *kernel)``.

State: per parameter ``exp_avg`` (m), ``exp_avg_sq`` (v), ``ratio_ema`` and ``log_ref``
(float32, whatever the parameter's dtype) and ``step``; under the key ``"learned_opt"`` the
global ``count`` and ``loss_ema`` (fast EMA, slow EMA, first value of the loss).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from learned_opt.torch import layout as lay
from learned_opt.torch.settings import ScaleFreeSettings

NS_COEFFS = (3.4445, -4.7750, 2.0315)  # Muon's quintic Newton-Schulz coefficients
GLOBAL = "learned_opt"  # the key of the global state in ``Optimizer.state``
_F32 = np.float32


def newton_schulz(x: torch.Tensor, steps: int, eps: float) -> torch.Tensor:
    """Muon's orthogonalisation of a float32 matrix ``x`` (m, n), about U V^T of its SVD.

    ``X = x / (||x||_F + eps)`` on the wide orientation (transposed when m > n), then ``steps``
    times ``X <- a X + (b A + c A A) X`` with ``A = X X^T`` and (a, b, c) = NS_COEFFS.

    Returns:
      An (m, n) float32 tensor.
    """
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    x = x / (torch.linalg.vector_norm(x) + eps)
    a, b, c = NS_COEFFS
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if transposed else x


def warmup_cosine(count: int, num_steps: int) -> np.float32:
    """The schedule prior at 0-based ``count`` (float32 arithmetic, as the optax transform):
    linear warmup 0 -> 1 over ``w = max(1, num_steps // 20)`` steps, then
    ``0.5 (1 + cos(pi min(count - w, T - w) / (T - w)))``, 0 from ``num_steps`` on."""
    total = max(num_steps, 1)
    warm = max(total // 20, 1)
    w, decay, t = _F32(warm), _F32(max(total - warm, 1)), _F32(count)
    if t < w:
        return t / w
    return _F32(0.5) * (_F32(1) + np.cos(_F32(np.pi) * np.clip(t - w, _F32(0), decay) / decay))


def _rms(x: torch.Tensor) -> torch.Tensor:
    """sqrt(mean(x^2) + 1e-30), a 0-d float32 tensor (0 elements: sqrt(1e-30))."""
    n = max(x.numel(), 1)
    return torch.sqrt(torch.linalg.vector_norm(x).square() / n + 1e-30)


def _bias(beta: float, t: int) -> float:
    """``1 - beta^t`` in float32 (the optax transform's arithmetic)."""
    return float(_F32(1) - _F32(beta) ** _F32(t))


class ScaleFreeOptimizer(torch.optim.Optimizer):
    """``learned_opt.ScaleFreeLOpt``'s update (module docstring) on PyTorch parameters.

    Use :func:`learned_opt.torch.load` to build one from saved weights. ``step(closure)`` or
    ``step(loss=loss)``: the loss is a feature (its trend), so one of the two is required.

    Args:
      params: parameters or parameter groups (``model.parameters()``,
        ``model.named_parameters()``, or dicts with ``"params"``), floating point, dense.
        Group options: ``lr`` (the rule's base step, default the saved ``learning_rate``;
        another value departs from what was meta-trained), ``layout`` (``"out_in"``, PyTorch's
        ``nn.Linear`` / conv layout, the default; ``"in_out"`` for ``nn.Embedding`` tables and
        tensors in flax's layout) and ``tag`` (the muP tag ``"input"``, ``"hidden"``,
        ``"output"`` or ``None``; default ``"auto"``: by position, as ``learned_opt.mup_tags``).
      theta: the meta-parameters, float32 tensors ``{"w1": (T, H), "b1": (H,), "w2": (H, H),
        "b2": (H,), "w3": (H, 5), "b3": (5,)}``.
      settings: the architecture's settings.
      num_steps: the planned number of training steps (an int >= 1); the schedule reaches 0
        there and the optimizer stops moving.
    """

    def __init__(
        self,
        params: Iterable[Any],
        theta: dict[str, torch.Tensor],
        settings: ScaleFreeSettings,
        *,
        num_steps: int,
    ):
        check_num_steps(num_steps)
        self.settings = settings
        self.num_steps = int(num_steps)
        self._theta = {k: v.detach().to(torch.float32) for k, v in theta.items()}
        super().__init__(params, {"layout": "out_in", "tag": "auto", **self._defaults()})

    def _defaults(self) -> dict[str, Any]:
        """Group options of this rule besides ``layout`` and ``tag``."""
        return {"lr": self.settings.learning_rate}

    # ------------------------------------------------------------------ set-up
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (checked: floating-point parameters, a known layout and tag) and record
        the relative factor ``log r`` of its parameters from their current (initial) values."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group["layout"] not in lay.LAYOUTS:
            raise ValueError(
                f"learned_opt.torch: param group option 'layout' is {group['layout']!r}; it must "
                f"be one of {lay.LAYOUTS}"
            )
        if group["tag"] not in (*lay.TAGS, None, "auto"):
            raise ValueError(
                f"learned_opt.torch: param group option 'tag' is {group['tag']!r}; it must be "
                f"one of {(*lay.TAGS, None, 'auto')}"
            )
        for i, p in enumerate(group["params"]):
            if not p.is_floating_point():
                raise ValueError(
                    f"learned_opt.torch: parameter {_name(group, i, len(self.param_groups) - 1)} "
                    f"has dtype {p.dtype}; only floating-point parameters (float32, bfloat16, "
                    "...) can be optimised"
                )
            self._init_param_state(p, group["layout"])

    def _init_param_state(self, p: torch.Tensor, layout: str) -> None:
        """State a parameter needs from its initial value: its ``log_ref``."""
        self.state[p]["log_ref"] = self._log_ref(p, layout)

    def _log_ref(self, p: torch.Tensor, layout: str) -> torch.Tensor:
        """log r of a parameter at its initial value ``p0``: on a non-empty Muon parameter, when
        ``relative``, log(RMS(p0) sqrt(fan_in)) (where p0 = 0: log 1 or log fan_in by
        ``zero_init``); else 0."""
        s = self.settings
        shape = tuple(p.shape)
        if not (s.relative and lay.is_muon(shape) and p.numel() > 0):
            return torch.zeros((), dtype=torch.float32, device=p.device)
        fan_in = lay.fans(shape, layout)[0]
        x = p.detach().to(torch.float32)
        r = torch.sqrt(torch.mean(x * x)) * math.sqrt(fan_in)
        zero = 1.0 if s.zero_init == "one" else float(fan_in)
        return torch.log(torch.where(r > 0, r, torch.full_like(r, zero)))

    def _tags(self) -> dict[int, str | None]:
        """The muP tag of each parameter (by ``id``): a group's ``tag``, or by position."""
        params = [p for g in self.param_groups for p in g["params"]]
        auto = lay.default_tags([tuple(p.shape) for p in params])
        tags = {id(p): t for p, t in zip(params, auto, strict=True)}
        for g in self.param_groups:
            if g["tag"] != "auto":
                tags.update({id(p): g["tag"] for p in g["params"]})
        return tags

    # ------------------------------------------------------------------ the step
    @torch.no_grad()
    def step(
        self, closure: Callable[[], Any] | None = None, *, loss: Any = None
    ) -> torch.Tensor | None:
        """One update of every parameter with a gradient.

        Args:
          closure: re-evaluates the model and returns the loss (called with gradients on).
          loss: the current loss (a number or a 0-d tensor) when there is no closure.

        Returns:
          The loss.
        """
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if loss is None:
            raise ValueError(
                "learned_opt.torch: step needs the current loss: opt.step(loss=loss) or "
                "opt.step(closure) (the loss trend is a feature of the learned optimizer)"
            )
        work = []
        for gi, group in enumerate(self.param_groups):
            for i, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ValueError(
                        f"learned_opt.torch: parameter {_name(group, i, gi)} has a sparse "
                        "gradient; only dense gradients are supported (nn.Embedding: "
                        "sparse=False)"
                    )
                work.append((group, p))
        if work:
            self._update(work, loss)
        return loss

    def _global_state(self, device: torch.device) -> dict[str, Any]:
        """The state shared by all tensors: the update ``count`` and the loss EMAs."""
        g = self.state[GLOBAL]
        if not g:
            g["count"] = 0
            g["loss_ema"] = torch.zeros(3, dtype=torch.float32, device=device)
        return g

    def _update(self, work: list, loss: Any) -> None:
        """One update of the (group, parameter) pairs of ``work``: moments and statistics of
        each tensor, the network on all their features at once, then each tensor's direction and
        step. Holds m^ of every tensor between the two passes (one float32 copy of them)."""
        s = self.settings
        device = work[0][1].device
        glob = self._global_state(device)
        count = glob["count"]
        glob["loss_ema"] = _loss_ema(glob["loss_ema"], count, loss, s.loss_decays)
        tags = self._tags()
        moments, stats = [], []
        for group, p in work:  # pass 1: moments and the tensor statistics
            m_hat, st = self._moments(p, group["layout"])
            moments.append(m_hat)
            stats.append(st.to(device))
        prior = warmup_cosine(count, self.num_steps)
        x = self._features(work, torch.stack(stats), glob["loss_ema"], count, prior, tags)
        if self._theta["w1"].device != device:
            self._theta = {k: v.to(device) for k, v in self._theta.items()}
        out = _network(self._theta, x)  # (N, 5)
        log_scale = s.log_scale_bound * torch.tanh(out[:, 0] / s.log_scale_bound)
        alpha = s.alpha_bound * torch.tanh(out[:, 1] / s.alpha_bound)
        log_rms_p = torch.log(torch.clamp(torch.stack(stats)[:, 0], min=s.rms_floor))
        log_ref = torch.stack([self.state[p]["log_ref"].to(device) for _, p in work])
        lrs = torch.tensor([g["lr"] for g, _ in work], dtype=torch.float32, device=device)
        steps = lrs * float(prior) * torch.exp(log_ref + log_scale + alpha * log_rms_p)
        coeffs = torch.cat([out[:, 2:], steps[:, None]], 1).tolist()  # one transfer per step
        ratios = []
        for (group, p), m_hat, (o_ns, o_adam, o_grad, step) in zip(
            work, moments, coeffs, strict=True
        ):  # pass 2: directions and the update
            d = self._direction(p, m_hat, group["layout"], o_ns, o_adam, o_grad)
            if p.dtype == torch.float32:
                p.add_(d, alpha=-step)
            else:
                p.add_((d * -step).to(p.dtype))
            ratios.append(torch.log(step * _rms(d).to(device) + 1e-30))
        ratio = torch.clamp(torch.stack(ratios) - log_rms_p, -30.0, 10.0)
        if prior > 0:
            for (_, p), r in zip(work, ratio, strict=True):
                st = self.state[p]
                old = st["ratio_ema"]
                new = s.ratio_decay * old.to(device) + (1 - s.ratio_decay) * r
                st["ratio_ema"] = (r if st["step"] == 1 else new).to(old.device)
        glob["count"] = count + 1

    def _moments(self, p: torch.Tensor, layout: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Update m and v of ``p`` and return m^ and the statistics (RMS p, RMS m^, sqrt(RMS
        v), RMS g) as a float32 (4,) tensor. Few passes over the tensor: each one is a
        synchronisation of torch's threads."""
        s = self.settings
        st = self.state[p]
        if "exp_avg" not in st:
            st["step"] = 0
            st["exp_avg"] = torch.zeros_like(p, dtype=torch.float32, memory_format=_PRESERVE)
            st["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32, memory_format=_PRESERVE)
            st["ratio_ema"] = torch.zeros((), dtype=torch.float32, device=p.device)
        st["step"] += 1
        t = st["step"]
        g = p.grad.to(torch.float32)
        b1 = s.muon_beta if lay.is_muon(tuple(p.shape)) else s.adam_b1
        b2 = s.adam_b2
        m, v = st["exp_avg"], st["exp_avg_sq"]
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        m_hat = torch.mul(m, b1 / _bias(b1, t + 1)).add_(g, alpha=(1 - b1) / _bias(b1, t))
        stats = torch.stack([_rms(p.to(torch.float32)), _rms(m_hat), _rms(v).sqrt(), _rms(g)])
        return m_hat, stats

    def _direction(self, p, m_hat, layout, o_ns, o_adam, o_grad) -> torch.Tensor:
        """d of one parameter from its m^ and the network's outputs (module docstring)."""
        s = self.settings
        st = self.state[p]
        g = p.grad.to(torch.float32)
        denom = torch.div(st["exp_avg_sq"], _bias(s.adam_b2, st["step"])).sqrt_().add_(s.eps)
        shape = tuple(p.shape)
        if not lay.is_muon(shape):
            return torch.mul(m_hat, 1.0 + o_adam).add_(g, alpha=o_grad).div_(denom)
        fan_in, fan_out = lay.fans(shape, layout)
        c = min(1.0, math.sqrt(s.mixing_fan_cap / fan_in)) if s.mixing_fan_cap else 1.0
        d = torch.mul(m_hat, c * o_adam).add_(g, alpha=c * o_grad).div_(denom)
        if p.numel() == 0:
            return d
        ns = newton_schulz(m_hat.reshape(lay.matrix_shape(shape, layout)), s.ns_steps, s.eps)
        scale = math.sqrt(max(1.0, fan_out / fan_in))
        return d.add_(ns.reshape(shape), alpha=(1.0 + o_ns) * scale)

    def _features(self, work, stats, loss_ema, count, prior, tags) -> torch.Tensor:
        """The (N, T) features of the tensors being updated (the optax transform's order)."""
        s = self.settings
        total = _F32(max(self.num_steps, 1))
        frac = np.clip(_F32(count) / total, _F32(0), _F32(1.5))
        embed = np.tanh(_F32(count) / np.asarray(s.timescales, _F32))
        fast, slow, first = loss_ema[0], loss_ema[1], loss_ema[2]
        trend = torch.tanh((fast - slow) / (torch.abs(slow) + 1e-8))
        progress = torch.tanh((fast - first) / (torch.abs(first) + 1e-8))
        n = len(work)
        device = stats.device
        head = torch.tensor([float(frac), float(prior)], dtype=torch.float32, device=device)
        shared = torch.cat([head, torch.stack([trend, progress]).to(device)])
        shared = torch.cat([shared, torch.from_numpy(embed).to(device)])
        logs = torch.clamp(0.1 * torch.log(stats + 1e-30), -8.0, 8.0)
        snr = torch.clamp(logs[:, 1] - logs[:, 2], -3.0, 3.0)
        static = []
        for group, p in work:
            shape = tuple(p.shape)
            fi, fo = lay.fans(shape, group["layout"])
            onehot = [float(tags[id(p)] == k) for k in lay.TAGS]
            size = 0.1 * math.log(max(p.numel(), 1))
            static.append([0.1 * math.log(fi), 0.1 * math.log(fo), *onehot,
                           float(lay.is_muon(shape)), size])  # fmt: skip
        static = torch.tensor(static, dtype=torch.float32, device=device)
        ratio = torch.stack(
            [self.state[p].get("ratio_ema", torch.zeros(())).to(device) for _, p in work]
        )
        return torch.cat(
            [
                shared.expand(n, -1),
                logs,
                snr[:, None],
                static[:, :2],
                static[:, 2:6],
                torch.clamp(0.1 * ratio, -3.0, 1.0)[:, None],
                static[:, 6:],
            ],
            1,
        )

    # ------------------------------------------------------------------ state
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a :meth:`state_dict`; the float32 state of bfloat16 parameters stays float32
        (``torch.optim.Optimizer`` would cast it to the parameter's dtype)."""
        super().load_state_dict(state_dict)
        saved = state_dict["state"]
        ids = itertools.chain.from_iterable(g["params"] for g in state_dict["param_groups"])
        params = itertools.chain.from_iterable(g["params"] for g in self.param_groups)
        for i, p in zip(ids, params, strict=True):
            if i in saved:
                self.state[p] = {k: _copy_to(v, p.device) for k, v in saved[i].items()}
        if GLOBAL in saved:
            device = self.param_groups[0]["params"][0].device
            self.state[GLOBAL] = {k: _copy_to(v, device) for k, v in saved[GLOBAL].items()}


_PRESERVE = torch.preserve_format


def _copy_to(value: Any, device: torch.device) -> Any:
    """A copy of a state entry on ``device``, its dtype kept."""
    return value.detach().to(device, copy=True) if isinstance(value, torch.Tensor) else value


def _network(theta: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The per-tensor MLP: (N, T) -> (N, 5), tanh hidden layers."""
    h = torch.tanh(x @ theta["w1"] + theta["b1"])
    h = torch.tanh(h @ theta["w2"] + theta["b2"])
    return h @ theta["w3"] + theta["b3"]


def _loss_ema(ema: torch.Tensor, count: int, loss: Any, decays: tuple) -> torch.Tensor:
    """[fast EMA, slow EMA, first value] after seeing ``loss``; the first step sets all three; a
    non-finite loss leaves ``ema`` as is."""
    value = torch.as_tensor(loss).detach().to(device=ema.device, dtype=torch.float32)
    if value.numel() != 1:
        raise ValueError(
            f"learned_opt.torch: the loss must be a scalar, got shape {tuple(value.shape)}"
        )
    value = value.reshape(())
    bf, bs = decays
    if count == 0:
        new = value.expand(3).clone()
    else:
        new = torch.stack([bf * ema[0] + (1 - bf) * value, bs * ema[1] + (1 - bs) * value, ema[2]])
    return torch.where(torch.isfinite(value), new, ema)


def _name(group: dict, i: int, gi: int) -> str:
    """A parameter's name (``param_names`` of a group built from ``named_parameters()``) or its
    position and shape."""
    names = group.get("param_names")
    p = group["params"][i]
    where = names[i] if names else f"param_groups[{gi}]['params'][{i}]"
    return f"{where} (shape {tuple(p.shape)})"


def check_num_steps(num_steps: Any) -> None:
    """``ValueError`` naming ``num_steps`` unless it is an integer >= 1."""
    ok = isinstance(num_steps, int | np.integer) and not isinstance(num_steps, bool)
    if not (ok and num_steps >= 1):
        raise ValueError(
            "learned_opt.torch: num_steps must be an integer >= 1 (the planned number of "
            f"training steps: the warmup + cosine schedule is laid out over it), got {num_steps!r}"
        )
