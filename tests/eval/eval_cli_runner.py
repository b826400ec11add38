"""``lopt-eval`` as a subprocess of the tests (``python -m eval.cli``, JAX on CPU)."""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_eval_cli(*args, preexec_fn=None, timeout=300) -> subprocess.CompletedProcess:
    """Run ``lopt-eval ARGS`` from the repository root; returns the finished process."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    return subprocess.run(
        [sys.executable, "-m", "eval.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )
