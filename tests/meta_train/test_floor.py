"""The floor loop trains the very members the meta-training unroll trains: at zero perturbation
and within an episode both give the same training losses and parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import learned_opt
import tasks
from meta_train import estimators, floor
from meta_train.particles import LengthSchedule, init_particles


@pytest.mark.parametrize("task_name", ["mlp_mnist1d_w32", "linreg_d16_n0.1_b32"])
def test_floor_losses_equal_the_unrolls_members_at_theta(task_name):
    task = tasks.get(task_name)
    lopt = learned_opt.ScaleFreeLOpt()
    theta = lopt.init_meta_params(jax.random.PRNGKey(0))
    steps, pairs = 12, 3
    settings = estimators.EstimatorSettings(
        truncation_length=steps,
        episode=LengthSchedule("constant", 40, 40),  # no episode ends inside the truncation
        loss_clip=1e9,
        log_loss=False,
    )
    tags = task.param_tags()
    particles = init_particles(
        jax.random.PRNGKey(1),
        task,
        lopt,
        theta,
        pairs,
        settings.episode,
        tags,
        random_offset=False,
    )
    keys = jax.random.split(jax.random.PRNGKey(2), pairs)
    data = jax.device_put(task.load_data())

    st = estimators._static(task, lopt, settings)
    theta_pm = jax.tree.map(lambda t: jnp.broadcast_to(t, (pairs, 2, *t.shape)), theta)
    unrolled, sums = jax.jit(lambda *a: estimators._unroll(st, *a))(theta_pm, particles, keys, data)
    params, _, losses = jax.jit(
        lambda th, p, k, d: floor.train_members(task, lopt, th, p, k, d, steps, tags)
    )(theta, particles, keys, data)

    assert losses.shape == (steps, pairs, 2)
    norm = float(task.loss_normalizer)
    np.testing.assert_allclose(np.asarray(losses).sum(0) / norm, sums["pre"], rtol=2e-5)
    assert not np.asarray(sums["seen"]).any()  # every member stayed in its episode
    # training moved the members, and both loops moved them alike
    first = np.asarray(losses[0])
    assert np.abs(np.asarray(losses[-1]) - first).max() > 1e-3
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(unrolled.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
