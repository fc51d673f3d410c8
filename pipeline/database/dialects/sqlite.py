"""SQLite: one writer at a time (``BEGIN IMMEDIATE``), multi-row ``executemany``, the
natural-key index set aside for a large insert, the foreign key checked set-wise."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from pipeline.database import arrow, indexes
from pipeline.database.dialects.base import ACCEPTED, READS_ONLY, Dialect, Prepared
from pipeline.database.faults import Fault
from pipeline.database.indexes import Keys, SetAside
from pipeline.errors import DatabaseError

if TYPE_CHECKING:
    from pipeline.database.load import Loader

WAIT_FOREVER_MS = 2**31 - 1  # the longest busy timeout SQLite takes: 24 days
FAULTS = {sqlite3.SQLITE_BUSY: Fault.LOCK_TIMEOUT, sqlite3.SQLITE_READONLY: Fault.READ_ONLY}
ROWS_AT_ONCE = 200  # rows one INSERT carries: sqlite3 lets go of the GIL once per statement
PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "foreign_keys=ON",
    "busy_timeout=60000",
    "cache_size=-65536",
    "temp_store=FILE",  # an import stages its whole file in a temporary table: not in RAM
)

# SQLite sorts the rows it inserts whole, through its temporary file: cheaper to sort the
# accepted rows' keys first, then read each staged row by its rowid in that order.
ORDER_SQL = """
INSERT INTO dependents_order (stage_rowid)
SELECT s.rowid {accepted}
ORDER BY s.customer_id, s.source_row
""".replace("{accepted}", ACCEPTED)
ORDERED_INSERT_SQL = """
INSERT INTO dependents (id, {data}, created_at, updated_at, import_run_id, source_row, name_key)
SELECT {id}, {data}, {own} FROM (
  SELECT s.*, o.rowid AS seq FROM dependents_order o JOIN dependents_stage s ON s.rowid = o.stage_rowid
) accepted
ORDER BY seq
"""
# With the natural-key index set aside: the accepted rows in the order staged (each chunk's in
# customer order), each id counting its row's place in the stage, so the stage is read front
# to back and the table and its primary key are only appended to.
STAGE_ORDER_SQL = """
INSERT INTO dependents (id, {data}, created_at, updated_at, import_run_id, source_row, name_key)
SELECT {id}, {data}, {own} FROM (
  SELECT s.*, s.rowid AS seq {accepted}
  ORDER BY s.rowid
) accepted
""".replace("{accepted}", ACCEPTED)
# The foreign key, checked set-wise after the insert: the dependents without their customer.
# After a rebuild, the whole table through the rebuilt index (it leads with the customer);
# otherwise only the rows the insert added (rowids above the largest before it; the write
# lock keeps anyone else's out).
ORPHANS_SQL = {
    Keys.REBUILT: """
SELECT COUNT(*) FROM dependents d LEFT JOIN customers c ON c.id = d.customer_id WHERE c.id IS NULL
""",
    Keys.KEPT: """
