"""Every candidate against one named candidate, seed by seed: what a snapshot choice needs.

Seed ``s`` gives every candidate the same initial parameters and batches, so the difference of
two candidates on one seed cancels that seed's own luck, which the per-candidate figures keep.
For a task, a candidate ``c`` and the base ``b`` (each at its chosen rate, ``eval.summary``), over
the ``n`` seeds both ran::

    d_s  = final(c, s) - final(b, s)                  (smoothed final training loss)
    mean = (1/n) sum_s d_s,   SE = std(d_s, ddof=1) / sqrt(n)

and the same for the per-seed speedup against the reference's seed-mean curve
(``metrics.speedup``, as in the speedup table). On final loss a candidate is **lower** or
**higher** than the base where ``|mean| > 2 SE`` (about a two-sided 95% t-test from 6 seeds on;
with fewer seeds the call is optimistic), else **level**. A task where either side diverged, or
with fewer than two shared seeds, has no difference (NaN).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from eval import metrics
from eval.baselines import EvalError
from eval.summary import Summary, latest_records

SIGNIFICANCE_SE = 2.0  # |mean difference| above this many standard errors: lower / higher


@dataclasses.dataclass(frozen=True)
class PairedDiff:
    """One (task, candidate) against the base: means and standard errors over ``seeds``."""

    seeds: int = 0
    final_diff: float = math.nan
    final_se: float = math.nan
    speedup_diff: float = math.nan
    speedup_se: float = math.nan

    @property
    def verdict(self) -> str:
        """``"lower"`` / ``"higher"`` final loss than the base (beyond 2 SE), ``"level"``, or
        ``"n/a"``."""
        if not (math.isfinite(self.final_diff) and math.isfinite(self.final_se)):
            return "n/a"
        if abs(self.final_diff) <= SIGNIFICANCE_SE * self.final_se:
            return "level"
        return "lower" if self.final_diff < 0 else "higher"


def check_base(base: str, labels: list[str]) -> None:
    """An ``EvalError`` naming ``labels`` unless ``base`` is one of them."""
    if base not in labels:
        raise EvalError(
            f"--paired_with={base!r} is not a candidate of this evaluation; candidates: "
            + ", ".join(labels)
        )


def _mean_se(values: list[float]) -> tuple[float, float]:
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2 or not np.all(np.isfinite(x)):
        return math.nan, math.nan
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def paired_differences(
    records: list[dict], summary: Summary, base: str, smooth_fraction: float = 0.05
) -> dict:
    """``{(task, candidate): PairedDiff}`` of every candidate but ``base`` against ``base``.

    Args:
      records: the run records the summary was built from.
      summary: their :class:`eval.summary.Summary` (chosen rates, reference curves).
      base: the label of the candidate to compare with; an ``EvalError`` names the labels
        present if it is not one of them.
      smooth_fraction: the smoothing window as a fraction of the run, as in the summary.
    """
    check_base(base, summary.candidates)
    by_seed: dict = {}
    for r in latest_records(records):
        cell = summary.cells.get((r["task"], r["candidate"]))
        if cell is not None and not cell.diverged and r["lr"] == cell.lr:
            by_seed.setdefault((r["task"], r["candidate"]), {})[r["seed"]] = r
    out = {}
    for task in summary.tasks:
        base_runs = by_seed.get((task, base), {})
        ref_cell = summary.cells.get((task, summary.reference)) if summary.reference else None
        ref_curve = None if ref_cell is None else ref_cell.train_curve
        for cand in summary.candidates:
            if cand == base or (task, cand) not in summary.cells:
                continue
            runs = by_seed.get((task, cand), {})
            seeds = sorted(set(runs) & set(base_runs))
            if len(seeds) < 2:
                out[(task, cand)] = PairedDiff(seeds=len(seeds))
                continue
            window = metrics.smoothing_window(runs[seeds[0]]["num_steps"], smooth_fraction)
            final_diff, final_se = _mean_se(
                [_final(runs[s], window) - _final(base_runs[s], window) for s in seeds]
            )
            speed_diff, speed_se = _mean_se(
                [
                    _speedup(runs[s], ref_curve, window) - _speedup(base_runs[s], ref_curve, window)
                    for s in seeds
                ]
            )
            out[(task, cand)] = PairedDiff(len(seeds), final_diff, final_se, speed_diff, speed_se)
    return out


def _final(record: dict, window: int) -> float:
    return metrics.final_loss(np.asarray(record["train_loss"], np.float64), window)


def _speedup(record: dict, ref_curve, window: int) -> float:
    if ref_curve is None:
        return math.nan
    return metrics.speedup(np.asarray(record["train_loss"], np.float64), ref_curve, window)


def paired_markdown(summary: Summary, diffs: dict, base: str) -> list[str]:
    """The report's section: a row per task, a column per candidate other than ``base``, each
    cell ``final-loss difference ± SE (verdict) / speedup difference ± SE``, and a row counting
    the tasks on which each candidate's final loss is lower / higher than the base's."""
    cands = [c for c in summary.candidates if c != base]
    lines = [
        f"## Paired by seed against `{base}`: final training loss difference ± standard error "
        "(lower / level / higher beyond 2 SE) / speedup difference ± SE",
        "",
        "| task | " + " | ".join(f"`{c}`" for c in cands) + " |",
        "|---" * (len(cands) + 1) + "|",
    ]

    def text(d: PairedDiff | None) -> str:
        if d is None or d.verdict == "n/a":
            return "n/a"
        return (
            f"{d.final_diff:+.4f} ± {d.final_se:.4f} ({d.verdict}) / "
            f"{d.speedup_diff:+.3f} ± {d.speedup_se:.3f}"
        )

    for task in summary.tasks:
        lines.append(f"| {task} | " + " | ".join(text(diffs.get((task, c))) for c in cands) + " |")
    counts = []
    for c in cands:
        verdicts = [diffs[(t, c)].verdict for t in summary.tasks if (t, c) in diffs]
        counts.append(f"{verdicts.count('lower')} / {verdicts.count('higher')}")
    lines += ["| **tasks lower / higher** | " + " | ".join(counts) + " |", ""]
    return lines
