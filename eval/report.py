"""Write an evaluation's summary.md, summary.csv, summary.json and PNG plots into its workdir.

Plots: ``curves.png`` (loss curves per task), ``speedups.png`` (a row per task, a dot per
candidate on a log axis, the line at 1; one panel per reference and loss), ``aggregate.png``
(median and IQM speedup with 95% CIs per candidate, against each reference).

Everything here is derived from the run records alone (see :mod:`eval.summary`), so a report can
be rebuilt from ``results.jsonl`` at any time: ``write_report(read_records(path), workdir)``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os

import numpy as np

from eval import metrics, paired
from eval.summary import Cell, Summary, summarize


def _f(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _status(cell: Cell) -> str:
    if not cell.diverged:
        return "ok"
    if cell.tuned and cell.lr is None:
        return "diverged (every rate)"
    return f"diverged ({cell.num_diverged}/{cell.num_seeds} seeds)"


def _ref_name(s: Summary, ref: str | None = None) -> str:
    """'tuned `adam`' for a swept reference, '`adam@0.001`' for a fixed one."""
    ref = s.reference if ref is None else ref
    if ref is None:
        return "(none)"
    tuned = any(c.tuned for (_, name), c in s.cells.items() if name == ref)
    return f"tuned `{ref}`" if tuned else f"`{ref}`"


def _ci(ci) -> str:
    return f"[{_f(ci[0], 3)}, {_f(ci[1], 3)}]"


def _secs(x: float) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    return "never" if math.isinf(x) else f"{x:.3g} s"


def _div_mark(cell: Cell) -> str:
    return " (diverged)" if cell.diverged else ""


def _cell_text(cell: Cell | None, metric: str, ref: str | None = None) -> str:
    if cell is None:
        return ""
    v = cell.vs.get(ref if ref is not None else cell.primary)
    if metric == "speedups":  # training / held-out
        if v is None:
            return "n/a" + _div_mark(cell)
        return f"{_f(v.speedup, 3)} / {_f(v.eval_speedup, 3)}{_div_mark(cell)}"
    if metric == "score":
        return ("n/a" if v is None else _f(v.score, 3)) + _div_mark(cell)
    if metric == "time":
        ms = "n/a" if cell.step_s is None else f"{1e3 * cell.step_s:.3g}"
        if v is None:
            return f"{ms} ms"
        return f"{ms} ms; {_secs(v.ttr_s)} / {_secs(v.eval_ttr_s)}"
    if cell.diverged:
        return _status(cell)
    if metric == "final_train":
        lr = "" if cell.lr is None else f" @ {cell.lr:.2g}{'*' if cell.lr_at_edge else ''}"
        return f"{_f(cell.final_train)} ± {_f(cell.final_train_std, 2)}{lr}"
    return _f(cell.final_eval)


METRICS_NOTE = (
    "Which metric each figure uses: tuned baselines' rates are chosen on *training* loss; "
    "**speedup** cells read *training-loss speedup / held-out-loss speedup* (steps the reference "
    "needs to reach its own final training loss, or its best held-out loss, / steps the "
    "candidate needs; below 1: never got there; training loss smoothed, held-out loss at the "
    "evaluation points, first time reached, as AlgoPerf's time to a validation target); the "
    "normalised score is on training loss; time to result is the candidate's time per step "
    "times the steps to reach the reference's final training / best held-out loss. A diverged run "
    "(NaN/inf, or final training loss above 2x the initial loss) counts as speedup 0 and score "
    "0 and is never chosen as a best rate. Definitions: `eval/metrics.py`, `eval/summary.py`."
)


def summary_markdown(s: Summary, extra: list[str] | None = None) -> str:
    """The Markdown report: one table per metric (row per task, column per candidate), then the
    ``extra`` lines (the paired section, :mod:`eval.paired`)."""
    cells = s.cells
    lines = ["# Evaluation summary", ""]
    first = next(iter(cells.values()), None)
    refs = " and ".join(_ref_name(s, r) for r in s.references) or "(none)"
    if first is not None:
        lines += [
            f"{len(s.tasks)} tasks, {len(s.candidates)} candidates, {first.num_seeds} seeds "
            f"per configuration. References: {refs}.",
            "",
            METRICS_NOTE,
            "",
        ]
    head = "| task | " + " | ".join(f"`{c}`" for c in s.candidates) + " |"
    rule = "|---" * (len(s.candidates) + 1) + "|"

    def table(title, metric, agg_rows, ref=None, aggregates=None):
        aggregates = s.aggregates if aggregates is None else aggregates
        out = [f"## {title}", "", head, rule]
        for t in s.tasks:
            out.append(
                f"| {t} | "
                + " | ".join(_cell_text(cells.get((t, c)), metric, ref) for c in s.candidates)
                + " |"
            )
        for name, fn in agg_rows:
            out.append(
                f"| **{name}** | " + " | ".join(fn(aggregates[c]) for c in s.candidates) + " |"
            )
        return out + [""]

    def pair(a, key):
        return f"{_f(a[key], 3)} / {_f(a['median_eval_' + key[len('median_') :]], 3)}"

    for ref in s.references:
        lines += table(
            f"Speedup over {_ref_name(s, ref)}: training loss / held-out loss",
            "speedups",
            [
                ("median (train / held-out)", lambda a: pair(a, "median_speedup")),
                (
                    "median train [95% CI]",
                    lambda a: f"{_f(a['median_speedup'], 3)} {_ci(a['median_speedup_ci'])}",
                ),
                (
                    "IQM train [95% CI]",
                    lambda a: f"{_f(a['iqm_speedup'], 3)} {_ci(a['iqm_speedup_ci'])}",
                ),
                (
                    "IQM held-out [95% CI]",
                    lambda a: f"{_f(a['iqm_eval_speedup'], 3)} {_ci(a['iqm_eval_speedup_ci'])}",
                ),
            ],
            ref,
            s.by_reference[ref],
        )
    ref = _ref_name(s)
    lines += table(
        f"Normalised score (training loss; 1 = final loss of {ref}, 0 = initial loss)",
        "score",
        [("IQM [95% CI]", lambda a: f"{_f(a['iqm_score'], 3)} {_ci(a['iqm_score_ci'])}")],
    )
    lines += table(
        "Final training loss (smoothed; mean ± std over seeds @ chosen rate)",
        "final_train",
        [("diverged tasks", lambda a: f"{a['diverged_tasks']}/{a['num_tasks']}")],
    )
    lines += table(
        "Final held-out loss (mean over seeds)",
        "final_eval",
        [("mean wall s / run (vmapped program)", lambda a: _f(a["mean_wall_s"], 3))],
    )
    if s.reference is not None:
        lines += table(
            f"Wall clock: ms per step; time to result (s) = time to reach {ref}'s final "
            "training / best held-out loss",
            "time",
            [
                ("median ms per step", lambda a: _f(1e3 * a["median_step_s"], 3)),
                ("tasks where train target reached", lambda a: f"{a['reached']}/{a['num_tasks']}"),
            ],
        )
    lines += extra or []
    lines += [
        "`*` the chosen rate is at the edge of the grid: widen the grid to tune properly.",
        "Time per step: one un-batched run of the candidate, measured apart from the vmapped "
        "evaluation (on a shared machine it is noisy).",
        "",
    ]
    return "\n".join(lines)


def write_csv(s: Summary, path: str) -> None:
    """summary.csv: a row per task, columns ``<candidate>:<metric>``, and an aggregate row.

    ``speedup``, ``eval_speedup``, ``score``, ``ttr_s``, ``eval_ttr_s`` are against the first
    reference; ``speedup_vs_REF`` and ``eval_speedup_vs_REF`` against each other reference."""
    others = s.references[1:]
    fields = ["speedup", "eval_speedup", "score", "ttr_s", "eval_ttr_s"]
    fields += [f"{m}_vs_{r}" for r in others for m in ("speedup", "eval_speedup")]
    fields += ["final_train", "final_train_std", "final_eval", "lr", "status", "step_ms"]
    header = ["task"] + [f"{c}:{f}" for c in s.candidates for f in fields]

    def values(cell: Cell) -> list:
        v = cell.vs.get(cell.primary)
        row = [getattr(v, m, math.nan) for m in ("speedup", "eval_speedup", "score")]
        row += [getattr(v, m, math.nan) for m in ("ttr_s", "eval_ttr_s")]
        for r in others:
            w = cell.vs.get(r)
            row += [getattr(w, "speedup", math.nan), getattr(w, "eval_speedup", math.nan)]
        return row + [
            cell.final_train,
            cell.final_train_std,
            cell.final_eval,
            "" if cell.lr is None else cell.lr,
            _status(cell),
            "" if cell.step_s is None else 1e3 * cell.step_s,
        ]

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for t in s.tasks:
            row = [t]
            for c in s.candidates:
                cell = s.cells.get((t, c))
                row += [""] * len(fields) if cell is None else values(cell)
            w.writerow(row)
        row = ["aggregate: median speedups; IQM score"]
        for c in s.candidates:
            a = s.aggregates[c]
            finals = [s.cells[(t, c)] for t in s.tasks if (t, c) in s.cells]
            row += [a["median_speedup"], a["median_eval_speedup"], a["iqm_score"], "", ""]
            for r in others:
                b = s.by_reference[r][c]
                row += [b["median_speedup"], b["median_eval_speedup"]]
            row += [
                float(np.median([x.final_train for x in finals])),
                "",
                float(np.median([x.final_eval for x in finals])),
                "",
                f"{a['diverged_tasks']}/{a['num_tasks']} diverged",
                1e3 * a["median_step_s"],
            ]
        w.writerow(row)


def _plot_curves(s: Summary, path: str, smooth_fraction: float) -> None:
    from matplotlib.figure import Figure

    n = len(s.tasks)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(5 * cols, 3.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    colors = _cycle()
    for ax, task in zip(axes.ravel(), s.tasks, strict=False):
        for i, c in enumerate(s.candidates):
            cell = s.cells.get((task, c))
            if cell is None:
                continue
            color = colors[i % len(colors)]
            label = c if cell.lr is None or not cell.tuned else f"{c} ({cell.lr:.2g})"
            if cell.diverged:
                ax.plot([], [], color=color, label=f"{c}: {_status(cell)}")
                continue
            curve = np.asarray(cell.train_curve)
            smooth = metrics.smooth(curve, metrics.smoothing_window(curve.size, smooth_fraction))
            ax.plot(
                np.arange(curve.size), smooth, color=color, label=label
            )  # x[t]: after t updates
            ax.plot(cell.eval_steps, cell.eval_curve, color=color, ls="--", marker=".", lw=0.8)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (train —, held-out --)")
        if all(
            (v is None or v > 0)
            for c in s.candidates
            for v in (getattr(s.cells.get((task, c)), "train_curve", None) or [1.0])
        ):
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _cycle() -> list:
    """The colors of matplotlib's property cycle (rcParams, as the caller set them)."""
    import matplotlib

    return matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]


