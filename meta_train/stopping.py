"""SIGTERM: finish the current outer step, checkpoint, exit 75 -- and never take more than
``grace_s`` seconds.

Python runs a signal handler only when the main thread executes bytecode, so a handler alone
waits out a long compile or a stuck allocation. :class:`SigtermStop` also registers a wakeup
file descriptor: the interpreter's C-level handler writes to it from whatever thread receives the
signal, and a watcher thread (blocked in ``recv``, the GIL released) starts the grace timer. If
the run has not ended ``grace_s`` seconds later the process exits at once with the same code
(the previous checkpoint is then the one a restart resumes from).

This is the single-process path. In a multi-process run (``jax.distributed``) jax's preemption
service owns SIGTERM (its notifier replaces this handler when ``jax.distributed.initialize``
runs) and ``meta_train.train`` asks orbax's ``CheckpointManager.reached_preemption(step)`` at
every step instead: every process stops and saves at the same step, whichever got the signal. A
per-process flag cannot do that (each process would stop after its own step, and the next
collective would hang), and ``reached_preemption`` is always False without ``jax.distributed``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: checkpointed (or resumable), not finished; run again


def say(message: str) -> None:
    """Write ``message`` as a line of stderr, or nothing when stderr is closed or its reader is
    gone (a detached job): a message must never change the exit code."""
    with contextlib.suppress(OSError, ValueError):
        print(message, file=sys.stderr, flush=True)


class SigtermStop:
    """``requested`` turns True on SIGTERM; the process exits ``grace_s`` later at the latest."""

    def __init__(self, grace_s: float):
        self.grace_s = grace_s
        self.requested = False
        self._done = threading.Event()
        self._installed = False

    active: SigtermStop | None = None  # the installed one (install() reuses it)

    def install(self) -> SigtermStop:
        """Install the handler (main thread only; elsewhere this does nothing). If one is
        installed already (e.g. by the CLI at start-up) that one is returned."""
        if SigtermStop.active is not None:
            return SigtermStop.active
        if threading.current_thread() is not threading.main_thread():
            return self
        self._r, self._w = socket.socketpair()
        self._w.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._w.fileno(), warn_on_full_buffer=False)
        self._old = signal.signal(signal.SIGTERM, self._handler)
        threading.Thread(target=self._watch, name="sigterm-watch", daemon=True).start()
        self._installed = True
        SigtermStop.active = self
        return self

    def _handler(self, *_):
        self.requested = True

    def _watch(self):
        while True:
            try:
                data = self._r.recv(64)
            except OSError:
                return
            if not data or self._done.is_set():
                return
            if signal.SIGTERM in data:
                self.requested = True
                if not self._done.wait(self.grace_s):
                    say(
                        f"lopt-meta-train: SIGTERM: the current step did not end within "
                        f"{self.grace_s:g} s; exiting without a new checkpoint (a restart "
                        "resumes from the previous one)"
                    )
                    os._exit(EXIT_PREEMPTED)
                return

    def uninstall(self) -> None:
        """Restore the previous handler and wakeup fd; stop the grace timer."""
        self._done.set()
        if not self._installed:
            return
        SigtermStop.active = None
        signal.signal(signal.SIGTERM, self._old)
        signal.set_wakeup_fd(self._old_fd)
        with contextlib.suppress(OSError):
            self._w.send(b"\0")  # wakes the watcher, which sees _done and returns
        for s in (self._w, self._r):
            with contextlib.suppress(OSError):
                s.close()
        self._installed = False
