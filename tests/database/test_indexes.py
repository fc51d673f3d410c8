"""``--rebuild-indexes``: a large PostgreSQL load sets the primary key, the natural-key index
and the customer foreign key aside and rebuilds them before the commit; a large SQLite load
its natural-key index, for the insert. The rows, the rules and the schema come out the same,
and a failure puts everything back. SQLite's foreign key is checked set-wise."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline import run
from pipeline.database import db, decide_sql, indexes
from pipeline.database.dialects import postgresql, sqlite
from pipeline.database.indexes import Keys
from tests.helpers import (
    AS_OF,
    C1,
    C2,
    HEADER,
    customers_csv,
    database,
    invoke,
    kid,
    query,
    run_import,
    stored,
    write_csv,
)

# The schema's own definitions, as the catalogue writes them: they must survive a rebuild.
SCHEMA_SQL = """
SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'dependents'::regclass
UNION ALL
SELECT conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated
FROM pg_constraint WHERE conrelid = 'dependents'::regclass
ORDER BY 1
"""


def schema(url: str) -> list[tuple]:
    return query(url, SCHEMA_SQL)


def index_oid(url: str) -> int:
    """A rebuilt index is a new relation with a new oid; one left alone keeps its own."""
    return query(url, "SELECT CAST(to_regclass(:name) AS oid)", name=indexes.NATURAL_KEY)[0][0]


def key_oid(url: str) -> int:
    """The primary key's index: a new oid once rebuilt."""
    sql = "SELECT CAST(conindid AS integer) FROM pg_constraint WHERE conrelid = 'dependents'::regclass"
    return query(url, sql + " AND contype = 'p'")[0][0]


def import_rows(url: str, tmp: Path, rows: list[list[str]], mode: str, **options) -> run.Outcome:
    """Import through the library, to see what the insert did with the indexes."""
    if not query(url, "SELECT id FROM customers"):
        invoke("customers", "load", customers_csv(tmp / "c.csv", [C1, C2]), "--db", url)
    path = write_csv(tmp / f"{mode}.csv", HEADER, rows)
    options = run.Options(
        as_of=date.fromisoformat(AS_OF), report_dir=tmp / mode, rebuild_indexes=mode, **options
    )
    return run.import_file(url, path, options)


@pytest.mark.parametrize(
    ("rows", "stored_rows", "rebuild"),
    [
        (indexes.MIN_ROWS - 1, 0, False),  # the largest load checked row by row
        (indexes.MIN_ROWS, 0, True),  # the smallest rebuilt
        (indexes.MIN_ROWS, indexes.MIN_ROWS, True),  # the table doubles: still rebuilt
        (indexes.MIN_ROWS, indexes.MIN_ROWS + 1, False),  # less than doubles: row by row
    ],
)
def test_auto_rebuilds_only_large_loads_that_at_least_double_the_table(rows, stored_rows, rebuild):
    assert indexes.worth_it(rows, stored_rows) is rebuild


def test_always_rebuilds_and_the_rules_and_schema_come_out_the_same(pg_url, tmp_path):
    before, oid, key = schema(pg_url), index_oid(pg_url), key_oid(pg_url)
    rows = [kid(1), kid(1), [C1, "", "Jones", "2015-02-01"], kid(2), kid(3), kid(4), kid(5), kid(6, C2)]
    code, codes = run_import(pg_url, tmp_path, rows, "--rebuild-indexes", "always")
    assert code == 1
    assert codes == {
        3: ["DUPLICATE_IN_FILE"],
        4: ["FIRST_NAME_REQUIRED"],
        8: ["DEPENDENT_LIMIT_REACHED"],
    }
    assert stored(pg_url) == 5
    assert schema(pg_url) == before and index_oid(pg_url) != oid and key_oid(pg_url) != key


