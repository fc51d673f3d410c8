"""The fastest append each database allows, for frames already checked.

PostgreSQL: binary ``COPY`` (psycopg 3), the rows encoded from Arrow by pgpq, so the server
parses no text: staging a million rows cost the server 0.9-1.2 s of CPU against 2.4-2.7 s
for the same rows as Arrow-written CSV, which stays the path where pgpq has no wheel (Linux
on ARM). SQLite: ``executemany`` of 200-row ``INSERT`` statements inside the open
transaction. MariaDB/MySQL: ``LOAD DATA LOCAL INFILE`` of Arrow-written CSV where the server
allows it, else ``executemany``, which PyMySQL batches into multi-row ``INSERT``s. Values
are typed for the target table's columns first (dates as dates, integers as integers),
column-wise through Arrow, never row by row in Python. ``write`` is ``prepare`` (the
client's work: typing and encoding, no connection) then ``send`` (the database's), so an
import can prepare one chunk while it sends the last.
"""

from __future__ import annotations

import io
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from pymysql.constants import CLIENT
from sqlalchemy.engine import Connection

from pipeline.database import db

try:
    from pgpq import ArrowToPostgresBinaryEncoder
except ImportError:  # pgpq has no wheel for Linux on ARM: there, CSV ``COPY`` (``_csv``)
    ArrowToPostgresBinaryEncoder = None


ROWS_AT_ONCE = 10_000  # SQLite and MariaDB without LOAD DATA: tuples made at a time
SQLITE_ROWS_AT_ONCE = 200  # rows one SQLite INSERT carries (``_executemany_sqlite``)
COPY_BATCH = 16_384  # rows per encoded part of a binary ``COPY``: the server takes one as the next is sent


@dataclass
class Prepared:
    """A frame made ready for one dialect's bulk write, with no database work yet: so one
    thread can prepare the next chunk while another writes this one (``Loader.prepare``)."""

    table: sa.Table
    names: list[str]
    how: str  # "binary" or "csv" COPY (PostgreSQL); "text": SQLite, MariaDB/MySQL
    payload: Any  # the encoded COPY data, or the Arrow table of text
    rows: int


