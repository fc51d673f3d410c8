"""Database faults against the real servers: a connection cut off in each step, locks that
cannot be had, a statement time limit, a read-only database, conflicts with another session.
Each ends in exit 4 and one line, nothing half-written, the ledger telling what happened."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench import generate
from pipeline import run
from pipeline.database import db, load
from pipeline.errors import DatabaseError
from tests.helpers import AS_OF, execute, invoke, query, server_url

pytestmark = pytest.mark.slow

SERVERS = ["postgres", "mariadb"]


def loaded(url: str, tmp_path: Path, n: int = 3000) -> Path:
    """Customers loaded; returns a dependents file of ``n`` rows (about 5% of them bad)."""
    customers, dependents = generate.files(tmp_path / "data", n)
    assert invoke("customers", "load", customers, "--db", url).exit_code == 0
    return dependents


def import_(url: str, path: Path, tmp_path: Path, *extra: str):
    return invoke("import", path, "--db", url, "--as-of", AS_OF, "--report-dir", tmp_path / "r", *extra)


def cut_off(conn: sa.Connection) -> None:
    """End the import's own session from another one, as a DBA or a failover would."""
    url = conn.engine.url.render_as_string(hide_password=False)
    if conn.dialect.name == "postgresql":
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        query(url, "SELECT pg_terminate_backend(:p)", p=pid)
    else:
        session = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        execute(url, f"KILL CONNECTION {int(session)}")


def one_line(result) -> str:
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output, result.output
    return result.stderr


def nothing_stored(url: str) -> None:
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(0,)]
    assert query(url, "SELECT COUNT(*) FROM import_runs WHERE status = 'succeeded'") == [(0,)]


@pytest.mark.parametrize("kind", SERVERS)
def test_connection_cut_off_while_staging(kind, tmp_path, monkeypatch):
    url = server_url(kind)
    path = loaded(url, tmp_path)
    write, chunks = load.Loader.write, []

    def second_chunk_cut_off(self, prepared):
        chunks.append(1)
        if len(chunks) == 2:
            cut_off(self.conn)
        write(self, prepared)

    monkeypatch.setattr(load.Loader, "write", second_chunk_cut_off)
    result = import_(url, path, tmp_path, "--chunk-size", "1000")
    assert result.exit_code == 4
    assert one_line(result).endswith(": the connection to the server was lost\n")
    nothing_stored(url)
    # The failure is recorded on a new connection: the ledger says what happened to the file.
    assert query(url, "SELECT status FROM import_runs") == [("failed",)]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("kind", SERVERS)
def test_connection_cut_off_during_the_insert(kind, tmp_path, monkeypatch):
    url = server_url(kind)
    path = loaded(url, tmp_path)
    insert = load.Loader.insert

    def cut_off_first(self, rows):
        cut_off(self.conn)
        return insert(self, rows)

    monkeypatch.setattr(load.Loader, "insert", cut_off_first)
    result = import_(url, path, tmp_path)
    assert result.exit_code == 4
    assert one_line(result).endswith(": the connection to the server was lost\n")
    nothing_stored(url)
    assert query(url, "SELECT status FROM import_runs") == [("failed",)]


@pytest.mark.parametrize("kind", SERVERS)
def test_connection_cut_off_at_the_commit_says_the_outcome_is_unknown(kind, tmp_path, monkeypatch):
    url = server_url(kind)
    path = loaded(url, tmp_path)
    finish = run.Import.finish

    def cut_off_first(self, conn, trans):
        cut_off(conn)
        return finish(self, conn, trans)

    monkeypatch.setattr(run.Import, "finish", cut_off_first)
    result = import_(url, path, tmp_path)
    assert result.exit_code == 4
    said = one_line(result)
    assert "outcome unknown: `dependents runs show " in said
    run_id = said.split("runs show ")[1].split("`")[0]
    nothing_stored(url)
    # The server rolled back; the database, not the client, answers.
    shown = invoke("runs", "show", run_id, "--db", url)
    assert shown.exit_code == 2
    assert shown.stderr == f"Error: no run '{run_id}' in this database: nothing of it was committed\n"
    monkeypatch.undo()
    again = import_(url, path, tmp_path)  # so the same file may simply be imported again
    assert again.exit_code == 1, again.output


