"""MLPLOpt's whole update of one tensor as one fused XLA:CPU kernel (an XLA FFI custom call).

On CPU, XLA runs MLPLOpt's update of a tensor (``learned_opt.mlp``: the moments, the features,
their RMS normalisers, the per-parameter MLP) as about 60 small loops, reductions and batched
matrix products per tensor and step, whose fixed costs dominate on the small tensors of
meta-training, and whose ``(members, n, H)`` activations leave the L2 cache. The kernel in
``cpu_kernel.cc`` makes three passes over the tensor: the Adafactor factors (rank >= 2), the
moments and the features' sums of squares, then the MLP on tiles of 64 parameters that go through
the features and every layer in L1::

    h_0 = relu(b_in + x W_in),  h_1 = relu(b_1 + h_0 W_1),  (d, m) = b_out + h_1 W_2 + x W_skip
    update = -(d exp(m exp_mult)) s          (W_in, W_skip: the normaliser folded in)

It is compiled from source on first use (``$CXX``, default ``g++``, with ``-O3 -march=native``)
into ``$LOPT_KERNEL_CACHE`` (default ``~/.cache/learned_opt/kernels``), keyed by the source, the
compiler, jaxlib and the CPU's flags, and registered with ``jax.ffi``. Where it cannot be built
(no compiler, no jaxlib headers) one warning names the reason and MLPLOpt keeps XLA's version;
``LOPT_CPU_KERNEL=0`` turns the kernel off. GPU and TPU never use it (``jax.lax.platform_dependent``
picks XLA's version there). The two agree to float32 rounding
(``tests/learned_opt/test_cpu_kernel.py``).

Derivatives: MLPLOpt wraps the call in a ``jax.custom_jvp`` whose tangent is XLA's version's, so
``jax.grad`` through an inner loop (TBPTT, the exact-gradient tests) works.

Sharding: the custom call has no partitioning rule; under automatic (GSPMD/Shardy) sharding XLA
would gather its operands onto every device. ``MLPLOpt.per_device_kernel`` says when updates call
it, and ``meta_train.estimators`` then runs the unroll in a ``shard_map`` over the ``particles``
mesh, where every device calls it on its own members.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import subprocess
import tempfile
import threading

import jax
import jax.numpy as jnp
import numpy as np

TARGET = "lopt_step"
SWITCH_ENV = "LOPT_CPU_KERNEL"  # "0": never use the kernel
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


def _cpu_signature() -> str:
    """The machine and its CPU flags (a kernel built with ``-march=native`` runs only there)."""
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
    for part in (version, " ".join(FLAGS), jaxlib.__version__, _cpu_signature()):
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


def available() -> bool:
    """Whether the kernel is built and registered (builds it on the first call).

    False, with one logged warning giving the reason, where it cannot be built; False without
    building when ``LOPT_CPU_KERNEL=0``."""
    if os.environ.get(SWITCH_ENV, "1") == "0":
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


def supports(num_momenta: int, adafactor: bool, hidden_sizes: tuple) -> bool:
    """Whether :func:`step` covers this MLPLOpt (two equal hidden layers) and is built."""
    shape_ok = (
        len(hidden_sizes) == 2
        and hidden_sizes[0] == hidden_sizes[1]
        and (num_momenta, bool(adafactor), hidden_sizes[0]) in SUPPORTED
    )
    return shape_ok and available()


def step(operands, *, decays, rms_decay, adafactor_decay, adafactor, mid, exp_mult, factored_dims):
    """One call of the kernel (CPU only; call :func:`available` first).

    operands: float32 ``g (n,), p (n,), m (n, K), v (n,), row (L R,) or (1,), col (L C,) or (1,),
    s (), W_in (F, H), b_in (H,), W_1 (H, H), b_1 (H,), W_2 (H, 2), W_skip (F, 2), b_out (2,)``
    (``cpu_kernel.cc`` gives the rule); ``factored_dims``: ``(R, C)`` of the tensor's
    ``(L, R, C)`` view where Adafactor's factored moment applies, else ``(0, 0)``. Returns
    ``(update (n,), m, v, row, col)``. The constants ``1 - b`` are given to the kernel as XLA's
    version computes them (float32 for the momenta, float64 then rounded for the others), so
    both round alike. Under ``vmap`` every operand gains the batch dimensions
    (``vmap_method="broadcast_all"``), and the members are shared with XLA's intra-op threads
    when the process has one CPU device (with several, their own calls keep the cores busy:
    1.33x on one device, 2% slower on two).
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
        share_threads=np.int64(jax.local_device_count("cpu") == 1),
    )
