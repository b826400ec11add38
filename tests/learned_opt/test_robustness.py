"""All three architectures under bad input: num_steps checks, zero-size leaves, the missing-loss
message in flax loops, and NaN gradients (poisoning, and ``optax.apply_if_finite`` as the remedy).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import learned_opt

KEY = jax.random.key(0)
LOPTS = {
    "mlp": learned_opt.MLPLOpt(hidden_sizes=(8,)),
    "hyper": learned_opt.HyperLOpt(lstm_hidden=8),
    "scale_free": learned_opt.ScaleFreeLOpt(hidden=8),
}
BAD_NUM_STEPS = [0, -100, 1000.5, "1000", True, False, np.float32(10.0), [10]]
# the fast tier runs the shipped architecture; the others run with -m slow
FAST_ONLY_SCALE_FREE = [
    pytest.param(n, marks=pytest.mark.slow) if n != "scale_free" else n for n in sorted(LOPTS)
]


def make_tree(seed=0):
    rng = np.random.default_rng(seed)
    f = lambda *shape: rng.normal(size=shape).astype(np.float32)
    return {"w": f(6, 5), "b": f(5), "conv": f(3, 3, 2, 4), "tall": f(9, 3), "z": f(4, 3)}


def random_theta(lopt, scale=0.3):
    """A theta whose every entry is nonzero (the network's zero output layer randomised too)."""
    theta = lopt.init_meta_params(KEY)
    leaves, treedef = jax.tree.flatten(theta)
    keys = jax.random.split(jax.random.key(7), len(leaves))
    noise = [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(treedef, noise)


# ---------------------------------------------------------------- num_steps
@pytest.mark.parametrize("name", sorted(LOPTS))
@pytest.mark.parametrize("bad", BAD_NUM_STEPS, ids=repr)
def test_optimizer_refuses_bad_num_steps(name, bad):
    lopt = LOPTS[name]
    theta = lopt.init_meta_params(KEY)
    with pytest.raises(ValueError, match=rf"num_steps.*{re.escape(repr(bad))}"):
        lopt.optimizer(theta, num_steps=bad)
    with pytest.raises(ValueError, match="num_steps"):
        lopt.optimizer(theta, num_steps=jnp.asarray(bad if isinstance(bad, int) else 1.5))


@pytest.mark.parametrize("bad", BAD_NUM_STEPS, ids=repr)
def test_load_refuses_bad_num_steps(tmp_path, bad):
    mlp = LOPTS["mlp"]
    learned_opt.save(tmp_path / "mlp", mlp, mlp.init_meta_params(KEY))
    for name in ("scale_free_v7", "hyper_small_v2", tmp_path / "mlp"):
        with pytest.raises(ValueError, match=rf"num_steps.*{re.escape(repr(bad))}"):
            learned_opt.load(name, num_steps=bad)


@pytest.mark.parametrize("name", FAST_ONLY_SCALE_FREE)
def test_good_num_steps_are_accepted(name):
    """Python and numpy integers, integer arrays and traced integers (the meta-trainer's)."""
    lopt = LOPTS[name]
    theta = lopt.init_meta_params(KEY)
    params = make_tree()
    for n in (1, 100, np.int64(100), np.int32(7), jnp.int32(100)):
        lopt.optimizer(theta, num_steps=n)
    if name != "scale_free":
        lopt.optimizer(theta, num_steps=None)  # the architecture's default

    def step(n):
        tx = lopt.optimizer(theta, num_steps=n)
        return tx.update(params, tx.init(params), params, value=1.0)[0]

    assert all(np.isfinite(x).all() for x in jax.tree.leaves(jax.jit(step)(50)))
    jax.vmap(step)(jnp.asarray([10, 20], jnp.int32))


# ---------------------------------------------------------------- zero-size leaves
@pytest.mark.parametrize(
    "shape, relative",
    [
        ((0, 4), True),
        ((3, 3, 0, 4), False),
        *(
            pytest.param(shape, relative, marks=pytest.mark.slow)
            for shape, relative in [
                ((0, 4), False),
                ((4, 0), False),
                ((4, 0), True),
                ((0,), False),
                ((0,), True),
                ((3, 0, 2), False),
                ((3, 0, 2), True),
                ((3, 3, 0, 4), True),
            ]
        ),
    ],
)
def test_scale_free_zero_size_leaf(shape, relative):
    """An empty leaf gets an empty update and changes nothing of the other leaves' updates."""
    lopt = learned_opt.ScaleFreeLOpt(hidden=8, relative=relative, zero_init="fan_in")
    theta = random_theta(lopt)
    tx = lopt.optimizer(theta, num_steps=20)
    params = make_tree()
    with_empty = dict(params, a_empty=np.zeros(shape, np.float32))
    s, s_ref = tx.init(with_empty), tx.init(params)
    step = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v))
    for i in range(3):
        grads = make_tree(10 + i)
        u, s = step(dict(grads, a_empty=np.zeros(shape, np.float32)), s, with_empty, 1.0 / (i + 1))
        u_ref, s_ref = step(grads, s_ref, params, 1.0 / (i + 1))
        assert u["a_empty"].shape == shape and u["a_empty"].dtype == jnp.float32
        for k in params:
            assert np.isfinite(u[k]).all(), k
            np.testing.assert_allclose(u[k], u_ref[k], rtol=1e-6, atol=1e-12, err_msg=k)
    for leaf in jax.tree.leaves(s):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert np.isfinite(leaf).all()


