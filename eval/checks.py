"""Up-front checks of ``lopt-eval``'s arguments and workdir: one-line errors before any training.

``lopt-eval`` checks its arguments first (nothing is written when one is refused), then
``locked(workdir)`` creates the workdir and holds its lock (``meta_train.workdir.lock``: a
second run on the same workdir is refused naming the holder's pid and host), and only then
``check_results`` touches ``results.jsonl``. ``preflight(workdir, smooth)`` is the whole check
without the lock. The refusals (``EvalError``, exit 2): a workdir that is a file, not writable or
in use, a ``--smooth`` outside [0, 1), and a ``results.jsonl`` line of another schema (it names
the file, the line and the missing fields). A torn last line (an interrupted append: no final
newline) is dropped, with a warning, so the next record starts on a line of its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pathlib
from collections.abc import Iterator

from eval.baselines import EvalError
from eval.records import RESULTS_FILE

log = logging.getLogger(__name__)

# what every record must hold for resuming and for the report (eval.records.make_record)
REQUIRED = {"task": str, "candidate": str, "seed": int, "num_steps": int, "train_loss": list}


def check_workdir(workdir: str) -> pathlib.Path:
    """``meta_train.workdir.prepare`` (create it, refuse a file or a read-only directory) with
    its error as an ``EvalError``."""
    from meta_train import workdir as workdir_lib

    try:
        return workdir_lib.prepare(workdir)
    except workdir_lib.WorkdirError as e:
        raise EvalError(str(e)) from None


@contextlib.contextmanager
def locked(workdir: str) -> Iterator[pathlib.Path]:
    """Create ``workdir`` (:func:`check_workdir`) and hold its lock for the ``with`` block.

    Args:
      workdir: the ``--workdir`` of this run.

    Yields:
      The workdir's path. Raises ``EvalError`` when another process holds the lock (naming its
      pid and host) or the lock file cannot be opened.
    """
    from meta_train import workdir as workdir_lib

    path = check_workdir(workdir)
    try:
        fd = workdir_lib.lock(path)
    except workdir_lib.WorkdirError as e:
        raise EvalError(str(e)) from None
    except OSError as e:
        raise EvalError(
            f"--workdir={workdir!r}: cannot open its lock file {workdir_lib.LOCK_FILE!r} "
            f"({e.strerror or e})"
        ) from None
    try:
        yield path
    finally:
        os.close(fd)


def check_report_only(workdir: str) -> None:
    """Refuse ``--report_only`` (``EvalError``) when there is no ``WORKDIR/results.jsonl``."""
    path = os.path.join(workdir, RESULTS_FILE)
    if not os.path.isfile(path):
        raise EvalError(f"--report_only: no {path} to rebuild the report from")


def check_smooth(smooth: float) -> None:
    """Refuse (``EvalError``) a ``--smooth`` that is not a fraction in [0, 1)."""
    if not (math.isfinite(smooth) and 0 <= smooth < 1):
        raise EvalError(f"--smooth={smooth:g}: must be a fraction of the run length in [0, 1)")


def repair_torn_tail(path: pathlib.Path) -> None:
    """Make ``path`` end with a newline: drop a torn (unparsable) last line, or end a complete
    one."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    start = data.rfind(b"\n") + 1
    try:
        json.loads(data[start:])
        complete = True
    except ValueError:
        complete = False
    with open(path, "r+b") as f:
        if complete:
            f.seek(0, os.SEEK_END)
            f.write(b"\n")
        else:
            f.truncate(start)
            log.warning("%s: dropped a torn last line (%d bytes)", path, len(data) - start)


def check_schema(path: pathlib.Path) -> None:
    """Raise ``EvalError`` naming the first line that is a JSON value but not a run record."""
    if not path.is_file():
        return
    with open(path, "rb") as f:
        for i, line in enumerate(f, 1):
            try:
                rec = json.loads(line.decode())
            except ValueError:  # UnicodeDecodeError included
                continue  # unreadable lines are skipped by eval.records.read_records
            missing = (
                sorted(k for k, t in REQUIRED.items() if not isinstance(rec.get(k), t))
                if isinstance(rec, dict)
                else sorted(REQUIRED)
            )
            if missing:
                raise EvalError(
                    f"{path}:{i}: not a run record of lopt-eval (missing or wrong: "
                    f"{', '.join(missing)}); use another --workdir or remove that line"
                )


def check_results(workdir: pathlib.Path) -> None:
    """Drop a torn last line of ``WORKDIR/results.jsonl`` and check its schema (hold the lock)."""
    results = workdir / RESULTS_FILE
    repair_torn_tail(results)
    check_schema(results)


def preflight(workdir: str, smooth: float) -> None:
    """All of the above but the lock, before anything is trained."""
    check_smooth(smooth)
    check_results(check_workdir(workdir))
