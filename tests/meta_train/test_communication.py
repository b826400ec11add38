"""Shared-randomness communication (``meta_train.communication``): the same meta-gradient as the
all-reduce on 1 device (the same theta on 4 simulated devices and 2 processes: ``test_sharding``);
quantised exchanges across 4 devices; bytes that do not grow with theta; int8 within its bound of
the exact estimate; the sign mode's 2/pi shrinkage."""

import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mt_toys import subprocess_env
from test_estimators import N, T, _flat, exact_meta_grad, run_estimator, settings

from meta_train import communication, estimators

K = N // T


def _pes(system, mode="allreduce", quantization="none"):
    task, lopt, *_ = system
    return estimators.pes(
        task, lopt, settings(communication=mode, exchange_quantization=quantization)
    )


def _estimates(est, theta, data, pairs=64, calls=K, seed=3):
    """The per-call estimates (flattened) of one population over ``calls`` truncations."""
    estimate = jax.jit(est.estimate)
    particles = est.init(jax.random.PRNGKey(seed), theta, pairs, random_offset=True)
    out = []
    for c in range(calls):
        g, particles, _ = estimate(theta, particles, jax.random.PRNGKey(100 + c), data)
        out.append(_flat(g))
    return np.stack(out)


def test_shared_randomness_equals_allreduce_one_device(system):
    """Unquantised, the exchanged scalars rebuild the all-reduce's estimate exactly (1 device)."""
    _, _, theta, data = system
    a = _estimates(_pes(system), theta, data)
    s = _estimates(_pes(system, "shared_randomness"), theta, data)
    assert np.abs(a).max() > 0
    np.testing.assert_allclose(s, a, rtol=1e-6, atol=1e-9)


def test_int8_within_its_bound_and_unbiased(system):
    """int8: every exchanged difference is off by < max|d| / 127 (stochastic rounding, unbiased).
    Against the unquantised estimate of the same particles: the worst case of that bound,
    ``|g8 - g| <= 1/(2 n sigma^2) * s/127 * sum_i (|xi_i| + |eps_i|)``, is bounded here by 1% of
    |g|; and over many populations the int8 mean matches the exact gradient."""
    _, _, theta, data = system
    g = _estimates(_pes(system, "shared_randomness"), theta, data)
    g8 = _estimates(_pes(system, "shared_randomness", "int8"), theta, data)
    assert not np.array_equal(g8, g)  # it did quantise
    rel = np.abs(g8 - g).max() / np.abs(g).max()
    assert rel < 0.01, rel
    task, lopt, *_ = system
    est = _pes(system, "shared_randomness", "int8")
    samples = run_estimator(est, theta, data, calls=K, repeats=16, pairs=256)
    exact = _flat(exact_meta_grad(task, lopt, theta, N, T))
    se = samples.std(0, ddof=1) / np.sqrt(len(samples))
    assert np.all(np.abs(samples.mean(0) - exact) < 4 * se + 1e-3 * np.abs(exact))


def test_sign_mode_shrinks_by_two_over_pi(system):
    """sign (1 bit per difference, shared scale mean|d|): with FullES on the quadratic, where
    every difference is ~ linear in a Gaussian eps, E[estimate] = (2/pi) * exact gradient."""
    task, lopt, theta, data = system
    sign = settings(communication="shared_randomness", exchange_quantization="sign")
    est = estimators.full_es(task, lopt, sign)  # whole episodes of N steps
    samples = run_estimator(est, theta, data, calls=1, repeats=24, pairs=512)
    exact = _flat(exact_meta_grad(task, lopt, theta, N, N))
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / np.sqrt(len(samples))
    assert np.all(se < 0.05 * np.abs(exact)), (se, exact)
    # the documented bias shows: the mean is 2/pi of the exact gradient, not the gradient
    assert np.all(np.abs(mean - 2 / np.pi * exact) < 4 * se + 0.02 * np.abs(exact)), (mean, exact)
    assert np.all(np.abs(mean - exact) > 8 * se), (mean, exact)


def test_payload_encoding_round_trip():
    """int8 and sign payloads decode to what they encode (no mesh)."""
    rng = np.random.default_rng(0)
    d = jnp.asarray(rng.normal(size=(12, 2)), jnp.float32).at[3, 1].set(0.0)
    f = jnp.asarray(rng.random((12, 2)) > 0.3)
    keys = jax.random.split(jax.random.PRNGKey(0), 12)
    ex = communication.Exchange("shared_randomness", "sign")
    dd, ff = communication.exchange(ex, d, f, keys)
    np.testing.assert_array_equal(np.asarray(ff), np.asarray(f))
    s = float(np.abs(d).sum() / (np.asarray(d) != 0).sum())
    np.testing.assert_allclose(np.asarray(dd), np.sign(np.asarray(d)) * s, rtol=1e-6)
    ex8 = communication.Exchange("shared_randomness", "int8")
    d8, f8 = communication.exchange(ex8, d, f, keys)
    np.testing.assert_array_equal(np.asarray(f8), np.asarray(f))
    assert np.abs(np.asarray(d8) - np.asarray(d)).max() < np.abs(d).max() / 127 + 1e-6


