"""Rules that need the database, on SQLite, PostgreSQL and MariaDB alike: the self-service
limit, duplicates in the file and in the database, across chunk boundaries."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import sqlalchemy as sa

from pipeline.database import db
from tests.helpers import (
    AS_OF,
    C1,
    C2,
    HEADER,
    customers_csv,
    invoke,
    kid,
    query,
    run_import,
    stored,
    write_csv,
)


def notes_of(url: str, row: int) -> list[dict]:
    t = db.import_rejects
    engine = db.engine_for(url)
    with engine.connect() as conn:
        text = conn.execute(sa.select(t.c.notifications).where(t.c.row == row)).scalar_one()
    engine.dispose()
    return json.loads(text)


def test_fifth_dependent_rejected_on_self_service(any_db, tmp_path):
    code, codes = run_import(any_db, tmp_path, [kid(n) for n in range(1, 6)])
    assert code == 1 and codes == {6: ["DEPENDENT_LIMIT_REACHED"]}
    assert stored(any_db) == 4
    data = notes_of(any_db, 6)[0]["additionalData"]
    assert (data["limit"], data["count"]) == (4, 4)


def test_fifth_dependent_accepted_on_contact_centre(any_db, tmp_path):
    code, codes = run_import(any_db, tmp_path, [kid(n) for n in range(1, 6)], "--channel", "contact-centre")
    assert code == 0 and codes == {} and stored(any_db) == 5


def test_four_in_the_database_plus_one_in_the_file(any_db, tmp_path):
    run_import(any_db, tmp_path, [kid(n) for n in range(1, 5)], name="first.csv")
    _, codes = run_import(any_db, tmp_path, [kid(9), kid(10, C2)], name="second.csv")
    assert codes == {2: ["DEPENDENT_LIMIT_REACHED"]}  # C2 has room
    assert stored(any_db) == 5


@pytest.mark.parametrize(
    ("stored_before", "in_file", "codes"),
    [
        (3, 1, {}),  # the last place: three stored, the fourth from the file
        (4, 1, {2: ["DEPENDENT_LIMIT_REACHED"]}),  # the first past it
        (3, 2, {3: ["DEPENDENT_LIMIT_REACHED"]}),  # three stored and two in the file: the second is over
    ],
)
def test_stored_dependents_count_towards_the_limit(any_db, tmp_path, stored_before, in_file, codes):
    run_import(any_db, tmp_path, [kid(n) for n in range(1, stored_before + 1)], name="first.csv")
    _, found = run_import(any_db, tmp_path, [kid(n) for n in range(9, 9 + in_file)], name="second.csv")
    assert found == codes
    assert stored(any_db) == 4
    if codes:
        data = notes_of(any_db, next(iter(codes)))[0]["additionalData"]
        assert (data["limit"], data["count"]) == (4, 4)


def test_a_rejected_row_takes_no_place(any_db, tmp_path):
    rows = [kid(1), kid(2), kid(3), [C1, "", "Jones", "2015-02-01"], kid(4), kid(5)]
    _, codes = run_import(any_db, tmp_path, rows)
    assert codes == {5: ["FIRST_NAME_REQUIRED"], 7: ["DEPENDENT_LIMIT_REACHED"]}
    assert stored(any_db) == 4


def test_limit_holds_across_chunk_boundaries(any_db, tmp_path):
    rows = [kid(n) for n in range(1, 8)]
    _, codes = run_import(any_db, tmp_path, rows, "--chunk-size", "2")
    assert codes == {r: ["DEPENDENT_LIMIT_REACHED"] for r in (6, 7, 8)}
    assert stored(any_db) == 4


@pytest.mark.parametrize("chunk", ["1", "50000"])
def test_duplicates_in_the_file_by_trimmed_casefolded_names(any_db, tmp_path, chunk):
    rows = [kid(1), kid(2), [C1, " KID1 ", "jones ", "2015-01-01"], [C1, "Kid1", "Jones", "2015-01-02"]]
    _, codes = run_import(any_db, tmp_path, rows, "--chunk-size", chunk)
    assert codes == {4: ["DUPLICATE_IN_FILE"]}  # row 5: another birth date, another dependent
    assert notes_of(any_db, 4)[0]["additionalData"]["row"] == 2
    assert stored(any_db) == 3


def test_names_that_fold_longer_than_the_key_column_still_make_a_natural_key(any_db, tmp_path):
    """CareCycle allows 255-character names; ``ß`` and ``ẞ`` both fold to ``ss``, so these
    names fold to 510 characters each, past the 511 of the key column for the pair."""
    sharp, capital = "ß" * 255, "ẞ" * 255
    rows = [
        [C1, sharp, sharp, "2015-01-01"],
        [C1, capital, sharp, "2015-01-01"],  # the same name, case-insensitively
        [C1, sharp, sharp[:-1] + "s", "2015-01-01"],  # another name
    ]
    code, codes = run_import(any_db, tmp_path, rows, "--profile", "carecycle", "--channel", "contact-centre")
    assert code == 1 and codes == {3: ["DUPLICATE_IN_FILE"]}
    assert stored(any_db) == 2
    keys = query(any_db, "SELECT name_key FROM dependents")
    assert all(k.startswith("#") and len(k) == 65 for (k,) in keys)
    _, codes = run_import(any_db, tmp_path, rows[1:2], "--profile", "carecycle", name="again.csv")
    assert codes == {2: ["DEPENDENT_ALREADY_EXISTS"]}


def test_dependent_already_in_the_database(any_db, tmp_path):
    run_import(any_db, tmp_path, [kid(1)], name="first.csv")
    _, codes = run_import(any_db, tmp_path, [[C1, "kid1", " JONES", "2015-01-01"], kid(2)], name="again.csv")
    assert codes == {2: ["DEPENDENT_ALREADY_EXISTS"]}
    assert stored(any_db) == 2


def test_a_duplicate_of_a_row_over_the_limit_is_over_the_limit(any_db, tmp_path):
    rows = [kid(n) for n in range(1, 6)] + [kid(5)]
    _, codes = run_import(any_db, tmp_path, rows)
    assert codes == {6: ["DEPENDENT_LIMIT_REACHED"], 7: ["DEPENDENT_LIMIT_REACHED"]}


def test_unknown_customer_is_reported_with_the_rows_other_errors(any_db, tmp_path):
    ghost = "99999999-9999-4999-8999-999999999999"
    _, codes = run_import(
        any_db, tmp_path, [[ghost, "", "Jones", "2015-01-01"], [ghost, "A", "B", "2015-01-01"]]
    )
    assert codes == {2: ["FIRST_NAME_REQUIRED", "CUSTOMER_NOT_FOUND"], 3: ["CUSTOMER_NOT_FOUND"]}


def test_an_unknown_customer_is_found_on_a_row_a_row_rule_rejected(any_db, tmp_path):
    """Every other row's customer exists: a load with the keys set aside proves those by its
    foreign key, and still looks up the rejected row's."""
    ghost = "99999999-9999-4999-8999-999999999999"
    _, codes = run_import(any_db, tmp_path, [[ghost, "", "Jones", "2015-01-01"], kid(2), kid(3, C2)])
    assert codes == {2: ["FIRST_NAME_REQUIRED", "CUSTOMER_NOT_FOUND"]}
    assert stored(any_db) == 2


