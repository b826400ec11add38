"""ScaleFreeLOpt: its initial theta is Muon + Adam with warmup/cosine (optax), Newton-Schulz
against the SVD, the relative step makes it reparameterisation-invariant, its defaults are the
recommended optimizer's architecture, errors; ExperimentalScaleFreeLOpt's options."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import learned_opt
from eval.baselines import BASELINES
from learned_opt import common, scale_free

KEY = jax.random.key(0)
Experimental = learned_opt.ExperimentalScaleFreeLOpt


def optax_muon(lr, num_steps):
    """The evaluation's `muon` baseline: optax.contrib.muon with the same warmup/cosine, NS on
    2-D leaves and conv kernels, Adam elsewhere."""
    return BASELINES["muon"].make(lr, num_steps)


def make_tree(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    f = lambda *shape: (scale * rng.normal(size=shape)).astype(np.float32)
    tree = {"w": f(6, 5), "tall": f(9, 3), "conv": f(3, 3, 2, 4), "b": f(5), "s": f()}
    tree["z"] = f(4, 3)
    return tree


@functools.partial(jax.jit, static_argnums=(0, 6))
def update(lopt, theta, grads, state, params, value, num_steps):
    return lopt.optimizer(theta, num_steps=num_steps).update(grads, state, params, value=value)


@pytest.mark.standard_promotion  # runs optax's transforms
@pytest.mark.parametrize(
    "num_steps, relative, zero_init, baseline",
    [
        pytest.param(20, False, "one", "muon", marks=pytest.mark.slow),
        pytest.param(200, False, "one", "muon", marks=pytest.mark.slow),
        pytest.param(20, True, "one", "muon_rel", marks=pytest.mark.slow),
        pytest.param(200, True, "one", "muon_rel", marks=pytest.mark.slow),
        (200, True, "fan_in", "muon_rel_mup"),  # the shipped settings
    ],
)
def test_initial_theta_is_optax_muon_with_cosine(num_steps, relative, zero_init, baseline):
    """Leaf by leaf under jit, over the warmup, the cosine and past the horizon: the evaluation's
    `muon` baseline, or with relative=True its `muon_rel` (optax muon, then scale_by_initial_rms),
    or with zero_init="fan_in" its `muon_rel_mup`."""
    lopt = learned_opt.ScaleFreeLOpt(relative=relative, zero_init=zero_init)
    theta = lopt.init_meta_params(KEY)
    ref = BASELINES[baseline].make(0.02, num_steps)
    params = make_tree(scale=3.0)  # RMS(p_0) sqrt(fan_in) != 1: the relative rule differs
    params["z"] = np.zeros_like(params["z"])  # zero-initialised: r = 1, or fan_in (muP readout)
    state, rstate = lopt.optimizer(theta, num_steps=num_steps).init(params), ref.init(params)
    rupdate = jax.jit(ref.update)
    steps = list(range(6)) + [num_steps // 2, num_steps - 1, num_steps, num_steps + 3]
    for i in range(steps[-1] + 1):
        grads = make_tree(10 + i, scale=10.0 ** ((i % 5) - 2))
        u, state = update(lopt, theta, grads, state, params, 1.0 / (i + 1), num_steps)
        ur, rstate = rupdate(grads, rstate, params)
        if i in steps:
            for path, x in jax.tree_util.tree_flatten_with_path(u)[0]:
                y = ur
                for k in path:
                    y = y[k.key]
                np.testing.assert_allclose(x, y, rtol=2e-4, atol=1e-7, err_msg=f"step {i} {path}")
        params = optax.apply_updates(params, u)
    assert np.all(np.asarray(jax.tree.leaves(u)[0]) == 0.0)  # past the horizon: no step


@pytest.mark.standard_promotion  # runs optax's transforms
def test_warmup_cosine_matches_optax():
    for total in (2, 7, 20, 999, 1000, 2001):
        sched = optax.warmup_cosine_decay_schedule(0.0, 1.0, max(1, total // 20), total, 0.0)
        counts = np.arange(0, total + 5)
        ours = jax.vmap(lambda c, t=total: scale_free.warmup_cosine(c, t))(counts)
        np.testing.assert_allclose(ours, jax.vmap(sched)(counts), atol=2e-6)


def direct_newton_schulz_float64(x, steps):
    """Muon's quintic iteration written out in float64 numpy: the exact reference."""
    x = np.asarray(x, np.float64)
    transposed = x.shape[0] > x.shape[1]
    x = x.T if transposed else x
    x = x / (np.linalg.norm(x) + 1e-8)
    a, b, c = scale_free.NS_COEFFS
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if transposed else x


