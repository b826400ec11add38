"""The optional fused CPU kernel of MLPLOpt's update of a tensor (``learned_opt.cpu_kernel``).

With the kernel (``MLPLOpt(cpu_kernel=True)``, marked ``compiler``; skipped where there is no C++
compiler or ``LOPT_CPU_KERNEL=0``): the rule in float64, non-finite values, batching,
derivatives, MLPLOpt's update against XLA's version. Without one: off by default, nothing built
until an optimizer that asks for it is used, the fallbacks (no compiler, ``LOPT_CPU_KERNEL=0``,
settings it does not cover). One device or several: ``tests/meta_train/test_sharding.py``."""

import dataclasses
import logging
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import learned_opt
from learned_opt import cpu_kernel


@pytest.fixture(scope="module")
def built():
    """The kernel, built (skips where there is no compiler or the kernel is turned off; a
    compiler that fails on the source is a failure)."""
    if not cpu_kernel.enabled():
        pytest.skip(f"{cpu_kernel.SWITCH_ENV}=0 turns the kernel off")
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip(f"no C++ compiler ({os.environ.get('CXX', 'g++')}) to build the kernel")
    assert cpu_kernel.available(), cpu_kernel._status.get("reason")


DECAYS = {4: (0.5, 0.9, 0.99, 0.999), 5: (0.1, 0.5, 0.9, 0.99, 0.999)}
DECAYS[6] = DECAYS[5] + (0.9999,)
SHAPES = [(), (1,), (63,), (65,), (70, 33), (3, 5, 7, 4)]  # partial, whole and several tiles


def _lopt(k=5, adafactor=True, hidden=32):
    return learned_opt.MLPLOpt(
        hidden_sizes=(hidden, hidden),
        momentum_decays=DECAYS[k],
        adafactor=adafactor,
        cpu_kernel=True,
    )


def _random_theta(lopt, seed=0, scale=0.3):
    """A theta far from the init (so every layer and the exp matter)."""
    theta = lopt.init_meta_params(jax.random.key(seed))
    leaves, treedef = jax.tree.flatten(theta)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    return treedef.unflatten(
        [
            t + scale * jax.random.normal(kk, t.shape, t.dtype)
            for t, kk in zip(leaves, keys, strict=True)
        ]
    )


def _leaf_inputs(lopt, shape, rng):
    """(g, p, m, v, row, col, scale) for one tensor, the state as after some steps."""
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    k = len(lopt.momentum_decays)
    factored = len(shape) >= 2
    row_shape, col_shape = (shape[:-1], shape[:-2] + shape[-1:]) if factored else ((), ())
    return (
        f32(rng.standard_normal(shape)),
        f32(rng.standard_normal(shape)),
        f32(0.3 * rng.standard_normal((*shape, k))),
        f32(rng.uniform(0.1, 2.0, shape)),
        f32(rng.uniform(0.1, 2.0, row_shape)),
        f32(rng.uniform(0.1, 2.0, col_shape)),
        f32(0.5),
    )


def _rule_in_float64(lopt, theta, t_feat, g, p, m, v, row, col, scale):
    """MLPLOpt's update of one tensor (``learned_opt.mlp``'s docstring) in float64 numpy."""
    g, p, m, v, row, col, t_feat = (
        np.asarray(a, np.float64) for a in (g, p, m, v, row, col, t_feat)
    )
    w = jax.tree.map(lambda a: np.asarray(a, np.float64), theta)
    b = np.asarray(lopt.momentum_decays, np.float64)
    m = b * m + (1 - b) * g[..., None]
    v = lopt.rms_decay * v + (1 - lopt.rms_decay) * g**2
    rv = 1 / np.sqrt(v + 1e-24)
    k = len(b)
    feats = [g, p, *[m[..., i] for i in range(k)], g * rv, *[m[..., i] * rv for i in range(k)], rv]
    if lopt.adafactor:
        rf = rv
        if g.ndim >= 2:
            bf = lopt.adafactor_decay
            row = bf * row + (1 - bf) * np.mean(g**2 + 1e-30, axis=-1)
            col = bf * col + (1 - bf) * np.mean(g**2 + 1e-30, axis=-2)
            fac = (row / row.mean(-1, keepdims=True))[..., :, None] * col[..., None, :]
            rf = 1 / np.sqrt(fac + 1e-24)
        feats += [g * rf, m[..., lopt._mid] * rf]
    x = np.stack([f.reshape(-1) for f in feats], axis=1)  # (n, F)
    x = x / np.sqrt(np.mean(x**2, axis=0) + 1e-12)
    layers = [w["layers"][f"layer_{i}"] for i in range(3)]
    inputs = np.concatenate([x, np.broadcast_to(t_feat, (len(x), len(t_feat)))], axis=1)
    h = np.maximum(inputs @ layers[0]["w"] + layers[0]["b"], 0)
    h = np.maximum(h @ layers[1]["w"] + layers[1]["b"], 0)
    dm = h @ layers[2]["w"] + layers[2]["b"] + x @ w["skip"]["w"]
    step = dm[:, 0] * np.exp(dm[:, 1] * lopt.exp_mult) * lopt.step_mult * float(scale)
    return -step.reshape(g.shape), m, v, row, col


