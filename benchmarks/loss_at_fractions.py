"""Each candidate's training loss at fractions of its run (an ``lopt-eval`` workdir); prints JSON.

    python benchmarks/loss_at_fractions.py --results WORKDIR/results.jsonl \
        [--tasks mlp_fmnist28_w192_d2,...] [--candidates muon_rel_mup@0.02,...] \
        [--fractions 0.02,0.05,0.1,0.2,0.4,0.6,0.8,1.0]

For each (task, candidate): the mean training-loss curve over seeds that ``lopt-eval``'s summary
uses (a tuned baseline at its chosen rate), smoothed as it smooths them (trailing mean over
``eval.metrics.smoothing_window``), read at step ``ceil(f * T) - 1`` for each fraction ``f`` of
the run's ``T`` steps. A speedup says who reaches the reference's final loss first; this says
*when* a candidate is ahead or behind: a learned optimizer far ahead in the first few percent and
behind from there on buys early progress with later loss (README, ``scale_free_horizon``).
"""

from __future__ import annotations

import argparse
import collections
import json
import math

from eval import metrics, records, summary


def loss_at_fractions(recs: list[dict], fractions: list[float], smooth_fraction=0.05) -> dict:
    """``{task: {candidate: [loss at each fraction]}}`` from ``lopt-eval``'s own cells
    (:func:`eval.summary.summarize`: the latest record per seed, a tuned baseline's chosen rate,
    the seeds' mean curve); ``None`` where the chosen config diverged."""
    cells = summary.summarize(recs, references=[]).cells
    out: dict = collections.defaultdict(dict)
    for (task, cand), cell in cells.items():
        if cell.train_curve is None:
            out[task][cand] = None
            continue
        n = len(cell.train_curve)
        s = metrics.smooth(cell.train_curve, metrics.smoothing_window(n, smooth_fraction))
        idx = [max(math.ceil(f * n) - 1, 0) for f in fractions]
        out[task][cand] = [round(float(s[i]), 5) for i in idx]
    return dict(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="an lopt-eval workdir's results.jsonl")
    ap.add_argument("--tasks", default="", help="comma-separated; default: all")
    ap.add_argument("--candidates", default="", help="comma-separated labels; default: all")
    ap.add_argument("--fractions", default="0.02,0.05,0.1,0.2,0.4,0.6,0.8,1.0")
    args = ap.parse_args()
    try:
        fractions = [float(f) for f in args.fractions.split(",")]
    except ValueError:
        ap.error(f"--fractions must be comma-separated numbers, got {args.fractions!r}")
    if not all(0.0 < f <= 1.0 for f in fractions):
        ap.error(f"--fractions must lie in (0, 1], got {args.fractions}")
    recs = records.read_records(args.results)
    if not recs:
        ap.error(f"no records in {args.results}")
    keep = lambda field, allowed: not allowed or field in allowed.split(",")
    recs = [r for r in recs if keep(r["task"], args.tasks)]
    recs = [r for r in recs if keep(r["candidate"], args.candidates)]
    if not recs:
        ap.error(f"no records of --tasks={args.tasks} / --candidates={args.candidates}")
    out = dict(
        benchmark="loss_at_fractions",
        figure="smoothed mean training loss over seeds at fractions of the run",
        results=args.results,
        fractions=fractions,
        losses=loss_at_fractions(recs, fractions),
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
