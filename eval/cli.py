"""``lopt-eval``: evaluate optimizers on a task suite against learning-rate-tuned optax baselines.

    lopt-eval --suite=embedded_heldout --optimizers=adam,adam@1e-3,hyper_small_v2 \\
        --steps=0 --seeds=3 --workdir=runs/eval

writes DIR/results.jsonl (one line per run; an interrupted evaluation resumes from it),
DIR/summary.md, summary.csv, summary.json, curves.png and speedups.png. ``--steps=0`` trains each
task for its own default number of steps. ``lopt-eval --list`` prints the known suites and
optimizers.
"""

from __future__ import annotations

import logging
import os
import sys

from absl import app, flags

from eval.baselines import BASELINES, EvalError, lr_grid

FLAGS = flags.FLAGS
flags.DEFINE_string("suite", "embedded_heldout", "Task suite name (see --list).")
flags.DEFINE_list("tasks", [], "Only these task names (of the suite, or registered names).")
flags.DEFINE_list(
    "optimizers",
    ["adam"],
    "Comma list: adam, adamw, sgd, lion, rmsprop, "
    "NAME@RATE (fixed rate, e.g. adam@1e-3), a shipped learned optimizer, a path "
    "to a saved one, or LABEL=SPEC for any of these.",
)
flags.DEFINE_integer("steps", 0, "Training steps per run; 0 = each task's default.")
flags.DEFINE_integer("seeds", 3, "Seeds per configuration.")
flags.DEFINE_string("workdir", None, "Output directory (resumable).")
flags.DEFINE_float("lr_min", 1e-4, "Smallest learning rate of the sweep grid.")
flags.DEFINE_float("lr_max", 1e-1, "Largest learning rate of the sweep grid.")
flags.DEFINE_integer("num_lrs", 7, "Number of log-spaced rates in the sweep grid.")
flags.DEFINE_list("lrs", [], "Explicit sweep rates (overrides lr_min/lr_max/num_lrs).")
flags.DEFINE_integer("eval_every", 0, "Held-out evaluation interval; 0 = steps // 20.")
flags.DEFINE_string("reference", "adam", "Tuned baseline that speedups and scores refer to.")
flags.DEFINE_integer("seed", 0, "Base random seed.")
flags.DEFINE_float("smooth", 0.05, "Smoothing window as a fraction of the run length.")
flags.DEFINE_bool("list", False, "Print the known suites and optimizers, then exit.")


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
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if FLAGS.list:
        _print_known()
        return 0
    if not FLAGS.workdir:
        raise EvalError("--workdir is required")
    from eval import runner

    try:
        rates = (
            [float(r) for r in FLAGS.lrs]
            if FLAGS.lrs
            else list(lr_grid(FLAGS.lr_min, FLAGS.lr_max, FLAGS.num_lrs))
        )
    except ValueError as e:
        raise EvalError(f"bad learning-rate grid: {e}") from e
    task_list = _select_tasks(FLAGS.suite, FLAGS.tasks)
    runner.run_suite(
        task_list,
        ",".join(FLAGS.optimizers),
        num_steps=FLAGS.steps or None,
        num_seeds=FLAGS.seeds,
        workdir=FLAGS.workdir,
        lr_grid=rates,
        eval_every=FLAGS.eval_every or None,
        reference=FLAGS.reference or None,
        base_seed=FLAGS.seed,
        smooth_fraction=FLAGS.smooth,
    )
    summary = os.path.join(FLAGS.workdir, "summary.md")
    with open(summary) as f:
        print(f.read())
    print(f"wrote {FLAGS.workdir}/results.jsonl, summary.md, summary.csv, curves.png, speedups.png")
    return 0


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
    app.run(_main)


if __name__ == "__main__":
    run()