@pytest.mark.parametrize(
    ("mode", "order", "binary"),
    [
        ("always", [2, 3, 4, 5, 6, 7], True),
        ("always", [2, 3, 4, 5, 6, 7], False),  # CSV COPY, where pgpq has no wheel
        ("never", [5, 6, 7, 2, 3, 4], True),
    ],
)
def test_ids_ascend_in_file_order_when_rebuilt_and_in_customer_order_otherwise(
    pg_url, tmp_path, monkeypatch, mode, order, binary
):
    """With nothing indexed the rows go in as staged and each id counts its row's place in the
    file: no sort. Row by row they go in customer order, so every index is appended to. The
    ids copied in while staging are the run's prefix and the row as 12 hex digits, as the
    insert's SQL spells them."""
    import uuid

    if not binary:
        monkeypatch.setattr(postgresql, "ArrowToPostgresBinaryEncoder", None)
    rows = [kid(n, C2) for n in range(1, 4)] + [kid(n, C1) for n in range(1, 4)]
    assert import_rows(pg_url, tmp_path, rows, mode).run.accepted == 6
    found = query(pg_url, "SELECT source_row, id FROM dependents ORDER BY id")
    assert [r[0] for r in found] == order
    assert {uuid.UUID(str(r[1])).version for r in found} == {7}
    if mode == "always":
        assert [str(r[1])[24:] for r in found] == [f"{n:012x}" for n in order]


TWIN_ID = "33333333-3333-4333-8333-333333333333"
STRANGER = "99999999-9999-4999-8999-999999999999"  # no such customer


def refuses(url: str, match: str, **changes: str) -> None:
    """Storing the one stored dependent again, with ``changes``, fails with ``match``."""
    engine = db.engine_for(url)
    with engine.connect() as conn:
        existing = conn.execute(sa.select(db.dependents)).mappings().one()
        with pytest.raises(sa.exc.IntegrityError, match=match):
            conn.execute(sa.insert(db.dependents).values({**existing, **changes}))
    engine.dispose()


def test_the_rebuilt_keys_index_and_foreign_key_still_guard_the_table(pg_url, tmp_path):
    assert import_rows(pg_url, tmp_path, [kid(1)], "always").run.accepted == 1
    refuses(pg_url, "ux_dependents_natural_key", id=TWIN_ID)
    refuses(pg_url, "dependents_customer_id_fkey", id=TWIN_ID, customer_id=STRANGER)
    refuses(pg_url, "dependents_pkey", first_name="Other")


@pytest.fixture
def statements(monkeypatch) -> list[str]:
    """Every statement any engine sends, in order."""
    sent: list[str] = []

    def listen(conn, cursor, statement, *args) -> None:
        sent.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", listen)
    yield sent
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", listen)


ADD_CUSTOMER_KEY = "ALTER TABLE dependents ADD CONSTRAINT dependents_customer_id_fkey"


@pytest.mark.parametrize(
    ("customer", "early", "codes"),
    [
        (C2, True, {}),  # every customer exists: the key goes back before the rules
        (STRANGER, False, {3: ["CUSTOMER_NOT_FOUND"]}),
    ],
)
def test_the_customer_key_goes_back_before_the_rules_when_every_customer_exists(
    pg_url, tmp_path, statements, customer, early, codes
):
    """Then its one join has proved every candidate's customer, and the rules look up only the
    rejected rows' (one join, not two). A missing customer rolls that attempt back, the rules
    find the row, and the key goes back after it is taken out."""
    before = schema(pg_url)
    outcome = import_rows(pg_url, tmp_path, [kid(1), kid(1, customer), [C1, "", "X", "2015-01-01"]], "always")
    assert outcome.counts == Counter({"FIRST_NAME_REQUIRED": 1, **{c[0]: 1 for c in codes.values()}})
    assert schema(pg_url) == before
    added = [i for i, sql in enumerate(statements) if sql.startswith(ADD_CUSTOMER_KEY)]
    decided = next(i for i, sql in enumerate(statements) if sql.startswith("INSERT INTO dependents_refused"))
    rolled_back = any(sql.startswith("ROLLBACK TO SAVEPOINT") for sql in statements[added[0] : decided])
    assert (added[0] < decided, len(added), rolled_back) == (True, 2 - early, not early)
    lookup = statements[decided]
    assert lookup.endswith("AND s.candidate = 0") is early


