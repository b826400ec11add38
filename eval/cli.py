"""``lopt-eval``: evaluate optimizers on a task suite against learning-rate-tuned optax baselines.

    lopt-eval --suite=embedded_heldout --optimizers=adamw_cos,adam,muon,adam@1e-3,hyper_small_v2 \\
        --steps=0 --seeds=3 --workdir=runs/eval

writes DIR/results.jsonl (one line per run, keyed by content; an interrupted evaluation resumes
from it, and adding a candidate runs only that candidate), DIR/summary.md, summary.csv,
summary.json, curves.png, speedups.png and aggregate.png. ``--steps=0`` trains each task for its
own default number of steps. ``lopt-eval --list`` prints the known suites and optimizers;
``lopt-eval --workdir=DIR --report_only`` rebuilds the report from DIR/results.jsonl.

Every argument is checked before anything is written: a refusal is one ``lopt-eval: error:``
line and exit code 2, and leaves no new workdir behind. One run at a time uses a workdir (the
lock of ``meta_train.workdir``); a second is refused naming the holder's pid and host.
"""

from __future__ import annotations

import logging
import os
import sys

from absl import flags

from eval import checks, paired
from eval.baselines import BASELINES, EvalError, check_rate, lr_grid
from tasks import cli_common

FLAGS = flags.FLAGS
COMMAND = cli_common.Command(
    name="lopt-eval",
    usage="lopt-eval --workdir=DIR [--suite=NAME] [--optimizers=A,B,...] [flags]",
    description=(
        "Train each candidate optimizer (learned optimizers and learning-rate-tuned optax "
        "baselines) on the tasks of a suite over several seeds, and write DIR/results.jsonl "
        "(one line per run; a rerun resumes from it and runs only what is missing), a table "
        "(summary.md, summary.csv, summary.json) and plots (curves.png, speedups.png, "
        "aggregate.png). Speedups are over --reference, tuned AdamW with warmup + cosine by "
        "default. Every argument is checked before anything is written."
    ),
    epilog=(
        "examples:\n"
        "  lopt-eval --workdir=runs/eval --optimizers=adamw_cos,adam,muon,scale_free_v7\n"
        "  lopt-eval --list                        (the suites and optimizers)\n"
        "  lopt-eval --workdir=runs/eval --report_only   (rebuild the report)"
    ),
)


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Define the flags of ``lopt-eval`` in ``flag_values``. :func:`run` calls it, not the import,
    so that the other entry modules (``eval.main_job`` has its own ``--workdir``) can be imported
    beside this one."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string(
        "workdir", None, "Output directory (resumable); required unless --list.", **fv
    )
    flags.DEFINE_string("suite", "embedded_heldout", "Task suite name (see --list).", **fv)
    flags.DEFINE_list(
        "tasks", [], "Only these task names (of the suite, or registered names).", **fv
    )
    flags.DEFINE_list(
        "optimizers",
        ["adamw_cos"],
        "Comma list: adamw_cos, nadamw_cos, lion_cos, muon (warmup + cosine), adam, adamw, sgd, "
        "lion, rmsprop (constant rate), NAME@RATE (fixed rate, e.g. adam@1e-3), a shipped learned "
        "optimizer, a path to a saved one, or LABEL=SPEC for any of these.",
        **fv,
    )
    flags.DEFINE_integer("steps", 0, "Training steps per run; 0 = each task's default.", **fv)
    flags.DEFINE_integer("seeds", 3, "Seeds per configuration.", **fv)
    flags.DEFINE_float("lr_min", 1e-4, "Smallest learning rate of the sweep grid.", **fv)
    flags.DEFINE_float("lr_max", 1.0, "Largest learning rate of the sweep grid.", **fv)
    flags.DEFINE_integer("num_lrs", 9, "Number of log-spaced rates in the sweep grid.", **fv)
    flags.DEFINE_list("lrs", [], "Explicit sweep rates (overrides lr_min/lr_max/num_lrs).", **fv)
    flags.DEFINE_integer("eval_every", 0, "Held-out evaluation interval; 0 = steps // 20.", **fv)
    flags.DEFINE_string(
        "reference",
        "adamw_cos",
        "Baseline (tuned, or NAME@RATE) that speedups and scores refer to.",
        **fv,
    )
    flags.DEFINE_string(
        "constant_reference",
        "adam",
        "A second reference reported beside --reference (tuned constant Adam, which published "
        "learned optimizers report against); empty for none.",
        **fv,
    )
    flags.DEFINE_integer(
        "time_steps",
        100,
        "Steps of the separate time-per-step measurement; 0 = do not measure.",
        **fv,
    )
    flags.DEFINE_bool(
        "report_only",
        False,
        "Rebuild the report from WORKDIR/results.jsonl without running anything.",
        **fv,
    )
    flags.DEFINE_string(
        "paired_with",
        "",
        "A candidate's label: add every other candidate's difference from it, seed by seed "
        "(final training loss and speedup, mean ± standard error), to the report.",
        **fv,
    )
    flags.DEFINE_integer("seed", 0, "Base random seed.", **fv)
    flags.DEFINE_float("smooth", 0.05, "Smoothing window as a fraction of the run length.", **fv)
    flags.DEFINE_bool("progress", True, "Show a progress bar (else a log line per program).", **fv)
    flags.DEFINE_bool("list", False, "Print the known suites and optimizers, then exit.", **fv)


