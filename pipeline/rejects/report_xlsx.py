"""``<stem>.rejects.xlsx``: the rejects a reviewer opens, fixes in place and imports again.

Sheet ``Rejects`` (first, so a corrected workbook imports as it is): ``row``, ``sourceRow``, ``codes``,
``messages``, then the input's columns; every offending cell filled and commented with
its codes. Sheet ``Summary``: the run and rejected rows per code, with a bar chart.

openpyxl makes the workbook: its package, styles, summary and chart. The Rejects sheet's
rows and comments are the exception: openpyxl's cost per cell written adds up over tens of
thousands of rejected rows, so they are built a column at a time
(``pipeline.rejects.sheet_xml``), ``BATCH`` rows at a time: memory does not grow with the rejects.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zipfile import ZIP_DEFLATED, ZipFile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.chart import BarChart, Reference
from openpyxl.comments.comment_sheet import CommentSheet
from openpyxl.packaging.relationship import Relationship
from openpyxl.styles import Font, NamedStyle, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

from pipeline.database.db import RESULTS
from pipeline.database.ledger import Run
from pipeline.pii import open_private
from pipeline.rejects import sheet_xml
from pipeline.rows.columns import REPORT_COLUMNS
from schemas import parse

WARNING_FILL = PatternFill("solid", fgColor="FFC7CE")
REJECTED_STYLE = "Rejected cell"  # a named cell style: Excel lists it
HEADER_FONT = Font(bold=True)
MAX_COMMENTS = 5_000  # comments are drawings: beyond this the file grows heavy; fills continue
MAX_WIDTH = 60
MAX_CELL = 32_767  # characters in one Excel cell
CUT_NOTE = " … [cut here: Excel holds 32,767 characters; the CSV report has it all]"
FIRST_INPUT_COLUMN = 4  # row, sourceRow, codes, messages come first
BATCH = 5_000  # rejected rows turned into XML at a time


class RejectsXlsx:
    def __init__(self, path: Path, layout) -> None:
        self.path, self.layout = path, layout
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet("Rejects")
        self.sheet.freeze_panes = "A2"
        self.rows = 0
        self.commented = 0
        # What ``CommentRecord.from_cell`` makes of a cell's ``Comment``, without the objects.
        self.comments = sheet_xml.Comments("dependents", width=320, height=120)
        self.columns: list[str] | None = None
        self._sheet_data = None
        self._rejected = ""  # the offending cells' style attribute, once registered

    def add(self, table: pd.DataFrame, rejects: pd.DataFrame) -> None:
        """Append a frame of rejected rows, ``BATCH`` rows at a time (each column's XML is
        built whole, so this bounds the memory it takes)."""
        if self.columns is None:
            self._start(table)
        for start in range(0, len(table), BATCH):
            self._add(table.iloc[start : start + BATCH], rejects.iloc[start : start + BATCH])

    def _add(self, table: pd.DataFrame, rejects: pd.DataFrame) -> None:
        """Rejected rows cleaned, marked and turned into XML column-wise."""
        inputs = table.iloc[:, FIRST_INPUT_COLUMN:].apply(_safe_column)
        marks = _marks(rejects["notifications"], self.layout.report_positions)
        offending = np.zeros(inputs.shape, dtype=bool)
        offending[marks["row"].to_numpy(), marks["column"].to_numpy()] = True
        rows = np.arange(self.rows + 2, self.rows + 2 + len(table))  # the header is row 1
        self._comment(marks, rows)
        refs = sheet_xml.refs(rows)
        cells = [
            sheet_xml.number_cells("A", refs, table["row"]),
            sheet_xml.number_cells("B", refs, table["sourceRow"]),
            sheet_xml.text_cells("C", refs, sheet_xml.text(table["codes"])),
            sheet_xml.text_cells("D", refs, sheet_xml.text(table["messages"])),
        ]
        rejected, plain = sheet_xml.text(self._rejected), sheet_xml.text("")
        for j, name in enumerate(inputs.columns):
            style = pc.if_else(pa.array(offending[:, j]), rejected, plain)
            column = sheet_xml.letter(FIRST_INPUT_COLUMN + j)
            cells.append(sheet_xml.text_cells(column, refs, sheet_xml.text(inputs[name]), style))
        self._sheet_data.send(sheet_xml.rows_xml(refs, cells))
        self.rows += len(table)

    def _start(self, table: pd.DataFrame) -> None:
        """Column widths, sized to the first rows' content (capped), the two cell styles,
        then the header row. Widths and the frozen pane must be set before the first row."""
        self.columns = list(table.columns)
        for i, col in enumerate(self.columns, start=1):
            longest = max([len(str(col)), *table[col].astype("str").fillna("").str.len().head(5000).tolist()])
            self.sheet.column_dimensions[get_column_letter(i)].width = min(MAX_WIDTH, longest + 2)
        self.book.add_named_style(NamedStyle(REJECTED_STYLE, fill=WARNING_FILL))
        self._rejected = f' s="{self._style_id(style=REJECTED_STYLE)}"'
        bold = f' s="{self._style_id(font=HEADER_FONT)}"'
        self._sheet_data = sheet_xml.stream(self.sheet, self.path.with_name(f".{self.path.name}.sheet.xml"))
        self.sheet._comments = self.comments  # where openpyxl's writers look (its writer reset it)
        refs = sheet_xml.refs(np.array([1]))
        header = [
            sheet_xml.text_cells(sheet_xml.letter(i), refs, sheet_xml.text(_safe(str(c))), bold)
            for i, c in enumerate(self.columns)
        ]
        self._sheet_data.send(sheet_xml.rows_xml(refs, header))

    def _style_id(self, **style) -> int:
        """The workbook's index of a cell style (registering it), as openpyxl would write it."""
        cell = WriteOnlyCell(self.sheet)
        for name, value in style.items():
            setattr(cell, name, value)
        return cell.style_id

    def _comment(self, marks: pd.DataFrame, rows: np.ndarray) -> None:
        """A comment on every offending cell of the first ``MAX_COMMENTS`` rows that have one,
        its notes one per line (the cap bounds the comments, a drawing each, not the work)."""
        marked = marks["row"].unique()
        take = marked[: max(0, MAX_COMMENTS - self.commented)]
        self.commented += len(take)
        chosen = marks[marks["row"].isin(take)]
        if chosen.empty:
            return
        # Grouped by cell in sheet order (a stable sort keeps each cell's notes in order).
        order = np.lexsort((chosen["column"].to_numpy(), chosen["row"].to_numpy()))
        row, column = chosen["row"].to_numpy()[order], chosen["column"].to_numpy()[order]
        starts = np.flatnonzero(np.r_[True, (row[1:] != row[:-1]) | (column[1:] != column[:-1])])
        notes = pa.array(chosen["note"].to_numpy(dtype=object)[order], pa.large_string())
        offsets = pa.array(np.r_[starts, len(row)], pa.int64())
        texts = pc.binary_join(pa.LargeListArray.from_arrays(offsets, notes), sheet_xml.text("\n"))
        self.comments.add(rows[row[starts]], FIRST_INPUT_COLUMN + column[starts], texts)

    def close(self, run: Run, counts: Counter, include_pii: bool) -> None:
        try:
            if self.columns is None:
                self._start(pd.DataFrame(columns=list(REPORT_COLUMNS)))
            last = get_column_letter(len(self.columns))
            self.sheet.auto_filter.ref = f"A1:{last}{self.rows + 1}"
            self._summary(run, counts, include_pii)
            with open_private(self.path, "wb") as fh:
                _save(self.book, fh)
        except BaseException:
            self.abandon()  # nothing left half-open for the garbage collector
            raise

    def abandon(self) -> None:
        """The rows streamed so far (in a 0600 file beside the workbook) go; no workbook is
        written. Every sheet's writer is closed here, so none is left to the garbage collector."""
        if self._sheet_data is not None:
            self._sheet_data.close()
        for ws in self.book.worksheets if self.book is not None else ():
            for stream in (getattr(ws, "_rows", None), getattr(ws, "_writer", None)):
                if stream is not None:
                    with contextlib.suppress(Exception):  # stopped halfway, it may refuse to close
                        stream.close()
            with contextlib.suppress(AttributeError, OSError, ValueError):  # its file may be gone already
                ws._writer.cleanup()
        self.book = None

    def _header(self, name: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet, value=_safe(str(name)))
        cell.font = HEADER_FONT
        cell.data_type = "s"
        return cell

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
            *((name.capitalize(), getattr(run, name)) for name in RESULTS if _matched(run)),
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


