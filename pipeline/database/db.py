"""Engines, tables, locks and database errors for SQLite, PostgreSQL and MariaDB/MySQL.

UUIDs are stored in their canonical text form (PostgreSQL's native ``uuid``,
``CHAR(36)`` elsewhere) so the fast bulk paths that bypass SQLAlchemy write
exactly what SQLAlchemy reads.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)

from pipeline.errors import DatabaseError

DEFAULT_URL = "sqlite:///dependents.db"
ENV_URL = "DEPENDENTS_DB_URL"
LOCK_NAME = "dependents_import"
PG_LOCK_KEY = 0x6465_7065_6E64  # "depend": one advisory lock for every import into a database
LOCK_WAIT_SECONDS = 3600  # how long an import waits for the one before it to finish
_WAITED = "timed out after {} s waiting for another import into this database to finish"

UUID = sa.Uuid(as_uuid=False).with_variant(sa.CHAR(36), "sqlite", "mysql", "mariadb")
# Compared byte for byte (it is casefolded already): binary/C collation is exact and fastest.
NAME_KEY = (
    sa.String(511)
    .with_variant(mysql.VARCHAR(511, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb")
    .with_variant(sa.String(511, collation="C"), "postgresql")
)

metadata = sa.MetaData()

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("first_name", sa.String(255)),
    sa.Column("last_name", sa.String(255)),
    sa.Column("email", sa.String(255)),
    sa.Column("phone", sa.String(50)),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

import_runs = sa.Table(
    "import_runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("profile", sa.String(40), nullable=False),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False, default=0),
    sa.Column("accepted", sa.Integer, nullable=False, default=0),
    sa.Column("rejected", sa.Integer, nullable=False, default=0),
    sa.Column("source_run_id", sa.String(36)),
    sa.Column("columns", sa.Text),  # JSON list of the input's headers, for rebuilding reports
    sa.Column("message", sa.String(1000)),
)

dependents = sa.Table(
    "dependents",
    metadata,
    sa.Column("id", UUID, primary_key=True),
    sa.Column("customer_id", UUID, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("first_name", sa.String(255)),
    sa.Column("middle_name", sa.String(255)),
    sa.Column("last_name", sa.String(255)),
    sa.Column("date_of_birth", sa.Date),
    sa.Column("gender", sa.String(50)),
    sa.Column("relationship_type", sa.String(20)),
    sa.Column("home_language", sa.String(100)),
    sa.Column("annual_income", sa.Integer),
    sa.Column("phone", sa.String(50)),
    sa.Column("email", sa.String(255)),
    sa.Column("ssn", sa.String(11)),
    sa.Column("is_covered", sa.Boolean),
    sa.Column("coverage_start_date", sa.Date),
    sa.Column("coverage_end_date", sa.Date),
    sa.Column("is_active", sa.Boolean),
    sa.Column("notes", sa.String(1000)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # The run that added the row. Not a foreign key: the run's ledger row is written in the same
    # transaction by the same code and never deleted, and a per-row check of it cost 4.6 s per
    # million rows on PostgreSQL (measured), as much as all the checks the data needs.
    sa.Column("import_run_id", sa.String(36)),
    sa.Column("source_row", sa.Integer),
    # casefolded "first<US>last": the natural key's names, compared trimmed and case-insensitively
    sa.Column("name_key", NAME_KEY),
    sa.Index("ux_dependents_natural_key", "customer_id", "date_of_birth", "name_key", unique=True),
)

import_rejects = sa.Table(
    "import_rejects",
    metadata,
    # Not a foreign key, as ``dependents.import_run_id`` is not: the run's row is written in the
    # same transaction by the same code and never deleted, and PostgreSQL's check of each row
    # took a million-row file's 49,675 rejected rows from 240 to 477 ms (psql).
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("row", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("codes", sa.Text, nullable=False),
    sa.Column("messages", sa.Text, nullable=False),
    sa.Column("notifications", sa.Text, nullable=False),
    sa.Column("cells", sa.Text, nullable=False),  # JSON list, in the input's column order
)


def resolve_url(url: str | None) -> str:
    return url or os.environ.get(ENV_URL) or DEFAULT_URL


def masked(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def engine_for(url: str) -> Engine:
    """An engine with the driver this project ships for each database, tuned for bulk loads."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"database URL {url.split('@')[-1]!r} is not a valid URL") from None
    backend = parsed.get_backend_name()
    if backend in ("mysql", "mariadb") and not parsed.database:  # PostgreSQL defaults to the user's
        raise DatabaseError(f"database {masked(url)}: the URL names no database (mysql://USER@HOST/DATABASE)")
    args: dict = {}
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend in ("mysql", "mariadb") and "+" not in parsed.drivername:
        parsed = parsed.set(drivername=f"{backend}+pymysql")
    if backend == "postgresql":
        args = {"connect_timeout": 10, "application_name": "dependents"}
    elif backend in ("mysql", "mariadb"):
        # local_infile: the bulk path (``LOAD DATA LOCAL``) sends files this process writes itself.
        args = {"connect_timeout": 10, "charset": "utf8mb4", "local_infile": True}
    elif backend == "sqlite":
        args = {"timeout": 60}
    try:
        engine = sa.create_engine(parsed, connect_args=args)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise DatabaseError(f"database {masked(url)}: {exc}") from None
    if backend == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    """WAL and one writer at a time: ``BEGIN IMMEDIATE`` takes the write lock up front, so two
    imports never interleave, and a killed process leaves only an uncommitted WAL tail."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event below emits BEGIN itself
        cur = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=60000",
            "cache_size=-65536",
            "temp_store=FILE",  # an import stages its whole file in a temporary table: not in RAM
        ):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def foreign_keys_set_wise(conn: Connection) -> Iterator[None]:
    """SQLite: no per-row foreign-key check on this connection while inside; enter before the
    import's transaction (SQLite switches it only outside one) and leave after it ends.

    SQLite looks up each inserted dependent's customer one at a time: copying a million stored
    dependents into a table like theirs took 4.3 s with that check and 1.9 s without. The
    import checks the same thing set-wise instead: the decision's join refuses every row whose
    customer is unknown, and after the insert one more join confirms that every row it added
    has its customer (``pipeline.database.load``), all inside one write-locked transaction in which no
    one else can delete a customer. Every other connection, and every other command, keeps
    SQLite's own check."""
    if dialect(conn) != "sqlite":
        yield
        return
    raw = conn.connection.dbapi_connection
    raw.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        try:
            raw.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error:
            conn.invalidate()  # never back into the pool unchecked