@pytest.mark.parametrize("shape", [(10, 128), (784, 48), (64, 32), (32, 64), (48, 50), (1, 9)])
@pytest.mark.parametrize("steps", [1, 3, 5])
def test_newton_schulz_in_gram_space_equals_the_direct_iteration(shape, steps):
    """Thin matrices (long side >= GRAM_ASPECT x the short) iterate on the Gram matrix; both
    paths match the direct iteration in float64 to float32 rounding."""
    x = jax.random.normal(jax.random.key(shape[0] + 7 * shape[1]), shape)
    want = direct_newton_schulz_float64(x, steps)
    got = np.asarray(jax.jit(scale_free.newton_schulz, static_argnums=1)(x, steps))
    scale = np.abs(want).max()
    np.testing.assert_allclose(got / scale, want / scale, atol=2e-5)


@pytest.mark.parametrize("shape", [(8, 8), (16, 5), (5, 40), (64, 32)])
def test_newton_schulz_close_to_svd_polar_factor(shape):
    """NS5 gives U S' V^T with S' in about [0.7, 1.2] (the quintic's known accuracy)."""
    x = jax.random.normal(jax.random.key(shape[0] * shape[1]), shape)
    u, s, vt = np.linalg.svd(np.asarray(x), full_matrices=False)
    ns = np.asarray(scale_free.newton_schulz(x))
    # singular vectors are those of x, singular values in the quintic's band
    s_ns = np.linalg.svd(ns, compute_uv=False)
    assert s_ns.min() > 0.6 and s_ns.max() < 1.25, s_ns
    sigma = np.diag(u.T @ ns @ vt.T)
    off = u.T @ ns @ vt.T - np.diag(sigma)
    assert np.abs(off).max() < 1e-3
    np.testing.assert_allclose(np.linalg.norm(ns - u @ vt) / np.linalg.norm(u @ vt), 0, atol=0.3)


def test_relative_step_makes_it_reparameterisation_invariant():
    """With alpha = 1 (o_a saturated by b3) on every tensor, scaling params and gradients' dual
    by c: a quadratic in p/c reaches the same loss for c in 1e-3..1e3 (RMS(p) >> floor)."""
    lopt = learned_opt.ScaleFreeLOpt(relative=False, alpha_bound=1.5)
    theta = lopt.init_meta_params(KEY)
    alpha_raw = 1.5 * np.arctanh(1.0 / 1.5)  # 1.5 tanh(x / 1.5) = 1
    theta["b3"] = theta["b3"].at[1].set(alpha_raw)
    target = {"w": jax.random.normal(KEY, (8, 6)), "b": jax.random.normal(KEY, (6,))}

    def final_loss(c):
        loss = lambda p: sum(jnp.sum((p[k] / c - target[k]) ** 2) for k in ("w", "b"))
        params = jax.tree.map(lambda t: c * (t + 1.0), target)
        tx = lopt.optimizer(theta, num_steps=100)
        state = tx.init(params)

        def step(carry, _):
            p, s = carry
            value, g = jax.value_and_grad(loss)(p)
            u, s = tx.update(g, s, p, value=value)
            return (optax.apply_updates(p, u), s), value

        (p, _), _ = jax.lax.scan(step, (params, state), None, length=100)
        return float(loss(p))

    scales = (1e-3, 1e-2, 1.0, 1e2, 1e3)
    losses = dict(zip(scales, (final_loss(c) for c in scales), strict=True))
    assert losses[1.0] < 0.7 * 54.0  # it trains: the initial loss is 54
    for c in (1e-2, 1e2, 1e3):  # RMS(p) >= 1e-2 >> floor: the same run up to rounding
        np.testing.assert_allclose(losses[c], losses[1.0], rtol=1e-3)
    # at c = 1e-3, RMS(p) ~ 1.4e-3 is near the floor (1e-3), which may bind as p moves
    np.testing.assert_allclose(losses[1e-3], losses[1.0], rtol=0.1)


@pytest.mark.slow
def test_size_free_features_do_not_see_size_or_gradient_scale():
    """size_free=True: a tensor larger than the caps reads as the caps, and scaling the gradients
    by c changes no gradient feature (they are relative to sqrt(v)); without it, both show."""

    def features(lopt, shape, grad_scale, seed=0):
        rng = np.random.default_rng(seed)
        g = jnp.asarray(grad_scale * rng.normal(size=shape), jnp.float32)
        p = jnp.asarray(rng.normal(size=shape), jnp.float32) * 0.05
        _, _, stats = lopt._directions(g, p, jnp.zeros((2, *shape)), jnp.float32(1.0))
        return lopt._tensor_stats([stats], [g])

    free, plain = (Experimental(size_free=f) for f in (True, False))
    _, _, fans, size = features(free, (784, 1024), 1.0)
    np.testing.assert_allclose(fans, [[256.0, 256.0]])
    np.testing.assert_allclose(np.exp(10 * size), [[65536.0]], rtol=1e-4)
    _, _, fans, size = features(plain, (784, 1024), 1.0)
    np.testing.assert_allclose(fans, [[784.0, 1024.0]])
    for lopt, invariant in ((free, True), (plain, False)):
        small = features(lopt, (16, 8), 1e-3, seed=1)[0]
        large = features(lopt, (16, 8), 1e3, seed=1)[0]
        np.testing.assert_allclose(small[:, 0], large[:, 0], rtol=1e-6)  # RMS(p): the same p
        grads_equal = np.allclose(small[:, 1:], large[:, 1:], atol=1e-5)
        assert grads_equal == invariant, (small, large)


