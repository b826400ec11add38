"""save / load: bit-exact round trips, shipped names, and an error for every kind of bad file."""

import hashlib
import json
import os
import pathlib
import re
import shutil
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import learned_opt
from learned_opt import storage

KEY = jax.random.key(3)
LOPTS = [
    learned_opt.MLPLOpt(hidden_sizes=(16, 8), mup=True, adafactor=False),
    learned_opt.HyperLOpt(lstm_hidden=8, momentum_decays=(0.9,)),
]


@pytest.fixture
def saved(tmp_path, key):
    lopt = learned_opt.MLPLOpt(hidden_sizes=(8,))
    theta = lopt.init_meta_params(key)
    path = tmp_path / "opt"
    learned_opt.save(path, lopt, theta, metadata={"steps": 5})
    return path, lopt, theta


def _rewrite_json(path, **changes):
    desc = json.loads((path / "lopt.json").read_text())
    desc.update(changes)
    (path / "lopt.json").write_text(json.dumps(desc))


@pytest.mark.parametrize("lopt", LOPTS, ids=["mlp", "hyper"])
def test_round_trip_is_bit_exact(tmp_path, lopt):
    theta = jax.tree.map(
        lambda x: x + 1e-7 * jnp.arange(x.size, dtype=x.dtype).reshape(x.shape),
        lopt.init_meta_params(KEY),
    )
    meta = {"trained_on": ["mlp", "conv"], "steps": 1000, "nested": {"a": 1.5}}
    out = learned_opt.save(tmp_path / "o", lopt, theta, metadata=meta)
    lopt2, theta2 = learned_opt.load_meta_params(out)
    assert lopt2 == lopt and type(lopt2) is type(lopt)
    assert jax.tree.structure(theta2) == jax.tree.structure(theta)
    for a, b in zip(jax.tree.leaves(theta), jax.tree.leaves(theta2), strict=True):
        assert a.dtype == b.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))
    desc = learned_opt.load_description(out)
    assert desc["metadata"] == meta and desc["format_version"] == 1
    assert desc["architecture"] == lopt.name
    assert (
        desc["theta_sha256"]
        == hashlib.sha256((tmp_path / "o/theta.msgpack").read_bytes()).hexdigest()
    )
    assert learned_opt.from_config(desc) == lopt
    # The loaded transform computes the same update.
    params = {"w": jnp.ones((3, 2)), "b": jnp.full((2,), 0.5)}
    grads = jax.tree.map(lambda x: 0.3 * x, params)
    tx1, tx2 = lopt.optimizer(theta), learned_opt.load(out)
    u1, _ = jax.jit(lambda g, s, p: tx1.update(g, s, p, value=1.0))(grads, tx1.init(params), params)
    u2, _ = jax.jit(lambda g, s, p: tx2.update(g, s, p, value=1.0))(grads, tx2.init(params), params)
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
        np.testing.assert_array_equal(a, b)


def test_overwrite_is_atomic_and_leaves_no_temporaries(saved):
    path, lopt, theta = saved
    theta2 = jax.tree.map(lambda x: x + 1.0, theta)
    learned_opt.save(path, lopt, theta2)
    _, loaded = learned_opt.load_meta_params(path)
    np.testing.assert_array_equal(loaded["skip"]["w"], theta2["skip"]["w"])
    assert sorted(os.listdir(path.parent)) == ["opt"]
    assert sorted(os.listdir(path)) == ["lopt.json", "theta.msgpack"]


def test_shipped_names(tmp_path, monkeypatch):
    lopt = learned_opt.HyperLOpt(lstm_hidden=4)
    theta = lopt.init_meta_params(KEY)
    monkeypatch.setattr(storage, "PRETRAINED_DIR", tmp_path)
    learned_opt.save(tmp_path / "tiny-hyper", lopt, theta)
    (tmp_path / "not-an-optimizer").mkdir()
    assert learned_opt.pretrained_names() == ["tiny-hyper"]
    lopt2, _ = learned_opt.load_meta_params("tiny-hyper")
    assert lopt2 == lopt
    with pytest.raises(FileNotFoundError, match=r"no-such-name.*shipped: \['tiny-hyper'\]"):
        learned_opt.load("no-such-name")


