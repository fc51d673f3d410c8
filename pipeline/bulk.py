"""The fastest append each database allows, for frames already checked.

PostgreSQL: ``COPY`` of Arrow-written CSV (psycopg 3). SQLite: ``executemany`` inside the
open transaction. MariaDB/MySQL: ``LOAD DATA LOCAL INFILE`` of Arrow-written CSV where the
server allows it, else ``executemany``, which PyMySQL batches into multi-row ``INSERT``s.
Values are typed for the target table's columns first (dates as
dates, integers as integers), column-wise through Arrow, never row by row in Python.
"""

from __future__ import annotations

import io
import tempfile
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from pymysql.constants import CLIENT
from sqlalchemy.engine import Connection

from pipeline import db


def write(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    """Append ``frame`` (columns named as the table's) with the fastest path of the dialect:
    PostgreSQL ``COPY`` of Arrow-written CSV, SQLite ``executemany`` in the open transaction,
    MariaDB/MySQL multi-row ``INSERT`` (PyMySQL batches ``executemany``)."""
    if frame.empty:
        return
    arrow = _arrow(table, frame)
    cols = ", ".join(arrow.column_names)
    kind = db.dialect(conn)
    raw = conn.connection.dbapi_connection
    if kind == "postgresql":
        buf = io.BytesIO()
        pacsv.write_csv(arrow, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({cols}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buf.getbuffer())
        return
    arrow = pa.table([_as_text(c) for c in arrow.columns], names=arrow.column_names)
    if kind == "mysql" and _local_infile(raw):
        _load_data(raw, table, arrow)
        return
    rows = list(zip(*(c.to_pylist() for c in arrow.columns), strict=True))
    marks = ", ".join(["?" if kind == "sqlite" else "%s"] * len(arrow.column_names))
    cur = raw.cursor()
    try:
        cur.executemany(f"INSERT INTO {table.name} ({cols}) VALUES ({marks})", rows)
    finally:
        cur.close()


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
    """Dates and times as ISO text: what SQLAlchemy stores in SQLite, and MariaDB accepts."""
    if pa.types.is_date(col.type):
        return pc.strftime(col.cast(pa.timestamp("s")), format="%Y-%m-%d")
    if pa.types.is_timestamp(col.type):
        return pc.strftime(col, format="%Y-%m-%d %H:%M:%S")
    return col
