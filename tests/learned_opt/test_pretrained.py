"""The shipped pretrained learned optimizers: the recommended one loads with no name, the others
are archived; each loads by name with no network, exactly as it was first shipped (settings,
weights and updates), runs under jit and trains a held-out task on real data better than Adam at
its default rate; weights shared by two names are stored once; a shipped file whose checksum does
not match its metadata is refused."""

import base64
import dataclasses
import functools
import hashlib
import json
import pathlib
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

SHIPPED = learned_opt.RECOMMENDED
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
# shipped names whose weights are another shipped name's, with other settings
SHARED_WEIGHTS = {"scale_free_v3": "scale_free_v2", "scale_free_v7": "scale_free_v6"}


def test_recommended_loads_without_a_name():
    assert learned_opt.RECOMMENDED == "scale_free_v7"
    lopt, theta = learned_opt.load_meta_params()
    lopt7, theta7 = learned_opt.load_meta_params("scale_free_v7")
    assert lopt == lopt7 == learned_opt.ScaleFreeLOpt()
    jax.tree.map(np.testing.assert_array_equal, theta, theta7)
    assert learned_opt.load_description() == learned_opt.load_description("scale_free_v7")
    params = {"w": jnp.full((4, 3), 0.5), "b": jnp.zeros(3)}
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.1), params)
    outs = []
    for tx in (learned_opt.load(num_steps=10), learned_opt.load("scale_free_v7", num_steps=10)):
        state = tx.init(params)
        for _ in range(2):
            u, state = tx.update(grads, state, params, value=1.0)
        outs.append(u)
    jax.tree.map(np.testing.assert_array_equal, *outs)
    with pytest.raises(ValueError, match="num_steps"):
        learned_opt.load()  # the planned number of steps is required


def test_recommended_first_then_specialists_and_archived():
    names = learned_opt.pretrained_names()
    assert names[0] == learned_opt.RECOMMENDED
    archived = {f"scale_free_v{i}" for i in range(1, 7)} | {"hyper_small_v1", "hyper_small_v2"}
    assert set(learned_opt.archived_names()) == archived
    assert set(learned_opt.SPECIALISTS) == {"char_lm_specialist_v1"} <= set(names)
    assert sorted(names[1:]) == names[1:] == sorted(archived | set(learned_opt.SPECIALISTS))
    info = learned_opt.pretrained_info()
    assert [i.name for i in info] == names
    for i in info:
        assert i.archived == (i.name in archived), i
        assert i.family == learned_opt.SPECIALISTS.get(i.name, ""), i
        assert i.description and "\n" not in i.description, i
        if i.archived:
            assert i.description.startswith(f"archived: use {learned_opt.RECOMMENDED}"), i
        else:
            assert "archived" not in i.description, i
        if i.family:
            assert i.description.startswith(f"specialist for {i.family}; elsewhere use "), i


def test_load_docstring_says_what_to_load_and_what_num_steps_means():
    doc = learned_opt.load.__doc__
    for words in (
        "RECOMMENDED",
        "scale_free_v7",
        "planned number of training steps",
        "warmup + cosine",
        "stops moving",
        "hyper_small_",
        "1,000",
        "apply_if_finite",
        "Args:",
        "Returns:",
    ):
        assert words in doc, words


def test_loading_an_archived_name_is_quiet(caplog, recwarn):
    with caplog.at_level("INFO"):
        learned_opt.load("scale_free_v1", num_steps=10)
    assert not caplog.records and not recwarn.list
    assert learned_opt.load_description("scale_free_v1")["metadata"]["summary"]


# What each shipped optimizer loaded as when it was first shipped (written by _record below, from
# the files as they were then): every setting, sha256 of every theta leaf, and its first three
# updates of a small tree (base64 float32) with num_steps=20.
REFERENCE = json.loads((pathlib.Path(__file__).parent / "shipped_reference.json").read_text())


def _reference_tree():
    """A matrix of fan-in 80 (past mixing_fan_cap=64), a vector, a conv kernel, a zero-initialised
    readout (zero_init) and a scalar."""
    rng = np.random.default_rng(0)
    f = lambda scale, *s: (scale * rng.normal(size=s)).astype(np.float32)  # noqa: E731
    return {
        "a_in": f(2.0 / np.sqrt(80), 80, 3),
        "b": f(0.1, 3),
        "conv": f(0.5, 2, 2, 2, 3),
        "out": np.zeros((3, 4), np.float32),
        "s": f(1.0),
    }


