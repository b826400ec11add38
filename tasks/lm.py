"""Character-level transformer language model on tiny_shakespeare (tfds, one string per split).

A batch is ``{"tokens": uint8 [B, seq_len + 1]}``: B windows starting at uniform offsets in
[0, T - seq_len - 1], drawn inside jit. Loss: mean next-character cross entropy; normaliser
log(vocab) (a uniform predictor).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from tasks import common, data, models
from tasks.common import TaskBase, static

VOCAB = len(data.SHAKESPEARE_VOCAB)


def window_indices(key: jax.Array, n_tokens: int, batch_size: int, seq_len: int) -> jax.Array:
    """int32 ``[batch_size, seq_len + 1]`` token indices: uniform start offsets + arange."""
    starts = jax.random.randint(key, (batch_size,), 0, n_tokens - seq_len, dtype=jnp.int32)
    return starts[:, None] + jnp.arange(seq_len + 1, dtype=jnp.int32)[None, :]


@struct.dataclass(kw_only=True)
class CharLMTask(TaskBase):
    """Decoder-only transformer (pre-LN, causal attention, MLP 4x) over characters.

    Static: ``seq_len``, ``width``, ``depth``, ``heads``, ``mup`` (muP: zero-init output layer,
    1/width output multiplier, 1/d_head attention scaling).
    """

    dataset: str = static("tiny_shakespeare")
    seq_len: int = static(32)
    width: int = static(32)
    depth: int = static(2)
    heads: int = static(2)
    mup: bool = static(False)
    batch_size: int = static(32)
    eval_batch_size: int = static(256)

    def validate(self):
        common.check_choice("dataset", self.dataset, data.TEXT_DATASETS)
        for f in ("seq_len", "width", "depth", "heads"):
            common.check_positive_int(f, getattr(self, f))
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")

    @property
    def name(self) -> str:
        mup = "_mup" if self.mup else ""
        b = "" if self.batch_size == 32 else f"_b{self.batch_size}"
        return f"lm_shakespeare_s{self.seq_len}_w{self.width}_d{self.depth}{mup}{b}"

    @property
    def model(self) -> models.CharTransformer:
        return models.CharTransformer(
            VOCAB, self.width, self.depth, self.heads, self.seq_len, self.mup
        )

    def load_data(self) -> dict:
        return data.load(self.dataset)

    def batch(self, key, data, split: str = "train", size: int | None = None):
        tokens = data[split]["tokens"]
        idx = window_indices(key, tokens.shape[0], size or self.batch_size, self.seq_len)
        return {"tokens": jnp.asarray(tokens)[idx]}

    def init(self, key):
        tokens = jnp.zeros((1, self.seq_len), jnp.int32)
        return self.scale_init(self.model.init(key, tokens)["params"])

    def loss(self, params, key, batch):
        del key
        tokens = batch["tokens"].astype(jnp.int32)
        logits = self.model.apply({"params": params}, tokens[:, :-1])
        return common.softmax_xent(logits, tokens[:, 1:])

    @property
    def loss_normalizer(self) -> float:
        return math.log(VOCAB)