@pytest.mark.slow
@pytest.mark.parametrize("k,adafactor,hidden", sorted(cpu_kernel.SUPPORTED))
@pytest.mark.compiler
@pytest.mark.usefixtures("built")
def test_kernel_matches_the_rule_in_float64(k, adafactor, hidden):
    lopt = _lopt(k, adafactor, hidden)
    theta = _random_theta(lopt, seed=k)
    t_feat = learned_opt.common.time_embedding(jnp.int32(7), lopt.timescales)
    rng = np.random.default_rng(k * 100 + hidden)
    fused = jax.jit(lopt._leaf_update_fused)
    # and, for the default optimizer, a tensor too large to keep its features between passes
    large = [(200, 170)] if (k, adafactor, hidden) == (5, True, 32) else []
    for shape in SHAPES + large:
        inputs = _leaf_inputs(lopt, shape, rng)
        got = fused(theta, t_feat, *inputs)
        want = _rule_in_float64(lopt, theta, t_feat, *inputs)
        for name, a, b in zip(("update", "m", "v", "row", "col"), got, want, strict=True):
            assert a.shape == b.shape and a.dtype == jnp.float32, (name, shape)
            scale = np.abs(b).max()
            np.testing.assert_allclose(
                a, b, rtol=2e-4, atol=2e-5 * scale, err_msg=f"{name} {shape}"
            )
        assert np.abs(want[0]).max() > 0


def _without_kernel(lopt):
    """The same MLPLOpt with the kernel off: XLA's version."""
    return dataclasses.replace(lopt, cpu_kernel=False)


@pytest.mark.slow
@pytest.mark.compiler
@pytest.mark.usefixtures("built")
def test_non_finite_values_and_exp_range_ends_as_xlas():
    """A NaN gradient or an infinite parameter gives XLA's non-finite updates (a kernel that
    dropped NaN would hide a diverged member from the estimators), and exp's ends of range match:
    overflow to inf, underflow to 0."""
    lopt = _lopt()
    rng = np.random.default_rng(3)
    cases = []
    for bias_m in (0.0, 3e4, -1e5):  # exp's argument near 0, +30 (huge steps), -100
        theta = _random_theta(lopt)
        theta["layers"]["layer_2"]["b"] = theta["layers"]["layer_2"]["b"].at[1].set(bias_m)
        g, p, *rest = _leaf_inputs(lopt, (20, 9), rng)
        cases.append((theta, g, p, rest))
    theta, g, p, rest = cases[0]
    cases.append((theta, g.at[3, 4].set(jnp.nan), p, rest))
    cases.append((theta, g, p.at[0, 0].set(jnp.inf), rest))
    t_feat = learned_opt.common.time_embedding(jnp.int32(3), lopt.timescales)
    fused = [jax.jit(lopt._leaf_update_fused)(th, t_feat, g, p, *r) for th, g, p, r in cases]
    plain_lopt = _without_kernel(lopt)
    plain = [jax.jit(plain_lopt._leaf_update)(th, t_feat, g, p, *r) for th, g, p, r in cases]
    nonfinite = 0
    for got, want in zip(fused, plain, strict=True):
        got, want = np.asarray(got[0]), np.asarray(want[0])
        finite = np.isfinite(want)
        nonfinite += (~finite).sum()
        np.testing.assert_array_equal(got[~finite], want[~finite])  # NaN and signed inf alike
        scale = np.abs(want[finite]).max(initial=0.0)
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-5 * scale)
    assert nonfinite >= 180 + 1  # the NaN gradient's whole tensor, the inf parameter's own


