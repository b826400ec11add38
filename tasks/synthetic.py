"""Synthetic embedded tasks (no data files): noisy quadratics and linear regression.

Both draw their data inside the compiled program from the task's own array fields, so a batch of
tasks vmapped over those fields is a batch of different problems of one shape.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tasks import common
from tasks.common import TaskBase, static


def _empty_data() -> dict:
    return {"train": {}, "test": {}}


@struct.dataclass(kw_only=True)
class QuadraticTask(TaskBase):
    """Noisy rotated quadratic  L(x) = 1/2 mean_i h_i (R (x - c) + n)_i^2,  n ~ N(0, s^2 I).

    Static: ``dim``, ``cond`` (h_i = cond^(-i/(dim-1)), i.e. eigenvalues geometrically spaced in
    [1/cond, 1]), ``noise`` (s, the std of the per-example gradient noise). Arrays: ``center``
    c [dim] ~ N(0, I), ``rotation`` R [dim, dim] (Haar-orthogonal, ``jax.random.orthogonal``;
    identity when unrotated), ``init_scale`` (x_0 ~ init_scale * N(0, I)). The normaliser is
    E_c L(0) at s = 0, i.e. 1/2 mean_i h_i. ``eval_loss`` is the exact noise-free loss.
    """

    dim: int = static(16)
    cond: float = static(100.0)
    noise: float = static(0.1)
    center: Any = None
    rotation: Any = None

    def validate(self):
        common.check_positive_int("dim", self.dim)
        if not (isinstance(self.cond, int | float) and self.cond >= 1):
            raise ValueError(f"cond must be a number >= 1, got {self.cond!r}")
        if not (isinstance(self.noise, int | float) and self.noise >= 0):
            raise ValueError(f"noise must be a number >= 0, got {self.noise!r}")

    @classmethod
    def create(cls, key: jax.Array | None = None, **static_fields) -> QuadraticTask:
        """A task with its arrays drawn from ``key`` (default key 0), rotated."""
        task = cls(**static_fields)
        return task.sample_arrays(jax.random.key(0) if key is None else key)

    def sample_arrays(self, key, init_scale=(1.0, 1.0), rotate: bool = True) -> QuadraticTask:
        k1, k2, k3 = jax.random.split(key, 3)
        rot = jax.random.orthogonal(k2, self.dim) if rotate else jnp.eye(self.dim)
        return self.replace(
            center=jax.random.normal(k1, (self.dim,)),
            rotation=rot,
            init_scale=common.log_uniform(k3, *init_scale),
        )

    @property
    def name(self) -> str:
        b = "" if self.batch_size == 128 else f"_b{self.batch_size}"
        return f"quadratic_d{self.dim}_k{self.cond:g}_n{self.noise:g}{b}"

    @property
    def eigenvalues(self) -> np.ndarray:
        return np.geomspace(1.0, 1.0 / self.cond, self.dim).astype(np.float32)

    def load_data(self) -> dict:
        return _empty_data()

    def init(self, key):
        return {"x": jax.random.normal(key, (self.dim,)) * self.init_scale}

    def batch(self, key, data, split: str = "train", size: int | None = None):
        del data, split
        n = size or self.batch_size
        return {"noise": self.noise * jax.random.normal(key, (n, self.dim))}

    def _loss(self, x, noise):
        z = (x - self.center) @ self.rotation.T
        return 0.5 * jnp.mean(jnp.mean(jnp.asarray(self.eigenvalues) * jnp.square(z + noise), -1))

    def loss(self, params, key, batch):
        del key
        return self._loss(params["x"], batch["noise"])

    def eval_loss(self, params, key, data):
        del key, data
        return self._loss(params["x"], jnp.zeros((1, self.dim)))

    @property
    def loss_normalizer(self) -> float:
        return float(0.5 * self.eigenvalues.mean())

    def param_tags(self):
        return {"x": "input"}


@struct.dataclass(kw_only=True)
class LinearRegressionTask(TaskBase):
    """Least squares  L(w, b) = 1/2 mean_n (x_n.w + b - y_n)^2,  y = x.w* + s eps.

    Inputs x ~ N(0, diag(feature_scale^2)) and noise eps ~ N(0, 1) are drawn inside the batch.
    Static: ``dim``, ``noise`` (s). Arrays: ``w_true`` [dim] ~ N(0, I/dim), ``feature_scale``
    [dim] (log-uniform in ``feature_range``), ``init_scale``. Normaliser: the loss of
    predicting 0, E[y^2]/2 = (1 + s^2)/2 at unit feature scales.
    """

    dim: int = static(16)
    noise: float = static(0.1)
    w_true: Any = None
    feature_scale: Any = None

    def validate(self):
        common.check_positive_int("dim", self.dim)
        if not (isinstance(self.noise, int | float) and self.noise >= 0):
            raise ValueError(f"noise must be a number >= 0, got {self.noise!r}")

    @classmethod
    def create(cls, key: jax.Array | None = None, **static_fields) -> LinearRegressionTask:
        task = cls(**static_fields)
        return task.sample_arrays(jax.random.key(0) if key is None else key)

    def sample_arrays(
        self, key, init_scale=(1.0, 1.0), feature_range=(1.0, 1.0)
    ) -> LinearRegressionTask:
        k1, k2, k3 = jax.random.split(key, 3)
        return self.replace(
            w_true=jax.random.normal(k1, (self.dim,)) / np.sqrt(self.dim),
            feature_scale=common.log_uniform(k2, *feature_range, shape=(self.dim,)),
            init_scale=common.log_uniform(k3, *init_scale),
        )

    @property
    def name(self) -> str:
        b = "" if self.batch_size == 128 else f"_b{self.batch_size}"
        return f"linreg_d{self.dim}_n{self.noise:g}{b}"

    def load_data(self) -> dict:
        return _empty_data()

    def init(self, key):
        w = jax.random.normal(key, (self.dim,)) / np.sqrt(self.dim) * self.init_scale
        return {"w": w, "b": jnp.zeros((), jnp.float32)}

    def batch(self, key, data, split: str = "train", size: int | None = None):
        del data, split
        n = size or self.batch_size
        kx, ke = jax.random.split(key)
        x = jax.random.normal(kx, (n, self.dim)) * self.feature_scale
        y = x @ self.w_true + self.noise * jax.random.normal(ke, (n,))
        return {"x": x, "y": y}

    def loss(self, params, key, batch):
        del key
        pred = batch["x"] @ params["w"] + params["b"]
        return 0.5 * jnp.mean(jnp.square(pred - batch["y"]))

    @property
    def loss_normalizer(self) -> float:
        return 0.5 * (1.0 + self.noise**2)

    def param_tags(self):
        return {"w": "input", "b": "input"}
