"""Where meta-training time goes: compiling, device compute and host work.

``CompileClock`` listens to jax's compilation events (tracing, lowering to MLIR, the XLA
compile, reads of the persistent compilation cache) and sums their seconds per thread, so that
compilation on the main thread (in the hot path) is told apart from compilation ahead of time
in a background thread. ``Split`` accumulates each outer step's wall time into

    compile  main-thread compilation, plus waiting for the compile-ahead thread
    device   waiting for the estimates and the meta-update (device compute; on CPU the cores)
    host     everything else: task draws, data placement, particle init dispatch, metrics,
             logging, checkpoints and exports

and reports the totals and fractions (``totals()``) for metrics.jsonl and the summary line.
"""

from __future__ import annotations

import collections
import threading

from jax import monitoring

COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
    "/jax/compilation_cache/cache_retrieval_time_sec",
)
BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


class CompileClock:
    """Seconds of jax compilation per thread and the number of XLA compiles (process-wide; one
    listener, registered on first use of :meth:`get`)."""

    _instance: CompileClock | None = None
    _create_lock = threading.Lock()

    def __init__(self):
        self._lock = threading.Lock()
        self.seconds: collections.Counter = collections.Counter()  # thread id -> seconds
        self.backend_compiles = 0

    @classmethod
    def get(cls) -> CompileClock:
        with cls._create_lock:
            if cls._instance is None:
                cls._instance = cls()
                monitoring.register_event_duration_secs_listener(cls._instance._on_event)
        return cls._instance

    def _on_event(self, event: str, duration: float, **_) -> None:
        if event not in COMPILE_EVENTS:
            return
        with self._lock:
            self.seconds[threading.get_ident()] += duration
            if event == BACKEND_COMPILE:
                self.backend_compiles += 1

    def thread_s(self, ident: int | None = None) -> float:
        """Compilation seconds of thread ``ident`` (default: the calling thread)."""
        with self._lock:
            return self.seconds[threading.get_ident() if ident is None else ident]

    def total_s(self) -> float:
        with self._lock:
            return float(sum(self.seconds.values()))


class Split:
    """Running totals of compile / device / host seconds over a run (see module docstring)."""

    def __init__(self):
        self.compile_s = self.device_s = self.host_s = 0.0
        self.compile_background_s = 0.0
        self.steps = 0

    def add(self, wall_s: float, compile_s: float, device_s: float, background_s: float = 0.0):
        compile_s = min(max(compile_s, 0.0), wall_s)
        # a step's device time is measured as its wall time less its thread's compile seconds,
        # which can overlap the window's start: never below 0, never past what is left
        device_s = min(max(device_s, 0.0), wall_s - compile_s)
        self.compile_s += compile_s
        self.device_s += device_s
        self.host_s += wall_s - compile_s - device_s
        self.compile_background_s += background_s
        self.steps += 1

    def add_host(self, seconds: float) -> None:
        self.host_s += seconds

    def totals(self) -> dict:
        wall = self.compile_s + self.device_s + self.host_s
        frac = (lambda x: round(x / wall, 4)) if wall > 0 else (lambda x: 0.0)
        hours = wall / 3600.0
        return dict(
            time_wall_s=round(wall, 2),
            time_compile_s=round(self.compile_s, 2),
            time_device_s=round(self.device_s, 2),
            time_host_s=round(self.host_s, 2),
            time_compile_frac=frac(self.compile_s),
            time_device_frac=frac(self.device_s),
            time_host_frac=frac(self.host_s),
            time_compile_background_s=round(self.compile_background_s, 2),
            outer_steps_per_hour=round(self.steps / hours, 1) if hours > 0 else 0.0,
        )

    def summary(self) -> str:
        t = self.totals()
        return (
            f"{self.steps} outer steps in {t['time_wall_s']:.0f} s "
            f"({t['outer_steps_per_hour']:.0f} steps/hour): compile {t['time_compile_s']:.0f} s "
            f"({100 * t['time_compile_frac']:.0f}%), device {t['time_device_s']:.0f} s "
            f"({100 * t['time_device_frac']:.0f}%), host {t['time_host_s']:.0f} s "
            f"({100 * t['time_host_frac']:.0f}%); compiled ahead in the background: "
            f"{t['time_compile_background_s']:.0f} s"
        )