def test_chunks_the_verdicts_leave_alone_keep_their_early_rejects(any_db, tmp_path):
    """Rejected rows are assembled from the row rules while the database decides; a chunk a
    verdict falls in is assembled again, with both kinds of code, and the others are kept."""
    ghost = "99999999-9999-4999-8999-999999999999"
    rows = [
        [C1, "", "Jones", "2015-01-01"],
        kid(2),
        [ghost, "", "Lee", "2015-01-03"],
        [ghost, "A", "B", "2015-01-04"],
    ]
    _, codes = run_import(
        any_db, tmp_path, [*rows, kid(5), [C2, "C", "D", "2099-01-01"]], "--chunk-size", "2"
    )
    assert codes == {
        2: ["FIRST_NAME_REQUIRED"],
        4: ["FIRST_NAME_REQUIRED", "CUSTOMER_NOT_FOUND"],
        5: ["CUSTOMER_NOT_FOUND"],
        7: ["BIRTH_DATE_IN_FUTURE"],
    }


def test_the_natural_key_is_unique_in_the_database_itself(any_db, tmp_path):
    run_import(any_db, tmp_path, [kid(1)])
    engine = db.engine_for(any_db)
    with engine.connect() as conn:
        existing = conn.execute(sa.select(db.dependents)).mappings().one()
        twin = {**existing, "id": "33333333-3333-4333-8333-333333333333"}
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(db.dependents.insert(), twin)
    engine.dispose()


