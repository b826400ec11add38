"""Both architectures as optax transforms: jit, vmap, chain, pytree kinds, dtypes, bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import learned_opt

KEY = jax.random.key(0)
LOPTS = [learned_opt.MLPLOpt(hidden_sizes=(8,)), learned_opt.HyperLOpt(lstm_hidden=8)]
IDS = ["mlp", "hyper"]


def small_tree(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w": rng.normal(size=(4, 3)).astype(np.float32),
        "b": rng.normal(size=(3,)).astype(np.float32),
    }


def stack(trees):
    return jax.tree.map(lambda *xs: np.stack(xs), *trees)


@pytest.mark.parametrize("lopt", LOPTS, ids=IDS)
def test_jit_does_not_retrace(lopt):
    traces = []

    @jax.jit
    def step(theta, state, params, grads, loss, num_steps):
        traces.append(1)
        tx = lopt.optimizer(theta, num_steps=num_steps)
        return tx.update(grads, state, params, value=loss)

    params = small_tree()
    theta = lopt.init_meta_params(KEY)
    state = lopt.optimizer(theta).init(params)
    u1, state = step(theta, state, params, small_tree(1), 1.0, 100)
    theta2 = jax.tree.map(lambda x: x * 1.01, theta)
    u2, state = step(theta2, state, params, small_tree(2), 0.5, 200)
    assert len(traces) == 1
    assert int(state.count) == 2
    assert not np.allclose(u1["w"], u2["w"])


@pytest.mark.parametrize("lopt", LOPTS, ids=IDS)
def test_vmap_over_thetas_and_states_equals_loop(lopt):
    n = 3
    thetas = stack([lopt.init_meta_params(k) for k in jax.random.split(KEY, n)])
    params = stack([small_tree(i) for i in range(n)])
    grads = stack([small_tree(i + 10) for i in range(n)])
    losses = np.array([1.0, 2.0, 3.0], np.float32)

    def step(theta, p, g, loss):
        tx = lopt.optimizer(theta, num_steps=50)
        s = tx.init(p)
        return tx.update(g, s, p, value=loss)

    ub, sb = jax.jit(jax.vmap(step))(thetas, params, grads, losses)
    one = jax.jit(step)
    for i in range(n):
        pick = functools.partial(jax.tree.map, lambda x, i=i: np.asarray(x)[i])
        ui, si = one(pick(thetas), pick(params), pick(grads), losses[i])
        for x, y in zip(jax.tree.leaves((ui, si)), jax.tree.leaves(pick((ub, sb))), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-9)


@pytest.mark.standard_promotion  # runs optax's transforms
def test_chain_with_clip_weight_decay_and_schedules():
    """HyperLOpt at G = 0 is Adam, so chain(...lopt...) must equal chain(...adam...) exactly."""
    lopt = learned_opt.HyperLOpt(lstm_hidden=8)
    theta = lopt.init_meta_params(KEY)
    theta["generator"]["w"] = jnp.zeros_like(theta["generator"]["w"])
    schedule = optax.linear_schedule(1.0, 0.1, 5)

    def chained(core):
        return optax.chain(
            optax.clip_by_global_norm(0.5),
            core,
            optax.add_decayed_weights(1e-2),
            optax.scale_by_schedule(schedule),
            optax.inject_hyperparams(optax.scale)(step_size=0.5),
        )

    tx, ref = chained(lopt.optimizer(theta)), chained(optax.adam(1e-3))
    params = small_tree()
    s, sr = tx.init(params), ref.init(params)
    upd = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v))
    for i in range(4):
        g = small_tree(5 + i)
        u, s = upd(g, s, params, 1.0)
        ur, sr = ref.update(g, sr, params)
        for x, y in zip(jax.tree.leaves(u), jax.tree.leaves(ur), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-8)
        params = optax.apply_updates(params, u)


class _Tiny(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(3, 2, rngs=rngs)
        self.scale = nnx.Param(jnp.ones(()))


def all_kinds_tree():
    """One tree holding every kind of node and leaf the transforms must accept."""
    return {
        "list": [jnp.ones((2,)), jnp.ones((2, 3))],
        "nested": {"a": (jnp.ones(()), {"b": jnp.ones((2, 2, 2))}), "empty": {}, "e2": []},
        "scalar": {"x": jnp.float32(3.0)},
        "4d": {"k": jnp.ones((2, 3, 2, 2))},
        "nnx": nnx.state(_Tiny(nnx.Rngs(0)), nnx.Param),
        "zero_size": {"z": jnp.ones((0, 3)), "y": jnp.ones((3,))},
    }


@pytest.mark.parametrize(
    "lopt",
    [pytest.param(LOPTS[0], id="mlp", marks=pytest.mark.slow), pytest.param(LOPTS[1], id="hyper")],
)
def test_pytree_kinds(lopt):
    params = all_kinds_tree()
    assert isinstance(params["nnx"], nnx.State)
    tx = lopt.optimizer(lopt.init_meta_params(KEY))
    state = tx.init(params)
    grads = jax.tree.map(lambda x: 0.1 * jnp.abs(x) + 0.05, params)
    u, state = jax.jit(lambda g, s, p: tx.update(g, s, p, value=1.0))(grads, state, params)
    assert jax.tree.structure(u) == jax.tree.structure(params)
    for x, p in zip(jax.tree.leaves(u), jax.tree.leaves(params), strict=True):
        assert x.shape == p.shape and x.dtype == p.dtype
        assert np.all(np.isfinite(x))
        if x.size:
            assert np.all(np.asarray(x) < 0)  # positive gradients -> negative steps
    optax.apply_updates(params, u)


@pytest.mark.parametrize("lopt", LOPTS, ids=IDS)
def test_empty_tree(lopt):
    tx = lopt.optimizer(lopt.init_meta_params(KEY))
    u, s = tx.update({}, tx.init({}), {}, value=1.0)
    assert u == {} and int(s.count) == 1


@pytest.mark.parametrize("lopt", LOPTS, ids=IDS)
def test_bfloat16_params(lopt):
    theta = lopt.init_meta_params(KEY)
    tx = lopt.optimizer(theta)
    p32, g32 = small_tree(), small_tree(1)
    p16, g16 = (jax.tree.map(lambda x: x.astype(jnp.bfloat16), t) for t in (p32, g32))
    step = jax.jit(lambda g, s, p: tx.update(g, s, p, value=1.0))
    u16, s16 = step(g16, tx.init(p16), p16)
    u32, _ = step(
        jax.tree.map(lambda x: x.astype(jnp.float32), g16),
        tx.init(p32),
        jax.tree.map(lambda x: x.astype(jnp.float32), p16),
    )
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u16))
    floats = [x for x in jax.tree.leaves(s16) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert floats and all(x.dtype == jnp.float32 for x in floats)
    for a, b in zip(jax.tree.leaves(u16), jax.tree.leaves(u32), strict=True):
        np.testing.assert_allclose(np.asarray(a, np.float32), b, rtol=1e-2)


@pytest.mark.parametrize("lopt", LOPTS, ids=IDS)
def test_non_float_leaf_is_a_clear_error(lopt):
    tx = lopt.optimizer(lopt.init_meta_params(KEY))
    with pytest.raises(TypeError, match=r"\['step'\].*int32"):
        tx.init({"w": jnp.ones(3), "step": jnp.zeros((), jnp.int32)})
    with pytest.raises(TypeError, match=r"\['name'\]"):
        tx.init({"w": jnp.ones(3), "name": "hello"})


def test_mup_tags_on_nnx_state():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(3, 4, rngs=rngs)
            self.b = nnx.Linear(4, 4, rngs=rngs)
            self.c = nnx.Linear(4, 2, rngs=rngs)

    params = nnx.state(Net(nnx.Rngs(0)), nnx.Param)
    tags = learned_opt.mup_tags(params)
    assert [tags[k]["kernel"].get_value() for k in "abc"] == ["input", "hidden", "output"]
    lopt = learned_opt.MLPLOpt(mup=True)
    state = lopt.optimizer(lopt.init_meta_params(KEY)).init(params)
    scales = {k: float(state.mup_scale[k]["kernel"].get_value()) for k in "abc"}
    assert scales == {"a": 1.0, "b": 0.25, "c": 1.0}