def _print_known() -> None:
    import tasks as task_zoo

    print("suites:", ", ".join(task_zoo.suite_names()))
    print("baselines:", ", ".join(sorted(BASELINES)), "(and NAME@RATE)")
    try:
        import learned_opt

        print("shipped learned optimizers:", ", ".join(learned_opt.pretrained_names()) or "(none)")
    except (ImportError, AttributeError):
        pass


def _select_tasks(suite: str, names: list[str]):
    from eval.runner import resolve_tasks

    if not names:
        return resolve_tasks(suite)
    pool = {t.name: t for t in resolve_tasks(suite)} if suite else {}
    # a name of the suite, else any registered task name (tasks.get)
    return [pool[n] if n in pool else resolve_tasks([n])[0] for n in names]


def main(argv) -> int:
    del argv
    from meta_train.cli import CPU_OPTIMIZATION_LEVEL, set_cpu_compilation

    # before jax's backend: compiles faster, runs as fast
    set_cpu_compilation(CPU_OPTIMIZATION_LEVEL)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if FLAGS.list:
        _print_known()
        return 0
    if not FLAGS.workdir:
        raise EvalError("--workdir is required")
    # every argument is checked before anything is written (one-line errors, exit 2)
    checks.check_smooth(FLAGS.smooth)
    refs = [FLAGS.reference or None, FLAGS.constant_reference or None]
    if FLAGS.report_only:
        checks.check_report_only(FLAGS.workdir)
    else:
        plan = _plan(refs)
    with checks.locked(FLAGS.workdir) as workdir:  # one run per workdir
        checks.check_results(workdir)
        if FLAGS.report_only:
            _report_only(refs)
        else:
            _evaluate(plan)
    summary = os.path.join(FLAGS.workdir, "summary.md")
    with open(summary) as f:
        print(f.read())
    print(
        f"wrote {FLAGS.workdir}/results.jsonl, summary.md, summary.csv, curves.png, "
        "speedups.png, aggregate.png"
    )
    return 0


def _report_only(refs) -> None:
    """Rebuild the report from WORKDIR/results.jsonl."""
    from eval import records, report

    recs = records.read_records(os.path.join(FLAGS.workdir, records.RESULTS_FILE))
    if not recs:
        raise EvalError(f"no runs in {FLAGS.workdir}/{records.RESULTS_FILE}")
    report.write_report(
        recs,
        FLAGS.workdir,
        references=refs,
        smooth_fraction=FLAGS.smooth,
        paired_with=FLAGS.paired_with or None,
    )


def _plan(refs) -> dict:
    """Check the evaluation's arguments, writing nothing.

    Args:
      refs: the ``--reference`` and ``--constant_reference`` specs (None for none).

    Returns:
      dict(tasks=[Task], candidates=[Candidate] (the references first where absent),
      references=[label], reference_specs=refs, rates=[float]); ``EvalError`` for any bad
      argument.
    """
    from eval import runner

    for name in ("steps", "eval_every", "time_steps"):  # 0 means "the default" / "off"
        if getattr(FLAGS, name) < 0:
            raise EvalError(f"--{name} must be >= 0, got {getattr(FLAGS, name)}")
    if FLAGS.seeds < 1:
        raise EvalError(f"--seeds must be >= 1, got {FLAGS.seeds}")
    if FLAGS.lrs:
        rates = [check_rate(r, " in --lrs") for r in FLAGS.lrs]
    else:
        try:
            rates = list(lr_grid(FLAGS.lr_min, FLAGS.lr_max, FLAGS.num_lrs))
        except ValueError as e:
            raise EvalError(str(e)) from e
    task_list = _select_tasks(FLAGS.suite, FLAGS.tasks)
    if not task_list:
        raise EvalError(f"suite {FLAGS.suite!r} has no tasks")
    cands, labels = runner.resolve_candidates(",".join(FLAGS.optimizers), refs, rates)
    if FLAGS.paired_with:
        paired.check_base(FLAGS.paired_with, [c.label for c in cands])
    return dict(
        tasks=task_list, candidates=cands, references=labels, reference_specs=refs, rates=rates
    )


def _evaluate(plan: dict) -> None:
    """Run (or resume) the evaluation of :func:`_plan` and write its report."""
    from eval import report, runner

    refs = plan["reference_specs"]
    recs = runner.run_suite(
        plan["tasks"],
        plan["candidates"],
        num_steps=FLAGS.steps or None,
        num_seeds=FLAGS.seeds,
        workdir=FLAGS.workdir,
        lr_grid=plan["rates"],
        eval_every=FLAGS.eval_every or None,
        reference=refs[0],
        constant_reference=refs[1],
        base_seed=FLAGS.seed,
        smooth_fraction=FLAGS.smooth,
        time_steps=FLAGS.time_steps,
        progress=FLAGS.progress,
    )
    report.write_report(
        recs,
        FLAGS.workdir,
        references=plan["references"],
        smooth_fraction=FLAGS.smooth,
        paired_with=FLAGS.paired_with or None,
    )


def _main(argv) -> None:
    from tasks import DatasetNotPreparedError

    try:
        code = main(argv)
    except (EvalError, DatasetNotPreparedError) as e:
        print(f"lopt-eval: error: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print(
            "lopt-eval: interrupted; finished runs are in results.jsonl and the same command "
            "resumes from them",
            file=sys.stderr,
        )
        code = 130
    sys.exit(code)


def run() -> None:
    """Console-script entry point (``lopt-eval``)."""
    cli_common.run(COMMAND, _main, define_flags)


if __name__ == "__main__":
    run()
