"""The evaluation protocol: scheduled baselines, content-keyed records, references,
divergence on a grid that reaches 1.0."""

import json
import logging
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from eval_toy_tasks import LinearRegression

import eval as ev
from eval import baselines, metrics, runner

TASK = LinearRegression()


# --------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("num_steps", [2, 37, 100, 1000])
def test_warmup_cosine_is_optax_schedule_bit_for_bit(num_steps):
    lr = 0.3
    want = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=lr,
        warmup_steps=max(1, int(0.05 * num_steps)),
        decay_steps=num_steps,
        end_value=0.0,
    )
    got = baselines.warmup_cosine(lr, num_steps)
    t = jnp.arange(num_steps + 3)
    np.testing.assert_array_equal(jax.vmap(got)(t), jax.vmap(want)(t))
    # a traced rate (as in the vmapped sweep) gives the same values to float32 rounding
    traced = jax.jit(lambda r: jax.vmap(baselines.warmup_cosine(r, num_steps))(t))(lr)
    np.testing.assert_allclose(traced, jax.vmap(want)(t), rtol=1e-6, atol=1e-7 * lr)


@pytest.mark.parametrize("name", ["adamw_cos", "nadamw_cos", "lion_cos", "muon"])
def test_scheduled_baseline_rate_read_from_its_updates(name):
    """With a constant gradient and zero parameters each update is -lr(t) times a (nearly) fixed
    direction, so the updates give the schedule back: peak right after warm-up, 0 at num_steps."""
    T, lr = 100, 0.05
    warmup = max(1, int(0.05 * T))
    params = {"w": jnp.zeros((6, 4)), "b": jnp.zeros(4)}  # muon: w orthogonalised, b Adam
    grads = {"w": jnp.sin(jnp.arange(24.0) + 1).reshape(6, 4), "b": jnp.cos(jnp.arange(4.0))}
    tx = baselines.BASELINES[name].make(jnp.float32(lr), T)
    state = tx.init(params)
    update = jax.jit(tx.update)
    ups = []
    for _ in range(T + 1):  # counts 0..T
        u, state = update(grads, state, params)
        ups.append(np.concatenate([np.ravel(u["w"]), np.ravel(u["b"])]))
    ups = np.array(ups)
    size = np.linalg.norm(ups, axis=1)
    assert int(np.argmax(size)) == warmup  # the peak: right after warm-up
    assert np.all(ups[T] == 0.0)  # lr(num_steps) = 0 exactly
    assert size[T - 1] < 1e-3 * size[warmup]
    sched = jax.vmap(baselines.warmup_cosine(lr, T))(jnp.arange(T + 1))
    # the rest of the schedule, once the moments' bias corrections have settled (NAdam's
    # Nesterov term keeps its direction moving for a few dozen steps)
    direction = ups[T // 2] / float(sched[T // 2])
    t = np.arange(T // 2, T + 1)
    np.testing.assert_allclose(ups[t], np.outer(sched[t], direction), rtol=1e-2, atol=1e-9)


def test_muon_orthogonalises_matrices_and_conv_kernels():
    """2-D and 4-D (HWIO) leaves get orthogonalised updates (equal singular values of the
    [H*W*I, O] reshape); 1-D leaves get Adam (|update| = lr for a constant gradient)."""
    params = {"k": jnp.zeros((3, 3, 2, 4)), "w": jnp.zeros((8, 4)), "b": jnp.zeros(4)}
    key = jax.random.key(0)
    grads = jax.tree.map(lambda p: jax.random.normal(key, p.shape), params)
    tx = baselines.BASELINES["muon"].make(jnp.float32(0.1), 40)
    state = tx.init(params)
    update = jax.jit(tx.update)
    for _ in range(3):
        u, state = update(grads, state, params)
    for name, rows in (("k", 18), ("w", 8)):
        sv = np.linalg.svd(np.asarray(u[name]).reshape(rows, 4), compute_uv=False)
        assert sv.max() / sv.min() < 1.7, (name, sv)  # orthogonalised (NS: within ~0.7..1.1)
    # Adam (Nesterov, as in optax's muon) on a constant gradient: the same step for every entry
    lr2 = float(baselines.warmup_cosine(0.1, 40)(2))
    np.testing.assert_allclose(np.abs(u["b"]), np.abs(u["b"][0]), rtol=1e-5)
    np.testing.assert_allclose(np.abs(u["b"][0]), lr2, rtol=0.1)


# --------------------------------------------------------------------------- divergence
def test_divergence_rule_by_hand():
    w = 1
    assert metrics.divergence_step([5.0, 4.0, 3.0], 5.0, w) is None
    assert metrics.divergence_step([5.0, 5.1, 5.2], 5.0, w) is None  # a stall is no blow-up
    assert metrics.divergence_step([5.0, 12.0, 30.0], 5.0, w) == 1  # finite blow-up
    assert metrics.divergence_step([5.0, 50.0, 4.0], 5.0, w) is None  # recovered
    assert metrics.divergence_step([5.0, float("nan"), 4.0], 5.0, w) == 1
    assert metrics.divergence_step([5.0, 4.0], 5.0, w, evals=[5.0, float("inf")]) == 2


# --------------------------------------------------------------------------- helpers
def _programs(monkeypatch):
    calls = []
    real = runner.run_program

    def counting(task, group, *a, **k):
        calls.append(tuple(c.label for c in group))
        return real(task, group, *a, **k)

    monkeypatch.setattr(runner, "run_program", counting)
    return calls


def _run(workdir, specs, **kw):
    kw = (
        dict(
            num_steps=20,
            num_seeds=2,
            lr_grid=(0.01, 0.1),
            eval_every=10,
            reference="adam",
            constant_reference=None,
            time_steps=0,
            progress=False,
            workdir=str(workdir),
        )
        | kw
    )
    return ev.run_suite([TASK], specs, **kw)


def test_grid_reaching_one_marks_the_blow_up_diverged_never_best(tmp_path):
    recs = _run(tmp_path, "sgd", num_steps=60, lr_grid=(0.01, 0.1, 1.0), reference="sgd")
    at_one = [r for r in recs if r["lr"] == 1.0]
    assert at_one and all(r["diverged"] for r in at_one)
    assert all(not r["diverged"] for r in recs if r["lr"] == 0.01)
    s = ev.write_report(recs, str(tmp_path), references=["sgd"])
    cell = s.cells[(TASK.name, "sgd")]
    assert cell.lr != 1.0 and math.isnan(cell.rate_finals[1.0]) and not cell.diverged
    assert "@ 1*" not in open(tmp_path / "summary.md").read()


# --------------------------------------------------------------------------- content keys
def _save(path, scale):
    import learned_opt

    lopt = learned_opt.MLPLOpt()
    theta = jax.tree.map(lambda x: x * scale, lopt.init_meta_params(jax.random.key(0)))
    return learned_opt.save(str(path), lopt, theta)


def test_same_label_other_weights_reruns_and_new_candidates_run_alone(
    tmp_path, monkeypatch, caplog
):
    lopt_dir = _save(tmp_path / "lopt", 1.0)
    calls = _programs(monkeypatch)
    first = _run(tmp_path / "ev", f"adam,mine={lopt_dir}")
    assert sorted(calls) == [("adam",), ("mine",)]
    # same label, other weights: only that candidate re-runs, and the log says why
    _save(tmp_path / "lopt", 0.5)
    calls.clear()
    with caplog.at_level(logging.WARNING, logger="eval.runner"):
        second = _run(tmp_path / "ev", f"adam,mine={lopt_dir}")
    assert calls == [("mine",)]
    assert "mine: re-running 2 runs" in caplog.text and "fingerprint" in caplog.text
    fp = lambda rs: {r["fingerprint"] for r in rs if r["candidate"] == "mine"}  # noqa: E731
    assert fp(first) != fp(second) and len(fp(second)) == 1
    old = [r for r in first if r["candidate"] == "mine"]
    new = [r for r in second if r["candidate"] == "mine"]
    assert [r["train_loss"] for r in old] != [r["train_loss"] for r in new]
    # a new candidate added to the same workdir: only its program runs
    calls.clear()
    third = _run(tmp_path / "ev", f"adam,mine={lopt_dir},adam@0.003,lion")
    assert sorted(calls) == [("adam@0.003",), ("lion",)]
    assert [r for r in third if r["candidate"] == "mine"] == new
    # the file keeps both versions; a report from it uses the latest
    on_disk = ev.read_records(tmp_path / "ev" / "results.jsonl")
    assert len([r for r in on_disk if r["candidate"] == "mine"]) == 4
    s = ev.summarize(on_disk, reference="adam")
    cell = s.cells[(TASK.name, "mine")]
    np.testing.assert_allclose(
        cell.train_curve, np.mean([r["train_loss"] for r in new], axis=0), rtol=1e-12
    )


def test_changing_the_seed_reruns_and_legacy_records_are_not_reused(tmp_path, monkeypatch):
    calls = _programs(monkeypatch)
    a = _run(tmp_path, "adam")
    calls.clear()
    assert _run(tmp_path, "adam") == a and calls == []
    b = _run(tmp_path, "adam", base_seed=1)
    assert calls == [("adam",)] and all(r["base_seed"] == 1 for r in b)
    assert [r["train_loss"] for r in a] != [r["train_loss"] for r in b]
    # records written before content keys existed (no fingerprint / base_seed) are re-run
    path = os.path.join(tmp_path, "results.jsonl")
    legacy = [{k: v for k, v in r.items() if k not in ("fingerprint", "base_seed")} for r in a]
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in legacy))
    calls.clear()
    c = _run(tmp_path, "adam")
    assert calls == [("adam",)] and [r["train_loss"] for r in c] == [r["train_loss"] for r in a]


