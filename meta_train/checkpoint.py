"""Checkpoints of a meta-training run (orbax ``CheckpointManager`` in ``workdir/checkpoints``).

Each checkpoint holds the whole :class:`meta_train.outer.MetaState` (theta, meta-optimizer state,
every group's particles, the run's RNG key, the step), the run's recorded config as JSON
(``spec.RunSpec.recorded``) and the sha256 of each part of the state (``checksum``; particles only
where one process holds them all). ``workdir/run.json`` records the run's identity (the config
minus the fields that may change on resume, ``RunSpec.identity``), and so does the config inside
every checkpoint: a workdir holding a run of another
config is refused, even when ``run.json`` is gone. Restoring walks back from the latest
checkpoint to the first one that reads correctly and matches its checksums, so a corrupt (e.g.
half-written or bit-flipped) latest checkpoint falls back to the previous one; the unreadable
ones are moved to ``workdir/checkpoints_unreadable/`` (kept, never deleted, and out of the way of
the steps that are about to be saved again).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import pathlib
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp

from meta_train import config as config_lib
from meta_train.spec import CheckpointSettings

log = logging.getLogger(__name__)


class WorkdirMismatchError(ValueError):
    """The workdir holds a run of a different config."""


def check_workdir(workdir: str | pathlib.Path, identity: dict) -> None:
    """Record the run's identity in ``workdir/run.json``, or refuse a workdir of another run.

    A ``run.json`` written before some fields existed is migrated (``config.migrate``: those
    fields get the values its run used) and, when it matches, rewritten with them.

    Args:
        workdir: the run's workdir.
        identity: the run's identity (``RunSpec.identity()``, ``config.run_identity``).
    """
    path = pathlib.Path(workdir) / "run.json"
    ident = json.loads(json.dumps(identity))
    if path.exists():
        recorded = _read_run_json(path)
        old = config_lib.run_identity(recorded)
        if old != ident:
            diff = sorted(
                k
                for k in set(old) | set(ident)
                if json.dumps(old.get(k), sort_keys=True)
                != json.dumps(ident.get(k), sort_keys=True)
            )
            raise WorkdirMismatchError(
                f"workdir {str(workdir)!r} holds a run of another config (fields differing: "
                f"{', '.join(diff)}); use a new --workdir or the same config"
            )
        if recorded == ident:
            return
        log.info("migrating %s: adding %s", path, ", ".join(sorted(set(ident) - set(recorded))))
    if jax.process_index() == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(ident, indent=1, sort_keys=True))
        tmp.replace(path)


def _read_run_json(path: pathlib.Path) -> dict:
    """The run identity recorded in ``path``; ``WorkdirMismatchError`` naming the file when it
    cannot be read as a JSON object."""
    try:
        recorded = json.loads(path.read_bytes().decode("utf-8"))
        why = "" if isinstance(recorded, dict) else "not a JSON object"
    except OSError as e:
        why = e.strerror or str(e)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        why = f"{type(e).__name__}: {e}"
    if why:
        raise WorkdirMismatchError(
            f"{str(path)!r} cannot be read ({why}); it records which config the workdir's run "
            "used (its checkpoints record it too): remove it to resume from the checkpoints, "
            "or use another --workdir"
        )
    return recorded


def manager(workdir: str | pathlib.Path, keep: int, every: int) -> ocp.CheckpointManager:
    """The run's checkpoint manager: keeps ``keep`` checkpoints; its ``should_save(step)`` is
    True every ``every`` steps (a preemption's checkpoint is the caller's forced :func:`save`:
    ``meta_train.train`` asks ``reached_preemption`` once per step itself)."""
    policy = ocp.checkpoint_managers.FixedIntervalPolicy(every)
    opts = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=True,
        enable_async_checkpointing=False,
        save_interval_steps=every,
        save_decision_policy=policy,
    )
    return ocp.CheckpointManager(
        pathlib.Path(workdir).resolve() / "checkpoints",
        options=opts,
        item_names=("state", "config", "checksum"),
    )


def check_free_space(directory, state) -> None:
    """Raise ``OSError(ENOSPC)`` when ``directory``'s filesystem cannot hold another checkpoint
    of ``state`` (twice its size plus 1 MiB): refusing before orbax writes gives one clear
    error instead of its writer threads' tracebacks."""
    need = 2 * sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state)) + (1 << 20)
    free = shutil.disk_usage(str(directory)).free
    if free < need:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device: a checkpoint needs about {need / 2**20:.1f} MiB, "
            f"{free / 2**20:.1f} MiB are free in {directory}",
        )