def test_real_pretrained_dir_is_listable():
    names = learned_opt.pretrained_names()
    assert "hyper_small_v2" in names  # the one the hyper_broad config fine-tunes
    for name in names:  # whatever the lead ships must load, as its architecture's theta
        lopt, theta = learned_opt.load_meta_params(name)
        assert jax.tree.structure(theta) == jax.tree.structure(lopt.init_meta_params(KEY)), name
        assert all(np.isfinite(x).all() for x in jax.tree.leaves(theta)), name


def test_msgpack_format_is_flax_format(tmp_path):
    """learned_opt.serialization writes flax's bytes and reads what flax wrote, without flax."""
    from flax import serialization as flax_ser

    from learned_opt import serialization as ser

    for name in learned_opt.pretrained_names():  # the shipped files were written by flax
        data = storage.theta_path(name).read_bytes()
        ours, theirs = ser.msgpack_restore(data), flax_ser.msgpack_restore(data)
        assert jax.tree.structure(ours) == jax.tree.structure(theirs), name
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape, name
            np.testing.assert_array_equal(a, b)
        assert ser.msgpack_serialize(ours) == data, name
    tree = {
        "a": [np.arange(6, dtype=np.float32).reshape(2, 3), jnp.arange(4, dtype=jnp.bfloat16)],
        "b": (np.float32(3.5), 1, 2.5, complex(1, 2)),
        "c": {"d": np.zeros((0,), np.int8)},
    }
    data = ser.msgpack_serialize(ser.to_state_dict(tree))
    assert data == flax_ser.msgpack_serialize(flax_ser.to_state_dict(tree))
    back = ser.from_state_dict(tree, ser.msgpack_restore(data))
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(tree), strict=True):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_large_arrays_are_chunked_as_flax_chunks_them(monkeypatch):
    from flax import serialization as flax_ser

    from learned_opt import serialization as ser

    monkeypatch.setattr(ser, "MAX_CHUNK_SIZE", 16)
    monkeypatch.setattr(flax_ser, "MAX_CHUNK_SIZE", 16)
    state = {"w": np.arange(37, dtype=np.float32).reshape(37, 1)}
    data = ser.msgpack_serialize(state)
    assert data == flax_ser.msgpack_serialize(state)
    np.testing.assert_array_equal(ser.msgpack_restore(data)["w"], state["w"])


def test_missing_files(saved):
    path, _, _ = saved
    (path / "theta.msgpack").unlink()
    with pytest.raises(FileNotFoundError, match=r"theta\.msgpack.*missing"):
        learned_opt.load(path)
    (path / "lopt.json").unlink()
    with pytest.raises(FileNotFoundError, match="opt"):
        learned_opt.load(path)


