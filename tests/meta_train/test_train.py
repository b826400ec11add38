"""The outer loop end to end: resume after SIGKILL, corrupt checkpoints, bad configs, progress."""

import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import optax
import pytest

import learned_opt
import tasks
from meta_train import config as config_lib
from meta_train import configs, evaluate, outer, spec, train

REPO = pathlib.Path(__file__).resolve().parents[2]


def tiny(config_name="quickstart", **over):
    """Cut-down ``config_name`` (quickstart: seed 0 draws linear regression): one group of 4
    pairs, short episodes, fields ``over`` set last."""
    c = configs.get(config_name)
    c.num_groups, c.pairs_per_group, c.truncation_length = 1, 4, 10
    c.episode.min_length, c.episode.max_length = 20, 60
    c.group_resample_every = 0
    c.eval.num_tasks = 0
    c.outer_steps, c.checkpoint_every, c.export_every = 40, 10, 20
    for k, v in over.items():
        c[k] = v
    return c


def _cli(workdir, cache, *extra):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        "-m",
        "meta_train.cli",
        "--config=quickstart",
        f"--workdir={workdir}",
        f"--compilation_cache_dir={cache}",
        "--noprogress",
        "--config.num_groups=1",
        "--config.pairs_per_group=4",
        "--config.truncation_length=10",
        "--config.episode.min_length=20",
        "--config.episode.max_length=60",
        "--config.group_resample_every=30",
        "--config.outer_steps=60",
        "--config.checkpoint_every=10",
        "--config.eval.num_tasks=0",
        *extra,
    ]
    return cmd, env


def _theta(workdir):
    _, theta = learned_opt.load_meta_params(str(pathlib.Path(workdir) / "export"))
    return np.asarray(jax.flatten_util.ravel_pytree(theta)[0])


