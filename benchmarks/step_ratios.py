"""How much larger are a learned optimizer's steps than its initial rule's? Prints JSON.

    python benchmarks/step_ratios.py [--optimizer scale_free_v5] [--tasks a,b] [--steps 400]

For each named task (``tasks.get``): two runs from the same init on the same minibatches, one
with the learned weights and one with the architecture's initial theta (for ``ScaleFreeLOpt``,
exactly the hand-designed rule it starts as), both laid out over ``--num_steps``. Per leaf, the
ratio ``RMS(u_learned[t]) / RMS(u_initial[t])`` of the two update sizes at a few steps t, and
each run's mean minibatch loss over its last 20 steps. A ratio that grows with the task's width
or input size is a learned step that extrapolates outside what meta-training showed.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from machine_info import machine_info, run_main  # noqa: E402

import learned_opt  # noqa: E402
import tasks  # noqa: E402
from learned_opt.common import rms  # noqa: E402
from tasks.training import train_step  # noqa: E402

DEFAULT_TASKS = (
    "mlp_mnist8_w64_tanh,mlp_fmnist28_w192_d2,ae_mnist16_w128_z16,ae_fmnist28_w96_z16,"
    "mlp_mnist16_w512_mup"
)
REPORT_STEPS = (5, 20, 50, 100, 200)


def update_sizes(lopt, theta, task, data, steps: int, num_steps: int):
    """Minibatch losses [steps] and per-leaf RMS(update) [steps] (a pytree like the params),
    training with the project's one step (``tasks.training.train_step``); the update is the
    change of the parameters it makes."""
    tx = lopt.optimizer(theta, num_steps=num_steps, param_tags=task.param_tags())
    params = task.init(jax.random.key(1))
    train = train_step(task, tx, data)

    def step(carry, key):
        new, loss = train(carry, key)
        return new, (loss, jax.tree.map(lambda a, b: rms(a - b), new[0], carry[0]))

    keys = jax.random.split(jax.random.key(2), steps)
    run = jax.jit(lambda c, ks: jax.lax.scan(step, c, ks)[1])
    return run((params, tx.init(params)), keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--optimizer", default="scale_free_v5", help="shipped name or directory")
    ap.add_argument("--tasks", default=DEFAULT_TASKS, help="comma-separated task names")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--num_steps", type=int, default=2000, help="the schedule's horizon")
    args = ap.parse_args()
    lopt, theta = learned_opt.load_meta_params(args.optimizer)
    theta0 = lopt.init_meta_params(jax.random.key(0))
    at = [t for t in REPORT_STEPS if t < args.steps] + [args.steps - 1]
    results = []
    for name in args.tasks.split(","):
        task = tasks.get(name)
        data = task.load_data()
        loss, rms = update_sizes(lopt, theta, task, data, args.steps, args.num_steps)
        loss0, rms0 = update_sizes(lopt, theta0, task, data, args.steps, args.num_steps)
        paths = jax.tree_util.tree_flatten_with_path(rms)[0]
        ratios = {
            jax.tree_util.keystr(path): [round(float(a[t] / max(b[t], 1e-30)), 3) for t in at]
            for (path, a), b in zip(paths, jax.tree.leaves(rms0), strict=True)
        }
        results.append(
            {
                "task": name,
                "final_loss_learned": float(np.mean(loss[-20:])),
                "final_loss_initial": float(np.mean(loss0[-20:])),
                "ratio_at_steps": at,
                "ratios": ratios,
            }
        )
        print(json.dumps(results[-1]), flush=True)
    report = {
        "benchmark": "step_ratios",
        "config": vars(args),
        "machine": machine_info(),
        "tasks": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    run_main(main)
