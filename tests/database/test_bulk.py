"""The bulk paths (binary and CSV COPY, LOAD DATA, executemany) store exactly what they were given."""

from __future__ import annotations

import platform
import sys
import uuid
from datetime import date, datetime

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from pipeline.database import arrow, bulk, db
from pipeline.database.dialects import mysql, postgresql, sqlite
from tests.helpers import C1, database, query

TRICKY = [
    'Comma, "quoted" name',
    "Line\nbreak and \\backslash",
    "Émilie 😀 Ünïcode",
    "'=leading apostrophe",
]


@pytest.fixture(params=["sqlite", "postgres", "postgres, CSV COPY", "mariadb"])
def bulk_db(request, tmp_path, monkeypatch) -> str:
    """Every bulk path: PostgreSQL's binary COPY, and its CSV COPY (where pgpq has no wheel)."""
    if request.param == "postgres, CSV COPY":
        monkeypatch.setattr(postgresql, "ArrowToPostgresBinaryEncoder", None)
    return database(request.param.split(",")[0], tmp_path)


def test_pgpq_is_there_wherever_it_has_a_wheel():
    """pyproject.toml asks for pgpq on x86-64 and macOS only; there, the binary path is taken."""
    if platform.machine() in ("x86_64", "AMD64") or sys.platform == "darwin":
        assert postgresql.ArrowToPostgresBinaryEncoder is not None


def test_tricky_text_nulls_and_times_round_trip(bulk_db):
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(len(TRICKY))]
    when = datetime(2026, 11, 22, 18, 30, 5)
    frame = pd.DataFrame(
        {
            "id": ids,
            "first_name": TRICKY,
            "last_name": [None, "Jones", None, "Smith"],
            "created_at": when,
        }
    )
    engine = db.engine_for(bulk_db)
    with engine.begin() as conn:
        bulk.write(conn, db.customers, frame)
    engine.dispose()
    found = query(bulk_db, "SELECT id, first_name, last_name, created_at FROM customers ORDER BY id")
    assert [str(r[0]) for r in found] == ids
    assert [r[1] for r in found] == TRICKY
    assert [r[2] for r in found] == [None, "Jones", None, "Smith"]
    assert {str(r[3])[:19] for r in found} == {"2026-11-22 18:30:05"}


def test_mariadb_takes_the_load_data_path():
    from tests.helpers import server_url

    url = server_url("mariadb")
    engine = db.engine_for(url)
    with engine.connect() as conn:
        assert mysql._local_infile(conn.connection.dbapi_connection)
    engine.dispose()


def test_every_column_type_round_trips_with_nulls(bulk_db):
    """PostgreSQL's binary COPY carries no types: each value must arrive as its column's own
    (int32 for ``integer``, 16 bytes for ``uuid``); here every kind of column of ``dependents``,
    at its edges, and a row of nulls."""
    when = datetime(2026, 11, 22, 18, 30, 5)
    engine = db.engine_for(bulk_db)
    with engine.begin() as conn:
        bulk.write(conn, db.customers, pd.DataFrame({"id": [ids(1)[0]], "created_at": [when]}))
    full = {
        "id": ids(2)[1],
        "customer_id": ids(1)[0],
        "first_name": "Émilie",
        "date_of_birth": "2015-02-28",
        "annual_income": 2_147_483_647,  # int32's largest
        "is_covered": True,
        "is_active": False,
        "coverage_start_date": "1900-01-01",
        "created_at": when,
        "updated_at": when,
        "source_row": 2,
    }
    empty = {"id": ids(3)[2], "customer_id": ids(1)[0], "created_at": when, "updated_at": when}
    frame = pd.DataFrame([full, empty])
    with engine.begin() as conn:
        bulk.write(conn, db.dependents, frame)
    names = ["id", "first_name", "date_of_birth", "annual_income", "is_covered", "is_active"]
    names += ["coverage_start_date", "source_row"]
    with engine.connect() as conn:  # through SQLAlchemy's types: SQLite keeps dates as text
        found = conn.execute(sa.select(*(db.dependents.c[n] for n in names)).order_by("id")).all()
    engine.dispose()
    assert [str(found[0][0]), *found[0][1:4]] == [full["id"], "Émilie", date(2015, 2, 28), 2_147_483_647]
    assert [bool(v) for v in found[0][4:6]] == [True, False]
    assert list(found[0][6:]) == [date(1900, 1, 1), 2]
    assert [str(found[1][0]), *found[1][1:]] == [empty["id"], *[None] * 7]


def ids(n: int) -> list[str]:
    return [f"00000000-0000-4000-8000-{i:012d}" for i in range(1, n + 1)]