def test_bad_communication_config_refused():
    from meta_train import config as config_lib
    from meta_train import configs

    for field, value, extra in (
        ("communication", "gossip", {}),
        ("exchange_quantization", "int4", {"communication": "shared_randomness"}),
        ("exchange_quantization", "int8", {}),
        ("communication", "shared_randomness", {"estimator": "tbptt"}),
    ):
        c = configs.get("quickstart")
        c.update(extra)
        c[field] = value
        with pytest.raises(config_lib.ConfigError, match=f"config.{field}="):
            config_lib.validate(c)


SCRIPT = textwrap.dedent(
    r"""
    import sys, json, jax, numpy as np
    from meta_train import outer, spec
    from meta_train import config as config_lib
    from meta_train.hlo import collective_bytes
    from mt_toys import tiny_config
    assert len(jax.devices()) == 4, jax.devices()
    flat = lambda t: np.asarray(jax.flatten_util.ravel_pytree(t)[0])

    def cfg(mode, hidden=None):
        c = tiny_config(outer_steps=6, checkpoint_every=6, export_every=6, communication=mode)
        if hidden:
            c.lopt.config.lstm_hidden = hidden
        return c

    # quantised exchanges across 4 devices give the 1-device estimate of the same particles (the
    # unquantised one shows how far float rounding alone moves it)
    for quant in ("none", "int8", "sign"):
        grads = []
        for n in (1, 4):
            c = cfg("shared_randomness")
            c.exchange_quantization = quant
            mesh = outer.make_mesh(jax.devices()[:n])
            run, zoo = spec.from_config(c), config_lib.build_zoo(c)
            groups = outer.groups_for_step(outer.GroupCache(run, mesh), zoo, run, 0)
            st = outer.init_state(run, groups, mesh, outer.meta_optimizer(run.meta_opt))
            g, _, _ = groups[0].estimate(st.theta, st.particles[0], jax.random.key(5),
                                         groups[0].data)
            grads.append(flat(g))
        print("QUANT", quant, float(np.abs(grads[0] - grads[1]).max()),
              float(np.abs(grads[0]).max()))
    # bytes: each mode's collectives in one group's compiled estimator on 4 devices, two sizes
    mesh = outer.make_mesh(jax.devices()[:4])
    for mode in ("allreduce", "shared_randomness"):
        for hidden in (None, 64):
            c = cfg(mode, hidden)
            run, zoo = spec.from_config(c), config_lib.build_zoo(c)
            groups = outer.groups_for_step(outer.GroupCache(run, mesh), zoo, run, 0)
            st = outer.init_state(run, groups, mesh, outer.meta_optimizer(run.meta_opt))
            args = (st.theta, st.particles[0], jax.random.key(0), groups[0].data)
            hlo = groups[0].estimate.lower(*args).compile().as_text()
            theta_bytes = sum(x.nbytes for x in jax.tree.leaves(st.theta))
            print("BYTES", mode, theta_bytes, json.dumps(collective_bytes(hlo)))
    """
)


def test_four_devices_quantised_exchanges_and_bytes_independent_of_theta(tmp_path):
    """On 4 simulated devices (same theta as the all-reduce, and resume onto 2 devices:
    ``test_sharding.test_one_vs_four_devices``): the int8 and sign exchanges give the 1-device
    estimate of the same particles (up to what float rounding moves the unquantised exchange's),
    and the bytes communicated do not grow with theta."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        env=subprocess_env(4),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    quant_diff = {}
    for quant in ("none", "int8", "sign"):
        _, _, diff, size = [x for x in lines if x.startswith(f"QUANT {quant}")][-1].split()
        assert float(size) > 0, quant
        quant_diff[quant] = float(diff) / float(size)
    # 1 and 4 devices compile the unroll differently, so the losses can differ by an ulp, which
    # the estimate (a difference of nearly equal losses over sigma^2) magnifies: 3e-5 to 2e-4 of
    # its largest entry, depending on the particles. A quantised exchange must add nothing
    # beyond that: where a rounding difference straddles a quantisation step it moves one pair by
    # one step, which is about as large.
    bound = max(1e-4, 1.5 * quant_diff["none"])
    for quant in ("int8", "sign"):
        assert quant_diff[quant] <= bound, (quant, quant_diff)
    rows = [x.split(" ", 3)[1:] for x in lines if x.startswith("BYTES")]
    total = {(m, int(tb)): sum(json.loads(b).values()) for m, tb, b in rows}
    (small, large) = sorted({tb for _, tb in total})
    assert large > 2 * small
    # shared randomness: the same bytes whatever the size of theta ...
    assert total["shared_randomness", small] == total["shared_randomness", large] > 0
    # ... at least 100x below the all-reduce (which moves one theta-sized sum per group)
    assert total["allreduce", small] >= small
    assert total["allreduce", small] >= 100 * total["shared_randomness", small], total
    shared = json.loads([b for m, _, b in rows if m == "shared_randomness"][0])
    assert shared.get("all-gather", 0) >= 16 * 4  # the 4 pairs' (dpre, dpost, finite, ended)
