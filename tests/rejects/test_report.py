"""Rejects review: the XLSX a reviewer opens, PII kept masked, formulas kept text,
notifications as data, round trips through a corrected report, and rebuilt reports."""

from __future__ import annotations

import csv
import io
import json
import stat
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from pipeline.rejects import report
from pipeline.rejects.report_xlsx import WARNING_FILL
from tests.helpers import AS_OF, customers_csv, invoke, query, run_folder, write_csv

C1 = "11111111-1111-4111-8111-111111111111"
C2 = "22222222-2222-4222-8222-222222222222"
GHOST = "99999999-9999-4999-8999-999999999999"
HEADER = ["customerId", "firstName", "lastName", "birthDate", "gender", "ssn", "notes"]
ROWS = [
    [C1, "Ann", "Lee", "2019-01-04", "Female", "123-45-6789", "fine"],  # row 2: accepted
    [C1, "", "Lee", "2019-01-05", "", "", '=HYPERLINK("http://x","click")'],  # 3: no first name
    [C1, "Bob", "Lee", "2019-02-30", "Mal", "987-65-4321", "+1 555"],  # 4: bad date, bad gender
    [GHOST, "Cy", "Lee", "2019-01-06", "", "", "@SUM(A1)"],  # 5: unknown customer
    [C1, "Di", "Lee", "2019-01-07", "", "000-00-1234x", "-2+3"],  # 6: bad SSN
]


def imported(url: str, tmp: Path, *extra: str, rows=ROWS, name="in.csv"):
    invoke("customers", "load", customers_csv(tmp / "c.csv", [C1, C2]), "--db", url)
    out = tmp / "reports"
    result = invoke(
        "import",
        write_csv(tmp / name, HEADER, rows),
        "--db",
        url,
        "--as-of",
        AS_OF,
        "--report-dir",
        out,
        *extra,
    )
    return result, run_folder(out)


def test_xlsx_marks_each_offending_cell_and_summarises(sqlite_url, tmp_path):
    result, out = imported(sqlite_url, tmp_path)
    assert result.exit_code == 1
    book = load_workbook(out / "in.rejects.xlsx")
    assert book.sheetnames == ["Rejects", "Summary"]
    ws = book["Rejects"]
    header = [c.value for c in ws[1]]
    assert header == ["row", "sourceRow", "codes", "messages", *HEADER]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:K5"
    col = {name: i + 1 for i, name in enumerate(header)}
    by_row = {ws.cell(r, 1).value: r for r in range(2, ws.max_row + 1)}
    assert sorted(by_row) == [3, 4, 5, 6]

    def marked(row: int, name: str) -> str | None:
        cell = ws.cell(by_row[row], col[name])
        if cell.fill.fgColor.rgb[-6:] != WARNING_FILL.fgColor.rgb[-6:]:
            return None
        return cell.comment.text if cell.comment else ""

    assert "FIRST_NAME_REQUIRED" in marked(3, "firstName")
    assert "BIRTH_DATE_INVALID" in marked(4, "birthDate") and "GENDER_INVALID" in marked(4, "gender")
    assert marked(4, "firstName") is None
    assert "CUSTOMER_NOT_FOUND" in marked(5, "customerId")  # a row-level problem marks the customer
    assert "SSN_INVALID" in marked(6, "ssn")
    assert ws.column_dimensions["D"].width > 20  # sized to the messages

    summary = book["Summary"]
    facts = {summary.cell(r, 1).value: summary.cell(r, 2).value for r in range(1, 13)}
    assert (facts["Rows read"], facts["Accepted"], facts["Rejected"]) == (5, 1, 4)
    assert facts["Profile"] == "add-dependent" and facts["As of"] == AS_OF
    table_start = next(r for r in range(1, summary.max_row + 1) if summary.cell(r, 1).value == "Code")
    per_code = {
        summary.cell(r, 1).value: summary.cell(r, 2).value
        for r in range(table_start + 1, summary.max_row + 1)
    }
    with (out / "in.rejects.csv").open(encoding="utf-8-sig") as fh:
        csv_codes = [c for r in csv.DictReader(fh) for c in r["codes"].split(";")]
    assert per_code == {c: csv_codes.count(c) for c in set(csv_codes)}
    assert len(summary._charts) == 1