def _reference_grads(i):
    rng = np.random.default_rng(100 + i)
    return {
        k: (10.0 ** (i % 3 - 1) * rng.normal(size=np.shape(v))).astype(np.float32)
        for k, v in _reference_tree().items()
    }


def _record(name):
    """``REFERENCE[name]``'s fields as ``name`` loads now (settings as ``to_config`` gives them)."""
    lopt, theta = learned_opt.load_meta_params(name)
    leaves = jax.tree_util.tree_flatten_with_path(theta)[0]
    digest = lambda x: hashlib.sha256(np.ascontiguousarray(np.asarray(x)).tobytes()).hexdigest()  # noqa: E731
    tx = lopt.optimizer(theta, num_steps=20)
    params = _reference_tree()
    state = tx.init(params)
    step = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v))
    updates = []
    for i in range(3):
        u, state = step(_reference_grads(i), state, params, jnp.float32(1.0 / (i + 1)))
        updates.append({k: np.asarray(v, np.float32) for k, v in u.items()})
        params = jax.tree.map(lambda p, d: np.asarray(p + d, np.float32), params, u)
    return {
        "architecture": lopt.name,
        "settings": lopt.to_config(),
        "theta": {
            jax.tree_util.keystr(p): {
                "shape": list(np.shape(x)),
                "dtype": str(np.asarray(x).dtype),
                "sha256": digest(x),
            }
            for p, x in leaves
        },
        "updates": updates,
    }


def test_reference_covers_every_shipped_name():
    assert sorted(REFERENCE) == sorted(learned_opt.pretrained_names())


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_loads_as_first_shipped(name):
    """Settings, theta (bit for bit) and updates as recorded. A setting recorded then and absent
    now is one of ExperimentalScaleFreeLOpt's options, recorded at its off value."""
    ref, now = REFERENCE[name], _record(name)
    assert now["architecture"] == ref["architecture"]
    assert now["theta"] == ref["theta"]
    gone = {k: v for k, v in ref["settings"].items() if k not in now["settings"]}
    assert {k: ref["settings"][k] for k in now["settings"]} == now["settings"]
    assert {k: v for k, v in ref["to_config"].items() if k not in gone} == {
        k: now["settings"][k] for k in ref["to_config"] if k not in gone
    }
    off = learned_opt.ExperimentalScaleFreeLOpt().to_config()
    assert gone == {k: off[k] for k in gone}
    assert not gone or ref["architecture"] == "scale_free"
    for i, (want, got) in enumerate(zip(ref["updates"], now["updates"], strict=True)):
        assert sorted(want) == sorted(got)
        for k, u in got.items():
            u_ref = np.frombuffer(base64.b64decode(want[k]), np.float32).reshape(u.shape)
            # bit-identical on the machine that recorded it; XLA's kernels may round otherwise
            scale = float(np.abs(u_ref).max())
            np.testing.assert_allclose(u, u_ref, rtol=2e-5, atol=2e-6 * scale, err_msg=f"{i} {k}")


