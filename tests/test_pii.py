"""PII canaries: a unique SSN, email and phone ride on rows that take every path (each kind
of row rule, a database rule, an accepted row) through every outcome (committed, dry run,
aborted by the reject-rate guard, a database failure that quotes values, an internal error).
Then everything the import leaves behind is searched: none of the three may appear on the
terminal, in a details file, the summary, the notifications, the ledger or a leftover
temporary file, and the SSN nowhere in the reports, where the README says it is masked."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers import AS_OF, C1, customers_csv, invoke, query, run_folder, write_csv

SSN, EMAIL, PHONE = "918-27-3645", "canary.x7q@example.org", "0825550199"
CANARIES = (SSN, EMAIL, PHONE)
HEADER = ["customerId", "firstName", "lastName", "birthDate", "ssn", "email", "phone"]
STRANGER = "99999999-9999-4999-8999-999999999999"
ROWS = [
    [C1, "Ann", "Lee", "2019-01-04", SSN, EMAIL, PHONE],  # accepted
    [C1, "", "Lee", "2019-01-05", SSN, EMAIL, PHONE],  # FIRST_NAME_REQUIRED
    [C1, "Bo", "Lee", "2019-01-06", SSN + "99", "canary@@x7q", PHONE],  # SSN_INVALID, EMAIL_INVALID
    [STRANGER, "Cy", "Lee", "2019-01-07", SSN, EMAIL, PHONE],  # CUSTOMER_NOT_FOUND
]
IN_CELLS = (EMAIL, PHONE, "canary@@x7q")  # what the rejects CSV and workbook show, as typed


def left_behind(root: Path) -> dict[str, str]:
    """Every file under ``root`` as text (a workbook's parts unzipped)."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as zf:
                found[str(path)] = "".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())
        elif (path.is_file() and path.suffix != ".db" and path.suffix != ".csv") or path.name.endswith(
            ".rejects.csv"
        ):
            found[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    return found


def broken(*args, **kwargs):
    raise RuntimeError(f"bug near {SSN} {EMAIL} {PHONE}")


OUTCOMES = {
    "committed": ([], None, 1),
    "dry run": (["--dry-run"], None, 1),
    "aborted": (["--max-reject-rate", "0.1"], None, 3),
    "internal error": ([], "bug", 70),
}
CASES = [(kind, *case) for kind in ("sqlite", "postgres") for case in OUTCOMES.values()]
CASES.append(("postgres", [], "quote", 4))  # a database failure whose message quotes a value
IDS = [f"{kind}-{name}" for kind in ("sqlite", "postgres") for name in OUTCOMES] + ["postgres-quoting"]


@pytest.mark.parametrize(("kind", "extra", "fault", "status"), CASES, ids=IDS)
def test_no_canary_where_the_readme_says_it_is_not(
    kind, extra, fault, status, tmp_path, monkeypatch, request
):
    from pipeline.database import decide_sql
    from pipeline.rows.validate import Validator

    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    if fault == "bug":
        monkeypatch.setattr(Validator, "failures", broken)
    if fault == "quote":  # a statement PostgreSQL refuses with the value in its message
        monkeypatch.setattr(
            decide_sql, "UNKNOWN_CUSTOMERS", decide_sql.UNKNOWN_CUSTOMERS + " OR CAST(s.email AS integer) > 0"
        )
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", url)
    path = write_csv(tmp_path / "d.csv", HEADER, ROWS)
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("import", path, "--db", url, "--as-of", AS_OF, "--report-dir", out, *extra)
    assert result.exit_code == status, result.output
    for canary in (*CANARIES, "canary@@x7q"):
        assert canary not in result.output
    for where, text in left_behind(tmp_path / "out").items() | left_behind(tmp_path / "tmp").items():
        assert SSN not in text, where
        if not where.endswith((".rejects.csv", ".rejects.xlsx")):
            assert not any(c in text for c in IN_CELLS), where
    ledger = " ".join(str(m) for (m,) in query(url, "SELECT message FROM import_runs"))
    assert not any(c in ledger for c in (*CANARIES, *IN_CELLS))
    assert not list((tmp_path / "tmp").iterdir())  # the spool is gone however the run ended
    if status == 1 and not extra:
        stored = query(url, "SELECT ssn, email, phone FROM dependents")
        assert stored == [(SSN, EMAIL, PHONE)]  # where it belongs


def test_the_reports_show_ssns_in_full_only_when_asked(sqlite_url, tmp_path):
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    path = write_csv(tmp_path / "d.csv", HEADER, ROWS)
    out = tmp_path / "out"
    invoke("import", path, "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", out, "--include-pii")
    assert SSN in (run_folder(out) / "d.rejects.csv").read_text(encoding="utf-8-sig")


@pytest.mark.parametrize(
    ("ssn", "shown"),
    [
        ("123-45-6789", "***-**-6789"),
        ("12-345-6789", "**-***-6789"),  # the misplaced dash shows
        ("1234567890123", "*********0123"),  # so does the length
        ("000-00-1234x", "***-**-*234x"),
        (" 123456789 ", "*****6789"),
        ("12345", "*2345"),
        ("1234", "****"),  # nothing left to hide behind: all masked
        ("", ""),
    ],
)
def test_a_masked_ssn_keeps_its_shape_not_its_digits(ssn, shown):
    import pandas as pd

    from pipeline.pii import mask_ssn

    assert mask_ssn(pd.Series([ssn, None], dtype="str")).tolist()[0] == shown
    assert pd.isna(mask_ssn(pd.Series([ssn, None], dtype="str")).tolist()[1])


MARK = "Zq7"  # in every personal cell below, so a message that quotes one is found
PERSONAL_CELLS = {  # code -> (field, a cell holding MARK that breaks its rule)
    "FIRST_NAME_TOO_LONG": ("firstName", MARK * 100),
    "FIRST_NAME_INVALID": ("firstName", MARK + "\x01"),
    "MIDDLE_NAME_TOO_LONG": ("middleName", MARK * 100),
    "MIDDLE_NAME_INVALID": ("middleName", MARK + "\x01"),
    "LAST_NAME_TOO_LONG": ("lastName", MARK * 100),
    "LAST_NAME_INVALID": ("lastName", MARK + "\x01"),
    "BIRTH_DATE_INVALID": ("birthDate", "07/03/2019"),
    "BIRTH_DATE_IN_FUTURE": ("birthDate", "2031-07-03"),
    "DEPENDENT_NOT_UNDER_18": ("birthDate", "1971-07-03"),
    "PHONE_TOO_LONG": ("phone", MARK * 100),
    "PHONE_INVALID": ("phone", MARK + "\x01"),
    "EMAIL_TOO_LONG": ("email", MARK + "@" + "x" * 255 + ".org"),
    "EMAIL_INVALID": ("email", MARK + "@@example.org"),
    "SSN_TOO_LONG": ("ssn", "918-27-3645" + MARK),
    "SSN_INVALID": ("ssn", MARK),
}


def test_no_message_of_a_personal_field_quotes_its_cell(sqlite_url, tmp_path):
    """Every code of a name, birth date, phone, email or SSN, each on a row of its own."""
    header = ["customerId", "firstName", "middleName", "lastName", "birthDate", "phone", "email", "ssn"]
    fine = dict(zip(header, [C1, "Ann", "", "Lee", "2019-01-04", "", "", ""], strict=True))
    rows = [list((fine | {f: cell}).values()) for f, cell in PERSONAL_CELLS.values()]
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    args = ["--as-of", AS_OF, "--report-dir", tmp_path / "out"]
    result = invoke("import", write_csv(tmp_path / "d.csv", header, rows), "--db", sqlite_url, *args)
    assert result.exit_code == 1, result.output
    folder = run_folder(tmp_path / "out")
    lines = (folder / "d.notifications.jsonl").read_text().splitlines()
    given = [n["code"] for line in lines for n in json.loads(line)["notifications"]]
    assert set(PERSONAL_CELLS) <= set(given)
    texts = [
        n["text"] + json.dumps(n["additionalData"])
        for line in lines
        for n in json.loads(line)["notifications"]
    ]
    for code, (_, cell) in PERSONAL_CELLS.items():
        assert not [t for t in texts if MARK in t or cell in t], code
