"""Set-wise database checks, then the fastest insert each database allows.

Per chunk, the keys of the rows still standing go into a temporary staging
table with one bulk write; two queries then answer, for the whole chunk at once,
which customers exist, which dependents already exist (and whether an earlier
chunk of this file put them there), and how many dependents each customer has.
The file-order rules (duplicates in the file, the self-service limit) are then
decided in pandas. Rows accepted in earlier chunks are already in ``dependents``
inside this import's transaction, so every rule holds across chunk boundaries.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline import db

SELF_SERVICE_LIMIT = 4
CHANNELS = ("self-service", "contact-centre")
KEY = ["customer_id", "date_of_birth", "name_key"]

_stage_md = sa.MetaData()
stage = sa.Table(
    "dependents_stage",
    _stage_md,
    sa.Column("source_row", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer_id", db.UUID, nullable=False),
    sa.Column("date_of_birth", sa.Date),
    sa.Column("name_key", db.NAME_KEY),
    sa.Column("candidate", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)

# Only the rows something is wrong with come back: an unknown customer, or a stored twin.
MATCH_SQL = sa.text(
    """
    SELECT s.source_row,
           CASE WHEN c.id IS NULL THEN 0 ELSE 1 END AS customer_found,
           d.import_run_id AS match_run,
           d.source_row AS match_row
    FROM dependents_stage s
    LEFT JOIN customers c ON c.id = s.customer_id
    LEFT JOIN dependents d
           ON s.candidate = 1
          AND d.customer_id = s.customer_id
          AND d.date_of_birth = s.date_of_birth
          AND d.name_key = s.name_key
    WHERE c.id IS NULL OR d.id IS NOT NULL
    """
)
# Only customers this chunk could take past the limit: stored dependents + candidates > limit.
AT_RISK_SQL = sa.text(
    """
    SELECT MIN(s.source_row) AS source_row, COUNT(*) AS existing
    FROM dependents d
    JOIN (SELECT customer_id, MIN(source_row) AS source_row, COUNT(*) AS k
          FROM dependents_stage WHERE candidate = 1 GROUP BY customer_id) s
      ON s.customer_id = d.customer_id
    GROUP BY d.customer_id, s.k
    HAVING COUNT(*) + MIN(s.k) > :limit
    """
)


def name_key(frame: pd.DataFrame) -> pd.Series:
    """Casefolded trimmed ``first<US>last`` where both names and the birth date are present."""
    if not {"first_name", "last_name", "date_of_birth__value"} <= set(frame):
        return pd.Series(pd.NA, index=frame.index, dtype="str")
    key = frame["first_name"].str.casefold() + "\x1f" + frame["last_name"].str.casefold()
    return key.where(frame["date_of_birth__value"].notna())


@dataclass
class Loader:
    """Checks and inserts the chunks of one import, inside the caller's transaction."""

    conn: Connection
    run_id: str
    channel: str
    now: datetime

    def __post_init__(self) -> None:
        db.fresh_temp_table(self.conn, stage)
        self.issued = 0
        if db.dialect(self.conn) == "postgresql":
            # Inside this transaction the planner's statistics still describe ``dependents`` as it
            # was before the load, so it would hash-join (scan) the whole table for every chunk:
            # quadratic over a file. The check queries are per-row index probes by nature.
            for setting in ("enable_hashjoin = off", "enable_mergejoin = off", "jit = off"):
                self.conn.exec_driver_sql(f"SET LOCAL {setting}")

    # -- checks ---------------------------------------------------------------------------------

    def check(self, frame: pd.DataFrame, rejected_rows: pd.Index, bad_customer: pd.Index) -> pd.DataFrame:
        """Database failures (row, code, details) for the chunk. ``rejected_rows`` already failed a
        row rule: they are checked for their customer but take no place in the file order."""
        keyed = frame.drop(index=bad_customer.intersection(frame.index))
        keys = pd.DataFrame(
            {
                "source_row": keyed.index.astype("int64"),
                "customer_id": keyed["customer_id"].to_numpy(),
                "date_of_birth": _column(keyed, "date_of_birth__value"),
                "name_key": name_key(keyed).to_numpy(),
                "candidate": (~keyed.index.isin(rejected_rows)).astype("int64"),
            }
        )
        self.conn.execute(stage.delete())
        write(self.conn, stage, keys)
        found = _fetch(self.conn, MATCH_SQL, ["source_row", "customer_found", "match_run", "match_row"])
        facts = keys.merge(found, on="source_row", how="left").sort_values("source_row")
        facts["customer_found"] = facts["customer_found"].fillna(1).astype("int64")
        facts["existing"] = self._existing(facts)
        return self._decide(facts)

    def _existing(self, facts: pd.DataFrame) -> pd.Series:
        """Dependents already stored per row's customer, where it can matter (else 0)."""
        if self.channel != "self-service":
            return pd.Series(0, index=facts.index, dtype="int64")
        risk = _fetch(self.conn, AT_RISK_SQL, ["source_row", "existing"], limit=SELF_SERVICE_LIMIT)
        by_customer = facts[["source_row", "customer_id"]].merge(risk, on="source_row")
        per_customer = by_customer.set_index("customer_id")["existing"]
        return facts["customer_id"].map(per_customer).fillna(0).astype("int64")

    def _decide(self, facts: pd.DataFrame) -> pd.DataFrame:
        out: list[pd.DataFrame] = []
        missing = facts[facts["customer_found"] == 0]
        out.append(_fail(missing["source_row"], "CUSTOMER_NOT_FOUND", field="customerId"))
        live = facts[(facts["customer_found"] == 1) & (facts["candidate"] == 1)]
        stored = live[live["match_run"].notna()]
        ours = stored["match_run"] == self.run_id
        out.append(
            _fail(
                stored["source_row"][ours],
                "DUPLICATE_IN_FILE",
                field="customerId",
                row=stored["match_row"][ours],
            )
        )
        out.append(_fail(stored["source_row"][~ours], "DEPENDENT_ALREADY_EXISTS", field="customerId"))
        new = live[live["match_run"].isna()]
        repeat = new["name_key"].notna() & new.duplicated(KEY, keep="first")
        first_row = new.groupby(KEY, dropna=False)["source_row"].transform("first")
        firsts = new[~repeat]
        over = self._over_limit(firsts)
        self.accepted_rows = pd.Index(firsts["source_row"][~over])
        limited = firsts[over]
        # A repeat of a row the limit turned away is itself over the limit, not a duplicate.
        repeats = new[repeat]
        repeat_of_limited = first_row[repeat].isin(limited["source_row"])
        for rows in (limited, repeats[repeat_of_limited.to_numpy()]):
            out.append(
                _fail(
                    rows["source_row"],
                    "DEPENDENT_LIMIT_REACHED",
                    field="customerId",
                    limit=SELF_SERVICE_LIMIT,
                    count=rows["existing"].clip(lower=SELF_SERVICE_LIMIT),
                )
            )
        plain = repeats[~repeat_of_limited.to_numpy()]
        out.append(
            _fail(plain["source_row"], "DUPLICATE_IN_FILE", field="customerId", row=first_row[plain.index])
        )
        return pd.concat(out, ignore_index=True)

    def _over_limit(self, firsts: pd.DataFrame) -> pd.Series:
        if self.channel != "self-service":
            return pd.Series(False, index=firsts.index)
        rank = firsts.groupby("customer_id").cumcount()
        return (firsts["existing"] + rank) >= SELF_SERVICE_LIMIT

    # -- insert ---------------------------------------------------------------------------------

    def insert(self, frame: pd.DataFrame) -> int:
        """Write the accepted rows of a chunk to ``dependents``; returns how many."""
        rows = frame.loc[frame.index.isin(self.accepted_rows)]
        if rows.empty:
            return 0
        out = pd.DataFrame(index=rows.index)
        out["id"] = ordered_uuids(self.now, self.issued, len(rows))
        self.issued += len(rows)
        for col in db.dependents.columns:
            name = col.name
            if name in ("id", "created_at", "updated_at", "import_run_id", "source_row", "name_key"):
                continue
            source = f"{name}__value" if f"{name}__value" in rows else name
            out[name] = rows.get(source)
        out["created_at"] = self.now
        out["updated_at"] = self.now
        out["import_run_id"] = self.run_id
        out["source_row"] = rows.index.astype("int64")
        out["name_key"] = name_key(rows)
        # In customer order, the foreign-key probes and natural-key index inserts of a chunk
        # walk their B-trees in order instead of jumping between random pages.
        write(self.conn, db.dependents, out.sort_values("customer_id", kind="stable"))
        return len(out)