def test_formula_like_cells_stay_text(sqlite_url, tmp_path):
    _, out = imported(sqlite_url, tmp_path)
    ws = load_workbook(out / "in.rejects.xlsx")["Rejects"]
    notes = {ws.cell(r, 1).value: ws.cell(r, 11) for r in range(2, ws.max_row + 1)}
    assert notes[3].value == '=HYPERLINK("http://x","click")' and notes[3].data_type == "s"
    for row, text in ((4, "+1 555"), (5, "@SUM(A1)"), (6, "-2+3")):
        assert notes[row].value == text and notes[row].data_type == "s"
    with (out / "in.rejects.csv").open(encoding="utf-8-sig") as fh:
        csv_notes = {int(r["row"]): r["notes"] for r in csv.DictReader(fh)}
    assert csv_notes == {3: '\'=HYPERLINK("http://x","click")', 4: "'+1 555", 5: "'@SUM(A1)", 6: "'-2+3"}


def test_ssns_are_masked_everywhere_unless_asked_for(sqlite_url, tmp_path):
    result, out = imported(sqlite_url, tmp_path)
    secrets = ("987-65-4321", "987654321", "000-00-1234x", "123-45-6789")
    files = list(out.iterdir())
    assert {p.name for p in files} == {
        "in.rejects.csv",
        "in.rejects.xlsx",
        "in.notifications.jsonl",
        "in.summary.json",
    }
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        text = _text_of(path)
        assert not any(s in text for s in secrets), path
    assert not any(s in result.output for s in secrets)
    with (out / "in.rejects.csv").open(encoding="utf-8-sig") as fh:
        ssn = {int(r["row"]): r["ssn"] for r in csv.DictReader(fh)}
    assert ssn[4] == "***-**-4321"


def test_include_pii_writes_ssns_in_full_and_says_so(sqlite_url, tmp_path):
    result, out = imported(sqlite_url, tmp_path, "--include-pii")
    assert "987-65-4321" in _text_of(out / "in.rejects.csv")
    assert "987-65-4321" in _text_of(out / "in.rejects.xlsx")
    assert "SSNs are written in full" in result.stdout
    assert json.loads((out / "in.summary.json").read_text())["includesPii"] is True


def test_notifications_jsonl_carries_a_malformed_or_missing_customer_as_it_is(sqlite_url, tmp_path):
    rows = [[C1, "Al", "Lee", "2019-01-04", "", "", ""], ['x"\\y', "Bo", "Lee", "2019-01-05", "", "", ""]]
    rows += [["", "Cy", "Lee", "2019-01-06", "", "", ""]]
    _, out = imported(sqlite_url, tmp_path, rows=rows)
    lines = [json.loads(line) for line in (out / "in.notifications.jsonl").read_text().splitlines()]
    assert [(entry["row"], entry["customerId"]) for entry in lines] == [(3, 'x"\\y'), (4, None)]


