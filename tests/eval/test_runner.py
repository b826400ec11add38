"""Runner, resume, divergence and report, on a tiny protocol-conforming task (fast to compile)."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
from eval_toy_tasks import LinearRegression

import eval as ev
from eval import metrics, records, runner

TASKS = [LinearRegression(), LinearRegression(name="linreg_b", dim=4, data_seed=1)]
GRID = (0.003, 0.03, 0.3)
STEPS, SEEDS, EVERY = 40, 2, 10
SPECS = "adam,adam@0.01,sgd@1000"


def _count_programs(monkeypatch):
    calls = []
    real = runner.run_program

    def counting(task, group, *a, **k):
        calls.append((task.name, tuple(c.label for c in group)))
        return real(task, group, *a, **k)

    monkeypatch.setattr(runner, "run_program", counting)
    return calls


def _evaluate(workdir, monkeypatch):
    calls = _count_programs(monkeypatch)
    recs = ev.run_suite(
        TASKS,
        SPECS,
        num_steps=STEPS,
        num_seeds=SEEDS,
        workdir=workdir,
        lr_grid=GRID,
        eval_every=EVERY,
        reference="adam",
        constant_reference=None,
        time_steps=5,
        progress=False,
    )
    ev.write_report(recs, workdir, references=["adam"])
    monkeypatch.undo()
    return recs, calls


@pytest.fixture(scope="module")
def toy_eval(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    workdir = str(tmp_path_factory.mktemp("toy_eval"))
    recs, calls = _evaluate(workdir, mp)
    return workdir, recs, calls


def test_program_matches_a_plain_training_loop():
    """The scanned, vmapped program equals an ordinary Python loop with optax, run by run."""
    task = TASKS[0]
    cand = ev.parse_candidate("adam@0.05")
    data = jax.device_put(task.load_data())
    steps, every = 10, 4  # eval after 0, 4, 8 and (remainder) 10 steps
    res = runner.run_program(task, [cand], data, [0, 3], steps, every, base_seed=7)
    assert res["train"].shape == (1, 2, steps) and res["eval"].shape == (1, 2, 4)
    assert records.eval_schedule(steps, every) == [0, 4, 8, 10]
    tx = optax.adam(0.05)

    @jax.jit
    def step(params, state, key):  # one ordinary optax step, compiled once
        bkey, lkey = jax.random.split(key)
        loss, grads = jax.value_and_grad(task.loss)(params, lkey, task.batch(bkey, data))
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    evaluate = jax.jit(lambda params, key: task.eval_loss(params, key, data))
    for j, seed in enumerate([0, 3]):
        key = jax.random.fold_in(jax.random.key(7), seed)
        init_key, train_key, eval_key = jax.random.split(key, 3)
        params = task.init(init_key)
        state = tx.init(params)
        train, evals = [], [evaluate(params, jax.random.fold_in(eval_key, 0))]
        for t in range(steps):
            params, state, loss = step(params, state, jax.random.fold_in(train_key, t))
            train.append(loss)
            if (t + 1) % every == 0 or t + 1 == steps:
                evals.append(evaluate(params, jax.random.fold_in(eval_key, 0)))
        np.testing.assert_allclose(res["train"][0, j], train, rtol=2e-5)
        np.testing.assert_allclose(res["eval"][0, j], evals, rtol=2e-5)


def test_records_and_outputs(toy_eval):
    workdir, recs, calls = toy_eval
    # adam and adam@0.01 share one program per task; sgd@1000 has its own
    assert sorted(calls) == sorted(
        [(t.name, g) for t in TASKS for g in [("adam", "adam@0.01"), ("sgd@1000",)]]
    )
    assert len(recs) == len(TASKS) * (len(GRID) + 2) * SEEDS
    with open(os.path.join(workdir, "results.jsonl")) as f:
        on_disk = [json.loads(line) for line in f]
    assert on_disk == json.loads(json.dumps(recs))  # same runs, nothing dropped
    for r in recs:
        assert len(r["train_loss"]) == STEPS and r["eval_steps"] == [0, 10, 20, 30, 40]
        assert r["program_compile_s"] > 0 and r["wall_s"] > 0 and r["step_s"] > 0
    names = ["summary.md", "summary.csv", "summary.json", "curves.png", "speedups.png"]
    for name in names + ["aggregate.png"]:
        assert os.path.getsize(os.path.join(workdir, name)) > 0
    with open(os.path.join(workdir, "curves.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_report_leaves_the_callers_matplotlib_backend_alone(toy_eval, tmp_path):
    workdir, _, _ = toy_eval
    code = (
        "import sys, matplotlib\n"
        "matplotlib.use('svg')\n"
        "from eval import read_records, write_report\n"
        "write_report(read_records(sys.argv[1]), sys.argv[2], references=['adam'])\n"
        "print(matplotlib.get_backend())\n"
    )
    results = os.path.join(workdir, "results.jsonl")
    out = subprocess.run(
        [sys.executable, "-c", code, results, str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["svg"]
    with open(tmp_path / "curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_summary_agrees_with_records(toy_eval):
    """Rate choice, finals, speedups and scores recomputed here from the raw records."""
    workdir, recs, _ = toy_eval
    s = ev.summarize(ev.read_records(os.path.join(workdir, "results.jsonl")), reference="adam")
    window = metrics.smoothing_window(STEPS, 0.05)
    for task in TASKS:
        mine = [r for r in recs if r["task"] == task.name]
        adam = {lr: [r for r in mine if r["candidate"] == "adam" and r["lr"] == lr] for lr in GRID}
        finals = {lr: np.mean([r["final_train_loss"] for r in rs]) for lr, rs in adam.items()}
        best = min(finals, key=finals.get)
        cell = s.cells[(task.name, "adam")]
        assert cell.lr == best and cell.final_train == pytest.approx(finals[best])
        ref_curve = np.mean([r["train_loss"] for r in adam[best]], axis=0)
        fixed = [r for r in mine if r["candidate"] == "adam@0.01"]
        curve = np.mean([r["train_loss"] for r in fixed], axis=0)
        c = s.cells[(task.name, "adam@0.01")]
        assert c.speedup == pytest.approx(metrics.speedup(curve, ref_curve, window))
        l0 = np.mean([r["eval_loss"][0] for r in adam[best]])
        ref_final = metrics.final_loss(ref_curve, window)
        want = (l0 - metrics.final_loss(curve, window)) / (l0 - ref_final)
        assert c.score == pytest.approx(want)
        assert c.final_eval == pytest.approx(np.mean([r["final_eval_loss"] for r in fixed]))
    with open(os.path.join(workdir, "summary.csv"), newline="") as f:
        header, *rows = list(csv.reader(f))
    row = dict(zip(header, rows[0], strict=True))
    cell = s.cells[(TASKS[0].name, "adam@0.01")]
    assert float(row["adam@0.01:speedup"]) == pytest.approx(cell.speedup)
    assert float(row["adam:lr"]) == s.cells[(TASKS[0].name, "adam")].lr
    assert rows[-1][0].startswith("aggregate")


def test_diverging_candidate_is_reported(toy_eval):
    workdir, recs, _ = toy_eval
    sgd = [r for r in recs if r["candidate"] == "sgd@1000"]
    assert sgd and all(r["diverged"] and r["diverged_at"] is not None for r in sgd)
    assert all(None in r["train_loss"] for r in sgd)  # NaN stored as null, strict JSON
    s = ev.summarize(recs)
    for task in TASKS:
        cell = s.cells[(task.name, "sgd@1000")]
        assert cell.diverged and cell.speedup == 0.0 and cell.score == 0.0
    agg = s.aggregates["sgd@1000"]
    assert agg["diverged_tasks"] == len(TASKS) and agg["median_speedup"] == 0.0
    md = open(os.path.join(workdir, "summary.md")).read()
    assert f"diverged ({SEEDS}/{SEEDS} seeds)" in md
    csv_text = open(os.path.join(workdir, "summary.csv")).read()
    assert "diverged" in csv_text
    assert all(r["diverged_why"] == "nan/inf" for r in sgd)


def test_tuned_rate_excludes_diverged_rates():
    """A sweep whose largest rate diverges picks among the finite ones; all diverged = failure."""
    rec = lambda lr, final, div: {  # noqa: E731
        "task": "t",
        "candidate": "sgd",
        "kind": "baseline",
        "tuned": True,
        "lr": lr,
        "seed": 0,
        "num_steps": 3,
        "diverged": div,
        "final_train_loss": final,
        "wall_s": 0.1,
        "train_loss": [None if div else 5.0, 4.0, final],
        "eval_steps": [0, 3],
        "eval_loss": [5.0, None if div else final],
    }
    s = ev.summarize([rec(0.1, 2.0, False), rec(1.0, 1.0, False), rec(10.0, None, True)])
    assert s.cells[("t", "sgd")].lr == 1.0 and s.cells[("t", "sgd")].lr_at_edge is False
    s = ev.summarize([rec(1.0, None, True), rec(10.0, None, True)])
    cell = s.cells[("t", "sgd")]
    assert cell.diverged and cell.lr is None and cell.num_diverged == 1


def test_report_when_the_reference_diverged_everywhere(tmp_path):
    """No speedup exists then: the cells say n/a and the report is still written."""

    def rec(cand, lr, curve, tuned):
        div = any(v is None for v in curve)
        return {
            "task": "t",
            "candidate": cand,
            "kind": "baseline",
            "tuned": tuned,
            "lr": lr,
            "seed": 0,
            "num_steps": 3,
            "diverged": div,
            "wall_s": 0.1,
            "train_loss": curve,
            "eval_steps": [0, 3],
            "eval_loss": [curve[0], curve[-1]],
        }

    recs = [
        rec("adam", 1.0, [5.0, None, None], True),
        rec("adam", 2.0, [5.0, 9.0, None], True),
        rec("sgd@0.1", 0.1, [5.0, 4.0, 3.0], False),
    ]
    s = ev.write_report(recs, str(tmp_path))
    assert s.cells[("t", "adam")].diverged and math.isnan(s.cells[("t", "sgd@0.1")].speedup)
    md = open(tmp_path / "summary.md").read()
    assert "diverged (every rate)" in md and "| t | n/a (diverged) | n/a |" in md
    assert "| t | diverged (every rate) | 3 |" in md
    assert s.cells[("t", "sgd@0.1")].final_train == 3.0


def test_resume_skips_finished_runs(toy_eval, tmp_path, monkeypatch):
    workdir, recs, _ = toy_eval
    again = str(tmp_path / "again")
    shutil.copytree(workdir, again)
    recs2, calls = _evaluate(again, monkeypatch)
    assert calls == [] and recs2 == recs
    # simulate an interruption during the last program: its records are missing, and the
    # line being written when killed is torn
    path = os.path.join(again, "results.jsonl")
    lines = open(path).read().splitlines()
    last = (TASKS[-1].name, "sgd@1000")
    kept = [x for x in lines if (json.loads(x)["task"], json.loads(x)["candidate"]) != last]
    assert len(kept) == len(lines) - SEEDS
    with open(path, "w") as f:
        f.write("\n".join(kept) + '\n{"task": "linr')
    recs3, calls = _evaluate(again, monkeypatch)
    assert calls == [(TASKS[-1].name, ("sgd@1000",))]
    strip = lambda rs: [{k: v for k, v in r.items() if "_s" not in k} for r in rs]  # noqa: E731
    assert strip(recs3) == strip(recs)


def test_learned_optimizer_candidate(tmp_path):
    import learned_opt

    lopt = learned_opt.MLPLOpt()
    path = learned_opt.save(str(tmp_path / "lopt0"), lopt, lopt.init_meta_params(jax.random.key(0)))
    workdir = str(tmp_path / "eval")
    recs = ev.run_suite(
        TASKS[:1],
        [f"mine={path}"],
        num_steps=20,
        num_seeds=2,
        eval_every=10,
        progress=False,
        reference="adam@3e-2",
        constant_reference=None,
        time_steps=0,
        workdir=workdir,
    )
    ev.write_report(recs, workdir, references=runner.reference_labels(["adam@3e-2", None]))
    mine = [r for r in recs if r["candidate"] == "mine"]
    assert len(mine) == 2 and all(r["kind"] == "learned" and r["lr"] is None for r in mine)
    assert all(not r["diverged"] for r in mine) and mine[0]["source"] == path
    # the reference was added since it was not requested, under its canonical label
    assert {r["candidate"] for r in recs} == {"adam@0.03", "mine"}
    md = open(os.path.join(workdir, "summary.md")).read()
    assert "Speedup over `adam@0.03`" in md
    cell = ev.summarize(recs, reference="adam@0.03").cells[(TASKS[0].name, "mine")]
    assert cell.speedup > 0 and cell.eval_speedup > 0 and cell.step_s is None


@pytest.mark.parametrize(
    "spec, message",
    [
        ("adamx", "unknown optimizer 'adamx'.*known baselines: adam, adamw"),
        ("adamx@1e-3", "unknown optimizer 'adamx'"),
        ("adam@fast", "bad learning rate 'fast'"),
        ("adam@-1", "must be positive"),
        ("adam@0", "must be positive"),
        ("adam@nan", "must be positive and finite"),
        ("adam@inf", "must be positive and finite"),
        ("./no/such/lopt", "learned optimizer file not found"),
        ("adam,adam", "duplicate optimizer labels"),
    ],
)
def test_bad_optimizer_names(spec, message):
    with pytest.raises(ev.EvalError, match=message):
        ev.parse_candidates(spec)


def test_bad_suite_and_settings():
    with pytest.raises(ev.EvalError, match="unknown suite 'nope'.*embedded_heldout"):
        ev.run_suite("nope", "adam")
    with pytest.raises(ev.EvalError, match="seeds"):
        ev.run_suite(TASKS, "adam", num_seeds=0)
    with pytest.raises(ValueError, match="grid"):
        ev.lr_grid(1e-1, 1e-4)


def test_no_retrace_across_candidates_of_one_architecture(tmp_path, monkeypatch, key):
    """Two learned optimizers of one architecture (other weights) on one task trace the task once:
    the second runs the first one's compiled programs (training and time per step)."""
    import learned_opt

    traces = []
    real_loss = LinearRegression.loss

    def counting_loss(self, params, k, batch):
        traces.append(1)  # runs while jax traces, never inside a compiled program
        return real_loss(self, params, k, batch)

    monkeypatch.setattr(LinearRegression, "loss", counting_loss)

    def save(name, lopt, seed):
        return learned_opt.save(str(tmp_path / name), lopt, lopt.init_meta_params(seed))

    mlp, other = learned_opt.MLPLOpt(hidden_sizes=(4,)), learned_opt.MLPLOpt(hidden_sizes=(8,))
    a, b = save("a", mlp, key), save("b", mlp, jax.random.fold_in(key, 1))
    c = save("c", other, key)

    def num_traces(specs):
        traces.clear()
        ev.run_suite(
            TASKS[:1],
            specs,
            num_steps=8,
            num_seeds=2,
            eval_every=4,
            progress=False,
            reference=None,
            constant_reference=None,
            time_steps=2,
        )
        return len(traces)

    alone = num_traces([f"a={a}"])
    assert alone > 0
    assert num_traces([f"a={a}", f"b={b}"]) == alone
    # ... while another architecture is another program (the count can tell)
    assert num_traces([f"a={a}", f"c={c}"]) == 2 * alone
