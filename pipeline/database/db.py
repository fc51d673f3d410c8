"""Engines, tables, locks and database errors for SQLite, PostgreSQL and MariaDB/MySQL.

UUIDs are stored in their canonical text form (PostgreSQL's native ``uuid``,
``CHAR(36)`` elsewhere) so the fast bulk paths that bypass SQLAlchemy write
exactly what SQLAlchemy reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    SQLAlchemyError,
)

from pipeline.database import dialects, migrate
from pipeline.database.dialects.base import READS_ONLY
from pipeline.database.faults import Fault
from pipeline.errors import DatabaseError, UsageError, shown

DEFAULT_URL = "sqlite:///dependents.db"
ENV_URL = "DEPENDENTS_DB_URL"

UUID = sa.Uuid(as_uuid=False).with_variant(sa.CHAR(36), "sqlite", "mysql", "mariadb")
# Compared byte for byte (it is casefolded already): binary/C collation is exact and fastest.
NAME_KEY = (
    sa.String(511)
    .with_variant(mysql.VARCHAR(511, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb")
    .with_variant(sa.String(511, collation="C"), "postgresql")
)

# A run's times to the microsecond everywhere (MariaDB's plain DATETIME keeps whole seconds):
# runs are ordered by them, and a revert tells later runs from earlier ones by them.
MOMENT = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

metadata = sa.MetaData()
RESULTS = ("inserted", "updated", "unchanged", "skipped")  # an accepted row's outcome

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
    sa.Column("started_at", MOMENT, nullable=False),
    sa.Column("finished_at", MOMENT),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False, default=0),
    sa.Column("accepted", sa.Integer, nullable=False, default=0),
    sa.Column("rejected", sa.Integer, nullable=False, default=0),
    sa.Column("source_run_id", sa.String(36)),
    sa.Column("columns", sa.Text),  # JSON list of the input's headers, for rebuilding reports
    sa.Column("message", sa.String(1000)),
    # What the accepted rows did (``accepted`` = inserted + updated + unchanged + skipped).
    *(sa.Column(n, sa.Integer, nullable=False, server_default="0") for n in RESULTS),
    sa.Column("reverted_at", MOMENT),  # set by ``runs revert``, with the status ``reverted``
    sa.Column("lookups", sa.String(500)),  # JSON: the version of each lookup list the run read
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
    # transaction by the same code and never deleted, and a check per row costs as much as all
    # the checks the data needs (docs/decisions.md).
    sa.Column("import_run_id", sa.String(36)),
    sa.Column("source_row", sa.Integer),
    # A row loaded from a corrected rejects report: the run and row of the file it first came
    # from (NULL: ``import_run_id`` and ``source_row`` are its origin).
    sa.Column("origin_run_id", sa.String(36)),
    sa.Column("origin_row", sa.Integer),
    # casefolded "first<US>last": the natural key's names, compared trimmed and case-insensitively
    sa.Column("name_key", NAME_KEY),
    sa.Index("ux_dependents_natural_key", "customer_id", "date_of_birth", "name_key", unique=True),
)

import_rejects = sa.Table(
    "import_rejects",
    metadata,
    # Not a foreign key, as ``dependents.import_run_id`` is not, and for the same reasons.
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("row", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("codes", sa.Text, nullable=False),
    sa.Column("messages", sa.Text, nullable=False),
    sa.Column("notifications", sa.Text, nullable=False),
    sa.Column("cells", sa.Text, nullable=False),  # JSON list, in the input's column order
)

dependent_changes = sa.Table(
    "dependent_changes",
    metadata,
    # One row per field an import changed in a stored dependent (``--on-existing update``),
    # ``updated_at`` included, so ``runs revert`` can put the old values back.
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("dependent_id", UUID, primary_key=True),
    sa.Column("field", sa.String(40), primary_key=True),
    sa.Column("source_row", sa.Integer, nullable=False),  # the file's row that changed it
    sa.Column("old_value", sa.Text),  # text, as ``Dialect.as_text`` spells each type
    sa.Column("new_value", sa.Text),
    sa.Column("changed_at", MOMENT, nullable=False),
    sa.Index("ix_dependent_changes_dependent", "dependent_id"),
)


lookup_lists = sa.Table(
    "lookup_lists",
    metadata,
    # One row per lookup (``schemas.lookups``): its version counts the loads that changed it.
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("loaded_at", MOMENT, nullable=False),
    sa.Column("source", sa.String(500), nullable=False),  # the file loaded, or "defaults"
)

lookup_values = sa.Table(
    "lookup_values",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),  # the file's order
    sa.Column("value", sa.String(100), nullable=False),
)


def masked(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def engine_for(url: str) -> Engine:
    """An engine with the driver this project ships for each database, tuned for bulk loads.
    A URL that cannot name a database here is a usage error (exit 2), not the database's."""
    if "://" not in url:
        where = shown(url.split("@")[-1])
        raise UsageError(f"database URL {where!r} is not a URL; for a SQLite file give sqlite:///{where}")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise UsageError(f"database URL {shown(url.split('@')[-1])!r} is not a valid URL") from None
    dialect = dialects.for_backend(parsed.get_backend_name())
    if dialect is None:
        raise UsageError(
            f"database {masked(url)}: not a database this importer writes to "
            "(sqlite:///FILE, postgresql://..., mysql://...)"
        )
    if problem := dialect.check_url(parsed):
        raise UsageError(f"database {masked(url)}: {problem}")
    try:
        engine = sa.create_engine(
            dialect.engine_url(parsed), connect_args=dialect.connect_args(), hide_parameters=True
        )
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise UsageError(f"database {masked(url)}: {exc}") from None
    dialect.tune(engine)
    return engine


