"""XLA:CPU settings that speed up meta-training; applied by the command-line entry points.

Call :func:`apply_cpu_speed_flags` before JAX initialises its backend (``lopt-meta-train``,
``lopt-quickstart`` and the benchmarks do).
"""

from __future__ import annotations

import os

# XLA:CPU's older (non-thunk) runtime runs the many small ops of a vmapped inner loop ~1.5x
# faster here (benchmarks/meta_train_throughput.py); it only affects the CPU backend. XLA marks
# the flag deprecated and aborts on unknown flags, so it is only applied on the JAX versions where
# it was measured (<= 0.10).
CPU_SPEED_FLAGS = ("--xla_cpu_use_thunk_runtime=false",)


def apply_cpu_speed_flags() -> None:
    """Add :data:`CPU_SPEED_FLAGS` to ``XLA_FLAGS`` (unless set there already); call before JAX
    initialises its backend. ``LOPT_NO_XLA_TUNING=1`` turns this off."""
    from jax import version

    if os.environ.get("LOPT_NO_XLA_TUNING") or version.__version_info__[:2] > (0, 10):
        return
    flags_now = os.environ.get("XLA_FLAGS", "")
    extra = [f for f in CPU_SPEED_FLAGS if f.split("=")[0] not in flags_now]
    if extra:
        os.environ["XLA_FLAGS"] = " ".join([flags_now, *extra]).strip()
