"""The bulk paths (COPY, LOAD DATA, executemany) store exactly what they were given."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from pipeline import bulk, db
from tests.conftest import query

TRICKY = [
    'Comma, "quoted" name',
    "Line\nbreak and \\backslash",
    "Émilie 😀 Ünïcode",
    "'=leading apostrophe",
]


def test_tricky_text_nulls_and_times_round_trip(any_db):
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
    engine = db.engine_for(any_db)
    with engine.begin() as conn:
        bulk.write(conn, db.customers, frame)
    engine.dispose()
    found = query(any_db, "SELECT id, first_name, last_name, created_at FROM customers ORDER BY id")
    assert [str(r[0]) for r in found] == ids
    assert [r[1] for r in found] == TRICKY
    assert [r[2] for r in found] == [None, "Jones", None, "Smith"]
    assert {str(r[3])[:19] for r in found} == {"2026-11-22 18:30:05"}


def test_mariadb_takes_the_load_data_path():
    from tests.conftest import server_url

    url = server_url("mariadb")
    engine = db.engine_for(url)
    with engine.connect() as conn:
        assert bulk._local_infile(conn.connection.dbapi_connection)
    engine.dispose()
