"""PostgreSQL: binary COPY, a large load's keys set aside and rebuilt, an advisory lock."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from pipeline.database import arrow, indexes
from pipeline.database.dialects.base import Dialect, Prepared, waited
from pipeline.database.faults import Fault
from pipeline.database.indexes import Keys, SetAside

try:
    from pgpq import ArrowToPostgresBinaryEncoder
except ImportError:  # pgpq has no wheel for Linux on ARM: there, CSV ``COPY``
    ArrowToPostgresBinaryEncoder = None

if TYPE_CHECKING:
    from pipeline.database.load import Loader

LOCK_KEY = 0x6465_7065_6E64  # "depend": one advisory lock for every import into a database
COPY_BATCH = 16_384  # rows per encoded part of a binary COPY: the server takes one as the next is sent
NOT_AVAILABLE = "55P03"  # SQLSTATE lock_not_available: lock_timeout or NOWAIT gave up
FK_VIOLATION = "23503"  # SQLSTATE foreign_key_violation
FAULTS = {  # SQLSTATE -> fault; any class 08 (connection exception) is a lost connection
    NOT_AVAILABLE: Fault.LOCK_TIMEOUT,
    "57014": Fault.STATEMENT_TIMEOUT,  # query_canceled: statement_timeout
    "25006": Fault.READ_ONLY,  # read_only_sql_transaction
    "40001": Fault.CONFLICT,  # serialization_failure
    "40P01": Fault.CONFLICT,  # deadlock_detected
    "57P01": Fault.DISCONNECTED,  # admin_shutdown: the session was terminated
    "57P02": Fault.DISCONNECTED,  # crash_shutdown
    "57P03": Fault.DISCONNECTED,  # cannot_connect_now
}

# What is set aside: the foreign keys of ``dependents``, its natural-key index and its primary
# key, as (drop, create) statements written by the catalogue itself, names and options
# included, in the order they are dropped. The primary key only when no other table's foreign
# key needs it. Order 0 marks the foreign key from ``customer_id`` to ``customers (id)``, which
# ``SetAside.customers_known`` may put back early.
DEFINITIONS_SQL = """
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid)),
       CASE WHEN c.contype = 'p' THEN 3
            WHEN c.confrelid = to_regclass('customers')
             AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute
                                   WHERE attrelid = c.conrelid AND attname = 'customer_id')]
             AND c.confkey = ARRAY[(SELECT attnum FROM pg_attribute
                                    WHERE attrelid = c.confrelid AND attname = 'id')] THEN 0
            ELSE 1 END
FROM pg_constraint c WHERE c.conrelid = to_regclass('dependents')
  AND (c.contype = 'f' OR c.contype = 'p' AND NOT EXISTS (
    SELECT 1 FROM pg_constraint r WHERE r.confrelid = c.conrelid AND r.contype = 'f'))
