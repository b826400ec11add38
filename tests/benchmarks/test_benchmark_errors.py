"""A benchmark script whose dataset is not prepared ends with one line naming it, no traceback."""

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_missing_dataset_is_one_line(tmp_path):
    env = dict(os.environ, TFDS_DATA_DIR=str(tmp_path), JAX_PLATFORMS="cpu")
    script = REPO / "benchmarks" / "meta_train_throughput.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--repeats", "1", "--calls", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = lines[-1]
    assert last.startswith("meta_train_throughput.py: error: ") and "mnist" in last, last
    assert "lopt-data prepare mnist" in last
