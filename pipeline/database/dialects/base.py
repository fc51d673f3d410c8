"""What every database does the same way; each dialect overrides only what differs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pipeline.database import arrow
from pipeline.database.faults import Fault
from pipeline.database.indexes import SetAside
from pipeline.errors import DatabaseError

if TYPE_CHECKING:
    from pipeline.database.load import Loader


@dataclass
class Prepared:
    """A frame made ready for one dialect's bulk write, with no database work yet: so one
    thread can prepare the next chunk while another writes this one."""

    table: sa.Table
    names: list[str]
    payload: Any  # what the dialect's ``send`` takes: the Arrow table of text, or encoded COPY data
    rows: int
    how: str = "text"  # the form of ``payload``, where a dialect has more than one


# The accepted rows (passed every row rule, named by no verdict), in customer order, with ids
# that ascend in that order, so every index of ``dependents`` is written front to back.
ACCEPTED = """FROM dependents_stage s
LEFT JOIN dependents_verdicts v ON v.source_row = s.source_row
WHERE s.candidate = 1 AND v.source_row IS NULL"""
INSERT_SQL = """
INSERT INTO dependents (id, {data}, created_at, updated_at, import_run_id, source_row, name_key)
SELECT {id}, {data}, {own} FROM (
  SELECT s.*, ROW_NUMBER() OVER (ORDER BY s.customer_id, s.source_row) AS seq
  {accepted}
) accepted
ORDER BY customer_id, source_row
""".replace("{accepted}", ACCEPTED)


# The execution option of a connection that only reads: it takes no write lock where the
# database would otherwise take one up front (SQLite), so it never waits for an import.
READS_ONLY = "dependents_reads_only"


class Dialect:
    """One database's ways: connecting, bulk writes, work tables, statistics, keys, the
    insert and the import lock. Instances hold no state: one per database kind."""

    name: ClassVar[str]
    backends: ClassVar[tuple[str, ...]]  # SQLAlchemy backend names this class serves
    # SQL of the n-th accepted row's id: the run's prefix (``:prefix``), then ``seq`` in hex.
    id_sql: ClassVar[str]
    big_result: ClassVar[str] = ""  # a hint that makes a large GROUP BY sort rather than hash
    stage_uuid_bytes: ClassVar[bool] = False  # stage customer ids as their 16 bytes
    stage_in_customer_order: ClassVar[bool] = False  # sort each chunk by customer before staging
    creates_tables_on_first_use: ClassVar[bool] = False

    # -- connecting

    def engine_url(self, parsed: URL) -> URL:
        """The URL with the driver this project ships for the database."""
        return parsed

    def check_url(self, parsed: URL) -> str | None:
        """Why the URL cannot work, if it cannot (said before connecting)."""
        return None

    def connect_args(self) -> dict[str, Any]:
        return {}

    def exists(self, url: URL) -> bool:
        """Whether the database is there to read, without creating it."""
        return True

    def tune(self, engine: Engine) -> None:
        """Session settings every connection of ``engine`` gets."""

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's own exceptions, which the bulk paths meet outside SQLAlchemy."""
        return ()

    def fault(self, exc: BaseException) -> Fault | None:
        """Which of the faults a user can act on the driver's exception is, if any."""
        return None

    def headline(self, exc: BaseException) -> str:
        """The driver's message, without its error number and punctuation around it."""
        return str(exc)

    # -- one import's session and work tables

    def start_import(self, conn: Connection) -> None:
        """Settings for the rest of the import's transaction."""

    def fresh_temp_table(self, conn: Connection, table: sa.Table) -> None:
        """(Re)create a ``TEMPORARY`` work table on this connection, inside its transaction."""
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table.name}")
        table.create(conn)

    def analyze(self, conn: Connection, table: sa.Table) -> None:
        """Give the planner a work table's real size and spread (temporary tables have none)."""

    @contextmanager
    def hash_joins(self, conn: Connection) -> Iterator[None]:
        """The statements inside join the file's own tables without nested loops."""
        yield

    # -- bulk writes

    def prepare(self, table: sa.Table, frame: pd.DataFrame) -> Prepared:
        """The client's half of a bulk write: every value typed, column-wise, as text."""
        typed = arrow.typed(table, frame)
        text = pa.table([arrow.as_text(c) for c in typed.columns], names=typed.column_names)
        return Prepared(table, typed.column_names, text, typed.num_rows)

    def send(self, conn: Connection, prepared: Prepared) -> None:
        """The database's half of a bulk write: one statement or stream for the whole frame."""
        raise NotImplementedError

    # -- keys and the insert

    def set_aside_before_staging(self, conn: Connection, rows: int, mode: str) -> SetAside:
        """Set the keys of ``dependents`` aside for a load of about ``rows`` rows, where the
        database can and it pays; by default they stay."""
        return SetAside()

    def insert(self, loader: Loader, rows: int) -> int:
        """Put the ``rows`` accepted rows into ``dependents``; returns how many went in."""
        return loader.insert_from_stage(INSERT_SQL)

    # -- updates and their history (values kept as text in ``dependent_changes``)

    text_type: ClassVar[str] = "TEXT"  # what a value is cast to, to be kept as text
    int_type: ClassVar[str] = "INTEGER"
    timestamp_type: ClassVar[str] = "TIMESTAMP"

    def differs(self, old: str, new: str) -> str:
        """SQL: ``new`` (never NULL here) is not the value ``old``, exactly (NULL ``old`` included)."""
        return f"{old} IS DISTINCT FROM {new}"

    def text_of(self, expr: str, kind: sa.types.TypeEngine) -> str:
        """SQL: a value as the text ``dependent_changes`` keeps (booleans as true/false)."""
        if isinstance(kind, sa.Boolean):
            return f"CASE WHEN {expr} THEN 'true' WHEN NOT {expr} THEN 'false' END"
        return f"CAST({expr} AS {self.text_type})"

    def value_of(self, expr: str, kind: sa.types.TypeEngine) -> str:
        """SQL: the text ``text_of`` made, as a value of ``kind`` again."""
        if isinstance(kind, sa.Boolean):
            return f"CASE {expr} WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"
        if isinstance(kind, sa.Integer):
            return f"CAST({expr} AS {self.int_type})"
        if isinstance(kind, sa.DateTime):
            return f"CAST({expr} AS {self.timestamp_type})"
        if isinstance(kind, sa.Date):
            return f"CAST({expr} AS DATE)"
        return expr

    def update_joined(self, sets: list[tuple[str, str]]) -> str:
        """SQL: set columns of ``dependents d`` from ``dependents_diff x``, joined by id."""
        assignments = ", ".join(f"{column} = {value}" for column, value in sets)
        return (
            f"UPDATE dependents AS d SET {assignments} FROM dependents_diff AS x WHERE d.id = x.dependent_id"
        )

    # -- locks

    def lock(self, conn: Connection, timeout: float | None) -> tuple[str, dict] | None:
        """Take this session's import lock, waiting at most ``timeout`` seconds (``None``: as
        long as it takes) for it and, for the rest of the session, for any other lock;
        returns the statement that frees it (``None``: the transaction's own lock is enough)."""
        return None

    @contextmanager
    def import_lock(self, conn: Connection, timeout: float | None) -> Iterator[None]:
        """One import at a time into this database; enter before the import's transaction,
        so the limit and duplicate rules hold across processes."""
        release = self.lock(conn, timeout)
        if release is None:
            yield
            return
        conn.commit()
        try:
            yield
        finally:
            release_lock(conn, *release)

    def foreign_key_violated(self, exc: IntegrityError) -> bool:
        """Whether the database refused a row (or a new constraint) for a foreign key."""
        return False

    @contextmanager
    def foreign_keys_set_wise(self, conn: Connection) -> Iterator[None]:
        """Foreign keys checked by the import's own joins rather than row by row, while inside."""
        yield


def waited(timeout: float | None) -> DatabaseError:
    """Another import held the lock for longer than ``timeout`` seconds."""
    return DatabaseError(
        f"timed out after {timeout:g} s waiting for another import into this database to finish",
        Fault.LOCK_TIMEOUT,
    )


def release_lock(conn: Connection, sql: str, params: dict) -> None:
    """Free a session lock after the import's transaction (a dropped connection freed it already)."""
    try:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(sa.text(sql), params)
        conn.commit()
    except SQLAlchemyError:
        pass