def _steps_logged(workdir):
    p = pathlib.Path(workdir) / "metrics.jsonl"
    if not p.exists():
        return 0
    # the run may be writing its last line as we read: count only complete lines
    lines = p.read_text().split("\n")[:-1]
    rows = [json.loads(x) for x in lines if x.strip()]
    return max((r["step"] for r in rows), default=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted CLI run, and one SIGKILLed mid-way then restarted (same seed)."""
    base = tmp_path_factory.mktemp("runs")
    cache = base / "xla_cache"
    cmd, env = _cli(base / "full", cache)
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    cmd, env = _cli(base / "killed", cache)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    # kill after the group resample at step 30 and the checkpoint at step 30: the restart
    # resumes across the boundary where new task groups are drawn
    while _steps_logged(base / "killed") < 35 and time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _steps_logged(base / "killed")
    assert 35 <= killed_at < 60, killed_at
    restart = subprocess.run(cmd, env=env, capture_output=True, timeout=600, text=True)
    assert restart.returncode == 0, restart.stderr[-3000:]
    # it really resumed (from the checkpoint at step 30 or later), not started afresh
    resumed_at = re.search(r"resumed from the checkpoint at step (\d+)", restart.stderr)
    assert resumed_at and 30 <= int(resumed_at.group(1)) <= killed_at, restart.stderr[-3000:]
    return base, killed_at, cache


def test_sigkill_then_resume_equals_uninterrupted(runs):
    base, killed_at, _ = runs
    full, resumed = _theta(base / "full"), _theta(base / "killed")
    np.testing.assert_allclose(resumed, full, atol=1e-6, rtol=0)
    assert _steps_logged(base / "killed") == 60
    steps = [
        json.loads(x)["step"] for x in (base / "killed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, 61))  # rows of redone steps were replaced, not duplicated
    meta = json.loads((base / "killed" / "export" / "lopt.json").read_text())["metadata"]
    assert meta["seed"] == 0 and "--config=quickstart " in meta["command"] and meta["code_version"]
    assert list((base / "killed" / "tb").iterdir())  # TensorBoard events


def test_sigterm_checkpoints_then_resume_equals_uninterrupted(runs, tmp_path):
    """SIGTERM mid-run: the process saves a checkpoint at the step it reached and exits 75; the
    restart resumes from exactly that step and ends on the uninterrupted run's theta."""
    base, _, cache = runs
    cmd, env = _cli(tmp_path / "term", cache)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while _steps_logged(tmp_path / "term") < 15 and time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 75, err[-2000:]  # checkpointed, not finished
    stopped = _steps_logged(tmp_path / "term")
    assert 15 <= stopped < 60 and f"stopped by SIGTERM after step {stopped}" in err
    ckpts = {int(p.name) for p in (tmp_path / "term" / "checkpoints").iterdir() if p.name.isdigit()}
    assert stopped in ckpts, (stopped, ckpts)
    out = subprocess.run(cmd, env=env, capture_output=True, timeout=600, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resumed from the checkpoint at step {stopped}" in out.stderr
    np.testing.assert_allclose(_theta(tmp_path / "term"), _theta(base / "full"), atol=1e-6)


def test_corrupt_latest_checkpoint_falls_back(runs, caplog):
    base, _, cache = runs
    ckpts = base / "killed" / "checkpoints"
    steps = sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
    assert steps[-1] == 60 and len(steps) >= 2
    for f in (ckpts / str(steps[-1])).rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "state" in str(f):
            f.write_bytes(b"\x00garbage" * 3)
    cmd, env = _cli(base / "killed", cache)
    out = subprocess.run(cmd, env=env, capture_output=True, timeout=600, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "unreadable" in out.stderr and f"step {steps[-1]}" in out.stderr
    assert f"resumed from the checkpoint at step {steps[-2]}" in out.stderr, out.stderr[-3000:]
    # it resumed from the previous checkpoint and, being deterministic, reached the same theta
    np.testing.assert_allclose(_theta(base / "killed"), _theta(base / "full"), atol=1e-6)


def test_workdir_of_other_config_refused(runs):
    base, _, cache = runs
    cmd, env = _cli(base / "full", cache, "--config.sigma=0.02")
    out = subprocess.run(cmd, env=env, capture_output=True, timeout=300, text=True)
    assert out.returncode == 2 and "another config" in out.stderr and "sigma" in out.stderr


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("sigma", -1.0, "config.sigma"),
        ("estimator", "sgd", "config.estimator"),
        ("pairs_per_group", 0, "config.pairs_per_group"),
        ("truncation_length", 500, "truncation_length"),
        ("zoo", "nope", "config.zoo"),
        ("trained_leaves", "w3;b3", "config.trained_leaves"),
        ("trained_leaves", "w3,,b3", "config.trained_leaves"),
        ("meta_opt.schedule", "linear", "config.meta_opt.schedule"),
        ("meta_opt.warmup_steps", -1, "config.meta_opt.warmup_steps"),
    ],
)
def test_bad_config_refused(field, value, match, tmp_path):
    c = tiny()
    node, name = config_lib.field_parent(c, field)
    node[name] = value
    with pytest.raises(config_lib.ConfigError, match=match):
        train.train(c, tmp_path, progress=False)


def test_meta_training_lowers_heldout_loss(tmp_path):
    """A cut-down quickstart (seed 1 draws an MNIST-1D MLP group) beats its initial theta on a
    held-out MNIST-1D MLP of another width."""
    c = tiny(seed=1, outer_steps=60, checkpoint_every=60, export_every=60, pairs_per_group=4)
    c.truncation_length = 20
    c.episode.min_length, c.episode.max_length = 40, 200
    c.meta_opt.learning_rate = 3e-3  # 60 steps: a larger meta step than the 600-step default
    state = train.train(c, tmp_path, progress=False)
    lopt = config_lib.build_lopt(c)
    theta0 = outer.initial_theta(spec.from_config(c))
    heldout = [t for t in tasks.suite("embedded_heldout") if t.name == "mlp_mnist1d_w128"]
    before = evaluate.heldout_loss(lopt, theta0, heldout, steps=200, seeds=2)
    after = evaluate.heldout_loss(lopt, state.theta, heldout, steps=200, seeds=2)
    assert np.isfinite(after) and after < 0.95 * before, (before, after)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(r["num_nonfinite"] == 0 for r in rows) and rows[-1]["inner_steps_per_s"] > 0


def test_group_cache_is_bounded_lru():
    """A long run meets many group keys: the cache keeps only the most recently used ones."""
    c = tiny()
    zoo = config_lib.build_zoo(c)
    cache = outer.GroupCache(spec.from_config(c), outer.make_mesh(), max_entries=2)
    drawn = {}
    for epoch in range(40):
        for fam, task in outer.draw_groups(zoo, 0, epoch, 1):
            drawn.setdefault((task.group_key, fam), (task, fam))
        if len(drawn) == 3:
            break
    (k1, (t1, f1)), (k2, (t2, f2)), (k3, (t3, f3)) = list(drawn.items())[:3]
    g1 = cache.group(t1, f1)
    cache.group(t2, f2)
    assert cache.group(t1, f1).estimate is g1.estimate  # a hit reuses the compiled function
    cache.group(t3, f3)  # evicts the least recently used: t2
    assert list(cache._fns) == [k1, k3] and len(cache._data) <= 2


def test_init_from_starts_at_the_saved_theta(tmp_path):
    """Fine-tuning: ``init_from`` starts the run at a saved theta (not the seed's init), the run
    moves on from there, and the export records where it started."""
    c = tiny(outer_steps=3, checkpoint_every=3, export_every=3)
    lopt = config_lib.build_lopt(c)
    saved = lopt.init_meta_params(jax.random.key(5))
    learned_opt.save(tmp_path / "src", lopt, saved)
    c.init_from = str(tmp_path / "src")
    flat = lambda t: jax.flatten_util.ravel_pytree(t)[0]  # noqa: E731
    np.testing.assert_array_equal(flat(outer.initial_theta(spec.from_config(c))), flat(saved))
    seed_init = flat(outer.initial_theta(spec.from_config(tiny())))
    assert np.abs(seed_init - flat(saved)).max() > 1e-3  # the two starts really differ
    state = train.train(c, tmp_path / "run", progress=False)
    moved = np.abs(flat(state.theta) - flat(saved)).max()
    assert 0 < moved < np.abs(seed_init - flat(saved)).max()
    meta = json.loads((tmp_path / "run/export/lopt.json").read_text())["metadata"]
    assert meta["config"]["init_from"] == str(tmp_path / "src")


def test_init_from_is_read_once_per_run(tmp_path, monkeypatch):
    """A fine-tuning run reads its ``init_from`` theta from disk once (start, restore target and
    the held-out evaluation of the initial theta all use that copy)."""
    c = tiny(outer_steps=2, checkpoint_every=2, export_every=2)
    lopt = config_lib.build_lopt(c)
    learned_opt.save(tmp_path / "src", lopt, lopt.init_meta_params(jax.random.key(5)))
    c.init_from = str(tmp_path / "src")
    c.eval.num_tasks, c.eval.steps, c.eval.seeds = 1, 5, 1
    reads = []
    load = learned_opt.load_meta_params
    monkeypatch.setattr(learned_opt, "load_meta_params", lambda p: reads.append(p) or load(p))
    train.train(c, tmp_path / "run", progress=False)
    assert reads == [str(tmp_path / "src")]
    c.outer_steps = 4  # resume: one more read
    train.train(c, tmp_path / "run", progress=False)
    assert len(reads) == 2


def _drop_later_fields(d: dict) -> dict:
    """``d`` without the fields added after runs were recorded (dotted names: nested ones)."""
    d = json.loads(json.dumps(d))
    for field in config_lib.OLD_RUN_VALUES:
        node, name = config_lib.field_parent(d, field)
        if node is not None:
            node.pop(name, None)
    return d


def _has_field(d: dict, field: str) -> bool:
    node, name = config_lib.field_parent(d, field)
    return node is not None and name in node


def test_old_run_json_is_migrated_and_resumes(tmp_path):
    """A workdir of a version before ``init_from``, ``log_loss``, ``share_programs``,
    ``communication``, ``exchange_quantization`` and the meta-optimizer's schedule existed (its
    run.json and checkpoint configs lack them) resumes, ends on the uninterrupted run's theta,
    and its run.json is migrated."""
    run = tmp_path / "old"
    train.train(tiny(outer_steps=2, checkpoint_every=2, export_every=2), run, progress=False)
    ident = json.loads((run / "run.json").read_text())
    later = set(config_lib.OLD_RUN_VALUES) - set(config_lib.RESUMABLE_FIELDS)
    assert all(_has_field(ident, f) for f in later)
    (run / "run.json").write_text(json.dumps(_drop_later_fields(ident), indent=1))
    stored = run / "checkpoints" / "2" / "config" / "metadata"
    stored.write_text(json.dumps(_drop_later_fields(json.loads(stored.read_text()))))
    c = tiny(outer_steps=4, checkpoint_every=2, export_every=2)
    resumed = train.train(c, run, progress=False)
    assert json.loads((run / "run.json").read_text()) == ident  # migrated in place
    full = train.train(c, tmp_path / "full", progress=False)
    flat = lambda t: np.asarray(jax.flatten_util.ravel_pytree(t)[0])  # noqa: E731
    np.testing.assert_array_equal(flat(resumed.theta), flat(full.theta))
    # a field missing from an old run stands for the value those runs used, not any value
    old = _drop_later_fields(ident)
    assert config_lib.run_identity(old) == config_lib.run_identity(tiny())
    assert config_lib.run_identity(old) != config_lib.run_identity(tiny(log_loss=True))


def test_init_from_other_architecture_or_missing_is_refused(tmp_path):
    c = tiny()
    learned_opt.save(
        tmp_path / "mlp",
        learned_opt.MLPLOpt(),
        learned_opt.MLPLOpt().init_meta_params(jax.random.key(0)),
    )
    for source, match in (
        (tmp_path / "mlp", "config.lopt builds"),
        (tmp_path / "nope", "no learned optimizer"),
    ):
        c.init_from = str(source)
        with pytest.raises(config_lib.ConfigError, match=f"config.init_from=.*{match}"):
            train.train(c, tmp_path / "run", progress=False)
        assert not (tmp_path / "run" / "run.json").exists()  # refused before recording the run


def test_trained_leaf_theta_lacks_is_refused(tmp_path):
    """A name that is not a leaf of the optimizer's theta is refused, naming it and the leaves
    there are, before the workdir records the run."""
    c = tiny()
    c.trained_leaves = "w3,no_such_leaf"
    with pytest.raises(config_lib.ConfigError, match="trained_leaves=.*'no_such_leaf'"):
        train.train(c, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_meta_optimizer_moves_only_the_trained_leaves():
    """With ``trained_leaves`` the other leaves stay bit for bit, and the trained ones move
    exactly as the plain meta-optimizer moves them on their own (its clipping over them only)."""
    settings = spec.MetaOptSettings(1e-2, 0.9, 0.999, 1e-2, 0.5, ("a", "c"))
    masked = outer.meta_optimizer(settings)
    plain = outer.meta_optimizer(dataclasses.replace(settings, trained_leaves=()))
    keys = jax.random.split(jax.random.key(0), 4)
    theta = {n: jax.random.normal(k, (3, 2)) for n, k in zip("abc", keys, strict=False)}
    alone = {n: theta[n] for n in "ac"}
    s_masked, s_plain = masked.init(theta), plain.init(alone)
    for t in range(3):  # gradients with norm > clip_norm, so that clipping acts
        grad = {n: 2.0 * jax.random.normal(jax.random.fold_in(keys[3], t), (3, 2)) for n in "abc"}
        u, s_masked = masked.update(grad, s_masked, theta)
        u_alone, s_plain = plain.update({n: grad[n] for n in "ac"}, s_plain, alone)
        theta = optax.apply_updates(theta, u)
        alone = optax.apply_updates(alone, u_alone)
    b0 = jax.random.normal(keys[1], (3, 2))
    np.testing.assert_array_equal(theta["b"], b0)
    for n in "ac":
        np.testing.assert_array_equal(theta[n], alone[n])
        assert not np.allclose(theta[n], jax.random.normal(keys["abc".index(n)], (3, 2)))


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_meta_learning_rate_follows_its_equation(schedule):
    """Each meta-update of a constant-sign gradient moves theta by the schedule's rate (Adam's
    bias-corrected m / sqrt(v) is 1 there): a linear warmup from 0 over ``warmup_steps``, then
    ``learning_rate`` or ``learning_rate (1 + cos(pi (t - warmup) / (total - warmup))) / 2``."""
    lr, warmup, total = 0.1, 4, 20
    settings = spec.MetaOptSettings(lr, 0.9, 0.999, 0.0, 0.0, (), schedule, warmup, total)
    opt = outer.meta_optimizer(settings)
    theta = {"w": np.zeros(3, np.float32)}
    state = opt.init(theta)
    moved = []
    for _ in range(total + 2):
        update, state = opt.update({"w": np.full(3, 2.0, np.float32)}, state, theta)
        moved.append(-float(update["w"][0]))
    t = np.arange(total + 2)
    after = np.clip((t - warmup) / (total - warmup), 0.0, 1.0)
    decayed = lr * (1 + np.cos(np.pi * after)) / 2 if schedule == "cosine" else np.full(t.size, lr)
    want = np.where(t < warmup, lr * t / warmup, decayed)
    np.testing.assert_allclose(moved, want, rtol=1e-5, atol=1e-7)


def test_constant_rate_without_warmup_keeps_the_optimizer_state_of_older_runs():
    """Checkpoints written before schedules existed hold no schedule count: the constant,
    warmup-free rate must build the same optimizer state tree."""
    theta = {"w": np.zeros(3, np.float32)}
    now = outer.meta_optimizer(spec.MetaOptSettings(1e-3, 0.9, 0.999, 1e-4, 3.0))
    before = optax.chain(optax.clip_by_global_norm(3.0), optax.adamw(1e-3, weight_decay=1e-4))
    assert jax.tree.structure(now.init(theta)) == jax.tree.structure(before.init(theta))


def test_cosine_meta_schedule_run_resumes_onto_the_uninterrupted_theta(tmp_path):
    """A cosine-scheduled run stopped after a checkpoint and run again ends where an
    uninterrupted one does: the schedule's count travels in the checkpoint."""
    over = dict(outer_steps=6, checkpoint_every=3, export_every=6)

    def cfg(steps):
        c = tiny(**over)
        c.meta_opt.schedule, c.meta_opt.warmup_steps = "cosine", 2
        return c

    full = train.train(cfg(6), tmp_path / "full", progress=False)
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "6")  # as if killed before writing it
    resumed = train.train(cfg(6), tmp_path / "cut", progress=False)
    flat = lambda t: np.asarray(jax.flatten_util.ravel_pytree(t)[0])  # noqa: E731
    np.testing.assert_array_equal(flat(resumed.theta), flat(full.theta))


def test_run_on_trained_leaves_moves_only_them(tmp_path):
    """A whole run with ``trained_leaves`` (PES perturbing only them, the meta-optimizer moving
    only them) leaves the rest of theta as it started, bit for bit."""
    c = tiny(outer_steps=6, checkpoint_every=6, export_every=6)
    c.trained_leaves = "generator"
    theta0 = outer.initial_theta(spec.from_config(c))
    state = train.train(c, tmp_path, progress=False)
    jax.tree.map(np.testing.assert_array_equal, state.theta["lstm"], theta0["lstm"])
    moved = jax.tree.map(
        lambda a, b: bool(np.any(a != b)), state.theta["generator"], theta0["generator"]
    )
    assert all(jax.tree.leaves(moved)), moved


def test_init_from_pads_a_theta_for_the_agreement_gate():
    """The ``experiments/scale_free_gate`` recipe starts at ``scale_free_v7``'s theta, padded with
    zeros for the gate's two inputs and output; any other change of the architecture is still
    refused."""
    c = configs.get("experiments/scale_free_gate")
    lopt = config_lib.build_lopt(c)
    _, theta7 = learned_opt.load_meta_params("scale_free_v7")
    theta = config_lib.load_init_theta(c.init_from, lopt)
    assert theta["w1"].shape == (theta7["w1"].shape[0] + 2, theta7["w1"].shape[1])
    np.testing.assert_array_equal(theta["w1"][:-2], theta7["w1"])
    np.testing.assert_array_equal(theta["w3"][:, :5], theta7["w3"])
    assert not np.any(theta["w1"][-2:]) and not np.any(theta["w3"][:, 5]) and theta["b3"][5] == 0
    c.lopt.config = dict(c.lopt.config, hidden=16)
    with pytest.raises(config_lib.ConfigError, match="config.init_from=.*config.lopt builds"):
        config_lib.load_init_theta(c.init_from, config_lib.build_lopt(c))


@pytest.mark.slow
def test_per_parameter_run_starts_at_its_snapshot_and_meta_trains_the_new_network(tmp_path):
    """The ``experiments/char_lm_specialist_elementwise`` recipe, cut to 2 outer steps of one tiny
    group: it starts at the saved snapshot padded with the per-parameter network (the old entries
    equal, ``ew2`` zero), and the meta-updates move the new network's output weights too."""
    c = tiny("experiments/char_lm_specialist_elementwise", pairs_per_group=1, truncation_length=4)
    c.episode.min_length, c.episode.max_length = 8, 16
    c.outer_steps, c.checkpoint_every, c.export_every = 2, 2, 2
    _, saved = learned_opt.load_meta_params(c.init_from)
    start = outer.initial_theta(spec.from_config(c))
    for k, v in saved.items():
        np.testing.assert_array_equal(start[k], v)
    assert not np.any(start["ew2"])
    state = train.train(c, tmp_path / "run", progress=False)
    theta = jax.device_get(state.theta)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(theta))
    assert np.abs(theta["ew2"]).max() > 0  # the per-parameter term is meta-trained
    lopt, exported = learned_opt.load_meta_params(str(tmp_path / "run" / "export"))
    assert lopt.elementwise_hidden == 8 and exported.keys() == theta.keys()


