"""``dependents mapping suggest``: a draft mapping file for an export, to check and fill."""

from __future__ import annotations

import tomllib

from tests.helpers import AS_OF, SAMPLES, invoke, query, write_csv

EXPORT = SAMPLES / "export.xlsx"


def test_the_draft_maps_what_it_can_lists_the_rest_and_proposes_allowed_values(tmp_path):
    out = tmp_path / "draft.toml"
    result = invoke("mapping", "suggest", EXPORT, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stderr == f"Draft mapping for export.xlsx: {out}\n"
    draft = tomllib.loads(out.read_text(encoding="utf-8"))
    assert (draft["sheet"], draft["header_row"], draft["date_order"]) == ("Dependents export", 3, "MDY")
    assert draft["columns"] == {
        "Customer ID": "customerId",
        "First Name": "firstName",
        "Last Name": "lastName",
        "Date of Birth": "birthDate",
        "Sex": "gender",
        "Relationship": "relationshipType",
        "Language": "homeLanguage",
        "Phone Number": "phone",  # by closeness of spelling
        "E-mail": "email",
        "Notes (internal)": "",  # nothing close: left for a person
    }
    assert draft["values"] == {
        "gender": {"F": "Female", "M": "Male", "X": ""},
        "relationshipType": {"Daughter": "Child", "Son": "Child"},
        "homeLanguage": {"Sotho": "Sesotho", "Xhosa": "isiXhosa", "Zulu": "isiZulu"},
    }
    text = out.read_text(encoding="utf-8")
    assert '= "phone"  # closeness 0.62' in text
    assert '"X" = ""  # no allowed value found' in text


def test_the_draft_with_its_blanks_filled_imports_the_export(sqlite_url, tmp_path):
    draft = tmp_path / "draft.toml"
    invoke("mapping", "suggest", EXPORT, "-o", draft)
    draft.write_text(draft.read_text(encoding="utf-8").replace('"X" = ""', '"X" = "Other"'), encoding="utf-8")
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    args = ["--db", sqlite_url, "--as-of", AS_OF, "--mapping", draft, "--on-unknown-column", "fail"]
    result = invoke("import", EXPORT, *args)
    assert result.exit_code == 1, result.output  # 13/01/2018 is no date in MDY
    assert "5 rows read, 4 accepted, 1 rejected" in result.stdout
    assert ("Zara", "Other") in query(sqlite_url, "SELECT first_name, gender FROM dependents")


def test_a_csv_draft_goes_to_stdout_and_an_existing_file_is_not_overwritten(tmp_path):
    path = write_csv(
        tmp_path / "d.csv", ["ID", "Name", "Surname", "DOB"], [["x", "Ann", "Lee", "25/04/2019"]]
    )
    result = invoke("mapping", "suggest", path)
    assert result.exit_code == 0
    assert 'date_order = "DMY"' in result.stdout and '"ID" = "customerId"' not in result.stdout
    taken = tmp_path / "taken.toml"
    taken.write_text("keep me", encoding="utf-8")
    refused = invoke("mapping", "suggest", path, "-o", taken)
    assert refused.exit_code == 2
    assert refused.stderr == f"Error: {taken}: exists already; name another file or remove it\n"
    assert taken.read_text(encoding="utf-8") == "keep me"
