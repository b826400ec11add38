"""HyperLOpt: equals Adam at G = 0, closed-form steps, loss features, invariances, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import learned_opt

KEY = jax.random.key(0)


@functools.partial(jax.jit, static_argnums=0)
def update(lopt, theta, grads, state, params, value, num_steps=None):
    return lopt.optimizer(theta, num_steps=num_steps).update(grads, state, params, value=value)


def make_tree(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    f = lambda *shape: (scale * rng.normal(size=shape)).astype(np.float32)
    return {"w": f(6, 5), "b": f(5), "s": f()}


def no_generator(lopt):
    theta = lopt.init_meta_params(KEY)
    theta["generator"]["w"] = jnp.zeros_like(theta["generator"]["w"])
    return theta


@pytest.mark.standard_promotion  # runs optax's transforms
def test_zero_generator_is_adam():
    """With G = 0 the generated MLP is d = relu(x1) - relu(-x1) = Adam's m_hat/(sqrt(v_hat)+eps)."""
    lopt = learned_opt.HyperLOpt(step_init=3e-3, momentum_decays=(0.8, 0.99), rms_decay=0.99)
    theta = no_generator(lopt)
    adam = optax.adam(3e-3, b1=0.8, b2=0.99)
    params = make_tree()
    state, astate = lopt.optimizer(theta).init(params), adam.init(params)
    for i in range(6):
        grads = make_tree(10 + i, scale=10.0 ** (i - 3))
        u, state = update(lopt, theta, grads, state, params, 1.0 / (i + 1))
        ua, astate = adam.update(grads, astate, params)
        for x, y in zip(jax.tree.leaves(u), jax.tree.leaves(ua), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-9)
        params = optax.apply_updates(params, u)


def test_generator_bias_closed_form():
    """G = 0, generated b2 = c, other MLP weights 0, log_lr = log(a): update = -a * c."""
    lopt = learned_opt.HyperLOpt()
    theta = no_generator(lopt)
    a, c = 0.02, -1.5
    b = jnp.zeros((lopt.num_generated,)).at[-2].set(c).at[-1].set(np.log(a))
    theta["generator"]["b"] = b
    params = make_tree()
    u, _ = update(lopt, theta, make_tree(1), lopt.optimizer(theta).init(params), params, 2.0)
    for x in jax.tree.leaves(u):
        np.testing.assert_allclose(x, np.full(x.shape, a * 1.5), rtol=1e-6)


def test_lstm_reads_fraction_and_loss_trend():
    """The LSTM state depends on num_steps (fraction done) and on the loss values given."""
    lopt = learned_opt.HyperLOpt()
    theta = lopt.init_meta_params(KEY)
    params, grads = make_tree(), make_tree(1)
    state0 = lopt.optimizer(theta).init(params)

    def run(losses, num_steps):
        s = state0
        for v in losses:
            u, s = update(lopt, theta, grads, s, params, v, jnp.int32(num_steps))
        return u, s

    u1, s1 = run([3.0, 2.0, 1.0], 100)
    u2, s2 = run([3.0, 2.0, 1.0], 10)
    u3, s3 = run([1.0, 2.0, 3.0], 100)
    assert not np.allclose(s1.lstm_h, s2.lstm_h) and not np.allclose(s1.lstm_h, s3.lstm_h)
    assert not np.allclose(u1["w"], u3["w"])
    # Loss EMAs: first value sets all three, then EMAs with decays (0.9, 0.99).
    f, sl = 3.0, 3.0
    for v in [2.0, 1.0]:
        f, sl = 0.9 * f + 0.1 * v, 0.99 * sl + 0.01 * v
    np.testing.assert_allclose(s1.loss_ema, [f, sl, 3.0], rtol=1e-6)
    # A non-finite loss leaves the EMAs untouched.
    _, s4 = update(lopt, theta, grads, s1, params, jnp.nan, jnp.int32(100))
    np.testing.assert_array_equal(s4.loss_ema, s1.loss_ema)


def test_permutation_equivariance():
    """Tensor statistics are permutation invariant and the per-parameter MLP is elementwise."""
    lopt = learned_opt.HyperLOpt()
    theta = lopt.init_meta_params(KEY)
    params, grads = make_tree(), make_tree(1)
    perm = np.random.default_rng(0).permutation(30)
    pw = lambda t: dict(t, w=t["w"].reshape(-1)[perm].reshape(6, 5))
    s1 = s2 = lopt.optimizer(theta).init(params)
    for v in [2.0, 1.5]:
        u1, s1 = update(lopt, theta, grads, s1, params, v)
        u2, s2 = update(lopt, theta, pw(grads), s2, pw(params), v)
    for x, y in zip(jax.tree.leaves(pw(u1)), jax.tree.leaves(u2), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-10)


