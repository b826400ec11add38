"""An optional fused XLA:CPU kernel for MLPLOpt's whole update of one tensor (an XLA FFI call).

Opt-in: ``MLPLOpt(cpu_kernel=True)``. Nothing else uses or knows of it, and nothing is compiled
unless an optimizer that asks for it is first traced on a process whose default backend is CPU
(creating the optimizer or reading its settings never compiles). ``LOPT_CPU_KERNEL=0`` turns it
off everywhere, whatever the setting. It is a second implementation of the rule, kept only as an
execution choice: ``to_config`` leaves ``cpu_kernel`` out (a saved optimizer, its description and
an ``init_from`` check are the same with it on or off), and the rule is ``learned_opt.mlp``'s XLA
version, which the kernel must match (``tests/learned_opt/test_cpu_kernel.py``: against the rule
in float64 and against XLA's version, its gradient, non-finite values, batching).

What it does. XLA runs MLPLOpt's update of a tensor (the moments, the features, their RMS
normalisers, the per-parameter MLP) as about 60 small loops, reductions and batched matrix
products per tensor and step, whose fixed costs dominate on the small tensors of meta-training,
and whose ``(members, n, H)`` activations leave the L2 cache. The kernel in ``cpu_kernel.cc``
makes three passes over the tensor: the Adafactor factors (rank >= 2), the moments and the
features' sums of squares, then the MLP on tiles of parameters (64 with AVX-512, else 32) that go
through the features and every layer in L1::

    h_0 = relu(b_in + x W_in),  h_1 = relu(b_1 + h_0 W_1),  (d, m) = b_out + h_1 W_2 + x W_skip
    update = -(d exp(m exp_mult)) s          (W_in, W_skip: the normaliser folded in)

Building. On first use it is compiled from source (``$CXX``, default ``g++``, with ``-O3
-march=native``) into ``$LOPT_KERNEL_CACHE`` (default ``~/.cache/learned_opt/kernels``), keyed by
the source, the compiler, jaxlib and the CPU's flags, and registered with ``jax.ffi``. Where it
cannot be built (no compiler, no jaxlib headers) one warning names the reason and MLPLOpt keeps
XLA's version; likewise (one warning) for settings it does not cover (:data:`SUPPORTED`).

Where it runs: only in a program that runs on one device. The custom call has no partitioning
rule, so in a program partitioned over several devices (automatic GSPMD/Shardy sharding, e.g.
``lopt-meta-train``'s particles split over CPU devices) XLA would gather every member's operands
onto every device. Rather than have callers wrap their programs in a ``shard_map`` for this
optimizer's sake (what the estimators once did), the choice is made where it is known, when the
program is lowered: :func:`one_device_program` is a constant of the lowered program, 1 for a
program on one device (or the body of a ``shard_map`` manual over every mesh axis, or ``pmap``),
0 otherwise, and MLPLOpt takes the kernel on 1 and XLA's version on 0 (a ``lax.switch`` on a
constant, which XLA folds away: the program of several devices holds neither the call nor a
gather for it). GPU and TPU never use it (``jax.lax.platform_dependent`` picks XLA's version).
A ``custom_partitioning`` rule would let it run per device under automatic sharding, but jax has
no batching rule for ``custom_partitioning`` (the members are a ``vmap``), and its Python
callback keeps programs out of the persistent compilation cache.

Derivatives: MLPLOpt wraps the call in a ``jax.custom_jvp`` whose rule is XLA's version's JVP, so
``jax.grad`` through an inner loop (TBPTT, the exact-gradient tests) works.

Decision: kept, as an opt-in extra, by measurement. ``benchmarks/meta_train_throughput.py``
(reference config, ``--repeats 3 --calls 5``, on and off interleaved) on a 2-core AMD EPYC with
AVX2 and no AVX-512, shared with other jobs (load 4-7), so the figures are rough: with the
kernel, 1 device ran 1.4-2.3x XLA's version on 1 device and 1.2-2.8x XLA's on 2 devices; on 2
devices the kernel is not used and the figure is XLA's. The kernel as it was before, with
64-byte vectors on every CPU, ran at 0.15-0.2x XLA's version on that machine, on 1 device and
per device in the estimators' old ``shard_map`` alike (GCC expands a vector wider than the
target's piecewise, through memory); its vectors, tile and register block are now sized to the
target. Not the default: it is a second implementation of the rule, needs a compiler, its speed
depends on the CPU (as the AVX2 case showed), it serves only programs of one device, and not
gradients (through its custom JVP, ``jax.grad`` runs XLA's version).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import platform
import subprocess
import tempfile
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import mlir

TARGET = "lopt_step"
SWITCH_ENV = "LOPT_CPU_KERNEL"  # "0": never use the kernel, whatever MLPLOpt's setting
CACHE_ENV = "LOPT_KERNEL_CACHE"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu_kernel.cc")
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-std=c++17", "-shared", "-fPIC", "-w")
# (momenta K, Adafactor, hidden width H) instantiated in cpu_kernel.cc's Select (two hidden
# layers of H)
SUPPORTED = frozenset(
    {(4, True, 32), (5, True, 32), (6, True, 32), (4, False, 32), (5, False, 32), (6, False, 32)}
    | {(5, True, 16), (5, True, 64), (5, False, 16), (5, False, 64)}
)

_lock = threading.Lock()
_status: dict = {}  # "ok": bool, "reason": str once a build was attempted


def _compiler() -> str:
    return os.environ.get("CXX", "g++")


def cpu_signature() -> str:
    """The machine and its CPU flags (a kernel built with ``-march=native`` runs only there, and
    XLA:CPU code compiled for them may round differently elsewhere)."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()} {flags.strip()}"


