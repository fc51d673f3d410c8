"""The ``dependents`` console script. Loading the libraries takes a moment, in which a stop
must not end in a traceback: until the command's own handlers are in place, Ctrl-C or
SIGTERM ends the process at once, with one line (nothing has been read or written yet)."""

from __future__ import annotations

import os
import signal

from pipeline import stops  # light: the handlers' table, before the libraries load


def main() -> None:
    for s in stops.STOP_SIGNALS:
        signal.signal(s, _stopped_while_loading)
    from pipeline.cli import cli

    stops.whole_process()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    cli()


def _stopped_while_loading(signum, frame) -> None:
    said, status = stops.SAID[signum]
    os.write(2, said.encode() + b"\n")
    os._exit(status)
