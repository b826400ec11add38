"""Run records: one JSON object per training run, stored one per line in ``results.jsonl``.

A record holds the run's identity (task, candidate label, rate, seed, base seed, number of steps,
evaluation interval and the candidate's ``fingerprint``: a hash of a baseline's settings or of a
learned optimizer's settings and weights, see ``eval.baselines.Candidate``), its curves
(``train_loss`` [T]: the minibatch loss before each update; ``eval_loss`` [E] at ``eval_steps``),
summary figures (``final_train_loss`` smoothed as in :mod:`eval.metrics`, ``final_eval_loss``),
divergence (``diverged``, ``diverged_at``, ``diverged_why``: see ``metrics.divergence_step``) and
timing (``step_s``: seconds per training step of one un-batched run, measured separately;
``wall_s``: the vmapped program's run time divided by its number of runs; ``program_*``: the
program's own compile and run seconds). Non-finite losses are stored as ``null`` (strict JSON).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Iterable

import numpy as np

from eval import metrics
from eval.baselines import Candidate, EvalError

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
    base_seed: int = 0,
) -> dict:
    """One run as a JSON-ready dict. Non-finite losses are stored as null (strict JSON)."""
    window = metrics.smoothing_window(num_steps, smooth_fraction)
    l0 = float(evals[0]) if math.isfinite(float(evals[0])) else float(train[0])
    bad_at = metrics.divergence_step(train, l0, window, evals)
    why = None
    if bad_at is not None:
        why = (
            "nan/inf"
            if metrics.first_nonfinite(list(train) + list(evals)) is not None
            else (f"blow-up (final loss > {metrics.BLOWUP_FACTOR:g} x initial)")
        )
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
        "base_seed": int(base_seed),
        "num_steps": int(num_steps),
        "eval_every": int(eval_every),
        "fingerprint": candidate.fingerprint,
        "settings": candidate.settings,
        "diverged": bad_at is not None,
        "diverged_at": bad_at,
        "diverged_why": why,
        "initial_loss": _finite_or_none([train[0]])[0],
        "final_train_loss": _finite_or_none([metrics.final_loss(train, window)])[0],
        "final_eval_loss": _finite_or_none([evals[-1]])[0],
        "loss_normalizer": float(getattr(task, "loss_normalizer", 1.0)),
        "train_loss": _finite_or_none(train),
        "eval_steps": eval_schedule(num_steps, eval_every),
        "eval_loss": _finite_or_none(evals),
        "step_s": timing.get("step_s"),
        "wall_s": timing["run_s"] / n_runs,
        "program_run_s": timing["run_s"],
        "program_compile_s": timing["compile_s"],
        "program_num_runs": n_runs,
    }


KEY_FIELDS = (
    "task",
    "candidate",
    "lr",
    "seed",
    "base_seed",
    "num_steps",
    "eval_every",
    "fingerprint",
)


def record_key(rec: dict) -> tuple:
    """Identity of a run, by content: the fields of ``KEY_FIELDS``. A record written before the
    content key existed lacks ``fingerprint`` (None here), so it never matches a requested run."""
    return tuple(rec.get(k) for k in KEY_FIELDS)


def run_key(task: str, candidate: Candidate, lr, seed, base_seed, num_steps, eval_every) -> tuple:
    """The :func:`record_key` a run of ``candidate`` with these settings will have."""
    values = dict(
        task=task,
        candidate=candidate.label,
        lr=lr,
        seed=int(seed),
        base_seed=int(base_seed),
        num_steps=int(num_steps),
        eval_every=int(eval_every),
        fingerprint=candidate.fingerprint,
    )
    return tuple(values[k] for k in KEY_FIELDS)


def read_records(path: str | os.PathLike) -> list[dict]:
    """All records of a results.jsonl; a line that is not UTF-8 JSON (a torn line from an
    interrupted write, stray bytes) is skipped with a warning naming it."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line.decode()))
            except ValueError:  # JSONDecodeError and UnicodeDecodeError
                log.warning("%s:%d: skipping an unreadable (partially written?) line", path, i + 1)
    return out


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write may be short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def append_records(path: str | os.PathLike, records: list[dict]) -> None:
    """Append ``records`` to ``path``, one JSON line each, all or nothing, and fsync.

    Args:
      path: the results.jsonl file (created if missing).
      records: JSON-ready dicts (strict JSON: no NaN/inf).

    Raises:
      EvalError: naming ``path`` and the OS error (a full disk, a file-size limit) when the
        lines cannot be written; the file is then cut back to its size before the call.
    """
    data = "".join(json.dumps(rec, allow_nan=False) + "\n" for rec in records).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as e:
            with contextlib.suppress(OSError):  # a later run drops a torn tail (eval.checks)
                os.ftruncate(fd, size)
            raise EvalError(
                f"cannot append {len(records)} run record(s) to {path} ({e.strerror or e}); "
                "the runs recorded before are kept: make room, and the same command resumes "
                "from them"
            ) from None
    finally:
        os.close(fd)
