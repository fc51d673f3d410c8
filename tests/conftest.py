"""Shared fixtures: databases (SQLite always; PostgreSQL and MariaDB when their URLs are set),
sample files, and a helper that writes small CSVs for one test.

PostgreSQL and MariaDB tests read ``DEPENDENTS_TEST_PG_URL`` / ``DEPENDENTS_TEST_MARIADB_URL``.
Without them they skip with the reason; with ``DEPENDENTS_TEST_REQUIRE_DB=1`` (as ``.ci/run``
sets) an unset or unreachable server fails instead, so CI never skips them silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import database, server_url


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Every test runs in its own directory, so what a command writes by default (``reports/``,
    ``dependents.db``) lands there and not in the checkout."""
    monkeypatch.chdir(tmp_path)


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
    (``pipeline.database.indexes``): PostgreSQL's rows go straight into ``dependents`` while they are
    staged, SQLite's in the order staged before its natural-key index is built again."""
    kind, _, rebuilt = request.param.partition("-")
    if rebuilt:
        from pipeline.database import indexes

        request.getfixturevalue("monkeypatch").setattr(indexes, "MIN_ROWS", 1)
    return database(kind, tmp_path)
