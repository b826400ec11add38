"""HyperLOpt: a VeLO-style learned optimizer (per-tensor LSTM generating a tiny per-parameter MLP).

Reference: Metz et al., "VeLO: Training versatile learned optimizers by scaling up"
(arXiv:2211.09760).

Per tensor and step (cheap, O(number of tensors)), an LSTM of width ``H`` (default 32) reads
``T = 18`` tensor-level features (with the default 4 timescales and 2 momenta)::

    fraction done min(count/num_steps, 2), tanh(count/s) for s in timescales,
    loss trend tanh((L_fast - L_slow)/|L_slow|), tanh((L_fast - L_0)/|L_0|)   (EMAs of `value`),
    0.1*log of RMS(m_k) for each k, RMS(v)^(1/2) and RMS(p),  log(RMS(m_1) / RMS(v)^(1/2)),
    one-hot of the tensor rank (0, 1, 2, 3, >=4), 0.1*log(1 + size).

A linear "generator" maps the LSTM output ``h`` to the weights of a per-parameter MLP with
``F = K + 1`` inputs and ``W`` hidden units (default 3 -> 4 -> 1) plus a per-tensor log step size::

    (W1 (F, W), b1 (W,), w2 (W,), b2, log_lr) = h @ G + g0

Per parameter (the only O(size) work: one fused pass updating the accumulators, the sums of
squares for the statistics, and one fused pass computing the update)::

    m_k <- b_k m_k + (1 - b_k) g,   v <- b_v v + (1 - b_v) g^2     (one (K+1, *n) array)
    r = 1 / (sqrt(v / (1 - b_v^t)) + eps)
    x = (m_1 r / (1 - b_1^t), ..., m_K r / (1 - b_K^t), g r)
    update = -exp(log_lr) * mup_scale * (w2 . relu(x W1 + b1) + b2)

Initial theta: ``g0`` encodes ``d = relu(x_1) - relu(-x_1) = x_1`` and ``log_lr = log(step_init)``,
so with ``G = 0`` HyperLOpt *is* Adam(step_init, b1=b_1, b2=b_v); ``G`` starts small
(``generator_init_scale``) so the untrained optimizer is a slightly perturbed Adam.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from learned_opt import common

_MAX_RANK = 4  # ranks >= 4 share one one-hot slot


class HyperLOptState(NamedTuple):
    """Optimizer state; ``n`` = a leaf's shape, ``N`` = number of leaves, ``H`` = LSTM width.

    count:         int32 scalar, number of updates done.
    accumulators:  tree (params' structure) of float32 leaves ``(K + 1, *n)``: rows 0..K-1 are
                   the momenta m_k, row K the second moment v (one array, so one fused pass
                   updates all of them).
    lstm_h, lstm_c: float32 ``(N, H)``, the LSTM state of each tensor.
    loss_ema:      float32 ``(3,)``: fast EMA, slow EMA and first value of the loss.
    mup_scale:     tree of float32 scalars, the per-tensor step multiplier (muP).
    """

    count: jax.Array
    accumulators: Any
    lstm_h: jax.Array
    lstm_c: jax.Array
    loss_ema: jax.Array
    mup_scale: Any


@dataclasses.dataclass(frozen=True)
class HyperLOpt:
    """Per-tensor LSTM + per-parameter MLP learned optimizer; see the module docstring.

    Attributes:
      lstm_hidden: LSTM width ``H``.
      mlp_hidden: hidden width ``W`` of the generated per-parameter MLP.
      momentum_decays: decays ``b_k`` of the gradient EMAs (``b_1`` drives the Adam-like init).
      rms_decay: decay ``b_v`` of the second-moment EMA.
      loss_decays: (fast, slow) decays of the loss EMAs.
      timescales: the ``s`` of the ``tanh(count / s)`` features.
      default_num_steps: ``num_steps`` used when ``optimizer`` is not given one.
      step_init: initial per-tensor step size (the learning rate of the Adam it starts as).
      eps: Adam's epsilon.
      generator_init_scale: scale of the random init of the generator ``G``.
      mup: muLO mode (step of ``'hidden'`` tensors times 1/fan_in).
    """

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

    name: ClassVar[str] = "hyper"

    def __post_init__(self):
        for f in ("momentum_decays", "loss_decays", "timescales"):
            object.__setattr__(self, f, common.tupled(getattr(self, f)))
        if not self.momentum_decays:
            raise ValueError("HyperLOpt: momentum_decays must not be empty")
        if not isinstance(self.loss_decays, tuple) or len(self.loss_decays) != 2:
            raise ValueError(f"HyperLOpt: loss_decays must be (fast, slow), got {self.loss_decays}")
        common.check_settings(
            self,
            {
                "lstm_hidden": common.COUNT,
                "mlp_hidden": common.Range(
                    "an integer >= 2 (the Adam init uses two units)", lambda x: x >= 2, True
                ),
                "rms_decay": common.DECAY,
                "default_num_steps": common.COUNT,
                "step_init": common.POSITIVE,
                "eps": common.POSITIVE,
                "generator_init_scale": common.NON_NEGATIVE,
            },
            {
                "momentum_decays": common.DECAY,
                "loss_decays": common.DECAY,
                "timescales": common.POSITIVE,
            },
        )
        if not isinstance(self.mup, bool):
            raise ValueError(f"HyperLOpt: mup must be true or false, got {self.mup!r}")

    # ----------------------------------------------------------------- static sizes
    @property
    def num_tensor_features(self) -> int:
        """Number ``T`` of LSTM input features."""
        return 1 + len(self.timescales) + 2 + len(self.momentum_decays) + 2 + 1 + _MAX_RANK + 2

    @property
    def num_param_features(self) -> int:
        """Number ``F`` of inputs of the per-parameter MLP."""
        return len(self.momentum_decays) + 1

    @property
    def num_generated(self) -> int:
        """Outputs of the generator: W1, b1, w2, b2 and log_lr."""
        f, w = self.num_param_features, self.mlp_hidden
        return f * w + 2 * w + 2

    def to_config(self) -> dict:
        """JSON-serialisable settings; ``HyperLOpt(**to_config())`` rebuilds this object."""
        return common.dataclass_config(self)

    # ----------------------------------------------------------------- meta-params
    def init_meta_params(self, key: jax.Array) -> dict:
        """theta = {"lstm": {"wx": (T, 4H), "wh": (H, 4H), "b": (4H,)},
        "generator": {"w": (H, P), "b": (P,)}} with P = ``num_generated``."""
        return common.jit_init(self, key)

    def _init_meta_params(self, key: jax.Array) -> dict:
        t, h, f, w = (
            self.num_tensor_features,
            self.lstm_hidden,
            self.num_param_features,
            self.mlp_hidden,
        )
        k1, k2, k3 = jax.random.split(key, 3)
        b = jnp.zeros((4 * h,), jnp.float32).at[h : 2 * h].set(1.0)  # forget-gate bias 1
        w1 = jnp.zeros((f, w), jnp.float32).at[0, 0].set(1.0).at[0, 1].set(-1.0)
        w2 = jnp.zeros((w,), jnp.float32).at[0].set(1.0).at[1].set(-1.0)
        g0 = jnp.concatenate(
            [
                w1.ravel(),
                jnp.zeros((w,)),
                w2,
                jnp.zeros((1,)),
                jnp.full((1,), math.log(self.step_init)),
            ]
        ).astype(jnp.float32)
        return {
            "lstm": {
                "wx": common.glorot(k1, t, 4 * h),
                "wh": common.glorot(k2, h, 4 * h),
                "b": b,
            },
            "generator": {
                "w": common.glorot(k3, h, self.num_generated, self.generator_init_scale),
                "b": g0,
            },
        }

    # ----------------------------------------------------------------- the transform
    def optimizer(
        self, theta: Any, *, num_steps: Any = None, param_tags: Any = None
    ) -> optax.GradientTransformationExtraArgs:
        """The optax transform for ``theta``.

        Args:
          theta: meta-parameters (:meth:`init_meta_params`'s tree; may be traced).
          num_steps: the planned number of training steps, the horizon of the "fraction of
            training done" feature ``min(count / num_steps, 2)``: an int >= 1 or a traced int;
            ``None`` gives ``default_num_steps``. Anything else raises ``ValueError``.
          param_tags: 'input' / 'hidden' / 'output' / None per leaf, read when ``mup=True``
            (default :func:`learned_opt.mup_tags` of the params).

        Returns:
          An ``optax.GradientTransformationExtraArgs`` whose ``update(grads, state, params,
          value=loss)`` needs ``params`` and the current loss ``value``.
        """
        num_steps = self.default_num_steps if num_steps is None else num_steps
        common.check_num_steps(num_steps, "HyperLOpt.optimizer")
        k = len(self.momentum_decays)

        def init_fn(params):
            common.check_float_leaves(params)
            leaves, treedef = jax.tree_util.tree_flatten(params)
            unflat = lambda xs: jax.tree_util.tree_unflatten(treedef, xs)
            zeros = [jnp.zeros((k + 1, *jnp.shape(x)), jnp.float32) for x in leaves]
            if self.mup:
                scales = common.mup_multipliers(params, param_tags)
            else:
                scales = [jnp.ones((), jnp.float32) for _ in leaves]
            hc = jnp.zeros((len(leaves), self.lstm_hidden), jnp.float32)
            return HyperLOptState(
                count=jnp.zeros((), jnp.int32),
                accumulators=unflat(zeros),
                lstm_h=hc,
                lstm_c=hc,
                loss_ema=jnp.zeros((3,), jnp.float32),
                mup_scale=unflat(scales),
            )

        def update_fn(updates, state, params=None, *, value=None, **extra):
            del extra
            common.check_update_inputs(updates, params, value, "HyperLOpt")
            grads, treedef = jax.tree_util.tree_flatten(updates)
            grads = [jnp.asarray(g) for g in grads]
            if not grads:
                return updates, state._replace(count=state.count + 1)
            flat = treedef.flatten_up_to
            count = state.count
            t1 = (count + 1).astype(jnp.float32)
            loss_ema = common.loss_ema(state.loss_ema, count, value, self.loss_decays, "HyperLOpt")

            # Accumulators (one fused pass per leaf) and tensor statistics (reductions).
            ps = [jnp.asarray(p) for p in flat(params)]
            decays = jnp.asarray((*self.momentum_decays, self.rms_decay), jnp.float32)
            accs = []
            for a, g in zip(flat(state.accumulators), grads, strict=True):
                g32 = g.astype(jnp.float32)
                d = decays.reshape((k + 1,) + (1,) * g.ndim)
                target = jnp.stack([g32] * k + [g32 * g32])
                accs.append(d * a + (1.0 - d) * target)
            shared = self._shared_features(count, num_steps, loss_ema)
            sums = jnp.stack(
                [self._sums(p, a) for p, a in zip(ps, accs, strict=True)]
            )  # (N, K + 2): sum m_k^2 (k < K), sum v^2, sum p^2
            sizes = jnp.asarray([max(g.size, 1) for g in grads], jnp.float32)[:, None]
            x = self._tensor_features(shared, grads, sums / sizes)  # (N, T)

            h, c = self._lstm(theta["lstm"], x, state.lstm_h, state.lstm_c)
            gen = h @ theta["generator"]["w"] + theta["generator"]["b"]  # (N, P)

            bias_corr = 1.0 - jnp.power(decays, t1)  # (K + 1,) Adam bias corrections
            outs = [
                self._param_update(gen[i], accs[i], bias_corr, grads[i], s, ps[i].dtype)
                for i, s in enumerate(flat(state.mup_scale))
            ]
            unflat = lambda xs: jax.tree_util.tree_unflatten(treedef, xs)
            new_state = HyperLOptState(
                count=count + 1,
                accumulators=unflat(accs),
                lstm_h=h,
                lstm_c=c,
                loss_ema=loss_ema,
                mup_scale=state.mup_scale,
            )
            return unflat(outs), new_state

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)

    # ----------------------------------------------------------------- pieces
    def _shared_features(self, count, num_steps, loss_ema):
        """Features equal for every tensor: fraction done, step embeddings, loss trend."""
        frac = count.astype(jnp.float32) / jnp.maximum(jnp.asarray(num_steps, jnp.float32), 1.0)
        trend, progress = common.loss_trend(loss_ema)
        return jnp.concatenate(
            [
                jnp.clip(frac, 0.0, 2.0)[None],
                common.time_embedding(count, self.timescales),
                jnp.stack([trend, progress]),
            ]
        )

    @staticmethod
    def _sums(p, acc):
        """(sum m_1^2, ..., sum m_K^2, sum v^2, sum p^2) of one tensor, shape (K + 2,).

        Plain sums of squares of arrays that exist anyway (the new accumulator and p): XLA's
        CPU backend runs these as fast library reductions, while reductions of a fused
        expression (e.g. of g^2 or of one row of ``acc``) materialise it or run far slower.
        """
        acc_sums = jnp.sum(acc * acc, axis=tuple(range(1, acc.ndim)))
        p = p.astype(jnp.float32)
        return jnp.concatenate([acc_sums, jnp.sum(p * p)[None]])

    def _tensor_features(self, shared, grads, means):
        """LSTM inputs of all tensors, shape (N, T), from ``means`` (N, K + 2) =
        (mean m_k^2 for k < K, mean v^2, mean p^2) per tensor."""
        k = len(self.momentum_decays)
        powers = jnp.asarray([0.5] * k + [0.25, 0.5], jnp.float32)
        # log RMS of m_k, log RMS(v)^(1/2), log RMS of p; clipped so an overflowing sum (inf)
        # stays finite.
        logs = jnp.clip(powers * jnp.log(means + 1e-30), -80.0, 80.0)
        snr = jnp.clip(logs[:, 0] - logs[:, -2], -10.0, 10.0)
        ranks = [min(g.ndim, _MAX_RANK) for g in grads]
        rank = jax.nn.one_hot(jnp.asarray(ranks), _MAX_RANK + 1, dtype=jnp.float32)
        size = jnp.asarray([0.1 * math.log1p(g.size) for g in grads], jnp.float32)
        n = len(grads)
        return jnp.concatenate(
            [
                jnp.broadcast_to(shared, (n, shared.shape[0])),
                0.1 * logs,
                snr[:, None],
                rank,
                size[:, None],
            ],
            axis=1,
        )

    def _lstm(self, p, x, h, c):
        """One LSTM step for all tensors at once: x (N, T), h and c (N, H)."""
        z = x @ p["wx"] + h @ p["wh"] + p["b"]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return h, c

    def _param_update(self, gen, acc, bias_corr, g, mup_scale, dtype):
        """The per-parameter MLP for one tensor, written as scalar-broadcast elementwise ops.

        Per-tensor scalars (bias corrections, step size) are folded into the generated weights
        so the per-element work is one sqrt, one reciprocal and ``(F + 1) * W`` multiply-adds.
        """
        f, w, k = self.num_param_features, self.mlp_hidden, len(self.momentum_decays)
        w1 = gen[: f * w].reshape(f, w)
        b1 = gen[f * w : f * w + w]
        w2 = gen[f * w + w : f * w + 2 * w]
        b2, log_lr = gen[-2], gen[-1]
        # x_j = m_j / bc_j * r for momenta, x_K = g * r: put 1/bc_j into W1's rows.
        in_scale = jnp.concatenate([1.0 / bias_corr[:k], jnp.ones((1,), jnp.float32)])
        w1 = w1 * in_scale[:, None]
        step = -jnp.exp(log_lr) * mup_scale
        w2, b2 = w2 * step, b2 * step
        r = 1.0 / (jnp.sqrt(acc[k]) * jax.lax.rsqrt(bias_corr[k]) + self.eps)
        xs = [acc[j] * r for j in range(k)] + [g.astype(jnp.float32) * r]
        d = b2
        for j in range(w):
            pre = b1[j]
            for i in range(f):
                pre = pre + w1[i, j] * xs[i]
            d = d + w2[j] * jax.nn.relu(pre)
        return d.astype(dtype)
