"""Fixtures of the meta-training tests."""

import jax
import jax.numpy as jnp
import pytest
from mt_toys import LRMomentum, quadratic


@pytest.fixture(scope="module")
def system():
    """The estimators' test system: ``(task, lopt, theta, data)`` of the quadratic task and the
    learned-rate-and-momentum toy optimizer, whose exact meta-gradient is ``jax.grad``."""
    task, lopt = quadratic(), LRMomentum()
    theta = lopt.init_meta_params(None)
    data = jax.tree.map(jnp.asarray, task.load_data())
    return task, lopt, theta, data