def _save(book: Workbook, fh) -> None:
    """openpyxl's ``save_workbook``, deflating at level 1 instead of 6: a third of the time
    for a slightly larger file."""
    book.properties.modified = datetime.now(UTC).replace(tzinfo=None)
    # Closed however the writing ends, before ``fh`` is: a zip left to the garbage collector
    # would try to finish itself on a closed file ("Exception ignored" on a stop).
    with ZipFile(fh, "w", ZIP_DEFLATED, allowZip64=True, compresslevel=1) as archive:
        _Writer(book, archive).write_data()


class _Writer(ExcelWriter):
    """openpyxl's writer, but a sheet's ``sheet_xml.Comments`` are written as the XML they
    build: the same two parts, relationship and content type as ``_write_comment`` writes."""

    def _write_comment(self, ws) -> None:
        comments = ws._comments
        if not isinstance(comments, sheet_xml.Comments):
            super()._write_comment(ws)
            return
        part = _CommentsPart(len(self._comments) + 1)
        self._comments.append(part)
        self._archive.writestr(part.path[1:], comments.comments_xml())
        self.manifest.append(part)
        ws.legacy_drawing = f"xl/drawings/commentsDrawing{part.id}.vml"
        self._archive.writestr(ws.legacy_drawing, comments.vml())
        self.vba_modified.add(ws.legacy_drawing)
        ws._rels.append(Relationship(Id="comments", type=CommentSheet._rel_type, Target=part.path))