@pytest.mark.slow
@pytest.mark.compiler
@pytest.mark.usefixtures("built")
def test_batched_call_is_each_members_own_call():
    """Under two vmaps every member (own theta and state) gets exactly its own call's result, and
    with one theta shared by members likewise."""
    lopt = _lopt()
    rng = np.random.default_rng(0)
    t_feat = learned_opt.common.time_embedding(jnp.int32(2), lopt.timescales)
    members = [(_random_theta(lopt, seed=i), *_leaf_inputs(lopt, (10, 7), rng)) for i in range(6)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a).reshape(2, 3, *a[0].shape), *members)
    fused = lambda th, *a: lopt._leaf_update_fused(th, t_feat, *a)
    batched = jax.jit(jax.vmap(jax.vmap(fused)))(*stacked)
    own = [jax.jit(fused)(*mem) for mem in members]
    for i in range(6):
        for a, b in zip(batched, own[i], strict=True):
            np.testing.assert_array_equal(np.asarray(a[i // 3, i % 3]), np.asarray(b))
    shared = jax.jit(jax.vmap(fused, in_axes=(None,) + (0,) * 7))
    shared = shared(members[0][0], *[a[0] for a in stacked[1:]])
    one = jax.jit(fused)(members[0][0], *[a[0, 1] for a in stacked[1:]])
    for a, b in zip(shared, one, strict=True):
        np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b))


@pytest.mark.slow
@pytest.mark.compiler
@pytest.mark.usefixtures("built")
def test_gradient_is_xlas_gradient():
    """``jax.grad`` through the kernel (its custom JVP) equals the gradient of XLA's version,
    with respect to theta and the gradient."""
    lopt = _lopt()
    theta = _random_theta(lopt)
    rng = np.random.default_rng(1)
    g, *rest = _leaf_inputs(lopt, (30, 7), rng)
    t_feat = learned_opt.common.time_embedding(jnp.int32(5), lopt.timescales)
    weights = jnp.asarray(rng.standard_normal((30, 7)), jnp.float32)

    def loss(update_fn, theta, g):
        update, m, *_ = update_fn(theta, t_feat, g, *rest)
        return jnp.sum(weights * update) + 1e-3 * jnp.sum(m)

    plain = _without_kernel(lopt)
    want = jax.jit(jax.grad(lambda *a: loss(plain._leaf_update, *a), (0, 1)))(theta, g)
    # the kernel's own call, and MLPLOpt's choice of it in a program of one device (the custom
    # JVP's rule is XLA's version's JVP: under grad the kernel's call is not in the program)
    for update_fn in (lopt._leaf_update_fused, lopt._leaf_update):
        got = jax.jit(jax.grad(lambda *a, f=update_fn: loss(f, *a), (0, 1)))(theta, g)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            scale = float(np.abs(np.asarray(b)).max())
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5 * scale)


def _three_updates(lopt, theta, params, grads_seq):
    tx = lopt.optimizer(theta)
    state = tx.init(params)
    step = jax.jit(tx.update)
    outs = []
    for g in grads_seq:
        u, state = step(g, state, params)
        params = jax.tree.map(jnp.add, params, u)
        outs.append((u, state))
    return outs


@pytest.mark.slow
@pytest.mark.compiler
@pytest.mark.usefixtures("built")
def test_mlplopt_update_with_the_kernel_equals_xlas():
    """Three updates (and states) of a matrix, a conv kernel, a vector, a scalar and a bfloat16
    matrix under a random theta: the kernel (the custom call is in the program) against XLA's
    version (the default: no custom call), to float32 rounding."""
    lopt = learned_opt.MLPLOpt(cpu_kernel=True)
    theta = _random_theta(lopt)
    rng = np.random.default_rng(2)
    normal = lambda shape, dtype=jnp.float32: jnp.asarray(rng.standard_normal(shape), dtype)
    params = {
        "w": normal((70, 33)),
        "conv": normal((3, 3, 4, 5)),
        "b": jnp.zeros((33,), jnp.float32),
        "s": jnp.float32(0.5),
        "half": normal((6, 20), jnp.bfloat16),
    }
    grads_seq = [jax.tree.map(lambda p: normal(jnp.shape(p), p.dtype), params) for _ in range(3)]
    tx = lopt.optimizer(theta)
    hlo = jax.jit(tx.update).lower(grads_seq[0], tx.init(params), params).as_text()
    assert hlo.count(cpu_kernel.TARGET) >= 5
    fused = _three_updates(lopt, theta, params, grads_seq)
    plain_lopt = learned_opt.MLPLOpt()
    tx = plain_lopt.optimizer(theta)
    hlo = jax.jit(tx.update).lower(grads_seq[0], tx.init(params), params).as_text()
    assert cpu_kernel.TARGET not in hlo
    plain = _three_updates(plain_lopt, theta, params, grads_seq)
    for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(plain), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        scale = float(np.abs(b).max())
        tol = 1e-2 if a.dtype == jnp.bfloat16 else 1e-4
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 0.1 * scale)
    updates = [np.abs(np.asarray(u, np.float32)).max() for u in jax.tree.leaves(fused[-1][0])]
    assert min(updates) > 0