def test_notifications_jsonl_is_the_api_envelope_per_row(sqlite_url, tmp_path):
    _, out = imported(sqlite_url, tmp_path)
    lines = [json.loads(line) for line in (out / "in.notifications.jsonl").read_text().splitlines()]
    assert [entry["row"] for entry in lines] == [3, 4, 5, 6]
    assert [entry["customerId"] for entry in lines] == [C1, C1, GHOST, C1]
    first = lines[1]
    assert first["message"] == "The dependent was not added."
    assert [n["code"] for n in first["notifications"]] == ["BIRTH_DATE_INVALID", "GENDER_INVALID"]
    assert set(first["notifications"][0]) == {"severity", "code", "text", "additionalData"}
    assert first["notifications"][0]["additionalData"] == {"field": "birthDate"}


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_fix_the_rejects_report_and_import_it_again(sqlite_url, tmp_path, kind):
    _, out = imported(sqlite_url, tmp_path, "--include-pii")
    fixes = {
        3: {"firstName": "Cat"},
        4: {"birthDate": "2019-02-28", "gender": "Male"},
        5: {"customerId": C2},
        6: {"ssn": "000-00-1234"},
    }
    fixed = out / f"in.rejects.{kind}"
    if kind == "xlsx":
        book = load_workbook(fixed)
        ws = book["Rejects"]
        header = [c.value for c in ws[1]]
        for r in range(2, ws.max_row + 1):
            for name, value in fixes[ws.cell(r, 1).value].items():
                ws.cell(r, header.index(name) + 1).value = value
        book.save(fixed)
    else:
        with fixed.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            r.update(fixes[int(r["row"])])
        with fixed.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    again = invoke("import", fixed, "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path / "again")
    assert again.exit_code == 0, again.output
    assert "4 rows read, 4 accepted, 0 rejected" in again.stdout
    assert query(sqlite_url, "SELECT COUNT(*) FROM dependents") == [(5,)]
    notes = query(sqlite_url, "SELECT notes FROM dependents WHERE first_name = 'Cat'")
    assert notes == [('=HYPERLINK("http://x","click")',)]  # the CSV's protective ' was taken off again


def _fix_csv(path: Path, by_source_row: dict[int, dict[str, str]]) -> Path:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r.update(by_source_row.get(int(r["sourceRow"]), {}))
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_corrected_report_keeps_each_rows_first_row_and_run_through_every_round(sqlite_url, tmp_path):
    """Fixed one row at a time, over two rounds: each report numbers its rows in the file it
    was read from and in the first file; each stored dependent keeps the first run and row."""
    _, out = imported(sqlite_url, tmp_path, "--include-pii")
    ((first,),) = query(sqlite_url, "SELECT id FROM import_runs")
    rounds = [
        (out / "in.rejects.csv", {3: {"firstName": "Cat"}}),
        (None, {4: {"birthDate": "2019-02-28", "gender": "Male"}}),
    ]
    for i, (given, fixes) in enumerate(rounds):
        corrected = given or run_folder(tmp_path / f"round{i - 1}") / "in.rejects.csv"
        args = ["--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path / f"round{i}", "--include-pii"]
        result = invoke("import", _fix_csv(corrected, fixes), *args)
        assert result.exit_code == 1, result.output
    with (run_folder(tmp_path / "round1") / "in.rejects.csv").open(encoding="utf-8-sig") as fh:
        left = [(int(r["row"]), int(r["sourceRow"]), r["codes"]) for r in csv.DictReader(fh)]
    # Round 1 read round 0's report, whose rows 2-4 were the first file's rows 4-6.
    assert left == [(3, 5, "CUSTOMER_NOT_FOUND"), (4, 6, "SSN_TOO_LONG;SSN_INVALID")]
    stored = query(
        sqlite_url,
        "SELECT first_name, origin_run_id, origin_row, source_row, import_run_id <> :f FROM dependents"
        " ORDER BY origin_row",
        f=first,
    )
    assert stored == [("Ann", None, None, 2, 0), ("Cat", first, 3, 2, 1), ("Bob", first, 4, 2, 1)]


def test_rejects_report_in_its_run_folder_names_the_run_it_came_from(sqlite_url, tmp_path):
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    invoke("import", write_csv(tmp_path / "in.csv", HEADER, ROWS), "--db", sqlite_url, "--as-of", AS_OF)
    ((first,),) = query(sqlite_url, "SELECT id FROM import_runs")
    invoke("import", tmp_path / "reports" / first / "in.rejects.csv", "--db", sqlite_url, "--as-of", AS_OF)
    assert query(sqlite_url, "SELECT source_run_id FROM import_runs WHERE id <> :f", f=first) == [(first,)]


@pytest.mark.parametrize("verdict", [True, False])
def test_report_command_rebuilds_the_reports_from_the_database(sqlite_url, tmp_path, verdict):
    """The same reports either way the import wrote them: with a database verdict in the file
    (row 5's unknown customer) after the decision; without one, while it was being made."""
    _, out = imported(sqlite_url, tmp_path, rows=ROWS if verdict else ROWS[:3] + ROWS[4:])
    ((run_id,),) = query(sqlite_url, "SELECT id FROM import_runs")
    result = invoke("report", run_id, "--db", sqlite_url, "--report-dir", tmp_path / "rebuilt")
    assert result.exit_code == 0
    rebuilt = tmp_path / "rebuilt" / run_id
    for name in ("in.rejects.csv", "in.notifications.jsonl"):
        assert (rebuilt / name).read_bytes() == (out / name).read_bytes()
    assert _rejects_sheet(rebuilt / "in.rejects.xlsx") == _rejects_sheet(out / "in.rejects.xlsx")
    assert "987-65-4321" not in _text_of(rebuilt / "in.rejects.xlsx")
    assert ("CUSTOMER_NOT_FOUND" in (out / "in.rejects.csv").read_text(encoding="utf-8-sig")) is verdict


def test_template_drop_downs_list_exactly_the_lookup_values(tmp_path):
    from schemas import PROFILES, lookups
    from schemas.fields import FIELDS

    for profile, expected in (
        (
            "add-dependent",
            {
                "gender": lookups.load("genders"),
                "relationshipType": PROFILES["carecycle"].rules["relationshipType"].one_of,
                "homeLanguage": lookups.load("home_languages"),
                "isCovered": ("true", "false"),
                "isActive": ("true", "false"),
            },
        ),
        (
            "carecycle",
            {
                "gender": PROFILES["carecycle"].rules["gender"].one_of,
                "relationshipType": PROFILES["carecycle"].rules["relationshipType"].one_of,
                "isCovered": ("true", "false"),
                "isActive": ("true", "false"),
            },
        ),
    ):
        path = tmp_path / f"{profile}.xlsx"
        assert invoke("template", path, "--profile", profile).exit_code == 0
        book = load_workbook(path)
        ws, lists = book["Dependents"], book["Lists"]
        header = [c.value for c in ws[1]]
        assert header == [f.name for f in FIELDS if f.name in PROFILES[profile].rules]  # all it stores
        assert all(c.comment and c.comment.text for c in ws[1])
        found = {}
        for dv in ws.data_validations.dataValidation:
            column = header[next(iter(dv.sqref.ranges)).min_col - 1]
            ref = dv.formula1.split("!")[1].replace("$", "")
            found[column] = tuple(c.value for row in lists[ref] for c in row)
        assert found == {k: tuple(v) for k, v in expected.items()}
        assert lists.sheet_state == "hidden"


def test_a_filled_template_imports_cleanly(sqlite_url, tmp_path):
    path = tmp_path / "t.xlsx"
    invoke("template", path)
    book = load_workbook(path)
    ws = book["Dependents"]
    column = {c.value: c.column for c in ws[1]}
    assert ws.cell(2, column["birthDate"]).number_format == "yyyy-mm-dd"
    filled = {"customerId": C1, "firstName": "Ann", "lastName": "Lee", "birthDate": date(2019, 1, 4)}
    filled |= {"gender": "Female", "homeLanguage": "isiZulu", "relationshipType": "Child"}
    for name, value in filled.items():
        ws.cell(2, column[name]).value = value
    book.save(path)
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    result = invoke("import", path, "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "1 row read, 1 accepted, 0 rejected" in result.stdout
    assert query(sqlite_url, "SELECT relationship_type FROM dependents") == [("Child",)]


def test_the_template_never_replaces_a_file_unless_forced(tmp_path):
    path = tmp_path / "t.xlsx"
    path.write_text("someone's work", encoding="utf-8")
    refused = invoke("template", path)
    assert refused.exit_code == 2
    assert refused.stderr == f"Error: {path}: exists already; pass --force to replace it\n"
    assert path.read_text(encoding="utf-8") == "someone's work"
    assert invoke("template", path, "--force").exit_code == 0
    assert path.read_bytes().startswith(b"PK")


def _rejects_sheet(path: Path) -> dict[str, bytes]:
    """The workbook's Rejects sheet, its comments and their drawing, as stored."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist() if n.endswith(("sheet1.xml", "comment1.xml", ".vml"))}
    assert len(parts) == 3, sorted(parts)
    return parts


def _text_of(path: Path) -> str:
    """A report's text, unzipping an XLSX so its sheets and shared strings are searched too."""
    if path.suffix == ".xlsx":
        import zipfile

        with zipfile.ZipFile(path) as zf:
            return "".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())
    return path.read_text(encoding="utf-8-sig")


def test_control_characters_become_replacement_characters_in_the_workbook_and_csv(sqlite_url, tmp_path):
    rows = [[C1, "", "Lee", "2019-01-05", "", "", "bell\x07 and tab\tkept"]]
    result, out = imported(sqlite_url, tmp_path, rows=rows)
    assert result.exit_code == 1
    ws = load_workbook(out / "in.rejects.xlsx")["Rejects"]
    assert ws.cell(2, 11).value == "bell\ufffd and tab\tkept"
    with (out / "in.rejects.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert next(csv.DictReader(fh))["notes"] == "bell\ufffd and tab\tkept"


def _xml_refuses(char: str) -> bool:
    from lxml import etree

    try:
        etree.Element("t").text = char
    except ValueError:
        return True
    return False


def test_cleaning_replaces_exactly_what_xml_refuses():
    """Every character of the Basic Multilingual Plane but the surrogates (no decoder here
    makes one): what lxml, so openpyxl, refuses becomes U+FFFD, and nothing else changes."""
    import pandas as pd

    from pipeline.rejects.report import visible
    from pipeline.rejects.report_xlsx import _safe

    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    refused = [_xml_refuses(c) for c in chars]
    assert sum(refused) == 31  # 29 C0 controls, U+FFFE, U+FFFF
    cleaned = visible(pd.Series(chars, dtype="str"))
    assert (cleaned == "\ufffd").tolist() == [r or c == "\ufffd" for r, c in zip(refused, chars, strict=True)]
    assert [c for c, r in zip(cleaned, refused, strict=True) if not r] == [
        c for c, r in zip(chars, refused, strict=True) if not r
    ]
    assert [_safe(c) for c in chars] == cleaned.tolist()


@pytest.mark.parametrize("char", ["\x07", "\ufffe", "\uffff"])
def test_a_character_xml_cannot_hold_in_any_column_leaves_the_workbook_whole(sqlite_url, tmp_path, char):
    """In a text field the rules refuse it; in a column no rule reads (here ``extra``) it is
    only shown. Either way the workbook is written and shows U+FFFD."""
    header = [*HEADER, "extra"]
    rows = [[C1, "", "Lee", "2019-01-05", "", "", f"n{char}", f"x{char}"]]
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    result = invoke(
        "import",
        write_csv(tmp_path / "in.csv", header, rows),
        *("--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path / "r"),
    )
    assert result.exit_code == 1, result.output
    ws = load_workbook(run_folder(tmp_path / "r") / "in.rejects.xlsx")["Rejects"]
    assert ws.cell(2, 3).value == "FIRST_NAME_REQUIRED;NOTES_INVALID"
    assert [ws.cell(2, 11).value, ws.cell(2, 12).value] == ["n\ufffd", "x\ufffd"]


def test_a_cell_longer_than_excel_holds_is_cut_in_the_workbook_and_whole_in_the_csv(sqlite_url, tmp_path):
    from pipeline.rejects.report_xlsx import CUT_NOTE, MAX_CELL

    rows = [[C1, "Ann", "Lee", "2019-01-05", "", "", "n" * 40_000]]
    result, out = imported(sqlite_url, tmp_path, rows=rows)
    assert result.exit_code == 1
    ws = load_workbook(out / "in.rejects.xlsx")["Rejects"]
    assert ws.cell(2, 3).value == "CELL_TOO_LONG;NOTES_TOO_LONG"
    assert len(ws.cell(2, 11).value) == MAX_CELL and ws.cell(2, 11).value.endswith(CUT_NOTE)
    with (out / "in.rejects.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert next(csv.DictReader(fh))["notes"] == "n" * 40_000


def test_an_unfixed_control_character_is_refused_again_when_the_report_is_imported(sqlite_url, tmp_path):
    rows = [[C1, "Ann", "Lee", "2019-01-05", "", "", "bell\x07"]]
    result, out = imported(sqlite_url, tmp_path, rows=rows)
    assert result.exit_code == 1
    again = invoke(
        "import",
        out / "in.rejects.csv",
        "--db",
        sqlite_url,
        "--as-of",
        AS_OF,
        "--report-dir",
        tmp_path / "r2",
    )
    assert again.exit_code == 1
    with (run_folder(tmp_path / "r2") / "in.rejects.csv").open(encoding="utf-8-sig", newline="") as fh:
        line = next(csv.DictReader(fh))
    assert (line["codes"], line["notes"]) == ("NOTES_INVALID", "bell\ufffd")


AWKWARD = [
    "",
    "plain",
    "a,b",
    'say "hi"',
    '"',
    "line\nbreak",
    "cr\rhere",
    "crlf\r\n",
    " lead",
    "tail ",
    "é ß 🙂",
    "'=1+1",
    ";",
    "\t",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_the_csv_rows_are_what_csv_writer_writes(value):
    columns = [pd.Series([2, 3]), pd.Series([value, None], dtype="str"), pd.Series(["x", value], dtype="str")]
    expected = io.StringIO(newline="")
    csv.writer(expected).writerows([[2, value, "x"], [3, "", value]])
    assert report.csv_rows(columns) == expected.getvalue()


def test_csv_rows_of_no_rows_is_nothing():
    assert report.csv_rows([pd.Series([], dtype="int64"), pd.Series([], dtype="str")]) == ""


def test_openpyxl_is_imported_only_when_a_workbook_is_opened():
    """Its import is not paid before an import reads its first row."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    code = "import sys, pipeline.run, pipeline.cli; print('openpyxl' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "False"
