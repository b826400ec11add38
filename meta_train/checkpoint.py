"""Checkpoints of a meta-training run (orbax ``CheckpointManager`` in ``workdir/checkpoints``).

Each checkpoint holds the whole :class:`meta_train.outer.MetaState` (theta, meta-optimizer state,
every group's particles, the run's RNG key, the step) and the config as JSON. ``workdir/run.json``
records the run's identity (the config minus the fields that may change on resume); a workdir
holding a run of another config is refused. Restoring walks back from the latest checkpoint to
the first one that reads correctly, so a corrupt (e.g. half-written) latest checkpoint falls back
to the previous one.
"""

from __future__ import annotations

import json
import logging
import pathlib

import jax
import orbax.checkpoint as ocp

from meta_train import config as config_lib

log = logging.getLogger(__name__)


class WorkdirMismatchError(ValueError):
    """The workdir holds a run of a different config."""


def check_workdir(workdir: str | pathlib.Path, config) -> None:
    """Record the run's identity in ``workdir/run.json``, or refuse a workdir of another run."""
    path = pathlib.Path(workdir) / "run.json"
    ident = config_lib.run_identity(config)
    if path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(ident)):
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
        return
    if jax.process_index() == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(ident, indent=1, sort_keys=True))
        tmp.replace(path)


def manager(workdir: str | pathlib.Path, keep: int) -> ocp.CheckpointManager:
    opts = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(
        pathlib.Path(workdir).resolve() / "checkpoints",
        options=opts,
        item_names=("state", "config"),
    )


def save(mngr: ocp.CheckpointManager, state, config) -> None:
    step = int(state.step)
    if step in mngr.all_steps():
        return
    mngr.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config.to_dict())
        ),
        force=True,
    )
    mngr.wait_until_finished()


def restore_latest(mngr: ocp.CheckpointManager, abstract_for_step):
    """Restore the newest readable checkpoint; ``abstract_for_step(step)`` gives its target.

    Returns ``(state, step)`` or ``(None, None)`` when there is none. Unreadable checkpoints
    are logged and skipped.
    """
    for step in sorted(mngr.all_steps(), reverse=True):
        try:
            target = abstract_for_step(step)
            out = mngr.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
            )
            return out.state, step
        except Exception as e:  # noqa: BLE001 - any failure to read means "corrupt"
            log.warning(
                "checkpoint at step %d is unreadable (%s: %s); trying an older one",
                step,
                type(e).__name__,
                str(e)[:300],
            )
    return None, None
