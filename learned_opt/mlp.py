"""MLPLOpt: a per-parameter MLP learned optimizer (LOLv2 / ``small_fc_lopt`` family, muLO mode).

References: Metz et al., "Practical tradeoffs between memory, compute, and performance in learned
optimizers" (2022, LOLv2 / small_fc_lopt); Therien et al., "muLO: Compute-efficient
meta-generalization of learned optimizers" (2024).

For every parameter element the optimizer builds ``F`` features from its own accumulators
(defaults: ``K = 5`` momentum decays, Adafactor on, ``F = 16``)::

    g, p, m_k (k < K), g*rsqrt(v), m_k*rsqrt(v) (k < K), rsqrt(v),
    [Adafactor] g*rsqrt(f), m_j*rsqrt(f)    (f = row_r col_c / mean(row); j: decay nearest 0.9)

with ``m_k <- b_k m_k + (1 - b_k) g`` and ``v <- b_v v + (1 - b_v) g^2``. Each feature is divided by
its RMS over the tensor (LOLv2's second-moment normaliser). ``T = 11`` step-count features
``tanh(count / s)`` are shared by the whole tensor, so their contribution to the first layer is a
bias computed once. The MLP (ReLU, hidden sizes ``hidden_sizes``, default (32, 32)) plus a linear
skip connection from the ``F`` features give two outputs, a direction ``d`` and a magnitude ``m``::

    update = -d * exp(m * exp_mult) * step_mult * mup_scale          (exp_mult = step_mult = 1e-3)

``mup_scale`` is 1/fan_in for tensors tagged ``'hidden'`` in muP mode and 1 otherwise.

Design choice for the initial theta (``init_direction``): the skip connection is initialised so
that ``d`` equals the RMS-normalised Adam direction ``m_0.9 * rsqrt(v)`` (``"adam"``, default), the
normalised momentum ``m_0.9`` (``"momentum"``), or zero (``"none"``: a plain random MLP as in
LOLv2). The MLP's output layer starts small (``output_init_scale``), so the untrained optimizer is
close to "Adam with a per-tensor normalised step of RMS 1e-3" and meta-training starts from a
working optimizer rather than from noise.

Because every input feature except ``p`` is normalised by its tensor RMS, rescaling all
gradients by ``c > 0`` leaves the update unchanged (up to the epsilons below).

The update runs as XLA ops (:meth:`MLPLOpt._leaf_update_xla`) on every platform. On CPU,
``cpu_kernel=True`` opts in to a fused kernel of the same rule (:mod:`learned_opt.cpu_kernel`:
compiled with a C++ compiler on first use, used only in programs that run on one device).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from learned_opt import common
from learned_opt import cpu_kernel as kernel_lib

_EPS_V = 1e-24  # added to second moments before rsqrt (gradients >> 1e-12 unaffected)
_EPS_NORM = 1e-12  # added to mean squares in the RMS normaliser

LOLV2_TIMESCALES = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000)

# Tensors of more than CHUNK_ABOVE elements run the MLP over chunks of CHUNK elements, so the
# jitted update of a large tensor needs about 125 bytes per parameter (arguments, outputs and
# temporaries; ``compiled.memory_analysis()`` on CPU, 4M-element tensor) instead of 300.
CHUNK = 1 << 18
CHUNK_ABOVE = 1 << 20


class MLPLOptState(NamedTuple):
    """Optimizer state. All trees share the params' structure; ``n`` = leaf shape.

    count:         int32 scalar, number of updates done.
    momenta:       float32 leaves ``(*n, K)``, one EMA of the gradient per decay.
    second_moment: float32 leaves ``n``, EMA of g^2.
    row_factor:    float32 leaves ``n[:-1]`` (Adafactor rows; ``()`` for leaves of rank < 2).
    col_factor:    float32 leaves ``n[:-2] + n[-1:]`` (Adafactor columns; ``()`` likewise).
    mup_scale:     float32 scalar per leaf, the per-tensor step multiplier (muP).
    """

    count: jax.Array
    momenta: Any
    second_moment: Any
    row_factor: Any
    col_factor: Any
    mup_scale: Any


@dataclasses.dataclass(frozen=True)
class MLPLOpt:
    """Per-parameter MLP learned optimizer; see the module docstring for the update rule.

    Attributes:
      hidden_sizes: widths of the MLP's hidden layers.
      momentum_decays: decays ``b_k`` of the gradient EMAs.
      rms_decay: decay of the second-moment EMA.
      adafactor: add the two Adafactor-factored features.
      adafactor_decay: decay of the Adafactor row/column EMAs.
      timescales: the ``s`` of the ``tanh(count / s)`` step features.
      exp_mult, step_mult: constants of ``d * exp(m * exp_mult) * step_mult``.
      mup: muLO mode (step of ``'hidden'`` tensors times 1/fan_in).
      init_direction: ``"adam"``, ``"momentum"`` or ``"none"``; what the initial skip weights pick.
      output_init_scale: scale of the random init of the MLP's last layer.
      cpu_kernel: on CPU, run the update by the fused kernel of :mod:`learned_opt.cpu_kernel`
        where it applies (compiled on first use; off: XLA's version, never compiled). An
        execution choice, not a setting of the rule: :meth:`to_config` leaves it out.
    """

    hidden_sizes: tuple[int, ...] = (32, 32)
    momentum_decays: tuple[float, ...] = (0.1, 0.5, 0.9, 0.99, 0.999)
    rms_decay: float = 0.999
    adafactor: bool = True
    adafactor_decay: float = 0.999
    timescales: tuple[float, ...] = LOLV2_TIMESCALES
    exp_mult: float = 1e-3
    step_mult: float = 1e-3
    mup: bool = False
    init_direction: str = "adam"
    output_init_scale: float = 1e-2
    cpu_kernel: bool = False

    name: ClassVar[str] = "mlp"

    def __post_init__(self):
        for f in ("hidden_sizes", "momentum_decays", "timescales"):
            object.__setattr__(self, f, common.tupled(getattr(self, f)))
        if not self.momentum_decays:
            raise ValueError("MLPLOpt: momentum_decays must not be empty")
        if self.init_direction not in ("adam", "momentum", "none"):
            raise ValueError(
                f"MLPLOpt: init_direction={self.init_direction!r}; use 'adam', 'momentum' or 'none'"
            )
        common.check_settings(
            self,
            {
                "rms_decay": common.DECAY,
                "adafactor_decay": common.DECAY,
                "exp_mult": common.POSITIVE,
                "step_mult": common.POSITIVE,
                "output_init_scale": common.NON_NEGATIVE,
            },
            {
                "hidden_sizes": common.COUNT,
                "momentum_decays": common.DECAY,
                "timescales": common.POSITIVE,
            },
        )
        for f in ("adafactor", "mup", "cpu_kernel"):
            if not isinstance(getattr(self, f), bool):
                raise ValueError(f"MLPLOpt: {f} must be true or false, got {getattr(self, f)!r}")

    # ----------------------------------------------------------------- static sizes
    @property
    def num_features(self) -> int:
        """Number ``F`` of per-parameter features (excluding the shared step features)."""
        k = len(self.momentum_decays)
        return 2 * k + 4 + (2 if self.adafactor else 0)

    def feature_names(self) -> list[str]:
        """Names of the ``F`` per-parameter features, in input order."""
        ds = self.momentum_decays
        names = ["g", "p", *[f"m{d}" for d in ds], "g*rsqrt(v)"]
        names += [f"m{d}*rsqrt(v)" for d in ds] + ["rsqrt(v)"]
        if self.adafactor:
            names += ["g*rsqrt(f)", f"m{ds[self._mid]}*rsqrt(f)"]
        return names

    @property
    def _mid(self) -> int:
        """Index of the momentum decay nearest 0.9 (used by Adafactor and the init)."""
        return min(
            range(len(self.momentum_decays)), key=lambda i: abs(self.momentum_decays[i] - 0.9)
        )

    def to_config(self) -> dict:
        """JSON-serialisable settings of the rule; ``MLPLOpt(**to_config())`` rebuilds this
        object with ``cpu_kernel`` off (the same rule: ``cpu_kernel`` is left out, so a saved
        optimizer reads the same with the kernel on or off)."""
        config = common.dataclass_config(self)
        del config["cpu_kernel"]
        return config

    # ----------------------------------------------------------------- meta-params
    def init_meta_params(self, key: jax.Array) -> dict:
        """theta = {"layers": {"layer_i": {"w": (n_in, n_out), "b": (n_out,)}},
        "skip": {"w": (F, 2)}}.

        Layer 0 takes ``F + T`` inputs (per-parameter then step features); the last layer has 2
        outputs (direction, magnitude).
        """
        return common.jit_init(self, key)

    def _init_meta_params(self, key: jax.Array) -> dict:
        f, t = self.num_features, len(self.timescales)
        sizes = [f + t, *self.hidden_sizes, 2]
        keys = jax.random.split(key, len(sizes) - 1)
        layers = {}
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            last = i == len(sizes) - 2
            scale = self.output_init_scale if last else 1.0
            layers[f"layer_{i}"] = {
                "w": common.glorot(keys[i], n_in, n_out, scale),
                "b": jnp.zeros((n_out,), jnp.float32),
            }
        skip = jnp.zeros((f, 2), jnp.float32)
        k = len(self.momentum_decays)
        if self.init_direction == "adam":
            skip = skip.at[2 + k + 1 + self._mid, 0].set(1.0)  # m_mid * rsqrt(v)
        elif self.init_direction == "momentum":
            skip = skip.at[2 + self._mid, 0].set(1.0)  # m_mid
        return {"layers": layers, "skip": {"w": skip}}

    # ----------------------------------------------------------------- the transform
    def optimizer(
        self, theta: Any, *, num_steps: Any = None, param_tags: Any = None
    ) -> optax.GradientTransformationExtraArgs:
        """The optax transform for meta-parameters ``theta`` (may be traced).

        ``num_steps`` is accepted for API compatibility and unused (the step features are
        absolute), but checked like the other architectures' (``None`` or an integer >= 1, else
        ``ValueError``). ``param_tags`` sets muP tags (only read when ``mup=True``).
        """
        if num_steps is not None:
            common.check_num_steps(num_steps, "MLPLOpt.optimizer")

        def init_fn(params):
            common.check_float_leaves(params)
            leaves, treedef = jax.tree_util.tree_flatten(params)
            k = len(self.momentum_decays)
            shapes = [jnp.shape(x) for x in leaves]
            zeros = lambda s: jnp.zeros(s, jnp.float32)
            rows = [zeros(s[:-1] if len(s) >= 2 else ()) for s in shapes]
            cols = [zeros(s[:-2] + s[-1:] if len(s) >= 2 else ()) for s in shapes]
            if self.mup:
                scales = common.mup_multipliers(params, param_tags)
            else:
                scales = [jnp.ones((), jnp.float32) for _ in leaves]
            unflat = lambda xs: jax.tree_util.tree_unflatten(treedef, xs)
            return MLPLOptState(
                count=jnp.zeros((), jnp.int32),
                momenta=unflat([zeros((*s, k)) for s in shapes]),
                second_moment=unflat([zeros(s) for s in shapes]),
                row_factor=unflat(rows),
                col_factor=unflat(cols),
                mup_scale=unflat(scales),
            )

        def update_fn(updates, state, params=None, **extra):
            del extra
            if params is None:
                raise ValueError("MLPLOpt.update needs params (the parameter value is a feature)")
            common.check_update_args(updates, params, "MLPLOpt")
            grads, treedef = jax.tree_util.tree_flatten(updates)
            flat = lambda tree: treedef.flatten_up_to(tree)
            t_feat = common.time_embedding(state.count, self.timescales)
            outs = [
                self._leaf_update(theta, t_feat, *xs)
                for xs in zip(
                    grads,
                    flat(params),
                    flat(state.momenta),
                    flat(state.second_moment),
                    flat(state.row_factor),
                    flat(state.col_factor),
                    flat(state.mup_scale),
                    strict=True,
                )
            ]
            unflat = lambda i: jax.tree_util.tree_unflatten(treedef, [o[i] for o in outs])
            new_state = MLPLOptState(
                count=state.count + 1,
                momenta=unflat(1),
                second_moment=unflat(2),
                row_factor=unflat(3),
                col_factor=unflat(4),
                mup_scale=state.mup_scale,
            )
            return unflat(0), new_state

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)

    def _leaf_update(self, theta, t_feat, g, p, m, v, row, col, scale):
        """Update of one tensor: returns (update, momenta, second_moment, row, col). XLA's
        version (:meth:`_leaf_update_xla`), or with ``cpu_kernel`` on CPU the fused kernel of
        :mod:`learned_opt.cpu_kernel` in a program that runs on one device (XLA's version in a
        program partitioned over several, and on a GPU or TPU backend, where the kernel is not
        even built)."""
        args = (theta, t_feat, g, p, m, v, row, col, scale)
        k = len(self.momentum_decays)
        if not (
            self.cpu_kernel
            and jnp.size(g) > 0
            and kernel_lib.usable(k, self.adafactor, self.hidden_sizes)
        ):
            return self._leaf_update_xla(*args)

        def on_cpu(*args):
            branches = (self._leaf_update_xla, self._leaf_update_fused)
            return jax.lax.switch(kernel_lib.one_device_program(), branches, *args)

        return jax.lax.platform_dependent(*args, cpu=on_cpu, default=self._leaf_update_xla)

    def _leaf_update_fused(self, theta, t_feat, g, p, m, v, row, col, scale):
        """:meth:`_leaf_update` by one call of the fused CPU kernel; its derivatives are
        :meth:`_leaf_update_xla`'s (``jax.custom_jvp``)."""

        @jax.custom_jvp
        def fused(theta, t_feat, g, p, m, v, row, col, scale):
            shape, k = jnp.shape(g), len(self.momentum_decays)
            factored = self.adafactor and len(shape) >= 2
            layers, w_in, b_in, w_skip = self._folded_weights(theta, t_feat)
            flat = lambda x: jnp.reshape(x, (-1,)).astype(jnp.float32)
            unused = jnp.zeros((1,), jnp.float32)
            operands = (
                flat(g),
                flat(p),
                jnp.reshape(m, (-1, k)),
                flat(v),
                flat(row) if factored else unused,
                flat(col) if factored else unused,
                self.step_mult * scale,
                w_in,
                b_in,
                layers[1]["w"],
                layers[1]["b"],
                layers[2]["w"],
                w_skip,
                layers[2]["b"],
            )
            update, m, v, row_new, col_new = kernel_lib.step(
                operands,
                decays=self.momentum_decays,
                rms_decay=self.rms_decay,
                adafactor_decay=self.adafactor_decay,
                adafactor=self.adafactor,
                mid=self._mid,
                exp_mult=self.exp_mult,
                factored_dims=shape[-2:] if factored else (0, 0),
            )
            if factored:
                row, col = row_new.reshape(row.shape), col_new.reshape(col.shape)
            update = update.reshape(shape).astype(p.dtype)
            return update, m.reshape((*shape, k)), v.reshape(shape), row, col

        fused.defjvp(lambda primals, tangents: jax.jvp(self._leaf_update_xla, primals, tangents))
        with jax.named_scope("fused_update"):
            return fused(theta, t_feat, g, p, m, v, row, col, scale)

    def _leaf_update_xla(self, theta, t_feat, g, p, m, v, row, col, scale):
        """:meth:`_leaf_update` as XLA ops."""
        g, p = jnp.asarray(g), jnp.asarray(p)
        decays = jnp.asarray(self.momentum_decays, jnp.float32)
        g32 = g.astype(jnp.float32)
        g2 = jnp.square(g32)
        m = decays * m + (1.0 - decays) * g32[..., None]
        v = self.rms_decay * v + (1.0 - self.rms_decay) * g2
        rv = jax.lax.rsqrt(v + _EPS_V)
        k = len(self.momentum_decays)
        feats = [g32, p.astype(jnp.float32)]
        feats += [m[..., i] for i in range(k)] + [g32 * rv]
        feats += [m[..., i] * rv for i in range(k)] + [rv]
        if self.adafactor:
            if g.ndim >= 2:
                bf = self.adafactor_decay
                row = bf * row + (1.0 - bf) * jnp.mean(g2 + 1e-30, axis=-1)
                col = bf * col + (1.0 - bf) * jnp.mean(g2 + 1e-30, axis=-2)
                row_mean = jnp.mean(row, axis=-1, keepdims=True)
                fac = (row / row_mean)[..., :, None] * col[..., None, :]
                rf = jax.lax.rsqrt(fac + _EPS_V)
            else:
                rf = rv
            feats += [g32 * rf, m[..., self._mid] * rf]
        if g.size > CHUNK_ABOVE:  # bounded memory: the MLP runs over chunks of the tensor
            step = self._chunked_mlp(theta, t_feat, feats)
        else:
            step = self._mlp(theta, t_feat, feats, self._inverse_rms(feats))
        step = step * (self.step_mult * scale)
        return (-step).astype(p.dtype), m, v, row, col

    @staticmethod
    def _inverse_rms(feats):
        """``1 / RMS`` over the tensor of each of the ``F`` features: shape ``(F,)``."""
        n = max(feats[0].size, 1)
        with jax.named_scope("feature_norms"):
            ms = jnp.stack([jnp.sum(jnp.square(f)) for f in feats]) / n
        return jax.lax.rsqrt(ms + _EPS_NORM)

    def _folded_weights(self, theta, t_feat, inv=None):
        """The MLP's layers and the weights that take the raw features: ``W_in = inv_f W_0[f]``
        (F, H_0), ``b_in = b_0 + t W_0[F:]`` (H_0,), ``W_skip = inv_f W_skip[f]`` (F, 2). (The
        normaliser is folded into the weights, ``(x * inv) @ W = x @ (inv[:, None] * W)``;
        ``inv=None``: not folded, as the fused kernel folds it itself.)"""
        layers = [theta["layers"][f"layer_{i}"] for i in range(len(self.hidden_sizes) + 1)]
        f = self.num_features
        w0 = layers[0]["w"]
        b_in = layers[0]["b"] + t_feat @ w0[f:]
        w_in, w_skip = w0[:f], theta["skip"]["w"]
        if inv is not None:
            w_in, w_skip = w_in * inv[:, None], w_skip * inv[:, None]
        return layers, w_in, b_in, w_skip

    def _mlp(self, theta, t_feat, feats, inv):
        """``d * exp(m * exp_mult)`` for the ``F`` features ``feats`` (each of shape ``(*n,)``)
        normalised by ``inv`` (F,), as XLA ops. The first layer and the skip are written as sums
        over the features, ``h_0 = b_0 + t W_0[F:] + sum_f x_f (inv_f W_0[f])`` and
        ``(d, m)_skip = sum_f x_f (inv_f W_skip[f])``: XLA fuses each into one element-wise loop
        with the features' own arithmetic (and ``h_0``'s ReLU), so the ``(*n, F)`` feature stack
        is never built and no matrix product with only ``F`` inner dimensions runs; only the
        hidden layers are matrix products.
        """
        with jax.named_scope("per_param_mlp"):
            layers, w_in, b_in, w_skip = self._folded_weights(theta, t_feat, inv)
            weighted = lambda w: sum(x[..., None] * wi for x, wi in zip(feats, w, strict=True))
            h = weighted(w_in) + b_in  # (*n, H_0)
            for layer in layers[1:]:
                h = jax.nn.relu(h) @ layer["w"] + layer["b"]
            d, m = (
                h[..., j] + sum(x * w for x, w in zip(feats, w_skip[:, j], strict=True))
                for j in (0, 1)
            )
            return d * jnp.exp(m * self.exp_mult)

    def _chunked_mlp(self, theta, t_feat, feats):
        """:meth:`_mlp` over chunks of ``CHUNK`` elements (``lax.map``), so the ``(n, hidden)``
        activations of a large tensor are never materialised at once (the padded features,
        4 bytes per feature and element, remain)."""
        shape, n = feats[0].shape, feats[0].size
        inv = self._inverse_rms(feats)
        pad = -n % CHUNK
        cols = [jnp.pad(f.reshape(-1), (0, pad)).reshape(-1, CHUNK) for f in feats]
        out = jax.lax.map(lambda chunk: self._mlp(theta, t_feat, list(chunk), inv), cols)
        return out.reshape(-1)[:n].reshape(shape)
