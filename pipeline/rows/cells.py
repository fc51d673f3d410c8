"""A rejected row's raw cells as one JSON array, written and read a column at a time.

The ledger keeps each rejected row's cells as the JSON text ``json.dumps(cells,
ensure_ascii=False)`` writes (``import_rejects.cells``), and the reports need them back as
columns. Row by row that was a ``json.dumps`` and a ``json.loads`` per rejected row; here
Arrow's string kernels quote and join whole columns, and Arrow's JSON reader parses every
row of a chunk at once. ``tests/test_cells.py`` holds both to what ``json`` does.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

# What json.dumps escapes in a string (ensure_ascii=False): the backslash first, so that the
# backslashes the others add are not escaped again.
_ESCAPES = [
    ("\\", "\\\\"),
    ('"', '\\"'),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
    ("\b", "\\b"),
    ("\f", "\\f"),
]
_ESCAPES += [(chr(i), f"\\u{i:04x}") for i in range(32) if chr(i) not in "\n\r\t\b\f"]
_QUOTE = pa.scalar('"', pa.large_string())
_NOTHING = pa.scalar("", pa.large_string())


def encode(columns: list[pa.Array], rows: int) -> list[str]:
    """Each row's cells (``columns``: text, nulls allowed) as a JSON array, as ``json.dumps``
    writes it: ``["a", null, "b\\"c"]``."""
    if not columns:
        return ["[]"] * rows
    literals = [_literal(column) for column in columns]
    joined = pc.binary_join_element_wise(*literals, pa.scalar(", ", pa.large_string()))
    bracketed = pc.binary_join_element_wise(
        pa.scalar("[", pa.large_string()), joined, pa.scalar("]", pa.large_string()), _NOTHING
    )
    return bracketed.to_pylist()


def _literal(column: pa.Array) -> pa.Array:
    """A column's cells as JSON string literals, ``null`` where missing."""
    text = column.cast(pa.large_string())
    controls = _has_control(text)
    for raw, escaped in _ESCAPES:
        if ord(raw) < 32 and not controls:
            break  # the rest are control characters, and this column has none
        text = pc.replace_substring(text, raw, escaped)
    return pc.fill_null(pc.binary_join_element_wise(_QUOTE, text, _QUOTE, _NOTHING), "null")


def _has_control(text: pa.Array) -> bool:
    data = text.buffers()[2]
    return data is not None and bool((np.frombuffer(data, np.uint8) < 32).any())


def decode(texts: list[str] | pa.Array, width: int) -> list[pa.Array]:
    """JSON arrays of ``width`` cells each (``encode``'s, or the ledger's) -> ``width``
    columns of text. A row of another width is a bug here, not the input: ``ValueError``."""
    texts = pa.array(texts, pa.large_string()) if not isinstance(texts, pa.Array) else texts
    if len(texts) == 0:
        return [pa.array([], pa.large_string()) for _ in range(width)]
    lines = pc.binary_join_element_wise(
        pa.scalar('{"c":', pa.large_string()), texts, pa.scalar("}\n", pa.large_string()), _NOTHING
    )
    offsets = np.frombuffer(lines.buffers()[1], np.int64, len(lines) + 1, lines.offset * 8)
    data = lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))  # a line a row
    schema = pa.schema([("c", pa.list_(pa.large_string()))])
    table = pajson.read_json(
        pa.BufferReader(data),
        read_options=pajson.ReadOptions(use_threads=False, block_size=max(len(data), 1 << 20)),
        parse_options=pajson.ParseOptions(explicit_schema=schema),
    )
    lists = table["c"].combine_chunks()
    if len(lists) != len(texts) or pc.any(pc.not_equal(pc.list_value_length(lists), width)).as_py():
        raise ValueError(f"a row's cells are not {width} JSON strings")
    return [pc.list_element(lists, i) for i in range(width)]