def test_corrupt_json(saved):
    path, _, _ = saved
    text = (path / "lopt.json").read_text()
    (path / "lopt.json").write_text(text[: len(text) // 2])
    with pytest.raises(learned_opt.LoadError, match=r"lopt\.json.*not valid JSON"):
        learned_opt.load(path)


def test_truncated_theta_fails_checksum(saved):
    path, _, _ = saved
    data = (path / "theta.msgpack").read_bytes()
    (path / "theta.msgpack").write_bytes(data[:-100])
    with pytest.raises(learned_opt.LoadError, match=r"theta\.msgpack.*checksum mismatch"):
        learned_opt.load(path)


def test_flipped_byte_fails_checksum(saved):
    path, _, _ = saved
    data = bytearray((path / "theta.msgpack").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "theta.msgpack").write_bytes(bytes(data))
    with pytest.raises(learned_opt.LoadError, match="checksum mismatch"):
        learned_opt.load(path)


def test_truncated_theta_with_matching_checksum_fails_decoding(saved):
    path, _, _ = saved
    data = (path / "theta.msgpack").read_bytes()[:50]
    (path / "theta.msgpack").write_bytes(data)
    _rewrite_json(path, theta_sha256=hashlib.sha256(data).hexdigest())
    with pytest.raises(learned_opt.LoadError, match=r"theta\.msgpack.*(decode|shape|fit)"):
        learned_opt.load(path)


def test_unknown_architecture(saved):
    path, _, _ = saved
    _rewrite_json(path, architecture="transformer")
    with pytest.raises(
        learned_opt.LoadError, match=r"lopt\.json.*unknown architecture 'transformer'"
    ):
        learned_opt.load(path)


def test_newer_format_version(saved):
    path, _, _ = saved
    _rewrite_json(path, format_version=2)
    with pytest.raises(learned_opt.LoadError, match=r"lopt\.json.*format_version 2 is newer"):
        learned_opt.load(path)


def test_theta_shapes_that_do_not_fit(saved):
    path, lopt, _ = saved
    config = dict(lopt.to_config(), hidden_sizes=[12])
    _rewrite_json(path, config=config)
    with pytest.raises(learned_opt.LoadError, match=r"theta\.msgpack.*layer_0/[wb].*shape"):
        learned_opt.load(path)


def test_bad_config_setting(saved):
    path, lopt, _ = saved
    _rewrite_json(path, config=dict(lopt.to_config(), width=3))
    with pytest.raises(learned_opt.LoadError, match=r"lopt\.json.*width"):
        learned_opt.load(path)


def test_save_rejects_bad_input(tmp_path):
    lopt = learned_opt.MLPLOpt(hidden_sizes=(8,))
    theta = lopt.init_meta_params(KEY)
    bad = dict(theta, skip={"w": jnp.zeros((3, 2))})
    with pytest.raises(ValueError, match="skip/w.*shape"):
        learned_opt.save(tmp_path / "x", lopt, bad)
    with pytest.raises(TypeError, match="metadata"):
        learned_opt.save(tmp_path / "x", lopt, theta, metadata={"f": object()})
    assert not (tmp_path / "x").exists()
    assert os.listdir(tmp_path) == []


def test_from_config_errors():
    with pytest.raises(ValueError, match="unknown architecture 'lstm'"):
        learned_opt.from_config({"architecture": "lstm", "config": {}})
    with pytest.raises(ValueError, match="architecture"):
        learned_opt.from_config({"config": {}})
    lopt = learned_opt.from_config({"architecture": "mlp", "config": {"hidden_sizes": [4, 4]}})
    assert lopt == learned_opt.MLPLOpt(hidden_sizes=(4, 4))
    json.dumps(lopt.to_config())


# ---------------------------------------------------------------- nothing silently wrong
def test_save_refuses_non_finite_theta(tmp_path):
    lopt = learned_opt.MLPLOpt(hidden_sizes=(8,))
    theta = lopt.init_meta_params(KEY)
    bad = dict(theta, skip={"w": theta["skip"]["w"].at[0, 0].set(jnp.nan)})
    with pytest.raises(ValueError, match=r"skip.*w.*non-finite"):
        learned_opt.save(tmp_path / "x", lopt, bad)
    assert not (tmp_path / "x").exists()


def test_load_refuses_non_finite_theta(saved):
    path, lopt, theta = saved
    from flax import serialization

    state = serialization.to_state_dict(jax.tree.map(np.asarray, theta))
    state["skip"]["w"] = np.full_like(state["skip"]["w"], np.inf)
    data = serialization.msgpack_serialize(state)
    (path / "theta.msgpack").write_bytes(data)
    _rewrite_json(path, theta_sha256=hashlib.sha256(data).hexdigest())
    with pytest.raises(learned_opt.LoadError, match=r"theta\.msgpack.*skip.*non-finite"):
        learned_opt.load(path)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"theta_sha256": None}, "theta_sha256"),
        ({"format_version": 0}, "format_version"),
        ({"format_version": -1}, "format_version"),
        ({"format_version": True}, "format_version"),
        ({"format_version": "1"}, "format_version"),
        ({"architecture": ["mlp"]}, "architecture"),
        ({"theta_file": 123}, "theta_file"),
        ({"theta_file": "../outside.msgpack"}, "theta_file"),
        ({"theta_file": "/etc/passwd"}, "theta_file"),
        ({"config": [1, 2]}, "config"),
    ],
)
def test_malformed_field_is_a_load_error_naming_it(saved, changes, field):
    path, _, _ = saved
    desc = json.loads((path / "lopt.json").read_text())
    desc.update(changes)
    if changes.get("theta_sha256", 0) is None:
        del desc["theta_sha256"]
    (path / "lopt.json").write_text(json.dumps(desc))
    with pytest.raises(learned_opt.LoadError, match=rf"lopt\.json.*{field}"):
        learned_opt.load(path)


