"""``meta_train_throughput.py --config NAME``: a first run of the recipe and its floor, as JSON."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import recipe_throughput  # noqa: E402


def test_each_step_is_held_against_the_floor_of_its_own_draw():
    """Steps 1-2 are draw 0 (floor 0.5 s), 3-4 draw 1 (floor 2 s), 5 draw 2 (no floor);
    step 2 compiled, so it is not counted."""
    rows = [
        dict(step=1, seconds=1.0, compile_s=0.0, inner_steps=100),
        dict(step=2, seconds=9.0, compile_s=8.0, inner_steps=100),
        dict(step=3, seconds=4.0, compile_s=0.0, inner_steps=100),
        dict(step=4, seconds=2.0, compile_s=0.0, inner_steps=100),
        dict(step=5, seconds=1.0, compile_s=0.0, inner_steps=100),
        dict(done=True),
    ]
    out = recipe_throughput.floor_ratio(rows, {0: 0.5, 1: 2.0}, every=2)
    assert out["floor_steps"] == 3
    assert out["floor_ratio"] == pytest.approx((0.5 + 2.0 + 2.0) / (1.0 + 4.0 + 2.0), abs=1e-3)
    assert out["inner_steps_per_s_mean"] == pytest.approx(300 / 7.0, abs=0.1)
    assert out["floor_inner_steps_per_s"] == pytest.approx(300 / 4.5, abs=0.1)
    assert out["per_draw"][0] == dict(steps=1, run_step_s_median=1.0, floor_step_s=0.5, ratio=0.5)
    assert out["per_draw"][1]["run_step_s_median"] == 3.0 and out["per_draw"][1]["steps"] == 2
    with pytest.raises(ValueError, match="no compile-free outer step"):
        recipe_throughput.floor_ratio(rows, {7: 1.0}, every=2)


def test_recipe_benchmark_reports_the_run_its_split_and_floor():
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "meta_train_throughput.py"),
            "--config=quickstart",
            "--outer_steps=4",
            "--repeats=1",
            "--set",
            "num_groups=1",
            "--set",
            "truncation_length=10",
            "--set",
            "episode.min_length=20",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["config"]["name"] == "quickstart" and out["config"]["num_groups"] == 1
    assert out["config"]["truncation"] == 10
    split = out["first_run_split"]
    assert set(split) == {"compile", "device", "host"}
    assert abs(sum(split.values()) - 1.0) < 1e-3 and split["compile"] > 0
    # one group of 8 pairs, both members counted, one truncation per outer step
    assert out["inner_steps_per_outer_step"] == 2 * 8 * 10
    assert out["inner_steps_per_s_median"] > 0 and out["floor_inner_steps_per_s"] > 0
    ratio = out["inner_steps_per_s_mean"] / out["floor_inner_steps_per_s"]
    assert abs(out["floor_ratio"] - ratio) < 1e-2
    assert set(out["per_draw"]) == {"0"}  # one draw in 4 steps; JSON keys are strings
    draw = out["per_draw"]["0"]
    assert draw["tasks"] and draw["floor_step_s"] > 0 and draw["floor_inner_steps"] == 2 * 8 * 10
    assert out["outer_steps_per_hour"] > 0 and out["machine"]["cpu_count"] >= 1
