"""What one import can be told: ``dependents import``'s options, with its defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from schemas import DEFAULT_PROFILE, parse

CHUNK_SIZE = 100_000  # rows per chunk: a fixed cost per chunk against memory per row


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, rows: int) -> None: ...
    def finish(self, rows: int) -> None: ...
    def close(self) -> None: ...


@dataclass
class Options:
    """Everything ``dependents import`` can be told; defaults are the CLI's defaults."""

    profile: str = DEFAULT_PROFILE
    channel: str = "self-service"
    as_of: date | None = None
    date_order: parse.DateOrder | None = None
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    max_unpacked_size: int | None = None  # a workbook's parts, unpacked; ``None``: the default
    chunk_size: int = CHUNK_SIZE
    report_dir: Path | None = None
    dry_run: bool = False
    force: bool = False
    max_reject_rate: float = 1.0
    include_pii: bool = False
    lock_timeout: float | None = None  # seconds to wait for another import's lock; ``None``: wait
    rebuild_indexes: str = "auto"  # see ``pipeline.database.indexes``
    on_existing: str = "reject"  # a row whose dependent is stored: reject, update or skip it
    changes: Path | None = None  # ``--on-existing update``: where each changed field is listed
    mapping: Path | None = None  # a mapping file (``pipeline.rows.mapping``)
    header_row: int | None = (
        None  # the sheet row holding the header; ``None``: the first (CSV), first used (XLSX)
    )
    on_unknown_column: str = "warn"  # a column nothing accounts for: warn, or refuse the file
    progress: Progress | None = None  # told the estimated rows, each chunk's rows, then all rows
