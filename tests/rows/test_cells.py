"""Cells as JSON arrays, a column at a time: exactly what ``json`` writes and reads."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline.rows import cells

AWKWARD = [
    "plain",
    "",
    None,
    'quote " and back\\slash',
    "line\nbreak\r\ncr\ttab\bbs\fff",
    "nul\x00 unit\x1f esc\x1b del\x7f",
    "Zoë 😀 \u2028 \ufffd",
    "\\u0041 not an escape",
    ']", [null',
]


def test_encode_writes_what_json_dumps_writes():
    rows = [AWKWARD, list(reversed(AWKWARD)), [None] * len(AWKWARD), ["x"] * len(AWKWARD)]
    columns = [pa.array([r[i] for r in rows], pa.large_string()) for i in range(len(AWKWARD))]
    assert cells.encode(columns, len(rows)) == [json.dumps(r, ensure_ascii=False) for r in rows]


def test_a_column_without_control_characters_and_a_file_without_columns():
    column = pa.array(["a", 'b"', None], pa.string())
    assert cells.encode([column], 3) == ['["a"]', '["b\\""]', "[null]"]
    assert cells.encode([], 2) == ["[]", "[]"]


def test_decode_reads_what_json_loads_reads():
    rows = [AWKWARD, list(reversed(AWKWARD)), [None] * len(AWKWARD)]
    texts = [json.dumps(r, ensure_ascii=False) for r in rows] + [json.dumps(AWKWARD)]  # ASCII-escaped too
    columns = cells.decode(texts, len(AWKWARD))
    assert [list(r) for r in zip(*(c.to_pylist() for c in columns), strict=True)] == [*rows, AWKWARD]
    assert [c.to_pylist() for c in cells.decode([], 2)] == [[], []]


def test_a_row_of_another_width_is_a_bug_not_a_guess():
    with pytest.raises(ValueError, match="not 2 JSON strings"):
        cells.decode(['["a", "b"]', '["a"]'], 2)
    with pytest.raises(ValueError, match="not 2 JSON strings"):
        cells.decode(['["a", "b"]', None], 2)  # no row at all
