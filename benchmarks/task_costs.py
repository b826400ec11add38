"""Time one jitted optax.adam training step of each family's default task; prints JSON.

    python benchmarks/task_costs.py [--steps 50] [--repeats 5] [--out FILE]

For each task: the median over ``repeats`` of (time of a jitted ``lax.scan`` of ``steps`` adam
steps, minibatches drawn inside the program) / ``steps``, plus its compile time and size. This
is what keeps the CPU-sized zoo within budget.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import optax  # noqa: E402
from machine_info import machine_info, run_main  # noqa: E402

import tasks  # noqa: E402
from tasks import training  # noqa: E402


def time_task(task, steps: int, repeats: int) -> dict:
    data = jax.device_put(task.load_data())
    tx = optax.adam(1e-3)
    params = task.init(jax.random.key(0))

    def run(params, state, key, data):
        step = training.train_step(task, tx, data)
        return jax.lax.scan(step, (params, state), jax.random.split(key, steps))

    args = (params, tx.init(params), jax.random.key(1), data)
    t0 = time.perf_counter()
    compiled = jax.jit(run).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append((time.perf_counter() - t0) / steps)
    return {
        "name": task.name,
        "num_params": task.num_params,
        "batch_size": task.batch_size,
        "step_ms_median": 1e3 * statistics.median(times),
        "steps_per_s": 1.0 / statistics.median(times),
        "compile_s": compile_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    results = [time_task(t, args.steps, args.repeats) for t in tasks.family_defaults()]
    report = {
        "benchmark": "task_costs",
        "config": {"steps_per_call": args.steps, "repeats": args.repeats, "optimizer": "adam"},
        "machine": machine_info(),
        "tasks": results,
    }
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    run_main(main)
