"""``<stem>.rejects.xlsx``: the rejects a reviewer opens, fixes in place and imports again.

Sheet ``Rejects`` (first, so a corrected workbook imports as it is): ``row``, ``codes``,
``messages``, then the input's columns; every offending cell filled and commented with
its codes. Sheet ``Summary``: the run and rejected rows per code, with a bar chart.

openpyxl makes the workbook: its package, styles, comments, summary and chart. The Rejects
sheet's rows are the exception: openpyxl spends about 15 µs on each cell it writes (a cell
object, then an element), 9 of a 1,000,000-row import's 20 seconds for its 50,000 rejected
rows. So those rows are built here a column at a time, as the same SpreadsheetML openpyxl
writes (inline-string cells, never a formula; the row number a number), and streamed into
openpyxl's write-only sheet in its place. Memory does not grow with the rejects.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.chart import BarChart, Reference
from openpyxl.comments.comment_sheet import CommentRecord
from openpyxl.styles import Font, NamedStyle, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.xml.constants import SHEET_MAIN_NS
from openpyxl.xml.functions import xmlfile

from pipeline.ledger import Run
from pipeline.pii import open_private
from schemas import parse

WARNING_FILL = PatternFill("solid", fgColor="FFC7CE")
REJECTED_STYLE = "Rejected cell"  # a named cell style: Excel lists it
HEADER_FONT = Font(bold=True)
MAX_COMMENTS = 5_000  # comments are drawings: beyond this the file grows heavy; fills continue
MAX_WIDTH = 60
MAX_CELL = 32_767  # characters in one Excel cell
CUT_NOTE = " … [cut here: Excel holds 32,767 characters; the CSV report has it all]"
FIRST_INPUT_COLUMN = 3  # row, codes, messages come first
BATCH = 5_000  # rejected rows turned into XML at a time


class RejectsXlsx:
    def __init__(self, path: Path, layout) -> None:
        self.path, self.layout = path, layout
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet("Rejects")
        self.sheet.freeze_panes = "A2"
        self.rows = 0
        self.commented = 0
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
        refs = _text(pc.cast(pa.array(rows), pa.large_string()))
        cells = [
            _number_cells("A", refs, table["row"]),
            _text_cells("B", refs, _text(table["codes"])),
            _text_cells("C", refs, _text(table["messages"])),
        ]
        for j, name in enumerate(inputs.columns):
            style = pc.if_else(pa.array(offending[:, j]), _text(self._rejected), _text(""))
            cells.append(_text_cells(_letter(FIRST_INPUT_COLUMN + j), refs, _text(inputs[name]), style))
        self._write(refs, cells)
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
        self._sheet_data = _sheet_data(self.sheet, self.path.with_name(f".{self.path.name}.sheet.xml"))
        refs = pa.array(["1"], pa.large_string())
        self._write(
            refs,
            [_text_cells(_letter(i), refs, _text(_safe(str(c))), bold) for i, c in enumerate(self.columns)],
        )

    def _style_id(self, **style) -> int:
        """The workbook's index of a cell style (registering it), as openpyxl would write it."""
        cell = WriteOnlyCell(self.sheet)
        for name, value in style.items():
            setattr(cell, name, value)
        return cell.style_id

    def _write(self, refs: pa.Array, cells: list[pa.Array]) -> None:
        rows = _join('<row r="', refs, '">', *cells, "</row>")
        xml = pc.binary_join(
            pa.LargeListArray.from_arrays(pa.array([0, len(rows)], pa.int64()), rows), _text("")
        )
        self._sheet_data.send(xml[0].as_buffer())

    def _comment(self, marks: pd.DataFrame, rows: np.ndarray) -> None:
        """A comment on every offending cell of the first ``MAX_COMMENTS`` rows that have one
        (a Python step per comment, so bounded by the cap, not by the file)."""
        marked = marks["row"].unique()
        take = marked[: max(0, MAX_COMMENTS - self.commented)]
        self.commented += len(take)
        chosen = marks[marks["row"].isin(take)]
        refs = [
            f"{_letter(FIRST_INPUT_COLUMN + c)}{rows[r]}"
            for r, c in zip(chosen["row"], chosen["column"], strict=True)
        ]
        notes = (
            chosen.assign(ref=refs)
            .groupby(["row", "column"], sort=True)
            .agg({"ref": "first", "note": "\n".join})
        )
        for ref, text in zip(notes["ref"], notes["note"], strict=True):
            # What ``CommentRecord.from_cell`` makes of a cell's ``Comment``, without the cell.
            record = CommentRecord(ref=ref, author="dependents", height=120, width=320)
            record.text.t = text
            self.sheet._comments.append(record)

    def close(self, run: Run, counts: Counter, include_pii: bool) -> None:
        if self.columns is None:
            self._start(pd.DataFrame(columns=["row", "codes", "messages"]))
        last = get_column_letter(len(self.columns))
        self.sheet.auto_filter.ref = f"A1:{last}{self.rows + 1}"
        self._summary(run, counts, include_pii)
        with open_private(self.path, "wb") as fh:
            self.book.save(fh)

    def abandon(self) -> None:
        """The rows streamed so far (in a 0600 file beside the workbook) go; no workbook is written."""
        if self._sheet_data is not None:
            self._sheet_data.close()
            self.sheet._writer.close()
            self.sheet._writer.cleanup()
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


