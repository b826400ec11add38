"""jax's random bits on XLA:CPU as straight-line code instead of a loop.

Every ``jax.random`` call hashes counters with Threefry-2x32 (20 rounds of add, rotate, xor in
five groups of four; Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
On CPU jax lowers the five groups as a ``fori_loop`` (a smaller program); on GPU and TPU as
straight-line code. In a meta-training program every inner step draws keys and batch indices,
and on XLA:CPU each such loop runs as a while thunk with its own carry copies and fusions: in the
reference estimate program they were most of the 376 "PES and scan bookkeeping" thunks per inner
step. :func:`use_unrolled_threefry` registers jax's own straight-line lowering for CPU too: the
same arithmetic on the same uint32 values, so the same bits, in one fusion per call (README:
"Fewer and fused kernels per inner step": 633 -> 251 thunks per inner step of the reference
config, two devices +4%).
"""

from __future__ import annotations


def use_unrolled_threefry() -> bool:
    """Lower ``threefry2x32`` on CPU as on GPU/TPU (straight-line code). Returns whether it was
    registered (``False`` where this jax does not have the internals it uses: then jax's own
    rolled lowering stays, with the same results)."""
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as impl

        rule, primitive = impl._threefry2x32_lowering_rule, impl.threefry2x32_p
    except (ImportError, AttributeError):
        return False
    mlir.register_lowering(primitive, rule, platform="cpu")
    return True
