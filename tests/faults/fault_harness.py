"""Running fault cases: small ``lopt-meta-train`` / ``lopt-eval`` subprocesses on a tiny quickstart.

A case is a function ``(ctx) -> Outcome``; the table in ``cases.py`` pairs each with the exit
code and the one-line message it must give and a check that nothing was lost. All cases run
concurrently (a few at a time) once per session, so the suite costs about the time of its
slowest few processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
STEPS = 6  # outer steps of the reference run; the "partial" run stops at 4
TINY = [
    "--config=quickstart",
    "--noprogress",
    "--config.num_groups=1",
    "--config.pairs_per_group=4",
    "--config.truncation_length=10",
    "--config.episode.min_length=20",
    "--config.episode.max_length=60",
    "--config.group_resample_every=0",
    "--config.checkpoint_every=2",
    "--config.eval.num_tasks=0",
]


@dataclasses.dataclass
class Outcome:
    code: int | None  # None: did not exit in time (killed)
    stderr: str
    seconds: float
    notes: dict = dataclasses.field(default_factory=dict)  # what the case measured

    @property
    def last_line(self) -> str:
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else ""


@dataclasses.dataclass
class Ctx:
    tmp: pathlib.Path  # a fresh directory for this case
    cache: pathlib.Path  # shared XLA compilation cache
    full: pathlib.Path  # workdir of an uninterrupted STEPS-step run
    partial: pathlib.Path  # workdir of the same run stopped after 4 steps

    def workdir_copy(self, src: pathlib.Path, name: str = "w") -> pathlib.Path:
        dst = self.tmp / name
        shutil.copytree(src, dst)
        return dst


KILL_POINTS = pathlib.Path(__file__).resolve().parent / "kill_points"


def env(kill_at: str = "") -> dict:
    """The subprocesses' environment; ``kill_at`` (``PHASE:STEP,...``) loads the test-only
    ``kill_points/sitecustomize.py``, which SIGKILLs the process inside that checkpoint write."""
    e = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    e.pop("XLA_FLAGS", None)
    e.pop("LOPT_KILL_AT", None)
    if kill_at:
        e.update(PYTHONPATH=f"{KILL_POINTS}{os.pathsep}{REPO}", LOPT_KILL_AT=kill_at)
    return e


def meta_train_argv(ctx: Ctx, workdir, *extra, steps: int = STEPS) -> list[str]:
    return [
        sys.executable,
        "-m",
        "meta_train.cli",
        *TINY,
        f"--workdir={workdir}",
        f"--compilation_cache_dir={ctx.cache}",
        f"--config.outer_steps={steps}",
        *extra,
    ]


def run(argv: list[str], timeout: float = 240, kill_at: str = "", **kw) -> Outcome:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            argv, env=env(kill_at), cwd=REPO, capture_output=True, text=True, timeout=timeout, **kw
        )
        return Outcome(p.returncode, p.stderr, time.perf_counter() - t0)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        return Outcome(None, err or "", time.perf_counter() - t0)


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        argv, env=env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen, t0: float, timeout: float = 120) -> Outcome:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return Outcome(None, err, time.perf_counter() - t0)
    return Outcome(proc.returncode, err, time.perf_counter() - t0)


def wait_for(pred, proc: subprocess.Popen | None = None, timeout: float = 180) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def metrics_rows(workdir) -> list[dict]:
    """The per-step rows of metrics.jsonl (those with a loss; strict JSON parse)."""
    p = pathlib.Path(workdir) / "metrics.jsonl"
    if not p.exists():
        return []
    rows = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
    return [r for r in rows if "loss" in r]


def steps_logged(workdir) -> int:
    with contextlib.suppress(ValueError, OSError):
        return max((r.get("step", 0) for r in metrics_rows(workdir)), default=0)
    return 0


def checkpoints(workdir) -> set[int]:
    d = pathlib.Path(workdir) / "checkpoints"
    return {int(p.name) for p in d.iterdir() if p.name.isdigit()} if d.is_dir() else set()


def theta(path) -> np.ndarray:
    """Flat theta of a saved optimizer directory, read without our loader (raw msgpack)."""
    from flax import serialization

    state = serialization.msgpack_restore((pathlib.Path(path) / "theta.msgpack").read_bytes())
    import jax

    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(state)])


def flip_bytes(path: pathlib.Path, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, min(mid + n, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def state_data_files(ckpt_dir: pathlib.Path) -> list[pathlib.Path]:
    """The array data files of one orbax checkpoint's ``state`` item, largest first."""
    files = [
        p
        for p in (ckpt_dir / "state").rglob("*")
        if p.is_file() and "/d/" in str(p).replace(os.sep, "/")
    ]
    return sorted(files, key=lambda p: p.stat().st_size, reverse=True)


@contextlib.contextmanager
def tmpfs(path: pathlib.Path, size: str, read_only: bool = False):
    """A small tmpfs at ``path`` (needs root); yields False when it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    ok = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def grow_tmpfs(path: pathlib.Path, size: str) -> None:
    """Give the tmpfs mounted at ``path`` (see :func:`tmpfs`) ``size`` bytes: space freed."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


def sigterm(proc: subprocess.Popen) -> float:
    proc.send_signal(signal.SIGTERM)
    return time.perf_counter()
