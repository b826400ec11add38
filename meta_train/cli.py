"""``lopt-meta-train --config=NAME_OR_PATH --workdir=DIR [--config.FIELD=value ...]``.

A bare config name (one of ``meta_train.configs.NAMES``; ``lopt-meta-train --help`` lists them)
resolves to ``meta_train/configs/NAME.py``. Multi-host: on SLURM / Open MPI / Kubernetes / Cloud
TPU pass ``--distributed`` (auto-detection by ``jax.distributed.initialize()``); elsewhere give
``--coordinator_address``, ``--num_processes`` and ``--process_id``. Any config field can be
overridden, ``--config.lopt.config.SETTING=value`` included (a setting of the architecture).

Exit codes:
  0   finished (all outer steps done, exported)
  1   unexpected error (a traceback: please report it)
  2   one-line error before or during the run: bad flag or config value, unknown config name or
      field, workdir that is a file, read-only, full, in use by another run, of another config,
      or holding an earlier run without a resumable checkpoint (see --restart_from_scratch)
  3   multi-process run: another process died or lost contact (restart all to resume)
  4   diverged: config.max_nonfinite_steps non-finite meta-updates in a row (none was applied;
      the last checkpoint and export are intact)
  75  stopped by SIGTERM, not finished: checkpointed at the step reached (or, if that step did
      not end within --sigterm_grace_s, at the previous checkpoint); run the same command again
      to resume
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
import traceback

from absl import app, flags
from ml_collections import config_flags

from meta_train import configs, cpu_rng, overrides
from tasks import cli_common

FLAGS = flags.FLAGS
EXIT_USAGE, EXIT_PEER, EXIT_DIVERGED = 2, 3, 4


def _epilog() -> str:
    """The config names (and experiment records, where the package has them), how to override
    a field, and the exit codes."""
    import textwrap

    def fill(text, indent=""):
        return textwrap.fill(text, 80, subsequent_indent=indent)

    parts = [fill(f"configs (--config=NAME): {', '.join(configs.NAMES)}", "  ")]
    experiments = list(getattr(configs, "EXPERIMENTS", ()))
    if experiments:
        folder = os.path.dirname(experiments[0])
        if folder and all(os.path.dirname(e) == folder for e in experiments):
            title = f"experiments (--config={folder}/NAME)"
            experiments = [os.path.basename(e) for e in experiments]
        else:
            title = "experiments (--config=NAME)"
        parts.append(fill(f"{title}: {', '.join(experiments)}", "  "))
    parts.append(
        fill(
            "--config=PATH takes a config file (get_config() -> ml_collections.ConfigDict) "
            "instead; --config.FIELD=value overrides a field, --config.lopt.config.SETTING=value "
            "a setting of the learned optimizer's architecture."
        )
    )
    parts.append(
        fill(
            "exit codes: 0 finished; 2 bad flag, config or workdir (one line); 3 another "
            "process of a multi-process run died; 4 diverged; 75 stopped by SIGTERM (run the "
            "same command again to resume); 1 unexpected error (a traceback)."
        )
    )
    return "\n\n".join(parts)


COMMAND = cli_common.Command(
    name="lopt-meta-train",
    usage="lopt-meta-train --config=NAME_OR_PATH --workdir=DIR [--config.FIELD=value ...] [flags]",
    description=(
        "Meta-train a learned optimizer with persistent evolution strategies over a zoo of "
        "training tasks, on one CPU, every device of one host, or many hosts as one SPMD "
        "program. The workdir holds checkpoints, metrics (JSON lines, TensorBoard) and the "
        "export (learned_opt.load(WORKDIR/export)); a killed run resumes from it when the same "
        "command runs again."
    ),
    epilog=_epilog,
)


def define_flags(flag_values: flags.FlagValues = FLAGS, argv: list[str] | None = None) -> None:
    """Define the flags of ``lopt-meta-train`` in ``flag_values`` (:func:`run` calls it, not the
    import: the other entry modules can be imported beside this one).

    ``argv``: the command line that will be parsed (see :func:`command_line`); config_flags reads
    its ``--config.FIELD`` overrides from it (from ``sys.argv`` if None)."""
    fv = dict(flag_values=flag_values)
    config_flags.DEFINE_config_file(
        "config",
        None,
        "Config name (listed below) or path of a config file.",
        lock_config=True,
        sys_argv=argv,
        **fv,
    )
    flags.DEFINE_string(
        "workdir",
        None,
        "Run directory (checkpoints, metrics, export); multi-process: one path all processes "
        "share.",
        **fv,
    )
    flags.mark_flags_as_required(["config", "workdir"], flag_values=flag_values)
    flags.DEFINE_bool("progress", True, "Show a progress bar.", **fv)
    flags.DEFINE_bool(
        "distributed",
        False,
        "Call jax.distributed.initialize() (auto-detects the cluster).",
        **fv,
    )
    flags.DEFINE_string("coordinator_address", None, "host:port of process 0.", **fv)
    flags.DEFINE_integer("num_processes", None, "Number of processes.", **fv)
    flags.DEFINE_integer("process_id", None, "This process's id (0-based).", **fv)
    flags.DEFINE_string(
        "compilation_cache_dir",
        os.path.join(
            os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lopt-meta-train"
        ),
        "Persistent XLA compilation cache (restarts skip recompiling); '' disables it.",
        **fv,
    )
    flags.DEFINE_integer(
        "distributed_timeout_s",
        100,
        "Multi-process: seconds without a heartbeat after which a lost process is declared dead "
        "and the others stop with an error (jax.distributed heartbeat timeout).",
        **fv,
    )
    flags.DEFINE_bool(
        "restart_from_scratch",
        False,
        "Start at step 0 even though the workdir holds an earlier run's checkpoints, metrics or "
        "exports but no checkpoint that can be resumed; that history is moved to "
        "WORKDIR/discarded/.",
        **fv,
    )
    flags.DEFINE_float(
        "sigterm_grace_s",
        20.0,
        "After SIGTERM the run checkpoints at the end of the current outer step; if that takes "
        "longer than this many seconds it exits at once (exit code 75 either way).",
        **fv,
    )
    flags.DEFINE_integer(
        "xla_cpu_optimization_level",
        CPU_OPTIMIZATION_LEVEL,
        "LLVM optimisation level of XLA:CPU's compiles, 0-3 (XLA's own default: 3). At 1 the "
        "meta-training programs compile faster and run as fast, but not bit-identically to "
        "level 3 (float rounding). -1 keeps XLA's default. Applied "
        "only where jax runs on CPU (JAX_PLATFORMS=cpu, or no accelerator plugin installed) and "
        "XLA_FLAGS does not already set it.",
        lower_bound=-1,
        upper_bound=3,
        **fv,
    )
    flags.DEFINE_integer(
        "cpu_devices",
        0,
        "Split each group's particles over this many CPU devices of this process "
        "(--xla_force_host_platform_device_count), one per core. 0: the largest count up to the "
        "usable cores that divides pairs_per_group; 1: one device. Applied only on CPU, in a "
        "single-process run, and where XLA_FLAGS does not already set the count. Not "
        "bit-identical across counts (the sum over pairs is reduced in another order).",
        lower_bound=0,
        **fv,
    )
    flags.DEFINE_string(
        "cpu_collectives",
        None,
        "jax_cpu_collectives_implementation for CPU multi-process (e.g. 'gloo').",
        **fv,
    )


def _die(message: str, code: int = EXIT_USAGE):
    """``lopt-meta-train: error: <message>`` as the last line of stderr, on a line of its own,
    and exit at once (:func:`tasks.cli_common.die`)."""
    cli_common.die(COMMAND.name, message, code, own_line=True)


def command_line(argv: list[str]) -> tuple[list[str], dict]:
    """``(argv to parse, {SETTING: value})`` from the command line as typed: a bare
    ``--config=NAME`` resolved to its file (config_flags loads by path), and the
    ``--config.lopt.config.SETTING=value`` arguments taken out (see :mod:`meta_train.overrides`).
    Raises ``overrides.UsageError`` for an unknown config or field."""
    lopt_overrides: dict = {}
    argv = [
        "--config=" + configs.path(a.split("=", 1)[1]) if a.startswith("--config=") else a
        for a in argv
    ]
    argv = overrides.split_lopt_overrides(argv, lopt_overrides)
    overrides.check_config_args(argv)
    return argv, lopt_overrides


def _set_lopt_overrides(lopt_overrides: dict) -> None:
    """Set the learned optimizer's settings ``lopt_overrides`` on the parsed config."""
    with FLAGS.config.unlocked():
        for key, value in lopt_overrides.items():
            FLAGS.config.lopt.config[key] = value


