"""Do independent meta-gradient estimates at a run's starting theta agree? Prints JSON.

    python benchmarks/estimate_agreement.py
        [--config experiments/char_lm_specialist_elementwise_lower_lr] [--epoch 0]
        [--populations 8] [--calls 20] [--trained_leaves w3,b3] [--sigma 0.05]

For each group of the config's task draw at epoch ``--epoch`` (as ``outer.draw_groups`` draws
them) and its starting theta (``init_from``, else the initial rule): ``--populations`` fresh
populations, each with its own key, each estimating ``--calls`` times in a row as a run does (one
PES truncation per call; one whole episode per call with ``full_es``), their estimates summed per
population. Reported per group: the cosine between every two populations' sums (median, mean,
min, max), ``|mean of the sums| / mean |sum|``, the mean cosine of each of theta's leaves alone
(``by_leaf``: a leaf whose cosine stands above the rest carries more of the shared direction) and
the seconds taken. ``--trained_leaves`` (default: the config's) restricts the perturbations to
those leaves of theta, as a run with ``config.trained_leaves`` does; the cosines are then over
that subspace (``dimensions``). ``--sigma`` (default: the config's) sets the perturbations' scale:
a larger one smooths the meta-loss over more of theta, which chaotic inner training makes rough
at small scales (Metz et al. 2019, "Understanding and correcting pathologies in the training of
learned optimizers").

Two estimates that share a direction g and carry independent noise of variance s^2 per
coordinate have cosine about |g|^2 / (|g|^2 + d s^2) in d dimensions; for pure noise the
cosines spread about +-1/sqrt(d) around 0 and ``|mean| / mean |sum|`` is about
1/sqrt(populations).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from meta_train import cli  # noqa: E402

cli.set_cpu_devices(2)  # before jax starts its backend: as lopt-meta-train runs a recipe
cli.set_cpu_compilation(cli.CPU_OPTIMIZATION_LEVEL)

import jax  # noqa: E402
import numpy as np  # noqa: E402
from machine_info import machine_info, run_main  # noqa: E402

from meta_train import config as config_lib  # noqa: E402
from meta_train import configs, outer, spec  # noqa: E402


def summed_estimate(group, theta, epoch: int, seed: int, calls: int) -> dict[str, np.ndarray]:
    """The sum of ``calls`` successive estimates of one fresh population (key ``seed``), by
    theta's leaf (``jax.tree_util.keystr`` of its path)."""
    key = jax.random.PRNGKey(seed)
    particles = outer.fresh_particles([group], key, epoch, theta)[0]
    total: dict[str, np.ndarray] = {}
    for call in range(calls):
        grad, particles, _ = group.estimate(
            theta, particles, jax.random.fold_in(key, call), group.data
        )
        for path, leaf in jax.tree_util.tree_flatten_with_path(grad)[0]:
            name, flat = jax.tree_util.keystr(path), np.ravel(leaf).astype(np.float64)
            total[name] = total[name] + flat if name in total else flat
    return total


def pairwise_cosines(sums: list[np.ndarray]) -> list[float]:
    """The cosine between every two of ``sums``."""
    return [
        float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        for a, b in itertools.combinations(sums, 2)
    ]


def agreement(sums: list[np.ndarray]) -> dict:
    """Pairwise cosines of ``sums`` and the norm of their mean over their mean norm."""
    cos = pairwise_cosines(sums)
    mean_norm = statistics.fmean(float(np.linalg.norm(s)) for s in sums)
    norm_of_mean = float(np.linalg.norm(np.mean(sums, axis=0)))
    return dict(
        cos_median=round(statistics.median(cos), 4),
        cos_mean=round(statistics.fmean(cos), 4),
        cos_min=round(min(cos), 4),
        cos_max=round(max(cos), 4),
        norm_of_mean_over_mean_norm=round(norm_of_mean / mean_norm, 4),
    )


def group_agreement(sums: list[dict[str, np.ndarray]]) -> dict:
    """:func:`agreement` over all of theta, then per leaf (its size and mean cosine); leaves no
    estimate moves (not perturbed) are left out."""
    whole = agreement([np.concatenate(list(s.values())) for s in sums])
    by_leaf = {
        name: dict(
            size=int(sums[0][name].size),
            cos_mean=round(statistics.fmean(pairwise_cosines([s[name] for s in sums])), 4),
        )
        for name in sums[0]
        if all(np.any(s[name] != 0) for s in sums)
    }
    return dict(**whole, by_leaf=by_leaf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="experiments/char_lm_specialist_elementwise_lower_lr")
    ap.add_argument("--epoch", type=int, default=0)
    ap.add_argument("--populations", type=int, default=8)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--trained_leaves", default=None, help="default: the config's")
    ap.add_argument("--sigma", type=float, default=None, help="default: the config's")
    args = ap.parse_args()
    if args.populations < 2 or args.calls < 1 or args.epoch < 0:
        raise SystemExit(
            "estimate_agreement.py: error: --populations must be at least 2, --calls at least 1"
            " and --epoch at least 0"
        )
    config = configs.get(args.config)
    if args.trained_leaves is not None:
        config.trained_leaves = args.trained_leaves
    if args.sigma is not None:
        config.sigma = args.sigma
    run, zoo, mesh = spec.from_config(config), config_lib.build_zoo(config), outer.make_mesh()
    theta = jax.device_put(outer.initial_theta(run), outer.replicated(mesh))
    config_lib.check_leaf_names(run.meta_opt.trained_leaves, theta)
    trained = run.meta_opt.trained_leaves or tuple(theta)
    cache = outer.GroupCache(run, mesh, zoo=zoo, compile_ahead=False)
    groups = []
    for family, task in outer.draw_groups(zoo, run.seed, args.epoch, run.groups.num_groups):
        group, t0 = cache.group(task, family), time.perf_counter()
        sums = [
            summed_estimate(group, theta, args.epoch, 1000 + p, args.calls)
            for p in range(args.populations)
        ]
        groups.append(
            dict(
                task=task.name, **group_agreement(sums), seconds=round(time.perf_counter() - t0, 1)
            )
        )
    out = dict(
        benchmark="estimate_agreement",
        figure="per group: cosines between independent populations' summed meta-gradients",
        dimensions=int(sum(np.size(x) for x in jax.tree.leaves({n: theta[n] for n in trained}))),
        groups=groups,
        config=dict(vars(args), estimator=run.estimator.name, trained_leaves=list(trained)),
        machine=machine_info("cpu"),
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    run_main(main)