@dataclass
class _CommentsPart:
    """What the package's manifest needs of a comments part (``CommentSheet``'s path and type)."""

    id: int
    mime_type: str = CommentSheet.mime_type

    @property
    def path(self) -> str:
        return CommentSheet._path.format(self.id)


_NOTES = pa.schema(
    [
        pa.field(
            "n",
            pa.list_(
                pa.struct(
                    [
                        ("code", pa.large_string()),
                        ("text", pa.large_string()),
                        ("additionalData", pa.struct([("field", pa.large_string())])),
                    ]
                )
            ),
        )
    ]
)


def _marks(notifications: pd.Series, positions: dict[str, int]) -> pd.DataFrame:
    """Each offending cell as (``row`` in the frame, input ``column``, ``note`` "CODE: text"),
    from the rows' notification lists, parsed all at once by Arrow's JSON reader."""
    if notifications.empty:
        return pd.DataFrame({"row": [], "column": [], "note": []}).astype({"row": "int64", "column": "int64"})
    data = "".join('{"n":' + notifications.astype("str") + "}\n").encode()
    lists = pa_json.read_json(
        pa.py_buffer(data),
        read_options=pa_json.ReadOptions(use_threads=False, block_size=max(1 << 20, len(data) + 1)),
        parse_options=pa_json.ParseOptions(explicit_schema=_NOTES, unexpected_field_behavior="ignore"),
    )["n"].combine_chunks()
    notes = pc.list_flatten(lists)
    frame = pd.DataFrame(
        {
            "row": pc.list_parent_indices(lists).to_numpy(),
            "field": notes.field("additionalData").field("field").to_pandas(),
            "note": sheet_xml.join(notes.field("code"), ": ", notes.field("text")).to_pandas(),
        }
    )
    frame["column"] = frame["field"].map(positions)
    return frame.dropna(subset=["column"]).astype({"column": "int64"})[["row", "column", "note"]]


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


def _safe_column(cells: pd.Series) -> pd.Series:
    """A cell longer than Excel holds is cut, with a note saying so (the CSV report keeps it
    whole): a longer one makes Excel "repair" the workbook."""
    text = cells.astype("str")  # made ``report.visible`` already (``report.Layout.table``)
    long = text.str.len().gt(MAX_CELL).fillna(False).astype(bool)
    if long.any():
        text = text.where(~long, text.str.slice(0, MAX_CELL - len(CUT_NOTE)) + CUT_NOTE)
    return text


def _matched(run: Run) -> bool:
    """Whether some rows matched stored dependents: then the sheet says what each kind did."""
    return bool(run.updated or run.unchanged or run.skipped)