def library_path() -> str:
    """Where the built kernel for this source, compiler, jaxlib and CPU lives (or will)."""
    import jaxlib

    version = subprocess.run(
        [_compiler(), "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    with open(SOURCE, "rb") as f:
        key = hashlib.sha256(f.read())
    for part in (version, " ".join(FLAGS), jaxlib.__version__, cpu_signature()):
        key.update(part.encode())
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "learned_opt", "kernels"
    )
    return os.path.join(root, f"lopt_step_{key.hexdigest()[:16]}.so")


def build() -> str:
    """Compile the kernel unless it is cached; returns the shared library's path.

    Raises RuntimeError (one line) when the compiler or the headers are missing or fail."""
    try:
        path = library_path()
    except (OSError, subprocess.CalledProcessError) as e:
        raise RuntimeError(f"no C++ compiler {_compiler()!r} ({e})") from None
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(path))
    os.close(fd)
    cmd = [_compiler(), *FLAGS, f"-I{jax.ffi.include_dir()}", "-o", tmp, SOURCE]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        os.unlink(tmp)
        lines = done.stderr.strip().splitlines() or ["no output"]
        first = next((line for line in lines if "error" in line), lines[0])
        raise RuntimeError(f"{' '.join(cmd[:2])} ... failed: {first}")
    os.replace(tmp, path)  # atomic: concurrent builders (test workers) each write their own tmp
    return path


def enabled() -> bool:
    """False where ``LOPT_CPU_KERNEL=0`` turns the kernel off (checked without building)."""
    return os.environ.get(SWITCH_ENV, "1") != "0"


def available() -> bool:
    """Whether the kernel is built and registered (builds it on the first call).

    False, with one logged warning giving the reason, where it cannot be built; False without
    building when ``LOPT_CPU_KERNEL=0``."""
    if not enabled():
        return False
    with _lock:
        if "ok" not in _status:
            try:
                library = ctypes.cdll.LoadLibrary(build())
                jax.ffi.register_ffi_target(
                    TARGET, jax.ffi.pycapsule(library.LoptStep), platform="cpu"
                )
                _status.update(ok=True, reason="")
            except (RuntimeError, OSError, AttributeError) as e:
                _status.update(ok=False, reason=str(e))
                logging.warning(
                    "learned_opt: the fused CPU kernel is not available (%s); MLPLOpt uses "
                    "XLA's version instead (slower on CPU)",
                    e,
                )
        return _status["ok"]


def covers(num_momenta: int, adafactor: bool, hidden_sizes: tuple) -> bool:
    """Whether the kernel covers these MLPLOpt settings (two equal hidden layers, a combination
    in :data:`SUPPORTED`); builds nothing."""
    return (
        len(hidden_sizes) == 2
        and hidden_sizes[0] == hidden_sizes[1]
        and (num_momenta, bool(adafactor), hidden_sizes[0]) in SUPPORTED
    )


_uncovered_warned: set = set()


