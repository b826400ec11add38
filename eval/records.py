"""Run records: one JSON object per training run, stored one per line in ``results.jsonl``.

A record holds the run's identity (task, candidate, rate, seed, number of steps), its curves
(``train_loss`` [T]: the minibatch loss before each update; ``eval_loss`` [E] at ``eval_steps``),
summary figures (``final_train_loss`` smoothed as in :mod:`eval.metrics`, ``final_eval_loss``),
divergence (``diverged``, ``diverged_at``: the first step with a NaN/inf loss) and timing
(``wall_s``: the program's run time divided by its number of runs; ``program_*``: the program's
own compile and run seconds). Non-finite losses are stored as ``null`` (strict JSON).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable

import numpy as np

from eval import metrics
from eval.baselines import Candidate

RESULTS_FILE = "results.jsonl"

log = logging.getLogger(__name__)


def eval_schedule(num_steps: int, eval_every: int) -> list[int]:
    """Steps after which held-out loss is measured: 0, K, 2K, ..., and always num_steps."""
    steps = list(range(0, num_steps + 1, eval_every))
    return steps if steps[-1] == num_steps else steps + [num_steps]


def _finite_or_none(values: Iterable[float]) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, np.float64)]


def make_record(
    task,
    candidate: Candidate,
    lr,
    seed,
    num_steps,
    eval_every,
    train,
    evals,
    timing: dict,
    smooth_fraction: float,
) -> dict:
    """One run as a JSON-ready dict. Non-finite losses are stored as null (strict JSON)."""
    window = metrics.smoothing_window(num_steps, smooth_fraction)
    first_bad = metrics.first_nonfinite(list(train) + list(evals))
    n_runs = timing["num_runs"]
    return {
        "task": task.name,
        "candidate": candidate.label,
        "kind": candidate.kind,
        "optimizer": candidate.optimizer,
        "tuned": candidate.tuned,
        "source": candidate.source,
        "lr": lr,
        "seed": int(seed),
        "num_steps": int(num_steps),
        "eval_every": int(eval_every),
        "diverged": first_bad is not None,
        "diverged_at": None if first_bad is None else min(first_bad, num_steps),
        "initial_loss": _finite_or_none([train[0]])[0],
        "final_train_loss": _finite_or_none([metrics.final_loss(train, window)])[0],
        "final_eval_loss": _finite_or_none([evals[-1]])[0],
        "loss_normalizer": float(getattr(task, "loss_normalizer", 1.0)),
        "train_loss": _finite_or_none(train),
        "eval_steps": eval_schedule(num_steps, eval_every),
        "eval_loss": _finite_or_none(evals),
        "wall_s": timing["run_s"] / n_runs,
        "program_run_s": timing["run_s"],
        "program_compile_s": timing["compile_s"],
        "program_num_runs": n_runs,
    }


def record_key(rec: dict) -> tuple:
    """Identity of a run for resuming: (task, candidate, lr, seed, num_steps)."""
    return (rec["task"], rec["candidate"], rec["lr"], rec["seed"], rec["num_steps"])


def read_records(path: str | os.PathLike) -> list[dict]:
    """All records of a results.jsonl (a torn last line from an interrupted write is skipped)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s:%d: skipping an unreadable (partially written?) line", path, i + 1)
    return out


def append_records(path, records: list[dict]) -> None:
    with open(path, "a") as f:
        for rec in records:
            f.write(json.dumps(rec, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
