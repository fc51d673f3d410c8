"""Rows as SpreadsheetML, built column-wise: each cell is the XML openpyxl itself writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.rejects import sheet_xml
from tests.helpers import AWKWARD


def _openpyxl_cell_xml(value: str) -> bytes:
    """What openpyxl's own write-only writer makes of a text cell at D2."""
    from io import BytesIO

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell._writer import write_cell
    from openpyxl.xml.functions import xmlfile

    ws = Workbook(write_only=True).create_sheet()
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type, cell.row, cell.column = "s", 2, 4
    out = BytesIO()
    with xmlfile(out) as xf:
        write_cell(xf, ws, cell)
    return out.getvalue()


@pytest.mark.parametrize("value", [v for v in AWKWARD if v])
def test_a_text_cell_is_the_xml_openpyxl_itself_writes(value):
    import pyarrow as pa

    refs = pa.array(["2"], pa.large_string())
    from lxml import etree

    ours = sheet_xml.text_cells("D", refs, pa.array([value], pa.large_string()))[0].as_py().encode()
    theirs = _openpyxl_cell_xml(value)  # ASCII with character references; ours is UTF-8

    def canonical(xml: bytes) -> bytes:
        return etree.tostring(etree.fromstring(xml), method="c14n")

    assert canonical(ours) == canonical(theirs)


def test_a_row_number_is_a_number_cell_and_an_empty_cell_only_its_style():
    import pyarrow as pa

    refs = sheet_xml.refs(np.array([7, 8]))
    assert sheet_xml.refs(np.array([7])).to_pylist() == ["7"]
    numbers = sheet_xml.number_cells("A", refs, pd.Series([12, 13]))
    assert numbers.to_pylist() == ['<c r="A7" t="n"><v>12</v></c>', '<c r="A8" t="n"><v>13</v></c>']
    values = pa.array(["", None], pa.large_string())
    styled = pa.array([' s="3"', ""], pa.large_string())
    assert sheet_xml.text_cells("E", refs, values, styled).to_pylist() == ['<c r="E7" s="3"/>', ""]
    xml = sheet_xml.rows_xml(refs, [numbers]).to_pybytes().decode()
    assert (
        xml == '<row r="7"><c r="A7" t="n"><v>12</v></c></row><row r="8"><c r="A8" t="n"><v>13</v></c></row>'
    )


def test_comments_are_the_two_parts_openpyxl_itself_writes():
    """The comments part and its shapes' drawing, byte for byte, across two batches."""
    import pyarrow as pa
    from openpyxl.comments.comment_sheet import CommentRecord, CommentSheet
    from openpyxl.xml.functions import tostring

    texts = [v for v in AWKWARD if v] + ["CODE_A: one.\nCODE_B: two."]
    rows = np.arange(2, 2 + len(texts))
    columns = np.array([3 + i % 30 for i in range(len(texts))])  # past Z: two-letter columns
    ours = sheet_xml.Comments("dependents", width=320, height=120)
    half = len(texts) // 2
    for part in (slice(0, half), slice(half, None)):
        ours.add(rows[part], columns[part], pa.array(texts[part], pa.large_string()))
    records = []
    for row, column, value in zip(rows, columns, texts, strict=True):
        ref = f"{sheet_xml.letter(column)}{row}"
        record = CommentRecord(ref=ref, author="dependents", height=120, width=320)
        record.text.t = value
        records.append(record)
    theirs = CommentSheet.from_comments(records)
    assert len(ours) == len(texts)
    assert ours.comments_xml() == tostring(theirs.to_tree())
    assert ours.vml() == theirs.write_shapes(None)
