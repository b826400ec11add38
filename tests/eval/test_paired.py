"""``eval.paired``: seed-by-seed differences against a named candidate, on records whose answer is
known exactly."""

import math

import numpy as np
import pytest

from eval import EvalError, paired, summarize

STEPS = 40


def _record(cand, seed, curve, lr=None):
    return {
        "task": "t",
        "candidate": cand,
        "kind": "learned" if lr is None else "baseline",
        "tuned": False,
        "lr": lr,
        "seed": seed,
        "num_steps": STEPS,
        "diverged": False,
        "wall_s": 0.1,
        "train_loss": list(curve),
        "eval_steps": [0, STEPS],
        "eval_loss": [curve[0], curve[-1]],
    }


def _curve(level, seed):
    """A decreasing curve ending near ``level``, with a seed's own offset (its luck)."""
    t = np.arange(STEPS)
    return level + 0.3 * seed + np.exp(-t / 8.0)


def test_paired_differences_cancel_the_seeds_luck():
    seeds = [0, 1, 2, 3]
    offsets = [-0.01, 0.03, -0.02, 0.0]  # the candidate's own difference, seed by seed
    recs = [_record("adam@0.1", s, _curve(1.0, s), lr=0.1) for s in seeds]
    recs += [_record("base", s, _curve(0.9, s)) for s in seeds]
    recs += [
        _record("cand", s, _curve(0.9, s) + off) for s, off in zip(seeds, offsets, strict=True)
    ]
    s = summarize(recs, references=["adam@0.1"])
    diffs = paired.paired_differences(recs, s, "base")
    d = diffs[("t", "cand")]
    assert d.seeds == 4
    # the seeds' offsets (0.3 per seed) would give a spread 30x the differences': they cancel
    assert d.final_diff == pytest.approx(np.mean(offsets))
    assert d.final_se == pytest.approx(np.std(offsets, ddof=1) / 2.0)
    assert d.verdict == "level"
    # a candidate lower on every seed by 0.05 (+- 0.001) is called lower
    recs += [_record("better", s, _curve(0.9, s) - 0.05 + 0.001 * (-1) ** s) for s in seeds]
    s = summarize(recs, references=["adam@0.1"])
    better = paired.paired_differences(recs, s, "base")[("t", "better")]
    assert better.final_diff == pytest.approx(-0.05) and better.verdict == "lower"
    assert paired.paired_differences(recs, s, "better")[("t", "base")].verdict == "higher"
    md = "\n".join(paired.paired_markdown(s, paired.paired_differences(recs, s, "base"), "base"))
    assert "(lower)" in md and "| **tasks lower / higher** |" in md


def test_one_shared_seed_gives_no_difference():
    recs = [_record("adam@0.1", s, _curve(1.0, s), lr=0.1) for s in (0, 1)]
    recs += [_record("base", 0, _curve(0.9, 0)), _record("cand", 1, _curve(0.9, 1))]
    recs += [_record("base", 1, _curve(0.9, 1))]
    s = summarize(recs, references=["adam@0.1"])
    d = paired.paired_differences(recs, s, "base")[("t", "cand")]
    assert d.seeds == 1 and math.isnan(d.final_diff) and d.verdict == "n/a"


def test_unknown_base_is_named():
    recs = [_record("adam@0.1", s, _curve(1.0, s), lr=0.1) for s in (0, 1)]
    s = summarize(recs, references=["adam@0.1"])
    with pytest.raises(EvalError, match="--paired_with='nosuch' is not a candidate .* adam@0.1"):
        paired.paired_differences(recs, s, "nosuch")
