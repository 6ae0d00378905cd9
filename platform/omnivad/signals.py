"""The clean stop of every job: SIGTERM and SIGINT become :class:`Interrupted` in the main thread, so writers roll
back as for any error and the job exits with 128 + the signal number (used by ``omnivad.cli`` and the jobs that
re-install the handlers after Ray installed its own, e.g. ``omnivad.uvad.runner``)."""

from __future__ import annotations

from typing import Any


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT: raised in the main thread so every writer rolls back as for any error."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


def _raise_interrupted(signum: int, _frame: Any) -> None:
    import signal

    # a second signal while the rollback runs is ignored: the rollback is short and must finish
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    """SIGTERM and SIGINT become :class:`Interrupted` (main thread only; a no-op elsewhere)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupted)
        signal.signal(signal.SIGINT, _raise_interrupted)


def _interrupted_code(exc: KeyboardInterrupt) -> int:
    name = exc.signame if isinstance(exc, Interrupted) else "SIGINT"
    return 128 + (15 if name == "SIGTERM" else 2)
