"""``lopt-quickstart``: the main job on the embedded default, end to end (no network, no data).

    lopt-quickstart --workdir=runs/quickstart [--outer_steps=N] [--seeds=S] [--steps=T]

1. meta-trains the recommended architecture, ``ScaleFreeLOpt`` with the settings of the
   ``scale_free`` recipe (it starts as relative Muon on hidden matrices and Adam elsewhere, with
   warmup + cosine: ``muon_rel_mup`` of ``eval.baselines``), with the PES settings of the
   ``quickstart`` config over the embedded zoo (:func:`job_config`), in ``WORKDIR/meta_train``
   (resumable: a second call continues or reuses the finished run);
2. saves the run's initial theta next to it (``WORKDIR/initial_lopt``): the untrained optimizer,
   its *initial rule*;
3. evaluates the trained optimizer (``learned``), its initial rule (``learned_init``),
   learning-rate-tuned AdamW with warmup + cosine decay (``adamw_cos``, the reference) and tuned
   constant Adam (``adam``) on the ``embedded_heldout`` suite (``eval.runner.run_suite``),
   writing ``WORKDIR/eval/summary.md``, ``summary.csv``, ``results.jsonl``, ``curves.png``,
   ``speedups.png`` and ``aggregate.png``; prints the table and one sentence comparing the
   learned optimizer with its initial rule (:func:`verdict`).

Every argument is checked before anything is written; one job at a time holds the workdir's lock.
This module is the one place where ``eval`` uses ``meta_train`` (the two are otherwise
independent); it is a thin driver over both public entry points.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time

from absl import flags

from tasks import cli_common

FLAGS = flags.FLAGS
COMMAND = cli_common.Command(
    name="lopt-quickstart",
    usage="lopt-quickstart [--workdir=DIR] [--outer_steps=N] [--seeds=S] [--steps=T] [flags]",
    description=(
        "The main job on the embedded task zoo (no network, no prepared data): meta-train the "
        "scale-free learned optimizer (ScaleFreeLOpt, which starts as relative Muon + Adam with "
        "warmup + cosine) for a few minutes, then evaluate it on held-out tasks beside its "
        "initial rule (the same optimizer, untrained), learning-rate-tuned AdamW with warmup + "
        "cosine and tuned constant Adam. Writes WORKDIR/meta_train (the run; its export loads "
        "with learned_opt.load) and WORKDIR/eval (summary.md, curves.png, ...), prints the table "
        "and what the meta-training bought. A rerun resumes."
    ),
)
CANDIDATES = ("learned", "learned_init", "adamw_cos", "adam")


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Define the flags of ``lopt-quickstart`` in ``flag_values``. :func:`run` calls it, not the
    import, so that ``eval.cli`` (which has its own ``--workdir``) can be imported beside this."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("workdir", "runs/quickstart", "Output directory (resumable).", **fv)
    flags.DEFINE_integer(
        "outer_steps", 0, "Meta-training steps; 0 = the quickstart config's.", lower_bound=0, **fv
    )
    flags.DEFINE_integer(
        "seeds", 3, "Evaluation seeds per (task, candidate, rate).", lower_bound=1, **fv
    )
    flags.DEFINE_integer(
        "steps", 0, "Evaluation steps per run; 0 = each task's default.", lower_bound=0, **fv
    )
    flags.DEFINE_string("suite", "embedded_heldout", "Evaluation suite.", **fv)
    flags.DEFINE_bool("progress", True, "Show progress bars.", **fv)


def job_config(base=None):
    """The meta-training config of the job: ``base`` (default: the ``quickstart`` config, PES
    sized for minutes on the embedded zoo) with the learned optimizer of the ``scale_free``
    recipe (``ScaleFreeLOpt`` and its settings), started from its initial theta."""
    from meta_train import configs

    c = configs.get("quickstart") if base is None else base
    recipe = configs.get("scale_free")
    c.lopt.architecture = recipe.lopt.architecture
    c.lopt.config = dict(recipe.lopt.config)
    c.init_from = ""
    c.eval.num_tasks = 0  # the job's own evaluation follows
    return c


def check_workdir(workdir: str) -> None:
    """Refuse (``EvalError``) a workdir that cannot be used, creating nothing: empty, a URL, a
    file, or a directory (or the nearest existing parent of a new one) that is not writable."""
    from eval.baselines import EvalError

    if not workdir:
        raise EvalError("--workdir must not be empty")
    if "://" in workdir:
        raise EvalError(f"--workdir={workdir}: URL workdirs are not supported; use a local path")
    path = os.path.abspath(workdir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise EvalError(f"--workdir={workdir!r} is a file, not a directory")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise EvalError(f"--workdir={workdir!r}: {parent!r} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise EvalError(f"--workdir={workdir!r} is not writable ({parent!r})")


def plan(
    workdir: str, *, outer_steps: int = 0, seeds: int = 3, steps: int = 0, suite: str, config=None
) -> dict:
    """Check every argument of the job, writing nothing; ``EvalError`` / ``ConfigError`` (one
    line) for a bad one. Returns the config, the learned optimizer and the suite's tasks."""
    from eval.baselines import EvalError
    from eval.runner import resolve_tasks
    from meta_train import config as config_lib

    for name, value, low in (
        ("outer_steps", outer_steps, 0),
        ("seeds", seeds, 1),
        ("steps", steps, 0),
    ):
        if value < low:
            raise EvalError(f"--{name} must be >= {low}, got {value}")
    check_workdir(workdir)
    c = job_config() if config is None else config
    if outer_steps:
        c.outer_steps = int(outer_steps)
    config_lib.validate(c)
    lopt = config_lib.build_lopt(c)
    config_lib.build_zoo(c)
    task_list = resolve_tasks(suite)
    if not task_list:
        raise EvalError(f"suite {suite!r} has no tasks")
    return dict(config=c, lopt=lopt, tasks=task_list)


