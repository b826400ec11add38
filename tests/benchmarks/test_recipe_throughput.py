"""``meta_train_throughput.py --config NAME``: a first run of the recipe and its floor, as JSON."""

import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


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
    assert out["floor"]["inner_steps_per_outer_step"] == 2 * 8 * 10
    assert out["inner_steps_per_s_median"] > 0 and out["floor_inner_steps_per_s"] > 0
    ratio = out["inner_steps_per_s_median"] / out["floor_inner_steps_per_s"]
    assert abs(out["floor_ratio"] - ratio) < 1e-2
    assert out["outer_steps_per_hour"] > 0 and out["machine"]["cpu_count"] >= 1
