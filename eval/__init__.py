"""Evaluation of optimizers on task suites against learning-rate-tuned optax baselines.

    import eval
    records = eval.run_suite("embedded_heldout", "adamw_cos,muon,adam@1e-3,scale_free_v7",
                             num_seeds=3, workdir="runs/eval")
    summary = eval.summarize(records)           # cells and aggregates vs tuned adamw_cos and adam
    eval.write_report(records, "runs/eval")     # summary.md/csv/json, curves/speedups/aggregate.png

Command line: ``lopt-eval`` (see :mod:`eval.cli`). Metrics are defined in :mod:`eval.metrics`.
"""

from eval import metrics
from eval.baselines import (
    BASELINES,
    DEFAULT_LR_GRID,
    Candidate,
    EvalError,
    lr_grid,
    parse_candidate,
    parse_candidates,
    warmup_cosine,
)
from eval.records import read_records
from eval.report import summary_markdown, write_report
from eval.runner import run_suite
from eval.summary import Cell, Summary, summarize

__all__ = [
    "BASELINES",
    "DEFAULT_LR_GRID",
    "Candidate",
    "Cell",
    "EvalError",
    "Summary",
    "lr_grid",
    "metrics",
    "parse_candidate",
    "parse_candidates",
    "read_records",
    "run_suite",
    "summarize",
    "summary_markdown",
    "warmup_cosine",
    "write_report",
]
