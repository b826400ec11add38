"""Schedule-Free AdamW and Prodigy as baselines: step for step optax's own transforms, and
Schedule-Free's held-out loss evaluated at its averaged iterate."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tasks
from eval import runner
from eval.baselines import parse_candidate

STEPS = 40


def _params():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return {"w": jax.random.normal(k1, (5, 3)), "b": jax.random.normal(k2, (3,))}


def _loss(p, t):
    x = jnp.sin(jnp.arange(5.0) + t)
    return jnp.sum((x @ p["w"] + p["b"] - 1.0) ** 2)


@pytest.mark.parametrize(
    "name, reference",
    [
        (
            "schedule_free_adamw",
            lambda lr: optax.contrib.schedule_free_adamw(
                lr, warmup_steps=max(1, int(0.05 * STEPS)), weight_decay=1e-4
            ),
        ),
        ("prodigy", lambda lr: optax.contrib.prodigy(lr)),
    ],
)
def test_baseline_is_optax_step_for_step(name, reference):
    lr = 0.03
    ours = parse_candidate(f"{name}@{lr}").make(lr, num_steps=STEPS)
    theirs = reference(lr)
    p1 = p2 = _params()
    s1, s2 = ours.init(p1), theirs.init(p2)
    for t in range(STEPS):
        g1, g2 = jax.grad(_loss)(p1, t), jax.grad(_loss)(p2, t)
        u1, s1 = ours.update(g1, s1, p1)
        u2, s2 = theirs.update(g2, s2, p2)
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
        jax.tree.map(np.testing.assert_array_equal, p1, p2)


@pytest.mark.slow
def test_schedule_free_held_out_loss_is_at_the_averaged_iterate():
    task = tasks.get("linreg_d64_n0.3_b32")
    data = task.load_data()
    cand = parse_candidate("schedule_free_adamw@0.03")
    train = jax.jit(runner.make_train_fn(task, cand, STEPS, eval_every=STEPS))
    _, evals = train(0.03, jax.random.PRNGKey(0), data)
    # the same run by hand: the last evaluation is at schedule_free_eval_params, not at y
    init, step = runner._train_step_fn(task, cand, STEPS)
    carry, train_key, eval_key = init(0.03, jax.random.PRNGKey(0))
    carry, _ = jax.lax.scan(step(0.03, train_key, data), carry, jnp.arange(STEPS))
    x = optax.contrib.schedule_free_eval_params(carry[1], carry[0])
    key = jax.random.fold_in(eval_key, 1)
    at_x, at_y = task.eval_loss(x, key, data), task.eval_loss(carry[0], key, data)
    np.testing.assert_allclose(evals[-1], at_x, rtol=1e-5)
    assert abs(float(at_x) - float(at_y)) > 1e-6  # the two points differ, so the test can fail
