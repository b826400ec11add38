"""Test-only: SIGKILL this process at a chosen point inside a checkpoint write.

Put this directory on ``PYTHONPATH`` and set ``LOPT_KILL_AT=PHASE:STEP`` (or several, comma
separated): ``PHASE`` is ``create`` (just after orbax made the checkpoint's temporary directory,
before any data is written) or ``commit`` (all data written, just before the rename that commits
it); ``STEP`` is the checkpoint's step. The process dies as a preempted machine would: no
handler runs, nothing is flushed.
"""

import os

_POINTS = {p for p in os.environ.get("LOPT_KILL_AT", "").split(",") if p}


def _install() -> None:
    import signal

    from orbax.checkpoint._src.path import atomicity

    cls = atomicity.AtomicRenameTemporaryPath

    def at(phase: str, self) -> None:
        if f"{phase}:{self.get_final().name}" in _POINTS:
            os.kill(os.getpid(), signal.SIGKILL)

    create, finalize = cls.create, cls.finalize

    async def killing_create(self):
        path = await create(self)
        at("create", self)
        return path

    async def killing_finalize(self):
        at("commit", self)
        return await finalize(self)

    cls.create, cls.finalize = killing_create, killing_finalize


if _POINTS:
    _install()
