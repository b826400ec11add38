"""The run directory: an exclusive lock, a writability probe, the run's history, JSON lines.

    with workdir.locked(path):      # one run per workdir; the error names the holder's pid/host
        ...

``lock`` holds an ``fcntl.flock`` on ``WORKDIR/lock`` for the life of the run (the kernel
releases it on any exit, SIGKILL included). In a multi-process run process 0 takes it and tells
the others whether it got it, so only the processes of one run share a workdir.
:func:`history` lists what a run leaves behind; a workdir holding any of it is never restarted
from step 0 without ``--restart_from_scratch`` (:func:`discard_history` then moves it aside,
nothing is deleted). :func:`read_jsonl` drops a torn last line (a SIGKILL or a full disk during
an append) and :func:`dumps_strict` writes strict JSON (NaN/inf become ``null``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import pathlib
import socket
import time

log = logging.getLogger(__name__)

LOCK_FILE = "lock"
DISCARDED = "discarded"
UNREADABLE_PREFIX = "unreadable-"  # an unreadable checkpoint set aside inside checkpoints/


class WorkdirError(ValueError):
    """The workdir cannot be used (a file, read-only, in use, or holding another run's history)."""


def prepare(workdir: str | os.PathLike) -> pathlib.Path:
    """Create ``workdir`` and check that files can be written in it; ``WorkdirError`` if not."""
    path = pathlib.Path(workdir)
    if path.exists() and not path.is_dir():
        raise WorkdirError(f"--workdir={str(path)!r} is a file, not a directory")
    probe = path / f".write-test-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise WorkdirError(
            f"--workdir={str(path)!r} is not writable ({e.strerror or e}); use a directory "
            "on a writable filesystem with free space"
        ) from None
    return path


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        info = json.loads(os.read(fd, 4096).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        info = {}
    since = info.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "?"
    return f"pid {info.get('pid', '?')} on host {info.get('host', '?')} (since {when})"


def lock(workdir: pathlib.Path) -> int:
    """Take the workdir's exclusive lock; returns its file descriptor (close it to release).

    Raises ``WorkdirError`` naming the holder's pid and host when another process has it.
    """
    path = workdir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise WorkdirError(
            f"{str(path)!r} cannot be opened as the workdir's lock file ({e.strerror or e}); "
            "it must be a plain file: remove what is there (no run is holding it), or use "
            "another --workdir"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _holder(fd)
        os.close(fd)
        raise WorkdirError(
            f"--workdir={str(workdir)!r} is in use by another run: {holder}; wait for it to "
            "end (or stop it), or use another --workdir"
        ) from None
    info = dict(pid=os.getpid(), host=socket.gethostname(), since=time.time())
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return fd


@contextlib.contextmanager
def locked(workdir: str | os.PathLike):
    """Hold the workdir lock (process 0 of a multi-process run) for the ``with`` block."""
    import jax

    path = prepare(workdir) if jax.process_index() == 0 else pathlib.Path(workdir)
    fd, error = None, None
    if jax.process_index() == 0:
        try:
            fd = lock(path)
        except WorkdirError as e:
            error = e
    if jax.process_count() > 1:
        import numpy as np
        from jax.experimental import multihost_utils

        got = multihost_utils.broadcast_one_to_all(np.int32(error is None))
        if not int(got) and error is None:
            error = WorkdirError(
                f"--workdir={str(path)!r}: process 0 of this run could not take the workdir's "
                "lock (another run holds it)"
            )
    if error is not None:
        raise error
    try:
        yield path
    finally:
        if fd is not None:
            os.close(fd)


def committed_checkpoints(workdir: pathlib.Path) -> list[int]:
    """Steps of the checkpoints in ``workdir/checkpoints`` that were committed: orbax writes a
    checkpoint into ``STEP.orbax-checkpoint-tmp...`` and renames it to ``STEP`` when it is whole,
    so a temporary directory (a write that was killed) is not one."""
    ckpt = workdir / "checkpoints"
    if not ckpt.is_dir():
        return []
    return sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit() and p.is_dir())


def _export_step(path: pathlib.Path) -> float:
    """The outer step an export in ``path`` was written at (``inf`` when it cannot be read, so
    that an unreadable export counts as history)."""
    try:
        meta = json.loads((path / "lopt.json").read_text()).get("metadata", {})
        return float(meta["outer_step"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return math.inf


def history(workdir: pathlib.Path, first_checkpoint: int = 1) -> list[str]:
    """What earlier runs left in ``workdir`` that a restart from step 0 would lose.

    That is committed checkpoints (readable or set aside in ``checkpoints_unreadable/``), and
    exports and metrics rows of steps after ``first_checkpoint``, the step of a run's first
    checkpoint (the first save comes before those steps' work, so they imply a committed
    checkpoint). A run killed before its first checkpoint was committed (inside its write
    included) left only what the same command redoes identically from step 0: not history.
    """
    found = []
    ckpt = workdir / "checkpoints"
    if committed_checkpoints(workdir) or (
        ckpt.is_dir() and any(p.name.startswith(UNREADABLE_PREFIX) for p in ckpt.iterdir())
    ):
        found.append("checkpoints/")
    if (workdir / "checkpoints_unreadable").exists():
        found.append("checkpoints_unreadable/")
    exports = workdir / "exports"
    snapshots = {"export": [workdir / "export"], "exports": sorted(exports.glob("*")) or [exports]}
    for name, paths in snapshots.items():
        if (workdir / name).exists() and any(_export_step(p) > first_checkpoint for p in paths):
            found.append(f"{name}/")
    metrics = workdir / "metrics.jsonl"
    if metrics.is_file() and any(_row_step(r) > first_checkpoint for r in read_jsonl(metrics)):
        found.append("metrics.jsonl")
    return found


def _row_step(row: dict) -> float:
    step = row.get("step", 0)
    return step if isinstance(step, int | float) else math.inf


def discard_history(
    workdir: pathlib.Path, restart_from_scratch: bool, first_checkpoint: int = 1
) -> None:
    """Before a run starts at step 0: refuse (``WorkdirError``) if ``workdir`` holds an earlier
    run's history, or, with ``restart_from_scratch``, move it to ``workdir/discarded/<time>``."""
    found = history(workdir, first_checkpoint)
    if not found:
        return
    if not restart_from_scratch:
        raise WorkdirError(
            f"--workdir={str(workdir)!r} holds an earlier run ({', '.join(found)}) but no "
            "checkpoint that can be resumed, so this run would start from step 0; nothing was "
            "changed. Pass --restart_from_scratch to move that history to "
            f"{DISCARDED}/ and start again, or use another --workdir"
        )
    dest = workdir / DISCARDED / time.strftime("%Y%m%d-%H%M%S")
    dest.mkdir(parents=True, exist_ok=True)
    for name in found:
        os.replace(workdir / name.rstrip("/"), dest / name.rstrip("/"))
    log.warning("--restart_from_scratch: moved %s to %s", ", ".join(found), dest)


def _strict(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_strict(v) for v in x]
    return x


def dumps_strict(obj) -> str:
    """``json.dumps`` with NaN/inf floats written as ``null`` (strict JSON, one line)."""
    return json.dumps(_strict(obj), allow_nan=False)


def read_jsonl(path: pathlib.Path) -> list[dict]:
    """The JSON objects of a JSON-lines file; unreadable (torn) lines are dropped and logged."""
    rows, torn = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            torn += 1
    if torn:
        log.warning("%s: dropped %d unreadable (torn) line(s)", path, torn)
    return rows
