"""``lopt-quickstart``: the main job on the embedded default, end to end (no network, no data).

    lopt-quickstart --workdir=runs/quickstart [--outer_steps=N] [--seeds=S] [--steps=T]

1. meta-trains the ``quickstart`` config (``meta_train.train``) in ``WORKDIR/meta_train``
   (resumable: a second call continues or reuses the finished run);
2. saves the run's *initial* theta next to it (``WORKDIR/initial_lopt``), so the table shows what
   meta-training bought;
3. evaluates the trained learned optimizer, its initial theta, learning-rate-tuned AdamW with
   warmup + cosine decay (the reference), tuned constant Adam (the second reference) and Adam at
   its default rate 1e-3 on the ``embedded_heldout`` suite (``eval.runner.run_suite``), writing
   ``WORKDIR/eval/summary.md``, ``summary.csv``, ``results.jsonl``, ``curves.png``,
   ``speedups.png`` and ``aggregate.png``, and prints the table.

This module is the one place where ``eval`` uses ``meta_train`` (the two are otherwise
independent); it is a thin driver over both public entry points.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Define the flags of ``lopt-quickstart`` in ``flag_values``. :func:`run` calls it, not the
    import, so that ``eval.cli`` (which has its own ``--workdir``) can be imported beside this."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("workdir", "runs/quickstart", "Output directory (resumable).", **fv)
    flags.DEFINE_integer("outer_steps", 0, "Meta-training steps; 0 = the config's value.", **fv)
    flags.DEFINE_integer("seeds", 3, "Evaluation seeds per (task, candidate, rate).", **fv)
    flags.DEFINE_integer("steps", 0, "Evaluation steps per run; 0 = each task's default.", **fv)
    flags.DEFINE_string("suite", "embedded_heldout", "Evaluation suite.", **fv)
    flags.DEFINE_bool("progress", True, "Show progress bars.", **fv)


def run_main_job(
    workdir: str,
    *,
    outer_steps: int = 0,
    seeds: int = 3,
    steps: int = 0,
    suite: str = "embedded_heldout",
    progress: bool = True,
    config=None,
) -> dict:
    """Meta-train, evaluate, report. Returns ``{"summary": Summary, "seconds": {...}}``."""
    import learned_opt
    from eval import report, runner
    from meta_train import config as config_lib
    from meta_train import configs, outer, train

    c = configs.get("quickstart") if config is None else config
    if outer_steps:
        c.outer_steps = int(outer_steps)
    mt_dir = os.path.join(workdir, "meta_train")
    lopt = config_lib.build_lopt(c)
    theta0 = outer.initial_theta(c, lopt)  # read once: the run starts from this copy
    t0 = time.perf_counter()
    argv = ["lopt-quickstart", *sys.argv[1:]]
    train.train(c, mt_dir, argv=argv, progress=progress, init_theta=theta0)
    t_meta = time.perf_counter() - t0

    init_dir = os.path.join(workdir, "initial_lopt")
    learned_opt.save(
        init_dir,
        lopt,
        theta0,
        metadata=dict(note="initial theta of the quickstart run", seed=c.seed),
    )
    candidates = [
        f"learned={os.path.join(mt_dir, 'export')}",
        f"learned_init={init_dir}",
        "adamw_cos",
        "adam",
        "adam@1e-3",
    ]
    t1 = time.perf_counter()
    eval_dir = os.path.join(workdir, "eval")
    records = runner.run_suite(
        suite,
        candidates,
        num_steps=steps or None,
        num_seeds=seeds,
        workdir=eval_dir,
        progress=progress,
    )
    summary = report.write_report(records, eval_dir)
    t_eval = time.perf_counter() - t1
    return dict(summary=summary, seconds=dict(meta_train=t_meta, eval=t_eval))


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from absl import logging as absl_logging

    from meta_train import configs
    from meta_train.cli import (
        CPU_OPTIMIZATION_LEVEL,
        cpu_device_count,
        set_cpu_compilation,
        set_cpu_devices,
    )

    # before jax's backend: compiles faster, runs as fast; one CPU device per core (README)
    set_cpu_compilation(CPU_OPTIMIZATION_LEVEL)
    set_cpu_devices(cpu_device_count(0, int(configs.get("quickstart").pairs_per_group)))
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("meta_train").setLevel(logging.INFO)
    from eval.baselines import EvalError
    from meta_train.checkpoint import WorkdirMismatchError
    from meta_train.config import ConfigError

    try:
        out = run_main_job(
            FLAGS.workdir,
            outer_steps=FLAGS.outer_steps,
            seeds=FLAGS.seeds,
            steps=FLAGS.steps,
            suite=FLAGS.suite,
            progress=FLAGS.progress,
        )
    except (EvalError, ConfigError, WorkdirMismatchError) as e:
        print(f"lopt-quickstart: error: {e}", file=sys.stderr)
        sys.exit(2)
    eval_dir = os.path.join(FLAGS.workdir, "eval")
    with open(os.path.join(eval_dir, "summary.md")) as f:
        print(f.read())
    sec = out["seconds"]
    print(
        f"meta-training {sec['meta_train']:.0f} s, evaluation {sec['eval']:.0f} s; wrote "
        f"{eval_dir}/summary.md, summary.csv, curves.png, speedups.png, aggregate.png; the "
        f"learned optimizer is in {FLAGS.workdir}/meta_train/export (learned_opt.load(path))"
    )


def run() -> None:
    """Console entry point (``lopt-quickstart``)."""
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