@pytest.mark.parametrize("kind", ["sqlite", *SERVERS])
def test_a_lock_held_by_another_session_is_waited_for_up_to_the_lock_timeout(kind, tmp_path):
    url = f"sqlite:///{tmp_path / 'locks.db'}" if kind == "sqlite" else server_url(kind)
    path = loaded(url, tmp_path, 300)
    engine = db.engine_for(url)
    with engine.connect() as other:
        hold_customers(other)
        began = time.monotonic()
        result = import_(url, path, tmp_path, "--lock-timeout", "1")
        waited = time.monotonic() - began
    engine.dispose()
    assert result.exit_code == 5
    assert one_line(result).endswith(
        ": gave up waiting for a lock another session holds (see --lock-timeout)\n"
    )
    assert 1 <= waited < 15
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(0,)]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_without_a_lock_timeout_the_import_waits_for_the_lock(kind, tmp_path):
    url = f"sqlite:///{tmp_path / 'locks.db'}" if kind == "sqlite" else server_url(kind)
    path = loaded(url, tmp_path, 300)
    engine = db.engine_for(url)
    with engine.connect() as other:
        hold_customers(other)
        threading.Timer(2, other.rollback).start()  # the other session lets go in 2 s
        began = time.monotonic()
        result = import_(url, path, tmp_path)
        waited = time.monotonic() - began
    engine.dispose()
    assert result.exit_code == 1, result.output
    assert waited >= 2
    assert query(url, "SELECT COUNT(*) FROM dependents")[0][0] > 250


def hold_customers(conn: sa.Connection) -> None:
    """Take locks an import needs, in an open transaction of ``conn``: SQLite's one writer,
    or the whole ``customers`` table on a server."""
    name = conn.dialect.name
    if name == "sqlite":
        conn.exec_driver_sql("SELECT 1")  # any statement begins a transaction: BEGIN IMMEDIATE
    elif name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
    else:
        conn.exec_driver_sql("LOCK TABLES customers WRITE")


@pytest.mark.parametrize("kind", SERVERS)
def test_a_statement_past_the_servers_time_limit(kind, tmp_path):
    url = server_url(kind)
    path = loaded(url, tmp_path, 300)
    limit = "statement_timeout=500" if kind == "postgres" else "max_statement_time=0.5"
    limited = with_session_setting(url, limit)
    with slow_inserts(url):
        result = import_(limited, path, tmp_path)
    assert result.exit_code == 4
    assert one_line(result).endswith(
        ": the server cancelled a statement that ran past its statement time limit\n"
    )
    nothing_stored(url)


@pytest.mark.parametrize("kind", ["sqlite", *SERVERS])
def test_a_read_only_database(kind, tmp_path):
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'ro.db'}"
        path = loaded(url, tmp_path, 300)
        read_only = f"sqlite:///file:{tmp_path / 'ro.db'}?mode=ro&uri=true"
    else:
        url = server_url(kind)
        path = loaded(url, tmp_path, 300)
        read_only = with_session_setting(
            url, "default_transaction_read_only=on" if kind == "postgres" else "TRANSACTION READ ONLY"
        )
    result = import_(read_only, path, tmp_path)
    assert result.exit_code == 4
    assert one_line(result).endswith(": the database is read-only for this connection\n")
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(0,)]
    assert query(url, "SELECT COUNT(*) FROM import_runs") == [(0,)]


@pytest.mark.parametrize("kind", SERVERS)
def test_a_conflict_with_another_session_is_retried(kind, tmp_path, monkeypatch):
    url = server_url(kind)
    path = loaded(url, tmp_path, 300)
    monkeypatch.setattr(run.faults, "CONFLICT_PAUSE", 0.01)
    with conflicts(url, times=2):
        result = import_(url, path, tmp_path)
    assert result.exit_code == 1, result.output
    accepted = int(result.stdout.split(" accepted")[0].split(", ")[-1])
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(accepted,)]
    statuses = query(url, "SELECT status, message FROM import_runs ORDER BY status")
    assert [s for s, _ in statuses] == ["failed", "failed", "succeeded"]
    assert "a deadlock or serialisation failure with another session" in statuses[0][1]