CPU_OPTIMIZATION_LEVEL = 1  # of lopt-meta-train, lopt-eval, lopt-quickstart and the tests
_ACCELERATOR_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "libtpu")


def _add_cpu_xla_flag(name: str, value: int) -> bool:
    """Add ``--name=value`` to ``XLA_FLAGS`` before jax creates its backend (XLA reads the
    variable then), when jax will run on CPU (``JAX_PLATFORMS=cpu``, or no accelerator plugin
    installed) and the variable does not set ``name`` already. Returns whether it was added."""
    import importlib.util

    flags_now = os.environ.get("XLA_FLAGS", "")
    platforms = os.environ.get("JAX_PLATFORMS", "")
    on_cpu = platforms == "cpu" or (
        not platforms and not any(importlib.util.find_spec(m) for m in _ACCELERATOR_PLUGINS)
    )
    if not on_cpu or name in flags_now:
        return False
    os.environ["XLA_FLAGS"] = f"{flags_now} --{name}={value}".strip()
    return True


def set_cpu_optimization_level(level: int) -> bool:
    """XLA:CPU's LLVM optimisation level ``level`` (-1: XLA's own), through
    :func:`_add_cpu_xla_flag`. Returns whether it was set."""
    return level >= 0 and _add_cpu_xla_flag("xla_backend_optimization_level", level)