def dialect(conn: Connection) -> str:
    name = conn.dialect.name
    return "mysql" if name in ("mysql", "mariadb") else name


def fresh_temp_table(conn: Connection, table: sa.Table) -> None:
    """(Re)create a ``TEMPORARY`` staging table on this connection, inside its transaction."""
    drop = {
        "postgresql": "DROP TABLE IF EXISTS pg_temp.{}",
        "mysql": "DROP TEMPORARY TABLE IF EXISTS {}",
    }.get(dialect(conn), "DROP TABLE IF EXISTS temp.{}")
    conn.exec_driver_sql(drop.format(table.name))
    table.create(conn)


def init(engine: Engine) -> None:
    """Create the tables that do not exist yet."""
    metadata.create_all(engine, checkfirst=True)


def ensure_schema(engine: Engine) -> None:
    """SQLite databases are created on first use; a server database must be ``db init``-ed."""
    if engine.dialect.name == "sqlite":
        init(engine)
        return
    missing = set(metadata.tables) - set(sa.inspect(engine).get_table_names())
    if missing:
        raise DatabaseError(
            f"database {masked(str(engine.url))}: table(s) {', '.join(sorted(missing))} missing; "
            "run `dependents db init`"
        )


@contextmanager
def import_lock(conn: Connection) -> Iterator[None]:
    """Serialise imports into one database, so the limit and duplicate rules hold across processes.

    Enter *before* the import's transaction and leave after its commit or rollback: a PostgreSQL
    session advisory lock or a MariaDB/MySQL named lock, both freed by the server if the process
    dies. SQLite needs none: ``BEGIN IMMEDIATE`` holds its writer lock for the transaction.
    """
    kind = dialect(conn)
    if kind == "postgresql":
        _pg_advisory_lock(conn)
    elif kind == "mysql":
        got = conn.execute(sa.text("SELECT GET_LOCK(:n, :s)"), {"n": LOCK_NAME, "s": LOCK_WAIT_SECONDS})
        if got.scalar() != 1:
            raise DatabaseError(_WAITED.format(LOCK_WAIT_SECONDS))
    if conn.in_transaction():
        conn.commit()
    try:
        yield
    finally:
        _unlock(conn, kind)