@pytest.mark.slow
def test_matched_mixing_share_does_not_grow_with_the_matrix():
    """A learned weight on Adam's normalised gradient (o_grad = 0.3 on every leaf) enlarges the
    third update (the warm-up starts at 0) of a 64x64 and a 768x768 matrix by the same factor with
    ``matched_mixing`` (d_grad scaled to RMS(d_ns)) and with ``mixing_fan_cap=64`` (d_grad
    scaled by sqrt(64 / fan-in) past it, which leaves the 64x64 matrix exactly as without it);
    with neither the larger matrix's factor is far larger, since RMS(d_ns) ~ 1/sqrt(n). The
    initial theta gives the same update in every case."""

    def third_update(lopt, theta, n):
        rng = np.random.default_rng(n)
        params = {"w": jnp.asarray(rng.normal(size=(n, n)) / np.sqrt(n), jnp.float32)}
        grads = {"w": jnp.asarray(rng.normal(size=(n, n)), jnp.float32)}
        tx = lopt.optimizer(theta, num_steps=100)
        state = tx.init(params)
        for _ in range(3):
            u, state = tx.update(grads, state, params, value=jnp.float32(1.0))
        return u["w"]

    plain = learned_opt.ScaleFreeLOpt(mixing_fan_cap=0.0)
    theta0 = plain.init_meta_params(KEY)
    theta = dict(theta0, b3=theta0["b3"].at[4].set(0.3))
    initial = {n: third_update(plain, theta0, n) for n in (64, 768)}
    settings = {
        "matched": Experimental(mixing_fan_cap=0.0, matched_mixing=True),
        "cap": learned_opt.ScaleFreeLOpt(mixing_fan_cap=64.0),
        "none": plain,
    }
    growth, updates = {}, {}
    for name, lopt in settings.items():
        factors = []
        for n, u0 in initial.items():
            # the initial rule does not change
            np.testing.assert_array_equal(third_update(lopt, theta0, n), u0)
            updates[name, n] = third_update(lopt, theta, n)
            factors.append(float(common.rms(updates[name, n]) / common.rms(u0)))
        growth[name] = factors[1] / factors[0]
    assert abs(growth["matched"] - 1.0) < 0.05, growth
    assert abs(growth["cap"] - 1.0) < 0.05, growth
    assert growth["none"] > 1.5, growth
    np.testing.assert_array_equal(updates["cap", 64], updates["none", 64])


def test_mixing_fan_cap_is_checked_and_saved():
    with pytest.raises(ValueError, match="mixing_fan_cap"):
        learned_opt.ScaleFreeLOpt(mixing_fan_cap=-1)
    with pytest.raises(ValueError, match="mixing_fan_cap"):
        learned_opt.ScaleFreeLOpt(mixing_fan_cap=True)
    lopt = learned_opt.ScaleFreeLOpt(relative=True, mixing_fan_cap=256)
    assert learned_opt.ScaleFreeLOpt(**lopt.to_config()) == lopt
    assert learned_opt.ScaleFreeLOpt().to_config()["mixing_fan_cap"] == 64.0


