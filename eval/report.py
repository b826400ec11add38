"""Write an evaluation's summary.md, summary.csv, summary.json and PNG plots into its workdir.

Everything here is derived from the run records alone (see :mod:`eval.summary`), so a report can
be rebuilt from ``results.jsonl`` at any time: ``write_report(read_records(path), workdir)``.
"""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np

from eval import metrics
from eval.summary import Cell, Summary, summarize


def _f(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _status(cell: Cell) -> str:
    if not cell.diverged:
        return "ok"
    if cell.tuned and cell.lr is None:
        return "diverged (every rate)"
    return f"diverged ({cell.num_diverged}/{cell.num_seeds} seeds)"


def _ref_name(s: Summary) -> str:
    """'tuned `adam`' for a swept reference, '`adam@0.001`' for a fixed one."""
    if s.reference is None:
        return "(none)"
    tuned = any(c.tuned for (_, name), c in s.cells.items() if name == s.reference)
    return f"tuned `{s.reference}`" if tuned else f"`{s.reference}`"


def _ci(ci) -> str:
    return f"[{_f(ci[0], 3)}, {_f(ci[1], 3)}]"


def _cell_text(cell: Cell | None, metric: str) -> str:
    if cell is None:
        return ""
    if cell.diverged and metric not in ("speedup", "score"):
        return _status(cell)
    if metric == "speedup":
        return _f(cell.speedup, 3) + (" (diverged)" if cell.diverged else "")
    if metric == "score":
        return _f(cell.score, 3) + (" (diverged)" if cell.diverged else "")
    if metric == "final_train":
        lr = "" if cell.lr is None else f" @ {cell.lr:.2g}{'*' if cell.lr_at_edge else ''}"
        return f"{_f(cell.final_train)} ± {_f(cell.final_train_std, 2)}{lr}"
    return _f(cell.final_eval)


def summary_markdown(s: Summary) -> str:
    """The Markdown report: one table per metric (row per task, column per candidate)."""
    cells = s.cells
    ref = _ref_name(s)
    lines = ["# Evaluation summary", ""]
    first = next(iter(cells.values()), None)
    if first is not None:
        lines += [
            f"{len(s.tasks)} tasks, {len(s.candidates)} candidates, {first.num_seeds} seeds "
            f"per configuration. Reference: {ref}. Metrics are defined in "
            "`eval/metrics.py`.",
            "",
        ]
    head = "| task | " + " | ".join(f"`{c}`" for c in s.candidates) + " |"
    rule = "|---" * (len(s.candidates) + 1) + "|"

    def table(title, metric, agg_rows):
        out = [f"## {title}", "", head, rule]
        for t in s.tasks:
            out.append(
                f"| {t} | "
                + " | ".join(_cell_text(cells.get((t, c)), metric) for c in s.candidates)
                + " |"
            )
        for name, fn in agg_rows:
            out.append(
                f"| **{name}** | " + " | ".join(fn(s.aggregates[c]) for c in s.candidates) + " |"
            )
        return out + [""]

    lines += table(
        f"Speedup over {ref} (steps to reach its final loss; < 1: never did)",
        "speedup",
        [
            ("median", lambda a: _f(a["median_speedup"], 3)),
            ("IQM [95% CI]", lambda a: f"{_f(a['iqm_speedup'], 3)} {_ci(a['iqm_speedup_ci'])}"),
        ],
    )
    lines += table(
        f"Normalised score (1 = final loss of {ref}, 0 = initial loss)",
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
        [("mean wall s / run", lambda a: _f(a["mean_wall_s"], 3))],
    )
    lines += [
        "`*` the chosen rate is at the edge of the grid: widen the grid to tune properly.",
        "A diverged run (NaN/inf loss) counts as speedup 0 and score 0.",
        "",
    ]
    return "\n".join(lines)


def write_csv(s: Summary, path: str) -> None:
    """summary.csv: a row per task, columns ``<candidate>:<metric>``, and an aggregate row."""
    fields = ["speedup", "score", "final_train", "final_train_std", "final_eval", "lr", "status"]
    header = ["task"] + [f"{c}:{f}" for c in s.candidates for f in fields]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for t in s.tasks:
            row = [t]
            for c in s.candidates:
                cell = s.cells.get((t, c))
                if cell is None:
                    row += [""] * len(fields)
                    continue
                row += [
                    cell.speedup,
                    cell.score,
                    cell.final_train,
                    cell.final_train_std,
                    cell.final_eval,
                    "" if cell.lr is None else cell.lr,
                    _status(cell),
                ]
            w.writerow(row)
        row = ["aggregate: median speedup; IQM score"]
        for c in s.candidates:
            a = s.aggregates[c]
            finals = [s.cells[(t, c)] for t in s.tasks if (t, c) in s.cells]
            row += [
                a["median_speedup"],
                a["iqm_score"],
                float(np.median([x.final_train for x in finals])),
                "",
                float(np.median([x.final_eval for x in finals])),
                "",
                f"{a['diverged_tasks']}/{a['num_tasks']} diverged",
            ]
        w.writerow(row)


def _plot_curves(s: Summary, path: str, smooth_fraction: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(s.tasks)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
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
    plt.close(fig)


def _plot_speedups(s: Summary, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color_of = {c: colors[i % len(colors)] for i, c in enumerate(s.candidates)}  # as in curves
    cands = [c for c in s.candidates if c != s.reference]
    fig, ax = plt.subplots(figsize=(min(24.0, 3.0 + 0.6 * len(s.tasks) * max(1, len(cands))), 4.0))
    width = 0.8 / max(1, len(cands))
    x = np.arange(len(s.tasks))
    any_bar = False
    for i, c in enumerate(cands):
        vals = np.array([getattr(s.cells.get((t, c)), "speedup", math.nan) for t in s.tasks])
        pos = x - 0.4 + width * (i + 0.5)
        ok = np.isfinite(vals) & (vals > 0)
        any_bar |= bool(ok.any())
        ax.bar(pos[ok], vals[ok], width, color=color_of[c])
        if (~ok).any():  # diverged (0) or n/a: a cross at the bottom of the axes
            ax.scatter(
                pos[~ok],
                np.full((~ok).sum(), 0.03),
                marker="x",
                s=60,
                color=color_of[c],
                transform=ax.get_xaxis_transform(),
                zorder=3,
            )
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xlim(-0.6, len(s.tasks) - 0.4)
    if any_bar:  # a log axis needs a positive value
        ax.set_yscale("log")
    ax.set_xticks(x, s.tasks, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(f"speedup over {_ref_name(s).replace('`', '')}")
    ax.set_title(
        "steps the reference needs / steps the candidate needs (x: diverged or n/a)", fontsize=9
    )
    handles = [Patch(color=color_of[c], label=c) for c in cands]
    ax.legend(handles=handles, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    records: list[dict],
    workdir: str,
    *,
    reference: str | None = "adam",
    smooth_fraction: float = 0.05,
) -> Summary:
    """Write summary.md, summary.csv, summary.json, curves.png and speedups.png; return summary."""
    s = summarize(records, reference=reference, smooth_fraction=smooth_fraction)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "summary.md"), "w") as f:
        f.write(summary_markdown(s))
    write_csv(s, os.path.join(workdir, "summary.csv"))
    agg = {
        c: {k: (list(v) if isinstance(v, tuple) else v) for k, v in a.items()}
        for c, a in s.aggregates.items()
    }
    cells = [
        {
            k: v
            for k, v in vars(cell).items()
            if k not in ("train_curve", "eval_curve", "eval_steps", "rate_finals")
        }
        for cell in s.cells.values()
    ]
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(
            _jsonable({"reference": s.reference, "aggregates": agg, "cells": cells}), f, indent=1
        )
    _plot_curves(s, os.path.join(workdir, "curves.png"), smooth_fraction)
    if s.reference is not None:
        _plot_speedups(s, os.path.join(workdir, "speedups.png"))
    return s


def _jsonable(x):
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x