@pytest.fixture
def referenced_key(pg_url):
    """Another table's foreign key to ``dependents.id`` (dropped again, so the next test's
    fresh tables can be made)."""
    engine = db.engine_for(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE dependent_notes (dependent_id uuid REFERENCES dependents (id))")
    try:
        yield pg_url
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS dependent_notes")
        engine.dispose()


def test_a_primary_key_another_table_needs_stays_in_place(referenced_key, tmp_path):
    url = referenced_key
    before, oid, key = schema(url), index_oid(url), key_oid(url)
    outcome = import_rows(url, tmp_path, [kid(1), kid(2)], "always")
    assert outcome.run.accepted == 2
    assert stored(url) == 2
    assert schema(url) == before and index_oid(url) != oid and key_oid(url) == key


def test_a_failure_after_the_drop_puts_index_and_foreign_key_back(pg_url, tmp_path, monkeypatch):
    """The rows copied in while staging go with the rollback too: a repeated row makes the
    import take it back out, and that statement fails."""
    before = schema(pg_url)
    broken = postgresql.REFUSED_SQL.replace("USING dependents_verdicts", "USING nowhere")
    monkeypatch.setattr(postgresql, "REFUSED_SQL", broken)
    with pytest.raises(Exception, match="does not exist"):
        import_rows(pg_url, tmp_path, [kid(1), kid(1), kid(2)], "always")
    assert schema(pg_url) == before
    assert stored(pg_url) == 0


def test_a_rebuilt_load_checks_against_the_dependents_stored_before_it(pg_url, tmp_path):
    """Its rows are in ``dependents`` before the rules run: they are not twins of themselves,
    nor counted towards their customer's limit as stored ones."""
    assert run_import(pg_url, tmp_path, [kid(1), kid(2)], name="first.csv") == (0, {})
    rows = [kid(2), kid(3), kid(4), kid(5), kid(1, C2)]
    code, codes = run_import(pg_url, tmp_path, rows, "--rebuild-indexes", "always")
    assert code == 1
    assert codes == {2: ["DEPENDENT_ALREADY_EXISTS"], 5: ["DEPENDENT_LIMIT_REACHED"]}
    assert stored(pg_url) == 5


def test_a_dry_run_leaves_the_indexes_alone(pg_url, tmp_path):
    before, oid = schema(pg_url), index_oid(pg_url)
    code, codes = run_import(pg_url, tmp_path, [kid(1), kid(1)], "--rebuild-indexes", "always", "--dry-run")
    assert (code, codes) == (1, {3: ["DUPLICATE_IN_FILE"]})
    assert stored(pg_url) == 0
    assert schema(pg_url) == before and index_oid(pg_url) == oid


PG = postgresql.PostgreSQL()


def test_auto_counts_the_stored_rows(pg_url, tmp_path, monkeypatch):
    monkeypatch.setattr(indexes, "MIN_ROWS", 2)
    import_rows(pg_url, tmp_path, [kid(1), kid(2), kid(3, C2)], "auto")
    engine = db.engine_for(pg_url)
    with engine.connect() as conn, conn.begin():
        with conn.begin_nested() as first:
            doubles = PG.set_aside_before_staging(conn, 3, "auto")  # 3 stored + 3: set aside
            first.rollback()
        less = PG.set_aside_before_staging(conn, 2, "auto")  # 3 stored + 2: row by row
        conn.rollback()
    engine.dispose()
    assert (doubles.state, less.state) == (Keys.SET_ASIDE, Keys.KEPT)


def test_auto_leaves_a_table_in_use_alone_and_says_so(pg_url, tmp_path, monkeypatch):
    monkeypatch.setattr(indexes, "MIN_ROWS", 1)
    before, oid = schema(pg_url), index_oid(pg_url)
    reader = db.engine_for(pg_url)
    with reader.connect() as conn, conn.begin():
        conn.exec_driver_sql("SELECT COUNT(*) FROM dependents")  # holds ACCESS SHARE until rollback
        outcome = import_rows(pg_url, tmp_path, [kid(1), kid(2)], "auto")
    reader.dispose()
    assert outcome.run.accepted == 2 and stored(pg_url) == 2
    assert any("in use by another session" in w for w in outcome.warnings)
    assert schema(pg_url) == before and index_oid(pg_url) == oid


@pytest.mark.parametrize("kind", ["sqlite", "mariadb"])
def test_other_databases_always_insert_row_by_row(kind, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'x.db'}" if kind == "sqlite" else request.getfixturevalue("mariadb_url")
    if kind == "sqlite":
        db.init(db.engine_for(url))
    outcome = import_rows(url, tmp_path, [kid(1), kid(2)], "always")
    assert outcome.run.accepted == 2 and outcome.warnings == []


# SQLite: the natural-key index is set aside for the insert only, and its foreign key is
# checked set-wise on every import.
SQLITE_SCHEMA_SQL = "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'dependents' ORDER BY name"


@pytest.fixture
def sqlite_db(tmp_path) -> str:
    return database("sqlite", tmp_path)


@pytest.mark.parametrize(("mode", "order"), [("always", [3, 2, 5, 4]), ("never", [3, 5, 2, 4])])
def test_sqlite_stages_each_chunk_in_customer_order(sqlite_db, tmp_path, mode, order):
    """Each chunk is staged in customer order (C1 sorts before C2). Set aside, the rows go in
    as they were staged and each id counts its row's place in the stage; kept, in customer
    order. Either way the index comes back as it was written."""
    before = query(sqlite_db, SQLITE_SCHEMA_SQL)
    rows = [kid(1, C2), kid(1, C1), kid(2, C2), kid(2, C1)]  # rows 2-5, two chunks of two
    outcome = import_rows(sqlite_db, tmp_path, rows, mode, chunk_size=2)
    assert outcome.run.accepted == 4
    found = query(sqlite_db, "SELECT source_row, id FROM dependents ORDER BY id")
    assert [r[0] for r in found] == order
    if mode == "always":
        assert [r[1][24:] for r in found] == [f"{n:012x}" for n in range(1, 5)]
    assert query(sqlite_db, SQLITE_SCHEMA_SQL) == before


def test_sqlite_rebuilt_index_still_guards_the_table(sqlite_db, tmp_path):
    assert import_rows(sqlite_db, tmp_path, [kid(1)], "always").run.accepted == 1
    refuses(sqlite_db, "UNIQUE", id=TWIN_ID)
    refuses(sqlite_db, "FOREIGN KEY", id=TWIN_ID, customer_id=STRANGER)  # other connections check per row


def test_sqlite_a_failure_after_the_drop_puts_the_index_back(sqlite_db, tmp_path, monkeypatch):
    before = query(sqlite_db, SQLITE_SCHEMA_SQL)
    monkeypatch.setattr(
        sqlite,
        "STAGE_ORDER_SQL",
        sqlite.STAGE_ORDER_SQL.replace("FROM dependents_stage", "FROM nowhere"),
    )
    with pytest.raises(Exception, match="nowhere"):
        import_rows(sqlite_db, tmp_path, [kid(1), kid(2)], "always")
    assert query(sqlite_db, SQLITE_SCHEMA_SQL) == before
    assert stored(sqlite_db) == 0


@pytest.mark.parametrize("mode", ["always", "never"])
def test_sqlite_checks_its_foreign_key_set_wise(sqlite_db, tmp_path, monkeypatch, mode):
    """With SQLite's own check of each row off for the import, a row whose customer is
    unknown and that the rules let through (here: their join is broken) stops the import,
    one line, exit 4, nothing stored."""
    monkeypatch.setattr(decide_sql, "UNKNOWN_CUSTOMERS", decide_sql.UNKNOWN_CUSTOMERS + " AND 0")
    stranger = kid(2, "99999999-9999-4999-8999-999999999999")
    code, _ = run_import(sqlite_db, tmp_path, [kid(1), stranger], "--rebuild-indexes", mode)
    assert code == 4
    assert stored(sqlite_db) == 0
    assert query(sqlite_db, "SELECT status, message FROM import_runs") == [
        (
            "failed",
            "1 dependent would have no customer (foreign key dependents.customer_id); nothing was committed",
        )
    ]


def test_sqlite_checks_each_row_again_once_the_import_is_over(sqlite_db):
    """The per-row check is off only inside ``foreign_keys_set_wise``, on that connection."""

    def checks(conn) -> int:
        return conn.connection.dbapi_connection.execute("PRAGMA foreign_keys").fetchone()[0]

    engine = db.engine_for(sqlite_db)
    with engine.connect() as conn, engine.connect() as other:
        with db.foreign_keys_set_wise(conn):
            inside, elsewhere = checks(conn), checks(other)
        after = checks(conn)
    engine.dispose()
    assert (inside, elsewhere, after) == (0, 1, 1)


def test_sqlite_a_dry_run_leaves_its_index_alone(sqlite_db, tmp_path):
    before = query(sqlite_db, SQLITE_SCHEMA_SQL)
    code, codes = run_import(
        sqlite_db, tmp_path, [kid(1), kid(1)], "--rebuild-indexes", "always", "--dry-run"
    )
    assert (code, codes) == (1, {3: ["DUPLICATE_IN_FILE"]})
    assert stored(sqlite_db) == 0 and query(sqlite_db, SQLITE_SCHEMA_SQL) == before
