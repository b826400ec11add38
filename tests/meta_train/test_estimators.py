"""Estimators against the exact meta-gradient of a small unrolled system (jax.grad of it)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_train import estimators
from meta_train.particles import LengthSchedule

T, K = 5, 4  # truncation length, truncations per episode
N = T * K  # episode length
SIGMA = 0.01


def settings(**over) -> estimators.EstimatorSettings:
    """Truncations of ``T`` steps of constant episodes of ``N`` steps, sigma ``SIGMA``."""
    base = dict(truncation_length=T, sigma=SIGMA, episode=LengthSchedule("constant", N, N))
    return estimators.EstimatorSettings(**{**base, **over})


def exact_meta_grad(
    task, lopt, theta, n_steps, denom, transform=lambda loss: loss, weight=lambda t: 1.0
):
    """grad of (1/denom) * sum_{t<n_steps} weight(t) transform(loss_t) through the whole unroll."""
    data = task.load_data()

    def meta_loss(th):
        tx = lopt.optimizer(th, num_steps=n_steps)
        params = task.init(None)
        state = tx.init(params)
        total = 0.0
        for t in range(n_steps):
            loss, g = jax.value_and_grad(task.loss)(params, None, data["target"])
            updates, state = tx.update(g, state, params, value=loss)
            params = jax.tree.map(jnp.add, params, updates)
            total = total + weight(t) * transform(loss)
        return total / denom

    return jax.grad(meta_loss)(theta)


def run_estimator(est, theta, data, calls, repeats, pairs, seed=0):
    """Sum of `calls` consecutive estimates from fresh synchronised populations, per repeat."""
    estimate = jax.jit(est.estimate)
    out = []
    for r in range(repeats):
        key = jax.random.PRNGKey(seed * 1000 + r)
        particles = est.init(key, theta, pairs, random_offset=False)
        total = jax.tree.map(jnp.zeros_like, theta)
        for c in range(calls):
            g, particles, metrics = estimate(theta, particles, jax.random.fold_in(key, c), data)
            assert int(metrics["num_nonfinite"]) == 0
            total = jax.tree.map(jnp.add, total, g)
        out.append(np.array(jax.flatten_util.ravel_pytree(total)[0]))
    return np.stack(out)


def _flat(tree):
    return np.array(jax.flatten_util.ravel_pytree(tree)[0])


PAIRS, REPEATS = 2048, 12  # 12 estimates of 2048 antithetic pairs: se about 1.5% of |exact|


def _assert_matches(samples, exact, name, max_se=0.02):
    """The mean estimate is within 3 standard errors of ``exact`` (as a vector), and a standard
    error is under ``max_se * |exact|``: with the default 0.02, 3 standard errors are under 6%
    of ``|exact|``, so an estimate 10% too large or too small fails."""
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / np.sqrt(len(samples))
    se_norm, size = np.linalg.norm(se), np.linalg.norm(exact)
    assert se_norm < max_se * size, (name, se_norm / size)  # the test has teeth
    assert np.linalg.norm(mean - exact) < 3 * se_norm, (name, mean, exact, se)
    assert np.all(np.abs(mean - exact) < 4 * se + 1e-3 * np.abs(exact)), (name, mean, exact, se)


@pytest.mark.parametrize(
    "factory", [estimators.pes, pytest.param(estimators.nres, marks=pytest.mark.slow)]
)
def test_online_es_unbiased_over_episode(system, factory):
    task, lopt, theta, data = system
    est = factory(task, lopt, settings())
    samples = run_estimator(est, theta, data, calls=K, repeats=REPEATS, pairs=PAIRS)
    exact = _flat(exact_meta_grad(task, lopt, theta, N, T))
    _assert_matches(samples, exact, factory.__name__)


def test_pes_on_a_subspace(system):
    """With ``perturbed_leaves`` PES estimates the exact meta-gradient's part on those leaves and
    is exactly zero on the others; its draws on them are the unrestricted draws."""
    task, lopt, theta, data = system
    est = estimators.pes(task, lopt, settings(perturbed_leaves=("log_lr",)))
    samples = run_estimator(est, theta, data, calls=K, repeats=REPEATS, pairs=PAIRS)
    exact = exact_meta_grad(task, lopt, theta, N, T)
    names = sorted(theta)  # ravel_pytree's order: log_lr, mom_logit
    assert names == ["log_lr", "mom_logit"] and abs(float(exact["mom_logit"])) > 1e-3
    np.testing.assert_array_equal(samples[:, 1], 0.0)
    _assert_matches(samples[:, :1], np.array([float(exact["log_lr"])]), "pes subspace")
    key = jax.random.PRNGKey(3)
    full = estimators._normal_like(key, theta, 0.5)
    part = estimators._normal_like(key, theta, 0.5, only=("mom_logit",))
    assert float(part["log_lr"]) == 0.0 and float(part["mom_logit"]) == float(full["mom_logit"])


def _pes_matches_objective(system, name, over, **objective):
    """PES with the settings changed by ``over`` against the exact gradient of ``objective``
    (``exact_meta_grad``'s ``transform`` / ``weight``), which must point elsewhere than the plain
    mean loss's."""
    task, lopt, theta, data = system
    est = estimators.pes(task, lopt, settings(**over))
    samples = run_estimator(est, theta, data, calls=K, repeats=REPEATS, pairs=PAIRS)
    exact = _flat(exact_meta_grad(task, lopt, theta, N, T, **objective))
    plain = _flat(exact_meta_grad(task, lopt, theta, N, T))
    assert np.linalg.norm(exact / np.linalg.norm(exact) - plain / np.linalg.norm(plain)) > 0.05
    _assert_matches(samples, exact, name)


@pytest.mark.slow
def test_pes_log_loss_unbiased(system):
    """With ``log_loss`` PES estimates the gradient of the mean log normalised loss."""
    norm = system[0].loss_normalizer
    transform = lambda loss: jnp.log(loss / norm)  # noqa: E731
    _pes_matches_objective(system, "pes log_loss", dict(log_loss=True), transform=transform)


@pytest.mark.slow
def test_pes_late_weight_unbiased(system):
    """With ``late_weight`` p PES estimates the gradient of the episode's step losses weighted by
    ``(p + 1) ((t + 1) / N)^p`` (written out here)."""
    p = 2.0
    weight = lambda t: (p + 1) * ((t + 1) / N) ** p  # noqa: E731
    _pes_matches_objective(system, "pes late_weight", dict(late_weight=p), weight=weight)


def test_late_weights_closed_form():
    step, length = jnp.array([0, 4, 9, 0]), jnp.array([10, 10, 10, 1])
    np.testing.assert_allclose(
        estimators.late_weights(step, length, 1.0), [0.2, 1.0, 2.0, 2.0], rtol=1e-6
    )
    np.testing.assert_array_equal(estimators.late_weights(step, length, 0.0), np.ones(4))
    mean = estimators.late_weights(jnp.arange(2000), jnp.full(2000, 2000), 2.0).mean()
    assert abs(float(mean) - 1.0) < 2e-3  # about 1 over an episode


def test_step_loss_closed_form():
    loss = jnp.array([0.5, 1e-9, 50.0, jnp.nan, -1.0])
    np.testing.assert_allclose(
        estimators.step_loss(loss, 2.0, 10.0), [0.25, 5e-10, 10.0, 10.0, -0.5], rtol=1e-6
    )
    np.testing.assert_allclose(
        estimators.step_loss(loss, 2.0, 10.0, log_loss=True),
        np.log([0.25, estimators.LOG_LOSS_FLOOR, 10.0, 10.0, estimators.LOG_LOSS_FLOOR]),
        rtol=1e-6,
    )


@pytest.mark.slow
def test_full_es_unbiased(system):
    task, lopt, theta, data = system
    est = estimators.full_es(task, lopt, settings())  # whole episodes of N steps
    samples = run_estimator(est, theta, data, calls=1, repeats=REPEATS, pairs=PAIRS)
    exact = _flat(exact_meta_grad(task, lopt, theta, N, N))
    _assert_matches(samples, exact, "full_es")


@pytest.mark.slow
def test_tbptt_is_biased(system):
    task, lopt, theta, data = system
    est = estimators.tbptt(task, lopt, settings())
    got = run_estimator(est, theta, data, calls=K, repeats=1, pairs=2)[0]
    exact = _flat(exact_meta_grad(task, lopt, theta, N, T))
    # deterministic system: TBPTT's error is exact, not noise; it must be large
    rel = np.linalg.norm(got - exact) / np.linalg.norm(exact)
    assert rel > 0.2, (got, exact)
    # ... while its first truncation (nothing carried yet) is exact
    first = run_estimator(est, theta, data, calls=1, repeats=1, pairs=2)[0]
    np.testing.assert_allclose(first, _flat(exact_meta_grad(task, lopt, theta, T, T)), rtol=1e-4)


@pytest.mark.slow
def test_reset_mid_truncation_is_unbiased(system):
    """Random offsets put episode ends inside truncations (the pre/post split of the loss)."""
    task, lopt, theta, data = system
    est = estimators.pes(task, lopt, settings())
    estimate = jax.jit(est.estimate)
    # steady state: the sum over a long window of estimates per step ~ grad of the per-episode
    # objective times (window / N); compare the average estimate to exact/K.
    exact = _flat(exact_meta_grad(task, lopt, theta, N, T)) / K
    samples = []
    for r in range(12):
        key = jax.random.PRNGKey(77 + r)
        particles = est.init(key, theta, 256, random_offset=True)
        acc = 0
        for c in range(3 * K):
            g, particles, _ = estimate(theta, particles, jax.random.fold_in(key, c), data)
            if c >= K:  # burn in one episode so every pair is in a proper episode
                acc = acc + _flat(g)
        samples.append(acc / (2 * K))
    # checks the split of the loss at a reset, not the size of the estimate (3 se < 20%)
    _assert_matches(np.stack(samples), exact, "pes-offsets", max_se=0.066)


def test_nonfinite_pair_reset_and_counted(system):
    task, lopt, theta, data = system
    est = estimators.pes(task, lopt, settings())
    particles = est.init(jax.random.PRNGKey(0), theta, 8, random_offset=False)
    w = particles.params["w"].at[3].set(jnp.nan)
    particles = particles._replace(params={"w": w})
    g, particles, metrics = jax.jit(est.estimate)(theta, particles, jax.random.PRNGKey(1), data)
    assert int(metrics["num_nonfinite"]) == 1
    assert np.all(np.isfinite(_flat(g)))
    assert np.all(np.isfinite(np.asarray(particles.params["w"])))
    # the NaN shows in the first step's loss: the pair restarts and runs T - 1 more steps
    assert int(particles.step[3]) == T - 1 and int(particles.step[0]) == T
    # its accumulated noise restarted at this truncation's eps
    np.testing.assert_allclose(particles.xi["log_lr"][3], particles.eps["log_lr"][3])


def test_bad_settings_refused(system):
    task, lopt, _, _ = system
    with pytest.raises(ValueError, match="sigma"):
        estimators.pes(task, lopt, settings(sigma=0.0))
    with pytest.raises(ValueError, match="truncation_length"):
        short = LengthSchedule("log_uniform", 5, 100)
        estimators.pes(task, lopt, settings(truncation_length=10, episode=short))
    with pytest.raises(ValueError, match="quantization"):
        estimators.pes(task, lopt, settings(exchange_quantization="int8"))
