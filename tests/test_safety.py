"""Real processes: killed mid-load, cut off from the database, or racing another import.
Each leaves the database either untouched or consistent, and the next run succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from bench import generate
from pipeline.database import db
from pipeline.database.dialects import mysql, postgresql
from tests.helpers import AS_OF, customers_csv, invoke, query, server_url, write_csv

pytestmark = pytest.mark.slow

CUSTOMER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
HEADER = ["customerId", "firstName", "lastName", "birthDate"]


def start_import(
    url: str, path: Path, report_dir: Path, *extra: str, env: dict | None = None
) -> subprocess.Popen:
    args = [sys.executable, "-m", "pipeline.cli", "import", str(path), "--db", url, "--as-of", AS_OF]
    args += ["--report-dir", str(report_dir), *extra]
    env = {**os.environ, **(env or {})}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, (
            f"the import finished before it could be interrupted: {proc.communicate()}"
        )
        assert time.monotonic() < deadline, "the import never started loading"
        time.sleep(0.05)


def inserting(url: str, table: str = "dependents") -> bool:
    """The import has begun writing rows into ``table`` (copying them in while it stages,
    or moving them from the stage) and has not committed: its transaction holds the table's
    row-exclusive lock from its first write to its end. Asking whether a write is running at
    the instant of the poll missed them all when every chunk's copy was quicker than the poll."""
    sql = (
        "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE a.application_name = 'dependents' AND l.pid <> pg_backend_pid() "
        "AND l.relation = to_regclass(:table) AND l.mode = 'RowExclusiveLock' AND l.granted"
    )
    return query(url, sql, table=table)[0][0] > 0


GUARDS_SQL = (
    "SELECT to_regclass('ux_dependents_natural_key') IS NOT NULL, COUNT(*) FROM pg_constraint "
    "WHERE conrelid = 'dependents'::regclass AND contype = 'f'"
)


def big_file(tmp_path: Path, url: str, n: int = 200_000) -> Path:
    customers, dependents = generate.files(tmp_path / "data", n)
    assert invoke("customers", "load", customers, "--db", url).exit_code == 0
    return dependents


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_sigkill_mid_load_leaves_the_database_as_it_was(kind, tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}" if kind == "sqlite" else server_url("postgres")
    path = big_file(tmp_path, url)
    proc = start_import(url, path, tmp_path / "r1", "--chunk-size", "5000")
    if kind == "sqlite":
        wal = tmp_path / "kill.db-wal"
        wait_for(lambda: wal.exists() and wal.stat().st_size > 4_000_000, proc)
    else:
        wait_for(lambda: inserting(url), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(0,)]
    assert query(url, "SELECT COUNT(*) FROM import_runs") == [(0,)]
    if kind == "postgres":  # killed after setting the natural-key index and foreign key aside
        assert query(url, GUARDS_SQL) == [(True, 1)]
    again = start_import(url, path, tmp_path / "r2")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 1, err  # the generated file has ~5% bad rows
    accepted = int(out.split(" accepted")[0].split(", ")[-1])
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(accepted,)]
    assert accepted > 180_000


def test_sigkill_mid_update_leaves_every_stored_dependent_as_it_was(tmp_path):
    url = server_url("postgres")
    path = big_file(tmp_path, url)
    first = start_import(url, path, tmp_path / "r1")
    assert first.wait(timeout=300) == 1
    frame = pd.read_csv(path, dtype="str", keep_default_na=False)
    changed = generate.write_csv(frame.assign(phone="555-0100"), tmp_path / "changed.csv")
    snapshot = "SELECT id, phone, notes, created_at, updated_at FROM dependents ORDER BY id"
    before = query(url, snapshot)
    proc = start_import(url, changed, tmp_path / "r2", "--on-existing", "update", "--chunk-size", "5000")
    wait_for(lambda: inserting(url, "dependent_changes"), proc)  # the changes are being written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert query(url, snapshot) == before
    assert query(url, "SELECT COUNT(*) FROM dependent_changes") == [(0,)]
    assert query(url, "SELECT COUNT(*) FROM import_runs") == [(1,)]


