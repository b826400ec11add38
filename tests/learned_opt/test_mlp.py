"""MLPLOpt: closed-form updates, invariances, muP and a quadratic."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import learned_opt
from learned_opt.mlp import LOLV2_TIMESCALES

KEY = jax.random.key(0)


@functools.partial(jax.jit, static_argnums=0)
def update(lopt, theta, grads, state, params):
    """One update; compiled once per (lopt, shapes) and reused across thetas."""
    return lopt.optimizer(theta).update(grads, state, params)


def zero_theta(lopt):
    return jax.tree.map(jnp.zeros_like, lopt.init_meta_params(KEY))


def params_and_grads(seed=0):
    rng = np.random.default_rng(seed)
    f = lambda *shape: rng.normal(size=shape).astype(np.float32)
    return {"w": f(5, 7), "b": f(7)}, {"w": f(5, 7), "b": f(7)}


def rms(x):
    return np.sqrt(np.mean(np.square(np.asarray(x, np.float64))) + 1e-12)


def test_meta_param_count_and_names():
    lopt = learned_opt.MLPLOpt()
    theta = lopt.init_meta_params(KEY)
    f, t = lopt.num_features, len(LOLV2_TIMESCALES)
    expected = (f + t) * 32 + 32 + 32 * 32 + 32 + 32 * 2 + 2 + f * 2
    assert sum(x.size for x in jax.tree.leaves(theta)) == expected
    assert len(lopt.feature_names()) == f == 16
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(theta))


def test_output_bias_gives_constant_step():
    """All weights zero, output bias (c, k): update = -c * exp(k * 1e-3) * 1e-3 everywhere."""
    lopt = learned_opt.MLPLOpt()
    theta = zero_theta(lopt)
    c, k = 0.7, 300.0
    theta["layers"]["layer_2"]["b"] = jnp.array([c, k])
    params, grads = params_and_grads()
    tx = lopt.optimizer(theta)
    upd, _ = update(lopt, theta, grads, tx.init(params), params)
    want = -c * np.exp(k * 1e-3) * 1e-3
    for u in jax.tree.leaves(upd):
        np.testing.assert_allclose(u, np.full(u.shape, want), rtol=1e-6)


@pytest.mark.parametrize("feature", ["g", "p", "m0.9*rsqrt(v)"])
def test_skip_on_one_feature_is_normalised_feature(feature):
    """Skip weight 1 on one feature: update = -1e-3 * feature / RMS_tensor(feature)."""
    lopt = learned_opt.MLPLOpt()
    theta = zero_theta(lopt)
    idx = lopt.feature_names().index(feature)
    theta["skip"]["w"] = theta["skip"]["w"].at[idx, 0].set(1.0)
    params, grads = params_and_grads(1)
    tx = lopt.optimizer(theta)
    upd, _ = update(lopt, theta, grads, tx.init(params), params)
    for name in params:
        g, p = np.asarray(grads[name], np.float64), np.asarray(params[name], np.float64)
        # First step: m = 0.1 g and v = 0.001 g^2, so m*rsqrt(v) = 0.1/sqrt(0.001) sign(g).
        raw = {"g": g, "p": p, "m0.9*rsqrt(v)": 0.1 / np.sqrt(0.001) * np.sign(g)}[feature]
        np.testing.assert_allclose(upd[name], -1e-3 * raw / rms(raw), rtol=1e-4, atol=1e-9)


def test_step_features_enter_through_first_layer():
    """A path time-feature j -> unit 0 -> unit 0 -> d gives update = -1e-3 tanh(count / s_j)."""
    lopt = learned_opt.MLPLOpt()
    theta = zero_theta(lopt)
    j = 4
    theta["layers"]["layer_0"]["w"] = (
        theta["layers"]["layer_0"]["w"].at[lopt.num_features + j, 0].set(1.0)
    )
    theta["layers"]["layer_1"]["w"] = theta["layers"]["layer_1"]["w"].at[0, 0].set(1.0)
    theta["layers"]["layer_2"]["w"] = theta["layers"]["layer_2"]["w"].at[0, 0].set(1.0)
    params, grads = params_and_grads()
    tx = lopt.optimizer(theta)
    state = tx.init(params)
    for count in range(3):
        upd, state = update(lopt, theta, grads, state, params)
        want = -1e-3 * np.tanh(count / LOLV2_TIMESCALES[j])
        np.testing.assert_allclose(upd["w"], np.full((5, 7), want), rtol=1e-6, atol=1e-12)
    assert int(state.count) == 3


def test_default_init_is_normalised_adam_direction():
    """Untrained default: d = m_0.9 rsqrt(v) / RMS plus a small MLP term; step RMS ~ 1e-3."""
    lopt = learned_opt.MLPLOpt()
    theta = lopt.init_meta_params(KEY)
    params, grads = params_and_grads(2)
    tx = lopt.optimizer(theta)
    upd, _ = update(lopt, theta, grads, tx.init(params), params)
    for name in params:
        adam_dir = -1e-3 * np.sign(grads[name])
        assert rms(upd[name] - adam_dir) < 0.1 * rms(adam_dir)


def _run(lopt, theta, params, grads_seq):
    tx = lopt.optimizer(theta)
    state = tx.init(params)
    out = []
    for g in grads_seq:
        u, state = update(lopt, theta, g, state, params)
        params = optax.apply_updates(params, u)
        out.append(u)
    return out


@pytest.mark.parametrize("scale", [1e-2, 1e2])
def test_gradient_rescale_leaves_update_unchanged(scale):
    """All features but p are RMS-normalised, so scaling every gradient by c changes nothing."""
    lopt = learned_opt.MLPLOpt()
    theta = lopt.init_meta_params(KEY)
    params, _ = params_and_grads()
    seq = [params_and_grads(s)[1] for s in range(3)]
    base = _run(lopt, theta, params, seq)
    scaled = _run(lopt, theta, params, [jax.tree.map(lambda g: scale * g, g) for g in seq])
    for a, b in zip(base, scaled, strict=True):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_allclose(x, y, rtol=2e-4, atol=1e-8)


def test_permutation_equivariance():
    """Permuting a 1-d tensor's elements, or a 2-d tensor's rows and columns (Adafactor factors
    are per row/column), permutes its update the same way."""
    lopt = learned_opt.MLPLOpt()
    theta = lopt.init_meta_params(KEY)
    params, grads = params_and_grads(3)
    rows, cols, perm_b = np.random.default_rng(0).permutation(5), [3, 0, 6, 1, 5, 2, 4], None
    perm_b = np.random.default_rng(1).permutation(7)
    permute = lambda t: {"w": t["w"][rows][:, cols], "b": t["b"][perm_b]}
    u1 = _run(lopt, theta, params, [grads, grads])[-1]
    u2 = _run(lopt, theta, permute(params), [permute(grads)] * 2)[-1]
    for x, y in zip(jax.tree.leaves(permute(u1)), jax.tree.leaves(u2), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-10)
    # Without Adafactor any permutation of the flattened elements commutes with the update.
    lopt = learned_opt.MLPLOpt(adafactor=False)
    theta = lopt.init_meta_params(KEY)
    perm = np.random.default_rng(2).permutation(35)
    pw = lambda t: {"w": t["w"].reshape(-1)[perm].reshape(5, 7), "b": t["b"]}
    u1 = _run(lopt, theta, params, [grads])[-1]
    u2 = _run(lopt, theta, pw(params), [pw(grads)])[-1]
    np.testing.assert_allclose(pw(u1)["w"], u2["w"], rtol=1e-5, atol=1e-10)


@pytest.mark.slow
def test_mup_scales_hidden_steps_by_fan_in():
    lopt = learned_opt.MLPLOpt(mup=True)
    theta = zero_theta(lopt)
    theta["layers"]["layer_2"]["b"] = jnp.array([1.0, 0.0])
    params = {
        "a_in": jnp.ones((3, 8)),
        "b_hid": jnp.ones((8, 8)),
        "c_conv": jnp.ones((3, 3, 8, 4)),
        "d_out": jnp.ones((4, 2)),
        "e_bias": jnp.ones((2,)),
    }
    tags = learned_opt.mup_tags(params)
    assert tags == {
        "a_in": "input",
        "b_hid": "hidden",
        "c_conv": "hidden",
        "d_out": "output",
        "e_bias": None,
    }
    tx = lopt.optimizer(theta)
    upd, state = update(lopt, theta, params, tx.init(params), params)
    want = {"a_in": 1.0, "b_hid": 1 / 8, "c_conv": 1 / 72, "d_out": 1.0, "e_bias": 1.0}
    for k, s in want.items():
        np.testing.assert_allclose(upd[k], np.full(params[k].shape, -1e-3 * s), rtol=1e-6)
        np.testing.assert_allclose(state.mup_scale[k], s, rtol=1e-7)
    # User tags override the derived ones.
    user = dict(tags, b_hid="input")
    tx = lopt.optimizer(theta, param_tags=user)
    upd, _ = update(lopt, theta, params, tx.init(params), params)
    np.testing.assert_allclose(upd["b_hid"], np.full((8, 8), -1e-3), rtol=1e-6)


def test_bad_param_tags():
    lopt = learned_opt.MLPLOpt(mup=True)
    tx = lopt.optimizer(lopt.init_meta_params(KEY), param_tags={"w": "middle", "b": None})
    with pytest.raises(ValueError, match="middle"):
        tx.init({"w": jnp.ones((2, 2)), "b": jnp.ones(2)})
    tx = lopt.optimizer(lopt.init_meta_params(KEY), param_tags={"w": "input"})
    with pytest.raises(ValueError, match="structure"):
        tx.init({"w": jnp.ones((2, 2)), "b": jnp.ones(2)})


def test_default_theta_decreases_quadratic():
    """Untrained MLPLOpt on 0.5 sum(a_i x_i^2): loss falls well below its start in 300 steps."""
    a = jnp.logspace(-1, 1, 64)
    loss = lambda x: 0.5 * jnp.sum(a * x["x"] ** 2)
    params = {"x": 0.1 * jax.random.normal(jax.random.key(1), (64,))}
    lopt = learned_opt.MLPLOpt()
    tx = lopt.optimizer(lopt.init_meta_params(KEY))

    def step(carry, _):
        p, s = carry
        v, g = jax.value_and_grad(loss)(p)
        u, s = tx.update(g, s, p, value=v)
        return (optax.apply_updates(p, u), s), v

    _, losses = jax.lax.scan(step, (params, tx.init(params)), length=300)
    assert losses[-1] < 0.2 * losses[0]
    assert np.all(np.isfinite(losses))


@pytest.mark.slow
def test_large_tensors_run_in_chunks_with_the_same_update(monkeypatch):
    """A tensor above CHUNK_ABOVE elements runs the MLP chunk by chunk (bounded
    memory) and gives the same update as the one-shot path."""
    from learned_opt import mlp

    lopt = learned_opt.MLPLOpt()
    theta = lopt.init_meta_params(jax.random.key(0))
    params = {"w": jax.random.normal(jax.random.key(1), (300, 70)), "b": jnp.ones((70,))}
    grads = jax.tree.map(lambda x: 0.1 * jnp.sin(3 * x), params)
    tx = lopt.optimizer(theta)
    whole, _ = tx.update(grads, tx.init(params), params)
    monkeypatch.setattr(mlp, "CHUNK_ABOVE", 1000)
    monkeypatch.setattr(mlp, "CHUNK", 4096)
    chunked, _ = tx.update(grads, tx.init(params), params)
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(chunked), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)


def test_memory_per_parameter_is_bounded():
    """The compiled update of a 4M-element tensor needs < 160 bytes per parameter (was 300)."""
    lopt = learned_opt.MLPLOpt()
    tx = lopt.optimizer(lopt.init_meta_params(jax.random.key(0)))
    n = 4_000_000
    params = {"w": jax.ShapeDtypeStruct((n // 1000, 1000), jnp.float32)}
    state = jax.eval_shape(tx.init, params)
    f = jax.jit(lambda g, s, p: tx.update(g, s, p), donate_argnums=(1,))
    ma = f.lower(params, state, params).compile().memory_analysis()
    total = (
        ma.temp_size_in_bytes
        + ma.argument_size_in_bytes
        + ma.output_size_in_bytes
        - ma.alias_size_in_bytes
    )
    assert total / n < 160, total / n


def _reference_updates(lopt, theta, params_seq, grads_seq):
    """The module docstring's update rule in float64 numpy, step by step (no jax); step ``i``
    sees the parameters ``params_seq[i]`` and the gradients ``grads_seq[i]``."""
    th = jax.tree.map(lambda x: np.asarray(x, np.float64), theta)
    layers = [th["layers"][f"layer_{i}"] for i in range(len(lopt.hidden_sizes) + 1)]
    decays = np.asarray(lopt.momentum_decays)
    mid = int(np.argmin(np.abs(decays - 0.9)))
    f = lopt.num_features
    state = {k: None for k in params_seq[0]}
    out = []
    for count, (params, grads) in enumerate(zip(params_seq, grads_seq, strict=True)):
        t_feat = np.tanh(count / np.asarray(lopt.timescales))
        upd = {}
        for k, p in params.items():
            g = np.asarray(grads[k], np.float64)
            if state[k] is None:
                state[k] = dict(
                    m=np.zeros((*g.shape, len(decays))),
                    v=np.zeros(g.shape),
                    row=np.zeros(g.shape[:-1]),
                    col=np.zeros(g.shape[-1:]),
                )
            s = state[k]
            s["m"] = decays * s["m"] + (1 - decays) * g[..., None]
            s["v"] = 0.999 * s["v"] + 0.001 * g**2
            rv = 1 / np.sqrt(s["v"] + 1e-24)
            if g.ndim == 2:
                s["row"] = 0.999 * s["row"] + 0.001 * np.mean(g**2 + 1e-30, axis=-1)
                s["col"] = 0.999 * s["col"] + 0.001 * np.mean(g**2 + 1e-30, axis=-2)
                fac = (s["row"] / s["row"].mean())[:, None] * s["col"][None, :]
                rf = 1 / np.sqrt(fac + 1e-24)
            else:
                rf = rv
            ms = [s["m"][..., i] for i in range(len(decays))]
            feats = [
                g,
                np.asarray(p, np.float64),
                *ms,
                g * rv,
                *[x * rv for x in ms],
                rv,
                g * rf,
                ms[mid] * rf,
            ]
            x = np.stack([y / np.sqrt(np.mean(y**2) + 1e-12) for y in feats], axis=-1)
            h = x @ layers[0]["w"][:f] + t_feat @ layers[0]["w"][f:] + layers[0]["b"]
            for layer in layers[1:]:
                h = np.maximum(h, 0) @ layer["w"] + layer["b"]
            o = h + x @ th["skip"]["w"]
            upd[k] = -o[..., 0] * np.exp(o[..., 1] * lopt.exp_mult) * lopt.step_mult
        out.append(upd)
    return out


def test_random_theta_updates_match_the_formula_in_float64():
    """Every meta-parameter random and non-zero (all layers, the skip, the step features' rows):
    three updates of a 2-d and a 1-d tensor equal the docstring's rule computed in float64
    numpy (features, per-tensor RMS normaliser, ReLU MLP, skip, d * exp(m * 1e-3) * 1e-3)."""
    lopt = learned_opt.MLPLOpt()
    leaves, treedef = jax.tree.flatten(lopt.init_meta_params(KEY))
    keys = jax.random.split(jax.random.key(7), len(leaves))
    theta = treedef.unflatten(
        [0.5 * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    )
    params, _ = params_and_grads(4)
    seq = [params_and_grads(s)[1] for s in (5, 6, 7)]
    got = _run(lopt, theta, params, seq)
    params_seq = [params]
    for u in got[:-1]:
        params_seq.append(optax.apply_updates(params_seq[-1], u))
    want = _reference_updates(lopt, theta, params_seq, seq)  # p is a feature: the params each saw
    for got_i, want_i in zip(got, want, strict=True):
        for k in params:
            np.testing.assert_allclose(got_i[k], want_i[k], rtol=2e-4, atol=1e-7)


# MLPLOpt().to_config() before the cpu_kernel setting existed: what saved directories hold
SAVED_BEFORE_CPU_KERNEL = {
    "hidden_sizes": [32, 32],
    "momentum_decays": [0.1, 0.5, 0.9, 0.99, 0.999],
    "rms_decay": 0.999,
    "adafactor": True,
    "adafactor_decay": 0.999,
    "timescales": [1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000],
    "exp_mult": 0.001,
    "step_mult": 0.001,
    "mup": False,
    "init_direction": "adam",
    "output_init_scale": 0.01,
}


def test_cpu_kernel_is_left_out_of_the_saved_settings(tmp_path):
    """``cpu_kernel`` is an execution choice, not a setting of the rule: ``to_config`` (what
    ``save`` writes and ``init_from`` compares) is what it was before the setting existed, with
    the kernel on or off; a directory saved before loads as the default (kernel off), and a
    config may still ask for the kernel."""
    on, off = learned_opt.MLPLOpt(cpu_kernel=True), learned_opt.MLPLOpt()
    assert on.to_config() == off.to_config() == SAVED_BEFORE_CPU_KERNEL
    assert learned_opt.MLPLOpt(**on.to_config()) == off
    theta = on.init_meta_params(KEY)
    learned_opt.save(tmp_path / "saved", on, theta)
    desc = json.loads((tmp_path / "saved" / "lopt.json").read_text())
    assert desc["architecture"] == "mlp" and desc["config"] == SAVED_BEFORE_CPU_KERNEL
    loaded, loaded_theta = learned_opt.load_meta_params(tmp_path / "saved")
    assert loaded == off and loaded.cpu_kernel is False
    same = jax.tree.map(lambda a, b: np.array_equal(a, b), loaded_theta, theta)
    assert all(jax.tree.leaves(same))
    asked = learned_opt.from_config({"architecture": "mlp", "config": {"cpu_kernel": True}})
    assert asked == on
    with pytest.raises(ValueError, match="cpu_kernel"):
        learned_opt.from_config({"architecture": "mlp", "config": {"cpu_kernel": 1}})