def test_hyper_broad_fine_tunes_the_shipped_optimizer():
    """The run starts at the shipped theta, as its file holds it (read here with flax alone), not
    at the seed's init."""
    from flax import serialization

    c = configs.get("experiments/hyper_broad")
    start = jax.device_get(outer.initial_theta(spec.from_config(c)))  # what train starts from
    path = pathlib.Path(learned_opt.__file__).parent / "pretrained" / c.init_from
    on_disk = serialization.msgpack_restore((path / "theta.msgpack").read_bytes())
    assert jax.tree.structure(serialization.to_state_dict(start)) == jax.tree.structure(on_disk)
    jax.tree.map(np.testing.assert_array_equal, serialization.to_state_dict(start), on_disk)
    c.init_from = ""
    flat = lambda t: jax.flatten_util.ravel_pytree(t)[0]  # noqa: E731
    assert np.abs(flat(outer.initial_theta(spec.from_config(c))) - flat(start)).max() > 1e-3


def test_every_export_is_kept_as_a_snapshot(tmp_path):
    """``keep_exports``: each export is also kept as ``exports/step_N`` (the last one equals
    ``export`` and the final theta, an earlier one differs); off, only ``export`` is written."""
    c = tiny(outer_steps=4, checkpoint_every=4, export_every=2)
    state = train.train(c, tmp_path / "run", progress=False)
    kept = sorted(p.name for p in (tmp_path / "run" / "exports").iterdir())
    assert kept == ["step_2", "step_4"]
    flat = lambda t: np.asarray(jax.flatten_util.ravel_pytree(t)[0])  # noqa: E731
    load = lambda p: flat(learned_opt.load_meta_params(str(p))[1])  # noqa: E731
    final = flat(state.theta)
    np.testing.assert_array_equal(load(tmp_path / "run/exports/step_4"), final)
    np.testing.assert_array_equal(load(tmp_path / "run/export"), final)
    assert np.abs(load(tmp_path / "run/exports/step_2") - final).max() > 0
    meta = json.loads((tmp_path / "run/exports/step_2/lopt.json").read_text())["metadata"]
    assert meta["outer_step"] == 2
    c = tiny(outer_steps=2, checkpoint_every=2, export_every=2, keep_exports=False)
    train.train(c, tmp_path / "off", progress=False)
    assert (tmp_path / "off/export").is_dir() and not (tmp_path / "off/exports").exists()


def test_keep_exports_must_be_a_bool():
    c = tiny()
    c.keep_exports = None  # ConfigDict refuses a str for a bool field itself; None gets through
    with pytest.raises(config_lib.ConfigError, match="keep_exports"):
        config_lib.validate(c)