def usable(num_momenta: int, adafactor: bool, hidden_sizes: tuple) -> bool:
    """Whether an MLPLOpt with ``cpu_kernel=True`` and these settings may call the kernel now:
    not turned off, jax's default backend is CPU, the settings covered (else one warning per
    settings) and the kernel built (building it on the first call: the one place that does)."""
    if not enabled() or jax.default_backend() != "cpu":
        return False
    if not covers(num_momenta, adafactor, hidden_sizes):
        settings = (num_momenta, bool(adafactor), tuple(hidden_sizes))
        if settings not in _uncovered_warned:
            _uncovered_warned.add(settings)
            logging.warning(
                "learned_opt: MLPLOpt(cpu_kernel=True) with %d momenta, adafactor=%s, "
                "hidden_sizes=%s: the fused CPU kernel covers only %s (momenta, adafactor, "
                "hidden width of two equal layers); XLA's version is used",
                *settings,
                sorted(SUPPORTED),
            )
        return False
    return available()


# ---------------------------------------------------------------- one device or several
def _devices_of_program(ctx) -> int | None:
    """Devices one instance of the program being lowered spans (None: not known)."""
    axis = getattr(ctx.module_context, "axis_context", None)
    if isinstance(getattr(axis, "num_devices", None), int):  # jit: ShardingContext
        return axis.num_devices
    mesh, manual = getattr(axis, "mesh", None), getattr(axis, "manual_axes", None)
    if mesh is not None and manual is not None:  # inside shard_map: SPMDAxisContext
        return math.prod(n for name, n in mesh.shape.items() if name not in manual)
    if type(axis).__name__ == "ReplicaAxisContext":  # pmap: a program per device
        return 1
    return None


def _one_device_lowering(ctx):
    return [mlir.ir_constant(np.int32(_devices_of_program(ctx) == 1))]


_one_device_p = Primitive("lopt_one_device_program")
_one_device_p.def_abstract_eval(lambda: jax.core.ShapedArray((), np.int32))
# op by op (no jit), every operation is its own program on its operands' device
_one_device_p.def_impl(lambda: np.int32(1))
mlir.register_lowering(_one_device_p, _one_device_lowering)


def one_device_program() -> jax.Array:
    """An int32 scalar fixed when the program is lowered: 1 if the program runs on one device
    (a ``jit`` over one device, the body of a ``shard_map`` manual over every mesh axis of more
    than one device, a ``pmap``), 0 otherwise (a program partitioned over several devices, or a
    context jax does not describe as above). ``lax.switch(one_device_program(), [several,
    one])`` is folded by XLA to the branch it picks."""
    return _one_device_p.bind()


def step(operands, *, decays, rms_decay, adafactor_decay, adafactor, mid, exp_mult, factored_dims):
    """One call of the kernel (CPU only; call :func:`usable` first).

    operands: float32 ``g (n,), p (n,), m (n, K), v (n,), row (L R,) or (1,), col (L C,) or (1,),
    s (), W_in (F, H), b_in (H,), W_1 (H, H), b_1 (H,), W_2 (H, 2), W_skip (F, 2), b_out (2,)``
    (``cpu_kernel.cc`` gives the rule); ``factored_dims``: ``(R, C)`` of the tensor's
    ``(L, R, C)`` view where Adafactor's factored moment applies, else ``(0, 0)``. Returns
    ``(update (n,), m, v, row, col)``. The constants ``1 - b`` are given to the kernel as XLA's
    version computes them (float32 for the momenta, float64 then rounded for the others), so
    both round alike. Under ``vmap`` every operand gains the batch dimensions
    (``vmap_method="broadcast_all"``), and the members are shared with XLA's intra-op threads
    (1.33x on one device).
    """
    decays32 = np.asarray(decays, np.float32)
    g, _, m, v, row, col = operands[:6]  # the results have these operands' shapes
    call = jax.ffi.ffi_call(
        TARGET,
        [jax.ShapeDtypeStruct(jnp.shape(x), jnp.float32) for x in (g, m, v, row, col)],
        vmap_method="broadcast_all",
    )
    rows, cols = factored_dims
    return call(
        *operands,
        decays=decays32,
        complements=np.float32(1.0) - decays32,
        rms_decay=np.float32(rms_decay),
        rms_complement=np.float32(1.0 - rms_decay),
        ada_decay=np.float32(adafactor_decay),
        ada_complement=np.float32(1.0 - adafactor_decay),
        exp_mult=np.float32(exp_mult),
        mid=np.int64(mid),
        adafactor=np.int64(bool(adafactor)),
        rows=np.int64(rows),
        cols=np.int64(cols),
        share_threads=np.int64(1),
    )