@pytest.mark.parametrize("value", ["abc", -1, 0, 2.5, True, None, [8]])
def test_bad_architecture_setting_is_a_load_error(tmp_path, value):
    lopt = learned_opt.HyperLOpt(lstm_hidden=4)
    path = tmp_path / "h"
    learned_opt.save(path, lopt, lopt.init_meta_params(KEY))
    _rewrite_json(path, config=dict(lopt.to_config(), lstm_hidden=value))
    with pytest.raises(learned_opt.LoadError, match=r"lopt\.json.*lstm_hidden"):
        learned_opt.load(path)


def test_missing_and_empty_directories_are_load_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    for p in (tmp_path / "nothing-here", tmp_path / "empty"):
        with pytest.raises(learned_opt.LoadError, match=str(p)):
            learned_opt.load(p)
        with pytest.raises(FileNotFoundError):  # still a FileNotFoundError for old callers
            learned_opt.load(p)


# ---------------------------------------------------------------- a missing or out-of-range config
SMALL = {
    "mlp": learned_opt.MLPLOpt(hidden_sizes=(8,)),
    "hyper": learned_opt.HyperLOpt(lstm_hidden=4),
    "scale_free": learned_opt.ScaleFreeLOpt(hidden=4),
    "scale_free_experimental": learned_opt.ExperimentalScaleFreeLOpt(hidden=4, agreement_gate=0.1),
}


@pytest.fixture(scope="module")
def saved_small(tmp_path_factory):
    """One small saved optimizer per architecture (copy before changing it)."""
    root = tmp_path_factory.mktemp("small")
    return {
        k: learned_opt.save(root / k, lopt, lopt.init_meta_params(KEY)) for k, lopt in SMALL.items()
    }


@pytest.mark.parametrize("arch", sorted(SMALL))
@pytest.mark.parametrize("config", ["missing", None])
def test_missing_config_is_a_load_error(saved_small, tmp_path, arch, config):
    path = tmp_path / arch
    shutil.copytree(saved_small[arch], path)
    desc = json.loads((path / "lopt.json").read_text())
    if config == "missing":
        del desc["config"]
    else:
        desc["config"] = config
    (path / "lopt.json").write_text(json.dumps(desc))
    with pytest.raises(learned_opt.LoadError, match=rf"{path / 'lopt.json'}.*'config'"):
        learned_opt.load(path, num_steps=10)
    with pytest.raises(ValueError, match="config"):
        learned_opt.from_config(desc)


