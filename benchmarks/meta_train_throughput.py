"""Meta-training throughput for the reference config, or for a shipping recipe; prints JSON.

``--config NAME`` (``recipe``: the recommended optimizer's recipe) measures that recipe over its
zoo instead: a first run with a cold compilation cache, its compile / device / host split, its
steady-state inner steps per second and its floor (``benchmarks/recipe_throughput.py``).

Reference config: image MLP 8x8x1 -> 32 -> 10 on MNIST (2,410 params), batch 128,
MLPLOpt (per-parameter MLP, hidden (32, 32)), PES with truncation 50 and 8 antithetic pairs.
Figure: inner steps per second with both antithetic unrolls counted
(= 2 * pairs * truncation / seconds per ``estimate`` call), median over ``--repeats`` timed runs of
``--calls`` calls each, after one warm-up/compile call. (XLA:CPU's older non-thunk runtime, once
~1.5x faster here, measured no faster on jax 0.10.2: 9,017 vs 9,233 steps/s, so it is not used.)

Peer figure (same 2-core machines, side by side, quiet, interleaved): the widely used JAX
library's TruncatedPES with its per-parameter MLP optimizer on this config runs about 5,300
inner steps/s with both antithetic unrolls counted, as here (its driver also prints half of
that, one member per pair: the "2,000-2,900" quoted earlier was that figure). This project ran
8,466-9,086 in the same sitting: 1.6-1.7x the peer, not 3-4x.
MLPLOpt's optional fused CPU kernel (``learned_opt.cpu_kernel``) is off by default, as in
``MLPLOpt``; ``--cpu_kernel`` turns it on. It runs only in programs of one device, so it changes
the ``--devices 1`` figure only. (The 12,000-16,340 steps/s on 2 devices quoted before were the
kernel run per device by a ``shard_map`` the estimators no longer have.)

``--devices N`` splits the pairs over N CPU devices of the process, one per core, as
``lopt-meta-train`` does by default (``--cpu_devices``); 1 (the default here) is the figure
above.

``--task`` swaps the reference task (e.g. ``mlp_mnist1d_w32``, embedded data, for a machine
without prepared MNIST); the JSON's ``config.task`` names the one measured.

    JAX_PLATFORMS=cpu python benchmarks/meta_train_throughput.py [--repeats 5] [--calls 5] \
        [--devices 2] [--cpu_kernel]
    JAX_PLATFORMS=cpu python benchmarks/meta_train_throughput.py --config recipe \
        [--outer_steps 300] [--repeats 3] [--floor_draws N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import jax
import numpy as np
from machine_info import machine_info, run_main

REFERENCE_TASK = "mlp_mnist8_w32"


def reference(
    pairs: int,
    truncation: int,
    estimator: str = "pes",
    task_name=REFERENCE_TASK,
    mesh=None,
    cpu_kernel: bool = False,
):
    """(estimator, theta, data, num_params) for the reference config; ``mesh``: the particles
    mesh the estimator runs over, as lopt-meta-train builds it (None: one device);
    ``cpu_kernel``: MLPLOpt's optional fused CPU kernel (``learned_opt.cpu_kernel``)."""
    import learned_opt
    import tasks
    from meta_train import cpu_rng, estimators
    from meta_train.particles import LengthSchedule

    cpu_rng.use_unrolled_threefry()  # as lopt-meta-train compiles

    task = tasks.get(task_name)
    lopt = learned_opt.MLPLOpt(hidden_sizes=(32, 32), cpu_kernel=cpu_kernel)
    theta = lopt.init_meta_params(jax.random.PRNGKey(0))
    sched = LengthSchedule("log_uniform", 100, 2000)
    settings = estimators.EstimatorSettings(
        name=estimator, sigma=0.01, truncation_length=truncation, episode=sched
    )
    est = estimators.build(settings, task, lopt, mesh=mesh)
    data = jax.device_put(task.load_data())
    nparams = sum(x.size for x in jax.tree.leaves(task.init(jax.random.PRNGKey(0))))
    nmeta = sum(x.size for x in jax.tree.leaves(theta))
    return est, theta, data, nparams, nmeta, lopt