def save(mngr: ocp.CheckpointManager, state, recorded: dict) -> None:
    """Save ``state`` at its step (unless saved already) with ``recorded`` (the run's config,
    ``RunSpec.config_dict()``) and the state's checksums; ``OSError(ENOSPC)`` when the disk
    cannot hold it."""
    step = int(state.step)
    if step in mngr.all_steps():
        return
    check_free_space(mngr.directory, state)
    mngr.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            config=ocp.args.JsonSave(recorded),
            checksum=ocp.args.JsonSave(checksums(state)),
        ),
        force=True,
    )
    mngr.wait_until_finished()


def _digest(tree) -> str | None:
    """sha256 of the leaves of ``tree`` (paths, dtypes, shapes, bytes); ``None`` when this
    process does not hold every leaf whole (particles spread over several processes)."""
    h = hashlib.sha256()
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            if not x.sharding.is_fully_replicated:
                return None
            x = x.addressable_data(0)
        a = np.ascontiguousarray(np.asarray(x))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def checksums(state) -> dict:
    """``{part: sha256}`` for each part of a ``MetaState`` this process can digest."""
    out = {name: _digest(getattr(state, name)) for name in state._fields}
    return {k: v for k, v in out.items() if v is not None}


class ChecksumError(ValueError):
    """A restored checkpoint does not match the checksums saved with it."""


def verify(state, saved: dict) -> None:
    """Raise :class:`ChecksumError` naming the parts of ``state`` that differ from ``saved``."""
    now = checksums(state)
    bad = sorted(k for k, v in saved.items() if k in now and now[k] != v)
    if bad:
        raise ChecksumError(f"checksum mismatch in {', '.join(bad)} (corrupt data files)")


def _check_identity(mngr, step: int, identity: dict) -> None:
    """Refuse (``WorkdirMismatchError``) a checkpoint written by a run whose identity is not
    ``identity``."""
    try:
        stored = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore())).config
    except Exception:  # noqa: BLE001 - no readable config: the state restore decides
        return
    if not isinstance(stored, dict):
        return
    old = json.loads(json.dumps(config_lib.run_identity(stored), sort_keys=True))
    new = json.loads(json.dumps(identity, sort_keys=True))
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise WorkdirMismatchError(
            f"the checkpoint at step {step} in {mngr.directory} was written by a run of another "
            f"config (fields differing: {', '.join(diff)}); use a new --workdir or the same config"
        )


def read_back(item_dir: pathlib.Path) -> None:
    """Read every array of one checkpoint item (an OCDBT store of zarr arrays) one at a time,
    waiting for each read; raise the first read's error.

    Orbax restores all arrays at once (one ``asyncio.gather`` in an event loop it closes on
    return): when one read fails, the gather raises and the loop is closed while the other
    TensorStore reads are still in flight, and each of them, when it ends, prints an "Event loop
    is closed" traceback from TensorStore's thread. Reading a damaged checkpoint here first,
    with no event loop and no read left in flight, finds the damage before orbax starts.
    """
    import tensorstore as ts

    if not (item_dir / "manifest.ocdbt").exists():
        return  # not an OCDBT item: orbax's own restore decides
    base = {"driver": "ocdbt", "base": f"file://{item_dir.resolve()}/"}
    keys = ts.KvStore.open(base).result().list().result()
    for name in sorted({k.decode().rsplit("/", 1)[0] for k in keys if k.endswith(b"/.zarray")}):
        spec = {"driver": "zarr", "kvstore": {**base, "path": f"{name}/"}}
        ts.open(spec).result().read().result()