def _pg_advisory_lock(conn: Connection) -> None:
    """Wait for the lock at most ``LOCK_WAIT_SECONDS``, as on MariaDB: a stuck import must not
    make every later cron run queue behind it for ever."""
    conn.exec_driver_sql(f"SET lock_timeout = '{int(LOCK_WAIT_SECONDS * 1000)}ms'")
    try:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": PG_LOCK_KEY})
    except OperationalError as exc:
        if lock_refused(exc):
            raise DatabaseError(_WAITED.format(LOCK_WAIT_SECONDS)) from None
        raise
    conn.exec_driver_sql("RESET lock_timeout")


def lock_refused(exc: OperationalError) -> bool:
    """PostgreSQL gave up on a lock (``lock_timeout`` or ``NOWAIT``): SQLSTATE 55P03."""
    return getattr(exc.orig, "sqlstate", None) == "55P03"  # lock_not_available


def foreign_key_violated(exc: IntegrityError) -> bool:
    """PostgreSQL refused a row (or a new constraint) for its foreign key: SQLSTATE 23503."""
    return getattr(exc.orig, "sqlstate", None) == "23503"  # foreign_key_violation


def _unlock(conn: Connection, kind: str) -> None:
    if kind not in ("postgresql", "mysql"):
        return
    try:
        if conn.in_transaction():
            conn.rollback()
        if kind == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
        else:
            conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": LOCK_NAME})
        conn.commit()
    except SQLAlchemyError:
        pass  # a dropped connection has freed the lock with the session


@contextmanager
def errors(url: str) -> Iterator[None]:
    """Turn a driver's exception into one line naming the database (password masked)."""
    try:
        yield
    except IntegrityError as exc:
        # The driver's text can quote the offending values (names, SSNs): name the constraint only.
        raise DatabaseError(f"database {masked(url)}: {_constraint(exc)}") from None
    except DBAPIError as exc:
        raise DatabaseError(f"database {masked(url)}: {_first_line(exc.orig)}") from None
    except _driver_errors() as exc:  # the bulk paths talk to the drivers directly
        raise DatabaseError(f"database {masked(url)}: {_first_line(exc)}") from None
    except SQLAlchemyError as exc:
        raise DatabaseError(f"database {masked(url)}: {type(exc).__name__}") from None


def _driver_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    import psycopg
    import pymysql

    return (sqlite3.Error, psycopg.Error, pymysql.err.Error)


def _first_line(exc: BaseException) -> str:
    """The driver's headline only: PostgreSQL's DETAIL lines and MySQL's duplicate-entry text
    quote row values (PII)."""
    text = str(exc).strip().splitlines()
    head = text[0] if text else type(exc).__name__
    if "Duplicate entry" in head or "Key (" in head or "UNIQUE constraint" in head:
        return "a unique constraint was violated"
    return head[:300]


def _constraint(exc: IntegrityError) -> str:
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return f"constraint {name} was violated" if name else "a database constraint was violated"