class _RowsWriter(WorksheetWriter):
    """openpyxl's writer for a write-only sheet (its ``get_stream``, openpyxl 3.1), over a
    file this module can also write to: finished rows go in as bytes, between the head and
    the tail openpyxl writes. The file is the caller's (``out``), 0600, not one in /tmp:
    rejected rows hold personal data."""

    def get_stream(self):
        with (
            open_private(Path(self.out), "wb") as self.raw,
            xmlfile(self.raw) as xf,
            xf.element("worksheet", xmlns=SHEET_MAIN_NS),
        ):
            try:
                while True:
                    el = yield
                    if el is True:
                        yield xf
                    elif el is not None:
                        xf.write(el)
            except GeneratorExit:
                pass

    def cleanup(self) -> None:
        Path(self.out).unlink(missing_ok=True)


def _sheet_data(sheet, out: Path):
    """Take over a write-only sheet's ``sheetData`` as openpyxl's own ``_write_rows`` does,
    but receiving finished ``<row>`` XML, written to ``out``. Saving the book closes it;
    openpyxl then writes the sheet's tail (the filter, the comments' drawing), archives the
    sheet and calls ``cleanup``."""
    writer = sheet._writer = _RowsWriter(sheet, out=str(out))
    writer.write_top()

    def rows():
        xf = writer.xf.send(True)
        with xf.element("sheetData"):
            try:
                while True:
                    xml = yield
                    xf.flush()  # openpyxl's part first, then ours, in order
                    writer.raw.write(xml)
            except GeneratorExit:
                pass
        writer.xf.send(None)

    stream = rows()
    next(stream)
    sheet._rows = stream
    return stream


def _text(value) -> pa.Array | pa.Scalar:
    """Arrow large strings (pandas' own), so every piece of a cell joins without a cast."""
    if isinstance(value, str):
        return pa.scalar(value, pa.large_string())
    if isinstance(value, pd.Series):
        value = pa.array(value.astype("str").array)
    return value.cast(pa.large_string())


def _join(*parts) -> pa.Array:
    """Element-wise concatenation of strings and string columns: a cell's XML at once."""
    return pc.binary_join_element_wise(*(_text(p) if isinstance(p, str) else p for p in parts), _text(""))


def _letter(i: int) -> str:
    return get_column_letter(i + 1)


def _number_cells(letter: str, refs: pa.Array, numbers: pd.Series) -> pa.Array:
    values = _text(pc.cast(pa.array(numbers.astype("int64").to_numpy()), pa.large_string()))
    return _join(_text(f'<c r="{letter}'), refs, '" t="n"><v>', values, "</v></c>")


def _text_cells(letter: str, refs: pa.Array, text: pa.Array, style: str | pa.Array = "") -> pa.Array:
    """Inline-string cells, as openpyxl writes them: text is escaped (a CR as ``&#13;`` so
    XML keeps it), ``xml:space="preserve"`` where it starts or ends with a space. An empty
    cell is left out, unless it has a style: a missing name is an offending cell too."""
    style = _text(style) if isinstance(style, str) else style
    escaped = text
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        escaped = pc.replace_substring(escaped, raw, entity)
    padded = pc.not_equal(text, pc.utf8_trim_whitespace(text))
    space = pc.if_else(padded, _text(' xml:space="preserve"'), _text(""))
    ref = _join(_text(f'<c r="{letter}'), refs, '"', style)
    full = _join(ref, ' t="inlineStr"><is><t', space, ">", escaped, "</t></is></c>")
    bare = pc.if_else(pc.equal(style, _text("")), _text(""), _join(ref, "/>"))
    present = pc.fill_null(pc.greater(pc.utf8_length(text), 0), False)
    return pc.if_else(present, full, bare)


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
            "note": _join(notes.field("code"), ": ", notes.field("text")).to_pandas(),
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