def test_mup_tags_skip_zero_size_leaves():
    params = {"a": jnp.zeros((0, 4)), "b": jnp.ones((3, 4)), "c": jnp.ones((4, 4))}
    params["d"] = jnp.ones((4, 2))
    tags = learned_opt.mup_tags(params)
    assert tags == {"a": None, "b": "input", "c": "hidden", "d": "output"}


# ---------------------------------------------------------------- missing value in flax loops
@pytest.mark.parametrize("name", [pytest.param("hyper", marks=pytest.mark.slow), "scale_free"])
def test_missing_value_names_learned_opt_apply_gradients(name):
    from flax.training import train_state

    lopt = LOPTS[name]
    tx = lopt.optimizer(lopt.init_meta_params(KEY), num_steps=10)
    params = make_tree()
    state = train_state.TrainState.create(apply_fn=None, params=params, tx=tx)
    with pytest.raises(ValueError, match=r"value=loss.*learned_opt\.apply_gradients"):
        state.apply_gradients(grads=params)
    with pytest.raises(ValueError, match=r"learned_opt\.apply_gradients"):
        tx.update(params, tx.init(params), params)
    state = learned_opt.apply_gradients(state, grads=params, value=1.0)  # the remedy works
    assert int(state.step) == 1


# ---------------------------------------------------------------- NaN gradients
def _run(tx, grads_seq, values, params):
    """Updates of a training loop over ``grads_seq`` (params move by each update)."""
    state = tx.init(params)
    step = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v))
    out = []
    for g, v in zip(grads_seq, values, strict=True):
        u, state = step(g, state, params, v)
        params = optax.apply_updates(params, u)
        out.append(u)
    return out, state


@pytest.mark.standard_promotion  # runs optax.apply_if_finite
@pytest.mark.parametrize("name", FAST_ONLY_SCALE_FREE)
def test_nan_gradient_poisons_unless_apply_if_finite(name):
    """One NaN element turns that tensor's later updates into NaN; ``optax.apply_if_finite``
    skips the step, and the later updates equal those of a run that never saw it."""
    lopt = LOPTS[name]
    theta = random_theta(lopt, scale=0.05)
    tx = lopt.optimizer(theta, num_steps=20)
    params = make_tree()
    grads = [make_tree(20 + i) for i in range(6)]
    values = [np.float32(1.0 / (i + 1)) for i in range(6)]
    bad = 2
    grads[bad]["w"][1, 2] = np.nan

    plain, _ = _run(tx, grads, values, params)
    for u in plain[bad + 1 :]:
        assert np.isnan(u["w"]).all()  # the whole tensor, at every later step
        assert np.isfinite(u["b"]).all()  # other tensors are untouched

    safe, state = _run(optax.apply_if_finite(tx, max_consecutive_errors=3), grads, values, params)
    keep = [i for i in range(6) if i != bad]
    ref, _ = _run(tx, [grads[i] for i in keep], [values[i] for i in keep], params)
    assert all(not np.any(x) for x in jax.tree.leaves(safe[bad]))  # the skipped step: zeros
    assert int(state.total_notfinite) == 1
    for u, r in zip([safe[i] for i in keep], ref, strict=True):
        for k in params:
            assert np.isfinite(u[k]).all()
            np.testing.assert_allclose(u[k], r[k], rtol=1e-5, atol=1e-10, err_msg=k)