@pytest.mark.parametrize("kind", SERVERS)
def test_a_conflict_that_persists_is_given_up_after_a_few_attempts(kind, tmp_path, monkeypatch):
    url = server_url(kind)
    path = loaded(url, tmp_path, 300)
    monkeypatch.setattr(run.faults, "CONFLICT_PAUSE", 0.01)
    with conflicts(url, times=100):
        result = import_(url, path, tmp_path)
    assert result.exit_code == 4
    assert one_line(result).endswith(
        ": a deadlock or serialisation failure with another session; gave up after 3 attempts\n"
    )
    nothing_stored(url)


def with_session_setting(url: str, setting: str) -> str:
    """The URL with a setting every session it opens starts with."""
    if url.startswith("postgresql"):
        return f"{url}?options=-c%20{setting.replace('=', '%3D')}"
    return f"{url}?init_command=SET%20SESSION%20{setting.replace(' ', '%20').replace('=', '%3D')}"


class slow_inserts:
    """A trigger that makes each insert into ``dependents`` take a second."""

    def __init__(self, url: str):
        self.url = url

    def __enter__(self):
        if self.url.startswith("postgresql"):
            execute(
                self.url,
                "CREATE FUNCTION slow() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(2); "
                "RETURN NULL; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER slow AFTER INSERT ON dependents FOR EACH STATEMENT EXECUTE FUNCTION slow()",
            )
        else:
            execute(self.url, "CREATE TRIGGER slow BEFORE INSERT ON dependents FOR EACH ROW DO SLEEP(2)")

    def __exit__(self, *_):
        if self.url.startswith("postgresql"):
            execute(self.url, "DROP TRIGGER IF EXISTS slow ON dependents", "DROP FUNCTION IF EXISTS slow()")
        else:
            execute(self.url, "DROP TRIGGER IF EXISTS slow")


class conflicts:
    """A trigger that fails the first ``times`` inserts into ``dependents`` as a deadlock or
    serialisation failure would, counting in a place a rollback does not undo."""

    def __init__(self, url: str, times: int):
        self.url, self.times = url, times

    def __enter__(self):
        if self.url.startswith("postgresql"):
            execute(
                self.url,
                "CREATE SEQUENCE conflicts",
                "CREATE FUNCTION conflict() RETURNS trigger AS $$ BEGIN "
                f"IF nextval('conflicts') <= {self.times} THEN "
                "RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001'; END IF; "
                "RETURN NULL; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER conflict AFTER INSERT ON dependents FOR EACH STATEMENT "
                "EXECUTE FUNCTION conflict()",
            )
        else:
            execute(
                self.url,
                "CREATE TABLE conflicts (n INT) ENGINE=MyISAM",
                "INSERT INTO conflicts VALUES (0)",
                "CREATE TRIGGER conflict BEFORE INSERT ON dependents FOR EACH ROW BEGIN "
                f"IF (SELECT n FROM conflicts) < {self.times} THEN UPDATE conflicts SET n = n + 1; "
                "SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, "
                "MESSAGE_TEXT = 'Deadlock found when trying to get lock'; END IF; END",
            )

    def __exit__(self, *_):
        if self.url.startswith("postgresql"):
            execute(
                self.url,
                "DROP TRIGGER IF EXISTS conflict ON dependents",
                "DROP FUNCTION IF EXISTS conflict()",
                "DROP SEQUENCE IF EXISTS conflicts",
            )
        else:
            execute(self.url, "DROP TRIGGER IF EXISTS conflict", "DROP TABLE IF EXISTS conflicts")


@pytest.mark.parametrize("kind", SERVERS)
def test_dropping_the_tables_gives_up_on_a_session_that_holds_them(kind, tmp_path):
    """Tests and the bench start by dropping the tables: a session left running by a killed
    client must fail that start within the wait, not hang it."""
    url = server_url(kind)
    engine = db.engine_for(url)
    try:
        with engine.connect() as holder:
            hold_customers(holder)
            started = time.monotonic()
            with pytest.raises((sa.exc.OperationalError, DatabaseError)):
                db.drop_all(engine, wait=1)
            assert time.monotonic() - started < 30
    finally:
        engine.dispose()