def test_gradient_rescale():
    """As designed: at G = 0 (Adam) rescaling gradients changes nothing; with a trained-like G
    the LSTM sees the log gradient scale, so the update may depend on it."""
    lopt = learned_opt.HyperLOpt()
    params, grads = make_tree(), make_tree(1)
    scaled = jax.tree.map(lambda g: 100.0 * g, grads)
    theta = no_generator(lopt)
    s = lopt.optimizer(theta).init(params)
    u1, _ = update(lopt, theta, grads, s, params, 1.0)
    u2, _ = update(lopt, theta, scaled, s, params, 1.0)
    np.testing.assert_allclose(u1["w"], u2["w"], rtol=1e-5)
    theta = lopt.init_meta_params(KEY)
    theta["generator"]["w"] = 10 * theta["generator"]["w"]
    u1, _ = update(lopt, theta, grads, s, params, 1.0)
    u2, _ = update(lopt, theta, scaled, s, params, 1.0)
    assert not np.allclose(u1["w"], u2["w"], rtol=1e-4)


def test_mup_mode():
    lopt = learned_opt.HyperLOpt(mup=True)
    theta = no_generator(lopt)
    params = {"a": jnp.ones((4, 8)), "b": jnp.ones((8, 8)), "c": jnp.ones((8, 3))}
    state = lopt.optimizer(theta).init(params)
    u, _ = update(lopt, theta, params, state, params, 1.0)
    np.testing.assert_allclose(u["a"], np.full((4, 8), -1e-3), rtol=1e-4)
    np.testing.assert_allclose(u["b"], np.full((8, 8), -1e-3 / 8), rtol=1e-4)
    np.testing.assert_allclose(u["c"], np.full((8, 3), -1e-3), rtol=1e-4)


def test_missing_value_and_params_raise():
    lopt = learned_opt.HyperLOpt()
    tx = lopt.optimizer(lopt.init_meta_params(KEY))
    params = make_tree()
    state = tx.init(params)
    with pytest.raises(ValueError, match="value=loss"):
        tx.update(params, state, params)
    with pytest.raises(ValueError, match="needs params"):
        tx.update(params, state, None, value=1.0)


def test_default_theta_decreases_quadratic():
    a = jnp.logspace(-1, 1, 64)
    loss = lambda x: 0.5 * jnp.sum(a * x["x"] ** 2)
    params = {"x": 0.1 * jax.random.normal(jax.random.key(1), (64,))}
    lopt = learned_opt.HyperLOpt()
    tx = lopt.optimizer(lopt.init_meta_params(KEY), num_steps=300)

    def step(carry, _):
        p, s = carry
        v, g = jax.value_and_grad(loss)(p)
        u, s = tx.update(g, s, p, value=v)
        return (optax.apply_updates(p, u), s), v

    _, losses = jax.lax.scan(step, (params, tx.init(params)), length=300)
    assert losses[-1] < 0.2 * losses[0]


def test_tensor_features_closed_form():
    """LSTM inputs after one step from zero state: acc = (0.1 g, 0.01 g, 0.001 g^2)."""
    lopt = learned_opt.HyperLOpt()
    g = make_tree(4)["w"].astype(np.float64)
    p = make_tree(5)["w"].astype(np.float64)
    acc = np.stack([0.1 * g, 0.01 * g, 0.001 * g * g]).astype(np.float32)
    sums = lopt._sums(jnp.asarray(p, jnp.float32), jnp.asarray(acc))
    shared = lopt._shared_features(jnp.int32(5), 20, jnp.array([1.0, 2.0, 4.0]))
    x = np.asarray(lopt._tensor_features(shared, [g], sums[None] / g.size))[0]
    rms = lambda a: np.sqrt(np.mean(a**2))
    scales = [rms(0.1 * g), rms(0.01 * g), np.sqrt(rms(0.001 * g * g)), rms(p)]
    want = [5 / 20, *np.tanh(5 / np.array([10, 100, 1000, 10000]))]
    want += [np.tanh((1 - 2) / 2), np.tanh((1 - 4) / 4)]
    want += list(0.1 * np.log(scales)) + [np.log(scales[0] / scales[2])]
    want += [0, 0, 1, 0, 0, 0.1 * np.log1p(30)]
    assert x.shape == (lopt.num_tensor_features,)
    np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-6)