def set_cpu_compilation(level: int) -> None:
    """The XLA:CPU compilation settings of lopt-meta-train, lopt-eval, lopt-quickstart and the
    tests, before jax's backend starts: LLVM level ``level`` (:func:`set_cpu_optimization_level`)
    and jax's random bits as straight-line code (:func:`cpu_rng.use_unrolled_threefry`)."""
    set_cpu_optimization_level(level)
    cpu_rng.use_unrolled_threefry()


def cpu_device_count(requested: int, pairs_per_group: int, cores: int | None = None) -> int:
    """CPU devices for a run: ``requested`` if > 0, else (auto) the largest count up to
    ``cores`` (default: the cores this process may use) that divides ``pairs_per_group``."""
    if requested > 0:
        return requested
    cores = cores or len(os.sched_getaffinity(0))
    return max(d for d in range(1, max(cores, 1) + 1) if pairs_per_group % d == 0)


def set_cpu_devices(count: int) -> bool:
    """``count`` simulated CPU devices (``--xla_force_host_platform_device_count``) through
    :func:`_add_cpu_xla_flag`; nothing for 1. Returns whether it was set."""
    return count > 1 and _add_cpu_xla_flag("xla_force_host_platform_device_count", count)


def _init_distributed():
    import jax

    if FLAGS.cpu_collectives:
        jax.config.update("jax_cpu_collectives_implementation", FLAGS.cpu_collectives)
    timeouts = dict(heartbeat_timeout_seconds=FLAGS.distributed_timeout_s)
    explicit = any(
        v is not None for v in (FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    )
    if explicit:
        if None in (FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id):
            raise app.UsageError(
                "--coordinator_address, --num_processes and --process_id must be given together"
            )
        jax.distributed.initialize(
            coordinator_address=FLAGS.coordinator_address,
            num_processes=FLAGS.num_processes,
            process_id=FLAGS.process_id,
            **timeouts,
        )
    elif FLAGS.distributed:
        jax.distributed.initialize(**timeouts)


def _thread_excepthook(args):
    """A disk error in orbax's writer thread: the main thread reports it in one line."""
    if overrides.disk_error(args.exc_value):
        return
    _DEFAULT_EXCEPTHOOK(args)


_DEFAULT_EXCEPTHOOK = threading.excepthook


def _not_a_disk_error(record: logging.LogRecord) -> bool:
    return not (record.exc_info and overrides.disk_error(record.exc_info[1]))


def _check_workdir(workdir: str) -> None:
    if not workdir:  # --workdir= (None is refused by the parser)
        raise app.UsageError("--workdir is required")
    if "://" in workdir:  # pathlib would quietly turn gs://b/x into a local gs:/b/x
        raise app.UsageError(
            f"--workdir={workdir}: URL workdirs are not supported; use a path on a shared "
            "filesystem (NFS, Lustre, or a bucket mounted with gcsfuse)"
        )


def _peer_failure(e: Exception) -> None:
    """Exit 3 at once after an error in a multi-process run.

    A failed collective (another process died or is unreachable) surfaces as a runtime or value
    error; jax's shutdown barrier would otherwise wait for the dead process, then abort with a
    fatal error."""
    import jax

    traceback.print_exc()
    first = (str(e).splitlines() or [type(e).__name__])[0][:300]
    _die(
        f"process {jax.process_index()} of {jax.process_count()} "
        f"stopped: {type(e).__name__}: {first}. If another process died or lost contact, "
        "restart all processes with the same --workdir to resume from the last checkpoint.",
        EXIT_PEER,
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from meta_train import stopping

    stopping.SigtermStop(FLAGS.sigterm_grace_s).install()  # SIGTERM: exit 75 within grace
    threading.excepthook = _thread_excepthook
    logging.getLogger("absl").addFilter(_not_a_disk_error)  # orbax logs its threads' errors
    _check_workdir(FLAGS.workdir)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax is chatty at INFO
    logging.getLogger("meta_train").setLevel(logging.INFO)
    set_cpu_compilation(FLAGS.xla_cpu_optimization_level)
    multi_process = FLAGS.distributed or FLAGS.coordinator_address or FLAGS.num_processes
    if not multi_process:
        set_cpu_devices(cpu_device_count(FLAGS.cpu_devices, int(FLAGS.config.pairs_per_group)))
    import jax

    if FLAGS.compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", FLAGS.compilation_cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    _init_distributed()
    from meta_train import checkpoint, guard, train, workdir
    from meta_train.config import ConfigError
    from tasks import DatasetNotPreparedError

    config = FLAGS.config
    try:
        state = train.train(
            config,
            FLAGS.workdir,
            argv=list(sys.argv),
            progress=FLAGS.progress,
            restart_from_scratch=FLAGS.restart_from_scratch,
            sigterm_grace_s=FLAGS.sigterm_grace_s,
        )
    except (
        ConfigError,
        DatasetNotPreparedError,
        checkpoint.WorkdirMismatchError,
        workdir.WorkdirError,
    ) as e:
        _die(str(e))  # a clear one-line error
    except guard.DivergedError as e:
        _die(str(e), EXIT_DIVERGED)
    except Exception as e:  # noqa: BLE001
        disk = overrides.disk_error(e)
        if disk:
            _die(
                f"{disk} while writing in --workdir={FLAGS.workdir}; free space and run the "
                "same command again to resume from the last checkpoint"
            )
        if jax.process_count() == 1:
            raise
        _peer_failure(e)
    if int(state.step) < config.outer_steps:
        stopping.say(
            f"lopt-meta-train: stopped by SIGTERM at step {int(state.step)} of "
            f"{config.outer_steps} (checkpoint saved); run the same command again to resume"
        )
        _exit_quietly(stopping.EXIT_PREEMPTED)


def _exit_quietly(code: int) -> None:
    """``sys.exit(code)``, after pointing a closed stdout/stderr at /dev/null: the interpreter
    flushes both at exit, and a flush into a pipe whose reader is gone would turn the exit
    code into 120."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    sys.exit(code)


def run():
    """Console entry point (``lopt-meta-train``)."""
    argv, lopt_overrides = list(sys.argv), {}
    if not cli_common.help_requested(argv):
        try:
            argv, lopt_overrides = command_line(argv)
        except overrides.UsageError as e:
            _die(str(e))
    # sys.argv stays as typed: main records it in the export's metadata
    cli_common.run(
        COMMAND,
        main,
        functools.partial(define_flags, argv=argv),
        argv=argv,
        after_parse=functools.partial(_set_lopt_overrides, lopt_overrides),
    )


if __name__ == "__main__":
    run()
