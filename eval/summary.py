"""From run records to a table: choose each baseline's rate, then score every (task, candidate).

Which metric each figure uses (this is the one place that says it):

- **Rate choice** (tuned baselines): on *training* loss. For each rate, the mean over seeds of the
  smoothed final training loss; rates with any diverged seed (NaN/inf loss or a blow-up, see
  ``metrics.divergence_step``) are excluded; the lowest mean wins. When every rate diverged, the
  cell is *diverged*. A fixed-rate baseline or a learned optimizer has one configuration; its
  cell is diverged when any seed diverged. A diverged cell has speedup 0 and score 0 and is
  counted in every aggregate (never dropped).
- **Speedup** (``speedup``): on smoothed *training* loss, ``metrics.speedup``.
- **Held-out speedup** (``eval_speedup``): on *held-out* loss at the evaluation points,
  ``metrics.eval_speedup`` (the first evaluation at which the reference's *best* held-out loss
  is reached, as AlgoPerf's time to a validation target).
- **Normalised score**: on smoothed *training* loss.
- **Time per step** (``step_s``): one un-batched run, measured apart (see ``eval.runner``).
- **Time to result**: ``step_s`` x the steps to reach the reference's final training loss
  (``ttr_s``) or its best held-out loss (``eval_ttr_s``); inf when never reached.

Every cell is scored against each reference (``Summary.references``: the reference, default
tuned ``adamw_cos``, then tuned constant ``adam``) of the same task, on the seed-mean curves. Per
seed: the same against the reference's seed-mean curve, which feed the aggregates (per
reference): median over tasks (with the 95% CI of a stratified bootstrap that redraws each
task's seeds and recomputes the figure on the redrawn seed-mean curve), and IQM of the
per-(task, seed) values with stratified-bootstrap 95% confidence intervals.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import zlib
from collections import defaultdict
from typing import Any

import numpy as np

from eval import metrics

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Versus:
    """A cell's figures against one reference (curves: the cell's seed means)."""

    speedup: float = math.nan
    eval_speedup: float = math.nan
    score: float = math.nan
    ttr_s: float = math.nan  # wall time to reach the reference's final training loss
    eval_ttr_s: float = math.nan  # ... its best held-out loss
    seed_speedups: list = dataclasses.field(default_factory=list)
    seed_eval_speedups: list = dataclasses.field(default_factory=list)
    seed_scores: list = dataclasses.field(default_factory=list)
    # bootstrap replicates of speedup / eval_speedup (seeds redrawn; see _replicates)
    boot_speedup: Any = dataclasses.field(default=None, repr=False)
    boot_eval_speedup: Any = dataclasses.field(default=None, repr=False)


NUM_RESAMPLES = 2000


def _replicates(task: str, curves: list[np.ndarray], fn) -> np.ndarray:
    """``fn(mean of S seed curves drawn with replacement)`` for NUM_RESAMPLES draws: the
    stratified bootstrap of a figure computed on the seed-mean curve. Draws are multisets, so
    ``fn`` runs once per distinct one (10 for 3 seeds). Deterministic in the task name."""
    rng = np.random.default_rng(zlib.crc32(task.encode()))
    n = len(curves)
    idx = np.sort(rng.integers(0, n, size=(NUM_RESAMPLES, n)), axis=1)
    uniq, inv = np.unique(idx, axis=0, return_inverse=True)
    vals = np.array([fn(np.mean([curves[i] for i in u], axis=0)) for u in uniq])
    return vals[np.ravel(inv)]


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (task, candidate) entry of the table. Curves are seed means of the chosen config.

    ``vs`` holds the figures against each reference; ``speedup``, ``eval_speedup``, ``score``,
    ``seed_speedups`` and ``seed_scores`` are those against the first reference (``primary``).
    Built once by :func:`summarize` (from the records alone, then with ``vs`` and ``primary``
    filled in by :func:`dataclasses.replace`), never changed afterwards.
    """

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
    train_curve: list[float] | None
    eval_steps: list[int]
    eval_curve: list[float] | None
    wall_s: float
    step_s: float | None  # seconds per step of one un-batched run (None: not measured)
    rate_finals: dict  # rate -> mean final train loss (NaN if any seed diverged)
    vs: dict = dataclasses.field(default_factory=dict)  # reference -> Versus
    primary: str | None = None

    def _get(self, name):
        v = self.vs.get(self.primary)
        return getattr(v if v is not None else Versus(), name)

    speedup = property(lambda self: self._get("speedup"))
    eval_speedup = property(lambda self: self._get("eval_speedup"))
    score = property(lambda self: self._get("score"))
    seed_speedups = property(lambda self: self._get("seed_speedups"))
    seed_scores = property(lambda self: self._get("seed_scores"))


