"""Mapping files: another system's export read as a dependents sheet, by its own headers,
values, sheet, header row and date order."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.helpers import AS_OF, C1, HEADER, SAMPLES, customers_csv, invoke, query, run_folder, write_csv

EXPORT = SAMPLES / "export.xlsx"
MAPPING = SAMPLES / "export.mapping.toml"
STORED = "SELECT first_name, gender, relationship_type, home_language, phone, date_of_birth FROM dependents"


def test_an_export_with_a_mapping_loads_every_field_and_reports_rows_as_the_sheet_numbers_them(
    sqlite_url, tmp_path
):
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    args = ["--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path / "r"]
    result = invoke("import", EXPORT, "--mapping", MAPPING, *args, "--on-unknown-column", "fail")
    assert result.exit_code == 1, result.output
    assert result.stderr == ""  # no column ignored by surprise
    assert sorted(query(sqlite_url, STORED)) == [
        ("Anke", "Female", "Child", "Afrikaans", None, "2020-01-30"),
        ("Kabelo", "Male", "Child", "Sesotho", "0821110002", "2016-11-02"),
        ("Lerato", "Female", "Child", "isiZulu", "0821110001", "2019-04-25"),
    ]
    with (run_folder(tmp_path / "r") / "export.rejects.csv").open(encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.DictReader(fh))
    # The header is on row 3: the data rows are 4 to 8, and the report shows the cells as read.
    assert [(r["row"], r["codes"], r["Sex"], r["Relationship"]) for r in lines] == [
        ("7", "GENDER_INVALID", "X", "Daughter"),
        ("8", "BIRTH_DATE_INVALID", "M", "Son"),
    ]


def test_without_the_mapping_the_export_is_refused_for_its_headers(sqlite_url):
    result = invoke("import", EXPORT, "--db", sqlite_url, "--sheet", "Dependents export")
    assert result.exit_code == 2
    assert "missing required column(s)" in result.stderr
    assert "the header (sheet 'Dependents export', row 1) has: Dependents export" in result.stderr


def test_the_command_line_beats_the_mapping_file(sqlite_url, tmp_path):
    """--header-row 1 reads the title row as the header: refused, so the flag was used."""
    result = invoke("import", EXPORT, "--mapping", MAPPING, "--db", sqlite_url, "--header-row", "1")
    assert result.exit_code == 2
    assert "missing required column(s): customerId, firstName, lastName, birthDate" in result.stderr


def test_a_csv_header_row_below_titles_keeps_the_sheet_row_numbers(sqlite_url, tmp_path):
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    path = tmp_path / "titled.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerows(
            [["Nightly export"], [], HEADER, [C1, "Ann", "Lee", "2019-01-04"], [C1, "", "Lee", "2019-01-05"]]
        )
    out = tmp_path / "r"
    result = invoke(
        "import", path, "--db", sqlite_url, "--as-of", AS_OF, "--header-row", "3", "--report-dir", out
    )
    assert result.exit_code == 1, result.output
    assert query(sqlite_url, "SELECT first_name, source_row FROM dependents") == [("Ann", 4)]
    with (run_folder(out) / "titled.rejects.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert [r["row"] for r in csv.DictReader(fh)] == ["5"]


BAD_MAPPINGS = {
    "not TOML": ("[columns\n", "not valid TOML"),
    "an unknown key": ('shet = "x"\n', "unknown key 'shet'"),
    "an unknown field": ('[columns]\n"Sex" = "sex"\n', "columns.'Sex': 'sex' is not a field"),
    "two columns to one field": (
        '[columns]\n"Sex" = "gender"\n"Gender" = "gender"\n',
        "columns 'Sex' and 'Gender' both map to gender",
    ),
    "a value not allowed": (
        '[values.relationshipType]\n"Son" = "Kid"\n',
        "values.relationshipType: 'Son' maps to 'Kid', which relationshipType does not allow "
        "(allowed: Child, Other, Parent, Sibling, Spouse)",
    ),
    "values for a free-text field": ('[values.firstName]\n"A" = "B"\n', "values.firstName: only these"),
    "a header row of 0": ("header_row = 0\n", "header_row: rows count from 1"),
    "a date order": ('date_order = "YMD"\n', "date_order: 'YMD' is neither DMY nor MDY"),
}


@pytest.mark.parametrize("case", BAD_MAPPINGS)
def test_a_bad_mapping_file_is_exit_2_naming_the_key_and_nothing_is_written(sqlite_url, tmp_path, case):
    text, said = BAD_MAPPINGS[case]
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    result = invoke("import", EXPORT, "--mapping", bad, "--db", sqlite_url, "--report-dir", tmp_path / "r")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {bad}: {said}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert query(sqlite_url, "SELECT COUNT(*) FROM import_runs") == [(0,)]
    assert not (tmp_path / "r").exists()


def test_unknown_columns_warn_naming_at_most_ten_or_refuse_the_file(sqlite_url, tmp_path):
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    extra = [f"extra{n}" for n in range(12)]
    path = write_csv(tmp_path / "d.csv", [*HEADER, *extra], [[C1, "Ann", "Lee", "2019-01-04", *[""] * 12]])
    args = ["--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path / "r"]
    refused = invoke("import", path, *args, "--on-unknown-column", "fail")
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"Error: d.csv: unknown column(s): {', '.join(extra[:10])} and 2 more; map or ignore them "
        "in a mapping file, or pass --on-unknown-column warn\n"
    )
    assert query(sqlite_url, "SELECT COUNT(*) FROM dependents") == [(0,)]
    warned = invoke("import", path, *args)
    assert warned.exit_code == 0
    assert warned.stderr == f"Warning: ignored unknown column(s): {', '.join(extra[:10])} and 2 more\n"


def test_a_column_ignored_on_purpose_is_not_unknown(sqlite_url, tmp_path):
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    path = write_csv(tmp_path / "d.csv", [*HEADER, "Branch"], [[C1, "Ann", "Lee", "2019-01-04", "North"]])
    mapping = Path(tmp_path / "m.toml")
    mapping.write_text('[columns]\n" branch " = ""\n', encoding="utf-8")
    args = ["--db", sqlite_url, "--as-of", AS_OF, "--on-unknown-column", "fail", "--mapping", mapping]
    result = invoke("import", path, *args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
