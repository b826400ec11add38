"""ScaleFreeLOpt: a learned optimizer that starts *as* relative Muon + Adam with warmup/cosine.

References: K. Jordan et al., "Muon: An optimizer for hidden layers in neural networks"
(Newton-Schulz orthogonalised momentum, https://kellerjordan.github.io/posts/muon/); Kingma & Ba,
"Adam" (arXiv:1412.6980) with Nesterov momentum (Dozat, "Incorporating Nesterov Momentum into
Adam"); Metz et al., "VeLO" (arXiv:2211.09760; per-tensor networks); Yang & Hu, "Tensor
Programs IV: Feature Learning in Infinite-Width Neural Networks" (muP readouts).

Per leaf ``p`` (shape ``n``) with gradient ``g``, the state keeps ``m`` (momentum; decay
``muon_beta`` on Muon leaves, ``adam_b1`` elsewhere) and ``v`` (second moment, decay
``adam_b2``). With ``t`` the 1-based step and Nesterov bias-corrected momentum
``m^ = b m/(1 - b^(t+1)) + (1 - b) g/(1 - b^t)``, the candidate directions are::

    d_ns   = NS_k(m^) * sqrt(max(1, fan_out / fan_in))  Muon (k = ns_steps), on 2-D leaves and
                                                        conv kernels (HWIO as (H*W*I, O))
    d_adam = m^ / (sqrt(v / (1 - b2^t)) + eps)          Adam's normalised momentum
    d_grad = g  / (sqrt(v / (1 - b2^t)) + eps)          Adam's normalised gradient

A per-tensor network (an MLP ``T -> H -> H -> 5`` run once for all tensors, ``T`` = 21
features: fraction of training done, the schedule prior, step embeddings, the loss trend from
``value``, log RMS of p / m^ / sqrt(v) / g, log fan-in and fan-out, the muP tag, the Muon flag,
and an EMA of the log of the tensor's own |update| / |p|) outputs ``o = (o_s, o_a, o_ns, o_adam,
o_grad)`` per tensor, and the update is::

    c     = min(1, sqrt(mixing_fan_cap / fan_in)) on Muon leaves, 1 elsewhere
    d     = (e_ns + o_ns) d_ns + c ((e_adam + o_adam) d_adam + o_grad d_grad)
    step  = lr * prior(t - 1; num_steps) * r * exp(B tanh(o_s / B)) * max(RMS(p), floor)^alpha,
    alpha = A tanh(o_a / A)
    u     = -step * d

where ``(e_ns, e_adam) = (1, 0)`` on Muon leaves and ``(0, 1)`` elsewhere (``d_ns := 0`` there),
``B`` and ``A`` bound the learned corrections (``log_scale_bound``, ``alpha_bound``), and
``prior`` is linear warmup over ``num_steps // 20`` steps then cosine decay to 0 at
``num_steps`` (``optax.warmup_cosine_decay_schedule``; 0 from ``num_steps`` on: past its horizon
the optimizer stops moving, so pass the real length of training). ``c`` keeps the learned share
of Adam's directions in a wide matrix's update (``RMS(d_ns) ~ 1/sqrt(fan_in)``, against ~1 for
``d_adam``) at what it is at fan-in ``mixing_fan_cap``; at the initial theta on Muon leaves
``e_adam = o_adam = o_grad = 0``, so ``c`` changes nothing there.

The per-tensor factor ``r`` (``relative``):

- ``relative=False``: ``r = 1``; the initial update is *exactly*
  ``optax.contrib.muon(warmup_cosine(lr, num_steps))``, Muon on 2-D leaves and conv kernels and
  (Nesterov) Adam elsewhere.
- ``relative=True`` (*relative Muon*): on Muon leaves ``r = RMS(p_0) sqrt(fan_in)`` with ``p_0``
  the parameters ``init`` saw, so a matrix's step is proportional to its initial scale: exactly
  Muon's step on a LeCun-initialised matrix (RMS 1/sqrt(fan_in)), and invariant to rescaling the
  tensor. The *initial* RMS, not the current one, so steps do not grow with the weights they
  grow (LARS's feedback loop). It equals the evaluation's ``muon_rel`` baseline
  (``eval.baselines``: ``muon`` followed by ``scale_by_initial_rms``).

A zero-initialised Muon leaf has ``RMS(p_0) = 0``; its ``r`` is ``zero_init``: ``"one"``
(``r = 1``) or ``"fan_in"`` (``r = fan_in``, baseline ``muon_rel_mup``): a zero-initialised
matrix is read as a muP readout (zero init, output multiplier ``1/fan_in``), whose multiplier
asks for a step ``fan_in`` times larger to move the logits as fast.

The output layer of the network is zero, so ``o = 0`` at the initial theta and the optimizer is
its hand-designed rule. Meta-training learns per-tensor corrections of direction (o_ns, o_adam,
o_grad), size (o_s), dependence on the current scale (o_a: 1 gives steps relative to RMS(p))
and schedule (o_s depends on the fraction done and the loss trend).

The defaults are the settings of the recommended shipped optimizer (``learned_opt.RECOMMENDED``):
``ScaleFreeLOpt()`` is its architecture. :class:`ExperimentalScaleFreeLOpt` adds options that
no recommended weights use (size-free features, matched mixing, gradient-agreement step
adaptation, a per-parameter network).

Cost per update: Muon's (``ns_steps`` Newton-Schulz iterations on matrices; on matrices whose long
side is at least twice the short one, the same iterations in the Gram space, 2-3x fewer
multiply-adds: :func:`newton_schulz`) + one second-moment pass on Muon leaves + 5 reductions per
tensor; the network is O(number of tensors).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from learned_opt import common

NS_COEFFS = (3.4445, -4.7750, 2.0315)  # Muon's quintic Newton-Schulz coefficients
GRAM_ASPECT = 2  # newton_schulz iterates in the Gram space when the long side is >= 2x the short
_TAGS = ("input", "hidden", "output")
_NUM_OUT = 5
_ELEMENT_FEATURES = 6  # inputs of ExperimentalScaleFreeLOpt's per-parameter network


class ScaleFreeState(NamedTuple):
    """Optimizer state; ``n`` = a leaf's shape, ``N`` = number of leaves.

    count:     int32 scalar, number of updates done.
    moments:   tree (params' structure) of float32 ``(2, *n)``: row 0 the momentum m, row 1 the
               second moment v.
    loss_ema:  float32 ``(3,)``: fast EMA, slow EMA and first value of the loss.
    ratio_ema: float32 ``(N,)``: EMA of log(RMS(update) / max(RMS(p), floor)) per tensor.
    log_ref:   float32 ``(N,)``: log of the per-tensor factor ``r`` (0 unless ``relative``).
    """

    count: jax.Array
    moments: Any
    loss_ema: jax.Array
    ratio_ema: jax.Array
    log_ref: jax.Array


def newton_schulz(x: jax.Array, steps: int = 5, eps: float = 1e-8) -> jax.Array:
    """Muon's orthogonalisation of a matrix ``x`` (m, n): about U V^T of its SVD U S V^T.

    ``x / (||x||_F + eps)`` then ``steps`` quintic iterations
    ``X <- a X + (b A + c A A) X`` with ``A = X X^T``, (a, b, c) = NS_COEFFS, on the wide
    orientation (transposed when m > n). The quintic is tuned for speed, not convergence: after
    5 iterations the singular values lie in about [0.7, 1.2] instead of exactly 1.

    On a wide (n, m) orientation with ``m >= GRAM_ASPECT * n`` the same iteration runs in the
    n x n Gram space: every iterate is ``X_k = Q_k X_0`` with ``Q_k`` a polynomial of
    ``A_0 = X_0 X_0^T``, so with ``F_k = a I + b A_k + c A_k^2``::

        Q_{k+1} = F_k Q_k,   A_{k+1} = X_{k+1} X_{k+1}^T = F_k A_k F_k,   result Q_steps X_0

    equal in exact arithmetic (float32 rounding apart, relative differences about 1e-5) at
    ``2 n^2 m + (4 steps - 3) n^3`` multiply-adds instead of ``steps (2 n^2 m + n^3)``: 2-3x
    fewer on a readout or an input layer of a small image.

    Args:
      x: float array (m, n).
      steps: number of quintic iterations.
      eps: added to the Frobenius norm before normalising.

    Returns:
      An (m, n) array with the singular vectors of ``x``.
    """
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    x = x / (jnp.linalg.norm(x) + eps)
    a, b, c = NS_COEFFS
    if steps > 0 and x.shape[1] >= GRAM_ASPECT * x.shape[0]:
        x = _newton_schulz_gram(x, steps)
    else:
        for _ in range(steps):
            gram = x @ x.T
            x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if transposed else x


def _newton_schulz_gram(x: jax.Array, steps: int) -> jax.Array:
    """:func:`newton_schulz`'s ``steps`` iterations of a normalised wide ``x`` (n, m), run on
    the (n, n) Gram matrix (the equations are in its docstring)."""
    a, b, c = NS_COEFFS
    gram = x @ x.T
    eye = jnp.eye(gram.shape[0], dtype=x.dtype)
    poly = None  # Q_k; None stands for the identity
    for k in range(steps):
        f = a * eye + b * gram + c * gram @ gram
        poly = f if poly is None else f @ poly
        if k + 1 < steps:  # the last A is never read
            gram = f @ gram @ f
    return poly @ x


def is_muon_leaf(shape: tuple[int, ...]) -> bool:
    """Leaves that get the Newton-Schulz direction: matrices and conv kernels (HWIO)."""
    return len(shape) in (2, 4)


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out): product of all dims but the last, and the last (1-D: (1, n))."""
    if not shape:
        return 1, 1
    return max(math.prod(shape[:-1]), 1), max(shape[-1], 1)


def ns_direction(m_hat: jax.Array, steps: int = 5, eps: float = 1e-8) -> jax.Array:
    """Muon's direction of one leaf (2-D, or 4-D HWIO): :func:`newton_schulz` (``steps``
    iterations) on the (fan_in, fan_out) matrix, times the width scale
    sqrt(max(1, fan_out / fan_in)) (optax.contrib.muon's default ``scale_by_shape``); zero for a
    zero-size leaf. Same shape as ``m_hat``."""
    if m_hat.size == 0:  # an empty matrix: nothing to orthogonalise
        return jnp.zeros_like(m_hat)
    fan_in, fan_out = _fans(m_hat.shape)
    d = newton_schulz(m_hat.reshape(fan_in, fan_out), steps, eps).reshape(m_hat.shape)
    return d * math.sqrt(max(1.0, fan_out / fan_in))


ZERO_INIT_FACTORS = ("one", "fan_in")
AGREEMENT_LEAVES = ("all", "vectors")
AGREEMENT_MODES = ("both", "grow")
LOG_REF_BOUNDS = (-12.0, 12.0)  # of the adapted log r (ExperimentalScaleFreeLOpt's agreement)


def initial_rms_factor(p0: jax.Array, zero_init: str = "one") -> jax.Array:
    """Relative Muon's factor of a Muon leaf (2-D, or 4-D HWIO) ``p0`` of fan-in ``n`` (product of
    all dims but the last): ``RMS(p0) sqrt(n)`` (1 on a LeCun-initialised matrix), and where
    ``p0 = 0``: 1 (``zero_init="one"``) or ``n`` (``"fan_in"``: a muP readout). float32 scalar."""
    fan_in = math.prod(jnp.shape(p0)[:-1])
    r = jnp.sqrt(jnp.mean(jnp.square(jnp.asarray(p0, jnp.float32)))) * math.sqrt(fan_in)
    return jnp.where(r > 0, r, 1.0 if zero_init == "one" else float(fan_in))


def fraction_done(count: jax.Array, num_steps: Any) -> jax.Array:
    """The feature ``count / max(num_steps, 1)`` clipped to [0, 1.5], float32 scalar."""
    total = jnp.maximum(jnp.asarray(num_steps, jnp.float32), 1.0)
    return jnp.clip(count.astype(jnp.float32) / total, 0.0, 1.5)


def warmup_cosine(count: jax.Array, num_steps: Any) -> jax.Array:
    """The schedule prior at 0-based ``count``: linear warmup 0 -> 1 over ``w = max(1,
    num_steps // 20)`` steps, then ``0.5 (1 + cos(pi min(count - w, T - w) / (T - w)))``; equal
    to ``optax.warmup_cosine_decay_schedule(0, 1, w, T, 0)`` and valid for traced ``num_steps``."""
    t = jnp.asarray(count, jnp.float32)
    total = jnp.maximum(jnp.asarray(num_steps, jnp.int32), 1)
    warm = jnp.maximum(total // 20, 1)
    w, decay = warm.astype(jnp.float32), jnp.maximum(total - warm, 1).astype(jnp.float32)
    cos = 0.5 * (1.0 + jnp.cos(jnp.pi * jnp.clip(t - w, 0.0, decay) / decay))
    return jnp.where(t < w, t / w, cos)


@dataclasses.dataclass(frozen=True)
class ScaleFreeLOpt:
    """Relative Muon + Adam with a warmup/cosine prior and learned per-tensor corrections.

    The update rule is in the module docstring. The defaults are the recommended shipped
    optimizer's architecture; every shipped ``lopt.json`` states all of its settings.

    Attributes:
      learning_rate: base step ``lr`` of the rule it starts as (Muon's 0.02).
      hidden: width ``H`` of the per-tensor network's two hidden layers.
      muon_beta: momentum decay on Muon leaves.
      adam_b1, adam_b2: Adam's decays on the other leaves (b2 also for ``v`` on Muon leaves).
      eps: Adam's and Newton-Schulz's epsilon.
      ns_steps: Newton-Schulz iterations ``k`` of ``d_ns``.
      rms_floor: floor of RMS(p) in the relative factor (keeps zero-initialised tensors moving).
      loss_decays: (fast, slow) decays of the loss EMAs.
      ratio_decay: decay of the |update| / |p| history feature.
      timescales: the ``s`` of the ``tanh(count / s)`` features.
      init_scale: scale of the random init of the hidden layers (the output layer starts at 0).
      relative: start as relative Muon (``r = RMS(p_0) sqrt(fan_in)`` on Muon leaves) instead of
        Muon (``r = 1``).
      log_scale_bound: ``B``, the bound of the learned log step correction.
      alpha_bound: ``A``, the bound of the learned relative exponent.
      zero_init: ``r`` of a zero-initialised Muon leaf when ``relative``: ``"one"`` or
        ``"fan_in"`` (a muP readout).
      mixing_fan_cap: on Muon leaves of fan-in ``n > mixing_fan_cap``, ``d_adam`` and ``d_grad``
        are scaled by ``c = sqrt(mixing_fan_cap / n)`` before the learned weights mix them in;
        0 turns the cap off (``c = 1``).
    """

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

    name: ClassVar[str] = "scale_free"

    def __post_init__(self):
        for f in ("loss_decays", "timescales"):
            object.__setattr__(self, f, common.tupled(getattr(self, f)))
        if not isinstance(self.loss_decays, tuple) or len(self.loss_decays) != 2:
            raise ValueError(
                f"{type(self).__name__}: loss_decays must be (fast, slow), got {self.loss_decays}"
            )
        common.check_settings(
            self,
            {
                "learning_rate": common.POSITIVE,
                "hidden": common.COUNT,
                "muon_beta": common.DECAY,
                "adam_b1": common.DECAY,
                "adam_b2": common.DECAY,
                "eps": common.POSITIVE,
                "ns_steps": common.COUNT,
                "rms_floor": common.POSITIVE,
                "ratio_decay": common.DECAY,
                "init_scale": common.NON_NEGATIVE,
                "log_scale_bound": common.POSITIVE,
                "alpha_bound": common.POSITIVE,
                "mixing_fan_cap": common.Range("a finite number >= 0 (0: off)", lambda x: x >= 0),
            },
            {"loss_decays": common.DECAY, "timescales": common.POSITIVE},
        )
        _check_bools(self, ("relative",))
        _check_choices(self, {"zero_init": ZERO_INIT_FACTORS})

    @property
    def num_features(self) -> int:
        """Number ``T`` of per-tensor features."""
        return 4 + len(self.timescales) + 5 + 2 + len(_TAGS) + 1 + 2

    @property
    def num_outputs(self) -> int:
        """Number ``O`` of network outputs per tensor."""
        return _NUM_OUT

    def to_config(self) -> dict:
        """All settings, JSON-serialisable; ``type(self)(**to_config())`` rebuilds this object."""
        return common.dataclass_config(self)

    # ----------------------------------------------------------------- meta-params
    def init_meta_params(self, key: jax.Array) -> dict:
        """theta = {"w1": (T, H), "b1": (H,), "w2": (H, H), "b2": (H,), "w3": (H, O),
        "b3": (O,)} (T = :attr:`num_features`, O = :attr:`num_outputs`); w3 and b3 are zero, so
        the initial rule is exactly the hand-designed one (module doc)."""
        return common.jit_init(self, key)

    def _init_meta_params(self, key: jax.Array) -> dict:
        t, h = self.num_features, self.hidden
        k1, k2 = jax.random.split(key)
        return {
            "w1": common.glorot(k1, t, h, self.init_scale),
            "b1": jnp.zeros((h,), jnp.float32),
            "w2": common.glorot(k2, h, h, self.init_scale),
            "b2": jnp.zeros((h,), jnp.float32),
            "w3": jnp.zeros((h, self.num_outputs), jnp.float32),
            "b3": jnp.zeros((self.num_outputs,), jnp.float32),
        }

    # ----------------------------------------------------------------- the transform
    def optimizer(
        self, theta: Any, *, num_steps: Any = None, param_tags: Any = None
    ) -> optax.GradientTransformationExtraArgs:
        """The optax transform for ``theta``.

        Args:
          theta: meta-parameters (:meth:`init_meta_params`'s tree; may be traced).
          num_steps: the planned number of training steps, required: an int >= 1 or a traced
            int. The warmup/cosine prior is laid out over it, reaches 0 there and stays 0 after
            it (the optimizer stops moving). Anything else raises ``ValueError``.
          param_tags: 'input' / 'hidden' / 'output' / None per leaf (features); default
            :func:`learned_opt.mup_tags` of the params.

        Returns:
          An ``optax.GradientTransformationExtraArgs`` whose ``update(grads, state, params,
          value=loss)`` needs ``params`` and the current loss ``value``.
        """
        if num_steps is None:
            raise ValueError(
                f"{type(self).__name__}.optimizer needs num_steps (the planned number of training "
                "steps): its warmup + cosine schedule is laid out over it, e.g. "
                "learned_opt.load(num_steps=10_000)"
            )
        common.check_num_steps(num_steps, f"{type(self).__name__}.optimizer")

        def init_fn(params):
            common.check_float_leaves(params)
            leaves, treedef = jax.tree_util.tree_flatten(params)
            zeros = [jnp.zeros((2, *jnp.shape(x)), jnp.float32) for x in leaves]
            return ScaleFreeState(
                count=jnp.zeros((), jnp.int32),
                moments=jax.tree_util.tree_unflatten(treedef, zeros),
                loss_ema=jnp.zeros((3,), jnp.float32),
                ratio_ema=jnp.zeros((len(leaves),), jnp.float32),
                log_ref=self._log_ref(leaves),
            )

        def update_fn(updates, state, params=None, *, value=None, **extra):
            del extra
            common.check_update_inputs(updates, params, value, type(self).__name__)
            grads, treedef = jax.tree_util.tree_flatten(updates)
            if not grads:
                return updates, state._replace(count=state.count + 1)
            ps = treedef.flatten_up_to(params)
            tags = self._tags(param_tags, params)
            return self._update(theta, grads, ps, tags, treedef, state, value, num_steps)

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)

    # ----------------------------------------------------------------- pieces
    def _log_ref(self, leaves) -> jax.Array:
        """``log r`` per leaf (N,): log(RMS(p_0) sqrt(fan_in)) on Muon leaves when ``relative``
        (where p_0 = 0: 0, or log(fan_in) with ``zero_init="fan_in"``), else (and on zero-size
        leaves) 0."""
        logs = []
        for x in leaves:
            shape = jnp.shape(x)
            if not (self.relative and is_muon_leaf(shape) and math.prod(shape) > 0):
                logs.append(jnp.zeros((), jnp.float32))
                continue
            r = initial_rms_factor(x, self.zero_init)
            logs.append(jnp.log(r))  # exact 0 where r = 1 (not common.rms's eps)
        return jnp.stack(logs) if logs else jnp.zeros((0,), jnp.float32)

    @staticmethod
    def _tags(param_tags, params) -> list:
        if param_tags is None:
            param_tags = common.mup_tags(params)
        return common.flatten_tags(param_tags, params)

    def _update(self, theta, grads, ps, tags, treedef, state, value, num_steps):
        count = state.count
        t = (count + 1).astype(jnp.float32)
        loss_ema = common.loss_ema(
            state.loss_ema, count, value, self.loss_decays, type(self).__name__
        )
        moments, dirs, stats = [], [], []
        for g, p, mv in zip(grads, ps, treedef.flatten_up_to(state.moments), strict=True):
            mv_new, d, s = self._directions(g.astype(jnp.float32), p, mv, t)
            moments.append(mv_new)
            dirs.append(d)
            stats.append(s)
        prior = warmup_cosine(count, num_steps)
        x = self._features(count, num_steps, prior, loss_ema, stats, grads, tags, state)
        out = self._network(theta, x)  # (N, O)
        context = self._element_context(theta, x)  # (N, H) or None
        log_scale, alpha = self.bounded_step_corrections(out)
        log_rms_p = jnp.log(jnp.maximum(jnp.stack([s[0] for s in stats]), self.rms_floor))
        log_step = state.log_ref + log_scale + alpha * log_rms_p
        step = self.learning_rate * prior * jnp.exp(log_step)  # (N,)
        new_updates, ratios = [], []
        for i, (g, (d_ns, d_adam, d_grad)) in enumerate(zip(grads, dirs, strict=True)):
            base_ns, base_adam = (1.0, 0.0) if d_ns is not None else (0.0, 1.0)
            raw = (d_ns, d_adam, d_grad)
            if d_ns is not None:
                d_adam, d_grad = self._mixed(d_ns, d_adam, d_grad, g.shape)
            d = (base_adam + out[i, 3]) * d_adam + out[i, 4] * d_grad
            if d_ns is not None:
                d = d + (base_ns + out[i, 2]) * d_ns
            ctx = None if context is None else context[i]
            d = self._per_element(theta, d, raw, ps[i], count, num_steps, ctx)
            u = -step[i] * d
            new_updates.append(u.astype(g.dtype))
            ratios.append(jnp.log(step[i] * common.rms(d) + 1e-30) - log_rms_p[i])
        ratio = jnp.clip(jnp.stack(ratios), -30.0, 10.0)
        ratio_ema = jnp.where(
            count == 0, ratio, self.ratio_decay * state.ratio_ema + (1 - self.ratio_decay) * ratio
        )
        unflat = lambda xs: jax.tree_util.tree_unflatten(treedef, xs)
        new_state = ScaleFreeState(
            count=count + 1,
            moments=unflat(moments),
            loss_ema=loss_ema,
            ratio_ema=jnp.where(prior > 0, ratio_ema, state.ratio_ema),
            log_ref=self._next_log_ref(state.log_ref, stats, grads, count, prior, out),
        )
        return unflat(new_updates), new_state

    def _mixed(self, d_ns, d_adam, d_grad, shape):
        """``(c d_adam, c d_grad)`` of a Muon leaf, ``c = min(1, sqrt(mixing_fan_cap /
        fan_in))`` (1 when the cap is 0)."""
        del d_ns
        if self.mixing_fan_cap:
            shrink = min(1.0, math.sqrt(self.mixing_fan_cap / _fans(shape)[0]))
            d_adam, d_grad = d_adam * shrink, d_grad * shrink
        return d_adam, d_grad

    def _per_element(self, theta, d, raw, p, count, num_steps, context):
        """A leaf's direction ``d`` after a per-element term: unchanged here (added by
        :class:`ExperimentalScaleFreeLOpt` with ``elementwise_hidden``); ``raw`` is the leaf's
        (d_ns or None, d_adam, d_grad) before mixing, ``p`` its parameters, ``context`` its row
        of :meth:`_element_context`."""
        del theta, raw, p, count, num_steps, context
        return d

    def _element_context(self, theta, x):
        """What the per-tensor network hands the per-element term, (N, H): nothing here."""
        del theta, x
        return None

    def _next_log_ref(self, log_ref, stats, grads, count, prior, out):
        """``log r`` after this step: constant here (adapted by :class:`ExperimentalScaleFreeLOpt`
        with a gradient-agreement rate)."""
        del stats, grads, count, prior, out
        return log_ref

    def bounded_step_corrections(self, out: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The network's (N, O) outputs to the learned log step ``B tanh(o_s / B)`` and relative
        exponent ``alpha = A tanh(o_a / A)``, each (N,)."""
        log_scale = self.log_scale_bound * jnp.tanh(out[:, 0] / self.log_scale_bound)
        alpha = self.alpha_bound * jnp.tanh(out[:, 1] / self.alpha_bound)
        return log_scale, alpha

    def _agreement(self, g, m_prev):
        """``cos(g, m_prev)`` where a subclass uses it; None here (not computed)."""
        del g, m_prev
        return None

    def _directions(self, g, p, mv, t):
        """New (m, v), directions (d_ns or None, d_adam, d_grad) and statistics
        (RMS p, RMS m^, RMS sqrt(v^), RMS g, :meth:`_agreement`) of one leaf; ``t`` is the
        1-based step."""
        muon = is_muon_leaf(g.shape)
        b1 = self.muon_beta if muon else self.adam_b1
        b2 = self.adam_b2
        agreement = self._agreement(g, mv[0])  # cos(g, m before this step)
        m = b1 * mv[0] + (1 - b1) * g
        v = b2 * mv[1] + (1 - b2) * g * g
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        r = 1.0 / (jnp.sqrt(v / (1 - b2**t)) + self.eps)
        d_adam, d_grad = m_hat * r, g * r
        d_ns = ns_direction(m_hat, self.ns_steps, self.eps) if muon else None
        stats = (
            common.rms(p.astype(jnp.float32)),
            common.rms(m_hat),
            common.rms(v) ** 0.5,
            common.rms(g),
            agreement,
        )
        return jnp.stack([m, v]), (d_ns, d_adam, d_grad), stats

    def _features(self, count, num_steps, prior, loss_ema, stats, grads, tags, state):
        """Per-tensor features, shape (N, T)."""
        frac = fraction_done(count, num_steps)
        trend, progress = common.loss_trend(loss_ema)
        shared = jnp.concatenate(
            [
                jnp.stack([frac, prior, trend, progress]),
                common.time_embedding(count, self.timescales),
            ]
        )
        logs, snr, fans, size = self._tensor_stats(stats, grads)
        onehot = jnp.asarray([[float(tag == k) for k in _TAGS] for tag in tags], jnp.float32)
        muon = jnp.asarray([[float(is_muon_leaf(g.shape))] for g in grads], jnp.float32)
        n = len(grads)
        return jnp.concatenate(
            [
                jnp.broadcast_to(shared, (n, shared.shape[0])),
                logs,
                snr[:, None],
                0.1 * jnp.log(fans),
                onehot,
                muon,
                jnp.clip(0.1 * state.ratio_ema, -3.0, 1.0)[:, None],
                size,
                *self._extra_features(stats, state),
            ],
            axis=1,
        )

    def _extra_features(self, stats, state) -> list:
        """Feature columns a subclass appends (none here)."""
        del stats, state
        return []

    def _tensor_stats(self, stats, grads):
        """Size and gradient features, per tensor: ``logs`` (N, 4), ``snr`` (N,), ``fans``
        (N, 2), ``size`` (N, 1).

        ``logs`` is 0.1 log of (RMS p, RMS m^, RMS sqrt(v), RMS g), clipped to [-8, 8]; ``snr``
        is 0.1 log(RMS m^ / RMS sqrt(v)) clipped to [-3, 3]; ``fans`` are (fan_in, fan_out);
        ``size`` is 0.1 log(number of elements).
        """
        logs = jnp.log(jnp.asarray([list(s[:4]) for s in stats], jnp.float32) + 1e-30)  # (N, 4)
        return self._stat_features(logs, grads, (math.inf, math.inf))

    @staticmethod
    def _stat_features(logs, grads, caps):
        """:meth:`_tensor_stats` from the (N, 4) logs, fans and sizes clamped to ``caps``."""
        logs = jnp.clip(0.1 * logs, -8.0, 8.0)
        snr = jnp.clip(logs[:, 1] - logs[:, 2], -3.0, 3.0)
        fan_cap, size_cap = caps
        fans = jnp.asarray([[min(f, fan_cap) for f in _fans(g.shape)] for g in grads], jnp.float32)
        size = [[0.1 * math.log(min(max(g.size, 1), size_cap))] for g in grads]
        return logs, snr, fans, jnp.asarray(size, jnp.float32)

    @staticmethod
    def _network(theta, x):
        """The per-tensor MLP: (N, T) -> (N, O), tanh hidden layers."""
        return ScaleFreeLOpt._hidden(theta, x) @ theta["w3"] + theta["b3"]

    @staticmethod
    def _hidden(theta, x):
        """The per-tensor MLP's last hidden layer, (N, T) -> (N, H)."""
        h = jnp.tanh(x @ theta["w1"] + theta["b1"])
        return jnp.tanh(h @ theta["w2"] + theta["b2"])


def _check_bools(lopt: Any, names: tuple[str, ...]) -> None:
    for f in names:
        if not isinstance(getattr(lopt, f), bool):
            raise ValueError(
                f"{type(lopt).__name__}: {f} must be true or false, got {getattr(lopt, f)!r}"
            )


def _check_choices(lopt: Any, choices: dict[str, tuple[str, ...]]) -> None:
    for f, allowed in choices.items():
        if getattr(lopt, f) not in allowed:
            raise ValueError(
                f"{type(lopt).__name__}: {f} must be one of {allowed}, got {getattr(lopt, f)!r}"
            )


@dataclasses.dataclass(frozen=True)
class ExperimentalScaleFreeLOpt(ScaleFreeLOpt):
    """:class:`ScaleFreeLOpt` with options that no shipped weights use, for meta-training
    experiments (architecture name ``"scale_free_experimental"``). With every option off
    (the defaults below) its updates are :class:`ScaleFreeLOpt`'s.

    Attributes (besides :class:`ScaleFreeLOpt`'s):
      size_free: features that do not grow with the model (:meth:`_tensor_stats`): fan-in,
        fan-out and size clamped to ``size_caps``, and gradient statistics relative to
        ``sqrt(v)`` instead of absolute.
      size_caps: (fan cap, size cap) of ``size_free``.
      matched_mixing: on Muon leaves, scale ``d_adam`` and ``d_grad`` to ``RMS(d_ns)`` before the
        learned weights mix them in (before ``mixing_fan_cap``'s factor).
      agreement_rate: ``kappa`` of a per-tensor step adaptation from gradient agreement, a
        multiplicative hypergradient (Baydin et al., "Online Learning Rate Adaptation with
        Hypergradient Descent", arXiv:1703.04782): after each update while the prior is > 0,
        ``log r <- clip(log r + kappa (cos(g_t, m_{t-1}) - c0), -12, 12)`` with ``m_{t-1}`` the
        momentum before this step, kept in the ``log_ref`` state. 0 turns it off.
      agreement_leaves: which leaves adapt: ``"all"`` or ``"vectors"`` (leaves that are not
        Muon leaves: biases, gains, a quadratic's vector).
      agreement_mode: ``"both"`` (``log r`` changes by ``kappa (c - c0)``) or ``"grow"`` (by
        ``kappa max(c - c0, 0)``), with ``c = cos(g_t, m_{t-1})``.
      agreement_threshold: ``c0``.
      agreement_gate: ``K``, the bound of a *learned* per-tensor agreement rate: ``kappa =
        agreement_rate + K tanh(o_k)`` with ``o_k`` a sixth output of the network, which then
        also reads ``cos(g_t, m_{t-1})`` and ``0.25 log r`` (clipped to [-3, 3]) as features
        (``T`` = 23). Zero-initialised like the other outputs, so a theta without the gate,
        padded by :meth:`meta_params_from`, gives exactly its old updates. 0 turns it off.
      elementwise_hidden: ``E``, the width of a per-parameter network (VeLO's and LOLv2's
        per-parameter MLPs, here on top of the per-tensor rule, as muLO's and Celo2's learned
        terms on top of the orthogonalised direction). Per element it reads ``F`` = 6 features
        ``f`` = (clip(d_adam), clip(d_grad), clip(d_ns / RMS(d_ns)) (0 off Muon leaves),
        clip(p / max(RMS(p), floor)), fraction of training done, the Muon flag), each clipped to
        [-4, 4], and the direction becomes ``d + RMS(d) e`` with ``e = tanh(f W_e1 + b_e1) w_e2``
        (theta entries ``ew1`` (F, E), ``eb1`` (E,), ``ew2`` (E,); ``ew2`` starts at 0, so the
        term starts at 0 and a theta without it, padded by :meth:`meta_params_from`, gives
        exactly its old updates). About ``7 E`` multiply-adds and ``E`` tanh per parameter. 0
        turns it off.
      elementwise_context: with ``elementwise_hidden``, the per-parameter network also reads
        its tensor's context, the per-tensor network's last hidden layer ``h`` (H units, from
        the tensor's statistics, tags, loss and schedule features): its hidden pre-activation
        gains ``h W_ec`` (theta entry ``ewc`` (H, E), zero at the start and when padded, so a
        theta without it gives exactly its old updates). VeLO's per-tensor LSTM hands its
        per-parameter MLPs a context the same way (Metz et al., arXiv:2211.09760).
    """

    size_free: bool = False
    size_caps: tuple[float, float] = (256.0, 65536.0)
    matched_mixing: bool = False
    agreement_rate: float = 0.0
    agreement_leaves: str = "all"
    agreement_mode: str = "both"
    agreement_threshold: float = 0.0
    agreement_gate: float = 0.0
    elementwise_hidden: int = 0
    elementwise_context: bool = False

    name: ClassVar[str] = "scale_free_experimental"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "size_caps", common.tupled(self.size_caps))
        if not isinstance(self.size_caps, tuple) or len(self.size_caps) != 2:
            raise ValueError(
                f"{type(self).__name__}: size_caps must be (fan cap, size cap), got "
                f"{self.size_caps}"
            )
        off = common.Range("a finite number >= 0 (0: off)", lambda x: x >= 0)
        common.check_settings(
            self,
            {
                "agreement_rate": off,
                "agreement_gate": off,
                "agreement_threshold": common.Range("a number in [-1, 1)", lambda x: -1 <= x < 1),
                "elementwise_hidden": common.Range(
                    "an integer >= 0 (0: off)", lambda x: isinstance(x, int) and x >= 0
                ),
            },
            {"size_caps": common.Range("a finite number >= 1", lambda x: x >= 1)},
        )
        _check_bools(self, ("size_free", "matched_mixing", "elementwise_context"))
        if self.elementwise_context and not self.elementwise_hidden:
            raise ValueError(
                f"{type(self).__name__}: elementwise_context needs elementwise_hidden > 0"
            )
        _check_choices(
            self, {"agreement_leaves": AGREEMENT_LEAVES, "agreement_mode": AGREEMENT_MODES}
        )

    @property
    def _gated(self) -> bool:
        return bool(self.agreement_gate)

    @property
    def _agreement_used(self) -> bool:
        return bool(self.agreement_rate or self.agreement_gate)

    @property
    def num_features(self) -> int:
        """Number ``T`` of per-tensor features: 2 more with ``agreement_gate``."""
        return super().num_features + 2 * self._gated

    @property
    def num_outputs(self) -> int:
        """Number ``O`` of network outputs per tensor: 6 with ``agreement_gate``."""
        return _NUM_OUT + self._gated

    def _init_meta_params(self, key: jax.Array) -> dict:
        k_net, k_elem = jax.random.split(key)
        theta = super()._init_meta_params(k_net)
        return {**theta, **self._init_elementwise(k_elem)} if self.elementwise_hidden else theta

    def _init_elementwise(self, key: jax.Array) -> dict:
        """The per-parameter network's theta entries (class doc); ``ew2`` is zero."""
        e = self.elementwise_hidden
        theta = {
            "ew1": common.glorot(key, _ELEMENT_FEATURES, e, self.init_scale),
            "eb1": jnp.zeros((e,), jnp.float32),
            "ew2": jnp.zeros((e,), jnp.float32),
        }
        return {**theta, **self._init_context()} if self.elementwise_context else theta

    def _init_context(self) -> dict:
        """The context weights of ``elementwise_context``: ``ewc`` (H, E), zero."""
        return {"ewc": jnp.zeros((self.hidden, self.elementwise_hidden), jnp.float32)}

    def meta_params_from(self, saved: Any, theta: dict) -> dict:
        """``theta`` of ``saved`` padded for this optimizer's ``agreement_gate``,
        ``elementwise_hidden`` and / or ``elementwise_context``.

        ``saved`` is a :class:`ScaleFreeLOpt` (or an experimental one) otherwise equal to this
        one, lacking at least one of the three; where neither has an ``agreement_rate``, the
        other agreement settings may differ too, as they change nothing at a zero gate. Returns
        ``theta`` with zero rows of ``w1`` for the gate's two features and a zero column of
        ``w3`` / entry of ``b3`` for its output, the per-parameter network's entries (a fixed
        random ``ew1``, zero ``eb1`` and ``ew2``) and its context weights (zero ``ewc``), so the
        updates are exactly ``saved``'s. Raises ``ValueError`` for any other pair.
        """
        grow_gate = grow_elem = grow_ctx = same = False
        if isinstance(saved, ScaleFreeLOpt):
            if not isinstance(saved, ExperimentalScaleFreeLOpt):
                saved = ExperimentalScaleFreeLOpt(**saved.to_config())
            carried = ["agreement_gate", "elementwise_hidden", "elementwise_context"]
            if not (saved.agreement_rate or self.agreement_rate):
                carried += ["agreement_leaves", "agreement_mode", "agreement_threshold"]
            mine = {f: getattr(self, f) for f in carried}
            same = dataclasses.replace(saved, **mine) == self
            grow_gate = self._gated and not saved._gated
            grow_elem = bool(self.elementwise_hidden) and not saved.elementwise_hidden
            grow_ctx = self.elementwise_context and not saved.elementwise_context
            same = (
                same
                and (grow_gate or grow_elem or grow_ctx)
                and (grow_gate or saved.agreement_gate == self.agreement_gate)
                and (grow_elem or saved.elementwise_hidden == self.elementwise_hidden)
                and (grow_ctx or saved.elementwise_context == self.elementwise_context)
            )
        if not same:
            raise ValueError(
                f"{type(self).__name__}.meta_params_from: only a theta without agreement_gate, "
                "elementwise_hidden or elementwise_context, of an otherwise equal ScaleFreeLOpt, "
                "can be padded for them"
            )
        theta = dict(theta)
        if grow_gate:
            w1, w3, b3 = (jnp.asarray(theta[k], jnp.float32) for k in ("w1", "w3", "b3"))
            theta.update(
                w1=jnp.concatenate([w1, jnp.zeros((2, w1.shape[1]), jnp.float32)]),
                w3=jnp.concatenate([w3, jnp.zeros((w3.shape[0], 1), jnp.float32)], axis=1),
                b3=jnp.concatenate([b3, jnp.zeros((1,), jnp.float32)]),
            )
        if grow_elem:
            theta.update(self._init_elementwise(jax.random.key(0)))
        elif grow_ctx:
            theta.update(self._init_context())
        return theta

    def _element_context(self, theta, x):
        """The per-tensor network's last hidden layer (N, H) with ``elementwise_context``."""
        return self._hidden(theta, x) if self.elementwise_context else None

    def _per_element(self, theta, d, raw, p, count, num_steps, context):
        """``d + RMS(d) e``, ``e`` the per-parameter network's output (class doc)."""
        if not self.elementwise_hidden:
            return d
        d_ns, d_adam, d_grad = raw
        p = p.astype(jnp.float32)
        ns = d_ns / common.rms(d_ns) if d_ns is not None else jnp.zeros_like(d)
        scaled_p = p / jnp.maximum(common.rms(p), self.rms_floor)
        frac = fraction_done(count, num_steps)
        per_tensor = jnp.stack([frac, jnp.float32(d_ns is not None)])  # (2,)
        columns = [d_adam, d_grad, ns, scaled_p]
        x = jnp.stack([jnp.clip(c, -4.0, 4.0).reshape(-1) for c in columns], axis=1)  # (n, 4)
        bias = theta["eb1"] + per_tensor @ theta["ew1"][4:]
        if context is not None:
            bias = bias + context @ theta["ewc"]
        e = jnp.tanh(x @ theta["ew1"][:4] + bias) @ theta["ew2"]
        return d + common.rms(d) * e.reshape(d.shape)

    def agreement_rates(self, out: jax.Array) -> Any:
        """The agreement rate per tensor, ``agreement_rate + K tanh(o_k)`` from the network's
        (N, O) outputs ((N,)), or the fixed ``agreement_rate`` without the gate."""
        if not self._gated:
            return self.agreement_rate
        return self.agreement_rate + self.agreement_gate * jnp.tanh(out[:, _NUM_OUT])

    def _agreement(self, g, m_prev):
        if not self._agreement_used:
            return None
        return jnp.sum(g * m_prev) / (jnp.linalg.norm(g) * jnp.linalg.norm(m_prev) + 1e-30)

    def _mixed(self, d_ns, d_adam, d_grad, shape):
        if self.matched_mixing:
            ref = common.rms(d_ns)
            d_adam, d_grad = (x * (ref / common.rms(x)) for x in (d_adam, d_grad))
        return super()._mixed(d_ns, d_adam, d_grad, shape)

    def _next_log_ref(self, log_ref, stats, grads, count, prior, out):
        """``log r`` after this step, adapted by the gradient agreement (class doc) when
        ``agreement_rate`` or ``agreement_gate`` is set; ``out`` is the network's (N, O)."""
        if not self._agreement_used:
            return log_ref
        rate = self.agreement_rates(out)
        agreement = jnp.stack([s[4] for s in stats])
        live = (count > 0) & (prior > 0)  # m_{t-1} = 0 at the first step
        change = agreement - self.agreement_threshold
        if self.agreement_mode == "grow":
            change = jnp.maximum(change, 0.0)
        if self.agreement_leaves == "vectors":
            vectors = jnp.asarray([not is_muon_leaf(g.shape) for g in grads])
            change = jnp.where(vectors, change, 0.0)
        adapted = jnp.clip(log_ref + rate * change, *LOG_REF_BOUNDS)
        return jnp.where(live, adapted, log_ref)

    def _extra_features(self, stats, state) -> list:
        if not self._gated:
            return []
        agreement = jnp.stack([s[4] for s in stats])[:, None]
        return [agreement, jnp.clip(0.25 * state.log_ref, -3.0, 3.0)[:, None]]

    def _tensor_stats(self, stats, grads):
        """:meth:`ScaleFreeLOpt._tensor_stats`; with ``size_free``, fans and the number of
        elements are clamped to ``size_caps`` and the gradient columns become 0.1 log(RMS m^ /
        RMS sqrt v), 0 and 0.1 log(RMS g / RMS sqrt v): a gradient's absolute scale (which grows
        or shrinks with width, input size and the loss's scale) is not seen, and a tensor larger
        than the caps reads as the caps."""
        if not self.size_free:
            return super()._tensor_stats(stats, grads)
        logs = jnp.log(jnp.asarray([list(s[:4]) for s in stats], jnp.float32) + 1e-30)  # (N, 4)
        log_v = logs[:, 2:3]
        logs = jnp.concatenate(
            [logs[:, :1], logs[:, 1:2] - log_v, jnp.zeros_like(log_v), logs[:, 3:] - log_v], 1
        )
        return self._stat_features(logs, grads, self.size_caps)