def test_sigterm_mid_load_rolls_back_cleans_up_and_says_so(tmp_path):
    """What cron's timeout or ``systemctl stop`` sends: the import unwinds as after Ctrl-C."""
    url = server_url("postgres")
    path = big_file(tmp_path, url)
    work = tmp_path / "tmp"
    work.mkdir()
    proc = start_import(url, path, tmp_path / "r1", "--chunk-size", "5000", env={"TMPDIR": str(work)})
    wait_for(lambda: inserting(url), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143
    assert err == "Terminated: nothing was committed.\n"
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(0,)]
    ((status, message, read),) = query(url, "SELECT status, message, rows_read FROM import_runs")
    assert status == "interrupted" and read > 0
    assert message == f"stopped by SIGTERM after {read:,} rows read; nothing committed"
    assert query(url, GUARDS_SQL) == [(True, 1)]
    assert list(work.iterdir()) == []  # the spool (raw cells) and openpyxl's sheet file are gone
    assert not (tmp_path / "r1").exists()


def test_dropped_connection_is_exit_4_one_line_and_nothing_written(tmp_path):
    url = server_url("postgres")
    path = big_file(tmp_path, url)
    proc = start_import(url, path, tmp_path / "r1", "--chunk-size", "5000")
    wait_for(lambda: inserting(url), proc)
    others = "application_name = 'dependents' AND pid <> pg_backend_pid()"
    query(url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {others}")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 4
    assert err.startswith("Error: database postgresql://postgres@127.0.0.1")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(0,)]
    # The reports were being written beside the insert: none is left looking finished.
    assert not (tmp_path / "r1").exists()


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mariadb"])
def test_two_imports_at_once_keep_the_limit_and_uniqueness(kind, tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}" if kind == "sqlite" else server_url(kind)
    customers = generate.customer_ids(400)
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", list(customers)), "--db", url)
    header = ["customerId", "firstName", "lastName", "birthDate"]

    def rows(kids: range) -> list[list[str]]:
        return [[c, f"Kid{k}", "Race", f"2015-01-{k:02d}"] for c in customers for k in kids]

    a = write_csv(tmp_path / "a.csv", header, rows(range(1, 4)))  # kids 1-3
    b = write_csv(tmp_path / "b.csv", header, rows(range(3, 6)))  # kids 3-5: kid 3 in both
    procs = [start_import(url, f, tmp_path / f.stem, "--chunk-size", "200") for f in (a, b)]
    results = [p.communicate(timeout=300) for p in procs]
    # Whichever commits first takes kids 1-3 (or 3-5) whole; the other gets one more and is refused the rest.
    assert sorted(p.returncode for p in procs) == [0, 1], results
    per_customer = query(url, "SELECT customer_id, COUNT(*) FROM dependents GROUP BY customer_id")
    assert len(per_customer) == 400 and {n for _, n in per_customer} == {4}
    twins = query(
        url,
        "SELECT COUNT(*) FROM (SELECT customer_id, date_of_birth, name_key FROM dependents "
        "GROUP BY customer_id, date_of_birth, name_key HAVING COUNT(*) > 1) t",
    )
    assert twins == [(0,)]


@pytest.mark.parametrize("kind", ["postgres", "mariadb"])
def test_an_import_waits_for_the_one_before_it_only_so_long(kind, tmp_path, monkeypatch):
    """A stuck import must not make every later cron run queue behind it for ever."""
    url = server_url(kind)
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [CUSTOMER]), "--db", url)
    path = write_csv(tmp_path / "d.csv", HEADER, [[CUSTOMER, "Ann", "Lee", "2019-01-04"]])
    engine = db.engine_for(url)
    with engine.connect() as other:
        lock = "SELECT pg_advisory_lock(:k)" if kind == "postgres" else "SELECT GET_LOCK(:n, 0)"
        other.execute(sa.text(lock), {"k": postgresql.LOCK_KEY, "n": mysql.LOCK_NAME})
        began = time.monotonic()
        result = invoke(
            "import", path, "--db", url, "--as-of", AS_OF, "--lock-timeout", "1", "--report-dir", tmp_path
        )
        waited = time.monotonic() - began
    engine.dispose()  # the other session ends, and its lock with it
    assert result.exit_code == 5
    assert (
        result.stderr
        == "Error: timed out after 1 s waiting for another import into this database to finish\n"
    )
    assert 1 <= waited < 10
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(0,)]
    again = invoke("import", path, "--db", url, "--as-of", AS_OF, "--report-dir", tmp_path / "r")
    assert again.exit_code == 0, again.output
