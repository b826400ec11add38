"""The fault table: each case as (runner, exit code, one-line message, nothing lost).

``runner(ctx) -> Outcome`` runs the case (see ``harness``); ``code`` and ``message`` (a regex
searched in the last stderr line) are what a user must see; ``check(ctx, outcome)`` asserts that
nothing was lost or silently wrong (theta equal to the uninterrupted run, old checkpoints and
metrics still there, ...).
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

import fault_harness as h
import numpy as np
from fault_harness import Ctx, Outcome


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    runner: Callable[[Ctx], Outcome]
    code: int | None
    message: str = ""
    check: Callable[[Ctx, Outcome], None] | None = None


def _cli(*extra, steps=h.STEPS, workdir=None, timeout=240):
    def runner(ctx: Ctx) -> Outcome:
        return h.run(h.meta_train_argv(ctx, workdir or ctx.tmp / "w", *extra, steps=steps), timeout)

    return runner


def _nothing_written(ctx: Ctx, out: Outcome) -> None:
    w = ctx.tmp / "w"
    assert not (w / "checkpoints").exists() and not (w / "metrics.jsonl").exists()


# ------------------------------------------------------------------ resume / history cases
def _same_theta_as_full(ctx: Ctx, out: Outcome) -> None:
    np.testing.assert_allclose(
        h.theta(ctx.tmp / "w" / "export"), h.theta(ctx.full / "export"), atol=1e-6
    )


def _corrupt_latest(ctx: Ctx) -> Outcome:
    w = ctx.workdir_copy(ctx.partial)
    files = h.state_data_files(w / "checkpoints" / "4")
    h.flip_bytes(files[0], 64)
    return h.run(h.meta_train_argv(ctx, w))


def _corrupt_check(ctx: Ctx, out: Outcome) -> None:
    assert "resumed from the checkpoint at step 2" in out.stderr
    _same_theta_as_full(ctx, out)


# a preemptible cluster re-runs the same command after each kill; the kills fall inside the
# first checkpoint's write (before any data, and with all data written but not committed), a
# middle one's commit and the last one's write
KILL_CHAIN = ("create:2", "commit:2", "commit:4", "create:6", "commit:6")


def _kill_chain(ctx: Ctx) -> Outcome:
    w = ctx.tmp / "w"
    codes = []
    for point in KILL_CHAIN:
        out = h.run(h.meta_train_argv(ctx, w), kill_at=point)
        codes.append(out.code)
        if out.code != -9:
            out.notes["codes"] = codes
            return out  # not killed where it should have been (or refused to restart)
    out = h.run(h.meta_train_argv(ctx, w))
    out.notes["codes"] = codes
    return out


def _kill_chain_check(ctx: Ctx, out: Outcome) -> None:
    assert out.notes["codes"] == [-9] * len(KILL_CHAIN), out.notes
    assert h.checkpoints(ctx.tmp / "w") >= {4, 6}
    _same_theta_as_full(ctx, out)


def _truncate_latest(ctx: Ctx) -> Outcome:
    w = ctx.workdir_copy(ctx.partial)
    for f in h.state_data_files(w / "checkpoints" / "4"):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    return h.run(h.meta_train_argv(ctx, w))


# root ignores file permissions; without these capabilities it is held to them like a user
NO_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def _latest_not_permitted(ctx: Ctx) -> Outcome:
    """``chmod 000`` on the latest checkpoint, run by a user without override rights: it cannot
    be read nor moved to another directory; the run resumes from the previous one."""
    if shutil.which("setpriv") is None:
        return Outcome(-999, "setpriv is not installed", 0.0)
    w = ctx.workdir_copy(ctx.partial)
    (w / "checkpoints" / "4").chmod(0)
    out = h.run([*NO_OVERRIDE, *h.meta_train_argv(ctx, w)])
    out.notes["set_aside"] = sorted(p.name for p in (w / "checkpoints").glob("unreadable-4-*"))
    return out


def _latest_not_permitted_check(ctx: Ctx, out: Outcome) -> None:
    assert "resumed from the checkpoint at step 2" in out.stderr, out.stderr[-3000:]
    assert len(out.notes["set_aside"]) == 1, out.notes  # kept, out of the way
    _same_theta_as_full(ctx, out)


def _all_unreadable(ctx: Ctx, flag: bool = False) -> Outcome:
    w = ctx.workdir_copy(ctx.partial)
    for step in (2, 4):
        for f in h.state_data_files(w / "checkpoints" / str(step)):
            f.write_bytes(b"")
    extra = ["--restart_from_scratch"] if flag else []
    out = h.run(h.meta_train_argv(ctx, w, *extra))
    out.notes["rows"] = len(h.metrics_rows(w)) if (w / "metrics.jsonl").exists() else 0
    return out


def _all_flipped(ctx: Ctx) -> Outcome:
    """Flipped bytes in every checkpoint's data: refused in one line, with no traceback from
    reads left in flight."""
    w = ctx.workdir_copy(ctx.partial)
    for step in (2, 4):
        h.flip_bytes(h.state_data_files(w / "checkpoints" / str(step))[0], 64)
    out = h.run(h.meta_train_argv(ctx, w))
    out.notes["rows"] = len(h.metrics_rows(w))
    return out


def _history_kept_no_traceback(ctx: Ctx, out: Outcome) -> None:
    _history_kept(ctx, out)
    assert "Traceback" not in out.stderr and "Event loop" not in out.stderr, out.stderr[-3000:]
    assert len(out.stderr.strip().splitlines()) < 10, out.stderr[-3000:]


def _history_kept(ctx: Ctx, out: Outcome) -> None:
    w = ctx.tmp / "w"
    assert out.notes["rows"] == 4, out.notes  # metrics.jsonl untouched
    unreadable = w / "checkpoints_unreadable"
    kept = h.checkpoints(w) | {int(p.name.split("-")[0]) for p in unreadable.glob("*")}
    assert kept >= {2, 4}, kept  # nothing deleted


def _history_moved(ctx: Ctx, out: Outcome) -> None:
    w = ctx.tmp / "w"
    moved = list((w / "discarded").glob("*/metrics.jsonl"))
    assert moved and len(h.metrics_rows(moved[0].parent)) == 4
    assert h.steps_logged(w) == h.STEPS


def _run_json_gone_other_config(ctx: Ctx) -> Outcome:
    w = ctx.workdir_copy(ctx.partial)
    (w / "run.json").unlink()
    out = h.run(h.meta_train_argv(ctx, w, "--config.seed=7"))
    out.notes["ckpts"] = h.checkpoints(w)
    out.notes["rows"] = len(h.metrics_rows(w))
    return out


def _run_json_gone_check(ctx: Ctx, out: Outcome) -> None:
    assert out.notes["ckpts"] == {2, 4} and out.notes["rows"] == 4, out.notes


def _torn_metrics(ctx: Ctx) -> Outcome:
    w = ctx.workdir_copy(ctx.partial)
    with open(w / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "loss": 0.5, "num_nonf')
    return h.run(h.meta_train_argv(ctx, w))


def _torn_metrics_check(ctx: Ctx, out: Outcome) -> None:
    rows = h.metrics_rows(ctx.tmp / "w")  # strict JSON parse of every line
    assert [r["step"] for r in rows] == list(range(1, h.STEPS + 1))
    assert "torn" in out.stderr
    _same_theta_as_full(ctx, out)


# ------------------------------------------------------------------ signals, locks, memory
def _sigterm_mid_run(ctx: Ctx) -> Outcome:
    w = ctx.tmp / "w"
    proc = h.start(h.meta_train_argv(ctx, w, steps=400))
    h.wait_for(lambda: h.steps_logged(w) >= 3, proc)
    t0 = h.sigterm(proc)
    out = h.finish(proc, t0)
    out.notes["stopped"] = h.steps_logged(w)
    out.notes["ckpts"] = h.checkpoints(w)
    return out


def _sigterm_mid_run_check(ctx: Ctx, out: Outcome) -> None:
    assert out.notes["stopped"] in out.notes["ckpts"], out.notes
    assert out.seconds < 30


def _sigterm_detached(ctx: Ctx) -> Outcome:
    """SIGTERM to a detached job whose stdout and stderr went away (their readers closed)."""
    w = ctx.tmp / "w"
    proc = subprocess.Popen(
        h.meta_train_argv(ctx, w, steps=400),
        env=h.env(),
        cwd=h.REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    h.wait_for(lambda: h.steps_logged(w) >= 3, proc)
    proc.stdout.close()
    proc.stderr.close()
    time.sleep(0.5)
    t0 = h.sigterm(proc)
    try:
        code = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = None
    out = Outcome(code, "", time.perf_counter() - t0)
    out.notes["stopped"] = h.steps_logged(w)
    out.notes["ckpts"] = h.checkpoints(w)
    return out


def _sigterm_while_compiling(ctx: Ctx) -> Outcome:
    """SIGTERM during the first step's compile (no compilation cache, 4 groups): the process
    must end within the grace period, not after the compile."""
    w = ctx.tmp / "w"
    argv = h.meta_train_argv(ctx, w, "--config.num_groups=4", "--sigterm_grace_s=2")
    argv = [a for a in argv if not a.startswith("--compilation_cache_dir")]
    argv.append("--compilation_cache_dir=")
    proc = h.start(argv)
    h.wait_for(lambda: (w / "run.json").exists(), proc)
    time.sleep(0.5)
    t0 = h.sigterm(proc)
    return h.finish(proc, t0, timeout=120)


def _ends_within_seconds(ctx: Ctx, out: Outcome) -> None:
    assert out.seconds < 10, out.seconds


def _second_run_same_workdir(ctx: Ctx) -> Outcome:
    w = ctx.tmp / "w"
    first = h.start(h.meta_train_argv(ctx, w, steps=400))
    h.wait_for(lambda: h.steps_logged(w) >= 1, first)
    second = h.run(h.meta_train_argv(ctx, w, steps=400), timeout=120)
    second.notes["first_pid"] = first.pid
    t0 = h.sigterm(first)
    h.finish(first, t0)
    rows = h.metrics_rows(w)
    second.notes["rows_ok"] = [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    return second


def _second_run_check(ctx: Ctx, out: Outcome) -> None:
    assert f"pid {out.notes['first_pid']} on host" in out.last_line
    assert out.notes["rows_ok"]  # the live run's metrics were not truncated or duplicated


def _huge_population(ctx: Ctx) -> Outcome:
    return h.run(
        h.meta_train_argv(ctx, ctx.tmp / "w", "--config.pairs_per_group=1000000000"), timeout=90
    )


# ------------------------------------------------------------------ NaN
_NAN_SCRIPT = """
import sys, jax, jax.numpy as jnp
from meta_train import cli, outer
orig = outer.make_update
def make_update(meta_opt, mesh, *settings):
    upd = orig(meta_opt, mesh, *settings)
    def poisoned(theta, opt_state, grads, step):
        if int(step) >= 2:
            grads = [jax.tree.map(lambda g: g * jnp.nan, x) for x in grads]
        return upd(theta, opt_state, grads, step)
    return poisoned
