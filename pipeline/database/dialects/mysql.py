"""MariaDB and MySQL: ``LOAD DATA LOCAL INFILE`` where both ends allow it, a named lock, and
always row-by-row keys (an ``ALTER TABLE`` would commit the open transaction)."""

from __future__ import annotations

import math
import tempfile
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from pymysql.constants import CLIENT
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from pipeline.database import arrow
from pipeline.database.dialects.base import Dialect, Prepared, waited
from pipeline.database.faults import Fault

LOCK_NAME = "dependents_import"
WAIT_FOREVER = 31_536_000  # seconds: the longest lock wait MariaDB accepts
# Whatever the server's configuration: a value that does not fit is an error, never cut or
# turned into a zero date in silence.
# Server error numbers -> fault (PyMySQL's own 2006/2013 and MariaDB's 1927 are a lost connection).
FAULTS = {
    1205: Fault.LOCK_TIMEOUT,  # innodb_lock_wait_timeout
    1969: Fault.STATEMENT_TIMEOUT,  # MariaDB's max_statement_time
    3024: Fault.STATEMENT_TIMEOUT,  # MySQL's max_execution_time
    1290: Fault.READ_ONLY,  # --read-only
    1792: Fault.READ_ONLY,  # a READ ONLY transaction
    1836: Fault.READ_ONLY,  # read-only mode
    1213: Fault.CONFLICT,  # deadlock
    2006: Fault.DISCONNECTED,
    2013: Fault.DISCONNECTED,
    2055: Fault.DISCONNECTED,
    1927: Fault.DISCONNECTED,  # the connection was killed
}
SQL_MODE = "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"


class MySQL(Dialect):
    name = "mysql"
    backends = ("mysql", "mariadb")
    id_sql = "CONCAT(:prefix, LPAD(LOWER(HEX(seq)), 12, '0'))"
    # Its GROUP BY goes through an internal temporary table that spills to disk at 16 MB;
    # this hint makes it sort instead.
    big_result = "SQL_BIG_RESULT"

    text_type = "CHAR"
    int_type = "SIGNED"
    timestamp_type = "DATETIME"

    def differs(self, old: str, new: str) -> str:
        """Compared as bytes: the table's collation would take ``male`` and ``Male`` as equal."""
        return f"NOT (CAST({old} AS BINARY) <=> CAST({new} AS BINARY))"

    def update_joined(self, sets: list[tuple[str, str]]) -> str:
        assignments = ", ".join(f"d.{column} = {value}" for column, value in sets)
        return f"UPDATE dependents d JOIN dependents_diff x ON d.id = x.dependent_id SET {assignments}"

    def engine_url(self, parsed: URL) -> URL:
        if "+" in parsed.drivername:
            return parsed
        return parsed.set(drivername=f"{parsed.get_backend_name()}+pymysql")

    def check_url(self, parsed: URL) -> str | None:
        if not parsed.database:  # PostgreSQL defaults to the user's; MariaDB has no default
            return "the URL names no database (mysql://USER@HOST/DATABASE)"
        return None

    def connect_args(self) -> dict[str, Any]:
        # local_infile: the bulk path (``LOAD DATA LOCAL``) sends files this process writes itself.
        return {"connect_timeout": 10, "charset": "utf8mb4", "local_infile": True}

    def tune(self, engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def on_connect(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(f"SET SESSION sql_mode = '{SQL_MODE}'")
            cur.close()

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        import pymysql

        return (pymysql.err.Error,)

    def fault(self, exc: BaseException) -> Fault | None:
        import pymysql

        if isinstance(exc, pymysql.err.InterfaceError):  # PyMySQL's "connection already closed"
            return Fault.DISCONNECTED
        number = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        return FAULTS.get(number)

    def headline(self, exc: BaseException) -> str:
        """PyMySQL's text is ``(number, 'message')``: the message alone."""
        if len(exc.args) == 2 and isinstance(exc.args[1], str):
            return exc.args[1]
        return str(exc)

    def fresh_temp_table(self, conn: Connection, table: sa.Table) -> None:
        conn.exec_driver_sql(f"DROP TEMPORARY TABLE IF EXISTS {table.name}")
        table.create(conn)

    def send(self, conn: Connection, prepared: Prepared) -> None:
        """``LOAD DATA LOCAL INFILE`` of Arrow-written CSV where the server allows it, else
        ``executemany``, which PyMySQL turns into multi-row INSERTs."""
        raw = conn.connection.dbapi_connection
        if _local_infile(raw):
            _load_data(raw, prepared.table, prepared.payload)
            return
        marks = ", ".join(["%s"] * len(prepared.names))
        sql = f"INSERT INTO {prepared.table.name} ({', '.join(prepared.names)}) VALUES ({marks})"
        cur = raw.cursor()
        try:
            cur.executemany(sql, arrow.rows(prepared.payload))
        finally:
            cur.close()

    def lock(self, conn: Connection, timeout: float | None) -> tuple[str, dict]:
        """A named lock, freed by the server if the process dies. ``timeout`` also bounds the
        session's row and table lock waits (whole seconds); without one they wait a year,
        the longest MariaDB takes, not its default 50 s."""
        seconds = WAIT_FOREVER if timeout is None else max(1, math.ceil(timeout))
        conn.exec_driver_sql(
            f"SET SESSION innodb_lock_wait_timeout = {seconds}, lock_wait_timeout = {seconds}"
        )
        wait = WAIT_FOREVER if timeout is None else timeout
        got = conn.execute(sa.text("SELECT GET_LOCK(:n, :s)"), {"n": LOCK_NAME, "s": wait})
        if got.scalar() != 1:
            raise waited(timeout)
        return "SELECT RELEASE_LOCK(:n)", {"n": LOCK_NAME}


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


def _load_data(raw: Any, table: sa.Table, text: pa.Table) -> None:
    """Arrow-written CSV through ``LOAD DATA LOCAL INFILE``, from a private temporary file.
    Empty fields are NULL: the pipeline never stores an empty string. Booleans go as 1/0."""
    text = pa.table(
        [c.cast(pa.int8()) if pa.types.is_boolean(c.type) else c for c in text.columns],
        names=text.column_names,
    )
    names = text.column_names
    fields = ", ".join(f"@v{i}" for i in range(len(names)))
    sets = ", ".join(f"{n} = NULLIF(@v{i}, '')" for i, n in enumerate(names))
    sql = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {table.name} CHARACTER SET utf8mb4 "
        "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
        f"LINES TERMINATED BY '\\n' ({fields}) SET {sets}"
    )
    with tempfile.NamedTemporaryFile(prefix="dependents-", suffix=".csv") as tmp:  # mode 0600
        pacsv.write_csv(text, tmp.name, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        cur = raw.cursor()
        try:
            cur.execute(sql, (tmp.name,))
        finally:
            cur.close()
