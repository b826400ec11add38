"""Tiny protocol-conforming test systems for the estimator tests.

``LRMomentum``: a learned optimizer whose meta-parameters are a log learning rate and a momentum
logit (heavy ball: m <- b m + g, p <- p - exp(log_lr) m). ``Quadratic``: a deterministic quadratic
task 0.5 * sum(curv * (w - target)^2) with array fields ``curv`` and ``p0``. Together they form a
small unrolled system whose exact meta-gradient is ``jax.grad`` of the whole unroll.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct


class MomState(NamedTuple):
    count: jax.Array
    mom: dict


@dataclasses.dataclass(frozen=True)
class LRMomentum:
    name: str = "lr_momentum"
    init_log_lr: float = -2.0
    init_mom_logit: float = 0.0

    def init_meta_params(self, key):
        del key
        return {
            "log_lr": jnp.asarray(self.init_log_lr),
            "mom_logit": jnp.asarray(self.init_mom_logit),
        }

    def optimizer(self, theta, *, num_steps=None, param_tags=None):
        del num_steps, param_tags

        def init(params):
            return MomState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params))

        def update(grads, state, params=None, *, value=None, **extra):
            del params, value, extra
            b = jax.nn.sigmoid(theta["mom_logit"])
            mom = jax.tree.map(lambda m, g: b * m + g, state.mom, grads)
            upd = jax.tree.map(lambda m: -jnp.exp(theta["log_lr"]) * m, mom)
            return upd, MomState(state.count + 1, mom)

        return optax.GradientTransformationExtraArgs(init, update)

    def to_config(self):
        return dataclasses.asdict(self)


@struct.dataclass
class Quadratic:
    curv: jax.Array
    p0: jax.Array
    dim: int = struct.field(pytree_node=False, default=4)
    name: str = struct.field(pytree_node=False, default="quadratic")
    normalizer: float = struct.field(pytree_node=False, default=1.0)

    def init(self, key):
        del key
        return {"w": self.p0}

    def loss(self, params, key, batch):
        del key
        return 0.5 * jnp.sum(self.curv * (params["w"] - batch) ** 2)

    def load_data(self):
        return {"target": jnp.linspace(-1.0, 1.0, self.dim)}

    def batch(self, key, data, split="train"):
        del key, split
        return data["target"]

    def eval_loss(self, params, key, data):
        return self.loss(params, key, self.batch(key, data))

    @property
    def loss_normalizer(self):
        return self.normalizer

    def param_tags(self):
        return None

    @property
    def group_key(self):
        return ("Quadratic", self.dim)


def quadratic(dim: int = 4) -> Quadratic:
    return Quadratic(curv=jnp.linspace(0.5, 2.0, dim), p0=jnp.full((dim,), 2.0), dim=dim)


def tiny_config(**overrides):
    """The quickstart meta-training config cut down to seconds (one group of 4 antithetic pairs,
    truncation 10, episodes of 20..60 steps, 8 outer steps, no evaluation); ``overrides`` set
    top-level fields. Also the ``tiny_config`` fixture, and importable by subprocess scripts."""
    from meta_train import configs

    c = configs.get("quickstart")
    c.num_groups, c.pairs_per_group, c.truncation_length = 1, 4, 10
    c.episode.min_length, c.episode.max_length = 20, 60
    c.group_resample_every, c.outer_steps = 0, 8
    c.checkpoint_every = c.export_every = 8
    c.eval.num_tasks = 0
    for k, v in overrides.items():
        c[k] = v
    return c


def subprocess_env(devices: int | None = None) -> dict:
    """Environment of a test's subprocess: CPU only, this checkout and ``mt_toys`` importable,
    ``devices`` simulated CPU devices (``--xla_force_host_platform_device_count``), and the
    XLA:CPU optimisation level of the test process and the CLIs."""
    import os
    import pathlib

    from meta_train.cli import CPU_OPTIMIZATION_LEVEL

    here = pathlib.Path(__file__).resolve().parent
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=f"{here.parents[1]}:{here}")
    env["XLA_FLAGS"] = f"--xla_backend_optimization_level={CPU_OPTIMIZATION_LEVEL}"
    if devices:
        env["XLA_FLAGS"] += f" --xla_force_host_platform_device_count={devices}"
    return env
