"""Meta-training throughput of a shipping recipe over its zoo, against its floor; prints JSON.

    python benchmarks/meta_train_throughput.py --config recipe [--outer_steps 300]

``--config recipe`` is the recipe of the recommended optimizer (``learned_opt.RECOMMENDED``'s
``scale_free``); any shipping recipe name works. Figures:

- ``first_run``: ``lopt-meta-train --config=NAME`` run for ``--outer_steps`` outer steps in a new
  workdir with a cold persistent compilation cache (as on a new machine), its held-out
  evaluation off. ``outer_steps_per_hour`` is that run's (compilation included) and
  ``first_run_split`` its compile / device / host fractions of the wall time
  (``meta_train.timing``).
- ``inner_steps_per_s_median``: the median over that run's outer steps that compiled nothing of
  (inner steps of all members, both antithetic members counted) / (the step's wall time).
- ``floor``: per group draw of the run (``--floor_draws``: the first N; default all it
  trained), the same groups (tasks, members, minibatch keys) trained at the initial theta by the
  learned optimizer in a plain vmapped, scanned loop with no perturbations and no estimator
  bookkeeping (``meta_train.floor``), all groups of an outer step timed together, median over
  ``--repeats``: ``floor_outer_step_s`` per draw.
- ``floor_ratio``: over the compile-free outer steps of the measured draws, (the seconds their
  draws' floors take) / (the seconds they took): how close meta-training runs to the cost of just
  training its members, each step against the floor of its own draw (draws differ in cost up to
  10x: char transformers against small MLPs). ``floor_inner_steps_per_s`` = those steps' inner
  steps / their floor seconds, ``inner_steps_per_s_mean`` = the same over their own seconds, so
  ``floor_ratio`` is their quotient.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPILE_FREE = 0.01  # an outer step "compiled nothing" when compile_s <= this x its seconds


def recipe_name(name: str) -> str:
    """``recipe`` -> the recommended optimizer's recipe; any other name is returned as is."""
    return "scale_free" if name == "recipe" else name


def first_run(config: str, outer_steps: int, workdir: str, cache_dir: str, extra=()) -> list:
    """Run ``lopt-meta-train --config=CONFIG`` for ``outer_steps`` in ``workdir`` with the
    persistent compilation cache ``cache_dir``; returns its metrics rows."""
    cmd = [
        sys.executable,
        "-m",
        "meta_train.cli",
        f"--config={config}",
        f"--workdir={workdir}",
        f"--compilation_cache_dir={cache_dir}",
        "--noprogress",
        f"--config.outer_steps={outer_steps}",
        "--config.eval.num_tasks=0",
        *extra,
    ]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"lopt-meta-train failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def summarize(rows: list) -> dict:
    """The first run's figures from its metrics rows (``meta_train.train``'s running totals)."""
    steps = [r for r in rows if "inner_steps" in r]
    last = steps[-1]
    free = [r for r in steps if r["compile_s"] <= COMPILE_FREE * r["seconds"]]
    return dict(
        inner_steps_per_s_median=round(
            statistics.median(r["inner_steps"] / r["seconds"] for r in free), 1
        ),
        compile_free_steps=len(free),
        outer_steps_per_hour=last["outer_steps_per_hour"],
        first_run_wall_s=last["time_wall_s"],
        first_run_split={
            "compile": last["time_compile_frac"],
            "device": last["time_device_frac"],
            "host": last["time_host_frac"],
        },
        inner_steps_per_outer_step=int(last["inner_steps"]),
    )