def run_main_job(
    workdir: str,
    *,
    outer_steps: int = 0,
    seeds: int = 3,
    steps: int = 0,
    suite: str = "embedded_heldout",
    progress: bool = True,
    config=None,
    checked: dict | None = None,
) -> dict:
    """Meta-train, evaluate, report (module doc). ``config``: the meta-training config (default
    :func:`job_config`); ``checked``: what :func:`plan` returned for these arguments, if the
    caller ran it already. Returns ``{"summary": Summary, "seconds": {...}, "verdict": str}``."""
    import learned_opt
    from eval import checks, report, runner
    from meta_train import outer, spec, train

    args = dict(outer_steps=outer_steps, seeds=seeds, steps=steps, suite=suite)
    p = checked or plan(workdir, config=config, **args)
    c, lopt = p["config"], p["lopt"]
    with checks.locked(workdir):  # one job per workdir
        mt_dir = os.path.join(workdir, "meta_train")
        theta0 = outer.initial_theta(spec.from_config(c))  # read once: the run starts from it
        t0 = time.perf_counter()
        argv = ["lopt-quickstart", *sys.argv[1:]]
        train.train(c, mt_dir, argv=argv, progress=progress, init_theta=theta0)
        t_meta = time.perf_counter() - t0

        init_dir = os.path.join(workdir, "initial_lopt")
        learned_opt.save(
            init_dir,
            lopt,
            theta0,
            metadata=dict(note="initial theta of the lopt-quickstart run", seed=c.seed),
        )
        candidates = [
            f"learned={os.path.join(mt_dir, 'export')}",
            f"learned_init={init_dir}",
            "adamw_cos",
            "adam",
        ]
        t1 = time.perf_counter()
        eval_dir = os.path.join(workdir, "eval")
        records = runner.run_suite(
            p["tasks"],
            candidates,
            num_steps=steps or None,
            num_seeds=seeds,
            workdir=eval_dir,
            progress=progress,
        )
        summary = report.write_report(records, eval_dir)
        t_eval = time.perf_counter() - t1
    seconds = dict(meta_train=t_meta, eval=t_eval)
    return dict(summary=summary, seconds=seconds, verdict=verdict(summary, c.outer_steps, t_meta))


