"""Ctrl-C and SIGTERM. While a command runs they stop it: SIGINT raises KeyboardInterrupt,
SIGTERM (cron's timeout, ``systemctl stop``, ``kill``) raises ``Terminated``, and the import
unwinds, rolling back. From the moment an import commits they are only noted (``hold``): a
stop can no longer undo anything, so the command finishes and says what it did, never
"nothing was committed" for a run that committed."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.errors import Terminated

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
# What a stop before the commit says, and the exit status it ends with (128 + the signal).
SAID = {
    signal.SIGINT: ("Interrupted: nothing was committed.", 130),
    signal.SIGTERM: ("Terminated: nothing was committed.", 143),
}
_noted: list[int] = []  # the stops that came while held, in order
_process: list[bool] = []  # set by the console script: the process ends with the command


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # handlers live there only


def _terminate(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM lets the clean-up finish
    _raised.append(signum)
    raise Terminated()


def _interrupt(signum, frame) -> None:
    _raised.append(signum)
    raise KeyboardInterrupt


_raised: list[int] = []  # every stop raised, in order: a redelivery is owed only to the last


def _note(signum, frame) -> None:
    _noted.append(signum)


def _redeliver(default_hook):
    """A stop raised inside a finaliser or weakref callback cannot leave it: Python prints
    "Exception ignored" and goes on. Send the signal again a moment later, from another
    thread, so that it is raised once the callback (and this hook) have returned."""

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, Terminated):
            if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:  # ``_terminate`` ignored the rest
                signal.signal(signal.SIGTERM, _terminate)
            _send_later(signal.SIGTERM)
        elif isinstance(unraisable.exc_value, KeyboardInterrupt):
            _send_later(signal.SIGINT)
        else:
            default_hook(unraisable)

    return hook


def _send_later(signum: int) -> None:
    """Send ``signum`` again unless a stop has been raised meanwhile (it is being handled)."""
    owed = len(_raised)

    def send() -> None:
        time.sleep(REDELIVERY_PAUSE)
        if len(_raised) == owed:
            os.kill(os.getpid(), signum)

    threading.Thread(target=send, name="redeliver-stop", daemon=True).start()


REDELIVERY_PAUSE = 0.01  # seconds: long enough for a callback to return


@contextmanager
def stoppable() -> Iterator[None]:
    """While a command runs, Ctrl-C and SIGTERM stop it; afterwards, the handlers as before."""
    if not _main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    hook_before = sys.unraisablehook
    sys.unraisablehook = _redeliver(hook_before)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _terminate)
    _noted.clear()
    try:
        yield
    finally:
        sys.unraisablehook = hook_before
        if _process:  # the command has said what it did: a stop now would only change the status
            for s in STOP_SIGNALS:
                signal.signal(s, signal.SIG_IGN)  # ignored, not handled: finalising Python resets handlers
        else:
            for s, handler in before.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)


def said() -> None:
    """A stop is being said and the command ends with its status: a further stop is ignored,
    so it cannot cut that short (a second Ctrl-C, or one sent again)."""
    if _main_thread():
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)


def whole_process() -> None:
    """The command is the whole process (the console script): once it has run, stops are
    ignored until the process exits, so its exit status stays the command's."""
    _process.append(True)


def hold() -> None:
    """From now to the command's end, note a stop instead of raising it (the import is about
    to commit: from the commit on, nothing can be undone)."""
    if _main_thread():
        for s in STOP_SIGNALS:
            signal.signal(s, _note)


def noted() -> str | None:
    """The first stop that came while held ("Ctrl-C", "SIGTERM"), if any."""
    return NAMES.get(_noted[0]) if _noted else None