# --------------------------------------------------------------------------- references
def test_switching_the_reference_changes_the_aggregates(tmp_path):
    """A small real evaluation (embedded tasks): tuned adamw_cos is the default reference, tuned
    adam always the second; switching the reference rescored every row."""
    tasks = ["quadratic_d64_k1000_n0.1_b32"]
    recs = ev.run_suite(
        tasks,
        "sgd",
        num_steps=60,
        num_seeds=2,
        lr_grid=(1e-2, 1e-1, 1.0),
        time_steps=0,
        progress=False,
        workdir=str(tmp_path / "a"),
    )
    assert {r["candidate"] for r in recs} == {"adamw_cos", "adam", "sgd"}
    s1 = ev.write_report(recs, str(tmp_path / "a"))
    md = open(tmp_path / "a" / "summary.md").read()
    assert "Speedup over tuned `adamw_cos`" in md and "Speedup over tuned `adam`" in md
    s2 = ev.write_report(recs, str(tmp_path / "b"), references=["sgd", "adam"])
    assert s1.references == ["adamw_cos", "adam"] and s2.references == ["sgd", "adam"]
    assert s1.aggregates["adamw_cos"]["median_speedup"] == 1.0
    assert s2.aggregates["sgd"]["median_speedup"] == 1.0
    assert s1.aggregates["sgd"]["median_speedup"] != s2.aggregates["sgd"]["median_speedup"]
    # the second reference's figures do not depend on the first
    assert s1.by_reference["adam"]["sgd"] == s2.by_reference["adam"]["sgd"]
    md2 = open(tmp_path / "b" / "summary.md").read()
    assert md2 != md and "Speedup over tuned `sgd`" in md2
    for name in ("speedups.png", "aggregate.png"):
        assert os.path.getsize(tmp_path / "b" / name) > 0
    cell = s1.cells[(tasks[0], "sgd")]
    assert set(cell.vs) == {"adamw_cos", "adam"} and cell.step_s is None
    assert math.isfinite(cell.eval_speedup)
    with pytest.raises(ev.EvalError, match="reference must be a baseline"):
        runner.resolve_candidates("adam", ["hyper_small_v2"], (0.1,))


def test_eval_speedup_by_hand():
    steps = [0, 10, 20, 30, 40]
    ref = np.array([5.0, 4.0, 2.0, 2.5, 3.0])  # best 2.0 at step 20, then it overfits
    # the candidate reaches 2.0 at step 10: 20 / 10
    assert metrics.eval_speedup(np.array([5.0, 2.0, 1.5, 2.5, 3.0]), ref, steps) == 2.0
    # never gets down to 2.0; the reference reaches the candidate's best 4.0 at step 10: 10 / 20
    assert metrics.eval_speedup(np.array([5.0, 4.5, 4.0, 4.2, 4.4]), ref, steps) == 0.5
    # getting early to where an overfitting reference ends (3.0) is no credit: the target is its
    # best (2.0 at step 30); the reference reached the candidate's best 3.0 at step 20: 20 / 30
    ref = np.array([5.0, 4.0, 3.0, 2.0, 3.0])
    assert metrics.eval_speedup(np.array([5.0, 3.0, 3.0, 3.0, 3.0]), ref, steps) == 20 / 30
    assert metrics.eval_speedup(np.array([5.0, np.nan, 1, 1, 1]), ref, steps) == 0.0