def _cos(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


@pytest.mark.slow
@pytest.mark.parametrize("leaves", ["all", "vectors"])
def test_agreement_adapts_the_step_by_gradient_agreement(leaves):
    """log r grows by kappa cos(g_t, m_{t-1}) per step (numpy, from the gradients), not at the
    first step, only on non-matrix leaves with "vectors"; the next update is the plain rule's
    times exp(that change), leaf by leaf."""
    kappa = 0.3
    plain = learned_opt.ScaleFreeLOpt(relative=True, zero_init="fan_in")
    adapting = Experimental(
        relative=True, zero_init="fan_in", agreement_rate=kappa, agreement_leaves=leaves
    )
    theta = plain.init_meta_params(KEY)
    params = make_tree(0)
    grads = [make_tree(s) for s in (1, 2, 3)]
    state = adapting.optimizer(theta, num_steps=50).init(params)
    log_ref0 = np.asarray(state.log_ref)
    names = sorted(params)  # the leaves' order
    for g in grads[:2]:
        _, state = update(adapting, theta, g, state, params, jnp.float32(1.0), 50)
    expected = log_ref0.copy()
    for i, k in enumerate(names):  # step 2: kappa cos(g_2, m_1), m_1 = (1 - b1) g_1
        if leaves == "all" or not scale_free.is_muon_leaf(np.shape(params[k])):
            expected[i] += kappa * _cos(grads[1][k], grads[0][k])
    np.testing.assert_allclose(state.log_ref, expected, rtol=1e-5, atol=1e-6)
    # the state after two updates holds the change of step 2 (step 1 leaves it alone)
    change = np.asarray(state.log_ref) - log_ref0
    assert np.any(np.abs(change) > 1e-3)
    if leaves == "vectors":
        for i, k in enumerate(names):
            if scale_free.is_muon_leaf(np.shape(params[k])):
                assert change[i] == 0.0
    # the third update: the plain rule's (same moments, unadapted log r) times exp(change)
    plain_state = state._replace(log_ref=jnp.asarray(log_ref0))
    u_adapt, _ = update(adapting, theta, grads[2], state, params, jnp.float32(1.0), 50)
    u_plain, _ = update(plain, theta, grads[2], plain_state, params, jnp.float32(1.0), 50)
    for i, k in enumerate(names):
        np.testing.assert_allclose(
            u_adapt[k], np.asarray(u_plain[k]) * np.exp(change[i]), rtol=2e-5, atol=1e-12
        )


@pytest.mark.slow
def test_agreement_log_ref_matches_closed_form_and_is_bounded():
    """Two steps by hand on a vector leaf; consistent gradients under a huge kappa stop at the
    bound; kappa = 0 never changes log r."""
    theta = learned_opt.ScaleFreeLOpt().init_meta_params(KEY)
    params = {"x": np.ones(4, np.float32)}
    g1, g2 = np.array([1.0, 2.0, -1.0, 0.5], np.float32), np.array([0.5, 1.0, 1.0, 0.0], np.float32)
    lopt = Experimental(agreement_rate=0.5)
    state = lopt.optimizer(theta, num_steps=40).init(params)
    _, state = update(lopt, theta, {"x": g1}, state, params, jnp.float32(1.0), 40)
    assert float(state.log_ref[0]) == 0.0  # no momentum before the first step
    _, state = update(lopt, theta, {"x": g2}, state, params, jnp.float32(1.0), 40)
    np.testing.assert_allclose(state.log_ref[0], 0.5 * _cos(g2, g1), rtol=1e-5)
    c = _cos(g2, g1)  # 0.4
    for mode, c0, want in [("both", 0.6, c - 0.6), ("grow", 0.6, 0.0), ("grow", 0.1, c - 0.1)]:
        lopt = Experimental(agreement_rate=0.5, agreement_mode=mode, agreement_threshold=c0)
        state = lopt.optimizer(theta, num_steps=40).init(params)
        for g in (g1, g2):
            _, state = update(lopt, theta, {"x": g}, state, params, jnp.float32(1.0), 40)
        np.testing.assert_allclose(state.log_ref[0], 0.5 * want, rtol=1e-5, atol=1e-7)
    big = Experimental(agreement_rate=5.0)
    state = big.optimizer(theta, num_steps=40).init(params)
    for _ in range(6):
        _, state = update(big, theta, {"x": g1}, state, params, jnp.float32(1.0), 40)
    assert float(state.log_ref[0]) == scale_free.LOG_REF_BOUNDS[1]
    off = learned_opt.ScaleFreeLOpt()
    state = off.optimizer(theta, num_steps=40).init(params)
    for g in (g1, g2, g1):
        _, state = update(off, theta, {"x": g}, state, params, jnp.float32(1.0), 40)
    assert float(state.log_ref[0]) == 0.0


def test_agreement_settings_are_checked_and_saved():
    for bad in (-0.1, True, "0.1"):
        with pytest.raises(ValueError, match="agreement_rate"):
            Experimental(agreement_rate=bad)
    with pytest.raises(ValueError, match="agreement_leaves"):
        Experimental(agreement_leaves="matrices")
    with pytest.raises(ValueError, match="agreement_mode"):
        Experimental(agreement_mode="shrink")
    for bad in (1.0, -2, True):
        with pytest.raises(ValueError, match="agreement_threshold"):
            Experimental(agreement_threshold=bad)
    lopt = Experimental(
        agreement_rate=0.1,
        agreement_leaves="vectors",
        agreement_mode="grow",
        agreement_threshold=0.5,
    )
    assert Experimental(**lopt.to_config()) == lopt
    config = learned_opt.ScaleFreeLOpt().to_config()
    assert not [k for k in config if k.startswith("agreement")]
    with pytest.raises(TypeError, match="agreement_rate"):  # experimental options only
        learned_opt.ScaleFreeLOpt(agreement_rate=0.1)


def _trained_like(lopt, seed=3):
    """A theta of ``lopt`` with a non-zero output layer (as after meta-training)."""
    theta = lopt.init_meta_params(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    for k in ("w3", "b3"):
        theta[k] = jnp.asarray(0.3 * rng.normal(size=np.shape(theta[k])), jnp.float32)
    return theta


def _run(lopt, theta, grads, params, num_steps=50):
    """Updates and final state of ``lopt`` over ``grads`` (a list of trees), under jit."""
    state = lopt.optimizer(theta, num_steps=num_steps).init(params)
    outs = []
    for g in grads:
        u, state = update(lopt, theta, g, state, params, jnp.float32(1.0), num_steps)
        outs.append(u)
    return outs, state


@pytest.mark.slow
def test_agreement_gate_starts_exactly_at_the_padded_theta():
    """A trained theta without the gate, padded by meta_params_from: the gated optimizer gives
    the same updates and state, leaf by leaf, over 4 steps (the gate's output starts at 0)."""
    plain = learned_opt.ScaleFreeLOpt(relative=True, zero_init="fan_in", mixing_fan_cap=4.0)
    gated = Experimental(**plain.to_config(), agreement_gate=0.1)
    theta = _trained_like(plain)
    padded = gated.meta_params_from(plain, theta)
    assert padded["w1"].shape == (gated.num_features, plain.hidden) == (23, 32)
    assert padded["w3"].shape == (32, 6) and padded["b3"].shape == (6,)
    _assert_same_updates(plain, theta, gated, padded)


def _assert_same_updates(plain, theta, other, padded):
    """``other`` at ``padded`` gives ``plain``'s updates at ``theta``, leaf by leaf and bit for
    bit, and the same per-tensor state, over 4 steps."""
    params = make_tree(0)
    grads = [make_tree(s) for s in (1, 2, 3, 4)]
    (u_plain, s_plain), (u_other, s_other) = (
        _run(plain, theta, grads, params),
        _run(other, padded, grads, params),
    )
    for a, b in zip(u_plain, u_other, strict=True):
        for k in params:
            np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(s_plain.log_ref, s_other.log_ref)
    np.testing.assert_array_equal(s_plain.ratio_ema, s_other.ratio_ema)


@pytest.mark.slow
def test_agreement_gate_with_a_constant_output_is_the_fixed_rate():
    """With the gate's output held at o_k = atanh(kappa / K) (its bias; no weights), the gated
    optimizer is the fixed-rate one with agreement_rate = kappa: same log r and updates."""
    kappa, bound = 0.06, 0.1
    fixed = Experimental(relative=True, agreement_rate=kappa)
    gated = Experimental(relative=True, agreement_gate=bound)
    theta = _trained_like(dataclasses.replace(fixed, agreement_rate=0.0))
    padded = gated.meta_params_from(dataclasses.replace(gated, agreement_gate=0.0), theta)
    padded["b3"] = padded["b3"].at[5].set(np.arctanh(kappa / bound))
    params = make_tree(0)
    grads = [make_tree(s) for s in (1, 2, 1, 3)]
    (u_fixed, s_fixed), (u_gated, s_gated) = (
        _run(fixed, theta, grads, params),
        _run(gated, padded, grads, params),
    )
    log_ref0 = _run(fixed, theta, grads[:1], params)[1].log_ref  # no change at step 1
    change = np.asarray(s_gated.log_ref) - np.asarray(log_ref0)
    assert np.abs(change).max() > 0.01  # the adaptation really moved log r
    np.testing.assert_allclose(s_gated.log_ref, s_fixed.log_ref, rtol=1e-5, atol=1e-6)
    for k in params:
        np.testing.assert_allclose(u_gated[-1][k], u_fixed[-1][k], rtol=1e-4, atol=1e-9)


def test_agreement_gate_padding_is_refused_for_other_optimizers():
    gated = Experimental(agreement_gate=0.1)
    for other in (
        learned_opt.ScaleFreeLOpt(hidden=16),
        Experimental(agreement_gate=0.2),
        learned_opt.MLPLOpt(),
    ):
        theta = other.init_meta_params(KEY)
        with pytest.raises(ValueError, match="meta_params_from"):
            gated.meta_params_from(other, theta)
    # with no fixed rate, the mode and threshold change nothing at a zero gate: carried over
    grow = Experimental(agreement_gate=0.1, agreement_mode="grow", agreement_threshold=0.5)
    theta = learned_opt.ScaleFreeLOpt().init_meta_params(KEY)
    assert grow.meta_params_from(learned_opt.ScaleFreeLOpt(), theta)["b3"].shape == (6,)
    fixed = Experimental(agreement_rate=0.1)
    with pytest.raises(ValueError, match="meta_params_from"):  # a fixed rate: they matter
        dataclasses.replace(grow, agreement_rate=0.1).meta_params_from(fixed, theta)
    for bad in (-0.1, True):
        with pytest.raises(ValueError, match="agreement_gate"):
            Experimental(agreement_gate=bad)
    assert Experimental(**gated.to_config()) == gated
    assert "agreement_gate" not in learned_opt.ScaleFreeLOpt().to_config()


def test_needs_num_steps_and_value():
    lopt = learned_opt.ScaleFreeLOpt()
    theta = lopt.init_meta_params(KEY)
    with pytest.raises(ValueError, match="num_steps"):
        lopt.optimizer(theta)
    tx = lopt.optimizer(theta, num_steps=10)
    params = make_tree()
    with pytest.raises(ValueError, match="value=loss"):
        tx.update(params, tx.init(params), params)


def test_save_load_roundtrip(tmp_path):
    lopt = learned_opt.ScaleFreeLOpt(hidden=8)
    theta = lopt.init_meta_params(KEY)
    learned_opt.save(tmp_path / "sf", lopt, theta)
    lopt2, theta2 = learned_opt.load_meta_params(tmp_path / "sf")
    assert lopt2 == lopt
    for a, b in zip(jax.tree.leaves(theta), jax.tree.leaves(theta2), strict=True):
        np.testing.assert_array_equal(a, b)


def test_defaults_are_the_recommended_optimizers_architecture():
    """``ScaleFreeLOpt()`` is the architecture of the recommended shipped weights, setting for
    setting, and every shipped scale-free ``lopt.json`` states all of its settings."""
    lopt, _ = learned_opt.load_meta_params(learned_opt.RECOMMENDED)
    assert lopt == learned_opt.ScaleFreeLOpt() and type(lopt) is learned_opt.ScaleFreeLOpt
    assert learned_opt.load_description()["config"] == learned_opt.ScaleFreeLOpt().to_config()
    fields = {f.name for f in dataclasses.fields(learned_opt.ScaleFreeLOpt)}
    for name in learned_opt.pretrained_names():
        desc = learned_opt.load_description(name)
        if desc["architecture"] == "scale_free":
            assert set(desc["config"]) == fields, name
            assert desc["config"]["ns_steps"] == 5, name


def test_ns_steps_is_used():
    """ns_steps=3 changes the update of matrices and conv kernels (3 Newton-Schulz iterations,
    as :func:`newton_schulz` with steps=3 gives), and no other leaf's at the initial theta."""
    params, grads = make_tree(0), [make_tree(1), make_tree(2)]
    five, three = learned_opt.ScaleFreeLOpt(), learned_opt.ScaleFreeLOpt(ns_steps=3)
    theta = five.init_meta_params(KEY)
    u5, u3 = (_run(lopt, theta, grads, params)[0][-1] for lopt in (five, three))  # step 1 > 0
    for k in params:
        if scale_free.is_muon_leaf(np.shape(params[k])):
            assert np.abs(np.asarray(u5[k]) - np.asarray(u3[k])).max() > 1e-3 * np.abs(u5[k]).max()
        else:
            np.testing.assert_array_equal(u5[k], u3[k])
    m = jnp.asarray(grads[0]["w"])
    for steps in (3, 5):
        want = scale_free.newton_schulz(m, steps) * np.sqrt(max(1.0, 5 / 6))
        np.testing.assert_allclose(scale_free.ns_direction(m, steps), want, rtol=1e-6)
    assert not np.allclose(scale_free.ns_direction(m, 3), scale_free.ns_direction(m, 5))


@pytest.mark.slow
def test_experimental_with_options_off_is_the_plain_optimizer():
    """ExperimentalScaleFreeLOpt with every option off gives the recommended weights' updates bit
    for bit; it is saved and loaded under its own architecture name."""
    lopt, theta = learned_opt.load_meta_params()
    off = Experimental(**lopt.to_config())
    assert off != lopt and off.num_features == lopt.num_features
    params = dict(make_tree(0), wide=np.full((80, 3), 0.1, np.float32))  # fan-in past the cap
    grads = [dict(make_tree(s), wide=np.full((80, 3), 0.01 * s, np.float32)) for s in (1, 2, 3)]
    (u_plain, s_plain), (u_off, s_off) = (
        _run(lopt, theta, grads, params),
        _run(off, theta, grads, params),
    )
    for a, b in zip(u_plain, u_off, strict=True):
        for k in params:
            np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(s_plain.log_ref, s_off.log_ref)


def test_experimental_save_load_roundtrip(tmp_path):
    lopt = Experimental(hidden=8, agreement_gate=0.1, size_free=True)
    theta = lopt.init_meta_params(KEY)
    learned_opt.save(tmp_path / "sf", lopt, theta)
    assert (
        learned_opt.load_description(tmp_path / "sf")["architecture"] == "scale_free_experimental"
    )
    lopt2, theta2 = learned_opt.load_meta_params(tmp_path / "sf")
    assert lopt2 == lopt and type(lopt2) is Experimental
    for a, b in zip(jax.tree.leaves(theta), jax.tree.leaves(theta2), strict=True):
        np.testing.assert_array_equal(a, b)


def _mlp_setup():
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.relu(nn.Dense(16)(x)))

    x = jax.random.normal(KEY, (32, 4))
    y = jnp.sum(x, axis=1, keepdims=True)
    return MLP, x, y


@pytest.mark.slow
def test_flax_linen_train_state_and_nnx_optimizer():
    """The README patterns: linen TrainState via learned_opt.apply_gradients, and NNX's
    nnx.Optimizer.update(model, grads, value=loss); both equal a hand-written optax loop."""
    from flax import nnx
    from flax.training import train_state

    module_cls, x, y = _mlp_setup()
    lopt = learned_opt.ScaleFreeLOpt()
    tx = lopt.optimizer(lopt.init_meta_params(KEY), num_steps=30)
    model = module_cls()
    params = model.init(KEY, x)
    loss_fn = lambda p: jnp.mean((model.apply(p, x) - y) ** 2)

    # hand-written loop
    p, s = params, tx.init(params)
    for _ in range(5):
        value, g = jax.value_and_grad(loss_fn)(p)
        u, s = tx.update(g, s, p, value=value)
        p = optax.apply_updates(p, u)

    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    with pytest.raises(ValueError, match="value=loss"):
        state.apply_gradients(grads=jax.grad(loss_fn)(params))  # what users hit
    for _ in range(5):
        value, g = jax.value_and_grad(loss_fn)(state.params)
        state = learned_opt.apply_gradients(state, grads=g, value=value)
    assert int(state.step) == 5
    for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)

    class NnxMLP(nnx.Module):
        def __init__(self, rngs):
            self.l1, self.l2 = nnx.Linear(4, 16, rngs=rngs), nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x):
            return self.l2(nnx.relu(self.l1(x)))

    net = NnxMLP(nnx.Rngs(0))
    opt = nnx.Optimizer(net, tx, wrt=nnx.Param)
    nnx_loss = lambda m: jnp.mean((m(x) - y) ** 2)
    first = float(nnx_loss(net))
    for _ in range(30):
        value, g = nnx.value_and_grad(nnx_loss)(net)
        opt.update(net, g, value=value)
    assert float(nnx_loss(net)) < 0.5 * first