@dataclasses.dataclass
class Summary:
    tasks: list[str]
    candidates: list[str]
    references: list[str]  # present references; the first is the one of scores and speedups
    cells: dict  # (task, candidate) -> Cell
    by_reference: dict  # reference -> candidate -> dict of aggregate figures

    @property
    def reference(self) -> str | None:
        return self.references[0] if self.references else None

    @property
    def aggregates(self) -> dict:
        """candidate -> aggregate figures against the first reference."""
        if self.references:
            return self.by_reference[self.references[0]]
        return self.by_reference[None]


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
    steps_s = [r.get("step_s") for r in chosen if r.get("step_s") is not None]
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
        train_curve=None if diverged else _mean_curve(curves).tolist(),
        eval_steps=list(first["eval_steps"]),
        eval_curve=None if diverged else _mean_curve(evals).tolist(),
        wall_s=float(np.mean([r["wall_s"] for r in chosen])),
        step_s=float(np.median(steps_s)) if steps_s else None,
        rate_finals=finals,
    )


def latest_records(records: list[dict]) -> list[dict]:
    """One record per (task, candidate, rate, seed): the last one (a workdir's results.jsonl
    keeps superseded runs, e.g. of a label re-run with other weights). Order of first sight."""
    last: dict = {}
    for r in records:
        last[(r["task"], r["candidate"], r["lr"], r["seed"])] = r
    if len(last) < len(records):
        log.info("%d superseded runs ignored (same label, rate and seed)", len(records) - len(last))
    return list(last.values())


def summarize(
    records: list[dict],
    reference: str | None = "adamw_cos",
    smooth_fraction: float = 0.05,
    *,
    references: list[str | None] | None = None,
) -> Summary:
    """Build a :class:`Summary` from run records (as returned by ``run_suite`` or read back).

    ``references`` (default ``[reference, "adam"]``): the baselines every cell is scored against,
    the first one being *the* reference; those absent from the records are skipped.
    """
    if references is None:
        references = [reference, "adam"]
    records = latest_records(records)
    tasks, cands = [], []
    runs: dict = defaultdict(list)
    for r in records:
        tasks += [r["task"]] if r["task"] not in tasks else []
        cands += [r["candidate"]] if r["candidate"] not in cands else []
        runs[(r["task"], r["candidate"])].append(r)
    refs = []
    for ref in references:
        if ref is not None and ref in cands and ref not in refs:
            refs.append(ref)
    # the cells from their own runs, then each with its figures against every reference
    alone = {key: _cell(*key, rs, smooth_fraction) for key, rs in runs.items()}
    vs: dict = {key: {} for key in alone}
    for ref in refs:
        for key, cell in alone.items():
            ref_cell = alone.get((key[0], ref))
            if ref_cell is not None and not ref_cell.diverged:
                vs[key][ref] = _versus(ref_cell, cell, runs[key], smooth_fraction)
    primary = refs[0] if refs else None
    cells = {k: dataclasses.replace(c, vs=vs[k], primary=primary) for k, c in alone.items()}
    by_reference = {}
    for ref in refs:
        by_reference[ref] = {
            c: _aggregate([cells[(t, c)] for t in tasks if (t, c) in cells], ref) for c in cands
        }
    if not refs:
        by_reference[None] = {
            c: _aggregate([cells[(t, c)] for t in tasks if (t, c) in cells], None) for c in cands
        }
    return Summary(tasks, cands, refs, cells, by_reference)


def _reach_cost(steps_to: int | None, step_s: float | None) -> float:
    if step_s is None:
        return math.nan
    return math.inf if steps_to is None else steps_to * step_s


