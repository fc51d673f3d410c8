"""The one guard around every command: the library's errors become one line on stderr and
the documented exit status.

Exit status: 0 every row accepted; 1 finished with rejected rows; 2 a usage or file error
(nothing written); 3 aborted by ``--max-reject-rate`` (nothing committed); 4 the database is
unreachable or failed; 5 another run held a lock past the wait; 70 an
internal error (a bug: nothing committed, details in a file); 130 interrupted (Ctrl-C), 143
terminated (SIGTERM).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from pipeline import stops
from pipeline.errors import PipelineError, Terminated
from pipeline.pii import open_private


def friendly(fn):
    """Turn the library's errors into one line on stderr and the documented exit status.

    SIGTERM unwinds like Ctrl-C (``stops``): the transaction rolls back, the working files and
    unfinished reports are removed. A stop that came once the import had committed is said
    after the command's own output, which tells what was committed."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with stops.stoppable(), _said_after_the_commit():
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
        except (KeyboardInterrupt, Terminated) as exc:
            stops.said()
            said, status = stops.SAID[signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM]
            click.echo(said, err=True)
            sys.exit(status)
        except Exception as exc:  # a bug: never a traceback on the terminal
            try:
                details = f"details in {_details_file(exc, kwargs.get('report_dir'))}"
            except OSError as why:  # the folder cannot be written either
                details = f"no details file ({_os_error(why)})"
            click.echo(f"internal error: {type(exc).__name__}; {details}", err=True)
            sys.exit(INTERNAL_ERROR)

    return wrapper


INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE


def _details_file(exc: BaseException, report_dir: Path | None) -> Path:
    """The traceback of an internal error, for whoever fixes it, in an owner-only file in the
    report folder (or the working folder): where each frame was and the exception types only,
    never a local value or an exception's text, which may hold a cell's value."""
    folder = report_dir if report_dir is not None and report_dir.is_dir() else Path.cwd()
    path = folder / f"dependents-internal-error-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}.txt"
    lines = [f"dependents {_version()} internal error, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n"]
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for found in reversed(chain):
        lines.append(f"\n{type(found).__module__}.{type(found).__qualname__} (message withheld)\n")
        lines += traceback.format_list(traceback.extract_tb(found.__traceback__))
    with open_private(path, "w", encoding="utf-8") as fh:
        fh.writelines(lines)
    return path


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dependents-import")
    except PackageNotFoundError:
        return "(not installed)"


@contextmanager
def _said_after_the_commit() -> Iterator[None]:
    try:
        yield
    finally:
        if stop := stops.noted():
            click.echo(f"{stop} came as the import committed: what it committed is said above.", err=True)


def _os_error(exc: OSError) -> str:
    """``path: reason``, without the ``[Errno n]`` noise."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason
