"""A benchmark script whose dataset is not prepared ends with one line naming it, no traceback."""

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _benchmark(script: str, *args, **env):
    """Run ``benchmarks/SCRIPT --repeats 1 ARGS`` on CPU with ``env`` added."""
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--repeats", "1", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu", **env),
        timeout=300,
    )


@pytest.mark.slow
def test_missing_dataset_is_one_line(tmp_path):
    proc = _benchmark("meta_train_throughput.py", "--calls", "1", TFDS_DATA_DIR=str(tmp_path))
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = lines[-1]
    assert last.startswith("meta_train_throughput.py: error: ") and "mnist" in last, last
    assert "lopt-data prepare mnist" in last


def test_compile_time_variants_errors_are_one_line():
    """A malformed ``--variants`` item, and a flag XLA does not know, each end the benchmark with
    one line naming them (the child's XLA message for the flag), no traceback."""
    proc = _benchmark(
        "compile_time.py", "--variants", "l1=--xla_backend_optimization_level=1;nolabel"
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip() == "--variants: 'nolabel' is not LABEL=XLA_FLAGS"
    proc = _benchmark("compile_time.py", "--variants", "bad=--xla_no_such_flag_here=1")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("compile_time: XLA_FLAGS='--xla_no_such_flag_here=1' failed: "), line
    assert "xla_no_such_flag_here" in line.split("failed: ", 1)[1], line


def test_group_program_options_bad_arguments_are_one_line():
    """A malformed ``--variants`` item, an option XLA does not know and a group outside the
    draw each end ``group_program_options.py`` with one line naming them, no traceback."""
    script = str(REPO / "benchmarks" / "group_program_options.py")
    cases = {
        ("--variants", "default={};broken=[1]"): "'broken=[1]' is not LABEL=JSON-dict",
        ("--variants", 'odd={"xla_no_such_option": true}'): "variant 'odd'",
        ("--draws", "0:9", "--variants", "default={}"): "'0:9' is not EPOCH:GROUP",
    }
    for args, message in cases.items():
        proc = subprocess.run(
            [sys.executable, script, *args],
            capture_output=True,
            text=True,
            env=dict(os.environ, JAX_PLATFORMS="cpu"),
            timeout=300,
        )
        assert proc.returncode != 0, args
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
        last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
        assert last.startswith("group_program_options: error: ") and message in last, last


@pytest.mark.parametrize(
    "args,message",
    [
        (["--populations", "1"], "--populations must be at least 2"),
        (["--trained_leaves", "w3,nope"], "'nope' is not a leaf"),
    ],
)
def test_estimate_agreement_bad_input_is_one_line(args, message):
    """Fewer than two populations cannot be compared, and a leaf theta lacks cannot be
    perturbed: one line naming the flag or field, no traceback."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "estimate_agreement.py"), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
        timeout=300,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("estimate_agreement.py: error: ") and message in last, last
