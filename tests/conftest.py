"""Shared fixtures: databases (SQLite always; PostgreSQL and MariaDB when their URLs are set),
sample files, and a helper that writes small CSVs for one test.

PostgreSQL and MariaDB tests read ``DEPENDENTS_TEST_PG_URL`` / ``DEPENDENTS_TEST_MARIADB_URL``.
Without them they skip with the reason; with ``DEPENDENTS_TEST_REQUIRE_DB=1`` (as ``.ci/run``
sets) an unset or unreachable server fails instead, so CI never skips them silently.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline import db

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"
AS_OF = "2026-11-22"
SERVERS = {"postgres": "DEPENDENTS_TEST_PG_URL", "mariadb": "DEPENDENTS_TEST_MARIADB_URL"}


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Every test runs in its own directory, so what a command writes by default (``reports/``,
    ``dependents.db``) lands there and not in the checkout."""
    monkeypatch.chdir(tmp_path)


def server_url(kind: str) -> str:
    """The URL of a reachable test server, with fresh empty tables; skip (or fail in CI) if none."""
    env = SERVERS[kind]
    url = os.environ.get(env)
    required = os.environ.get("DEPENDENTS_TEST_REQUIRE_DB") == "1"
    if not url:
        (pytest.fail if required else pytest.skip)(f"{env} is not set; {kind} tests need a server")
    engine = db.engine_for(url)
    try:
        db.metadata.drop_all(engine)
        db.init(engine)
    except sa.exc.OperationalError as exc:
        (pytest.fail if required else pytest.skip)(f"{kind} at {db.masked(url)} unreachable: {exc.orig}")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def pg_url() -> str:
    return server_url("postgres")


@pytest.fixture
def mariadb_url() -> str:
    return server_url("mariadb")


@pytest.fixture(params=["sqlite", "sqlite-rebuilt", "postgres", "postgres-rebuilt", "mariadb"])
def any_db(request, tmp_path: Path) -> str:
    """Each test using this runs once per database, and on SQLite and PostgreSQL once more
    with the indexes set aside for every load that at least doubles the table
    (``pipeline.indexes``): PostgreSQL's rows go straight into ``dependents`` while they are
    staged, SQLite's in the order staged before its natural-key index is built again."""
    kind, _, rebuilt = request.param.partition("-")
    if rebuilt:
        from pipeline import indexes

        request.getfixturevalue("monkeypatch").setattr(indexes, "MIN_ROWS", 1)
    return database(kind, tmp_path)


def database(kind: str, tmp_path: Path) -> str:
    """A database of ``kind`` (sqlite, postgres, mariadb) with fresh empty tables."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        db.init(db.engine_for(url))
        return url
    return server_url(kind)


def write_csv(path: Path, header: list[str], rows: list[list[str]], **kw) -> Path:
    with path.open("w", newline="", encoding=kw.pop("encoding", "utf-8")) as fh:
        csv.writer(fh, delimiter=kw.pop("delimiter", ",")).writerows([header, *rows])
    return path


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = db.engine_for(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params).all()]
    finally:
        engine.dispose()


def invoke(*args: str):
    """Run ``dependents ARGS`` in-process, as a user would from a shell."""
    from click.testing import CliRunner

    from pipeline.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def customers_csv(path: Path, ids: list[str]) -> Path:
    return write_csv(
        path, ["id", "firstName", "lastName"], [[i, "Cust", f"No{n}"] for n, i in enumerate(ids)]
    )
