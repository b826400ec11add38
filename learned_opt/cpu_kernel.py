"""MLPLOpt's per-parameter MLP as one fused XLA:CPU kernel (an XLA FFI custom call).

On CPU, XLA runs the per-parameter MLP (``learned_opt.mlp``) as batched matrix products and
element-wise passes over ``(members, n, H)`` activations that leave the L2 cache. The kernel in
``cpu_kernel.cc`` takes a tile of 64 parameters through every layer in L1 (for each parameter,
features ``x`` (F,))::

    h_0 = relu(b_in + x W_in),  h_1 = relu(b_1 + h_0 W_1),  (d, m) = b_out + [h_1, x] W_out
    out = d * exp(m * exp_mult)

It is compiled from source on first use (``$CXX``, default ``g++``, with ``-O3 -march=native``)
into ``$LOPT_KERNEL_CACHE`` (default ``~/.cache/learned_opt/kernels``), keyed by the source, the
compiler, jaxlib and the CPU's flags, and registered with ``jax.ffi``. Where it cannot be built
(no compiler, no jaxlib headers) one warning names the reason and MLPLOpt keeps XLA's version;
``LOPT_CPU_KERNEL=0`` turns the kernel off. GPU and TPU never use it (``jax.lax.platform_dependent``
picks XLA's version there). The two agree to float32 rounding
(``tests/learned_opt/test_cpu_kernel.py``).

Derivatives: :func:`mlp` is a ``jax.custom_jvp`` whose tangent is :func:`reference`'s, so
``jax.grad`` through an inner loop (the exact-gradient tests) works.

Sharding: the custom call has no partitioning rule; under automatic (GSPMD/Shardy) sharding XLA
would gather its operands onto every device. ``MLPLOpt.per_device_kernel`` says when updates call
it, and ``meta_train.estimators`` then runs the unroll in a ``shard_map`` over the ``particles``
mesh, where every device calls it on its own members.
"""

from __future__ import annotations

import ctypes
import functools
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

TARGET = "lopt_mlp"
SWITCH_ENV = "LOPT_CPU_KERNEL"  # "0": never use the kernel
CACHE_ENV = "LOPT_KERNEL_CACHE"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu_kernel.cc")
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w")
# (features F, hidden width H) pairs instantiated in cpu_kernel.cc's Select (two hidden layers)
SUPPORTED = frozenset(
    {(12, 32), (14, 32), (16, 32), (18, 32), (14, 16), (16, 16), (14, 64), (16, 64)}
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
    return os.path.join(root, f"lopt_mlp_{key.hexdigest()[:16]}.so")


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
                    TARGET, jax.ffi.pycapsule(library.LoptMlp), platform="cpu"
                )
                _status.update(ok=True, reason="")
            except (RuntimeError, OSError, AttributeError) as e:
                _status.update(ok=False, reason=str(e))
                logging.warning(
                    "learned_opt: the fused CPU kernel is not available (%s); MLPLOpt uses "
                    "XLA's per-parameter MLP instead (slower on CPU)",
                    e,
                )
        return _status["ok"]


def supports(num_features: int, hidden_sizes: tuple) -> bool:
    """Whether :func:`mlp` covers this MLP (two equal hidden layers; its features are float32)
    and is built."""
    shape_ok = (
        len(hidden_sizes) == 2
        and hidden_sizes[0] == hidden_sizes[1]
        and (num_features, hidden_sizes[0]) in SUPPORTED
    )
    return shape_ok and available()


def reference(features, w_in, b_in, w_1, b_1, w_out, b_out, exp_mult):
    """:func:`mlp` in jax.numpy. features: F arrays (n,); w_in (F, H), b_in (H,), w_1 (H, H),
    b_1 (H,), w_out (H + F, 2), b_out (2,) -> (n,)."""
    x = jnp.stack(features, axis=1)  # (n, F)
    h = jax.nn.relu(x @ w_in + b_in)
    h = jax.nn.relu(h @ w_1 + b_1)
    dm = jnp.concatenate([h, x], axis=1) @ w_out + b_out
    return dm[:, 0] * jnp.exp(dm[:, 1] * exp_mult)


@functools.partial(jax.custom_jvp, nondiff_argnums=(7,))
def mlp(features, w_in, b_in, w_1, b_1, w_out, b_out, exp_mult):
    """The fused kernel (CPU only; call :func:`available` first). Shapes as :func:`reference`;
    the F features are separate operands (no stacked copy); under ``vmap`` every operand gains
    the batch dimensions (``vmap_method="broadcast_all"``)."""
    call = jax.ffi.ffi_call(
        TARGET,
        jax.ShapeDtypeStruct(jnp.shape(features[0]), jnp.float32),
        vmap_method="broadcast_all",
    )
    return call(w_in, b_in, w_1, b_1, w_out, b_out, *features, exp_mult=np.float32(exp_mult))


@mlp.defjvp
def _mlp_jvp(exp_mult, primals, tangents):
    return jax.jvp(lambda *a: reference(*a, exp_mult), primals, tangents)
