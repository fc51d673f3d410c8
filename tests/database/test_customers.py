"""``customers load``: a customer row that breaks a rule is rejected with its code into a
report, as a dependent's row is, and the rest of the export loads."""

from __future__ import annotations

import csv

import pytest

from tests.helpers import invoke, query, write_csv

C1 = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
HEADER = ["id", "firstName", "lastName", "email", "phone"]


def customer(n: int, **cells: str) -> list[str]:
    """A valid row (id ending in ``n``), with ``cells`` replacing its values."""
    row = {"id": f"{C1[:-4]}{n:04d}", "firstName": "Ann", "lastName": "Lee", "email": "a@x.org", "phone": "1"}
    return list({**row, **cells}.values())


# Each rule at its boundary: the last valid value loads, the first invalid one gets its code.
RULES = [
    ({"id": ""}, "CUSTOMER_ID_REQUIRED"),
    ({"id": "not-a-uuid"}, "CUSTOMER_ID_INVALID"),
    ({"firstName": "x" * 255}, None),
    ({"firstName": "x" * 256}, "FIRST_NAME_TOO_LONG"),
    ({"lastName": "x" * 255}, None),
    ({"lastName": "x" * 256}, "LAST_NAME_TOO_LONG"),
    ({"lastName": "Le\x00e"}, "LAST_NAME_INVALID"),
    ({"email": "x" * 255}, None),
    ({"email": "x" * 256}, "EMAIL_TOO_LONG"),
    ({"phone": "1" * 50}, None),
    ({"phone": "1" * 51}, "PHONE_TOO_LONG"),
    ({"phone": "08\x01"}, "PHONE_INVALID"),
]


@pytest.mark.parametrize(("cells", "code"), RULES, ids=[code or f"{next(iter(c))} ok" for c, code in RULES])
def test_each_rule_at_its_boundary(sqlite_url, tmp_path, cells, code):
    path = write_csv(tmp_path / "c.csv", HEADER, [customer(1), customer(2, **cells)])
    result = invoke("customers", "load", path, "--db", sqlite_url, "--report-dir", tmp_path / "r")
    if code is None:
        assert result.exit_code == 0, result.output
        assert query(sqlite_url, "SELECT COUNT(*) FROM customers") == [(2,)]
        return
    assert result.exit_code == 1, result.output
    assert query(sqlite_url, "SELECT COUNT(*) FROM customers") == [(1,)]
    (report,) = (tmp_path / "r").glob("customers-*/c.rejects.csv")
    with report.open(encoding="utf-8-sig", newline="") as fh:
        (line,) = list(csv.DictReader(fh))
    assert (line["row"], line["codes"]) == ("3", code)


def test_a_broken_export_loads_its_good_rows_and_reports_the_rest(any_db, tmp_path):
    rows = [customer(1), customer(2, id="nope"), customer(3, phone="1" * 51), customer(4)]
    header = [*HEADER, "loyaltyTier"]
    path = write_csv(tmp_path / "c.csv", header, [[*r, "gold"] for r in rows])
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"{customer(5)[0]},Too,Many,a@x.org,1,gold,extra\n")  # row 6: a cell too many
    result = invoke("customers", "load", path, "--db", any_db, "--report-dir", tmp_path / "r")
    assert result.exit_code == 1, result.output
    assert "c.csv: 5 customers read, 2 added, 0 already present, 3 rejected." in result.stdout
    assert result.stderr == "Warning: ignored unknown column(s): loyaltyTier\n"
    assert query(any_db, "SELECT COUNT(*) FROM customers") == [(2,)]
    (report,) = (tmp_path / "r").glob("customers-*/c.rejects.csv")
    assert f"Rejects report: {report}" in result.stdout
    assert oct(report.stat().st_mode & 0o777) == "0o600"
    with report.open(encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert [(r["row"], r["codes"], r["id"]) for r in lines] == [
        ("3", "CUSTOMER_ID_INVALID", "nope"),
        ("4", "PHONE_TOO_LONG", customer(3)[0]),
        ("6", "ROW_CELL_COUNT", customer(5)[0]),
    ]
    assert lines[1]["messages"] == "phone is longer than 50 characters."
    again = invoke("customers", "load", path, "--db", any_db, "--report-dir", tmp_path / "r")
    assert "2 already present, 3 rejected." in again.stdout


def test_a_clean_export_writes_no_report(sqlite_url, tmp_path):
    path = write_csv(tmp_path / "c.csv", HEADER, [customer(1)])
    result = invoke("customers", "load", path, "--db", sqlite_url, "--report-dir", tmp_path / "r")
    assert result.exit_code == 0
    assert result.stdout == "c.csv: 1 customer read, 1 added, 0 already present, 0 rejected.\n"
    assert not (tmp_path / "r").exists()
