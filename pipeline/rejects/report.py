"""Rejects reports: the same rejected rows as CSV, XLSX and JSON lines, and a summary.

Reports are built from a stream of rejected-row frames (``row``, ``codes``,
``messages``, ``notifications``, ``cells``): during an import from its spool,
and later from ``import_rejects`` by ``dependents report RUN_ID``, so both give
the same files. Files are created mode 0600; SSNs are masked unless asked for;
a cell a spreadsheet would run as a formula is written as text.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import pii
from pipeline.database.db import RESULTS
from pipeline.database.ledger import Run
from pipeline.pii import open_private
from pipeline.rejects.notifications import json_strings
from pipeline.rows import cells as json_cells
from pipeline.rows.columns import REPORT_COLUMNS, origin_rows
from pipeline.rows.normalise import FORMULA_START
from schemas import parse


def defuse(cells: pd.Series) -> pd.Series:
    """Put a ``'`` before a cell a spreadsheet would read as a formula; the importer strips it."""
    text = cells.astype("str")
    risky = text.str.startswith(FORMULA_START).fillna(False).astype(bool)
    return text.where(~risky, "'" + text)


_CSV_QUOTED = '[,"\r\n]'  # what makes csv.writer (QUOTE_MINIMAL) quote a field
_TEXT = pa.large_string()
_QUOTE = pa.scalar('"', _TEXT)


def csv_rows(columns: list[pd.Series]) -> str:
    """The rows of ``columns`` (equal lengths; missing cells empty) exactly as ``csv.writer``
    writes them (QUOTE_MINIMAL, ``\r\n``), built a column at a time with Arrow's string
    kernels rather than a row at a time."""
    fields = []
    for column in columns:
        text = pc.fill_null(pa.array(column.astype("str").array).cast(_TEXT), "")
        escaped = pc.replace_substring(text, '"', '""')
        quoted = pc.binary_join_element_wise(_QUOTE, escaped, _QUOTE, pa.scalar("", _TEXT))
        fields.append(pc.if_else(pc.match_substring_regex(text, _CSV_QUOTED), quoted, text))
    if not fields or not len(fields[0]):
        return ""
    lines = pc.binary_join_element_wise(*fields, pa.scalar(",", _TEXT))
    return "\r\n".join(lines.to_pylist()) + "\r\n"


@dataclass
class Layout:
    """Which input columns a report shows, and which of them hold an SSN."""

    headers: list[str]
    hidden: list[int] = field(default_factory=list)  # a re-imported report's own row/codes/messages
    fields: dict[str, int] = field(default_factory=dict)  # API field name -> input column
    include_pii: bool = False
    origin: int | None = None  # a corrected report's column of each row's first row number

    @cached_property
    def shown(self) -> list[int]:
        return [i for i in range(len(self.headers)) if i not in self.hidden]

    @property
    def ssn(self) -> int | None:
        return self.fields.get("ssn")

    @cached_property
    def report_positions(self) -> dict[str, int]:
        """Where each field's cell is among the report's input columns (for marking it)."""
        where = {pos: i for i, pos in enumerate(self.shown)}
        return {name: where[pos] for name, pos in self.fields.items() if pos in where}

    def table(self, rejects: pd.DataFrame) -> pd.DataFrame:
        """Rejected rows as the report shows them: row, sourceRow, codes, messages, then the
        input's cells, each made ``visible`` (a control character XML cannot hold becomes U+FFFD)."""
        columns = json_cells.decode(pa.array(rejects["cells"], pa.large_string()), len(self.headers))
        cells = pd.DataFrame({i: pd.Series(c, dtype="str") for i, c in enumerate(columns)})
        if self.ssn is not None and not self.include_pii:
            cells[self.ssn] = pii.mask_ssn(cells[self.ssn])
        out = rejects[["row", "codes", "messages"]].reset_index(drop=True)
        out.insert(1, "sourceRow", self.source_rows(out["row"], cells))
        shown = cells[self.shown].apply(visible)  # once here for every report
        shown.columns = [self.headers[i] for i in self.shown]
        return pd.concat([out, shown], axis=1)

    def source_rows(self, rows: pd.Series, cells: pd.DataFrame) -> pd.Series:
        """Each row's row in the file it first came from: a corrected report's own record of
        it where that is a row number, else the row itself."""
        if self.origin is None:
            return rows.astype("int64")
        return origin_rows(cells[self.origin]).fillna(rows).astype("int64")


class RejectsCsv:
    """``<stem>.rejects.csv``: UTF-8 with a BOM so spreadsheet programs read accents right."""

    def __init__(self, path: Path, layout: Layout):
        self.path, self.layout = path, layout
        self.fh = open_private(path, "w", newline="", encoding="utf-8-sig")
        self.writer = csv.writer(self.fh)
        self.writer.writerow([*REPORT_COLUMNS, *[layout.headers[i] for i in layout.shown]])

    def add(self, table: pd.DataFrame, rejects: pd.DataFrame) -> None:
        columns = [table[c] for c in table.columns[: len(REPORT_COLUMNS)]]
        columns += [defuse(table[c]) for c in table.columns[len(REPORT_COLUMNS) :]]
        self.fh.write(csv_rows(columns))

    def close(self, run: Run, counts: Counter, include_pii: bool) -> None:
        self.fh.close()

    def abandon(self) -> None:
        self.fh.close()