def _update_hlo(lopt):
    """The lowered (StableHLO) text of ``lopt``'s jitted update of a small matrix and vector."""
    tx = lopt.optimizer(lopt.init_meta_params(jax.random.key(0)))
    params = {"w": jnp.ones((4, 3), jnp.float32), "b": jnp.ones((3,), jnp.float32)}
    return jax.jit(tx.update).lower(params, tx.init(params), params).as_text()


@pytest.fixture
def no_build(monkeypatch):
    """``cpu_kernel.build`` replaced by a stub that records the call and fails (as a missing
    compiler does), with the build state reset and the kernel not turned off; yields the list of
    calls."""
    calls = []
    monkeypatch.delenv(cpu_kernel.SWITCH_ENV, raising=False)

    def build():
        calls.append(1)
        raise RuntimeError("stub: not built in this test")

    monkeypatch.setattr(cpu_kernel, "build", build)
    monkeypatch.setattr(cpu_kernel, "_status", {})
    yield calls


def test_off_by_default_and_nothing_builds_until_an_optimizer_that_asks_is_used(no_build):
    """The default MLPLOpt runs XLA's version and never builds; creating one with the kernel on
    and reading all it has builds nothing either; its first use tries, once."""
    plain = learned_opt.MLPLOpt()
    assert plain.cpu_kernel is False
    assert cpu_kernel.TARGET not in _update_hlo(plain)
    on = learned_opt.MLPLOpt(cpu_kernel=True)
    for name in dir(on):
        if not name.startswith("__"):
            getattr(on, name)
    on.to_config(), on.feature_names(), repr(on), hash(on)
    assert no_build == []
    hlo = _update_hlo(on)  # the stub fails: XLA's version
    assert no_build == [1] and cpu_kernel.TARGET not in hlo
    _update_hlo(on)
    assert no_build == [1]  # the failure is remembered


@pytest.mark.slow
def test_switch_off_wins_and_uncovered_settings_use_xlas_version(no_build, monkeypatch, caplog):
    """``LOPT_CPU_KERNEL=0`` turns the kernel off whatever the setting (nothing is tried); settings
    the kernel does not cover get one warning and XLA's version (nothing is tried either)."""
    monkeypatch.setenv(cpu_kernel.SWITCH_ENV, "0")
    assert cpu_kernel.TARGET not in _update_hlo(learned_opt.MLPLOpt(cpu_kernel=True))
    assert not cpu_kernel.available() and cpu_kernel._status == {} and no_build == []
    monkeypatch.delenv(cpu_kernel.SWITCH_ENV)
    odd = learned_opt.MLPLOpt(cpu_kernel=True, hidden_sizes=(32, 16))
    with caplog.at_level(logging.WARNING):
        assert cpu_kernel.TARGET not in _update_hlo(odd)
        _update_hlo(dataclasses.replace(odd, step_mult=2e-3))
    warnings = [r.getMessage() for r in caplog.records if "covers only" in r.getMessage()]
    assert len(warnings) == 1 and "(32, 16)" in warnings[0], warnings
    assert no_build == []


def test_without_a_compiler_one_warning_and_xlas_version(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv(cpu_kernel.SWITCH_ENV, raising=False)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv(cpu_kernel.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_kernel, "_status", {})
    with pytest.raises(RuntimeError, match="no-such-compiler"):
        cpu_kernel.build()
    with caplog.at_level(logging.WARNING):
        assert not cpu_kernel.available()
        assert not cpu_kernel.available()
        hlo = _update_hlo(learned_opt.MLPLOpt(cpu_kernel=True))
    warnings = [r for r in caplog.records if "fused CPU kernel is not available" in r.message]
    assert len(warnings) == 1 and "no-such-compiler" in warnings[0].getMessage()
    assert cpu_kernel.TARGET not in hlo
