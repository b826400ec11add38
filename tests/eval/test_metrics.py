"""Metric functions against values computed by hand on small curves."""

import math

import numpy as np
import pytest

from eval import metrics


def test_smooth_trailing_mean_by_hand():
    # w=2: [4, (4+2)/2, (2+6)/2, (6+0)/2]
    np.testing.assert_allclose(metrics.smooth([4, 2, 6, 0], 2), [4, 3, 4, 3])
    # w=3 over a ramp: partial windows at the start
    np.testing.assert_allclose(metrics.smooth([1, 2, 3, 4, 5], 3), [1, 1.5, 2, 3, 4])
    np.testing.assert_allclose(metrics.smooth([7, 1], 1), [7, 1])


def test_smooth_nan_only_poisons_its_windows():
    s = metrics.smooth([1, 2, 3, np.nan, 5, 6, 7], 2)
    np.testing.assert_allclose(s[:3], [1, 1.5, 2.5])
    assert np.isnan(s[3]) and np.isnan(s[4])
    np.testing.assert_allclose(s[5:], [5.5, 6.5])


def test_final_loss_and_window():
    assert metrics.final_loss([4, 2, 6, 0], 2) == 3.0
    assert metrics.final_loss([4, 2, 6, 0], 4) == 3.0
    assert metrics.final_loss([4, 2, 6, 1], 1) == 1.0
    assert metrics.smoothing_window(1000, 0.05) == 50
    assert metrics.smoothing_window(10, 0.05) == 1
    assert metrics.smoothing_window(30, 0.05) == 2  # ceil(1.5)


def test_steps_to_reach():
    assert metrics.steps_to_reach(np.array([5.0, 4.0, 3.0, 2.0]), 3.0) == 3
    assert metrics.steps_to_reach(np.array([5.0, 4.0, 3.0, 2.0]), 5.0) == 1
    assert metrics.steps_to_reach(np.array([5.0, 4.0, 3.0, 2.0]), 1.0) is None


REF = [10.0, 8.0, 6.0, 4.0, 2.0, 2.0]  # final (w=1) 2, reached after 5 steps


def test_speedup_candidate_reaches_reference_final():
    # reaches 2 after 3 steps: 5 / 3
    assert metrics.speedup([10, 5, 2, 1, 1, 1], REF, 1) == pytest.approx(5 / 3)
    # slower: reaches 2 only at the last step: 5 / 6
    assert metrics.speedup([10, 9, 8, 7, 6, 2], REF, 1) == pytest.approx(5 / 6)
    # with w=2: s_ref = [10, 9, 7, 5, 3, 2] -> 6 steps; s_c = [10, 7.5, 3.5, 1.5, 1, 1] -> 4
    assert metrics.speedup([10, 5, 2, 1, 1, 1], REF, 2) == pytest.approx(6 / 4)


def test_speedup_candidate_never_reaches():
    # final 5; the reference first gets to <= 5 after 4 steps (value 4); 4 / 6
    assert metrics.speedup([10, 9, 8, 7, 6, 5], REF, 1) == pytest.approx(4 / 6)
    # ended above the reference's initial loss: the reference was there after 1 step
    assert metrics.speedup([10, 11, 12, 13, 14, 15], REF, 1) == pytest.approx(1 / 6)


def test_speedup_of_a_curve_with_itself_is_one_and_diverged_is_zero():
    assert metrics.speedup(REF, REF, 2) == 1.0
    assert metrics.speedup([10, np.nan, 1, 1, 1, 1], REF, 1) == 0.0
    assert metrics.speedup([10, np.inf, 1, 1, 1, 1], REF, 1) == 0.0
    with pytest.raises(ValueError, match="reference"):
        metrics.speedup(REF, [10, np.nan, 1, 1, 1, 1], 1)
    with pytest.raises(ValueError, match="length"):
        metrics.speedup(REF[:3], REF, 1)


def test_normalized_score():
    assert metrics.normalized_score(3.0, 10.0, 3.0) == 1.0
    assert metrics.normalized_score(6.5, 10.0, 3.0) == 0.5
    assert metrics.normalized_score(10.0, 10.0, 3.0) == 0.0
    assert metrics.normalized_score(12.0, 10.0, 8.0) == -1.0
    assert metrics.normalized_score(math.nan, 10.0, 3.0) == 0.0
    assert math.isnan(metrics.normalized_score(1.0, 3.0, 3.0))


def test_iqm_by_hand():
    # n=8: drop 2 from each end of [-50, 1, 2, 3, 4, 5, 6, 100] -> mean(2, 3, 4, 5)
    assert metrics.iqm([1, 2, 3, 4, 100, -50, 5, 6]) == 3.5
    assert metrics.iqm([1, 2, 9]) == 4.0  # n=3: nothing dropped
    assert metrics.iqm([[1, 2], [3, 1000]]) == 2.5  # 2-D input is flattened; n=4 drops 1 each end
    assert math.isnan(metrics.iqm([]))


def test_bootstrap_constant_and_two_point_distribution():
    assert metrics.bootstrap_ci(np.full((3, 4), 0.7)) == pytest.approx((0.7, 0.7))
    # one task with runs {0, 1}; mean of a resample of 2 is 0 (1/4), 0.5 (1/2) or 1 (1/4)
    lo, hi = metrics.bootstrap_ci(np.array([0.0, 1.0]), np.mean, num_resamples=4000)
    assert (lo, hi) == (0.0, 1.0)
    lo, hi = metrics.bootstrap_ci(np.array([0.0, 1.0]), np.mean, confidence=0.4)
    assert (lo, hi) == (0.5, 0.5)  # the 30% and 70% quantiles both fall on 0.5


def test_bootstrap_is_stratified_over_tasks():
    # task A always 0, task B always 1: every stratified resample has mean exactly 0.5
    scores = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    assert metrics.bootstrap_ci(scores, np.mean) == (0.5, 0.5)
    # and it is deterministic in the seed, and contains the point estimate
    x = np.random.default_rng(1).normal(size=(5, 3))
    ci = metrics.bootstrap_ci(x, seed=3)
    assert ci == metrics.bootstrap_ci(x, seed=3)
    assert ci[0] <= metrics.iqm(x) <= ci[1]


def test_divergence_helpers():
    assert metrics.is_diverged([1.0, None, 2.0])
    assert metrics.is_diverged([1.0, np.inf])
    assert not metrics.is_diverged([1.0, 2.0])
    assert metrics.first_nonfinite([1.0, 2.0, np.nan, np.nan]) == 2
    assert metrics.first_nonfinite([1.0]) is None


def test_vectorised_bootstrap_matches_the_loop():
    x = np.random.default_rng(1).lognormal(size=(5, 3))
    loop = lambda v: metrics.iqm(v)  # noqa: E731  not `metrics.iqm` itself: the generic path
    assert metrics.bootstrap_ci(x) == pytest.approx(metrics.bootstrap_ci(x, loop), rel=1e-12)