class NotificationsJsonl:
    """``<stem>.notifications.jsonl``: one ApiResponse envelope per rejected row, for machines."""

    MESSAGE = "The dependent was not added."

    def __init__(self, path: Path, layout: Layout):
        self.fh = open_private(path, "w", encoding="utf-8")
        where = layout.report_positions.get("customerId")
        self.customer = None if where is None else len(REPORT_COLUMNS) + where

    def add(self, table: pd.DataFrame, rejects: pd.DataFrame) -> None:
        rows = rejects["row"].astype("int64").astype("str")
        lines = (
            '{"row": '
            + rows
            + ', "customerId": '
            + self._customers(table, rejects.index)
            + ', "message": "'
            + self.MESSAGE
            + '", "notifications": '
            + rejects["notifications"]
            + "}\n"
        )
        self.fh.write("".join(lines))

    def _customers(self, table: pd.DataFrame, index: pd.Index) -> pd.Series:
        """Each row's customerId cell as JSON; an empty cell is ``null``."""
        if self.customer is None:
            return pd.Series("null", index=index)
        cells = table.iloc[:, self.customer].reset_index(drop=True).replace("", None)
        return json_strings(cells).fillna("null").set_axis(index)

    def close(self, run: Run, counts: Counter, include_pii: bool) -> None:
        self.fh.close()

    def abandon(self) -> None:
        self.fh.close()


def visible(cells: pd.Series) -> pd.Series:
    """A whole column made fit for both rejects reports: a control character XML cannot hold
    (what ``<FIELD>_INVALID`` rejects) becomes U+FFFD, which a reviewer can see and a
    spreadsheet program can open (a raw NUL cuts a CSV cell short in some). Such characters
    are rare, so a column whose bytes hold none that could start one is left as it is (the
    rules' own scan, ``parse.free_of_control``'s)."""
    text = cells.astype("str")
    if not parse.suspect_bytes(text):
        return text
    return text.str.replace(parse.NOT_XML, "\ufffd", regex=True)


def rejects_xlsx(path: Path, layout: Layout):
    """The workbook's writer, imported when the first workbook is opened: otherwise every
    import would pay for openpyxl's import before its first row is read."""
    from pipeline.rejects.report_xlsx import RejectsXlsx

    return RejectsXlsx(path, layout)


WRITERS = {
    "rejects_csv": (".rejects.csv", RejectsCsv),
    "rejects_xlsx": (".rejects.xlsx", rejects_xlsx),
    "notifications": (".notifications.jsonl", NotificationsJsonl),
}


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
        **{name: getattr(run, name) for name in RESULTS},
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
    paths = write_rejects(out_dir, stem, run, counts, layout, rejects)
    paths["summary"] = write_summary(summary_path(out_dir, stem), run, counts, layout.include_pii, paths)
    return paths


def write_rejects(
    out_dir: Path, stem: str, run: Run, counts: Counter, layout: Layout, rejects: Iterable[pd.DataFrame]
) -> dict[str, Path]:
    """The rejected rows as CSV, XLSX (with the run's summary sheet) and JSON lines."""
    writers = RejectsWriters(out_dir, stem, layout)
    try:
        for frame in rejects:
            writers.add(frame)
    except BaseException:
        writers.abandon()
        raise
    return writers.close(run, counts)


class RejectsWriters:
    """The three rejects reports, open: rows go in a frame at a time, and the run and its
    counts (the XLSX's Summary sheet) are needed only to close them. So an import can write
    the rows while the database is still deciding, and close the reports once it has."""

    def __init__(self, out_dir: Path, stem: str, layout: Layout):
        self.layout = layout
        self.paths = {kind: out_dir / f"{stem}{suffix}" for kind, (suffix, _) in WRITERS.items()}
        self.writers: list = []
        try:
            for kind, (_, cls) in WRITERS.items():
                self.writers.append(cls(self.paths[kind], layout))
        except BaseException:
            self.abandon()
            raise

    def add(self, frame: pd.DataFrame) -> None:
        table = self.layout.table(frame)
        for w in self.writers:
            w.add(table, frame)

    def close(self, run: Run, counts: Counter) -> dict[str, Path]:
        writers, self.writers = self.writers, []  # once closed, ``abandon`` has nothing to do
        for w in writers:
            w.close(run, counts, self.layout.include_pii)
        return self.paths

    def abandon(self) -> None:
        """Close without finishing; the files left are the caller's to remove."""
        writers, self.writers = self.writers, []
        for w in writers:
            w.abandon()


def summary_path(out_dir: Path, stem: str) -> Path:
    return out_dir / f"{stem}.summary.json"


def write_summary(path: Path, run: Run, counts: Counter, include_pii: bool, reports: dict[str, Path]) -> Path:
    with open_private(path, "w", encoding="utf-8") as fh:
        json.dump(summary(run, counts, include_pii, reports), fh, indent=2)
        fh.write("\n")
    return path


def stem_of(path: Path) -> str:
    """``in.csv`` -> ``in``; a corrected ``in.rejects.xlsx`` -> ``in`` too, not ``in.rejects.rejects``."""
    return path.stem.removesuffix(".rejects")
