"""``train(config, workdir)``: the meta-training driver (progress, logging, checkpoints, export).

    state = train(config, workdir)

``train`` turns the config into the run's frozen :class:`meta_train.spec.RunSpec` once, at its
top; everything below it takes the spec (or the part of it it needs), never the config.

Resumes from ``workdir/checkpoints`` when present (refusing a workdir of another config), writes
``workdir/metrics.jsonl`` (one JSON object per logged step), TensorBoard events in
``workdir/tb``, checkpoints every ``config.checkpoint_every`` steps (orbax's ``should_save``) and on
preemption (SIGTERM; in a multi-process run at the step jax's preemption service makes every
process agree on: orbax's ``reached_preemption``), and exports the
learned optimizer with ``learned_opt.save`` to ``workdir/export`` every ``config.export_every``
steps and at the end (each also kept as ``workdir/exports/step_N`` with ``config.keep_exports``,
so that a snapshot can be chosen afterwards on a validation suite). Only the primary process
(``jax.process_index() == 0``) logs and exports.
"""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys
import time

import jax
import numpy as np

from meta_train import checkpoint, evaluate, guard, memory, outer, stopping, timing
from meta_train import config as config_lib
from meta_train import spec as spec_lib
from meta_train import workdir as workdir_lib
from meta_train.spec import EvalSettings, RunSpec

log = logging.getLogger(__name__)


def code_version() -> str:
    """``git describe`` of the source tree, or the package version when not in a git checkout."""
    here = pathlib.Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from importlib.metadata import version

        return version("learned-opt")
    except Exception:  # noqa: BLE001
        return "unknown"


