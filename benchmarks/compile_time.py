"""Compile time of a meta-training run's group programs at XLA:CPU optimisation levels; prints JSON.

    JAX_PLATFORMS=cpu python benchmarks/compile_time.py [--levels 3,1] [--repeats 3]
        [--config hyper_small] [--groups 2]

For each repeat and level (interleaved, one fresh subprocess each, since XLA reads ``XLA_FLAGS``
once per process): seconds to build and compile (init and estimate) each program of the
config's first group draw (``share_programs=True``: a run's shared ``SwitchTask`` programs),
then the steady-state inner steps/s of ``meta_train_throughput.py`` under the same flags.
``lopt-meta-train`` compiles at ``--xla_cpu_optimization_level`` (default 1; XLA's own is 3).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

_HERE = pathlib.Path(__file__).resolve().parent


def compile_first_draw(config_name: str, num_groups: int) -> list[dict]:
    """Seconds to build and compile the programs (init and estimate) of each of the first draw's
    groups, as the run's :class:`meta_train.outer.GroupCache` does; [{program, compile_s}]."""
    from meta_train import config as config_lib
    from meta_train import configs, outer

    c = configs.get(config_name)
    c.share_programs = True
    zoo, lopt, mesh = config_lib.build_zoo(c), config_lib.build_lopt(c), outer.make_mesh()
    cache = outer.GroupCache(c, lopt, mesh, zoo=zoo)
    theta = outer.place_specs(outer.initial_theta(c, lopt), outer.replicated(mesh))
    rows = []
    for fam, task in outer.draw_groups(zoo, c.seed, 0, num_groups):
        t0 = time.perf_counter()
        program = cache.compile(task, fam, theta)
        rows.append(dict(program=program.name, compile_s=time.perf_counter() - t0))
    return rows


def _child(level: int, args) -> dict:
    env = dict(
        os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_backend_optimization_level={level}"
    )
    env["PYTHONPATH"] = os.pathsep.join([str(_HERE.parent), str(_HERE), env.get("PYTHONPATH", "")])
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--config",
        args.config,
        "--groups",
        str(args.groups),
    ]
    programs = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True).stdout)
    thr = subprocess.run(
        [sys.executable, str(_HERE / "meta_train_throughput.py"), "--repeats", "3", "--calls", "3"],
        env=env,
        check=True,
        capture_output=True,
    )
    thr = json.loads(thr.stdout)
    return dict(
        programs=programs,
        throughput_compile_and_first_call_s=thr["compile_and_first_call_s"],
        inner_steps_per_s=thr["inner_steps_per_s_median"],
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="3,1")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--config", default="hyper_small")
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(compile_first_draw(args.config, args.groups)))
        return
    from machine_info import machine_info

    levels = [int(x) for x in args.levels.split(",")]
    runs = {lv: [] for lv in levels}
    for _ in range(args.repeats):
        for lv in levels:
            runs[lv].append(_child(lv, args))
    summary = {
        lv: dict(
            program_compile_s_median=round(
                statistics.median(sum(p["compile_s"] for p in r["programs"]) for r in rs), 2
            ),
            inner_steps_per_s_median=statistics.median(r["inner_steps_per_s"] for r in rs),
            runs=rs,
        )
        for lv, rs in runs.items()
    }
    out = dict(
        benchmark="compile_time",
        figure="seconds to compile the first draw's programs (summed), per level",
        levels=summary,
        config=dict(config=args.config, groups=args.groups, share_programs=True),
        machine=machine_info("cpu"),
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