def floor_ratio(rows: list, floor_step_s: dict, every: int) -> dict:
    """Each compile-free outer step against the floor of its own group draw.

    Args:
        rows: the first run's metrics rows (``step`` 1-based, ``seconds``, ``compile_s``,
            ``inner_steps``).
        floor_step_s: ``{draw index: floor seconds of one outer step of that draw}``.
        every: the run's ``group_resample_every`` (draw ``e`` covers 0-based outer steps
            ``[e * every, (e + 1) * every)``; 0: one draw).

    Returns:
        dict: ``floor_ratio`` = sum of the floor seconds / sum of the seconds over the
        compile-free steps whose draw has a floor, ``inner_steps_per_s_mean`` and
        ``floor_inner_steps_per_s`` (their inner steps over either sum), ``floor_steps`` (how
        many steps) and ``per_draw`` (draw -> ``{"steps", "run_step_s_median", "floor_step_s",
        "ratio"}``, the ratio of the draw's floor to its median step).
    """
    from meta_train.outer import group_epoch

    free = [r for r in rows if "inner_steps" in r and r["compile_s"] <= COMPILE_FREE * r["seconds"]]
    by_draw: dict = {}
    for r in free:
        draw = group_epoch(r["step"] - 1, every)
        if draw in floor_step_s:
            by_draw.setdefault(draw, []).append(r)
    if not by_draw:
        raise ValueError("no compile-free outer step falls in a draw with a measured floor")
    measured = [r for group in by_draw.values() for r in group]
    run_s = sum(r["seconds"] for r in measured)
    floor_s = sum(floor_step_s[draw] * len(group) for draw, group in by_draw.items())
    inner = sum(r["inner_steps"] for r in measured)
    per_draw = {}
    for draw, group in sorted(by_draw.items()):
        median = statistics.median(r["seconds"] for r in group)
        per_draw[draw] = dict(
            steps=len(group),
            run_step_s_median=round(median, 4),
            floor_step_s=round(floor_step_s[draw], 4),
            ratio=round(floor_step_s[draw] / median, 3),
        )
    return dict(
        floor_ratio=round(floor_s / run_s, 3),
        inner_steps_per_s_mean=round(inner / run_s, 1),
        floor_inner_steps_per_s=round(inner / floor_s, 1),
        floor_steps=len(measured),
        per_draw=per_draw,
    )


def override(config, assignments) -> None:
    """Apply ``FIELD=VALUE`` strings (``FIELD`` dotted; ``VALUE`` read as ``lopt-meta-train``
    reads ``--config.FIELD=VALUE``, :func:`meta_train.overrides.parse_value`)."""
    from meta_train.overrides import parse_value

    for item in assignments:
        field, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected FIELD=VALUE")
        value = parse_value(text)
        *path, last = field.split(".")
        node = config
        for part in path:
            node = node[part]
        node[last] = value


def measure(
    config_name: str, outer_steps: int, repeats: int, assignments=(), floor_draws: int = 0
) -> dict:
    """Both figures of ``config_name`` (with the ``FIELD=VALUE`` ``assignments``): its first
    run, then the floors of its draws (the first ``floor_draws``; 0: every draw it trained; in
    this process, over as many CPU devices as the run splits its pairs over)."""
    import jax

    import tasks
    from meta_train import cli, configs, floor, outer, spec

    name = recipe_name(config_name)
    config = configs.get(name)
    override(config, assignments)
    devices = cli.cpu_device_count(0, config.pairs_per_group)
    cli.set_cpu_devices(devices)  # before jax's backend starts, as lopt-meta-train does
    extra = [f"--config.{a}" for a in assignments]
    with tempfile.TemporaryDirectory(prefix="recipe_throughput_") as tmp:  # a cold cache in it
        t0 = time.perf_counter()
        run_dir, cache = os.path.join(tmp, "run"), os.path.join(tmp, "cache")
        rows = first_run(name, outer_steps, run_dir, cache, extra)
    out = summarize(rows)
    out["first_run_total_s"] = round(time.perf_counter() - t0, 1)
    run = spec.from_config(config)
    theta = outer.initial_theta(run)
    mesh = outer.make_mesh()
    every = run.groups.resample_every
    draws = sorted({outer.group_epoch(r["step"] - 1, every) for r in rows if "inner_steps" in r})
    if floor_draws > 0:
        draws = draws[:floor_draws]
    zoo = tasks.zoo(run.zoo)
    floors = {e: floor.measure(run, zoo, theta, mesh, repeats=repeats, epoch=e) for e in draws}
    out.update(floor_ratio(rows, {e: f["outer_step_s"] for e, f in floors.items()}, every))
    for e, f in floors.items():
        out["per_draw"].get(e, {}).update(
            tasks=f["tasks"],
            floor_inner_steps=f["inner_steps_per_outer_step"],
            floor_compile_s=f["compile_s"],
        )
    cfg = dict(
        name=name,
        overrides=list(assignments),
        outer_steps=outer_steps,
        repeats=repeats,
        floor_draws=floor_draws,
        zoo=run.zoo,
        lopt=run.lopt.to_config(),
        num_groups=run.groups.num_groups,
        pairs_per_group=run.groups.pairs_per_group,
        truncation=run.estimator.truncation_length,
        share_programs=run.groups.share_programs,
        devices=int(jax.device_count()),
    )
    return dict(benchmark="meta_train_throughput", config=cfg, **out)