def test_the_same_file_twice_is_refused_and_force_adds_nothing_twice(any_db, tmp_path):
    rows = [kid(1), kid(2)]
    assert run_import(any_db, tmp_path, rows)[0] == 0
    again = invoke("import", tmp_path / "d.csv", "--db", any_db, "--as-of", AS_OF)
    assert again.exit_code == 2
    (run_id,) = query(any_db, "SELECT id FROM import_runs WHERE status = 'succeeded'")[0]
    assert f"was already imported by run {run_id}" in again.stderr and "--force" in again.stderr
    code, codes = run_import(any_db, tmp_path, rows, "--force")
    assert code == 1 and codes == {2: ["DEPENDENT_ALREADY_EXISTS"], 3: ["DEPENDENT_ALREADY_EXISTS"]}
    assert stored(any_db) == 2


def test_dry_run_writes_the_report_and_commits_nothing(any_db, tmp_path):
    code, codes = run_import(any_db, tmp_path, [kid(n) for n in range(1, 6)], "--dry-run")
    assert code == 1 and codes == {6: ["DEPENDENT_LIMIT_REACHED"]}
    assert stored(any_db) == 0
    assert query(any_db, "SELECT status, accepted, rejected FROM import_runs") == [("dry run", 4, 1)]
    assert run_import(any_db, tmp_path, [kid(n) for n in range(1, 6)])[0] == 1  # not "already imported"


def test_reject_rate_guard_aborts_with_exit_3(any_db, tmp_path):
    rows = [kid(1), [C1, "", "x", "2015-01-01"], [C1, "", "y", "2015-01-01"]]
    code, codes = run_import(any_db, tmp_path, rows, "--max-reject-rate", "0.5")
    assert code == 3 and len(codes) == 2
    assert stored(any_db) == 0
    assert query(any_db, "SELECT status FROM import_runs") == [("aborted",)]
    assert query(any_db, "SELECT COUNT(*) FROM import_rejects") == [(2,)]


def test_ids_are_version_7_and_ascend_in_customer_order_within_a_run(any_db, tmp_path, request):
    """Row by row; a load with the keys set aside has no index to keep in order, and its ids
    follow the file (``tests/test_indexes.py``)."""
    import uuid

    rebuilt = request.node.callspec.params["any_db"] == "postgres-rebuilt"

    rows = [kid(n, C2) for n in range(1, 4)] + [kid(n, C1) for n in range(1, 4)]
    assert run_import(any_db, tmp_path, rows)[0] == 0
    assert run_import(any_db, tmp_path, [kid(9, C2)], "--channel", "contact-centre", name="e.csv")[0] == 0
    found = query(any_db, "SELECT id, customer_id, source_row, import_run_id FROM dependents")
    ids = [str(r[0]) for r in found]
    assert len(set(ids)) == 7
    assert {uuid.UUID(i).version for i in ids} == {7}
    assert {uuid.UUID(i).variant for i in ids} == {uuid.RFC_4122}
    first_run = sorted((r for r in found if r[3] == found[0][3]), key=lambda r: str(r[0]))
    # In the first run: C1's rows (rows 5-7) then C2's (rows 2-4), each in file order.
    assert [r[2] for r in first_run] == ([2, 3, 4, 5, 6, 7] if rebuilt else [5, 6, 7, 2, 3, 4])