outer.make_update = make_update
sys.argv = ["lopt-meta-train", *sys.argv[1:]]
cli.run()
"""


def _nan_meta_gradient(ctx: Ctx) -> Outcome:
    argv = h.meta_train_argv(ctx, ctx.tmp / "w", "--config.max_nonfinite_steps=3", steps=8)
    return h.run([sys.executable, "-c", _NAN_SCRIPT, *argv[3:]])


def _nan_check(ctx: Ctx, out: Outcome) -> None:
    w = ctx.tmp / "w"
    export = w / "export"
    if export.exists():  # an export is never NaN
        assert np.isfinite(h.theta(export)).all()
    assert 2 in h.checkpoints(w)


def _sigma_underflow(ctx: Ctx) -> Outcome:
    out = _cli("--config.sigma=1e-20")(ctx)
    export = ctx.tmp / "w" / "export"
    out.notes["export_finite"] = not export.exists() or bool(np.isfinite(h.theta(export)).all())
    return out


# ------------------------------------------------------------------ disks and workdirs
def _workdir_is_file(ctx: Ctx) -> Outcome:
    (ctx.tmp / "f").write_text("x")
    return h.run(h.meta_train_argv(ctx, ctx.tmp / "f"))


def _read_only_workdir(ctx: Ctx) -> Outcome:
    mnt = ctx.tmp / "ro"
    with h.tmpfs(mnt, "1m", read_only=True) as ok:
        if not ok:
            return Outcome(-999, "cannot mount a tmpfs here", 0.0)
        return h.run(h.meta_train_argv(ctx, mnt / "w"))


def _full_disk(ctx: Ctx) -> Outcome:
    """The disk fills before the first checkpoint; once space is freed (the tmpfs grown), the
    same command must run to the end, as its message says."""
    mnt = ctx.tmp / "small"
    with h.tmpfs(mnt, "160k") as ok:
        if not ok:
            return Outcome(-999, "cannot mount a tmpfs here", 0.0)
        out = h.run(h.meta_train_argv(ctx, mnt / "w"))
        out.notes["lines"] = len(out.stderr.strip().splitlines())
        h.grow_tmpfs(mnt, "64m")
        again = h.run(h.meta_train_argv(ctx, mnt / "w"))
        out.notes["again"] = (again.code, again.last_line)
        if again.code == 0:
            out.notes["theta"] = h.theta(mnt / "w" / "export")
        return out


def _disk_full_check(ctx: Ctx, out: Outcome) -> None:
    assert out.notes["lines"] < 40, out.stderr[-3000:]  # not ~900 lines of traceback
    assert out.notes["again"][0] == 0, out.notes["again"]
    np.testing.assert_allclose(out.notes["theta"], h.theta(ctx.full / "export"), atol=1e-6)


def _lopt_override(ctx: Ctx) -> Outcome:
    """The override reaches the optimizer: fine-tuning the shipped hyper_small_v2 (lstm_hidden
    32) with lstm_hidden=8 is refused naming the two settings (cheap: nothing is compiled)."""
    return _cli("--config.lopt.config.lstm_hidden=8", "--config.init_from=hyper_small_v2")(ctx)


# ------------------------------------------------------------------ lopt-eval
def _eval(*args, setup=None):
    def runner(ctx: Ctx) -> Outcome:
        workdir = ctx.tmp / "e"
        if setup is not None:
            setup(workdir)
        argv = [
            sys.executable,
            "-m",
            "eval.cli",
            f"--workdir={workdir}",
            "--tasks=linreg_d64_n0.3_b32",
        ]
        return h.run([*argv, "--optimizers=adam@1e-3", "--steps=20", "--seeds=1", *args])

    return runner


def _as_file(path: pathlib.Path) -> None:
    path.write_text("not a directory")


def _other_schema(path: pathlib.Path) -> None:
    path.mkdir()
    (path / "results.jsonl").write_text('{"name": "something else", "value": 3}\n')


def _no_traceback(ctx: Ctx, out: Outcome) -> None:
    assert "Traceback" not in out.stderr, out.stderr[-2000:]


CASES = [
    # silent wrong results
    Case(
        "sigma_underflow", _sigma_underflow, 2, r"config\.sigma=1e-20: sigma\^2", _nothing_written
    ),
    Case(
        "nan_meta_gradient_skipped_then_stop",
        _nan_meta_gradient,
        4,
        r"non-finite.*max_nonfinite_steps=3",
        _nan_check,
    ),
    Case("killed_in_checkpoint_writes_same_command_resumes", _kill_chain, 0, "", _kill_chain_check),
    Case("corrupt_checkpoint_data_falls_back", _corrupt_latest, 0, "", _corrupt_check),
    Case("truncated_checkpoint_falls_back", _truncate_latest, 0, "", _corrupt_check),
    # history lost
    Case(
        "all_checkpoints_unreadable_refused",
        _all_unreadable,
        2,
        r"holds an earlier run .* --restart_from_scratch",
        _history_kept,
    ),
    Case(
        "all_checkpoints_flipped_refused_in_one_line",
        _all_flipped,
        2,
        r"holds an earlier run .* --restart_from_scratch",
        _history_kept_no_traceback,
    ),
    Case(
        "latest_checkpoint_not_permitted_falls_back",
        _latest_not_permitted,
        0,
        "",
        _latest_not_permitted_check,
    ),
    Case(
        "restart_from_scratch_moves_history",
        lambda c: _all_unreadable(c, flag=True),
        0,
        "",
        _history_moved,
    ),
    Case(
        "run_json_missing_other_config",
        _run_json_gone_other_config,
        2,
        r"checkpoint at step 4 .* another config \(fields differing: seed\)",
        _run_json_gone_check,
    ),
    Case(
        "second_run_on_workdir_refused",
        _second_run_same_workdir,
        2,
        r"in use by another run: pid \d+ on host",
        _second_run_check,
    ),
    # hang, crashes, exit codes
    Case(
        "huge_population_refused",
        _huge_population,
        2,
        r"config\.pairs_per_group=1000000000: the population needs about .* GiB",
        _nothing_written,
    ),
    Case(
        "sigterm_mid_run_exit_75",
        _sigterm_mid_run,
        75,
        r"stopped by SIGTERM at step \d+",
        _sigterm_mid_run_check,
    ),
    Case("sigterm_detached_exit_75", _sigterm_detached, 75, "", _sigterm_mid_run_check),
    Case(
        "sigterm_while_compiling_ends_in_seconds",
        _sigterm_while_compiling,
        75,
        "",
        _ends_within_seconds,
    ),
    Case("torn_metrics_line_resumes", _torn_metrics, 0, "", _torn_metrics_check),
    Case(
        "unknown_config_field",
        _cli("--config.bogus=1"),
        2,
        r"--config\.bogus: unknown config field 'bogus'",
        _nothing_written,
    ),
    Case(
        "lopt_config_override_works",
        _lopt_override,
        2,
        r"init_from='hyper_small_v2'.*'lstm_hidden': 32.*'lstm_hidden': 8",
        _nothing_written,
    ),
    Case(
        "lopt_config_override_bad_value",
        _cli("--config.lopt.config.lstm_hidden=abc"),
        2,
        r"lstm_hidden.*'abc'.*integer",
        _nothing_written,
    ),
    Case(
        "unknown_config_name",
        lambda c: h.run(
            [
                a.replace("--config=quickstart", "--config=nosuch")
                for a in h.meta_train_argv(c, c.tmp / "w")
            ]
        ),
        2,
        r"--config=nosuch: unknown config",
    ),
    Case("workdir_is_a_file", _workdir_is_file, 2, r"is a file, not a directory"),
    Case("workdir_read_only", _read_only_workdir, 2, r"not writable \(Read-only file system\)"),
    Case("disk_full", _full_disk, 2, r"error: disk full while writing", _disk_full_check),
    Case(
        "eval_suite_bogus_up_front",
        _cli("--config.eval.num_tasks=1", "--config.eval.steps=5", "--config.eval.suite=bogus"),
        2,
        r"config\.eval\.suite='bogus': unknown suite",
        _nothing_written,
    ),
    Case(
        "eval_workdir_is_a_file",
        _eval(setup=_as_file),
        2,
        r"is a file, not a directory",
        _no_traceback,
    ),
    Case("eval_smooth_negative", _eval("--smooth=-1"), 2, r"--smooth=-1: must be", _no_traceback),
    Case(
        "eval_results_other_schema",
        _eval(setup=_other_schema),
        2,
        r"results\.jsonl:1: not a run record",
        _no_traceback,
    ),
]