def verdict(summary, outer_steps: int, meta_seconds: float) -> str:
    """What the meta-training bought, in plain words from the table: the learned optimizer's
    median speedups over the reference (training loss, held-out loss) against its initial
    rule's, and on how many tasks its final training loss is the lower."""
    agg = summary.aggregates

    def med(cand, name):
        return agg.get(cand, {}).get(f"median_{name}", math.nan)

    train = [med(c, "speedup") for c in CANDIDATES[:2]]
    held = [med(c, "eval_speedup") for c in CANDIDATES[:2]]
    pairs = [
        (summary.cells.get((t, "learned")), summary.cells.get((t, "learned_init")))
        for t in summary.tasks
    ]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    lower = sum(
        (not a.diverged) and (b.diverged or a.final_train < b.final_train) for a, b in pairs
    )
    ref = f"tuned {summary.reference}" if summary.reference else "the reference"
    sign = lambda x: (x[0] > x[1]) - (x[0] < x[1])  # learned vs initial: 1 better, -1 worse
    words = {
        (1, 1): "it trains faster than its initial rule and reaches a good held-out loss sooner",
        (1, 0): "it trains faster than its initial rule",
        (1, -1): "it trains faster than its initial rule but reaches a good held-out loss later",
        (0, 1): "it reaches a good held-out loss sooner than its initial rule",
        (-1, 1): "it trains slower than its initial rule but reaches a good held-out loss sooner",
    }.get((sign(train), sign(held)), "it is no better than its initial rule")
    return (
        f"What {outer_steps} outer steps of meta-training ({meta_seconds / 60:.1f} min here) "
        f"bought: median speedup over {ref} on training loss {train[1]:.3g} -> {train[0]:.3g} "
        f"and on held-out loss {held[1]:.3g} -> {held[0]:.3g} (initial rule -> learned), a "
        f"lower final training loss on {lower} of {len(pairs)} held-out tasks: {words}."
    )


def main(argv) -> None:
    del argv  # tasks.cli_common refuses extra arguments
    from absl import logging as absl_logging

    from meta_train.cli import (
        CPU_OPTIMIZATION_LEVEL,
        cpu_device_count,
        set_cpu_compilation,
        set_cpu_devices,
    )

    # before jax's backend: compiles faster, runs as fast; one CPU device per core
    set_cpu_compilation(CPU_OPTIMIZATION_LEVEL)
    set_cpu_devices(cpu_device_count(0, int(job_config().pairs_per_group)))
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("meta_train").setLevel(logging.INFO)
    from eval.baselines import EvalError
    from meta_train.checkpoint import WorkdirMismatchError
    from meta_train.config import ConfigError
    from meta_train.workdir import WorkdirError
    from tasks import DatasetNotPreparedError

    errors = (EvalError, ConfigError, WorkdirMismatchError, WorkdirError, DatasetNotPreparedError)
    args = dict(
        outer_steps=FLAGS.outer_steps, seeds=FLAGS.seeds, steps=FLAGS.steps, suite=FLAGS.suite
    )
    try:
        checked = plan(FLAGS.workdir, **args)  # every argument, before anything is written
    except errors as e:
        cli_common.die(COMMAND.name, str(e))
    try:
        out = run_main_job(FLAGS.workdir, progress=FLAGS.progress, checked=checked, **args)
    except errors as e:
        cli_common.die(COMMAND.name, str(e), own_line=True)  # after the progress bars
    eval_dir = os.path.join(FLAGS.workdir, "eval")
    with open(os.path.join(eval_dir, "summary.md")) as f:
        print(f.read())
    sec = out["seconds"]
    print(
        f"meta-training {sec['meta_train']:.0f} s, evaluation {sec['eval']:.0f} s; wrote "
        f"{eval_dir}/summary.md, summary.csv, curves.png, speedups.png, aggregate.png; the "
        f"learned optimizer is in {FLAGS.workdir}/meta_train/export (learned_opt.load(path)), "
        f"its initial rule in {FLAGS.workdir}/initial_lopt."
    )
    print()
    print(out["verdict"])


def run() -> None:
    """Console entry point (``lopt-quickstart``)."""
    cli_common.run(COMMAND, main, define_flags)


if __name__ == "__main__":
    run()
