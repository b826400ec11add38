"""Which task families set the direction of the meta-gradient? Prints JSON.

    python benchmarks/group_grad_norms.py [--config experiments/scale_free_mup] [--calls 6]
        [--families a,b]

For one task drawn from each family of the config's zoo: a group of ``pairs_per_group`` pairs
built as in meta-training, ``calls`` consecutive estimates at the run's initial theta (fresh
populations, episodes at their start), and the norm of each estimate. With the plain mean over
groups (``balance_groups=False``) a family whose estimates are 100x larger decides the step alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
from machine_info import machine_info, run_main  # noqa: E402

from meta_train import config as config_lib  # noqa: E402
from meta_train import configs, outer, spec  # noqa: E402


def family_norms(cache, theta, family, task, calls: int) -> dict:
    """Norms of ``calls`` consecutive estimates of ``task``'s group (from ``cache``, an
    ``outer.GroupCache``) at ``theta``."""
    group = cache.group(task, family)
    particles = group.init(jax.random.PRNGKey(1), theta)
    norms = []
    for call in range(calls):
        grad, particles, _ = group.estimate(
            theta, particles, jax.random.PRNGKey(100 + call), group.data
        )
        norms.append(float(outer.tree_norm(grad)))
    return {
        "family": family.name,
        "task": task.name,
        "median_norm": statistics.median(norms),
        "norms": norms,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="experiments/scale_free_mup")
    ap.add_argument("--calls", type=int, default=6)
    ap.add_argument("--families", default="", help="comma-separated family names (default all)")
    args = ap.parse_args()
    config = configs.get(args.config)
    run, zoo = spec.from_config(config), config_lib.build_zoo(config)
    mesh = outer.make_mesh(jax.devices()[:1])
    cache = outer.GroupCache(run, mesh, zoo=zoo, compile_ahead=False)
    theta = outer.initial_theta(run)
    wanted = set(filter(None, args.families.split(",")))
    results = []
    for i, (family, _) in enumerate(zoo.families):
        if wanted and family.name not in wanted:
            continue
        task = family.sample(jax.random.PRNGKey(i))
        results.append(family_norms(cache, theta, family, task, args.calls))
        print(json.dumps(results[-1]), flush=True)
    cache.close()
    report = {
        "benchmark": "group_grad_norms",
        "config": {
            "config": args.config,
            "zoo": config.zoo,
            "calls": args.calls,
            "pairs_per_group": config.pairs_per_group,
        },
        "machine": machine_info(),
        "families": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    run_main(main)
