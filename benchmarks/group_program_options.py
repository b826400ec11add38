"""A recipe's group programs under XLA:CPU compiler options: compile, run, and fusions; JSON.

    python benchmarks/group_program_options.py [--config scale_free] [--draws 2:2,0:0,1:0,3:3]
        [--variants 'LABEL=JSON;...'] [--calls 6]

For each group named in ``--draws`` (``EPOCH:GROUP``: group ``GROUP`` of the task draw at epoch
``EPOCH``, as ``outer.draw_groups`` draws them) the run's own estimate program
(``outer.GroupCache``'s) is lowered once and compiled under each
variant's ``compiler_options`` (a JSON dict of XLA debug options, on top of the settings
``lopt-meta-train`` compiles with: LLVM level ``cli.CPU_OPTIMIZATION_LEVEL``, straight-line random
bits). Then the compiled programs run ``--calls`` times each, interleaved, and each variant's
estimate is compared with the first variant's. Per program it reports the seconds to compile, the
median seconds per call (first call dropped), the largest difference of the estimate, and the
first variant's fusions by where they come from (the op_name of each fusion: the learned
optimizer's update, the task's loss and gradient, its batch, random bits, the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from meta_train import cli  # noqa: E402

cli.set_cpu_devices(2)  # before jax starts its backend: as lopt-meta-train runs the recipe
cli.set_cpu_compilation(cli.CPU_OPTIMIZATION_LEVEL)

import jax  # noqa: E402
import numpy as np  # noqa: E402
from machine_info import machine_info, run_main  # noqa: E402

from meta_train import config as config_lib  # noqa: E402
from meta_train import configs, estimators, outer, spec  # noqa: E402

DEFAULT_VARIANTS = (
    'default={};expensive_passes_off={"xla_llvm_disable_expensive_passes": true};'
    'one_codegen_split={"xla_cpu_parallel_codegen_split_count": 1};'
    'llvm_level0={"xla_backend_optimization_level": 0}'
)
_RANDOM = ("threefry", "random_bits", "_uniform", "_normal", "randint")


def fusion_origins(hlo_text: str) -> dict:
    """Counts of the fusion instructions of a compiled program by origin: ``lopt``, ``task``,
    ``batch`` (``estimators.SCOPES``), ``random`` (random-bit code elsewhere) and ``other``."""
    counts = dict(lopt=0, task=0, batch=0, random=0, other=0)
    for line in hlo_text.splitlines():
        if " fusion(" not in line:
            continue
        m = re.search(r'op_name="([^"]+)"', line)
        name = m.group(1) if m else ""
        part = next((k for k, s in estimators.SCOPES.items() if s in name), None)
        if part is None:
            part = "random" if any(r in name for r in _RANDOM) else "other"
        counts[part] += 1
    return counts


def fail(message: str):
    """End the benchmark with one line: ``group_program_options: error: MESSAGE``."""
    raise SystemExit(f"group_program_options: error: {message}")


def parse_variants(text: str) -> dict[str, dict]:
    """{label: compiler options} from ``LABEL=JSON;LABEL=JSON``."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(";"))):
        label, sep, options = item.partition("=")
        try:
            out[label.strip()] = json.loads(options) if sep else None
        except json.JSONDecodeError:
            out[label.strip()] = None
        if not label.strip() or not isinstance(out[label.strip()], dict):
            fail(f"--variants item {item!r} is not LABEL=JSON-dict")
    if not out:
        fail("--variants names no variant")
    return out


def check_options(variants: dict[str, dict]) -> None:
    """Compile a one-line program under each variant's options, so that an option XLA does not
    know ends the benchmark in one line naming it before any group program is built."""
    for label, options in variants.items():
        try:
            jax.jit(lambda x: x + 1, compiler_options=options or None).lower(1.0).compile()
        except Exception as e:  # noqa: BLE001 - XLA's own message, first line
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            fail(f"variant {label!r}: {first}")


def parse_draws(text: str, num_groups: int) -> list[tuple[int, int]]:
    """``EPOCH:GROUP,...`` as (epoch, group) pairs, ``0 <= GROUP < num_groups``."""
    draws = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        epoch, sep, group = item.partition(":")
        ok = sep and epoch.isdigit() and group.isdigit() and int(group) < num_groups
        if not ok:
            fail(f"--draws item {item!r} is not EPOCH:GROUP with GROUP < {num_groups}")
        draws.append((int(epoch), int(group)))
    if not draws:
        fail("--draws names no group")
    return draws


def program_figures(run, mesh, zoo, theta, epoch: int, index: int, variants: dict, calls: int):
    """The figures of one group program (module doc)."""
    family, task = outer.draw_groups(zoo, run.seed, epoch, run.groups.num_groups)[index]
    group = outer.GroupCache(run, mesh, compile_ahead=False).group(task, family)
    key = jax.random.PRNGKey(0)
    start = lambda: outer.fresh_particles([group], key, epoch, theta)[0]  # noqa: E731
    # the run's own program (its shardings and donated particles), lowered once
    lowered = group.estimate.lower(theta, start(), key, group.data)
    compiled, compile_s = {}, {}
    for label, options in variants.items():
        t0 = time.perf_counter()
        compiled[label] = lowered.compile(options or None)
        compile_s[label] = time.perf_counter() - t0
    # each variant carries its own population from the same start, as a run does (donated)
    particles = {label: start() for label in variants}
    seconds, estimates = {label: [] for label in variants}, {}
    for call in range(calls):
        for label, program in compiled.items():
            t0 = time.perf_counter()
            grad, particles[label], _ = jax.block_until_ready(
                program(theta, particles[label], jax.random.fold_in(key, call), group.data)
            )
            seconds[label].append(time.perf_counter() - t0)
            estimates[label] = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grad)])
    first = next(iter(variants))
    return dict(
        draw=f"{epoch}:{index}",
        task=task.name,
        fusions=fusion_origins(compiled[first].as_text()),
        variants={
            label: dict(
                compile_s=round(compile_s[label], 2),
                run_s_median=round(statistics.median(seconds[label][1:]), 4),
                max_abs_diff=float(np.max(np.abs(estimates[label] - estimates[first]))),
            )
            for label in variants
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="scale_free")
    ap.add_argument("--draws", default="2:2,0:0,1:0,3:3", help="EPOCH:GROUP,...")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS, help="LABEL=JSON;...")
    ap.add_argument("--calls", type=int, default=6)
    args = ap.parse_args()
    variants = parse_variants(args.variants)
    if args.calls < 2:
        fail("--calls must be at least 2")
    check_options(variants)
    config = configs.get(args.config)
    run, zoo, mesh = spec.from_config(config), config_lib.build_zoo(config), outer.make_mesh()
    draws = parse_draws(args.draws, run.groups.num_groups)
    theta = jax.device_put(outer.initial_theta(run), outer.replicated(mesh))
    programs = [
        program_figures(run, mesh, zoo, theta, epoch, index, variants, args.calls)
        for epoch, index in draws
    ]
    out = dict(
        benchmark="group_program_options",
        figure="per group program: compile seconds, run seconds per call, fusions by origin",
        programs=programs,
        totals={
            label: dict(
                compile_s=round(sum(p["variants"][label]["compile_s"] for p in programs), 2),
                run_s=round(sum(p["variants"][label]["run_s_median"] for p in programs), 4),
            )
            for label in variants
        },
        config=dict(config=args.config, draws=args.draws, variants=variants, calls=args.calls),
        machine=machine_info("cpu"),
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    run_main(main)
