"""``lopt-eval`` under faults: a second run on the same workdir, bad inputs, a file-size limit
and undecodable bytes in ``results.jsonl``. Each refusal is one ``lopt-eval: error:`` line on
stderr, exit code 2, and leaves what was written before untouched."""

import json
import logging
import os
import resource
import signal
import socket

import pytest
from eval_cli_runner import run_eval_cli

from eval import checks, records
from meta_train import workdir as workdir_lib

TINY = [
    "--tasks=linreg_d64_n0.3_b32",
    "--steps=20",
    "--seeds=1",
    "--reference=adam@1e-3",
    "--constant_reference=",
    "--time_steps=0",
    "--noprogress",
]


def _refused(proc, message: str) -> None:
    """Exit 2 with one ``lopt-eval: error:`` line holding ``message`` and no traceback."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [x for x in proc.stderr.splitlines() if x.startswith("lopt-eval: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-3000:]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The bytes of ``results.jsonl`` of one finished tiny evaluation (adam@1e-3, one seed)."""
    workdir = tmp_path_factory.mktemp("finished") / "e"
    proc = run_eval_cli(f"--workdir={workdir}", "--optimizers=adam@1e-3", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (workdir / records.RESULTS_FILE).read_bytes()


def _workdir_with(tmp_path, content: bytes):
    workdir = tmp_path / "e"
    workdir.mkdir()
    (workdir / records.RESULTS_FILE).write_bytes(content)
    return workdir


def test_second_run_on_a_locked_workdir_is_refused(tmp_path, finished):
    content = finished + b'{"ta'  # a torn tail: a run that got the workdir would repair it
    workdir = _workdir_with(tmp_path, content)
    fd = workdir_lib.lock(workdir)
    try:
        proc = run_eval_cli(f"--workdir={workdir}", "--optimizers=adam@1e-3,sgd@1e-2", *TINY)
    finally:
        os.close(fd)
    _refused(proc, f"in use by another run: pid {os.getpid()} on host {socket.gethostname()}")
    assert (workdir / records.RESULTS_FILE).read_bytes() == content


@pytest.mark.parametrize(
    "args, message",
    [
        (["--optimizers=/nonexistent/dir"], "learned optimizer file not found"),
        (["--optimizers=adam,nosuchopt"], "unknown optimizer 'nosuchopt'"),
        (["--optimizers=learned=/nonexistent/lopt"], "learned optimizer file not found"),
        (["--report_only"], "results.jsonl"),
        (["--tasks=nosuchtask"], "unknown task 'nosuchtask'"),
        (["--lrs=fast"], "bad learning rate 'fast' in --lrs"),
        (["--steps=-5"], "--steps must be >= 0, got -5"),
        (["--smooth=2"], "--smooth=2: must be"),
    ],
)
def test_refusals_write_nothing(tmp_path, args, message):
    workdir = tmp_path / "new" / "e"
    _refused(run_eval_cli(f"--workdir={workdir}", *args, timeout=120), message)
    assert not (tmp_path / "new").exists()


def _file_size_limit(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit gets EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_append_past_the_file_size_limit_is_all_or_nothing(tmp_path, finished):
    workdir = _workdir_with(tmp_path, finished)
    proc = run_eval_cli(
        f"--workdir={workdir}",
        "--optimizers=adam@1e-3,sgd@1e-2",  # adam@1e-3 is done; sgd's record does not fit
        *TINY,
        preexec_fn=_file_size_limit(len(finished) + 200),
    )
    _refused(proc, str(workdir / records.RESULTS_FILE))
    assert "File too large" in proc.stderr
    data = (workdir / records.RESULTS_FILE).read_bytes()
    assert data == finished
    assert all(json.loads(x) for x in data.decode().splitlines())


UNDECODABLE = b'\xff\xfe{"task": "x"}\n'


def test_undecodable_line_is_skipped_with_a_warning(tmp_path, finished, caplog):
    path = _workdir_with(tmp_path, finished + UNDECODABLE + finished) / records.RESULTS_FILE
    with caplog.at_level(logging.WARNING):
        recs = records.read_records(path)
        checks.preflight(str(path.parent), 0.05)
    assert [r["candidate"] for r in recs] == ["adam@0.001", "adam@0.001"]
    assert any(":2:" in r.getMessage() for r in caplog.records), caplog.text


def test_report_only_reads_past_an_undecodable_line(tmp_path, finished):
    workdir = _workdir_with(tmp_path, UNDECODABLE + finished)
    proc = run_eval_cli(f"--workdir={workdir}", "--report_only", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "results.jsonl:1: skipping" in proc.stderr
    assert (workdir / "summary.md").is_file()