UNION ALL
SELECT 'DROP INDEX ' || i.oid::regclass::text, pg_get_indexdef(i.oid), 2
FROM pg_class i WHERE i.oid = to_regclass(:index)
ORDER BY 3
"""
# A million keys sort in memory (the default 64 MB spills to disk); never less than the
# server already allows; for the rest of the transaction only.
SORT_MEMORY_SQL = (
    "SELECT set_config('maintenance_work_mem', '256MB', true) "
    "WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < 256 * 1024 * 1024"
)
# With the keys set aside the candidates were copied in while staging: the rows a database
# rule turned away are taken back out.
REFUSED_SQL = """
DELETE FROM dependents d USING dependents_verdicts v
WHERE d.import_run_id = :run_id AND d.source_row = v.source_row
"""


class PostgreSQL(Dialect):
    name = "postgresql"
    backends = ("postgresql", "postgres")  # ``postgres://``, as Heroku and libpq write it
    id_sql = "CAST(:prefix || lpad(to_hex(seq), 12, '0') AS uuid)"
    stage_uuid_bytes = True  # the binary COPY takes the 16 bytes as they are

    def engine_url(self, parsed: URL) -> URL:
        _, _, driver = parsed.drivername.partition("+")
        return parsed.set(drivername=f"postgresql+{driver or 'psycopg'}")

    def connect_args(self) -> dict[str, Any]:
        return {"connect_timeout": 10, "application_name": "dependents"}

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)

    def start_import(self, conn: Connection) -> None:
        # A file's sorts fit in memory; compiling one-off queries costs more than it saves;
        # the work tables' statistics come from a small sample, which is enough for them.
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL default_statistics_target = 10")

    def fresh_temp_table(self, conn: Connection, table: sa.Table) -> None:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{table.name}")
        table.create(conn)

    def analyze(self, conn: Connection, table: sa.Table) -> None:
        conn.exec_driver_sql(f"ANALYZE {table.name}")

    @contextmanager
    def hash_joins(self, conn: Connection) -> Iterator[None]:
        """The planner takes an empty table it has analyzed for one row and would scan it once
        per staged row; only for steps among the file's own tables (a small file against a
        large ``dependents`` is right to use its index). The setting is the transaction's own,
        put back afterwards; after an error the rollback puts it back."""
        before = conn.exec_driver_sql("SELECT current_setting('enable_nestloop')").scalar_one()
        conn.exec_driver_sql("SELECT set_config('enable_nestloop', 'off', true)")
        yield
        conn.execute(sa.text("SELECT set_config('enable_nestloop', :v, true)"), {"v": before})

    # -- bulk: binary COPY, the rows encoded from Arrow by pgpq; CSV COPY where pgpq is missing

    def prepare(self, table: sa.Table, frame: pd.DataFrame) -> Prepared:
        typed = arrow.typed(table, frame)
        names, n = typed.column_names, typed.num_rows
        if ArrowToPostgresBinaryEncoder:
            return Prepared(table, names, _binary(table, typed), n, "binary")
        return Prepared(table, names, _csv(typed), n, "csv")

    def send(self, conn: Connection, prepared: Prepared) -> None:
        raw = conn.connection.dbapi_connection
        sql = f"COPY {prepared.table.name} ({', '.join(prepared.names)}) FROM STDIN (FORMAT {prepared.how})"
        with raw.cursor() as cur, cur.copy(sql) as copy:
            for part in prepared.payload:
                copy.write(part)

    # -- keys set aside while staging, rebuilt before the commit

    def set_aside_before_staging(self, conn: Connection, rows: int, mode: str) -> SetAside:
        """Drop the foreign keys, natural-key index and primary key of ``dependents`` inside the
        import's transaction when the load is worth it and the table is free; a rollback
        brings them back."""
        plan = SetAside()
        if not indexes.wanted(conn, rows, mode):
            return plan
        if not _lock(conn, wait=mode == "always"):
            return SetAside(Keys.BUSY)
        plan.prelude.append(SORT_MEMORY_SQL)
        found = conn.execute(sa.text(DEFINITIONS_SQL), {"index": indexes.NATURAL_KEY}).all()
        for drop, create, order in found:
            conn.exec_driver_sql(drop)
            plan.restore_sql.insert(0, create)  # keys and index first, then the foreign keys
            if order == 0:
                plan.customer_key = create
        plan.state = Keys.SET_ASIDE
        return plan

    def foreign_key_violated(self, exc: IntegrityError) -> bool:
        return getattr(exc.orig, "sqlstate", None) == FK_VIOLATION

    def fault(self, exc: BaseException) -> Fault | None:
        import psycopg

        state = getattr(exc, "sqlstate", None) or ""
        if state.startswith("08") or (isinstance(exc, psycopg.OperationalError) and not state):
            return Fault.DISCONNECTED  # no SQLSTATE: the server went before it could send one
        return FAULTS.get(state)

    def insert(self, loader: Loader, rows: int) -> int:
        """With the keys set aside the rows are in already: only those a database rule refused
        are taken out, and the keys rebuilt (checking every row)."""
        if not loader.set_aside.unindexed:
            return super().insert(loader, rows)
        refused = loader.copied - rows
        taken = (
            loader.conn.execute(sa.text(REFUSED_SQL), {"run_id": loader.run_id}).rowcount if refused else 0
        )
        if taken != refused:  # the verdicts and the copied rows disagree: a bug, say so
            raise RuntimeError(f"took back {taken} refused rows, expected {refused}")
        loader.set_aside.restore(loader.conn)
        return loader.copied - taken

    # -- locks

    def lock(self, conn: Connection, timeout: float | None) -> tuple[str, dict]:
        """A session advisory lock, freed by the server if the process dies. A ``timeout``
        becomes the session's ``lock_timeout``; without one, the server's own setting holds."""
        if timeout is not None:
            conn.exec_driver_sql(f"SET lock_timeout = '{max(1, round(timeout * 1000))}ms'")
        try:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
        except OperationalError as exc:
            if lock_refused(exc):
                raise waited(timeout) from None
            raise
        return "SELECT pg_advisory_unlock(:k)", {"k": LOCK_KEY}


def lock_refused(exc: OperationalError) -> bool:
    """PostgreSQL gave up on a lock (``lock_timeout`` or ``NOWAIT``)."""
    return getattr(exc.orig, "sqlstate", None) == NOT_AVAILABLE


def _lock(conn: Connection, wait: bool) -> bool:
    """Take ``dependents`` for this transaction alone; without ``wait``, only if no one holds it."""
    sql = "LOCK TABLE dependents IN ACCESS EXCLUSIVE MODE" + ("" if wait else " NOWAIT")
    try:
        with conn.begin_nested():  # a refused lock rolls back to here, not the whole import
            conn.exec_driver_sql(sql)
    except OperationalError as exc:
        if lock_refused(exc):
            return False
        raise
    return True


def _binary(table: sa.Table, typed: pa.Table) -> list[bytes]:
    """Binary COPY data: each value in the column's own wire format (the format carries no
    types, so every array must be exactly the column's type), in batches, so the server can
    take the first while the rest are sent."""
    wire = pa.table(
        [_wire(table.c[n].type, c) for n, c in zip(typed.column_names, typed.columns, strict=True)],
        names=typed.column_names,
    )
    encoder = ArrowToPostgresBinaryEncoder(wire.schema)
    parts = [encoder.write_header()]
    parts += [encoder.write_batch(batch) for batch in wire.to_batches(max_chunksize=COPY_BATCH)]
    return [*parts, encoder.finish()]


def _csv(typed: pa.Table) -> list[bytes]:
    """COPY of Arrow-written CSV, where pgpq cannot be installed: the server parses the text."""
    typed = pa.table(
        [arrow.uuid_text(c) if arrow.is_uuid_bytes(c.type) else c for c in typed.columns],
        names=typed.column_names,
    )
    buf = io.BytesIO()
    pacsv.write_csv(typed, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return [buf.getvalue()]


def _wire(kind: sa.types.TypeEngine, values: pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``values`` as the Arrow type pgpq encodes as the column's PostgreSQL type: ``integer``
    from int32 (int64 is ``bigint``), ``uuid`` from its 16 bytes (pgpq's ``bytea`` of 16 bytes
    is the same on the wire). Text, dates, times and booleans already match."""
    if isinstance(kind, sa.Uuid):
        return values if arrow.is_uuid_bytes(values.type) else arrow.uuid_bytes(values)
    if isinstance(kind, sa.BigInteger):
        return values.cast(pa.int64())
    if isinstance(kind, sa.SmallInteger):
        return values.cast(pa.int16())
    if isinstance(kind, sa.Integer):
        return values.cast(pa.int32())
    return values