def _restore_verified(mngr, step: int, target):
    read_back(pathlib.Path(str(mngr.directory)) / str(step) / "state")
    try:
        saved = mngr.restore(
            step, args=ocp.args.Composite(checksum=ocp.args.JsonRestore())
        ).checksum
    except Exception:  # noqa: BLE001 - a checkpoint written before checksums existed
        saved = None
    out = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
    if saved is None:
        log.warning("checkpoint at step %d has no checksum (older format): not verified", step)
    else:
        verify(out.state, saved)
    return out.state


def _set_aside(mngr, steps: list[int]) -> None:
    """Move unreadable checkpoints to ``checkpoints_unreadable/`` (process 0) and reload.

    A directory that cannot be moved to another parent (no write permission on it, e.g.
    ``chmod 000``) is renamed in place to ``checkpoints/unreadable-STEP-PID``, out of orbax's
    steps; ``workdir.WorkdirError`` when even that fails."""
    root = pathlib.Path(str(mngr.directory))
    if jax.process_index() == 0:
        dest = root.parent / "checkpoints_unreadable"
        for step in steps:
            src = root / str(step)
            if src.exists():
                _move_aside(src, dest / f"{step}-{os.getpid()}", root)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("checkpoints set aside")
    mngr.reload()


def _move_aside(src: pathlib.Path, dest: pathlib.Path, root: pathlib.Path) -> None:
    from meta_train import workdir as workdir_lib

    try:
        dest.parent.mkdir(exist_ok=True)
        os.replace(src, dest)
        return
    except OSError as e:
        in_place = root / f"{workdir_lib.UNREADABLE_PREFIX}{dest.name}"
        try:
            os.replace(src, in_place)  # same parent: needs no write permission on src itself
        except OSError as e2:
            raise workdir_lib.WorkdirError(
                f"the unreadable checkpoint {src} cannot be set aside ({e2.strerror or e2}); "
                "fix its permissions or move it out of the workdir, then run the same command "
                "again"
            ) from None
        log.warning(
            "could not move %s to %s (%s): renamed it to %s", src, dest, e.strerror, in_place
        )


def restore_latest(mngr: ocp.CheckpointManager, abstract_for_step, identity: dict | None = None):
    """Restore the newest readable, verified checkpoint; ``abstract_for_step(step)`` gives its
    target.

    Returns ``(state, step)`` or ``(None, None)`` when there is none. Unreadable checkpoints
    (and those failing their checksums) are logged, skipped and moved aside. With ``identity``
    (``RunSpec.identity()``), a checkpoint of a run of another identity raises
    :class:`WorkdirMismatchError`.
    """
    bad = []
    try:
        for step in sorted(mngr.all_steps(), reverse=True):
            if identity is not None:
                _check_identity(mngr, step, identity)
            try:
                return _restore_verified(mngr, step, abstract_for_step(step)), step
            except Exception as e:  # noqa: BLE001 - any failure to read means "corrupt"
                bad.append(step)
                log.warning(
                    "checkpoint at step %d is unreadable (%s: %s); trying an older one",
                    step,
                    type(e).__name__,
                    str(e)[:300],
                )
        return None, None
    finally:
        if bad:
            _set_aside(mngr, bad)


def start_fresh(
    mngr, workdir, settings: CheckpointSettings, outer_steps: int, restart_from_scratch: bool
):
    """Before starting at step 0: refuse a workdir with an earlier run's history
    (``workdir.WorkdirError``) unless ``restart_from_scratch``, which moves it aside.

    Args:
        mngr: the run's checkpoint manager (:func:`manager`).
        workdir: the run's workdir.
        settings: the run's checkpoint settings.
        outer_steps: the run's outer steps.
        restart_from_scratch: move an earlier run's history aside instead of refusing.

    Returns:
        The checkpoint manager to use.
    """
    from meta_train import workdir as workdir_lib

    path = pathlib.Path(workdir)
    first = min(settings.every, outer_steps)  # the step of a run's first save
    if not workdir_lib.history(path, first):
        return mngr
    mngr.close()  # (before raising: a manager left open prints noise at exit)
    if not restart_from_scratch:
        workdir_lib.discard_history(path, False, first)  # raises, naming what is there
    if jax.process_index() == 0:
        workdir_lib.discard_history(path, True, first)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("history discarded")
    return manager(workdir, settings.keep, settings.every)
