"""The one guard around every command: the library's errors become one line on stderr and
the documented exit status.

Exit status: 0 every row accepted; 1 finished with rejected rows; 2 a usage or file error
(nothing written); 3 aborted by ``--max-reject-rate`` (nothing committed); 4 the database is
unreachable or failed; 5 finished, but the reports could not be moved into place; 130
interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click

from pipeline.errors import PipelineError, Terminated


def friendly(fn):
    """Turn the library's errors into one line on stderr and the documented exit status.

    SIGTERM (cron's timeout, ``systemctl stop``, ``kill``) unwinds like Ctrl-C: the
    transaction rolls back, the working files and unfinished reports are removed."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with _terminable():
                return fn(*args, **kwargs)
        except PipelineError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:  # `dependents runs | head`: the reader left; say nothing more
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except OSError as exc:  # a full disk, a folder that cannot be written: the machine's, not a bug
            click.echo(f"Error: {_os_error(exc)}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("Interrupted: nothing was committed.", err=True)
            sys.exit(130)
        except Terminated:
            click.echo("Terminated: nothing was committed.", err=True)
            sys.exit(143)

    return wrapper


@contextmanager
def _terminable() -> Iterator[None]:
    """While a command runs, SIGTERM raises ``Terminated`` in the main thread (once: a second
    SIGTERM during the clean-up is ignored, so the clean-up finishes)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)


def _os_error(exc: OSError) -> str:
    """``path: reason``, without the ``[Errno n]`` noise."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason
