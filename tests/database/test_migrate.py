"""Schema revisions: every earlier database upgrades to the head with its rows intact, the
revisions make exactly the tables the code declares, and an import refuses a database whose
schema is not this version's."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pipeline.database import db, migrate
from schemas import lookups
from tests.helpers import AS_OF, C1, HEADER, invoke, kid, query, server_url, write_csv

KINDS = ["sqlite", "postgres", "mariadb"]
RUN = "00000000-0000-4000-8000-0000000000aa"
ROWS = {
    "customers": {"id": C1, "first_name": "Cust", "created_at": datetime(2026, 11, 1, 9, 30)},
    "import_runs": {
        "id": RUN,
        "file_name": "d.csv",
        "sha256": "ab" * 32,
        "size_bytes": 120,
        "profile": "add-dependent",
        "channel": "self-service",
        "as_of": date(2026, 11, 22),
        "started_at": datetime(2026, 11, 22, 1, 0),
        "status": "succeeded",
        "rows_read": 2,
        "accepted": 1,
        "rejected": 1,
        "columns": '["customerId"]',
    },
    "dependents": {
        "id": "00000000-0000-4000-8000-0000000000bb",
        "customer_id": C1,
        "first_name": "Ann",
        "last_name": "Lee",
        "date_of_birth": date(2019, 1, 4),
        "is_covered": True,
        "created_at": datetime(2026, 11, 22, 1, 0),
        "updated_at": datetime(2026, 11, 22, 1, 0),
        "import_run_id": RUN,
        "source_row": 2,
        "name_key": "ann\x1flee",
    },
    "import_rejects": {
        "run_id": RUN,
        "row": 3,
        "codes": "X",
        "messages": "m",
        "notifications": "[]",
        "cells": "[]",
    },
}


def empty_database(kind: str, tmp_path) -> str:
    """A database of ``kind`` with none of the importer's tables and no schema version."""
    url = f"sqlite:///{tmp_path / 'old.db'}" if kind == "sqlite" else server_url(kind)
    engine = db.engine_for(url)
    db.drop_all(engine)
    engine.dispose()
    return url


def made_by_first_revision(url: str, stamped: bool = True) -> None:
    """The first revision's schema with a row in every table; ``stamped=False``: as ``db init``
    made it before revisions existed (the same tables, no version)."""
    engine = db.engine_for(url)
    with engine.begin() as conn:
        migrate.upgrade_to(conn, migrate.REVISIONS[0])
        for name, row in ROWS.items():
            conn.execute(db.metadata.tables[name].insert(), row)
        if not stamped:
            conn.exec_driver_sql(f"DROP TABLE {migrate.VERSION_TABLE}")
    engine.dispose()


def rows_of(url: str) -> dict[str, list[dict]]:
    """Every row of the tables in ``ROWS``, by the columns the database has now."""
    engine = db.engine_for(url)
    with engine.connect() as conn:
        found = {}
        for name in ROWS:
            table = db.metadata.tables[name]
            present = {c["name"] for c in sa.inspect(conn).get_columns(name)}
            q = sa.select(*(c for c in table.columns if c.name in present))
            found[name] = [dict(r) for r in conn.execute(q).mappings()]
    engine.dispose()
    return found


def as_before(rows: dict[str, list[dict]], before: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """``rows`` with only the columns ``before`` had."""
    return {n: [{k: r[k] for k in before[n][0]} for r in found] for n, found in rows.items()}


def test_the_declared_revisions_are_the_scripts():
    assert migrate.script_revisions() == migrate.REVISIONS


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stamped", [True, False], ids=["first revision", "before revisions"])
def test_db_upgrade_brings_an_earlier_database_to_the_head_with_every_row(kind, stamped, tmp_path):
    url = empty_database(kind, tmp_path)
    made_by_first_revision(url, stamped)
    before = rows_of(url)
    assert all(len(rows) == 1 for rows in before.values())
    result = invoke("db", "upgrade", "--db", url)
    assert result.exit_code == 0, result.output
    assert f"revision {migrate.HEAD}" in result.output
    after = rows_of(url)
    assert as_before(after, before) == before
    # The second revision's run counts: a run before it inserted every row it accepted.
    run = after["import_runs"][0]
    assert (run["inserted"], run["updated"], run["unchanged"], run["skipped"]) == (1, 0, 0, 0)
    assert run["reverted_at"] is None
    # The third: the lookups filled with the defaults, no origin for a row of an original file.
    assert query(url, "SELECT name, version FROM lookup_lists ORDER BY name") == [
        ("genders", 1),
        ("home_languages", 1),
    ]
    lists = {n: lookups.load(n) for n in ("genders", "home_languages")}
    for name, values in lists.items():
        found = query(url, "SELECT value FROM lookup_values WHERE name = :n ORDER BY position", n=name)
        assert [v for (v,) in found] == list(values)
    assert query(url, "SELECT origin_run_id, origin_row FROM dependents") == [(None, None)]
    status = invoke("db", "status", "--db", url)
    assert status.exit_code == 0 and f"at revision {migrate.HEAD}" in status.output


@pytest.mark.parametrize("kind", KINDS)
def test_the_revisions_make_exactly_the_tables_the_code_declares(kind, tmp_path):
    url = empty_database(kind, tmp_path)
    assert invoke("db", "init", "--db", url).exit_code == 0
    engine = db.engine_for(url)
    with engine.connect() as conn:
        ours = {"include_name": lambda name, kind, _: kind != "table" or name in db.metadata.tables}
        diff = compare_metadata(MigrationContext.configure(conn, opts=ours), db.metadata)
    engine.dispose()
    assert diff == []


@pytest.mark.parametrize("kind", KINDS)
def test_an_import_into_a_database_behind_the_code_refuses_naming_db_upgrade(kind, tmp_path):
    url = empty_database(kind, tmp_path)
    made_by_first_revision(url, stamped=False)
    path = write_csv(tmp_path / "d.csv", HEADER, [kid(1)])
    result = invoke("import", path, "--db", url, "--as-of", AS_OF, "--report-dir", tmp_path / "r")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "run `dependents db upgrade`" in result.stderr
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(1,)]  # the row made above, no other


def test_a_database_ahead_of_the_code_is_refused_and_not_upgraded(tmp_path):
    url = empty_database("sqlite", tmp_path)
    made_by_first_revision(url)
    engine = db.engine_for(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '9999'")
    engine.dispose()
    for args in (["db", "upgrade"], ["runs"]):
        result = invoke(*args, "--db", url)
        assert result.exit_code == 2 and "newer than this importer knows" in result.stderr


def test_an_empty_server_database_names_db_init(tmp_path):
    url = empty_database("postgres", tmp_path)
    path = write_csv(tmp_path / "d.csv", HEADER, [kid(1)])
    result = invoke("import", path, "--db", url, "--as-of", AS_OF)
    assert result.exit_code == 2 and "`dependents db init` creates them" in result.stderr
