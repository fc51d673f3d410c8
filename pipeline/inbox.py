"""An inbox of arriving files: which are ready to import, one batch at a time over it, and
where each file goes once its import's outcome is final (the archive or the quarantine).

Every move is one ``rename`` within a filesystem, so a crash at any instant leaves a file
either where it was or where it went, never lost and never in both.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import LockHeld, UsageError
from pipeline.pii import open_private
from pipeline.rows.read import SPREADSHEET_SUFFIXES

SETTLE = 60.0  # seconds a file in a folder must stay unchanged before it is taken


@dataclass
class Found:
    """The files to import, in order, and those in a folder still changing (left for later)."""

    files: list[Path] = field(default_factory=list)
    settling: list[Path] = field(default_factory=list)


def find(paths: Sequence[Path], settle: float = SETTLE, now: float | None = None) -> Found:
    """Files named are taken as they are; a folder stands for the spreadsheets directly inside
    it, oldest modification first, then by name, except those changed under ``settle`` s ago."""
    now = time.time() if now is None else now
    found = Found()
    for path in paths:
        if not path.is_dir():
            found.files.append(path)
            continue
        for changed, _, file in sorted((f.stat().st_mtime, f.name, f) for f in _spreadsheets(path)):
            (found.settling if now - changed < settle else found.files).append(file)
    return found


def _spreadsheets(folder: Path) -> Iterator[Path]:
    for entry in folder.iterdir():
        if (
            not entry.name.startswith(".")
            and entry.suffix.lower() in SPREADSHEET_SUFFIXES
            and entry.is_file()
        ):
            yield entry


@contextmanager
def locked(folders: Sequence[Path]) -> Iterator[None]:
    """Hold each inbox folder for this batch alone (an advisory lock on the folder itself,
    freed by the system if the process dies); another batch is refused (exit 5)."""
    with ExitStack() as held:
        for folder in folders:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            held.callback(os.close, fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockHeld(f"{folder}: another batch is importing from this folder") from None
        yield


def check_targets(sources: Sequence[Path], targets: Sequence[Path | None]) -> None:
    """Make the archive and quarantine folders, and refuse one on another filesystem than a
    file it would receive (a move there would be a copy, which a crash can leave in both)."""
    for target in targets:
        if target is None:
            continue
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{target}: cannot make the folder ({exc.strerror or exc})") from None
        device = target.stat().st_dev
        for source in sources:
            folder = source if source.is_dir() else source.parent
            if folder.exists() and folder.stat().st_dev != device:
                raise UsageError(
                    f"{target}: not on the same filesystem as {folder}; files are moved, not copied"
                )


def move(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` under a name not yet taken there (``name-1.csv``, ...)."""
    target = folder / path.name
    n = 0
    while target.exists():
        n += 1
        target = folder / f"{path.stem}-{n}{path.suffix}"
    path.rename(target)
    return target


def quarantine(path: Path, folder: Path, reason: str, run_id: str | None) -> Path:
    """Move a refused or aborted file into ``folder``, with ``<name>.why.txt`` beside it."""
    moved = move(path, folder)
    with open_private(moved.with_name(moved.name + ".why.txt"), encoding="utf-8") as fh:
        fh.write(reason + "\n" + (f"run {run_id}\n" if run_id else ""))
    return moved
