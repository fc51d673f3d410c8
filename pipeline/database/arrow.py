"""Frames as Arrow tables typed for a table's columns, column-wise, never row by row in
Python: what every database's bulk write starts from."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

ROWS_AT_ONCE = 10_000  # tuples made at a time for ``executemany``


def typed(table: sa.Table, frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow arrays typed for the table's columns (dates as dates, ints as ints)."""
    arrays, names = [], []
    for name in frame.columns:
        col = table.c[name]
        values = frame[name]
        if isinstance(col.type, sa.Date):
            arr = pa.array(pd.to_datetime(values), type=pa.timestamp("s"), from_pandas=True).cast(pa.date32())
        elif isinstance(col.type, sa.DateTime):
            arr = pa.array(pd.to_datetime(values), type=pa.timestamp("us"), from_pandas=True)
        elif isinstance(col.type, sa.Boolean):
            arr = pa.array(values.astype("boolean"), type=pa.bool_(), from_pandas=True)
        elif isinstance(col.type, sa.Integer):
            arr = pa.array(values.astype("Int64"), type=pa.int64(), from_pandas=True)
        elif isinstance(values.dtype, pd.ArrowDtype) and is_uuid_bytes(values.dtype.pyarrow_dtype):
            arr = pa.array(values)  # a uuid column as its 16 bytes (``uuid_series``)
        else:
            arr = pa.array(
                values.astype("str") if values.notna().any() else values.astype(object),
                type=pa.string(),
                from_pandas=True,
            )
        arrays.append(arr)
        names.append(name)
    return pa.table(arrays, names=names)


def as_text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dates and times as ISO text: what SQLAlchemy stores in SQLite, and MariaDB accepts;
    UUIDs given as their 16 bytes as their canonical text."""
    if is_uuid_bytes(col.type):
        return pa.chunked_array([uuid_text(col)])
    if pa.types.is_date(col.type):
        return pc.strftime(col.cast(pa.timestamp("s")), format="%Y-%m-%d")
    if pa.types.is_timestamp(col.type):
        return pc.strftime(col, format="%Y-%m-%d %H:%M:%S")
    return col


def rows(arrow: pa.Table) -> Iterator[tuple]:
    """The rows as tuples for ``executemany``, made ``ROWS_AT_ONCE`` at a time as it asks for
    them, so a chunk's Python objects are never all alive at once."""
    for start in range(0, arrow.num_rows, ROWS_AT_ONCE):
        part = arrow.slice(start, ROWS_AT_ONCE)
        yield from zip(*(_values(c) for c in part.columns), strict=True)


def _values(col: pa.ChunkedArray) -> list:
    """A column's values as Python objects, as ``to_pylist`` makes them but through numpy
    where that is the same and faster (text, booleans, whole numbers without a gap: with a
    gap numpy would make floats)."""
    kind = col.type
    whole = pa.types.is_integer(kind) and not col.null_count
    same = whole or pa.types.is_string(kind) or pa.types.is_boolean(kind)
    return col.to_numpy(zero_copy_only=False).tolist() if same else col.to_pylist()


_DASH_AT = np.array([8, 13, 18, 23])
_HEX_RUNS = ((0, 8), (9, 13), (14, 18), (19, 23), (24, 36))  # where xxxxxxxx-xxxx-... has digits
_DIGIT_AT = np.concatenate([np.arange(a, b) for a, b in _HEX_RUNS])
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def uuid_bytes(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Canonical UUID text (36 characters, any case) -> the 16 bytes it spells, column-wise;
    nulls stay null. The pipeline checks UUIDs before it writes them, so anything else is a
    bug here, not bad input: ``ValueError``. The characters are read as one (rows, 36) block
    of bytes and turned into nibbles by arithmetic, not by lookup."""
    given = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    n = len(given)
    if n == 0:
        return pa.array([], pa.binary(16))
    text = pc.fill_null(given.cast(pa.string()), "00000000-0000-0000-0000-000000000000")
    offsets = np.frombuffer(text.buffers()[1], np.int32, n + 1, text.offset * 4)
    if (np.diff(offsets) != 36).any():
        raise ValueError("a value written to a uuid column is not a UUID")
    chars = np.frombuffer(text.buffers()[2], np.uint8, 36 * n, offsets[0]).reshape(n, 36)
    digits = np.concatenate([chars[:, a:b] for a, b in _HEX_RUNS], axis=1)
    not_digit = (digits - np.uint8(ord("0"))) > 9  # uint8 arithmetic wraps: below "0" is large
    not_letter = ((digits | np.uint8(0x20)) - np.uint8(ord("a"))) > 5  # a-f, A-F
    if (chars[:, _DASH_AT] != ord("-")).any() or (not_digit & not_letter).any():
        raise ValueError("a value written to a uuid column is not a UUID")
    nibbles = (digits & np.uint8(0x0F)) + np.uint8(9) * (digits >> np.uint8(6))  # "a" is 0x61
    pairs = nibbles.view("<u2")  # two nibbles a byte: the first is the low byte of each pair
    packed = (((pairs & 0xFF) << 4) | (pairs >> 8)).astype(np.uint8)
    out = pa.Array.from_buffers(pa.binary(16), n, [None, pa.py_buffer(packed.tobytes())])
    if given.null_count == 0:
        return out
    return pc.if_else(given.is_valid(), out, pa.nulls(n, out.type))


def uuid_series(values: pd.Series) -> pd.Series:
    """Canonical UUID text -> a column of their 16 bytes (``uuid_bytes``), which every path of
    ``write`` takes for a uuid column as it takes the text: PostgreSQL's binary ``COPY`` as it
    is (a chunk's customer ids are turned into bytes once, not once per table), the others
    as text again (``uuid_text``)."""
    packed = uuid_bytes(pa.array(values, from_pandas=True))
    return pd.Series(pd.arrays.ArrowExtensionArray(packed), index=values.index)


def uuid_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """16-byte UUIDs -> their canonical lowercase text, column-wise (``uuid_bytes`` undone)."""
    given = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    n = len(given)
    raw = np.frombuffer(given.buffers()[1], np.uint8, 16 * n, given.offset * 16).reshape(n, 16)
    digits = np.empty((n, 32), np.uint8)
    digits[:, 0::2], digits[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 0x0F]
    chars = np.full((n, 36), ord("-"), np.uint8)
    chars[:, _DIGIT_AT] = digits
    offsets = pa.py_buffer(np.arange(0, 36 * n + 1, 36, dtype=np.int32).tobytes())
    text = pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(chars.tobytes())])
    return text if given.null_count == 0 else pc.if_else(given.is_valid(), text, pa.nulls(n, pa.string()))


def is_uuid_bytes(kind: pa.DataType) -> bool:
    return pa.types.is_fixed_size_binary(kind) and kind.byte_width == 16