def test_mismatched_grads_name_the_leaf():
    lopt = learned_opt.ScaleFreeLOpt()
    tx = lopt.optimizer(lopt.init_meta_params(KEY), num_steps=10)
    params = make_tree()
    grads = dict(params, w=np.zeros((5, 6), np.float32))
    with pytest.raises(ValueError, match="w"):
        tx.update(grads, tx.init(params), params, value=1.0)


@pytest.mark.slow
def test_elementwise_term_starts_exactly_at_the_padded_theta():
    """A trained theta without the per-parameter network, padded by meta_params_from: the same
    updates and state, leaf by leaf, over 4 steps (the network's output weights start at 0)."""
    plain = learned_opt.ScaleFreeLOpt(relative=True, zero_init="fan_in", mixing_fan_cap=4.0)
    elementwise = Experimental(**plain.to_config(), elementwise_hidden=8)
    theta = _trained_like(plain)
    padded = elementwise.meta_params_from(plain, theta)
    assert padded["ew1"].shape == (6, 8) and not np.any(padded["ew2"])
    assert jax.tree.structure(padded) == jax.tree.structure(elementwise.init_meta_params(KEY))
    _assert_same_updates(plain, theta, elementwise, padded)


@pytest.mark.slow
def test_context_starts_exactly_at_the_padded_theta_and_shifts_the_networks_bias():
    """``elementwise_context`` padded onto a per-parameter theta gives its updates exactly; with
    ``w1 = w2 = 0`` the context is ``tanh(b2)`` for every tensor, so non-zero ``ewc`` must equal
    the optimizer without context whose ``eb1`` is ``eb1 + tanh(b2) W_ec``."""
    plain = learned_opt.ScaleFreeLOpt(relative=True, zero_init="fan_in", mixing_fan_cap=4.0)
    elementwise = Experimental(**plain.to_config(), elementwise_hidden=5)
    context = Experimental(**elementwise.to_config() | {"elementwise_context": True})
    theta = elementwise.meta_params_from(plain, _trained_like(plain))
    rng = np.random.default_rng(3)
    for k in ("ew1", "eb1", "ew2"):
        theta[k] = jnp.asarray(rng.normal(size=np.shape(theta[k])), jnp.float32)
    padded = context.meta_params_from(elementwise, theta)
    assert padded["ewc"].shape == (32, 5) and not np.any(padded["ewc"])
    assert jax.tree.structure(padded) == jax.tree.structure(context.init_meta_params(KEY))
    _assert_same_updates(elementwise, theta, context, padded)

    theta = dict(theta, w1=jnp.zeros_like(theta["w1"]), w2=jnp.zeros_like(theta["w2"]))
    theta["b2"] = jnp.asarray(rng.normal(size=theta["b2"].shape), jnp.float32)
    with_ctx = dict(theta, ewc=jnp.asarray(rng.normal(size=(32, 5)), jnp.float32))
    h = np.tanh(np.asarray(theta["b2"], np.float64))
    shifted = dict(theta, eb1=jnp.asarray(theta["eb1"] + h @ np.asarray(with_ctx["ewc"])))
    params, grads = make_tree(0), [make_tree(1), make_tree(2), make_tree(3)]
    u_ctx = _run(context, with_ctx, grads, params)[0][-1]
    u_shift = _run(elementwise, shifted, grads, params)[0][-1]
    u_plain = _run(elementwise, theta, grads, params)[0][-1]
    for k in params:
        np.testing.assert_allclose(u_ctx[k], u_shift[k], rtol=1e-5, atol=1e-7)
        assert np.abs(u_ctx[k] - u_plain[k]).max() > 1e-3 * np.abs(u_plain[k]).max(), k


