"""The rejects workbook's Rejects sheet, built column-wise as XML: what openpyxl and
python-calamine (the importer's own reader) read back is exactly what went in, every cell
text, every offending cell filled and commented, across batches."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook

from pipeline.database.ledger import Run
from pipeline.rejects import report_xlsx
from pipeline.rejects.notifications import notification
from pipeline.rejects.report import Layout, write_rejects
from tests.helpers import AWKWARD

HEADERS = ["customerId", "firstName", "notes"]
FIELDS = {"customerId": 0, "firstName": 1, "notes": 2}


BAD = {
    "firstName": notification("FIRST_NAME_REQUIRED", {"field": "firstName"}),
    "notes": notification("NOTES_TOO_LONG", {"field": "notes", "limit": 8}),
}


def _note(field: str) -> str:
    return f"{BAD[field]['code']}: {BAD[field]['text']}"


def _frame(cells: list[list[str]], offending: list[list[str]]) -> pd.DataFrame:
    """Rejected rows as the spool keeps them; ``offending[i]`` names row i's bad fields."""
    notes = [[BAD[f] for f in fs] or [notification("DUPLICATE_IN_FILE", {"row": 2})] for fs in offending]
    return pd.DataFrame(
        {
            "row": range(2, 2 + len(cells)),
            "codes": [";".join(n["code"] for n in ns) for ns in notes],
            "messages": [" ".join(n["text"] for n in ns) for ns in notes],
            "notifications": [json.dumps(ns, ensure_ascii=False) for ns in notes],
            "cells": [json.dumps(c, ensure_ascii=False) for c in cells],
        }
    )


def _written(tmp_path: Path, frames: list[pd.DataFrame]) -> Path:
    run = Run(
        "r1", "in.csv", "0" * 64, 1, "add-dependent", "self-service", date(2026, 11, 22), datetime.now()
    )
    layout = Layout(HEADERS, fields=FIELDS)
    counts = Counter(c for f in frames for codes in f["codes"] for c in codes.split(";"))
    return write_rejects(tmp_path, "in", run, counts, layout, frames)["rejects_xlsx"]


def _random_cells(n: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(AWKWARD) + rng.choice(AWKWARD) for _ in HEADERS] for _ in range(n)]


def test_every_cell_reads_back_exactly_as_text_in_openpyxl_and_calamine(tmp_path, monkeypatch):
    monkeypatch.setattr(report_xlsx, "BATCH", 7)  # several batches, and frames across them
    cells = _random_cells(40)
    offending = [["firstName"] if i % 3 == 0 else [] for i in range(40)]
    path = _written(tmp_path, [_frame(cells[:25], offending[:25]), _frame(cells[25:], offending[25:])])

    ws = load_workbook(path)["Rejects"]
    assert [c.value for c in ws[1]] == ["row", "sourceRow", "codes", "messages", *HEADERS]
    assert all(c.font.b for c in ws[1])
    read = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert [r[0] for r in read] == [*range(2, 27), *range(2, 17)]
    assert [r[1] for r in read] == [r[0] for r in read]  # an original file: each row is its own source
    assert [[v or "" for v in r[4:]] for r in read] == cells
    assert all(c.data_type == "s" for row in ws.iter_rows(min_row=2, min_col=3) for c in row if c.value)

    sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Rejects").to_python()
    assert [[str(v) for v in r[4:]] for r in sheet[1:]] == cells


def test_offending_cells_are_filled_and_commented_even_when_empty(tmp_path):
    cells = [["c1", "", "ok"], ["c1", "Ann", "x" * 9], ["c1", "", "y"]]
    offending = [["firstName"], ["notes"], ["firstName", "notes"]]
    ws = load_workbook(_written(tmp_path, [_frame(cells, offending)]))["Rejects"]
    fill = report_xlsx.WARNING_FILL.fgColor.rgb[-6:]

    def mark(row: int, col: int) -> str | None:
        cell = ws.cell(row, col)
        return (cell.comment.text if cell.comment else "") if cell.fill.fgColor.rgb[-6:] == fill else None

    assert [[mark(r, c) for c in (5, 6, 7)] for r in (2, 3, 4)] == [
        [None, _note("firstName"), None],
        [None, None, _note("notes")],
        [None, _note("firstName"), _note("notes")],
    ]
    assert ws.cell(2, 6).value is None  # filled, and still blank for the reviewer to fill in


def test_comments_stop_at_the_cap_and_fills_go_on(tmp_path, monkeypatch):
    monkeypatch.setattr(report_xlsx, "MAX_COMMENTS", 3)
    monkeypatch.setattr(report_xlsx, "BATCH", 2)
    cells = [["c1", "", "n"]] * 5
    book = load_workbook(_written(tmp_path, [_frame(cells, [["firstName"]] * 5)]))
    ws = book["Rejects"]
    assert [bool(ws.cell(r, 6).comment) for r in range(2, 7)] == [True, True, True, False, False]
    assert all(ws.cell(r, 6).fill.fgColor.rgb.endswith("FFC7CE") for r in range(2, 7))
    facts = {r[0].value: r[1].value for r in book["Summary"].iter_rows(max_row=12)}
    assert facts["Cell comments"].startswith("on the first 3 rejected rows")


@pytest.mark.parametrize("rows", [0, 1])
def test_an_empty_or_one_row_workbook_is_whole(tmp_path, rows):
    frames = [_frame(_random_cells(rows), [[]] * rows)] if rows else []
    ws = load_workbook(_written(tmp_path, frames))["Rejects"]
    assert ws.max_row == 1 + rows and ws.auto_filter.ref.endswith(str(1 + rows))


def test_rows_stream_into_a_private_file_beside_the_workbook_and_go_with_it(tmp_path):
    """Not /tmp: rejected rows are personal data. Gone once saved, and gone if abandoned."""
    layout = Layout(HEADERS, fields=FIELDS)
    frame = _frame(_random_cells(3), [["firstName"]] * 3)
    book = report_xlsx.RejectsXlsx(tmp_path / "in.rejects.xlsx", layout)
    book.add(layout.table(frame), frame)
    (streamed,) = tmp_path.iterdir()
    assert streamed.name == ".in.rejects.xlsx.sheet.xml" and oct(streamed.stat().st_mode & 0o777) == "0o600"
    book.abandon()
    assert list(tmp_path.iterdir()) == []

    path = _written(tmp_path, [frame])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["in.rejects.xlsx", "in.rejects.csv", "in.notifications.jsonl"]
    )
    assert load_workbook(path)["Rejects"].max_row == 4


def test_a_stop_while_the_workbook_is_saved_leaves_nothing_for_the_garbage_collector(tmp_path, monkeypatch):
    """A zip left open when its file closed used to print "Exception ignored" as it was collected."""
    import gc
    import sys

    from pipeline.errors import Terminated

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    def stopped(self):
        raise Terminated()

    monkeypatch.setattr(report_xlsx._Writer, "write_data", stopped)
    with pytest.raises(Terminated):
        _written(tmp_path, [_frame(_random_cells(3), [["firstName"]] * 3)])
    gc.collect()
    assert unraisable == []