def _fetch(conn: Connection, sql: sa.TextClause, names: list[str], **params: Any) -> pd.DataFrame:
    """A query's rows as a frame, without building a SQLAlchemy Row per row."""
    result = conn.execute(sql, params)
    return pd.DataFrame.from_records(result.cursor.fetchall(), columns=names)


def _column(frame: pd.DataFrame, name: str) -> Any:
    return frame[name].to_numpy() if name in frame else None


def _fail(rows: pd.Series, code: str, **details: Any) -> pd.DataFrame:
    """Failures for ``rows``; a detail given as a Series varies per row, a scalar is shared."""
    rows = pd.Series(rows).astype("int64")
    per_row = {
        k: pd.Series(v).astype("int64").to_numpy() for k, v in details.items() if isinstance(v, pd.Series)
    }
    shared = {k: v for k, v in details.items() if not isinstance(v, pd.Series)}
    dicts = [{**shared, **{k: int(v[i]) for k, v in per_row.items()}} for i in range(len(rows))]
    return pd.DataFrame({"row": rows.to_numpy(), "code": code, "details": dicts})


def ordered_uuids(when: datetime, start: int, n: int) -> np.ndarray:
    """``n`` time-ordered UUIDs (version 7 layout) as text, built column-wise.

    48 bits of the run's start time in milliseconds, then the row's sequence number in the
    run (42 bits around the version and variant bits), then 32 random bits. Ids of one run
    ascend, so the primary-key index is appended to rather than split at random pages.
    """
    ms = int(when.replace(tzinfo=UTC).timestamp() * 1000)  # ``when`` is naive UTC, as stored
    seq = np.arange(start, start + n, dtype=np.uint64)
    raw = np.zeros((n, 16), dtype=np.uint8)
    for i in range(6):
        raw[:, i] = (ms >> (8 * (5 - i))) & 0xFF
    raw[:, 6] = 0x70 | ((seq >> np.uint64(38)) & np.uint64(0x0F)).astype(np.uint8)
    raw[:, 7] = ((seq >> np.uint64(30)) & np.uint64(0xFF)).astype(np.uint8)
    raw[:, 8] = 0x80 | ((seq >> np.uint64(24)) & np.uint64(0x3F)).astype(np.uint8)
    for i, shift in ((9, 16), (10, 8), (11, 0)):
        raw[:, i] = ((seq >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.uint8)
    raw[:, 12:] = np.frombuffer(os.urandom(4 * n), dtype=np.uint8).reshape(n, 4)
    hexed = np.frombuffer(raw.tobytes().hex().encode(), dtype=np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src, width in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        out[:, dst : dst + width] = hexed[:, src : src + width]
    return np.frombuffer(out.tobytes(), dtype="S36").astype(str)


# -- bulk writes --------------------------------------------------------------------------------


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
    rows = list(zip(*(c.to_pylist() for c in arrow.columns), strict=True))
    marks = ", ".join(["?" if kind == "sqlite" else "%s"] * len(arrow.column_names))
    cur = raw.cursor()
    try:
        cur.executemany(f"INSERT INTO {table.name} ({cols}) VALUES ({marks})", rows)
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
