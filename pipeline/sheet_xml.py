"""SpreadsheetML rows built a column at a time with Arrow, and streamed into an openpyxl
write-only sheet in place of the rows openpyxl would build cell by cell (about 15 µs each).

A cell is the XML openpyxl writes for it (``tests/test_sheet_xml.py`` compares them):
inline strings, so text is never a formula; a whole number is a number. openpyxl still
writes the sheet's head and tail (columns, frozen pane, filter, comments' drawing) and the
rest of the workbook. This leans on openpyxl 3.1's write-only writer (``_writer``,
``_rows``), so ``pyproject.toml`` keeps openpyxl below 3.2.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

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
    rows = join('<row r="', row_refs, '">', *cells, "</row>")
    joined = pc.binary_join(
        pa.LargeListArray.from_arrays(pa.array([0, len(rows)], pa.int64()), rows), text("")
    )
    return joined[0].as_buffer()


def number_cells(letter: str, refs: pa.Array, numbers: pd.Series) -> pa.Array:
    values = _digits(numbers.to_numpy(dtype="int64"))
    return join(f'<c r="{letter}', refs, '" t="n"><v>', values, "</v></c>")


def text_cells(letter: str, refs: pa.Array, values: pa.Array, style: str | pa.Array = "") -> pa.Array:
    """Inline-string cells, as openpyxl writes them: text is escaped (a CR as ``&#13;`` so
    XML keeps it), ``xml:space="preserve"`` where it starts or ends with a space. An empty
    cell is left out, unless it has a style: a missing name is an offending cell too."""
    style = text(style)
    escaped = values
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        escaped = pc.replace_substring(escaped, raw, entity)
    padded = pc.not_equal(values, pc.utf8_trim_whitespace(values))
    space = pc.if_else(padded, text(' xml:space="preserve"'), text(""))
    ref = join(f'<c r="{letter}', refs, '"', style)
    full = join(ref, ' t="inlineStr"><is><t', space, ">", escaped, "</t></is></c>")
    bare = pc.if_else(pc.equal(style, text("")), text(""), join(ref, "/>"))
    present = pc.fill_null(pc.greater(pc.utf8_length(values), 0), False)
    return pc.if_else(present, full, bare)
