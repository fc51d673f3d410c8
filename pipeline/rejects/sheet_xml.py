"""SpreadsheetML rows built a column at a time with Arrow, and streamed into an openpyxl
write-only sheet in place of the rows openpyxl would build cell by cell;
the sheet's cell comments (``Comments``) the same way.

A cell is the XML openpyxl writes for it (``tests/test_sheet_xml.py`` compares them):
inline strings, so text is never a formula; a whole number is a number. openpyxl still
writes the sheet's head and tail (columns, frozen pane, filter, comments' drawing) and the
rest of the workbook. This leans on openpyxl 3.1's write-only writer (``_writer``,
``_rows``), so ``pyproject.toml`` keeps openpyxl below 3.2.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.xml.constants import SHEET_MAIN_NS
from openpyxl.xml.functions import xmlfile

from pipeline.pii import open_private


class _RowsWriter(WorksheetWriter):
    """openpyxl's writer for a write-only sheet (its ``get_stream``, openpyxl 3.1), over a
    file ``stream`` also writes to: finished rows go in as bytes, between the head and
    the tail openpyxl writes. The file is the caller's (``out``), 0600, not one in /tmp:
    a sheet of rejected rows holds personal data."""

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


def stream(sheet, out: Path) -> Generator[None, pa.Buffer, None]:
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

    receiver = rows()
    next(receiver)
    sheet._rows = receiver
    return receiver


def text(value) -> pa.Array | pa.Scalar:
    """Arrow large strings (pandas' own), so every piece of a cell joins without a cast."""
    if isinstance(value, str):
        return pa.scalar(value, pa.large_string())
    if isinstance(value, pd.Series):
        value = pa.array(value.astype("str").array)
    return value.cast(pa.large_string())


def join(*parts) -> pa.Array:
    """Element-wise concatenation of strings and string columns: a cell's XML at once."""
    return pc.binary_join_element_wise(*(text(p) if isinstance(p, str) else p for p in parts), text(""))


def letter(i: int) -> str:
    """The column letter of 0-based column ``i``."""
    return get_column_letter(i + 1)


def refs(rows: np.ndarray) -> pa.Array:
    """Sheet row numbers as the text every cell reference of those rows ends with."""
    return _digits(rows)


def _digits(numbers: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(numbers), pa.large_string())


def rows_xml(row_refs: pa.Array, cells: list[pa.Array]) -> pa.Buffer:
    """Whole ``<row>`` elements, one per reference, joined into one buffer for ``stream``."""
    return _joined(join('<row r="', row_refs, '">', *cells, "</row>"))


def _joined(parts: pa.Array) -> pa.Buffer:
    """Every string of ``parts``, end to end, in one buffer (no Python string per part)."""
    if len(parts) == 0:
        return pa.py_buffer(b"")
    lists = pa.LargeListArray.from_arrays(pa.array([0, len(parts)], pa.int64()), parts)
    return pc.binary_join(lists, text(""))[0].as_buffer()


def number_cells(letter: str, refs: pa.Array, numbers: pd.Series) -> pa.Array:
    values = _digits(numbers.to_numpy(dtype="int64"))
    return join(f'<c r="{letter}', refs, '" t="n"><v>', values, "</v></c>")


def text_cells(letter: str, refs: pa.Array, values: pa.Array, style: str | pa.Array = "") -> pa.Array:
    """Inline-string cells, as openpyxl writes them: text is escaped (a CR as ``&#13;`` so
    XML keeps it), ``xml:space="preserve"`` where it starts or ends with a space. An empty
    cell is left out, unless it has a style: a missing name is an offending cell too."""
    style = text(style)
    ref = join(f'<c r="{letter}', refs, '"', style)
    full = join(ref, ' t="inlineStr"><is>', _t(values), "</is></c>")
    bare = pc.if_else(pc.equal(style, text("")), text(""), join(ref, "/>"))
    present = pc.fill_null(pc.greater(pc.utf8_length(values), 0), False)
    return pc.if_else(present, full, bare)


def _t(values: pa.Array, blank_kept: bool = True) -> pa.Array:
    """A ``<t>`` element per text as openpyxl writes it: escaped (a CR as ``&#13;`` so XML
    keeps it), ``xml:space="preserve"`` where it starts or ends with a space; for text that
    is only spaces too in a cell, but not in a comment (openpyxl's two writers differ)."""
    escaped = values
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        escaped = pc.replace_substring(escaped, raw, entity)
    trimmed = pc.utf8_trim_whitespace(values)
    padded = pc.not_equal(values, trimmed)
    if not blank_kept:
        padded = pc.and_(padded, pc.greater(pc.utf8_length(trimmed), 0))
    space = pc.if_else(padded, text(' xml:space="preserve"'), text(""))
    return join("<t", space, ">", escaped, "</t>")


# Cell comments. openpyxl makes an object per comment and an lxml tree per comment's shape;
# here they are built column-wise. ``tests/rejects/test_sheet_xml.py`` compares both parts
# with openpyxl's own, byte for byte.
VML = "urn:schemas-microsoft-com:vml"
OFFICE = "urn:schemas-microsoft-com:office:office"
EXCEL = "urn:schemas-microsoft-com:office:excel"
FIRST_SHAPE = 1026  # openpyxl numbers the shapes from here
_SHAPES_HEAD = (
    f'<xml><ns0:shapelayout xmlns:ns0="{OFFICE}" xmlns:ns1="{VML}" ns1:ext="edit">'
    '<ns0:idmap ns1:ext="edit" data="1"/></ns0:shapelayout>'
    f'<ns2:shapetype xmlns:ns2="{VML}" xmlns:ns3="{OFFICE}" id="_x0000_t202" coordsize="21600,21600"'
    ' ns3:spt="202" path="m,l,21600r21600,l21600,xe"><ns2:stroke joinstyle="miter"/>'
    '<ns2:path gradientshapeok="t" ns3:connecttype="rect"/></ns2:shapetype>'
)


@dataclass
class Comments:
    """A sheet's cell comments, kept as Arrow columns until the workbook is saved. openpyxl's
    writers look for a sheet's comments in its ``_comments`` (``report_xlsx._Writer`` writes
    these), so its length is theirs."""

    author: str
    width: int
    height: int
    _rows: list[np.ndarray] = field(default_factory=list)
    _columns: list[np.ndarray] = field(default_factory=list)
    _texts: list[pa.Array] = field(default_factory=list)

    def add(self, rows: np.ndarray, columns: np.ndarray, texts: pa.Array) -> None:
        """Comments on the cells at sheet ``rows`` (1-based) and ``columns`` (0-based)."""
        self._rows.append(rows)
        self._columns.append(columns)
        self._texts.append(text(texts))

    def __len__(self) -> int:
        return sum(len(r) for r in self._rows)

    def comments_xml(self) -> bytes:
        """The comments part, as openpyxl's ``CommentSheet`` writes it."""
        rows, columns = np.concatenate(self._rows), np.concatenate(self._columns)
        letters = pa.array([letter(c) for c in range(int(columns.max()) + 1)], pa.large_string())
        cell = join(pc.take(letters, pa.array(columns)), refs(rows))
        note = _t(pa.concat_arrays(self._texts), blank_kept=False)
        each = join('<comment ref="', cell, '" authorId="0" shapeId="0"><text>', note, "</text></comment>")
        head = f'<comments xmlns="{SHEET_MAIN_NS}"><authors><author>{escape(self.author)}</author></authors>'
        return f"{head}<commentList>".encode() + _joined(each).to_pybytes() + b"</commentList></comments>"

    def vml(self) -> bytes:
        """Their shapes, the legacy drawing Excel shows them by, as openpyxl's ``ShapeWriter`` writes it."""
        rows, columns = np.concatenate(self._rows) - 1, np.concatenate(self._columns)
        ids = _digits(np.arange(FIRST_SHAPE, FIRST_SHAPE + len(rows)))
        shape = join(
            f'<ns0:shape xmlns:ns0="{VML}" xmlns:ns1="{OFFICE}" type="#_x0000_t202" style="position:absolute;'
            f" margin-left:59.25pt;margin-top:1.5pt;width:{self.width}px;height:{self.height}px;z-index:1;"
            'visibility:hidden" fillcolor="#ffffe1" ns1:insetmode="auto" id="_x0000_s',
            ids,
            '"><ns0:fill color2="#ffffe1"/><ns0:shadow color="black" obscured="t"/>'
            '<ns0:path ns1:connecttype="none"/><ns0:textbox style="mso-direction-alt:auto">'
            '<div style="text-align:left"/></ns0:textbox>'
            f'<ns2:ClientData xmlns:ns2="{EXCEL}" ObjectType="Note">'
            "<ns2:MoveWithCells/><ns2:SizeWithCells/><ns2:AutoFill>False</ns2:AutoFill><ns2:Row>",
            _digits(rows),
            "</ns2:Row><ns2:Column>",
            _digits(columns),
            "</ns2:Column></ns2:ClientData></ns0:shape>",
        )
        return _SHAPES_HEAD.encode() + _joined(shape).to_pybytes() + b"</xml>"
