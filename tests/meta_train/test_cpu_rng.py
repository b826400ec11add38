"""Threefry lowered without loops on CPU (``meta_train.cpu_rng``): the same bits as jax's own
rolled lowering, and no while loop left in a program's HLO. The tests' conftest registers it
(``cli.set_cpu_compilation``), as lopt-meta-train does."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_train import cpu_rng

# jax.random draws of the kinds meta-training makes (keys, indices, normals, uniforms), as JSON
_DRAWS = """
import json, jax
def draws(seed):
    k = jax.random.PRNGKey(seed)
    a, b = jax.random.split(jax.random.fold_in(k, 7))
    return dict(split=jax.random.split(k, 3), idx=jax.random.randint(a, (64,), 0, 60000),
                normal=jax.random.normal(b, (5, 3)), uniform=jax.random.uniform(a, (4,)))
out = jax.jit(draws, static_argnums=0)(12345)
print(json.dumps({k: v.tolist() for k, v in out.items()}))
"""
_UNROLLED = "from meta_train import cpu_rng; assert cpu_rng.use_unrolled_threefry()"


def _draws(prefix: str = "") -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", prefix + _DRAWS],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_registered_and_no_while_loop_in_the_hlo():
    assert cpu_rng.use_unrolled_threefry()
    hlo = jax.jit(lambda k: jax.random.normal(k, (8,))).lower(jax.random.PRNGKey(0)).as_text()
    assert "threefry" in hlo.lower() or "xor" in hlo  # the hash is in the program ...
    assert "stablehlo.while" not in hlo  # ... as straight-line code


def test_known_answer_of_threefry_2x32():
    """Random123's known-answer vector for Threefry-2x32 with 20 rounds (kat_vectors):
    key (0x13198a2e, 0x03707344), counter (0x243f6a88, 0x85a308d3) -> (0xc4923a9c, 0x483df7a0)."""
    from jax._src.random.threefry2x32 import threefry_2x32

    key = jnp.array([0x13198A2E, 0x03707344], jnp.uint32)
    count = jnp.array([0x243F6A88, 0x85A308D3], jnp.uint32)
    out = jax.jit(threefry_2x32)(key, count)
    assert [int(x) for x in out] == [0xC4923A9C, 0x483DF7A0]


@pytest.mark.slow
def test_same_bits_as_jax_rolled_lowering():
    """The same draws in a process with the straight-line lowering and in one with jax's default
    CPU lowering (the rolled loop) are bit-identical."""
    unrolled, rolled = _draws(_UNROLLED), _draws()
    assert set(rolled) == set(unrolled) == {"split", "idx", "normal", "uniform"}
    for name in rolled:
        np.testing.assert_array_equal(np.asarray(unrolled[name]), np.asarray(rolled[name]), name)