def test_uuid_text_becomes_its_sixteen_bytes_nulls_and_slices_included():
    text = [str(uuid.uuid4()) for _ in range(4)] + [None, "01234567-89ab-cdef-ABCD-EF0123456789"]
    chunked = pa.chunked_array([text[:3], text[3:]])
    got = arrow.uuid_bytes(chunked).to_pylist()
    assert got == [None if t is None else uuid.UUID(t).bytes for t in text]
    assert arrow.uuid_bytes(pa.array(text)[2:]).to_pylist() == got[2:]  # an array with an offset
    assert len(arrow.uuid_bytes(pa.array([], pa.string()))) == 0


@pytest.mark.parametrize(
    "bad",
    [
        "00000000-0000-4000-8000-00000000000",  # one digit short
        "00000000-0000-4000-8000-0000000000000",  # one too many
        "00000000000040008000000000000000----",  # the dashes elsewhere
        "00000000-0000-4000-8000-00000000000g",  # not a hex digit
        # each just outside a run of hex digits: before 0, after 9, before A/a, after F/f
        *(f"00000000-0000-4000-8000-00000000000{c}" for c in "/:@G`g"),
    ],
)
def test_anything_but_a_uuid_is_refused_not_written(bad):
    with pytest.raises(ValueError, match="not a UUID"):
        arrow.uuid_bytes(pa.array([str(uuid.uuid4()), bad]))


def test_uuids_given_as_their_bytes_are_stored_as_their_text(bulk_db):
    """``uuid_series`` (a chunk's customer ids turned into bytes once) on every path."""
    ids = ["00000000-0000-4000-8000-00000000000a", "ffffffff-ffff-4fff-bfff-ffffffffffff"]
    frame = pd.DataFrame({"id": arrow.uuid_series(pd.Series(ids)), "created_at": datetime(2026, 11, 22)})
    engine = db.engine_for(bulk_db)
    with engine.begin() as conn:
        bulk.write(conn, db.customers, frame)
    engine.dispose()
    assert [str(r[0]) for r in query(bulk_db, "SELECT id FROM customers ORDER BY id")] == ids


def test_uuid_text_undoes_uuid_bytes_with_nulls():
    ids = [str(uuid.uuid4()) for _ in range(50)] + [None]
    assert arrow.uuid_text(arrow.uuid_bytes(pa.array(ids))).to_pylist() == ids


@pytest.mark.parametrize(
    "values",
    [
        pa.array([1, 2**40, -3]),
        pa.array([1, None, 3]),  # numpy would make these floats: to_pylist keeps them whole
        pa.array([*TRICKY, None]),
        pa.array([True, None, False]),
        pa.array([1.5, None]),
        pa.array([date(2015, 1, 2), None]),
        pa.nulls(2, pa.string()),
    ],
    ids=["ints", "ints with a gap", "text", "booleans", "floats", "dates", "all null"],
)
def test_executemany_gets_the_values_to_pylist_would_give(values):
    """``executemany``'s rows are made through numpy where that gives the same objects."""
    column = pa.chunked_array([values])
    made = arrow._values(column)
    assert made == column.to_pylist()
    assert [type(v) for v in made] == [type(v) for v in column.to_pylist()]


def test_sqlite_takes_many_rows_a_statement_and_the_rest_one_by_one(tmp_path):
    """More rows than one statement carries, and fewer left over: all stored, in order."""
    url = database("sqlite", tmp_path)
    n = sqlite.ROWS_AT_ONCE * 2 + 7
    when = datetime(2026, 11, 22)
    frame = pd.DataFrame({"id": [str(uuid.UUID(int=i)) for i in range(n)], "created_at": when})
    names = [None if i % 3 else f"Name {i}" for i in range(n)]
    frame["first_name"] = names
    engine = db.engine_for(url)
    with engine.begin() as conn:
        bulk.write(conn, db.customers, frame)
    engine.dispose()
    stored = query(url, "SELECT id, first_name FROM customers ORDER BY rowid")
    assert stored == list(zip(frame["id"], names, strict=True))


def test_mariadb_sessions_are_strict_whatever_the_server_says():
    """A server configured to cut over-long values in silence still refuses them here."""
    from tests.helpers import server_url

    url = server_url("mariadb")
    engine = db.engine_for(url)
    with engine.connect() as conn:
        assert "STRICT_ALL_TABLES" in conn.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar()
        server = conn.exec_driver_sql("SELECT @@GLOBAL.sql_mode").scalar()
        conn.exec_driver_sql("SET GLOBAL sql_mode = ''")  # as a lax server would have it
    row = {"id": C1, "phone": "9" * 51, "created_at": datetime(2026, 1, 1)}
    try:
        with engine.connect() as fresh, pytest.raises(sa.exc.DataError):  # a new session: strict again
            fresh.execute(db.customers.insert(), row)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text("SET GLOBAL sql_mode = :m"), {"m": server})
        engine.dispose()