def test_sqlite_sorts_only_the_keys_of_the_rows_it_inserts(tmp_path):
    """SQLite's insert reads the staged rows by rowid in ``dependents_order``'s order: no sort
    of whole rows through its temporary file."""
    from pipeline.database import stage
    from pipeline.database.dialects import sqlite

    engine = db.engine_for(f"sqlite:///{tmp_path / 'plan.db'}")
    db.init(engine)
    with engine.connect() as conn:
        for table in (*stage.WORK_TABLES, sqlite.accepted_order):
            db.fresh_temp_table(conn, table)
        sql = sqlite.ORDERED_INSERT_SQL.format(
            data=", ".join(stage.DATA), id=sqlite.SQLite.id_sql, own=stage.OWN_VALUES
        )
        params = {"prefix": "0" * 24, "now": "2026-11-22", "run_id": "r"}
        plan = [row[-1] for row in conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql), params)]
    engine.dispose()
    assert any("USING INTEGER PRIMARY KEY" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


STAGE_ROWS_SQL = """
INSERT INTO dependents_stage
  (source_row, candidate, customer_hash, key_hash, name_key, customer_id, date_of_birth)
SELECT n, 1, n % 2000, n % 600000, 'kid' || n, CAST(md5(CAST(n % 2000 AS text)) AS uuid),
  DATE '2015-01-01' + n % 300
FROM generate_series(2, :rows) AS n
"""


def staged_loader(conn, rows: int = 20_000, suspects: bool = True):
    """A PostgreSQL ``Loader`` with ``rows`` staged rows (1,999 customers, none refused);
    with ``suspects``, the sieve holds their hashes alike, so both groupings have rows to see."""
    from datetime import datetime

    from pipeline.database import load

    loader = load.Loader(conn, "r", "self-service", datetime(2026, 11, 22))
    conn.execute(sa.text(STAGE_ROWS_SQL), {"rows": rows + 1})
    if suspects:
        loader.sieve.keep(np.zeros(rows, np.int32), np.zeros(rows, np.int32))
    return loader


def test_checks_among_the_files_own_tables_join_by_hash_on_postgresql(pg_url):
    """With no row refused, the planner takes ``dependents_refused`` for one row and scans it
    once per staged row; ``hash_joins`` reads it once instead."""
    from pipeline.database import decide_sql, dialects

    engine = db.engine_for(pg_url)
    with engine.connect() as conn:
        staged_loader(conn)
        for table in ("dependents_stage", "dependents_refused", "dependents_held"):
            conn.exec_driver_sql(f"ANALYZE {table}")
        sql = "EXPLAIN " + decide_sql.CROWDED.replace("{big}", "")

        def plan() -> str:
            return "\n".join(conn.execute(sa.text(sql), {"limit": 4}).scalars())

        assert "Nested Loop" in plan()  # the planner's own choice, which this works around
        with dialects.of(conn).hash_joins(conn):
            assert "Nested Loop" not in plan()
        assert conn.exec_driver_sql("SHOW enable_nestloop").scalar() == "on"
    engine.dispose()


GROUPINGS = {
    "dependents_repeated": "off",
    "dependents_repeats": "off",
    "dependents_crowded": "off",
    "dependents_over": "off",
}


@pytest.mark.parametrize(("suspects", "groupings"), [(True, GROUPINGS), (False, {})])
def test_decide_uses_hash_joins_only_among_the_files_own_tables(pg_url, suspects, groupings):
    """The checks against stored customers and dependents keep the planner's choice: a small
    file is right to look its rows up in a large table by its index. With no suspect in the
    sieve (no key hash seen twice, no customer hash past the limit, nothing stored) the two
    groupings and the steps that follow them do not run: they would read every staged row to
    find nothing."""
    engine = db.engine_for(pg_url)
    nestloop: dict[str, str] = {}

    def setting(conn, table: str) -> None:
        with conn.connection.dbapi_connection.cursor() as cur:
            cur.execute("SHOW enable_nestloop")
            nestloop[table] = cur.fetchone()[0]

    before_work_table_inserts(engine, setting)

    with engine.connect() as conn:
        staged_loader(conn, rows=100, suspects=suspects).decide()
        after = conn.exec_driver_sql("SHOW enable_nestloop").scalar()
    engine.dispose()
    assert {k: v for k, v in nestloop.items() if k != "dependents_stage"} == {
        "dependents_refused": "on",
        **groupings,
        "dependents_verdicts": "on",
    }  # no dependent is stored, so none is counted (dependents_held)
    assert after == "on"


@pytest.mark.parametrize("stored", [0, 1])
def test_stored_dependents_are_looked_for_only_when_there_are_any(
    any_db, tmp_path, stored, monkeypatch, request
):
    """A first load into an empty table neither looks for stored twins nor counts stored
    dependents per customer; once one is stored, both run (and their rules hold: see the
    tests above). With the keys set aside and every customer proven by the foreign key, the
    twins are looked for in a statement of their own."""
    from datetime import date

    from pipeline import run

    if stored:
        assert run_import(any_db, tmp_path, [kid(9)], name="first.csv")[0] == 0
    else:
        invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1, C2]), "--db", any_db)
    engine = db.engine_for(any_db)
    steps = inserts_into(engine)
    refusals: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def spy(conn, cursor, statement, *_):
        if "INSERT INTO dependents_refused" in statement:
            refusals.append(statement)

    monkeypatch.setattr(db, "engine_for", lambda url: engine)
    path = write_csv(tmp_path / "d.csv", HEADER, [kid(1), kid(2), kid(3, C2)])
    options = run.Options(as_of=date.fromisoformat(AS_OF), report_dir=tmp_path / "r")
    assert run.import_file(any_db, path, options).run.accepted == 3
    assert ("dependents_held" in steps) is bool(stored)
    twins = [sql for sql in refusals if "JOIN dependents d" in sql]
    own_statement = stored and request.node.callspec.params["any_db"] == "postgres-rebuilt"
    assert (len(twins), len(refusals)) == (stored, 1 + own_statement)


