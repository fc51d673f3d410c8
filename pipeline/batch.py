"""Many files in one call: each file is its own import (its transaction, run, reports and
status), then, when asked, is moved to the archive (its run committed) or the quarantine
(refused or aborted). The batch's status is the highest of its files'."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import inbox
from pipeline import run as run_lib
from pipeline.errors import PipelineError, ReportsNotPublished
from pipeline.options import Options

# The database is unreachable, failed or held by another run: the next files would meet it too.
STOPS_THE_BATCH = (4, 5)
QUARANTINED = (2, 3)  # the file was refused, or aborted by the reject-rate guard


@dataclass(frozen=True)
class Inbox:
    """Where files go once their outcome is final (``None``: they stay), and how long a file
    in a folder must stay unchanged before it is taken."""

    archive: Path | None = None
    quarantine: Path | None = None
    settle: float = inbox.SETTLE


@dataclass
class Done:
    """One file's import: its outcome when it ran, or the error that refused or stopped it."""

    path: Path
    exit_code: int
    outcome: run_lib.Outcome | None = None
    error: PipelineError | None = None
    moved_to: Path | None = None

    @property
    def committed(self) -> bool:
        """Whether the file's rows are in the database (its reports may have failed after)."""
        if self.outcome:
            return self.outcome.run.status == "succeeded"
        return isinstance(self.error, ReportsNotPublished)


@dataclass
class Batch:
    done: list[Done] = field(default_factory=list)
    settling: list[Path] = field(default_factory=list)  # changed too recently: left for the next run
    left: list[Path] = field(default_factory=list)  # not tried: the batch stopped before them

    @property
    def exit_code(self) -> int:
        return max((d.exit_code for d in self.done), default=0)


def import_all(
    url: str,
    paths: Sequence[Path],
    options: Options,
    where: Inbox = Inbox(),
    on_done: Callable[[Done], None] = lambda done: None,
) -> Batch:
    """Import each file of ``paths`` (folders stand for the spreadsheets inside them) in turn,
    holding every folder against another batch; ``on_done`` hears of each file as it ends."""
    inbox.check_targets(paths, [where.archive, where.quarantine])
    with inbox.locked([p for p in paths if p.is_dir()]):
        found = inbox.find(paths, where.settle)
        batch = Batch(settling=found.settling)
        for n, path in enumerate(found.files):
            done = _import(url, path, options)
            done.moved_to = _file_away(done, where)
            batch.done.append(done)
            on_done(done)
            if done.exit_code in STOPS_THE_BATCH:
                batch.left = found.files[n + 1 :]
                break
    return batch


def _import(url: str, path: Path, options: Options) -> Done:
    try:
        outcome = run_lib.import_file(url, path, options)
    except PipelineError as exc:
        return Done(path, exc.exit_code, error=exc)
    return Done(path, outcome.exit_code, outcome=outcome)


def _file_away(done: Done, where: Inbox) -> Path | None:
    """Move the file once its outcome is final: committed to the archive, refused or aborted
    to the quarantine with the reason beside it; a database fault leaves it for next time."""
    if where.archive and done.committed:
        return inbox.move(done.path, where.archive)
    if where.quarantine and done.exit_code in QUARANTINED and done.path.is_file():
        if done.outcome:
            reason, run_id = done.outcome.run.message or "aborted", done.outcome.run.id
        else:
            reason, run_id = str(done.error), done.error.run_id
        return inbox.quarantine(done.path, where.quarantine, reason, run_id)
    return None
