"""``lopt-eval`` end to end on real tasks of the embedded suite, and its error messages."""

import csv
import json
import os

import numpy as np
import pytest
from eval_cli_runner import run_eval_cli

from eval import metrics

TASKS = "quadratic_d64_k1000_n0.1_b32,linreg_d64_n0.3_b32"


def test_short_real_evaluation(tmp_path):
    workdir = str(tmp_path / "eval")
    steps, seeds, rates = 100, 2, [1e-3, 1e-2, 1e-1]
    proc = run_eval_cli(
        "--suite=embedded_heldout",
        f"--tasks={TASKS}",
        "--optimizers=adam,sgd",
        "--reference=adam",
        f"--lrs={','.join(map(str, rates))}",
        f"--steps={steps}",
        f"--seeds={seeds}",
        "--eval_every=25",
        "--paired_with=adam",
        f"--workdir={workdir}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ["results.jsonl", "summary.md", "summary.csv", "curves.png", "speedups.png"]:
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    with open(os.path.join(workdir, "results.jsonl")) as f:
        recs = [json.loads(line) for line in f]
    names = TASKS.split(",")
    assert {r["task"] for r in recs} == set(names)
    assert len(recs) == len(names) * 2 * len(rates) * seeds
    with open(os.path.join(workdir, "summary.csv"), newline="") as f:
        rows = {row["task"]: row for row in csv.DictReader(f)}
    with open(os.path.join(workdir, "summary.json")) as f:
        paired = json.load(f)["paired"]
    window = metrics.smoothing_window(steps, 0.05)
    for task in names:
        best = {}
        for cand in ("adam", "sgd"):
            runs = [r for r in recs if r["task"] == task and r["candidate"] == cand]
            finals = {
                lr: np.mean([r["final_train_loss"] for r in runs if r["lr"] == lr])
                for lr in rates
                if not any(r["diverged"] for r in runs if r["lr"] == lr)
            }
            best[cand] = min(finals, key=finals.get)
            assert float(rows[task][f"{cand}:lr"]) == best[cand]
            assert float(rows[task][f"{cand}:final_train"]) == pytest.approx(finals[best[cand]])
        curve = {
            c: np.mean(
                [
                    r["train_loss"]
                    for r in recs
                    if r["task"] == task and r["candidate"] == c and r["lr"] == best[c]
                ],
                axis=0,
            )
            for c in ("adam", "sgd")
        }
        want = metrics.speedup(curve["sgd"], curve["adam"], window)
        assert float(rows[task]["sgd:speedup"]) == pytest.approx(want)
        # seed by seed against adam: the differences of the two chosen rates' runs
        by_seed = {
            c: {
                r["seed"]: np.asarray(r["train_loss"])
                for r in recs
                if r["task"] == task and r["candidate"] == c and r["lr"] == best[c]
            }
            for c in ("adam", "sgd")
        }
        d_final = [
            metrics.final_loss(by_seed["sgd"][s], window)
            - metrics.final_loss(by_seed["adam"][s], window)
            for s in range(seeds)
        ]
        d_speed = [
            metrics.speedup(by_seed["sgd"][s], curve["adam"], window)
            - metrics.speedup(by_seed["adam"][s], curve["adam"], window)
            for s in range(seeds)
        ]
        (got,) = [p for p in paired if p["task"] == task and p["candidate"] == "sgd"]
        assert got["seeds"] == seeds
        assert got["final_diff"] == pytest.approx(np.mean(d_final))
        assert got["final_se"] == pytest.approx(np.std(d_final, ddof=1) / np.sqrt(seeds))
        assert got["speedup_diff"] == pytest.approx(np.mean(d_speed))
    md = open(os.path.join(workdir, "summary.md")).read()
    assert all(t in md for t in names) and "`sgd`" in md
    assert "Speedup over tuned `adam`" in proc.stdout
    assert "## Paired by seed against `adam`" in md


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lrs=1e-3,-0.1"], "learning rate must be positive and finite, got '-0.1' in --lrs"),
        (["--lrs=0"], "learning rate must be positive and finite, got '0' in --lrs"),
        (["--lrs=nan"], "learning rate must be positive and finite, got 'nan' in --lrs"),
        (["--lrs=1e-3,inf"], "learning rate must be positive and finite, got 'inf' in --lrs"),
        (["--lrs=fast"], "bad learning rate 'fast' in --lrs"),
        (["--optimizers=adam@-1"], "learning rate must be positive and finite"),
        (["--lr_max=inf"], "bad learning-rate grid"),
        (["--optimizers=adam,nosuchopt"], "unknown optimizer 'nosuchopt'"),
        (["--optimizers=/tmp/no/such/lopt"], "learned optimizer file not found"),
        (["--suite=nosuchsuite"], "unknown suite 'nosuchsuite'; known suites: embedded_heldout"),
        (["--tasks=nosuchtask"], "unknown task 'nosuchtask'; known tasks: "),
        (["--steps=-5"], "--steps must be >= 0, got -5"),
        (["--eval_every=-1"], "--eval_every must be >= 0, got -1"),
        (["--time_steps=-2"], "--time_steps must be >= 0, got -2"),
        (
            ["--paired_with=nosuch"],
            "--paired_with='nosuch' is not a candidate of this evaluation; candidates: ",
        ),
    ],
)
def test_cli_errors_are_clear(tmp_path, args, message):
    proc = run_eval_cli(f"--workdir={tmp_path}", *args, timeout=120)
    assert proc.returncode == 2
    assert f"lopt-eval: error: {message}" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
