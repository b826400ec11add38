"""Compile time of a meta-training run's group programs at XLA:CPU optimisation levels; prints JSON.

    JAX_PLATFORMS=cpu python benchmarks/compile_time.py [--levels 3,1] [--repeats 3]
        [--config hyper_small] [--groups 2]
        [--variants "LABEL=XLA FLAGS;LABEL=XLA FLAGS"] [--skip_throughput]

For each repeat and variant (interleaved, one fresh subprocess each, since XLA reads ``XLA_FLAGS``
once per process): seconds to build and compile (init and estimate) each program of the
config's first group draw (``share_programs=True``: a run's shared ``SwitchTask`` programs),
then (unless ``--skip_throughput``) the steady-state inner steps/s of
``meta_train_throughput.py`` under the same flags.
A variant is an optimisation level (``--levels``: ``level3`` is
``--xla_backend_optimization_level=3``) or any ``XLA_FLAGS`` string (``--variants``, e.g.
``"cheap=--xla_llvm_disable_expensive_passes=true;xnn=--xla_cpu_use_xnnpack=true"``; a flag this
XLA does not know stops the benchmark with XLA's message).
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
    from meta_train import configs, cpu_rng, outer, spec

    cpu_rng.use_unrolled_threefry()  # as lopt-meta-train compiles

    c = configs.get(config_name)
    c.share_programs = True
    zoo, run, mesh = config_lib.build_zoo(c), spec.from_config(c), outer.make_mesh()
    cache = outer.GroupCache(run, mesh, zoo=zoo)
    theta = outer.place_specs(outer.initial_theta(run), outer.replicated(mesh))
    rows = []
    for fam, task in outer.draw_groups(zoo, c.seed, 0, num_groups):
        t0 = time.perf_counter()
        program = cache.compile(task, fam, theta)
        rows.append(dict(program=program.name, compile_s=time.perf_counter() - t0))
    return rows


def _child(xla_flags: str, args) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags)
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
    child = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if child.returncode:
        last = (child.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"compile_time: XLA_FLAGS={xla_flags!r} failed: {last}")
    programs = json.loads(child.stdout)
    if args.skip_throughput:
        return dict(programs=programs)
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


def variants(args) -> dict[str, str]:
    """{label: XLA_FLAGS} from ``--variants`` ("LABEL=FLAGS;...") or else ``--levels``."""
    if not args.variants:
        return {
            f"level{lv}": f"--xla_backend_optimization_level={int(lv)}"
            for lv in args.levels.split(",")
        }
    out = {}
    for item in args.variants.split(";"):
        label, sep, flags = item.partition("=")
        if not sep or not label.strip():
            raise SystemExit(f"--variants: {item!r} is not LABEL=XLA_FLAGS")
        out[label.strip()] = flags.strip()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="3,1")
    ap.add_argument("--variants", default="", help="LABEL=XLA_FLAGS;... (replaces --levels)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--config", default="hyper_small")
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument(
        "--skip_throughput", action="store_true", help="time the compiles only, not the steps/s"
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(compile_first_draw(args.config, args.groups)))
        return
    from machine_info import machine_info

    flag_sets = variants(args)
    runs = {label: [] for label in flag_sets}
    for _ in range(args.repeats):
        for label, xla_flags in flag_sets.items():
            runs[label].append(_child(xla_flags, args))
    summary = {
        label: dict(
            xla_flags=flag_sets[label],
            program_compile_s_median=round(
                statistics.median(sum(p["compile_s"] for p in r["programs"]) for r in rs), 2
            ),
            inner_steps_per_s_median=(
                None
                if args.skip_throughput
                else statistics.median(r["inner_steps_per_s"] for r in rs)
            ),
            runs=rs,
        )
        for label, rs in runs.items()
    }
    out = dict(
        benchmark="compile_time",
        figure="seconds to compile the first draw's programs (summed), per variant",
        variants=summary,
        config=dict(config=args.config, groups=args.groups, share_programs=True),
        machine=machine_info("cpu"),
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
