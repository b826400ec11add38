"""The fused CPU kernel of MLPLOpt's per-parameter MLP (``learned_opt.cpu_kernel``): the formula
in float64, batching, derivatives, MLPLOpt's update against XLA's version and the fallback
(the per-device call in a sharded estimator: ``tests/meta_train/test_sharding.py``)."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import learned_opt
from learned_opt import cpu_kernel


@pytest.fixture(scope="module", autouse=True)
def _built():
    assert cpu_kernel.available(), cpu_kernel._status.get("reason", "LOPT_CPU_KERNEL=0")


def _operands(rng, f, h, n, batch=()):
    """Random kernel operands (float32): weights large enough that the ReLUs and the exp bite."""
    shapes = [(f, n), (f, h), (h,), (h, h), (h,), (h + f, 2), (2,)]
    scales = [1.0, 0.5, 0.3, 0.3, 0.3, 0.5, 0.3]
    return [
        (s * rng.standard_normal(batch + shape)).astype(np.float32)
        for shape, s in zip(shapes, scales, strict=True)
    ]


def _formula(x, w_in, b_in, w_1, b_1, w_out, b_out, exp_mult):
    """The kernel's docstring in float64 numpy, one member: features x (F, n) -> (n,)."""
    x, w_in, b_in, w_1, b_1, w_out, b_out = (
        np.asarray(a, np.float64) for a in (x, w_in, b_in, w_1, b_1, w_out, b_out)
    )
    h0 = np.maximum(x.T @ w_in + b_in, 0.0)
    h1 = np.maximum(h0 @ w_1 + b_1, 0.0)
    dm = np.concatenate([h1, x.T], axis=1) @ w_out + b_out
    return dm[:, 0] * np.exp(dm[:, 1] * exp_mult)


def _kernel(x, *weights_and_exp_mult):
    """The kernel on stacked features x (F, n) (it takes them as F operands)."""
    return cpu_kernel.mlp(list(x), *weights_and_exp_mult)


def _reference(x, *weights_and_exp_mult):
    return cpu_kernel.reference(list(x), *weights_and_exp_mult)


@pytest.mark.parametrize("f,h", sorted(cpu_kernel.SUPPORTED))
def test_kernel_matches_the_formula_in_float64(f, h):
    rng = np.random.default_rng(f * 100 + h)
    for n in (1, 63, 64, 65, 200):  # a partial tile, one tile, a tile and one, several
        ops = _operands(rng, f, h, n)
        got = np.asarray(_kernel(*ops, 0.7))
        want = _formula(*ops, 0.7)
        assert got.shape == (n,)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())


def test_non_finite_features_and_exp_range_ends_as_xlas():
    """NaN / inf features give the jnp version's non-finite outputs (a ReLU that dropped NaN
    would hide a diverged member from the estimators), and exp's ends of range match: overflow
    to inf, underflow to 0."""
    rng = np.random.default_rng(3)
    x, *weights = _operands(rng, 16, 32, 130)
    x[3, 5], x[0, 70], x[7, 129] = np.nan, np.inf, -np.inf
    for bias_m in (0.0, 1e5, -1e5):  # with exp_mult 1e-3: exp's argument near 0, +100, -100
        b_out = weights[-1].copy()
        b_out[1] = bias_m
        got = np.asarray(_kernel(x, *weights[:-1], b_out, 1e-3))
        want = np.asarray(_reference(x, *weights[:-1], b_out, 1e-3))
        finite = np.isfinite(want)
        assert (~finite).sum() >= 3, bias_m
        np.testing.assert_array_equal(got[~finite], want[~finite])  # NaN and signed inf alike
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-30)


def test_batched_call_is_each_members_own_call():
    """Under two vmaps (and with unbatched weights) every member gets exactly its own result."""
    rng = np.random.default_rng(0)
    ops = _operands(rng, 16, 32, 100, batch=(2, 3))
    call = lambda *a: _kernel(*a, 1e-3)
    batched = np.asarray(jax.jit(jax.vmap(jax.vmap(call)))(*ops))
    assert batched.shape == (2, 3, 100)
    for i in range(2):
        for j in range(3):
            own = np.asarray(call(*[a[i, j] for a in ops]))
            np.testing.assert_array_equal(batched[i, j], own)
    shared_weights = jax.vmap(call, in_axes=(0,) + (None,) * 6)(
        ops[0][0], *[a[0, 0] for a in ops[1:]]
    )
    for j in range(3):
        own = np.asarray(call(ops[0][0, j], *[a[0, 0] for a in ops[1:]]))
        np.testing.assert_array_equal(np.asarray(shared_weights[j]), own)