SELECT COUNT(*) FROM dependents d
WHERE d.rowid > :before AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = d.customer_id)
""",
}
accepted_order = sa.Table(
    "dependents_order",  # the accepted rows' staged rowids; its own rowid is their seq
    sa.MetaData(),
    sa.Column("stage_rowid", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)


class SQLite(Dialect):
    name = "sqlite"
    backends = ("sqlite",)
    id_sql = "(:prefix || printf('%012x', seq))"
    stage_in_customer_order = True  # no hash join: it looks each customer up in an index, in order
    creates_tables_on_first_use = True

    def differs(self, old: str, new: str) -> str:
        return f"{old} IS NOT {new}"

    def value_of(self, expr: str, kind: sa.types.TypeEngine) -> str:
        """Dates and times are kept as ISO text already (a CAST would make them numbers)."""
        if isinstance(kind, sa.Date | sa.DateTime):
            return expr
        return super().value_of(expr, kind)

    def connect_args(self) -> dict[str, Any]:
        return {"timeout": 60}

    def exists(self, url: URL) -> bool:
        """A file database is there when its file is (connecting would create it)."""
        return not url.database or url.database == ":memory:" or Path(url.database).exists()

    def tune(self, engine: Engine) -> None:
        """WAL and one writer at a time: ``BEGIN IMMEDIATE`` takes the write lock up front, so
        two imports never interleave, and a killed process leaves only an uncommitted WAL tail."""

        @event.listens_for(engine, "connect")
        def on_connect(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # the "begin" event below emits BEGIN itself
            cur = dbapi_conn.cursor()
            for pragma in PRAGMAS:
                cur.execute(f"PRAGMA {pragma}")
            cur.close()

        @event.listens_for(engine, "begin")
        def on_begin(conn: Connection) -> None:
            reads_only = conn.get_execution_options().get(READS_ONLY)
            conn.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def lock(self, conn: Connection, timeout: float | None) -> None:
        """``BEGIN IMMEDIATE`` is the lock: ``timeout`` becomes how long it waits for another
        writer (set on the driver's connection, so no transaction begins before it)."""
        ms = WAIT_FOREVER_MS if timeout is None else round(timeout * 1000)
        conn.connection.dbapi_connection.execute(f"PRAGMA busy_timeout = {ms}")
        return None

    def fault(self, exc: BaseException) -> Fault | None:
        primary = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # extended codes share it
        return FAULTS.get(primary)

    def analyze(self, conn: Connection, table: sa.Table) -> None:
        conn.exec_driver_sql(f"ANALYZE {table.name}")

    def send(self, conn: Connection, prepared: Prepared) -> None:
        """``executemany`` of ``ROWS_AT_ONCE``-row INSERTs, then the rest one by one: one
        statement per row would hand the GIL over a million times."""
        raw = conn.connection.dbapi_connection
        limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        per = max(1, min(ROWS_AT_ONCE, limit // len(prepared.names)))
        row = f"({', '.join(['?'] * len(prepared.names))})"
        sql = f"INSERT INTO {prepared.table.name} ({', '.join(prepared.names)}) VALUES {row}"
        rows = arrow.rows(prepared.payload)
        grouped = (tuple(chain.from_iterable(islice(rows, per))) for _ in range(prepared.rows // per))
        cur = raw.cursor()
        try:
            cur.executemany(sql + f", {row}" * (per - 1), grouped)
            cur.executemany(sql, rows)  # what is left: fewer than ``per``
        finally:
            cur.close()

    def insert(self, loader: Loader, rows: int) -> int:
        """With the natural-key index set aside when that pays (decided now: the rules looked
        stored twins up by it), the rows in the order staged and the index built again; else
        in customer order. Then the foreign key, set-wise."""
        conn = loader.conn
        loader.set_aside = _set_aside(conn, rows, loader.rebuild_indexes)
        if loader.set_aside.unindexed:
            inserted = loader.insert_from_stage(STAGE_ORDER_SQL)
            loader.set_aside.restore(conn)
            orphans = conn.exec_driver_sql(ORPHANS_SQL[Keys.REBUILT]).scalar_one()
        else:
            before = conn.exec_driver_sql("SELECT COALESCE(MAX(rowid), 0) FROM dependents").scalar_one()
            self.fresh_temp_table(conn, accepted_order)
            conn.exec_driver_sql(ORDER_SQL)  # rowids 1, 2, ... in that order
            inserted = loader.insert_from_stage(ORDERED_INSERT_SQL)
            orphans = conn.execute(sa.text(ORPHANS_SQL[Keys.KEPT]), {"before": before}).scalar_one()
        if orphans:
            which = "1 dependent" if orphans == 1 else f"{orphans} dependents"
            raise DatabaseError(
                f"{which} would have no customer (foreign key dependents.customer_id); nothing was committed"
            )
        return inserted

    @contextmanager
    def foreign_keys_set_wise(self, conn: Connection) -> Iterator[None]:
        """No per-row foreign-key check on this connection while inside; enter before the
        import's transaction (SQLite switches it only outside one). The import checks the same
        thing set-wise, inside one write-locked transaction: the decision refuses unknown
        customers and ``insert`` confirms every added row has its customer. Every other
        connection and command keeps SQLite's own check."""
        raw = conn.connection.dbapi_connection
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            yield
        finally:
            try:
                raw.execute("PRAGMA foreign_keys = ON")
            except sqlite3.Error:
                conn.invalidate()  # never back into the pool unchecked


def _set_aside(conn: Connection, rows: int, mode: str) -> SetAside:
    """Drop the natural-key index, to be created again from its own definition, if it pays.
    The primary and foreign keys belong to the table. No lock is needed: ``BEGIN IMMEDIATE``
    holds the one writer's lock, and readers see the table as it was until the commit."""
    plan = SetAside()
    if not indexes.wanted(conn, rows, mode):
        return plan
    sql = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :index"
    create = conn.execute(sa.text(sql), {"index": indexes.NATURAL_KEY}).scalar()
    if create:
        conn.exec_driver_sql(f"DROP INDEX {indexes.NATURAL_KEY}")
        plan.restore_sql.append(create)
    plan.state = Keys.SET_ASIDE
    return plan
