"""In-process fault tests, one per item of the fault table (each fails before its fix)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import learned_opt
from meta_train import checkpoint, configs, guard, memory, outer, overrides, spec, workdir
from meta_train import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ------------------------------------------------------------------ NaN never reaches theta
def test_non_finite_meta_gradient_is_skipped():
    mesh = outer.make_mesh()
    meta_opt = outer.meta_optimizer(configs.get("quickstart").meta_opt)
    update = outer.make_update(meta_opt, mesh)
    theta = {"a": jnp.ones((3,))}
    opt_state = meta_opt.init(theta)
    step = jnp.zeros((), jnp.int32)
    good = [{"a": jnp.full((3,), 0.5)}]
    bad = [{"a": jnp.asarray([0.5, jnp.nan, 0.5])}]
    t1, s1, _, n1, ok1 = update(theta, opt_state, bad, step)
    assert not bool(ok1) and int(n1) == 1
    np.testing.assert_array_equal(t1["a"], np.ones(3))
    chex_equal = jax.tree.map(np.testing.assert_array_equal, s1, meta_opt.init(theta))
    del chex_equal
    t2, _, _, _, ok2 = update(t1, s1, good, n1)
    assert bool(ok2) and np.all(np.asarray(t2["a"]) < 1)


def test_balanced_groups_weigh_each_group_equally():
    """``balance_groups``: the mean of unit-norm group estimates times their mean norm, against
    the closed form; a group 1000x larger no longer sets the direction alone. Through
    ``make_update`` with plain SGD (lr 1) theta moves by exactly minus that combination."""
    rng = np.random.default_rng(0)
    small = {"a": rng.normal(size=(3,)), "b": rng.normal(size=(2, 2))}
    large = jax.tree.map(lambda x: 1000.0 * rng.normal(size=x.shape), small)
    grads = [jax.tree.map(jnp.asarray, g) for g in (small, large)]

    def flat(t):
        return np.concatenate([np.ravel(t["a"]), np.ravel(t["b"])])

    u, v = flat(small), flat(large)
    mean_norm = (np.linalg.norm(u) + np.linalg.norm(v)) / 2
    want = mean_norm * (u / np.linalg.norm(u) + v / np.linalg.norm(v)) / 2
    got = flat(outer.combine_groups(grads, balance=True))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(flat(outer.combine_groups(grads)), (u + v) / 2, rtol=1e-6)
    cos = lambda x, y: x @ y / np.linalg.norm(x) / np.linalg.norm(y)  # noqa: E731
    assert cos(got, u) > 0.3 and cos((u + v) / 2, u) < 0.1  # the small group now counts
    update = outer.make_update(optax.sgd(1.0), outer.make_mesh(), balance_groups=True)
    theta = jax.tree.map(jnp.zeros_like, grads[0])
    step = jnp.zeros((), jnp.int32)
    new, _, gnorm, _, ok = update(theta, optax.sgd(1.0).init(theta), grads, step)
    assert bool(ok)
    np.testing.assert_allclose(flat(new), -want, rtol=1e-5)
    np.testing.assert_allclose(float(gnorm), np.linalg.norm(want), rtol=1e-5)


def test_late_weight_must_be_non_negative():
    c = configs.get("quickstart")
    c.late_weight = -1.0
    with pytest.raises(config_lib.ConfigError, match=r"config\.late_weight=-1\.0"):
        config_lib.validate(c)


def test_balance_groups_must_be_a_bool():
    c = configs.get("quickstart")
    c.balance_groups = None  # ConfigDict refuses a str for a bool field itself
    with pytest.raises(config_lib.ConfigError, match=r"config\.balance_groups=None"):
        config_lib.validate(c)


def test_streak_of_non_finite_updates_stops_the_run():
    streak = guard.NonFiniteStreak(3)
    for step, skipped in enumerate([True, True, False, True, True], 1):
        streak.update(step, skipped)
    with pytest.raises(guard.DivergedError, match="3 meta-updates in a row"):
        streak.update(6, True)
    assert streak.total == 5


def test_logged_loss_is_nan_not_zero_when_every_pair_diverged():
    from meta_train import estimators

    sums = dict(
        bad=jnp.ones((4,), bool),
        pre=jnp.zeros((4, 2)),
        post=jnp.zeros((4, 2)),
        ended=jnp.zeros((4,), jnp.int32),
    )
    assert math.isnan(float(estimators._metrics(sums, 5)["loss"]))


@pytest.mark.parametrize("sigma, why", [(1e-20, "float32"), (1e-19, "float32"), (1e20, "<= 1")])
def test_sigma_whose_square_leaves_float32_is_refused(sigma, why):
    c = configs.get("quickstart")
    c.sigma = sigma
    with pytest.raises(config_lib.ConfigError, match=rf"config\.sigma.*{why}"):
        config_lib.validate(c)


def test_eval_suite_is_checked_up_front():
    c = configs.get("quickstart")
    c.eval.suite = "bogus"
    with pytest.raises(config_lib.ConfigError, match=r"eval\.suite='bogus'"):
        config_lib.validate(c)


# ------------------------------------------------------------------ checkpoints
def test_checkpoint_checksum_detects_flipped_values():
    state = outer.MetaState(
        jnp.asarray(3, jnp.int32),
        {"w": jnp.arange(4.0)},
        (optax.EmptyState(),),
        (),
        jax.random.PRNGKey(0),
    )
    saved = checkpoint.checksums(state)
    checkpoint.verify(state, saved)
    flipped = state._replace(theta={"w": jnp.asarray([0.0, 1.0, 2.0, np.nan])})
    with pytest.raises(checkpoint.ChecksumError, match="theta"):
        checkpoint.verify(flipped, saved)


def test_run_identity_accepts_a_stored_dict():
    c = configs.get("quickstart")
    assert config_lib.run_identity(c.to_dict()) == config_lib.run_identity(c)


# ------------------------------------------------------------------ workdir
def test_second_lock_names_the_holder(tmp_path):
    fd = workdir.lock(tmp_path)
    try:
        code = (
            "import pathlib, sys; from meta_train import workdir\n"
            f"workdir.lock(pathlib.Path({str(tmp_path)!r}))"
        )
        p = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=REPO),
        )
        assert p.returncode != 0
        assert f"pid {os.getpid()} on host" in p.stderr
    finally:
        os.close(fd)
    os.close(workdir.lock(tmp_path))  # released: free again


def test_workdir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(workdir.WorkdirError, match="is a file"):
        workdir.prepare(tmp_path / "f")


def test_history_is_refused_or_moved(tmp_path):
    # rows of a run killed before its first checkpoint (step 10) are redone, not history
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 9}\n')
    assert workdir.history(tmp_path, 10) == []
    workdir.discard_history(tmp_path, False, 10)
    (tmp_path / "checkpoints" / "10").mkdir(parents=True)
    with pytest.raises(workdir.WorkdirError, match="restart_from_scratch"):
        workdir.discard_history(tmp_path, False)
    assert (tmp_path / "metrics.jsonl").exists()
    workdir.discard_history(tmp_path, True)
    assert not workdir.history(tmp_path)
    assert list((tmp_path / "discarded").glob("*/checkpoints/10"))


def test_torn_jsonl_line_is_dropped_and_json_is_strict(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 1}\n{"step": 2, "lo')
    assert workdir.read_jsonl(p) == [{"step": 1}]
    line = workdir.dumps_strict({"loss": float("nan"), "x": [float("inf"), 1.0]})
    assert json.loads(line) == {"loss": None, "x": [None, 1.0]}


# ------------------------------------------------------------------ memory, signals, CLI pieces
def test_huge_population_is_refused_before_allocating():
    c = configs.get("quickstart")
    c.pairs_per_group = 1_000_000_000
    draws = outer.draw_groups(config_lib.build_zoo(c), c.seed, 0, c.num_groups)
    with pytest.raises(config_lib.ConfigError, match=r"pairs_per_group=1000000000.*GiB"):
        memory.check_population(spec.from_config(c), draws, outer.make_mesh())
    c.pairs_per_group = 8
    assert memory.check_population(spec.from_config(c), draws, outer.make_mesh()) > 0


def test_sigterm_grace_period_ends_a_stuck_process():
    code = (
        "import time; from meta_train import stopping\n"
        "stopping.SigtermStop(1.0).install()\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"  # a main thread that never reaches a step boundary
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=REPO),
    )
    assert p.stdout.readline().strip() == "ready"
    t0 = time.perf_counter()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 75 and time.perf_counter() - t0 < 10
    assert "did not end within 1 s" in err


def test_disk_errors_are_found_in_exception_chains():
    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError as e:
            raise RuntimeError("checkpoint failed") from e
    except RuntimeError as e:
        assert overrides.disk_error(e) == "disk full"
    assert overrides.disk_error(ValueError("INTERNAL: ... No space left on device")) == "disk full"
    assert overrides.disk_error(ValueError("other")) is None


def test_lopt_overrides_are_split_and_parsed():
    out = {}
    rest = overrides.split_lopt_overrides(
        ["x", "--config.lopt.config.lstm_hidden=8", "--config.lopt.config.timescales=(1, 2)"], out
    )
    assert rest == ["x"] and out == {"lstm_hidden": 8, "timescales": (1, 2)}


# ------------------------------------------------------------------ optax transform
@pytest.mark.parametrize(
    "lopt", [learned_opt.MLPLOpt(), learned_opt.HyperLOpt()], ids=["mlp", "hyper"]
)
def test_shape_mismatch_names_the_leaf(lopt):
    tx = lopt.optimizer(lopt.init_meta_params(jax.random.key(0)))
    params = {"dense": {"w": jnp.ones((3, 2))}, "b": jnp.ones((2,))}
    grads = {"dense": {"w": jnp.ones((2, 3))}, "b": jnp.ones((2,))}
    with pytest.raises(ValueError, match=r"\['dense'\]\['w'\].*\(2, 3\).*\(3, 2\)"):
        tx.update(grads, tx.init(params), params, value=1.0)


# ------------------------------------------------------------------ data cache
def _cache_path(tmp_path, monkeypatch, data):
    monkeypatch.setenv("LOPT_CACHE_DIR", str(tmp_path))
    data_dir = data.tfds_data_dir()
    version = data.prepared_version("mnist", data_dir)
    import hashlib
    import pathlib

    tag = hashlib.sha1(str(pathlib.Path(data_dir).resolve()).encode()).hexdigest()[:10]
    path = tmp_path / "data" / "mnist" / version / tag / "test.npz"
    path.parent.mkdir(parents=True)
    return path, version, data_dir


@pytest.mark.parametrize("damage", ["five_examples", "truncated"])
def test_bad_cache_entry_is_rebuilt(tmp_path, monkeypatch, damage):
    from tasks import data

    path, version, data_dir = _cache_path(tmp_path, monkeypatch, data)
    good = {"image": np.zeros((10000, 28, 28, 1), np.uint8), "label": np.zeros(10000, np.int32)}
    if damage == "five_examples":
        np.savez(path, image=np.zeros((5, 28, 28, 1), np.uint8), label=np.zeros(5, np.int32))
    else:
        np.savez(path, **good)
        path.write_bytes(path.read_bytes()[:5000])
    out = data._cached("mnist", version, "test", data_dir, lambda *a: good)
    assert out["image"].shape == (10000, 28, 28, 1)
    with np.load(path) as z:  # and the entry on disk was rewritten
        assert z["label"].shape == (10000,)


# ------------------------------------------------------------------ lopt-eval
def test_eval_torn_last_line_is_not_glued_to_the_next_record(tmp_path):
    from eval import checks, records

    path = tmp_path / records.RESULTS_FILE
    path.write_text(
        '{"task": "a", "candidate": "c", "seed": 0, "num_steps": 1, "train_loss": []}\n{"ta'
    )
    checks.preflight(str(tmp_path), 0.05)
    records.append_records(path, [{"task": "b"}])
    assert [json.loads(x)["task"] for x in path.read_text().splitlines()] == ["a", "b"]
