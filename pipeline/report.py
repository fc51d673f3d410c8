"""Rejects reports: the same rejected rows written as CSV (and the summary as JSON).

Reports are built from a stream of rejected-row frames (``row``, ``codes``,
``messages``, ``notifications``, ``cells``): during an import from its spool,
and later from ``import_rejects`` by ``dependents report RUN_ID``, so both give
the same files. Files are created mode 0600; SSNs are masked unless asked for;
a cell a spreadsheet would run as a formula is written as text.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from pipeline import pii
from pipeline.ledger import Run
from pipeline.normalise import FORMULA_START

REPORT_COLUMNS = ["row", "codes", "messages"]


def open_private(path: Path, mode: str = "w", **kwargs: Any) -> IO:
    """Open for writing, readable by its owner only (0600) from the moment it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, mode, **kwargs)


def defuse(cells: pd.Series) -> pd.Series:
    """Put a ``'`` before a cell a spreadsheet would read as a formula; the importer strips it."""
    text = cells.astype("str")
    risky = text.str.startswith(FORMULA_START).fillna(False).astype(bool)
    return text.where(~risky, "'" + text)


@dataclass
class Layout:
    """Which input columns a report shows, and which of them hold an SSN."""

    headers: list[str]
    hidden: list[int] = field(default_factory=list)  # a re-imported report's own row/codes/messages
    ssn: int | None = None
    include_pii: bool = False

    @property
    def shown(self) -> list[int]:
        return [i for i in range(len(self.headers)) if i not in self.hidden]

    def table(self, rejects: pd.DataFrame) -> pd.DataFrame:
        """Rejected rows as the report shows them: row, codes, messages, then the input's cells."""
        cells = pd.DataFrame(
            [json.loads(c) for c in rejects["cells"]], columns=range(len(self.headers)), dtype="str"
        )
        if self.ssn is not None and not self.include_pii:
            cells[self.ssn] = pii.mask_ssn(cells[self.ssn])
        out = rejects[REPORT_COLUMNS].reset_index(drop=True)
        shown = cells[self.shown]
        shown.columns = [self.headers[i] for i in self.shown]
        return pd.concat([out, shown], axis=1)


class RejectsCsv:
    """``<stem>.rejects.csv``: UTF-8 with a BOM so spreadsheet programs read accents right."""

    def __init__(self, path: Path, layout: Layout):
        self.path, self.layout = path, layout
        self.fh = open_private(path, "w", newline="", encoding="utf-8-sig")
        self.writer = csv.writer(self.fh)
        self.writer.writerow(REPORT_COLUMNS + [layout.headers[i] for i in layout.shown])

    def add(self, table: pd.DataFrame) -> None:
        defused = table.copy()
        for col in defused.columns[len(REPORT_COLUMNS) :]:
            defused[col] = defuse(defused[col])
        self.writer.writerows(
            defused.astype(object).where(defused.notna(), "").itertuples(index=False, name=None)
        )

    def close(self) -> None:
        self.fh.close()


def summary(run: Run, counts: Counter, include_pii: bool, reports: dict[str, Path]) -> dict[str, Any]:
    return {
        "runId": run.id,
        "file": run.file_name,
        "sha256": run.sha256,
        "profile": run.profile,
        "channel": run.channel,
        "asOf": run.as_of.isoformat(),
        "status": run.status,
        "rowsRead": run.rows_read,
        "accepted": run.accepted,
        "rejected": run.rejected,
        "codes": dict(counts.most_common()),
        "includesPii": include_pii,
        "reports": {k: str(v) for k, v in reports.items()},
        "sourceRunId": run.source_run_id,
    }


def write(
    out_dir: Path, stem: str, run: Run, counts: Counter, layout: Layout, rejects: Iterable[pd.DataFrame]
) -> dict[str, Path]:
    """Write every report for a run into ``out_dir``; returns their paths by kind."""
    paths = {"rejects_csv": out_dir / f"{stem}.rejects.csv"}
    writers = [RejectsCsv(paths["rejects_csv"], layout)]
    try:
        for frame in rejects:
            table = layout.table(frame)
            for w in writers:
                w.add(table)
    finally:
        for w in writers:
            w.close()
    paths["summary"] = out_dir / f"{stem}.summary.json"
    with open_private(paths["summary"], "w", encoding="utf-8") as fh:
        json.dump(summary(run, counts, layout.include_pii, paths), fh, indent=2)
        fh.write("\n")
    return paths
