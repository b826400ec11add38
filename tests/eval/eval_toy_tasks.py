"""A tiny protocol-conforming task (noisy linear regression) for the evaluation tests."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class LinearRegression:
    """loss(w) = mean((x @ w - y)^2) on minibatches of a fixed random data set."""

    name: str = struct.field(pytree_node=False, default="linreg")
    dim: int = struct.field(pytree_node=False, default=8)
    batch_size: int = struct.field(pytree_node=False, default=16)
    data_seed: int = struct.field(pytree_node=False, default=0)
    default_steps: int = struct.field(pytree_node=False, default=60)

    def init(self, key):
        return {"w": 0.1 * jax.random.normal(key, (self.dim,))}

    def loss(self, params, key, batch):
        del key
        return jnp.mean((batch["x"] @ params["w"] - batch["y"]) ** 2)

    def load_data(self):
        rng = np.random.default_rng(self.data_seed)
        w_star = rng.normal(size=self.dim).astype(np.float32)

        def split(n):
            x = rng.normal(size=(n, self.dim)).astype(np.float32)
            return {"x": x, "y": x @ w_star + 0.1 * rng.normal(size=n).astype(np.float32)}

        return {"train": split(256), "test": split(128)}

    def batch(self, key, data, split="train"):
        idx = jax.random.randint(key, (self.batch_size,), 0, data[split]["y"].shape[0])
        return jax.tree.map(lambda a: a[idx], data[split])

    def eval_loss(self, params, key, data):
        return self.loss(params, key, data["test"])

    @property
    def loss_normalizer(self):
        return float(self.dim)

    def param_tags(self):
        return {"w": None}

    @property
    def group_key(self):
        return (type(self).__name__, self.dim, self.batch_size, self.data_seed)