def _colors(s: Summary) -> dict:
    colors = _cycle()
    return {c: colors[i % len(colors)] for i, c in enumerate(s.candidates)}  # as in curves


def _log_axis(ax) -> None:
    """A log x axis labelled with plain numbers (0.1, 0.2, 0.5, 1, 2, ...), no minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _panels(s: Summary, labels: list[str], width: float, row_h: float, top: float):
    """A figure of one panel per (reference, training / held-out loss), ``labels`` as rows."""
    from matplotlib.figure import Figure

    panels = [(r, m) for r in s.references for m in ("speedup", "eval_speedup")]
    n = len(labels)
    fig = Figure(figsize=(width * len(panels) + 2.4, top + row_h * n))
    axes = fig.subplots(1, len(panels), squeeze=False)
    return fig, list(zip(axes[0], panels, strict=True)), np.arange(n)[::-1]


def _decorate(s: Summary, ax, ref: str, metric: str, labels: list, y, xlabel: str) -> None:
    ax.axvline(1.0, color="black", lw=0.8)
    _log_axis(ax)
    ax.set_yticks(y, labels, fontsize=7)
    what = "training loss" if metric == "speedup" else "held-out loss"
    ax.set_title(f"vs {_ref_name(s, ref).replace('`', '')}: {what}", fontsize=8)
    ax.set_xlabel(xlabel, fontsize=7)
    ax.tick_params(axis="x", labelsize=7)


def _plot_speedups(s: Summary, path: str) -> None:
    """One row per task, a dot per candidate on a log axis, the reference line at 1; one panel
    per (reference, training / held-out loss). Diverged cells: an x at the left edge."""
    from matplotlib.lines import Line2D

    fig, panels, y = _panels(s, s.tasks, 3.6, 0.34, 1.6)
    color_of = _colors(s)
    n = len(s.tasks)
    values = [getattr(c.vs.get(r), m, math.nan) for c in s.cells.values() for _, (r, m) in panels]
    pos = [v for v in values if math.isfinite(v) and v > 0]
    lo, hi = (min(pos + [0.5]) / 1.6, max(pos + [2.0]) * 1.6) if pos else (0.1, 10.0)
    for k, (ax, (ref, m)) in enumerate(panels):
        for i, c in enumerate(s.candidates):
            off = (i - (len(s.candidates) - 1) / 2) * min(0.6 / max(1, len(s.candidates)), 0.12)
            for j, t in enumerate(s.tasks):
                cell = s.cells.get((t, c))
                v = getattr(cell.vs.get(ref), m, math.nan) if cell is not None else math.nan
                if cell is not None and cell.diverged:
                    ax.scatter([lo * 1.05], [y[j] + off], marker="x", color=color_of[c], s=22)
                elif math.isfinite(v) and v > 0:
                    mk = "s" if c == ref else "o"
                    ax.scatter([v], [y[j] + off], marker=mk, color=color_of[c], s=18, zorder=3)
        labels = s.tasks if k == 0 else [""] * n
        _decorate(s, ax, ref, m, labels, y, "speedup (log; x = diverged)")
        ax.set_xlim(lo, hi)
        ax.set_ylim(-0.7, n - 0.3)
        ax.grid(axis="y", lw=0.3, alpha=0.5)
    handles = [Line2D([], [], marker="o", ls="", color=color_of[c], label=c) for c in s.candidates]
    ncol = min(6, len(handles))
    fig.legend(handles=handles, loc="upper center", ncol=ncol, fontsize=7, frameon=False)
    fig.tight_layout()
    height = fig.get_size_inches()[1]
    fig.subplots_adjust(top=1 - (0.35 + 0.2 * math.ceil(len(handles) / ncol)) / height)
    fig.savefig(path, dpi=110)


def _plot_aggregate(s: Summary, path: str) -> None:
    """Median (over tasks) and IQM (over task x seed) speedup with 95% CIs, per candidate,
    against each reference, on training and held-out loss."""
    fig, panels, y = _panels(s, s.candidates, 3.4, 0.36, 1.0)
    color_of = _colors(s)
    for k, (ax, (ref, m)) in enumerate(panels):
        agg = s.by_reference[ref]
        for j, c in enumerate(s.candidates):
            for stat, mk, dy in (("median", "o", 0.14), ("iqm", "s", -0.14)):
                v, (a, b) = agg[c][f"{stat}_{m}"], agg[c][f"{stat}_{m}_ci"]
                if not (math.isfinite(v) and v > 0):
                    continue
                err = None
                if math.isfinite(a) and math.isfinite(b):
                    err = [[max(v - a, 0)], [max(b - v, 0)]]
                ax.errorbar(
                    [v], [y[j] + dy], xerr=err, fmt=mk, color=color_of[c], ms=4, capsize=2, lw=1
                )
        labels = s.candidates if k == 0 else [""] * len(s.candidates)
        _decorate(s, ax, ref, m, labels, y, "speedup: o median, ■ IQM (95% CI)")
        ax.grid(axis="x", lw=0.3, alpha=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_report(
    records: list[dict],
    workdir: str,
    *,
    reference: str | None = "adamw_cos",
    references: list[str | None] | None = None,
    smooth_fraction: float = 0.05,
    paired_with: str | None = None,
) -> Summary:
    """Write summary.md/csv/json, curves.png, speedups.png and aggregate.png; return summary.

    ``references`` as in :func:`eval.summary.summarize` (default ``[reference, "adam"]``);
    ``paired_with``: a candidate's label, to add every other candidate's seed-by-seed difference
    from it (:mod:`eval.paired`) to summary.md and summary.json."""
    s = summarize(
        records, reference=reference, references=references, smooth_fraction=smooth_fraction
    )
    diffs = {}
    if paired_with:
        diffs = paired.paired_differences(records, s, paired_with, smooth_fraction)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "summary.md"), "w") as f:
        extra = paired.paired_markdown(s, diffs, paired_with) if paired_with else None
        f.write(summary_markdown(s, extra))
    write_csv(s, os.path.join(workdir, "summary.csv"))
    agg = {
        str(r): {
            c: {k: (list(v) if isinstance(v, tuple) else v) for k, v in a.items()}
            for c, a in by_c.items()
        }
        for r, by_c in s.by_reference.items()
    }
    cells = []
    for cell in s.cells.values():
        d = {
            k: v
            for k, v in vars(cell).items()
            if k not in ("train_curve", "eval_curve", "eval_steps", "rate_finals", "vs")
        }
        d["vs"] = {
            r: {k: x for k, x in dataclasses.asdict(v).items() if not k.startswith("boot_")}
            for r, v in cell.vs.items()
        }
        cells.append(d)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(
            _jsonable(
                {
                    "references": s.references,
                    "aggregates": agg,
                    "cells": cells,
                    "paired_with": paired_with,
                    "paired": [
                        {"task": t, "candidate": c, **dataclasses.asdict(d), "verdict": d.verdict}
                        for (t, c), d in diffs.items()
                    ],
                }
            ),
            f,
            indent=1,
        )
    _plot_curves(s, os.path.join(workdir, "curves.png"), smooth_fraction)
    if s.references:
        _plot_speedups(s, os.path.join(workdir, "speedups.png"))
        _plot_aggregate(s, os.path.join(workdir, "aggregate.png"))
    return s


def _jsonable(x):
    if isinstance(x, float):
        return x if math.isfinite(x) else (None if math.isnan(x) else str(x))
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x
