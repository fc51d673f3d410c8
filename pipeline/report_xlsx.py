"""``<stem>.rejects.xlsx``: the rejects a reviewer opens, fixes in place and imports again.

Sheet ``Rejects`` (first, so a corrected workbook imports as it is): ``row``, ``codes``,
``messages``, then the input's columns; every offending cell filled and commented with
its codes. Sheet ``Summary``: the run and rejected rows per code, with a bar chart.
Written in openpyxl's streaming mode, so memory does not grow with the rejects. Every
input cell is a string cell, never a formula.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from pipeline.ledger import Run
from pipeline.pii import open_private

WARNING_FILL = PatternFill("solid", fgColor="FFC7CE")
HEADER_FONT = Font(bold=True)
MAX_COMMENTS = 5_000  # comments are drawings: beyond this the file grows heavy; fills continue
MAX_WIDTH = 60
FIRST_INPUT_COLUMN = 3  # row, codes, messages come first


class RejectsXlsx:
    def __init__(self, path: Path, layout) -> None:
        self.path, self.layout = path, layout
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet("Rejects")
        self.sheet.freeze_panes = "A2"
        self.rows = 0
        self.commented = 0
        self.columns: list[str] | None = None

    def add(self, table: pd.DataFrame, rejects: pd.DataFrame) -> None:
        if self.columns is None:
            self._start(table)
        width = len(table.columns)
        values = table.astype(object).where(table.notna(), "").to_numpy().tolist()
        for cells, notes in zip(values, rejects["notifications"], strict=True):
            self.sheet.append(self._row(cells, json.loads(notes), width))
        self.rows += len(values)

    def _start(self, table: pd.DataFrame) -> None:
        """Header and column widths, sized to the first rows' content (capped)."""
        self.columns = list(table.columns)
        for i, col in enumerate(self.columns, start=1):
            longest = max([len(str(col)), *table[col].astype("str").fillna("").str.len().head(5000).tolist()])
            self.sheet.column_dimensions[get_column_letter(i)].width = min(MAX_WIDTH, longest + 2)
        self.sheet.append([self._header(c) for c in self.columns])

    def _header(self, name: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet, value=_safe(str(name)))
        cell.font = HEADER_FONT
        cell.data_type = "s"
        return cell

    def _row(self, cells: list, notes: list[dict], width: int) -> list:
        marks: dict[int, list[str]] = {}
        for note in notes:
            pos = self.layout.report_position(note["additionalData"].get("field"))
            if pos is not None:
                marks.setdefault(FIRST_INPUT_COLUMN + pos, []).append(f"{note['code']}: {note['text']}")
        row: list = [int(cells[0]), cells[1], cells[2]]
        for i in range(FIRST_INPUT_COLUMN, width):
            value = _safe(str(cells[i]))
            if i in marks or value.startswith("="):
                cell = WriteOnlyCell(self.sheet, value=value)
                cell.data_type = "s"  # text, never a formula
                if i in marks:
                    cell.fill = WARNING_FILL
                    if self.commented < MAX_COMMENTS:
                        cell.comment = Comment("\n".join(marks[i]), "dependents", height=120, width=320)
                row.append(cell)
            else:
                row.append(value or None)  # an empty cell is left out, not written empty
        if marks and self.commented < MAX_COMMENTS:
            self.commented += 1
        return row

    def close(self, run: Run, counts: Counter, include_pii: bool) -> None:
        if self.columns is None:
            self._start(pd.DataFrame(columns=["row", "codes", "messages"]))
        last = get_column_letter(len(self.columns))
        self.sheet.auto_filter.ref = f"A1:{last}{self.rows + 1}"
        self._summary(run, counts, include_pii)
        with open_private(self.path, "wb") as fh:
            self.book.save(fh)

    def abandon(self) -> None:
        """Nothing is on disk until ``close``: the streamed sheet's temporary file goes with the book."""
        self.book = None

    def _summary(self, run: Run, counts: Counter, include_pii: bool) -> None:
        ws = self.book.create_sheet("Summary")
        ws.column_dimensions["A"].width = 30
        ws.column_dimensions["B"].width = 70
        facts = [
            ("Run", run.id),
            ("File", run.file_name),
            ("SHA-256", run.sha256),
            ("Profile", run.profile),
            ("Channel", run.channel),
            ("As of", run.as_of.isoformat()),
            ("Status", run.status),
            ("Rows read", run.rows_read),
            ("Accepted", run.accepted),
            ("Rejected", run.rejected),
            ("SSNs", "written in full (--include-pii)" if include_pii else "masked"),
            ("Cell comments", _comment_note(self.rows, self.commented)),
        ]
        for label, value in facts:
            ws.append([self._header(label), _safe(str(value)) if isinstance(value, str) else value])
        ws.append([])
        first = len(facts) + 2
        ws.append([self._header("Code"), self._header("Rejected rows")])
        for code, n in counts.most_common():
            ws.append([code, n])
        if counts:
            chart = BarChart()
            chart.type = "bar"
            chart.title = "Rejected rows per code"
            chart.legend = None
            last = first + len(counts)
            chart.add_data(Reference(ws, min_col=2, min_row=first, max_row=last), titles_from_data=True)
            chart.set_categories(Reference(ws, min_col=1, min_row=first + 1, max_row=last))
            chart.height = max(7.5, 0.6 * len(counts) + 2)
            chart.width = 18
            ws.add_chart(chart, "D2")


def _comment_note(rows: int, commented: int) -> str:
    if commented < rows and commented >= MAX_COMMENTS:
        return f"on the first {MAX_COMMENTS:,} rejected rows; every offending cell is filled"
    return "on every offending cell"


_ILLEGAL = re.compile(ILLEGAL_CHARACTERS_RE.pattern)


def _safe(text: str) -> str:
    """Control characters XML cannot hold become U+FFFD instead of failing the whole report."""
    return _ILLEGAL.sub("\ufffd", text)
