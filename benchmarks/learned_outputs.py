"""What does a ScaleFreeLOpt's per-tensor network output on a task? Prints JSON.

    python benchmarks/learned_outputs.py --optimizer scale_free_v7 [--optimizer DIR ...]
        [--tasks a,b] [--steps 201] [--num_steps 2000] [--all_leaves]

For each optimizer and task (``tasks.get``): one run from the task's init, laid out over
``--num_steps``; at a few steps, per matrix leaf (2-D, the Muon leaves of these MLPs; with
``--all_leaves`` every leaf, e.g. a quadratic's vector), the learned corrections of the update
(``learned_opt.scale_free`` module doc): the step factor ``exp(B tanh(o_s / B))``, the
Newton-Schulz weight ``1 + o_ns`` (used on matrices only), the mixing weights ``o_adam`` and
``o_grad``, the relative exponent ``alpha = A tanh(o_a / A)`` and, with ``agreement_gate``, the
learned agreement rate ``kappa = agreement_rate + K tanh(o_k)``. Outputs that move the same way on
every task are a learned rule, not a task-dependent one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from machine_info import machine_info, run_main  # noqa: E402

import learned_opt  # noqa: E402
import tasks  # noqa: E402
from learned_opt.scale_free import ScaleFreeLOpt  # noqa: E402
from tasks.training import train_step  # noqa: E402

DEFAULT_TASKS = "mlp_mnist8_w64_tanh,mlp_fmnist28_w192_d2,ae_fmnist28_w96_z16"
REPORT_STEPS = (5, 50, 200)


@dataclasses.dataclass(frozen=True)
class _Recording(ScaleFreeLOpt):
    """The same optimizer; every call of the per-tensor network hands its (N, O) output to the
    host, in step order."""

    def _network(self, theta, x):
        out = ScaleFreeLOpt._network(theta, x)
        jax.debug.callback(lambda o: _RECORD.append(np.asarray(o)), out, ordered=True)
        return out


_RECORD: list = []


def outputs(lopt, theta, task, data, params, steps: int, num_steps: int) -> np.ndarray:
    """The network's outputs, shape (steps, N, O), of one run on ``task`` from ``params``."""
    recording = _Recording(**dataclasses.asdict(lopt))
    tx = recording.optimizer(theta, num_steps=num_steps, param_tags=task.param_tags())
    keys = jax.random.split(jax.random.key(2), steps)
    run = jax.jit(lambda c, ks: jax.lax.scan(train_step(task, tx, data), c, ks)[1])
    _RECORD.clear()
    jax.block_until_ready(run((params, tx.init(params)), keys))
    jax.effects_barrier()
    return np.stack(_RECORD)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--optimizer", action="append", help="shipped name or directory (repeat)")
    ap.add_argument("--tasks", default=DEFAULT_TASKS, help="comma-separated task names")
    ap.add_argument("--steps", type=int, default=201)
    ap.add_argument("--num_steps", type=int, default=2000, help="the schedule's horizon")
    ap.add_argument("--all_leaves", action="store_true", help="every leaf, not only matrices")
    args = ap.parse_args()
    names = args.optimizer or ["scale_free_v7"]
    at = [t for t in REPORT_STEPS if t < args.steps]
    results = []
    for name in names:
        lopt, theta = learned_opt.load_meta_params(name)
        if not isinstance(lopt, ScaleFreeLOpt):
            raise SystemExit(f"learned_outputs: {name} is not a ScaleFreeLOpt")
        for task_name in args.tasks.split(","):
            task = tasks.get(task_name)
            params = task.init(jax.random.key(1))
            out = outputs(lopt, theta, task, task.load_data(), params, args.steps, args.num_steps)
            leaves = jax.tree.leaves(params)
            mats = [i for i, x in enumerate(leaves) if args.all_leaves or np.ndim(x) == 2]
            rounded = lambda x: np.round(np.asarray(x, np.float64), 3).tolist()
            per_step = {}
            for t in at:
                o = out[t][mats]
                log_scale, alpha = lopt.bounded_step_corrections(o)
                per_step[t] = {
                    "step_factor": rounded(np.exp(log_scale)),
                    "ns_weight": rounded(1 + o[:, 2]),
                    "o_adam": rounded(o[:, 3]),
                    "o_grad": rounded(o[:, 4]),
                    "alpha": rounded(alpha),
                }
                if getattr(lopt, "agreement_gate", 0):
                    per_step[t]["agreement_rate"] = rounded(lopt.agreement_rates(o))
            results.append(
                {
                    "optimizer": name,
                    "task": task_name,
                    "shapes": [list(np.shape(leaves[i])) for i in mats],
                    "at_step": per_step,
                }
            )
            print(json.dumps(results[-1]), flush=True)
    report = {
        "benchmark": "learned_outputs",
        "config": vars(args),
        "machine": machine_info(),
        "runs": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    run_main(main)