OUT_OF_RANGE = [
    ("hyper", "rms_decay", -1.0, "-1.0"),
    ("hyper", "rms_decay", 1.0, "1.0"),
    ("hyper", "momentum_decays", [0.9, 1.5], "1.5"),
    ("hyper", "loss_decays", [0.9, -0.1], "-0.1"),
    ("hyper", "timescales", [10, 0], "0"),
    ("hyper", "default_num_steps", 0, "0"),
    ("hyper", "step_init", 0.0, "0.0"),
    ("hyper", "step_init", -1e-3, "-0.001"),
    ("hyper", "eps", -1.0, "-1.0"),
    ("hyper", "eps", 0.0, "0.0"),
    ("hyper", "generator_init_scale", -1.0, "-1.0"),
    ("hyper", "mlp_hidden", 1, "1"),
    ("mlp", "rms_decay", 1.5, "1.5"),
    ("mlp", "adafactor_decay", -0.5, "-0.5"),
    ("mlp", "momentum_decays", [-0.1, 0.9], "-0.1"),
    ("mlp", "hidden_sizes", [8, 0], "0"),
    ("mlp", "timescales", [-1, 10], "-1"),
    ("mlp", "exp_mult", 0.0, "0.0"),
    ("mlp", "step_mult", -1e-3, "-0.001"),
    ("mlp", "output_init_scale", -1.0, "-1.0"),
    ("scale_free", "muon_beta", 1.0, "1.0"),
    ("scale_free", "adam_b1", -0.1, "-0.1"),
    ("scale_free", "adam_b2", 1.2, "1.2"),
    ("scale_free", "eps", 0.0, "0.0"),
    ("scale_free", "ns_steps", 0, "0"),
    ("scale_free", "ratio_decay", 2.0, "2.0"),
    ("scale_free", "loss_decays", [1.0, 0.99], "1.0"),
    ("scale_free", "timescales", [0, 10], "0"),
    ("scale_free", "init_scale", -1.0, "-1.0"),
    ("scale_free", "learning_rate", -0.02, "-0.02"),
    ("scale_free", "mixing_fan_cap", -1.0, "-1.0"),
    ("scale_free_experimental", "size_caps", [256.0, 0.5], "0.5"),
    ("scale_free_experimental", "agreement_threshold", 1.0, "1.0"),
]


@pytest.mark.parametrize(("arch", "field", "value", "shown"), OUT_OF_RANGE)
def test_out_of_range_setting_is_a_load_error(saved_small, tmp_path, arch, field, value, shown):
    path = tmp_path / arch
    shutil.copytree(saved_small[arch], path)
    desc = json.loads((path / "lopt.json").read_text())
    desc["config"][field] = value
    (path / "lopt.json").write_text(json.dumps(desc))
    pattern = rf"{path / 'lopt.json'}.*{field}.*{re.escape(shown)}"
    with pytest.raises(learned_opt.LoadError, match=pattern):
        learned_opt.load(path, num_steps=10)


@pytest.mark.parametrize(("arch", "field", "value", "shown"), OUT_OF_RANGE)
def test_out_of_range_setting_is_refused_at_construction(arch, field, value, shown):
    cls = type(SMALL[arch])
    with pytest.raises(ValueError, match=rf"{field}.*{re.escape(shown)}"):
        cls(**{field: value})


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (learned_opt.ScaleFreeLOpt, "learning_rate", float("inf")),
        (learned_opt.ScaleFreeLOpt, "rms_floor", float("nan")),
        (learned_opt.HyperLOpt, "rms_decay", float("nan")),
        (learned_opt.HyperLOpt, "lstm_hidden", 2.5),
        (learned_opt.HyperLOpt, "default_num_steps", True),
        (learned_opt.MLPLOpt, "step_mult", float("inf")),
        (learned_opt.MLPLOpt, "hidden_sizes", (8, 2.5)),
    ],
)
def test_non_finite_or_non_integer_setting_is_refused_at_construction(cls, field, value):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: {field}"):
        cls(**{field: value})


def test_every_shipped_optimizer_still_loads():
    names = learned_opt.pretrained_names()
    assert len(names) >= 9
    for name in names:
        lopt, _ = learned_opt.load_meta_params(name)
        assert type(lopt)(**lopt.to_config()) == lopt, name
        # every setting is stated: the defaults never decide what a shipped optimizer is
        assert learned_opt.load_description(name)["config"] == lopt.to_config(), name
        learned_opt.load(name, num_steps=100)