def _versus(ref: Cell, cell: Cell, runs: list[dict], smooth_fraction: float) -> Versus:
    """The cell's figures against the reference cell ``ref`` of the same task."""
    if cell.diverged:
        n, zeros = cell.num_seeds, np.zeros(NUM_RESAMPLES)
        return Versus(
            0.0, 0.0, 0.0, math.inf, math.inf, [0.0] * n, [0.0] * n, [0.0] * n, zeros, zeros
        )
    ref_curve, curve = np.asarray(ref.train_curve), np.asarray(cell.train_curve)
    if curve.size != ref_curve.size or ref.eval_steps != cell.eval_steps:
        return Versus()  # different horizons: no comparison
    window = metrics.smoothing_window(ref_curve.size, smooth_fraction)
    ref_final = metrics.final_loss(ref_curve, window)
    ref_eval, steps = np.asarray(ref.eval_curve), cell.eval_steps
    chosen = [r for r in runs if r["lr"] == cell.lr]
    seed_train = [_arr(r["train_loss"]) for r in chosen]
    seed_eval = [_arr(r["eval_loss"]) for r in chosen]
    l0 = ref.initial_loss
    reached = metrics.steps_to_reach(metrics.smooth(curve, window), ref_final)
    eval_reached = metrics.eval_steps_to_reach(np.asarray(cell.eval_curve), steps, ref_eval.min())
    return Versus(
        speedup=metrics.speedup(curve, ref_curve, window),
        eval_speedup=metrics.eval_speedup(np.asarray(cell.eval_curve), ref_eval, steps),
        score=metrics.normalized_score(metrics.final_loss(curve, window), l0, ref_final),
        ttr_s=_reach_cost(reached, cell.step_s),
        eval_ttr_s=_reach_cost(eval_reached, cell.step_s),
        seed_speedups=[metrics.speedup(x, ref_curve, window) for x in seed_train],
        seed_eval_speedups=[metrics.eval_speedup(e, ref_eval, steps) for e in seed_eval],
        seed_scores=[
            metrics.normalized_score(metrics.final_loss(x, window), l0, ref_final)
            for x in seed_train
        ],
        boot_speedup=_replicates(
            cell.task, seed_train, lambda x: metrics.speedup(x, ref_curve, window)
        ),
        boot_eval_speedup=_replicates(
            cell.task, seed_eval, lambda e: metrics.eval_speedup(e, ref_eval, steps)
        ),
    )


def _median_ci_iqm(vs: list, name: str, seeds_name: str) -> dict:
    """Median over tasks of a figure, with the 95% CI of its stratified bootstrap (seeds redrawn
    per task, the figure recomputed on the redrawn seed-mean curve), and the IQM over (task,
    seed) of its per-seed values, with their stratified-bootstrap 95% CI."""
    out = {
        f"median_{name}": math.nan,
        f"median_{name}_ci": (math.nan, math.nan),
        f"iqm_{name}": math.nan,
        f"iqm_{name}_ci": (math.nan, math.nan),
    }
    if not vs:
        return out
    n = min(len(getattr(v, seeds_name)) for v in vs)
    x = np.array([getattr(v, seeds_name)[:n] for v in vs])
    values = np.array([getattr(v, name) for v in vs])
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(values))):
        return out
    out[f"median_{name}"] = float(np.median(values))
    boot = np.median(np.stack([getattr(v, "boot_" + name) for v in vs]), axis=0)
    out[f"median_{name}_ci"] = tuple(float(q) for q in np.quantile(boot, [0.025, 0.975]))
    out[f"iqm_{name}"] = metrics.iqm(x)
    out[f"iqm_{name}_ci"] = metrics.bootstrap_ci(x)
    return out


def _aggregate(cells: list[Cell], ref: str | None) -> dict:
    vs = [(c, c.vs[ref]) for c in cells if ref in c.vs and c.vs[ref].seed_speedups]
    steps_s = [c.step_s for c in cells if c.step_s is not None]
    out = {
        "num_tasks": len(cells),
        "diverged_tasks": sum(c.diverged for c in cells),
        "mean_wall_s": float(np.mean([c.wall_s for c in cells])) if cells else math.nan,
        "median_step_s": float(np.median(steps_s)) if steps_s else math.nan,
        "reached": sum(math.isfinite(v.ttr_s) for _, v in vs) if vs else 0,
    }
    out.update(_median_ci_iqm([v for _, v in vs], "speedup", "seed_speedups"))
    out.update(_median_ci_iqm([v for _, v in vs], "eval_speedup", "seed_eval_speedups"))
    out["iqm_score"], out["iqm_score_ci"] = math.nan, (math.nan, math.nan)
    if vs:
        n = min(len(v.seed_scores) for _, v in vs)
        sc = np.array([v.seed_scores[:n] for _, v in vs])
        if np.all(np.isfinite(sc)):
            out["iqm_score"] = metrics.iqm(sc)
            out["iqm_score_ci"] = metrics.bootstrap_ci(sc)
    return out