def write(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    """Append ``frame`` (columns named as the table's) with the fastest path of the dialect:
    PostgreSQL binary ``COPY``, SQLite ``executemany`` in the open transaction,
    MariaDB/MySQL ``LOAD DATA`` or multi-row ``INSERT`` (PyMySQL batches ``executemany``)."""
    send(conn, prepare(db.dialect(conn), table, frame))


def prepare(kind: str, table: sa.Table, frame: pd.DataFrame) -> Prepared:
    """The client's half of ``write`` for the dialect ``kind``: typing, and for PostgreSQL
    encoding, every value column-wise, never row by row in Python."""
    if frame.empty:
        return Prepared(table, list(frame.columns), "text", pa.table({}), 0)
    arrow = _arrow(table, frame)
    names, n = arrow.column_names, arrow.num_rows
    if kind == "postgresql":
        if ArrowToPostgresBinaryEncoder:
            return Prepared(table, names, "binary", _binary(table, arrow), n)
        return Prepared(table, names, "csv", _csv(arrow), n)
    return Prepared(table, names, "text", pa.table([_as_text(c) for c in arrow.columns], names=names), n)


def send(conn: Connection, prepared: Prepared) -> None:
    """The database's half of ``write``: one ``COPY``, ``LOAD DATA`` or ``executemany``."""
    if not prepared.rows:
        return
    raw = conn.connection.dbapi_connection
    if prepared.how in ("binary", "csv"):
        with _copy_in(raw, prepared.table, prepared.names, prepared.how) as copy:
            for part in prepared.payload:
                copy.write(part)
        return
    kind = db.dialect(conn)
    if kind == "mysql" and _local_infile(raw):
        _load_data(raw, prepared.table, prepared.payload)
        return
    marks = ", ".join(["?" if kind == "sqlite" else "%s"] * len(prepared.names))
    sql = f"INSERT INTO {prepared.table.name} ({', '.join(prepared.names)}) VALUES ({marks})"
    cur = raw.cursor()
    try:
        if kind == "sqlite":
            _executemany_sqlite(raw, cur, sql, f"({marks})", prepared)
        else:  # PyMySQL makes multi-row INSERTs of executemany itself
            cur.executemany(sql, _rows(prepared.payload))
    finally:
        cur.close()


def _executemany_sqlite(raw: Any, cur: Any, sql: str, row: str, prepared: Prepared) -> None:
    """SQLite's ``executemany`` with ``SQLITE_ROWS_AT_ONCE`` rows to a statement, then the rest
    one by one. sqlite3 lets go of the GIL for every statement it runs and must win it back
    after: one statement per row means a million such hand-overs, each waiting while the
    import's other threads run Python. 200,000 rows of the bench's stage with two threads
    busy beside the writer: 12.0-18.1 s a million one row at a time, 4.6-6.3 s two hundred
    (three alternating runs); with no other thread, 5.4-5.6 against 5.0-5.2 s a million (rows
    of 23 columns). In the import its writing thread sent a million rows in 4.5-5.3 s instead
    of 6.2-6.9 s (two runs each)."""
    limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(SQLITE_ROWS_AT_ONCE, limit // len(prepared.names)))
    rows = _rows(prepared.payload)
    grouped = (tuple(chain.from_iterable(islice(rows, per))) for _ in range(prepared.rows // per))
    cur.executemany(sql + f", {row}" * (per - 1), grouped)
    cur.executemany(sql, rows)  # what is left: fewer than ``per``


def _rows(arrow: pa.Table) -> Iterator[tuple]:
    """The rows as tuples for ``executemany``, made ``ROWS_AT_ONCE`` at a time as it asks for
    them, so a chunk's Python objects are never all alive at once."""
    for start in range(0, arrow.num_rows, ROWS_AT_ONCE):
        part = arrow.slice(start, ROWS_AT_ONCE)
        yield from zip(*(_values(c) for c in part.columns), strict=True)


def _values(col: pa.ChunkedArray) -> list:
    """A column's values as Python objects, as ``to_pylist`` makes them but through numpy
    where that is the same (text, booleans, whole numbers without a gap): 9.8 -> 6.9 ms per
    100,000 text values, 4.4 -> 2.7 ms whole numbers; a million rows' tuples of the bench
    file's 8 columns and 4 whole numbers 0.56-0.80 -> 0.43-0.59 s (three alternating runs),
    in SQLite's writing thread, which holds the GIL for them. A whole number column with a
    gap would become floats in numpy, and anything else is left to ``to_pylist``."""
    kind = col.type
    whole = pa.types.is_integer(kind) and not col.null_count
    same = whole or pa.types.is_string(kind) or pa.types.is_boolean(kind)
    return col.to_numpy(zero_copy_only=False).tolist() if same else col.to_pylist()


def _binary(table: sa.Table, arrow: pa.Table) -> list[bytes]:
    """PostgreSQL's binary ``COPY`` data: each value in the column's own wire format. The
    format carries no types, so every array must be exactly the column's type (``_wire``).
    Encoded in batches, so the server can take the first while the rest are sent."""
    wire = pa.table(
        [_wire(table.c[n].type, c) for n, c in zip(arrow.column_names, arrow.columns, strict=True)],
        names=arrow.column_names,
    )
    encoder = ArrowToPostgresBinaryEncoder(wire.schema)
    parts = [encoder.write_header()]
    parts += [encoder.write_batch(batch) for batch in wire.to_batches(max_chunksize=COPY_BATCH)]
    return [*parts, encoder.finish()]


def _csv(arrow: pa.Table) -> list[bytes]:
    """``COPY`` of Arrow-written CSV, where pgpq cannot be installed: the server parses the
    text (2.4-2.7 s of its CPU for a million staged rows, against 0.9-1.2 s binary)."""
    arrow = pa.table(
        [uuid_text(c) if _is_uuid_bytes(c.type) else c for c in arrow.columns], names=arrow.column_names
    )
    buf = io.BytesIO()
    pacsv.write_csv(arrow, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return [buf.getvalue()]


@contextmanager
def _copy_in(raw: Any, table: sa.Table, names: list[str], fmt: str) -> Iterator[Any]:
    """psycopg's ``COPY ... FROM STDIN`` into ``names`` of ``table``, in format ``fmt``."""
    sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT {fmt})"
    with raw.cursor() as cur, cur.copy(sql) as copy:
        yield copy


def _wire(kind: sa.types.TypeEngine, values: pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``values`` as the Arrow type pgpq encodes as the column's PostgreSQL type: ``integer``
    from int32 (not int64, which is ``bigint``), ``uuid`` from its 16 bytes (pgpq's ``bytea``
    of 16 bytes is the same on the wire). Text, dates, times and booleans already match."""
    if isinstance(kind, sa.Uuid):
        return values if _is_uuid_bytes(values.type) else uuid_bytes(values)
    if isinstance(kind, sa.BigInteger):
        return values.cast(pa.int64())
    if isinstance(kind, sa.SmallInteger):
        return values.cast(pa.int16())
    if isinstance(kind, sa.Integer):
        return values.cast(pa.int32())
    return values


_DASH_AT = np.array([8, 13, 18, 23])
_HEX_RUNS = ((0, 8), (9, 13), (14, 18), (19, 23), (24, 36))  # where xxxxxxxx-xxxx-... has digits
_DIGIT_AT = np.concatenate([np.arange(a, b) for a, b in _HEX_RUNS])
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def uuid_bytes(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Canonical UUID text (36 characters, any case) -> the 16 bytes it spells, column-wise;
    nulls stay null. The pipeline checks UUIDs before it writes them, so anything else is a
    bug here, not bad input: ``ValueError``. The characters are read as one (rows, 36) block
    of bytes and turned into nibbles by arithmetic, not by lookup: 0.31 -> 0.16 s a million
    (best of seven)."""
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


def _is_uuid_bytes(kind: pa.DataType) -> bool:
    return pa.types.is_fixed_size_binary(kind) and kind.byte_width == 16


def _local_infile(raw: Any) -> bool:
    """Whether both ends allow ``LOAD DATA LOCAL`` (the server's ``local_infile``, asked once)."""
    if not getattr(raw, "_dependents_local_infile", None):
        cur = raw.cursor()
        try:
            cur.execute("SELECT @@local_infile")
            allowed = bool(cur.fetchone()[0]) and bool(raw.client_flag & CLIENT.LOCAL_FILES)
        finally:
            cur.close()
        raw._dependents_local_infile = "yes" if allowed else "no"
    return raw._dependents_local_infile == "yes"


def _load_data(raw: Any, table: sa.Table, arrow: pa.Table) -> None:
    """MariaDB/MySQL's bulk path: Arrow-written CSV through ``LOAD DATA LOCAL INFILE``, from a
    private temporary file. Empty fields are NULL: the pipeline never stores an empty string
    (``normalise.clean`` makes blank cells missing). Booleans go as 1/0."""
    arrow = pa.table(
        [c.cast(pa.int8()) if pa.types.is_boolean(c.type) else c for c in arrow.columns],
        names=arrow.column_names,
    )
    names = arrow.column_names
    fields = ", ".join(f"@v{i}" for i in range(len(names)))
    sets = ", ".join(f"{n} = NULLIF(@v{i}, '')" for i, n in enumerate(names))
    sql = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {table.name} CHARACTER SET utf8mb4 "
        "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
        f"LINES TERMINATED BY '\\n' ({fields}) SET {sets}"
    )
    with tempfile.NamedTemporaryFile(prefix="dependents-", suffix=".csv") as tmp:  # mode 0600
        pacsv.write_csv(arrow, tmp.name, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        cur = raw.cursor()
        try:
            cur.execute(sql, (tmp.name,))
        finally:
            cur.close()


def _arrow(table: sa.Table, frame: pd.DataFrame) -> pa.Table:
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
        elif isinstance(values.dtype, pd.ArrowDtype) and _is_uuid_bytes(values.dtype.pyarrow_dtype):
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


def _as_text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dates and times as ISO text: what SQLAlchemy stores in SQLite, and MariaDB accepts;
    UUIDs given as their 16 bytes as their canonical text."""
    if _is_uuid_bytes(col.type):
        return pa.chunked_array([uuid_text(col)])
    if pa.types.is_date(col.type):
        return pc.strftime(col.cast(pa.timestamp("s")), format="%Y-%m-%d")
    if pa.types.is_timestamp(col.type):
        return pc.strftime(col, format="%Y-%m-%d %H:%M:%S")
    return col