def test_experimental_options_are_not_settings_of_scale_free():
    """Options no shipped weights use belong to ``scale_free_experimental``; ``scale_free`` names
    them as unknown settings."""
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['size_free'\]"):
        learned_opt.from_config({"architecture": "scale_free", "config": {"size_free": True}})
    lopt = learned_opt.from_config(
        {"architecture": "scale_free_experimental", "config": {"size_free": True}}
    )
    assert lopt == learned_opt.ExperimentalScaleFreeLOpt(size_free=True)
    assert learned_opt.ARCHITECTURES["scale_free_experimental"] is type(lopt)


# ---------------------------------------------------------------- unreadable weights
def test_theta_symlink_loop_is_a_load_error(saved):
    path, _, _ = saved
    (path / "theta.msgpack").unlink()
    os.symlink("theta.msgpack", path / "theta.msgpack")
    with pytest.raises(learned_opt.LoadError, match=rf"{path / 'theta.msgpack'}.*read"):
        learned_opt.load(path)
    (path / "theta.msgpack").unlink()
    os.symlink("other.msgpack", path / "theta.msgpack")  # a loop of two links
    os.symlink("theta.msgpack", path / "other.msgpack")
    with pytest.raises(learned_opt.LoadError, match=r"theta\.msgpack.*read"):
        learned_opt.load(path)


def test_theta_directory_is_a_load_error(saved):
    path, _, _ = saved
    (path / "theta.msgpack").unlink()
    (path / "theta.msgpack").mkdir()
    with pytest.raises(learned_opt.LoadError, match=r"theta\.msgpack.*not a regular file"):
        learned_opt.load(path)


def test_lopt_json_symlink_loop_or_directory_is_a_load_error(saved):
    path, _, _ = saved
    (path / "lopt.json").unlink()
    os.symlink("lopt.json", path / "lopt.json")
    with pytest.raises(learned_opt.LoadError, match=r"lopt\.json.*read"):
        learned_opt.load(path)
    (path / "lopt.json").unlink()
    (path / "lopt.json").mkdir()
    with pytest.raises(learned_opt.LoadError, match=r"lopt\.json.*not a regular file"):
        learned_opt.load(path)


def _load_as_nobody(path):
    """``load_meta_params(path)`` in a forked child that drops root's rights: the child's exit
    code is 0 for a ``LoadError`` saying theta.msgpack cannot be read, 1 for no error, 2 for
    another ``LoadError`` and 3 for any other exception."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            os.setgid(65534)
            os.setuid(65534)
            learned_opt.load_meta_params(path)
            code = 1
        except learned_opt.LoadError as e:
            code = 0 if re.search(r"theta\.msgpack.*cannot be read", str(e)) else 2
        except BaseException:
            code = 3
        os._exit(code)
    for _ in range(600):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError("the child loading as nobody did not finish in 60 s")


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # the child only reads files
def test_unreadable_theta_is_a_load_error():
    """theta.msgpack without read permission (as root, read by a child that drops to nobody)."""
    lopt = learned_opt.MLPLOpt(hidden_sizes=(8,))
    root = pathlib.Path(tempfile.mkdtemp())
    try:
        path = pathlib.Path(learned_opt.save(root / "opt", lopt, lopt.init_meta_params(KEY)))
        for d in (root, path):
            d.chmod(0o755)
        (path / "lopt.json").chmod(0o644)
        (path / "theta.msgpack").chmod(0)
        if os.geteuid() == 0:
            assert _load_as_nobody(path) == 0
        else:
            with pytest.raises(learned_opt.LoadError, match=r"theta\.msgpack.*cannot be read"):
                learned_opt.load(path)
    finally:
        shutil.rmtree(root)