class _Logger:
    """JSON lines + TensorBoard scalars, primary process only."""

    def __init__(self, workdir: pathlib.Path, resume_step: int):
        self.primary = jax.process_index() == 0
        self.path = workdir / "metrics.jsonl"
        self.tb = None
        if not self.primary:
            return
        if self.path.exists():  # drop rows of steps that are about to be redone (and torn ones)
            rows = workdir_lib.read_jsonl(self.path)
            keep = [r for r in rows if r.get("step", 0) <= resume_step]
            self.path.write_text("".join(workdir_lib.dumps_strict(r) + "\n" for r in keep))
        try:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(str(workdir / "tb"))
        except ImportError:  # pragma: no cover - tensorboardX is a declared dependency
            log.warning("tensorboardX is not installed: no TensorBoard events")

    def write(self, step: int, metrics: dict) -> None:
        if not self.primary:
            return
        with self.path.open("a") as f:
            f.write(workdir_lib.dumps_strict({"step": step, **metrics}) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                if isinstance(v, int | float) and np.isfinite(v):
                    self.tb.add_scalar(k, v, step)

    def close(self):
        if self.tb is not None:
            self.tb.close()


def export(workdir: pathlib.Path, run: RunSpec, state, argv) -> None:
    """``learned_opt.save`` the current theta to ``workdir/export`` and, with
    ``run.export.keep_snapshots``, to ``workdir/exports/step_N`` (primary process only).

    Args:
        workdir: the run's workdir.
        run: the run's spec (its optimizer, recorded config and seed go into the metadata).
        state: the run's ``outer.MetaState``.
        argv: the command line recorded in the metadata (default ``sys.argv``).
    """
    import learned_opt

    if jax.process_index() != 0:
        return
    argv = list(argv or sys.argv)
    meta = dict(
        command=" ".join([os.path.basename(argv[0]), *argv[1:]]),
        config=run.config_dict(),
        seed=run.seed,
        outer_step=int(state.step),
        code_version=code_version(),
    )
    theta = jax.device_get(state.theta)
    learned_opt.save(workdir / "export", run.lopt, theta, metadata=meta)
    if run.export.keep_snapshots:
        snapshot = workdir / "exports" / f"step_{int(state.step)}"
        learned_opt.save(snapshot, run.lopt, theta, metadata=meta)


def heldout(settings: EvalSettings, seed: int, lopt, theta0, theta) -> dict:
    """Mean normalised held-out loss of the initial ``theta0`` and of ``theta``
    (``meta_train.evaluate``).

    Args:
        settings: the run's evaluation settings (``settings.num_tasks`` tasks of
            ``settings.suite``, ``settings.steps`` steps, ``settings.seeds`` seeds).
        seed: the run's seed.
        lopt: the learned optimizer.
        theta0: the run's initial theta.
        theta: its trained theta.

    Returns:
        ``heldout_loss_initial``, ``heldout_loss`` and the names of the tasks
        (``heldout_tasks``).
    """
    import tasks

    suite = tasks.suite(settings.suite)[: settings.num_tasks]
    kw = dict(steps=settings.steps, seeds=settings.seeds, seed=seed)
    return dict(
        heldout_loss_initial=evaluate.heldout_loss(lopt, theta0, suite, **kw),
        heldout_loss=evaluate.heldout_loss(lopt, theta, suite, **kw),
        heldout_tasks=[t.name for t in suite],
    )


def train(config, workdir, *, sigterm_grace_s: float = 20.0, **kw):
    """Meta-train per ``config`` in ``workdir``; returns the final :class:`outer.MetaState`.

    The config is validated and turned into the run's :class:`meta_train.spec.RunSpec` here,
    once; nothing below reads it. Holds the workdir's lock for the whole run
    (``meta_train.workdir``). Keywords: ``argv``, ``progress``, ``mesh``,
    ``restart_from_scratch`` (start at step 0 over an earlier run's history, moving it aside),
    ``sigterm_grace_s`` and ``init_theta`` (the run's initial theta, ``outer.initial_theta``,
    when the caller has it already).

    A single process stops on its own SIGTERM (``stopping.SigtermStop``, installed here when the
    CLI has not). In a multi-process run SIGTERM is left to jax's preemption service, which makes
    every process stop and save at the same step (orbax's ``reached_preemption``).
    """
    # refusals (a bad value, unknown zoo or architecture, a missing or foreign init_from, a
    # trained leaf theta lacks) before the workdir or its lock file is created
    run = spec_lib.from_config(config)
    zoo = config_lib.load_zoo(run.zoo)
    for _, task in outer.draw_groups(zoo, run.seed, 0, run.groups.num_groups):
        task.load_data()  # a dataset that is not prepared: DatasetNotPreparedError
    if kw.get("init_theta") is None:
        kw["init_theta"] = outer.initial_theta(run)
    config_lib.check_leaf_names(run.meta_opt.trained_leaves, kw["init_theta"])
    stop = None
    if jax.process_count() == 1:
        stop = stopping.SigtermStop(sigterm_grace_s).install()  # before any work
    try:
        with workdir_lib.locked(workdir):
            return _train(run, workdir, zoo, stop=stop, **kw)
    finally:
        if stop is not None:
            stop.uninstall()


def _preempted(mngr, step: int, stop) -> bool:
    """Whether the run stops at ``step`` to be resumed later; asked once per step, and every
    process of a run gets the same answer."""
    if stop is None:  # multi-process: the step jax's preemption service agreed on
        return mngr.reached_preemption(step)
    return stop.requested


def _train(
    run: RunSpec,
    workdir,
    zoo,
    *,
    stop,
    argv=None,
    progress: bool = True,
    mesh=None,
    restart_from_scratch: bool = False,
    compile_ahead: bool = True,
    init_theta=None,
):
    t_start = time.perf_counter()
    clock, split = timing.CompileClock.get(), timing.Split()
    c_start, bg_start = clock.thread_s(), clock.total_s() - clock.thread_s()
    workdir = pathlib.Path(workdir)
    identity, recorded = run.identity(), run.config_dict()
    mesh = outer.make_mesh() if mesh is None else mesh
    # refuses a population the mesh cannot split
    cache = outer.GroupCache(run, mesh, zoo=zoo, compile_ahead=compile_ahead)
    first_draw = outer.draw_groups(zoo, run.seed, 0, run.groups.num_groups)
    memory.check_population(run, first_draw, mesh)  # ... or one that cannot fit
    theta0 = jax.device_get(init_theta)  # kept on the host (the state's copy is donated) ...
    checkpoint.check_workdir(workdir, identity)  # ... before the workdir records the run
    meta_opt = outer.meta_optimizer(run.meta_opt)
    outer_step = outer.make_outer_step(meta_opt, mesh, run.groups.balance)
    epochs = outer.Epochs(cache, zoo, run)
    mngr = checkpoint.manager(workdir, run.checkpoint.keep, run.checkpoint.every)

    def abstract_for(step):  # a state saved at ``step`` holds the particles of step - 1's draw
        groups = epochs.groups(max(step - 1, 0))
        return outer.abstract_state(run, groups, mesh, meta_opt, theta0)

    state, step = checkpoint.restore_latest(mngr, abstract_for, identity)
    if state is None:
        mngr = checkpoint.start_fresh(
            mngr, workdir, run.checkpoint, run.outer_steps, restart_from_scratch
        )
        state = outer.init_state(run, epochs.groups(0), mesh, meta_opt, theta=theta0)
        step = 0
        log.info("starting a new run in %s", workdir)
    else:
        log.info("resumed from the checkpoint at step %d", step)
    log.info(
        "particles split over %d %s device(s)", mesh.devices.size, mesh.devices.flat[0].platform
    )
    logger = _Logger(workdir, step)
    streak = guard.NonFiniteStreak(run.max_nonfinite_steps)

    bar = None
    if progress and jax.process_index() == 0:
        from tqdm import tqdm

        bar = tqdm(total=run.outer_steps, initial=step, unit="step", dynamic_ncols=True)
    background = lambda: clock.total_s() - clock.thread_s()
    split.add(  # setup: building, restoring or initialising the state, loading data
        time.perf_counter() - t_start, clock.thread_s() - c_start, 0.0, background() - bg_start
    )
    split.steps = 0
    preempted = False
    try:
        while step < run.outer_steps and not (preempted := _preempted(mngr, step, stop)):
            t0, c0, w0, bg0 = time.perf_counter(), clock.thread_s(), cache.wait_s, background()
            state, groups = epochs.enter(step, state)  # a new draw: new groups and particles
            state, metrics = outer_step(state, groups)
            dt = time.perf_counter() - t0
            step = int(state.step)
            streak.update(step, metrics["update_skipped"])
            compile_s = clock.thread_s() - c0 + cache.wait_s - w0
            split.add(dt, compile_s, metrics["device_s"], background() - bg0)
            metrics.update(
                seconds=dt,
                inner_steps_per_s=metrics["inner_steps"] / dt,
                compile_s=compile_s,
                host_s=max(dt - compile_s - metrics["device_s"], 0.0),
                **split.totals(),
            )
            t_book = time.perf_counter()
            if step % run.log_every == 0 or step == run.outer_steps:
                logger.write(step, metrics)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    loss=f"{metrics['loss']:.4f}", steps_s=f"{metrics['inner_steps_per_s']:.0f}"
                )
            if mngr.should_save(step):  # every checkpoint_every steps (on preemption: below)
                checkpoint.save(mngr, state, recorded)
            if step % run.export.every == 0:
                export(workdir, run, state, argv)
            split.add_host(time.perf_counter() - t_book)
        t_book = time.perf_counter()
        checkpoint.save(mngr, state, recorded)
        export(workdir, run, state, argv)
        split.add_host(time.perf_counter() - t_book)
        log.info("time split: %s", split.summary())  # each metrics row has the running totals
        if not preempted and run.eval.num_tasks > 0 and jax.process_index() == 0:
            result = heldout(run.eval, run.seed, run.lopt, theta0, state.theta)
            logger.write(step, result)
            log.info(
                "held-out loss: initial theta %.4f -> trained %.4f",
                result["heldout_loss_initial"],
                result["heldout_loss"],
            )
        if preempted:
            log.warning("stopped by SIGTERM after step %d (checkpoint saved)", step)
    finally:
        cache.close()
        if bar is not None:
            bar.close()
        logger.close()
        mngr.close()
    return state