def test_gradient_is_the_reference_gradient():
    """``jax.grad`` through the kernel (its custom JVP) equals the gradient of the jnp version."""
    rng = np.random.default_rng(1)
    ops = [jnp.asarray(a) for a in _operands(rng, 16, 32, 70)]
    weights = jnp.asarray(rng.standard_normal(70).astype(np.float32))

    def loss(fn, *a):
        return jnp.sum(weights * fn(*a, 0.5))

    got = jax.grad(lambda *a: loss(_kernel, *a), argnums=tuple(range(7)))(*ops)
    want = jax.grad(lambda *a: loss(_reference, *a), argnums=tuple(range(7)))(*ops)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5)


def _three_updates(lopt, theta, params, grads_seq):
    tx = lopt.optimizer(theta)
    state = tx.init(params)
    step = jax.jit(tx.update)
    outs = []
    for g in grads_seq:
        u, state = step(g, state, params)
        params = jax.tree.map(jnp.add, params, u)
        outs.append(u)
    return outs


def test_mlplopt_update_with_the_kernel_equals_xlas(monkeypatch):
    """A random theta's updates of a matrix, a vector and a scalar: kernel (the custom call is
    in the program) against XLA's per-parameter MLP, to float32 rounding."""
    lopt = learned_opt.MLPLOpt()
    theta = lopt.init_meta_params(jax.random.key(0))
    theta = jax.tree.map(
        lambda t: t + 0.3 * jax.random.normal(jax.random.key(1), t.shape, t.dtype), theta
    )
    rng = np.random.default_rng(2)
    params = {
        "w": jnp.asarray(rng.standard_normal((70, 33)), jnp.float32),
        "b": jnp.zeros((33,), jnp.float32),
        "s": jnp.float32(0.5),
    }
    grads_seq = [
        jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(jnp.shape(p)), jnp.float32), params)
        for _ in range(3)
    ]
    tx = lopt.optimizer(theta)
    hlo = jax.jit(tx.update).lower(grads_seq[0], tx.init(params), params).as_text()
    assert cpu_kernel.TARGET in hlo
    fused = _three_updates(lopt, theta, params, grads_seq)
    monkeypatch.setattr(cpu_kernel, "supports", lambda *a: False)
    tx = lopt.optimizer(theta)  # a new transform: jit's cache would keep the kernel's program
    hlo = jax.jit(tx.update).lower(grads_seq[0], tx.init(params), params).as_text()
    assert cpu_kernel.TARGET not in hlo
    plain = _three_updates(lopt, theta, params, grads_seq)
    for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(plain), strict=True):
        scale = float(np.abs(np.asarray(b)).max())
        assert scale > 0
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5 * scale)


def test_without_a_compiler_one_warning_and_xlas_version(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv(cpu_kernel.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_kernel, "_status", {})
    with pytest.raises(RuntimeError, match="no-such-compiler"):
        cpu_kernel.build()
    with caplog.at_level(logging.WARNING):
        assert not cpu_kernel.available()
        assert not cpu_kernel.available()
    warnings = [r for r in caplog.records if "fused CPU kernel is not available" in r.message]
    assert len(warnings) == 1 and "no-such-compiler" in warnings[0].getMessage()
    lopt = learned_opt.MLPLOpt()
    tx = lopt.optimizer(lopt.init_meta_params(jax.random.key(0)))
    params = {"w": jnp.ones((4, 3), jnp.float32)}
    hlo = jax.jit(tx.update).lower(params, tx.init(params), params).as_text()
    assert cpu_kernel.TARGET not in hlo
    monkeypatch.setenv(cpu_kernel.SWITCH_ENV, "0")
    monkeypatch.setattr(cpu_kernel, "_status", {})
    assert not cpu_kernel.available() and cpu_kernel._status == {}  # off: not even tried