def _reference_directions(gs, p, lopt):
    """float64 reference of a leaf's (d_ns or None, d_adam, d_grad) after the gradients ``gs``,
    and p / max(RMS(p), floor)."""
    p = np.asarray(p, np.float64)
    muon = scale_free.is_muon_leaf(p.shape)
    b1, b2 = (lopt.muon_beta if muon else lopt.adam_b1), lopt.adam_b2
    m = v = 0.0
    for g in gs:
        g = np.asarray(g, np.float64)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    t = len(gs)
    m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
    r = 1.0 / (np.sqrt(v / (1 - b2**t)) + lopt.eps)
    d_ns = np.asarray(scale_free.ns_direction(jnp.asarray(m_hat, jnp.float32))) if muon else None
    rms_p = max(np.sqrt(np.mean(p * p)), lopt.rms_floor)
    return d_ns, m_hat * r, g * r, p / rms_p


@pytest.mark.slow
def test_elementwise_term_adds_rms_times_the_networks_output():
    """With a non-zero per-parameter network, the second step (the first one moves nothing: the
    warmup starts at 0) is the plain optimizer's update ``u`` minus ``RMS(u) e``, ``e = tanh(f
    W_e1 + b_e1) w_e2`` computed here in float64 from the features the class doc names
    (fraction done 1/50, the Muon flag)."""
    plain = learned_opt.ScaleFreeLOpt(relative=True, zero_init="fan_in", mixing_fan_cap=4.0)
    elementwise = Experimental(**plain.to_config(), elementwise_hidden=5)
    theta_plain = _trained_like(plain)
    theta = elementwise.meta_params_from(plain, theta_plain)
    rng = np.random.default_rng(7)
    for k in ("ew1", "eb1", "ew2"):
        theta[k] = jnp.asarray(rng.normal(size=np.shape(theta[k])), jnp.float32)
    params, grads = make_tree(0), [make_tree(1), make_tree(2)]
    u_plain = _run(plain, theta_plain, grads, params)[0][-1]
    u_elem = _run(elementwise, theta, grads, params)[0][-1]
    w1, b1, w2 = (np.asarray(theta[k], np.float64) for k in ("ew1", "eb1", "ew2"))
    moved = 0
    for k in params:
        gs = [g[k] for g in grads]
        d_ns, d_adam, d_grad, scaled_p = _reference_directions(gs, params[k], plain)
        ns = d_ns / np.sqrt(np.mean(d_ns**2)) if d_ns is not None else np.zeros_like(d_adam)
        cols = [np.clip(c, -4, 4).reshape(-1) for c in (d_adam, d_grad, ns, scaled_p)]
        n = d_adam.size
        x = np.stack(cols + [np.full(n, 1 / 50), np.full(n, float(d_ns is not None))], 1)
        e = (np.tanh(x @ w1 + b1) @ w2).reshape(d_adam.shape)
        u = np.asarray(u_plain[k], np.float64)
        want = u - np.sqrt(np.mean(u * u)) * e
        np.testing.assert_allclose(u_elem[k], want, rtol=2e-4, atol=1e-6 * np.abs(u).max())
        moved += np.abs(want - u).max() > 0.1 * np.abs(u).max()
    assert moved == len(params)  # the term changed every leaf