def inserts_into(engine) -> list[str]:
    """The work tables the engine's statements insert into, in order, as they run."""
    found: list[str] = []
    before_work_table_inserts(engine, lambda conn, table: found.append(table))
    return found


def before_work_table_inserts(engine, seen) -> None:
    """Call ``seen(connection, table)`` just before each statement inserting into a work table."""

    @sa.event.listens_for(engine, "before_cursor_execute")
    def spy(conn, cursor, statement, *_):
        if table := re.match(r"\s*INSERT INTO (dependents_\w+)", statement):
            seen(conn, table[1])


@pytest.mark.parametrize("rebuilt", [False, True], ids=["row by row", "keys set aside"])
def test_into_an_empty_table_with_keys_set_aside_the_stage_takes_rejects_and_suspects(
    pg_url, tmp_path, monkeypatch, rebuilt
):
    """``Loader.narrow``: the candidates are in ``dependents`` already, so the stage holds the
    rejected row and the suspects the groupings read (C1's five rows, C2's repeated pair),
    not C2's two plain rows; the verdicts are the same either way."""
    from pipeline.database import indexes

    if rebuilt:
        monkeypatch.setattr(indexes, "MIN_ROWS", 1)
    engine = db.engine_for(pg_url)
    staged: list[int] = []

    def seen(conn, table):
        if table == "dependents_repeated":
            staged.append(conn.exec_driver_sql("SELECT COUNT(*) FROM dependents_stage").scalar_one())

    before_work_table_inserts(engine, seen)
    monkeypatch.setattr(db, "engine_for", lambda url: engine)
    rows = [*(kid(n) for n in range(1, 6)), kid(1, C2), kid(1, C2), [C2, "", "Jones", "2015-01-02"]]
    code, codes = run_import(pg_url, tmp_path, [*rows, kid(3, C2), kid(4, C2)])
    assert staged == [8 if rebuilt else 10]
    assert code == 1 and codes == {
        6: ["DEPENDENT_LIMIT_REACHED"],
        8: ["DUPLICATE_IN_FILE"],
        9: ["FIRST_NAME_REQUIRED"],
    }
    assert stored(pg_url) == 7
