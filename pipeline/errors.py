"""The errors a user can cause or meet, each with its exit status.

The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``;
messages name the file, row or column, never a cell's value (which may be PII).
"""

from __future__ import annotations


def shown(name: str) -> str:
    """A name from the file (a header, a sheet) as a message may print it: characters that
    are not printable are escaped, so a file cannot send the terminal its own control codes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


class PipelineError(Exception):
    """Base: an import could not run; nothing was written."""

    exit_code = 2
    run_id: str | None = None  # the run that recorded the failure, when one was started


class FileError(PipelineError):
    """The input file cannot be read as a dependents sheet (exit 2)."""

    exit_code = 2


class UsageError(PipelineError):
    """An option's value cannot work: a malformed database URL, a run id too short (exit 2)."""

    exit_code = 2


class AlreadyImported(PipelineError):
    """The same file (by SHA-256) already has a succeeded run (exit 2)."""

    exit_code = 2


class DatabaseError(PipelineError):
    """The database is unreachable or failed (exit 4), or another session held a lock past
    ``--lock-timeout`` (exit 5); ``fault`` says which way, when known."""

    exit_code = 4

    def __init__(self, message: str, fault: object = None):
        super().__init__(message)
        self.fault = fault  # a ``pipeline.database.faults.Fault``, or None
        self.exit_code = getattr(fault, "exit_code", DatabaseError.exit_code)


class ReportError(PipelineError):
    """The reports cannot be written where asked (exit 2); checked before any database work."""

    exit_code = 2


class LockHeld(PipelineError):
    """Another batch is working on the same inbox (exit 5)."""

    exit_code = 5


class ReportsNotPublished(PipelineError):
    """The run settled (its data committed) but its reports could not be moved into place;
    ``dependents report RUN_ID`` writes them again. The exit status is the run's own."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(BaseException):  # like KeyboardInterrupt: a stop, not an error
    """SIGTERM arrived: raised in the main thread so the import unwinds as after Ctrl-C."""
