"""Evaluation metrics, each defined once here with its formula.

All functions are plain numpy over 1-D loss curves ``x[t]``, ``t = 0 .. T-1``, where ``x[t]`` is
the training loss measured *before* update ``t + 1`` (so ``x[0]`` is the loss at initialisation
and reaching the value ``x[t]`` costs ``t + 1`` steps of the curve). A run is *diverged* when a
loss is non-finite (NaN / inf), or when it *blew up*: its final smoothed training loss is above
``BLOWUP_FACTOR`` (2) times its initial loss L0 (worse than not training at all, by far; a run
that stalls near L0 is a failure but not a divergence). See :func:`divergence_step`.

Smoothing (trailing moving average over a window of ``w`` steps)::

    s[t] = mean(x[max(0, t - w + 1) : t + 1])

Final loss::

    final(x) = s[T - 1]            (the mean of the last w losses)

Steps to reach a target ``y``::

    reach(s, y) = 1 + min{t : s[t] <= y}      (None when no such t)

Speedup of a candidate ``c`` over the reference ``a`` (tuned Adam), both smoothed, equal length T::

    y* = final(a)
    if c reaches y*:  speedup = reach(s_a, y*) / reach(s_c, y*)           (any positive value)
    otherwise:        speedup = reach(s_a, final(c)) / T                   (<= 1)
    diverged c:       speedup = 0

The second branch answers "what fraction of the run did Adam need to get where the candidate
ended": the two branches meet at 1 when both reach the same loss in the last step.

Held-out speedup, as AlgoPerf's time to a validation target: the target is the *best* held-out
loss of the reference (a reference that overfits sets its target at its minimum, not at its
risen final value), on the held-out curves ``e[i]`` measured after ``k[i]`` updates (``k = 0, K,
2K, ..., T``), unsmoothed (each point is already a mean over a held-out batch); reaching ``y``
costs ``max(1, k[first i with e[i] <= y])``::

    y* = min(e_a);  eval_speedup = reach_a(y*) / reach_c(y*)
    otherwise (c never gets down to y*):  eval_speedup = reach_a(min(e_c)) / reach_a(y*)   (<= 1)

Normalised score (1 = as good as tuned Adam, 0 = no progress from the initial loss)::

    score(c) = (L0 - final(c)) / (L0 - final(a)),    L0 = the loss at initialisation
    diverged c: score = 0

(The evaluation takes L0 as the held-out loss at step 0, averaged over seeds: at initialisation
the parameters are independent of the data, so it estimates the expected training loss with far
less noise than the first minibatch loss.)

Interquartile mean (IQM, Agarwal et al. 2021, "Deep RL at the edge of the statistical
precipice"): sort the n values, drop ``floor(n / 4)`` from each end, average the rest.
Its confidence interval is the percentile bootstrap, stratified over tasks: each resample draws,
for every task (row), ``S`` runs with replacement from that task's ``S`` runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def is_diverged(curve: Sequence[float] | np.ndarray) -> bool:
    """True if ``curve`` contains NaN or +-inf (``None`` entries, as read from JSON, count too)."""
    arr = np.asarray([np.nan if v is None else v for v in curve], dtype=np.float64)
    return bool(arr.size == 0 or not np.all(np.isfinite(arr)))


def first_nonfinite(curve: Sequence[float] | np.ndarray) -> int | None:
    """Index of the first non-finite entry of ``curve``, or None when every entry is finite."""
    arr = np.asarray([np.nan if v is None else v for v in curve], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    return int(bad[0]) if bad.size else None


BLOWUP_FACTOR = 2.0


def divergence_step(
    train: Sequence[float] | np.ndarray, initial: float, window: int, evals=()
) -> int | None:
    """The step at which a run diverged, or None when it did not (see the module doc).

    Args:
      train: the training-loss curve [T] (``None`` entries, as read from JSON, count as NaN).
      initial: L0, the loss at initialisation (a non-positive or non-finite L0 disables the
        blow-up test, which is then only about non-finite losses).
      window: the smoothing window of :func:`final_loss`.
      evals: the held-out curve; a non-finite value there is a divergence too.

    Returns:
      For a non-finite loss, the index of the first one in ``train + evals`` (capped at T);
      for a blow-up, the first ``t`` with ``s[t] > BLOWUP_FACTOR * L0``.
    """
    x = np.asarray([np.nan if v is None else v for v in train], dtype=np.float64)
    bad = first_nonfinite(list(x) + list(evals))
    if bad is not None:
        return min(bad, x.size)
    if not (math.isfinite(initial) and initial > 0):
        return None
    s = smooth(x, window)
    limit = BLOWUP_FACTOR * initial
    if s[-1] <= limit:
        return None
    return int(np.flatnonzero(s > limit)[0])


def smoothing_window(num_steps: int, fraction: float = 0.05) -> int:
    """Smoothing window ``w = max(1, ceil(fraction * num_steps))`` for a curve of that length."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"smoothing fraction must be in [0, 1], got {fraction}")
    return max(1, math.ceil(fraction * num_steps))


def smooth(curve: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average ``s[t] = mean(x[max(0, t-w+1) : t+1])``; shape [T] -> [T]."""
    if window < 1:
        raise ValueError(f"smoothing window must be >= 1, got {window}")
    x = np.asarray(curve, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D curve, got shape {x.shape}")
    # direct window sums (not cumsum differences): a non-finite loss only affects the windows
    # that contain it, and a huge loss early on does not cost precision later.
    sums = np.convolve(x, np.ones(window))[: x.size]
    return sums / np.minimum(np.arange(1, x.size + 1), window)


def final_loss(curve: Sequence[float] | np.ndarray, window: int) -> float:
    """``final(x) = s[T-1]``: the mean of the last ``window`` losses (NaN for a diverged curve)."""
    return float(smooth(curve, window)[-1])


def steps_to_reach(smoothed: np.ndarray, target: float) -> int | None:
    """``1 + min{t : s[t] <= target}``, or None if the smoothed curve never gets that low."""
    hit = np.flatnonzero(np.asarray(smoothed) <= target)
    return int(hit[0]) + 1 if hit.size else None


def speedup(candidate: np.ndarray, reference: np.ndarray, window: int) -> float:
    """Speedup of ``candidate`` over ``reference`` (both raw curves of length T); see module doc.

    Returns 0.0 for a diverged candidate; raises ValueError for a diverged reference or curves
    of different lengths (no meaningful comparison exists).
    """
    cand = np.asarray(candidate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if cand.shape != ref.shape:
        raise ValueError(f"curves differ in length: candidate {cand.shape}, reference {ref.shape}")
    if is_diverged(ref):
        raise ValueError("the reference curve diverged; speedup is undefined")
    if is_diverged(cand):
        return 0.0
    s_ref, s_cand = smooth(ref, window), smooth(cand, window)
    target = s_ref[-1]
    n_ref = steps_to_reach(s_ref, target)
    n_cand = steps_to_reach(s_cand, target)
    if n_cand is not None:
        return n_ref / n_cand
    return steps_to_reach(s_ref, s_cand[-1]) / ref.size


def eval_steps_to_reach(
    curve: Sequence[float] | np.ndarray, steps: Sequence[int], target: float
) -> int | None:
    """``max(1, steps[first i with curve[i] <= target])``, or None if never reached."""
    hit = np.flatnonzero(np.asarray(curve, dtype=np.float64) <= target)
    return max(1, int(steps[hit[0]])) if hit.size else None


def eval_speedup(candidate: np.ndarray, reference: np.ndarray, steps: Sequence[int]) -> float:
    """Held-out speedup of ``candidate`` over ``reference``, both held-out curves at ``steps``
    (see the module doc); 0.0 for a diverged candidate, ValueError for a diverged reference."""
    cand = np.asarray(candidate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if cand.shape != ref.shape or cand.size != len(steps):
        raise ValueError(f"curves differ in length: {cand.shape}, {ref.shape}, {len(steps)} steps")
    if is_diverged(ref):
        raise ValueError("the reference curve diverged; speedup is undefined")
    if is_diverged(cand):
        return 0.0
    target = ref.min()
    n_ref = eval_steps_to_reach(ref, steps, target)
    n_cand = eval_steps_to_reach(cand, steps, target)
    if n_cand is not None:
        return n_ref / n_cand
    return eval_steps_to_reach(ref, steps, cand.min()) / n_ref


def normalized_score(final: float, initial: float, reference_final: float) -> float:
    """``(L0 - final) / (L0 - final_ref)``; 0.0 for a non-finite ``final`` (a diverged run)."""
    if not math.isfinite(final):
        return 0.0
    denom = initial - reference_final
    if not math.isfinite(denom) or denom == 0.0:
        return math.nan
    return (initial - final) / denom


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: drop ``floor(n/4)`` smallest and largest values, average the rest."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0:
        return math.nan
    cut = x.size // 4
    return float(np.mean(x[cut : x.size - cut]))


def bootstrap_ci(
    scores: np.ndarray,
    statistic=iqm,
    *,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Stratified percentile-bootstrap confidence interval of ``statistic`` over ``scores``.

    Args:
      scores: [num_tasks, num_runs] (a 1-D array is one task). Each resample redraws the runs of
        every task with replacement, keeping the task (row) structure.
      statistic: maps the flattened resampled scores to a float (default: :func:`iqm`).
      num_resamples, confidence, seed: bootstrap settings; the result is deterministic in seed.

    Returns:
      (lo, hi): the ``(1-confidence)/2`` and ``(1+confidence)/2`` quantiles of the statistic.
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"scores must be a non-empty [tasks, runs] array, got shape {x.shape}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    n_tasks, n_runs = x.shape
    idx = rng.integers(0, n_runs, size=(num_resamples, n_tasks, n_runs))
    resampled = np.take_along_axis(np.broadcast_to(x, (num_resamples, n_tasks, n_runs)), idx, -1)
    if statistic is iqm:  # vectorised: the same numbers, 100x faster
        flat = np.sort(resampled.reshape(num_resamples, -1), axis=1)
        cut = flat.shape[1] // 4
        stats = np.mean(flat[:, cut : flat.shape[1] - cut], axis=1)
    else:
        stats = np.array([statistic(r.ravel()) for r in resampled])
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
