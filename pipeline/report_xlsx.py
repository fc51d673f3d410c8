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
from openpyxl.chart import BarChart, Reference
from openpyxl.comments import Comment
from openpyxl.styles import Font, NamedStyle, PatternFill
from openpyxl.utils import get_column_letter

from pipeline.ledger import Run
from pipeline.pii import open_private
from schemas import parse

WARNING_FILL = PatternFill("solid", fgColor="FFC7CE")
REJECTED_STYLE = "Rejected cell"  # a named cell style: Excel lists it, and it is one lookup per cell
HEADER_FONT = Font(bold=True)
MAX_COMMENTS = 5_000  # comments are drawings: beyond this the file grows heavy; fills continue
MAX_WIDTH = 60
MAX_CELL = 32_767  # characters in one Excel cell
CUT_NOTE = " … [cut here: Excel holds 32,767 characters; the CSV report has it all]"
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
        """Append a frame of rejected rows. Cleaning runs column-wise; only the cells that need
        a style (an offending cell) or must be forced to text (``=...``) become cell objects,
        the rest go to openpyxl as plain values."""
        if self.columns is None:
            self._start(table)
        inputs = table.iloc[:, FIRST_INPUT_COLUMN:].apply(_safe_column)
        formula = inputs.apply(lambda c: c.str.startswith("=")).fillna(False).to_numpy(dtype=bool)
        plain = pd.concat([table.iloc[:, :FIRST_INPUT_COLUMN], inputs], axis=1)
        plain = plain.astype(object).where(plain.notna() & plain.ne(""), None)
        plain["row"] = plain["row"].astype("int64")
        formulas = {
            k: (FIRST_INPUT_COLUMN + formula[k].nonzero()[0]).tolist()
            for k in formula.any(axis=1).nonzero()[0]
        }
        for k, (cells, notes) in enumerate(
            zip(plain.to_numpy().tolist(), rejects["notifications"], strict=True)
        ):
            marks = self._marks(json.loads(notes))
            for i in marks.keys() | set(formulas.get(k, ())):
                cells[i] = self._text_cell(cells[i] or "", marks.get(i))
            if marks and self.commented < MAX_COMMENTS:
                self.commented += 1
            self.sheet.append(cells)
        self.rows += len(plain)

    def _start(self, table: pd.DataFrame) -> None:
        """Header and column widths, sized to the first rows' content (capped); the style
        every offending cell shares, registered once."""
        self.columns = list(table.columns)
        for i, col in enumerate(self.columns, start=1):
            longest = max([len(str(col)), *table[col].astype("str").fillna("").str.len().head(5000).tolist()])
            self.sheet.column_dimensions[get_column_letter(i)].width = min(MAX_WIDTH, longest + 2)
        self.sheet.append([self._header(c) for c in self.columns])
        self.book.add_named_style(NamedStyle(REJECTED_STYLE, fill=WARNING_FILL))

    def _header(self, name: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet, value=_safe(str(name)))
        cell.font = HEADER_FONT
        cell.data_type = "s"
        return cell

    def _marks(self, notes: list[dict]) -> dict[int, list[str]]:
        """Which columns of a row an offending value sits in (0-based), and what is wrong there."""
        marks: dict[int, list[str]] = {}
        for note in notes:
            pos = self.layout.report_position(note["additionalData"].get("field"))
            if pos is not None:
                marks.setdefault(FIRST_INPUT_COLUMN + pos, []).append(f"{note['code']}: {note['text']}")
        return marks

    def _text_cell(self, value: str, problems: list[str] | None) -> WriteOnlyCell:
        """A text cell (never a formula), filled and commented when it broke a rule."""
        cell = WriteOnlyCell(self.sheet, value=value)
        cell.data_type = "s"
        if problems:
            cell.style = REJECTED_STYLE  # one shared style: no per-cell style lookup
            if self.commented < MAX_COMMENTS:
                cell.comment = Comment("\n".join(problems), "dependents", height=120, width=320)
        return cell

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


# The characters XML cannot hold (lxml refuses them, so openpyxl would fail the whole
# workbook): the rules reject a text value holding one, and the report shows it, in any
# column, header or file name. Read by Python's re and by Arrow (whole columns).
_ILLEGAL_CLASS = parse.NOT_XML
_ILLEGAL = re.compile(_ILLEGAL_CLASS)


def _safe(text: str) -> str:
    """Control characters XML cannot hold become U+FFFD instead of failing the whole report."""
    return _ILLEGAL.sub("\ufffd", text)


def visible(cells: pd.Series) -> pd.Series:
    """``_safe`` for a whole column at once, for both rejects reports: a control character
    (what ``<FIELD>_INVALID`` rejects) becomes U+FFFD, which a reviewer can see and a
    spreadsheet program can open (a raw NUL cuts a CSV cell short in some)."""
    return cells.astype("str").str.replace(_ILLEGAL_CLASS, "\ufffd", regex=True)


def _safe_column(cells: pd.Series) -> pd.Series:
    """``visible``, and a cell longer than Excel holds is cut, with a note saying so (the CSV
    report keeps it whole): a longer one makes Excel "repair" the workbook."""
    text = visible(cells)
    long = text.str.len().gt(MAX_CELL).fillna(False).astype(bool)
    if long.any():
        text = text.where(~long, text.str.slice(0, MAX_CELL - len(CUT_NOTE)) + CUT_NOTE)
    return text
