"""From run records to a table: choose each baseline's rate, then score every (task, candidate).

Rate choice (tuned baselines): for each rate, the mean over seeds of the smoothed final training
loss; rates with any diverged seed are excluded; the lowest mean wins. When every rate diverged,
the cell is *diverged*. A fixed-rate baseline or a learned optimizer has one configuration; its
cell is diverged when any seed diverged. A diverged cell has speedup 0 and score 0 and is counted
in every aggregate (never dropped).

Per cell (seeds averaged): final train loss, final held-out loss, and, against the reference
(tuned Adam) of the same task, the speedup and normalised score of :mod:`eval.metrics` computed on
the seed-mean curves. Per seed: the same against the reference's seed-mean curve, which feed the
aggregates: median speedup over tasks, and IQM of the per-(task, seed) speedups and scores with
stratified-bootstrap 95% confidence intervals.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import numpy as np

from eval import metrics


@dataclasses.dataclass
class Cell:
    """One (task, candidate) entry of the table. Curves are seed means of the chosen config."""

    task: str
    candidate: str
    kind: str
    tuned: bool
    lr: float | None  # the chosen (or fixed) rate; None for learned or all-diverged
    lr_at_edge: bool  # the chosen rate is the smallest or largest of the grid
    num_seeds: int
    num_diverged: int  # diverged seeds of the chosen config (all seeds if every rate diverged)
    diverged: bool
    final_train: float
    final_train_std: float
    final_eval: float
    initial_loss: float
    speedup: float
    score: float
    seed_speedups: list[float]
    seed_scores: list[float]
    train_curve: list[float] | None
    eval_steps: list[int]
    eval_curve: list[float] | None
    wall_s: float
    rate_finals: dict  # rate -> mean final train loss (NaN if any seed diverged)


@dataclasses.dataclass
class Summary:
    tasks: list[str]
    candidates: list[str]
    reference: str | None
    cells: dict  # (task, candidate) -> Cell
    aggregates: dict  # candidate -> dict of aggregate figures


def _arr(values) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def _mean_curve(rows: list[np.ndarray]) -> np.ndarray:
    return np.mean(np.stack(rows), axis=0)


def _choose(runs: list[dict], tuned: bool, final):
    """Group runs by rate; return (rate, runs of that rate, {rate: mean final or nan})."""
    by_rate: dict = defaultdict(list)
    for r in runs:
        by_rate[r["lr"]].append(r)
    finals = {}
    for lr, rs in by_rate.items():
        ok = not any(r["diverged"] for r in rs)
        finals[lr] = float(np.mean([final(r) for r in rs])) if ok else math.nan
    if not tuned:
        lr = next(iter(by_rate))
        return lr, by_rate[lr], finals
    finite = {lr: v for lr, v in finals.items() if math.isfinite(v)}
    if not finite:
        return None, max(by_rate.values(), key=len), finals
    best = min(finite, key=finite.get)
    return best, by_rate[best], finals


def _initial_loss(curves: list[np.ndarray], evals: list[np.ndarray]) -> float:
    """L0: mean over seeds of the held-out loss at step 0 (else of the first train loss)."""
    e0 = np.array([e[0] for e in evals])
    return float(np.mean(e0) if np.all(np.isfinite(e0)) else np.mean([c[0] for c in curves]))


def _cell(task, cand, runs, smooth_fraction) -> Cell:
    first = runs[0]
    window = metrics.smoothing_window(first["num_steps"], smooth_fraction)
    final = lambda r: metrics.final_loss(_arr(r["train_loss"]), window)  # noqa: E731
    lr, chosen, finals = _choose(runs, first["tuned"], final)
    all_div = first["tuned"] and lr is None
    n_div = len(chosen) if all_div else sum(r["diverged"] for r in chosen)
    diverged = n_div > 0
    grid = sorted(finals)
    curves = [_arr(r["train_loss"]) for r in chosen]
    evals = [_arr(r["eval_loss"]) for r in chosen]
    finals_c = np.array([final(r) for r in chosen])
    return Cell(
        task=task,
        candidate=cand,
        kind=first["kind"],
        tuned=first["tuned"],
        lr=None if all_div else lr,
        lr_at_edge=bool(first["tuned"] and lr is not None and lr in (grid[0], grid[-1])),
        num_seeds=len(chosen),
        num_diverged=int(n_div),
        diverged=diverged,
        final_train=math.nan if diverged else float(np.mean(finals_c)),
        final_train_std=math.nan if diverged else float(np.std(finals_c)),
        final_eval=math.nan if diverged else float(np.mean([e[-1] for e in evals])),
        initial_loss=_initial_loss(curves, evals),
        speedup=math.nan,
        score=math.nan,
        seed_speedups=[],
        seed_scores=[],
        train_curve=None if diverged else _mean_curve(curves).tolist(),
        eval_steps=list(first["eval_steps"]),
        eval_curve=None if diverged else _mean_curve(evals).tolist(),
        wall_s=float(np.mean([r["wall_s"] for r in chosen])),
        rate_finals=finals,
    )


def summarize(records: list[dict], reference: str | None = "adam", smooth_fraction: float = 0.05):
    """Build a :class:`Summary` from run records (as returned by ``run_suite`` or read back)."""
    tasks, cands = [], []
    runs: dict = defaultdict(list)
    for r in records:
        tasks += [r["task"]] if r["task"] not in tasks else []
        cands += [r["candidate"]] if r["candidate"] not in cands else []
        runs[(r["task"], r["candidate"])].append(r)
    cells = {}
    for (task, cand), rs in runs.items():
        cells[(task, cand)] = _cell(task, cand, rs, smooth_fraction)
    if reference is not None and reference in cands:
        for task in tasks:
            ref = cells.get((task, reference))
            if ref is None or ref.diverged:
                continue
            _score_against(
                ref, [cells[(task, c)] for c in cands if (task, c) in cells], runs, smooth_fraction
            )
    aggregates = {c: _aggregate([cells[(t, c)] for t in tasks if (t, c) in cells]) for c in cands}
    return Summary(tasks, cands, reference if reference in cands else None, cells, aggregates)


def _score_against(ref: Cell, cells: list[Cell], runs: dict, smooth_fraction: float) -> None:
    ref_curve = np.asarray(ref.train_curve)
    window = metrics.smoothing_window(ref_curve.size, smooth_fraction)
    ref_final = metrics.final_loss(ref_curve, window)
    l0 = ref.initial_loss
    for cell in cells:
        chosen = [r for r in runs[(cell.task, cell.candidate)] if r["lr"] == cell.lr]
        if cell.diverged:
            cell.speedup, cell.score = 0.0, 0.0
            n = cell.num_seeds
            cell.seed_speedups, cell.seed_scores = [0.0] * n, [0.0] * n
            continue
        curve = np.asarray(cell.train_curve)
        if curve.size != ref_curve.size:
            continue  # different horizons: no comparison
        cell.speedup = metrics.speedup(curve, ref_curve, window)
        cell.score = metrics.normalized_score(metrics.final_loss(curve, window), l0, ref_final)
        cell.seed_speedups = [
            metrics.speedup(_arr(r["train_loss"]), ref_curve, window) for r in chosen
        ]
        cell.seed_scores = [
            metrics.normalized_score(
                metrics.final_loss(_arr(r["train_loss"]), window), l0, ref_final
            )
            for r in chosen
        ]


def _aggregate(cells: list[Cell]) -> dict:
    scored = [c for c in cells if c.seed_speedups]
    out = {
        "num_tasks": len(cells),
        "diverged_tasks": sum(c.diverged for c in cells),
        "median_speedup": math.nan,
        "iqm_speedup": math.nan,
        "iqm_speedup_ci": (math.nan, math.nan),
        "iqm_score": math.nan,
        "iqm_score_ci": (math.nan, math.nan),
        "mean_wall_s": float(np.mean([c.wall_s for c in cells])) if cells else math.nan,
    }
    if not scored:
        return out
    n = min(len(c.seed_speedups) for c in scored)
    sp = np.array([c.seed_speedups[:n] for c in scored])
    sc = np.array([c.seed_scores[:n] for c in scored])
    out["median_speedup"] = float(np.median([c.speedup for c in scored]))
    out["iqm_speedup"] = metrics.iqm(sp)
    out["iqm_speedup_ci"] = metrics.bootstrap_ci(sp)
    if np.all(np.isfinite(sc)):
        out["iqm_score"] = metrics.iqm(sc)
        out["iqm_score_ci"] = metrics.bootstrap_ci(sc)
    return out