def test_shared_weights_are_stored_once():
    """A shipped name whose weights are another's holds no theta file of its own: its lopt.json
    names the other (theta_from) and the checksum, and every shipped theta file is distinct."""
    root = storage.PRETRAINED_DIR
    for name, source in SHARED_WEIGHTS.items():
        desc = learned_opt.load_description(name)
        assert desc["theta_from"] == source and "theta_file" not in desc
        assert not (root / name / "theta.msgpack").exists()
        assert storage.theta_path(name) == (root / source / "theta.msgpack").resolve()
        assert desc["theta_sha256"] == learned_opt.load_description(source)["theta_sha256"]
    files = sorted(root.glob("*/theta.msgpack"))
    assert len(files) == len(learned_opt.pretrained_names()) - len(SHARED_WEIGHTS)
    digests = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    assert len(set(digests)) == len(digests)
    v6, v7 = (learned_opt.load_meta_params(n)[0] for n in ("scale_free_v6", "scale_free_v7"))
    assert dataclasses.replace(v6, mixing_fan_cap=64.0) == v7


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
    orig, fake = storage.PRETRAINED_DIR, tmp_path / "pretrained"
    source = SHARED_WEIGHTS[SHIPPED]
    for name in (SHIPPED, source):
        shutil.copytree(orig / name, fake / name)
    theta_file = fake / source / "theta.msgpack"
    raw = bytearray(theta_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    theta_file.write_bytes(bytes(raw))
    monkeypatch.setattr(storage, "PRETRAINED_DIR", fake)
    for name in (SHIPPED, source, None):  # the shared file is checked for each name using it
        with pytest.raises(learned_opt.LoadError, match="checksum|sha256|SHA-256"):
            learned_opt.load(name, num_steps=10)
    # and the description pointing at another file's hash is refused the same way
    shutil.copytree(orig / source, fake / "other")
    desc_file = fake / "other" / "lopt.json"
    desc = json.loads(desc_file.read_text())
    desc["theta_sha256"] = "0" * 64
    desc_file.write_text(json.dumps(desc))
    with pytest.raises(learned_opt.LoadError, match="checksum|sha256|SHA-256"):
        learned_opt.load("other", num_steps=10)


def test_theta_from_is_read_only_between_shipped_names(tmp_path, monkeypatch):
    """``theta_from`` in a saved directory, naming a missing name, itself, or a name that has no
    theta file of its own, or beside ``theta_file``: a LoadError naming the field."""
    saved = tmp_path / "saved"
    shutil.copytree(storage.PRETRAINED_DIR / SHIPPED, saved)
    with pytest.raises(learned_opt.LoadError, match=rf"{saved / 'lopt.json'}.*'theta_from'"):
        learned_opt.load_meta_params(saved)
    fake = tmp_path / "pretrained"
    source = SHARED_WEIGHTS[SHIPPED]
    for name in (SHIPPED, source):
        shutil.copytree(storage.PRETRAINED_DIR / name, fake / name)
    monkeypatch.setattr(storage, "PRETRAINED_DIR", fake)
    learned_opt.load_meta_params(SHIPPED)  # the copy resolves inside the fake directory
    desc_file = fake / SHIPPED / "lopt.json"
    good = json.loads(desc_file.read_text())
    shutil.copytree(fake / SHIPPED, fake / "chained")
    chained = dict(good, theta_from=SHIPPED)
    (fake / "chained" / "lopt.json").write_text(json.dumps(chained))
    with pytest.raises(learned_opt.LoadError, match="no theta file of its own"):
        learned_opt.load_meta_params("chained")
    for bad, match in [
        (dict(good, theta_from="nosuch"), "'theta_from' is 'nosuch'"),
        (dict(good, theta_from=SHIPPED), "'theta_from' is"),
        (dict(good, theta_from=["x"]), "'theta_from' is"),
        (dict(good, theta_file="theta.msgpack"), "both 'theta_from' and 'theta_file'"),
    ]:
        desc_file.write_text(json.dumps(bad))
        with pytest.raises(learned_opt.LoadError, match=match):
            learned_opt.load_meta_params(SHIPPED)


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


def test_char_lm_specialist_beats_its_initial_rule_and_adamw_on_an_unseen_size():
    """The char-transformer specialist, untuned, on a char transformer of a size its zoo never
    sampled (sequence 48, width 24, depth 3; real tiny_shakespeare), 300 steps, 2 seeds, same
    inits and minibatches: a lower final training loss than its initial rule (``muon_rel_mup`` at
    0.02, what its theta started as) and than AdamW + cosine at its best of 3 rates."""
    from eval.baselines import BASELINES

    task = tasks.CharLMTask(seq_len=48, width=24, depth=3, batch_size=16, default_steps=300)
    data = jax.device_put(task.load_data())
    steps = 300
    run = jax.jit(lambda key, tx: _train(tx, task, data, steps, key)[-30:].mean(), static_argnums=1)

    def final(tx):
        return float(np.mean([run(jax.random.key(seed), tx) for seed in (0, 1)]))

    name = "char_lm_specialist_v1"
    specialist = final(learned_opt.load(name, num_steps=steps, param_tags=task.param_tags()))
    rule = final(BASELINES["muon_rel_mup"].make(0.02, steps))
    adamw = {lr: final(BASELINES["adamw_cos"].make(lr, steps)) for lr in (3e-2, 1e-1, 3e-1)}
    assert min(adamw, key=adamw.get) == 1e-1, adamw  # the grid brackets AdamW's best rate
    assert specialist < rule and specialist < min(adamw.values()), (specialist, rule, adamw)
