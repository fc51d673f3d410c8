"""The ``dependents`` console script. Loading the libraries takes a moment, in which a stop
must not end in a traceback: until the command's own handlers are in place, Ctrl-C or
SIGTERM ends the process at once, with one line (nothing has been read or written yet)."""

from __future__ import annotations

import os
import signal


def main() -> None:
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _stopped_while_loading)
    from pipeline import stops
    from pipeline.cli import cli

    stops.whole_process()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    cli()


def _stopped_while_loading(signum, frame) -> None:
    sigint = signum == signal.SIGINT
    os.write(
        2, b"Interrupted: nothing was committed.\n" if sigint else b"Terminated: nothing was committed.\n"
    )
    os._exit(130 if sigint else 143)