def foreign_keys_set_wise(conn: Connection) -> AbstractContextManager[None]:
    """Foreign keys checked by the import's own joins while inside (see the dialect's)."""
    return dialects.of(conn).foreign_keys_set_wise(conn)


def fresh_temp_table(conn: Connection, table: sa.Table) -> None:
    """(Re)create a ``TEMPORARY`` work table on this connection, inside its transaction."""
    dialects.of(conn).fresh_temp_table(conn, table)


def init(engine: Engine) -> tuple[migrate.State, migrate.State]:
    """Bring the database's schema to the head revision (an empty one included)."""
    return migrate.upgrade(engine)


def ensure_schema(engine: Engine, create: bool = True) -> None:
    """Refuse a database whose schema is not this importer's; SQLite databases are created on
    first use (unless ``create`` is false: a command that only reads never creates one), a
    server database must be ``db init``-ed."""
    if not create and not dialects.of(engine).exists(engine.url):
        raise UsageError(
            f"database {masked(str(engine.url))}: there is no such database (nothing imported yet)"
        )
    with reading(engine) as conn:
        found = migrate.state(conn)
    if found.empty and create and dialects.of(engine).creates_tables_on_first_use:
        init(engine)
    elif found.revision != migrate.HEAD:
        raise migrate.SchemaBehind(f"database {masked(str(engine.url))}: {found.describe()}")


def reading(engine: Engine) -> Connection:
    """A connection for reading only: it never waits for another session's write lock."""
    return engine.connect().execution_options(**{READS_ONLY: True})


def drop_all(engine: Engine, wait: float = 120) -> None:
    """Drop the importer's tables and schema version (tests and the bench start from scratch),
    waiting at most ``wait`` seconds for the import lock and each table's lock: a server
    still running a killed client's statement fails the caller rather than hanging it."""
    with engine.connect() as conn, import_lock(conn, wait):
        metadata.drop_all(conn)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {migrate.VERSION_TABLE}")
        conn.commit()


def import_lock(conn: Connection, timeout: float | None) -> AbstractContextManager[None]:
    """Serialise imports into one database, so the limit and duplicate rules hold across
    processes: enter before the import's transaction, leave after its end; wait at most
    ``timeout`` seconds for it and for any lock after it (``None``: wait; see the dialect's)."""
    return dialects.of(conn).import_lock(conn, timeout)


@contextmanager
def errors(url: str) -> Iterator[None]:
    """Turn a driver's exception into one line naming the database (password masked) and,
    where the dialect recognises it, the fault a user can act on."""
    try:
        yield
    except (SQLAlchemyError, *_driver_errors()) as exc:  # the bulk paths talk to the drivers directly
        raise explained(url, exc) from None


def explained(url: str, exc: BaseException) -> BaseException:
    """A database's exception as the ``DatabaseError`` a user is shown; any other as it is."""
    if isinstance(exc, IntegrityError):
        # The driver's text can quote the offending values (names, SSNs): name the constraint only.
        return DatabaseError(f"database {masked(url)}: {_constraint(exc)}")
    if isinstance(exc, DBAPIError):
        return _failed(url, exc.orig, exc.connection_invalidated)
    if isinstance(exc, _driver_errors()):
        return _failed(url, exc)
    if isinstance(exc, SQLAlchemyError):
        return DatabaseError(f"database {masked(url)}: {type(exc).__name__}")
    return exc


def _failed(url: str, exc: BaseException, invalidated: bool = False) -> DatabaseError:
    dialect = _dialect_of(url)
    fault = Fault.DISCONNECTED if invalidated else dialect.fault(exc)
    said = fault.value if fault else _first_line(dialect.headline(exc), type(exc).__name__)
    return DatabaseError(f"database {masked(url)}: {said}", fault)


def _dialect_of(url: str) -> dialects.Dialect:
    try:
        return dialects.for_backend(make_url(url).get_backend_name()) or dialects.Dialect()
    except ArgumentError:
        return dialects.Dialect()


def _driver_errors() -> tuple[type[BaseException], ...]:
    return tuple(e for d in dialects.ALL for e in d.driver_errors())


def _first_line(text: str, kind: str) -> str:
    """The driver's headline only, with any quoted text that is not one of the importer's own
    names withheld: PostgreSQL's DETAIL lines, its "invalid input syntax ...: "<value>"" and
    MySQL's duplicate-entry text quote row values (PII)."""
    lines = text.strip().splitlines()
    head = lines[0] if lines else kind
    if "Duplicate entry" in head or "Key (" in head or "UNIQUE constraint" in head:
        return "a unique constraint was violated"
    return _QUOTED.sub(_ours_or_withheld, head)[:300]


_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|`[^`]*`")
_OURS = {
    *metadata.tables,
    *(c.name for t in metadata.tables.values() for c in t.columns),
    *(i.name for t in metadata.tables.values() for i in t.indexes),
}


def _ours_or_withheld(found: re.Match) -> str:
    quoted = found.group()
    return (
        quoted
        if quoted[1:-1] in _OURS or quoted[1:-1].startswith("dependents_")
        else quoted[0] + "…" + quoted[-1]
    )


def _constraint(exc: IntegrityError) -> str:
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return f"constraint {name} was violated" if name else "a database constraint was violated"
