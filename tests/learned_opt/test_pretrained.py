"""The shipped pretrained learned optimizer: it loads by name with no network, runs under jit,
trains a held-out task on real data better than Adam at its default rate, and a shipped file
whose checksum does not match its metadata is refused."""

import functools
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import learned_opt
import tasks
from learned_opt import storage
from tasks.training import train

# every test here trains or compares with optax's Adam
pytestmark = pytest.mark.standard_promotion

SHIPPED = "scale_free_v7"  # the newest one
# scale_free_v3 is scale_free_v2 but for zero-initialised matrices: tested below, not twice here
TRAINED = (
    "hyper_small_v1",
    "hyper_small_v2",
    "scale_free_v1",
    "scale_free_v2",
    "scale_free_v4",
    "scale_free_v5",
    "scale_free_v6",
    "scale_free_v7",
)
ALL_SHIPPED = (*TRAINED, "scale_free_v3")
RECIPES = {"hyper": "hyper_small", "scale_free": "scale_free"}


@pytest.mark.parametrize("name", ALL_SHIPPED)
def test_listed_and_reproducible_metadata(name):
    assert name in learned_opt.pretrained_names()
    desc = learned_opt.load_description(name)
    meta = desc["metadata"]
    arch = desc["architecture"]
    assert "lopt-meta-train" in meta["command"] and RECIPES[arch] in meta["command"]
    assert meta["config"]["lopt"]["architecture"] == arch
    assert meta["seed"] == meta["config"]["seed"] and meta["code_version"]
    # the weights are the run's export at ``outer_step`` (the final one, or an earlier export)
    cfg = meta["config"]
    assert meta["outer_step"] == cfg["outer_steps"] or (
        meta["outer_step"] < cfg["outer_steps"] and meta["outer_step"] % cfg["export_every"] == 0
    )
    assert f"--config.outer_steps={cfg['outer_steps']}" in meta["command"] or (
        "--config.outer_steps" not in meta["command"]
    )


def _train(tx, task, data, steps, key):
    """Minibatch losses [steps] of ``tx`` from the task's init at fold_in(key, 0)."""
    params = task.init(jax.random.fold_in(key, 0))
    keys = jax.random.split(jax.random.fold_in(key, 1), steps)
    return train(task, tx, params, data, keys)[1]


# the other scale-free ones are checked against Adam 1e-3 and tuned constant Adam below
@pytest.mark.parametrize("name", [n for n in TRAINED if not n.startswith("scale_free")] + [SHIPPED])
def test_trains_a_heldout_task_better_than_default_adam(name):
    """Fashion-MNIST 8x8, a 3-layer GELU MLP (held out: no zoo has GELU or this dataset/depth),
    300 steps on the real data from TFDS_DATA_DIR, 2 seeds, same inits and minibatches; the
    second seed reuses the compiled program (no retracing)."""
    task = tasks.get("mlp_fmnist8_w48_d3_gelu")
    data = jax.device_put(task.load_data())
    steps = 300
    tx = learned_opt.load(name, num_steps=steps)
    run = jax.jit(lambda key, _tx=tx: _train(_tx, task, data, steps, key))
    run_adam = jax.jit(lambda key: _train(optax.adam(1e-3), task, data, steps, key))
    finals_lo, finals_adam = [], []
    for seed in range(2):
        key = jax.random.key(seed)
        lo, adam = run(key), run_adam(key)
        assert bool(jnp.all(jnp.isfinite(lo)))
        finals_lo.append(float(lo[-30:].mean()))
        finals_adam.append(float(adam[-30:].mean()))
    assert run._cache_size() == 1  # the second seed reused the compiled program
    assert np.mean(finals_lo) < np.mean(finals_adam), (finals_lo, finals_adam)


def test_shipped_file_with_wrong_checksum_is_refused(tmp_path, monkeypatch):
    orig, fake = storage.PRETRAINED_DIR / SHIPPED, tmp_path / "pretrained"
    shutil.copytree(orig, fake / SHIPPED)
    theta_file = fake / SHIPPED / "theta.msgpack"
    raw = bytearray(theta_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    theta_file.write_bytes(bytes(raw))
    monkeypatch.setattr(storage, "PRETRAINED_DIR", fake)
    with pytest.raises(learned_opt.LoadError, match="checksum|sha256|SHA-256"):
        learned_opt.load(SHIPPED)
    # and the description pointing at another file's hash is refused the same way
    shutil.copytree(orig, fake / "other")
    desc_file = fake / "other" / "lopt.json"
    desc = json.loads(desc_file.read_text())
    desc["theta_sha256"] = "0" * 64
    desc_file.write_text(json.dumps(desc))
    with pytest.raises(learned_opt.LoadError, match="checksum|sha256|SHA-256"):
        learned_opt.load("other")


_HELDOUT_STEPS = 300


@functools.cache
def _heldout_final_loss():
    """(tx -> mean over 2 seeds of the last 30 training losses) on the held-out Fashion-MNIST
    3-layer GELU MLP (real data), 300 steps; one compiled program per transform."""
    task = tasks.get("mlp_fmnist8_w48_d3_gelu")
    data = jax.device_put(task.load_data())
    run = jax.jit(lambda key, tx: _train(tx, task, data, _HELDOUT_STEPS, key), static_argnums=1)
    return lambda tx: np.mean([float(run(jax.random.key(s), tx)[-30:].mean()) for s in (0, 1)])


@functools.cache
def _tuned_constant_adam() -> dict:
    final = _heldout_final_loss()
    return {lr: final(optax.adam(lr)) for lr in (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)}


@pytest.mark.parametrize("name", [n for n in TRAINED if n.startswith("scale_free")])
def test_scale_free_beats_tuned_constant_adam_on_a_heldout_task(name):
    """The scale-free optimizers, untuned, against Adam at 1e-3 and Adam tuned over 5 constant
    rates (computed once for both), on the held-out Fashion-MNIST 3-layer GELU MLP."""
    learned = _heldout_final_loss()(learned_opt.load(name, num_steps=_HELDOUT_STEPS))
    adams = _tuned_constant_adam()
    best = min(adams, key=adams.get)
    assert 3e-4 < best < 3e-2, adams  # the grid brackets Adam's best rate
    assert learned < adams[1e-3] and learned < adams[best], (learned, adams)


def test_v3_is_v2_without_zero_init_matrices_and_faster_on_a_mup_readout():
    """scale_free_v3 = v2's weights with zero_init='fan_in': update for update v2 on a tensor tree
    without zero-initialised matrices; on a muP MLP (zero-initialised readout times 1/fan_in; real
    MNIST, 200 steps) its larger readout steps reach a lower training loss than v2's."""
    plain = tasks.get("mlp_fmnist8_w48_d3_gelu")
    params = plain.init(jax.random.key(0))
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.01), params)
    v2, v3 = (learned_opt.load(n, num_steps=100) for n in ("scale_free_v2", "scale_free_v3"))
    first = jax.jit(
        lambda tx: tx.update(grads, tx.init(params), params, value=1.0)[0], static_argnums=0
    )
    for a, b in zip(jax.tree.leaves(first(v2)), jax.tree.leaves(first(v3)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    mup = tasks.get("mlp_mnist8_w128_mup")
    data = jax.device_put(mup.load_data())
    steps = 200
    run = jax.jit(lambda tx: _train(tx, mup, data, steps, jax.random.key(0)), static_argnums=0)
    final = {
        n: float(run(learned_opt.load(n, num_steps=steps))[-20:].mean())
        for n in ("scale_free_v2", "scale_free_v3")
    }
    assert final["scale_free_v3"] < 0.8 * final["scale_free_v2"], final
