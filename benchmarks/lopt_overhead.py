"""Cost of one learned-optimizer update against optax.adam; prints JSON.

    JAX_PLATFORMS=cpu python benchmarks/lopt_overhead.py [--sizes 10k,1m,10m] [--repeats 7]

For each model size (a few dense layers) and optimizer (MLPLOpt, HyperLOpt, ScaleFreeLOpt (also
with ``elementwise_hidden=8``: ``scale_free_elementwise``), optax.adam, optax.contrib.muon with
the same warmup/cosine as ScaleFreeLOpt's init) it times one jitted ``update(grads, state,
params, value=loss)`` followed by ``optax.apply_updates`` (params and state donated, as in a
training step) and reports the median and min of ``--repeats`` runs after one warm-up, the
compile time and the bytes of optimizer state. Figures, configuration and machine information go
to stdout as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # uninstalled repo
from machine_info import machine_info, run_main  # noqa: E402

import learned_opt  # noqa: E402
from eval.baselines import BASELINES  # noqa: E402

# name -> list of (fan_in, fan_out) dense layers (kernel + bias each)
MODELS = {
    "10k": [(64, 128), (128, 16)],
    "1m": [(784, 1024), (1024, 192)],
    "10m": [(3072, 2048), (2048, 1792)],
}

LEARNED = ("scale_free", "scale_free_rel", "scale_free_elementwise", "hyper", "mlp")


def make_params(layers, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for i, (n_in, n_out) in enumerate(layers):
        params[f"dense_{i}"] = {
            "kernel": jnp.asarray(rng.normal(size=(n_in, n_out)).astype(np.float32) / n_in**0.5),
            "bias": jnp.zeros((n_out,), jnp.float32),
        }
    return params


def tree_bytes(tree):
    return int(sum(x.nbytes for x in jax.tree.leaves(tree) if hasattr(x, "nbytes")))


def time_update(tx, params, repeats):
    """Time a training step's optimizer part: update + apply_updates, params and state donated."""
    grads = jax.tree.map(lambda x: 0.01 * jnp.ones_like(x) + 0.1 * x, params)
    params = jax.tree.map(jnp.copy, params)
    state = jax.jit(tx.init)(params)
    state_bytes = tree_bytes(state)

    def step(g, p, s):  # donated buffers are matched to outputs in order: (p, s) -> (p, s)
        u, s = tx.update(g, s, p, value=jnp.float32(1.0))
        return optax.apply_updates(p, u), s

    step = jax.jit(step, donate_argnums=(1, 2))
    t0 = time.perf_counter()
    params, state = jax.block_until_ready(step(grads, params, state))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        params, state = jax.block_until_ready(step(grads, params, state))
        times.append(time.perf_counter() - t0)
    del params, state
    return {
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "compile_and_first_s": compile_s,
        "state_bytes": state_bytes,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10k,1m,10m", help="comma list of " + ",".join(MODELS))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--optimizers", default="adam,muon,scale_free,hyper,mlp")
    args = ap.parse_args(argv)

    key = jax.random.key(0)
    lopts = {
        "mlp": learned_opt.MLPLOpt(),
        "hyper": learned_opt.HyperLOpt(),
        "scale_free": learned_opt.ScaleFreeLOpt(
            relative=False, zero_init="one", mixing_fan_cap=0.0
        ),
        "scale_free_rel": learned_opt.ScaleFreeLOpt(),  # the recommended optimizer's settings
        # the same with an 8-wide per-parameter network on top (experimental)
        "scale_free_elementwise": learned_opt.ExperimentalScaleFreeLOpt(elementwise_hidden=8),
    }
    num_steps = 10_000
    txs = {
        name: lo.optimizer(lo.init_meta_params(key), num_steps=num_steps)
        for name, lo in lopts.items()
    }
    txs["adam"] = optax.adam(1e-3)
    txs["muon"] = optax.with_extra_args_support(BASELINES["muon"].make(0.02, num_steps))

    results = {}
    for size in args.sizes.split(","):
        params = make_params(MODELS[size])
        n = sum(x.size for x in jax.tree.leaves(params))
        row = {
            "num_params": int(n),
            "num_tensors": len(jax.tree.leaves(params)),
            "param_bytes": tree_bytes(params),
        }
        for name in args.optimizers.split(","):
            row[name] = time_update(txs[name], params, args.repeats)
        for ref in ("adam", "muon"):
            for name in LEARNED:
                if ref in row and name in row:
                    row[f"{name}_over_{ref}"] = row[name]["median_ms"] / row[ref]["median_ms"]
        results[size] = row

    out = {
        "benchmark": "lopt_overhead",
        "results": results,
        "config": {
            "sizes": {s: MODELS[s] for s in args.sizes.split(",")},
            "repeats": args.repeats,
            "mlp": lopts["mlp"].to_config(),
            "hyper": lopts["hyper"].to_config(),
            "scale_free": lopts["scale_free"].to_config(),
            "scale_free_rel": lopts["scale_free_rel"].to_config(),
            "scale_free_elementwise": lopts["scale_free_elementwise"].to_config(),
            "num_steps": num_steps,
            "adam": {"learning_rate": 1e-3},
            "muon": {"learning_rate": 0.02, "settings": BASELINES["muon"].settings},
            "timing": (
                "jitted update + apply_updates, params and state donated; median and min of "
                "repeats after one warm-up call"
            ),
        },
        "machine": machine_info(),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    run_main(main)
