"""flax.linen models of the task zoo, each with a standard and a muP parameterisation.

Layer names follow one convention that :func:`tasks.common.default_tags` reads: the first layer
is named ``input*``, the last ``output*``. Standard parameterisation: flax defaults (LeCun-normal
fan-in init, i.e. Var[W] = 1/fan_in). muP (Yang et al. 2021, "Tensor Programs V"; as used by muLO,
Thérien et al. 2024): fan-in init for input and hidden layers, a zero-initialised output layer
and an output multiplier 1/width (width = fan-in of the output layer), and attention logits
scaled by 1/d_head instead of 1/sqrt(d_head).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from tasks.common import ACTIVATIONS


def _runtime_zeros(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Zeros (signed: 0 x a normal draw) that XLA cannot see as a constant: with
    ``nn.initializers.zeros``, a program that initialises the muP character transformer and
    evaluates its loss in one jit (the evaluation's step-0 held-out loss) came out NaN or 0.0 on
    XLA:CPU instead of log(vocab); eager, or with the params as inputs, it was right."""
    return 0.0 * jax.random.normal(key, shape, dtype)


def _head(x: jax.Array, out: int, mup: bool, name: str = "output") -> jax.Array:
    """Output layer: standard Dense, or muP zero-init Dense times 1/fan_in."""
    if mup:
        return nn.Dense(out, kernel_init=_runtime_zeros, name=name)(x) / x.shape[-1]
    return nn.Dense(out, name=name)(x)


class MLP(nn.Module):
    """x [B, D] -> act(Dense(w_1)) ... act(Dense(w_k)) -> Dense(out) -> [B, out]."""

    hidden: Sequence[int]
    out: int
    activation: str = "relu"
    mup: bool = False

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for i, w in enumerate(self.hidden):
            x = act(nn.Dense(w, name="input" if i == 0 else f"hidden_{i}")(x))
        return _head(x, self.out, self.mup)


class ConvNet(nn.Module):
    """x [B, H, W, C] -> k x (3x3 conv stride 2, act) -> global mean pool -> Dense(out)."""

    channels: Sequence[int]
    out: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for i, c in enumerate(self.channels):
            name = "input" if i == 0 else f"conv_{i}"
            x = act(nn.Conv(c, (3, 3), strides=(2, 2), padding="SAME", name=name)(x))
        return nn.Dense(self.out, name="output")(jnp.mean(x, axis=(1, 2)))


class Autoencoder(nn.Module):
    """x [B, D] -> act(Dense(w)) -> act(Dense(z)) -> act(Dense(w)) -> sigmoid(Dense(D))."""

    width: int
    bottleneck: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        d = x.shape[-1]
        h = act(nn.Dense(self.width, name="input")(x))
        h = act(nn.Dense(self.bottleneck, name="hidden_code")(h))
        h = act(nn.Dense(self.width, name="hidden_dec")(h))
        return jax.nn.sigmoid(nn.Dense(d, name="output")(h))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + Attn(LN(x)); x + MLP(LN(x)) (MLP width 4 d)."""

    heads: int
    mup: bool = False

    @nn.compact
    def __call__(self, x):
        b, t, d = x.shape
        dh = d // self.heads
        h = nn.LayerNorm(name="ln_attn")(x)
        qkv = nn.Dense(3 * d, name="qkv")(h).reshape(b, t, 3, self.heads, dh)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        scale = 1.0 / dh if self.mup else dh**-0.5
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * scale
        causal = jnp.tril(jnp.ones((t, t), bool))
        logits = jnp.where(causal, logits, jnp.finfo(logits.dtype).min)
        att = jax.nn.softmax(logits, axis=-1)
        y = jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, t, d)
        x = x + nn.Dense(d, name="proj")(y)
        h = nn.LayerNorm(name="ln_mlp")(x)
        h = nn.Dense(d, name="mlp_out")(jax.nn.gelu(nn.Dense(4 * d, name="mlp_in")(h)))
        return x + h


class CharTransformer(nn.Module):
    """Decoder-only character LM: tokens [B, T] int -> logits [B, T, vocab]."""

    vocab: int
    width: int
    depth: int
    heads: int
    max_len: int
    mup: bool = False

    @nn.compact
    def __call__(self, tokens):
        init = nn.initializers.normal(1.0)
        table = self.param("input_embed", init, (self.vocab, self.width))
        # One-hot matmul instead of a gather: the gradient is a matmul, not a CPU scatter-add.
        x = jax.nn.one_hot(tokens, self.vocab, dtype=table.dtype) @ table
        pos = self.param("input_pos", nn.initializers.normal(0.1), (self.max_len, self.width))
        x = x + pos[: tokens.shape[1]]
        for i in range(self.depth):
            x = Block(self.heads, self.mup, name=f"block_{i}")(x)
        x = nn.LayerNorm(name="ln_final")(x)
        return _head(x, self.vocab, self.mup)