def test_elementwise_settings_are_checked_and_padding_refused_for_other_optimizers():
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match="elementwise_hidden"):
            Experimental(elementwise_hidden=bad)
    elementwise = Experimental(elementwise_hidden=8)
    for other in (
        learned_opt.ScaleFreeLOpt(hidden=16),
        Experimental(elementwise_hidden=4),
        learned_opt.MLPLOpt(),
    ):
        with pytest.raises(ValueError, match="meta_params_from"):
            elementwise.meta_params_from(other, other.init_meta_params(KEY))
    both = Experimental(elementwise_hidden=8, agreement_gate=0.1)  # both grown at once
    padded = both.meta_params_from(
        learned_opt.ScaleFreeLOpt(), _trained_like(learned_opt.ScaleFreeLOpt())
    )
    assert padded["b3"].shape == (6,) and padded["ew2"].shape == (8,)
    with pytest.raises(ValueError, match="elementwise_context needs elementwise_hidden"):
        Experimental(elementwise_context=True)
    with pytest.raises(ValueError, match="elementwise_context"):
        Experimental(elementwise_hidden=8, elementwise_context=1)
    with_context = Experimental(elementwise_hidden=8, elementwise_context=True)
    with pytest.raises(ValueError, match="meta_params_from"):  # one network, another width
        with_context.meta_params_from(Experimental(elementwise_hidden=4), {})
    padded = with_context.meta_params_from(  # the network and its context grown at once
        learned_opt.ScaleFreeLOpt(), _trained_like(learned_opt.ScaleFreeLOpt())
    )
    assert padded["ew1"].shape == (6, 8) and padded["ewc"].shape == (32, 8)
    gated = Experimental(agreement_gate=0.1)  # the gate kept, the network grown
    padded = both.meta_params_from(gated, gated.init_meta_params(KEY))
    assert padded["w1"].shape == (23, 32) and padded["ew1"].shape == (6, 8)