def reference_config(args, nparams: int, nmeta: int, lopt, **extra) -> dict:
    """The JSON ``config`` entry of a benchmark of the reference config (``args``: its task,
    pairs and truncation), plus ``extra`` fields."""
    return dict(
        task=args.task,
        task_params=int(nparams),
        lopt=lopt.to_config(),
        cpu_kernel=lopt.cpu_kernel,
        meta_params=int(nmeta),
        pairs=args.pairs,
        truncation=args.truncation,
        **extra,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--truncation", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--estimator", default="pes")
    ap.add_argument("--task", default=REFERENCE_TASK, help="tasks.get name (default: reference)")
    ap.add_argument(
        "--devices",
        type=int,
        default=1,
        help="CPU devices the pairs are split over (lopt-meta-train's --cpu_devices; 0: auto)",
    )
    ap.add_argument(
        "--cpu_kernel",
        action="store_true",
        help="MLPLOpt(cpu_kernel=True): the optional fused CPU kernel (used on 1 device only)",
    )
    ap.add_argument(
        "--config",
        default=None,
        help="a shipping recipe ('recipe': the recommended optimizer's) instead of the reference",
    )
    ap.add_argument("--outer_steps", type=int, default=300, help="--config: the first run's steps")
    ap.add_argument(
        "--floor_draws",
        type=int,
        default=0,
        help="--config: time the floors of the run's first N group draws (0: all it trained)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="--config: a config override for the run and its floor (repeatable), "
        "e.g. --set share_programs=True",
    )
    args = ap.parse_args()
    if args.config:
        import recipe_throughput

        out = recipe_throughput.measure(
            args.config, args.outer_steps, args.repeats, args.set, args.floor_draws
        )
        print(json.dumps(dict(out, machine=machine_info()), indent=1))
        return
    from meta_train import cli, communication, outer

    devices = cli.cpu_device_count(args.devices, args.pairs)
    cli.set_cpu_devices(devices)  # before jax's backend starts
    if jax.device_count() != devices:
        raise SystemExit(f"asked for {devices} devices, jax has {jax.device_count()} (XLA_FLAGS?)")

    mesh = outer.make_mesh()  # the particles' axis over the devices, as lopt-meta-train does
    est, theta, data, nparams, nmeta, lopt = reference(
        args.pairs, args.truncation, args.estimator, args.task, mesh, args.cpu_kernel
    )
    part, rep = communication.particles_sharding(mesh), outer.replicated(mesh)
    particles = jax.jit(lambda k, th: est.init(k, th, args.pairs), out_shardings=part)(
        jax.random.PRNGKey(1), theta
    )
    step = jax.jit(
        est.estimate,
        in_shardings=(rep, part, rep, rep),
        out_shardings=(rep, part, rep),
        donate_argnums=(1,),
    )
    t0 = time.perf_counter()
    grad, particles, _ = step(theta, particles, jax.random.PRNGKey(2), data)
    jax.block_until_ready(grad)
    compile_s = time.perf_counter() - t0
    steps_per_call = 2 * args.pairs * est.steps_per_pair
    rates = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        for c in range(args.calls):
            grad, particles, metrics = step(theta, particles, jax.random.PRNGKey(100 * r + c), data)
        jax.block_until_ready((grad, particles))
        rates.append(steps_per_call * args.calls / (time.perf_counter() - t0))
    out = dict(
        benchmark="meta_train_throughput",
        inner_steps_per_s_median=round(statistics.median(rates), 1),
        inner_steps_per_s_runs=[round(x, 1) for x in rates],
        counting="both antithetic unrolls: 2 * pairs * truncation per estimate call",
        compile_and_first_call_s=round(compile_s, 2),
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        grad_finite=bool(all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grad))),
        config=reference_config(
            args,
            nparams,
            nmeta,
            lopt,
            estimator=args.estimator,
            devices=devices,
            batch_size=128,
            calls_per_run=args.calls,
            repeats=args.repeats,
        ),
        machine=machine_info(),
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    run_main(main)
