"""Lookups as reference data: filled with the defaults by ``db init``, changed by
``lookups load``, read by each import (which records the versions it used), and never
stripped of a value stored dependents hold."""

from __future__ import annotations

import json
import tomllib

import pytest

from schemas.lookups import load as defaults
from tests.helpers import AS_OF, C1, SAMPLES, customers_csv, database, invoke, query, run_folder, write_csv

HEADER = ["customerId", "firstName", "lastName", "birthDate", "homeLanguage"]


def values_csv(path, *values: str):
    return write_csv(path, ["value"], [[v] for v in values])


def listed(url: str, name: str) -> list[str]:
    result = invoke("lookups", "list", name, "--db", url)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def imported(url: str, tmp_path, *languages: str):
    """Import one dependent per language; returns the exit status and the rejected rows' codes."""
    rows = [[C1, f"Kid{i}", "Lee", f"2019-01-{i + 1:02d}", lang] for i, lang in enumerate(languages)]
    path = write_csv(tmp_path / "d.csv", HEADER, rows)
    out = tmp_path / "out"
    result = invoke("import", path, "--db", url, "--as-of", AS_OF, "--report-dir", out, "--force")
    jsonl = run_folder(out) / "d.notifications.jsonl"
    codes = [json.loads(line)["notifications"][0]["code"] for line in jsonl.open()]
    return result.exit_code, codes


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def url(request, tmp_path) -> str:
    found = database(request.param, tmp_path)
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", found)
    return found


def test_db_init_fills_each_lookup_with_its_defaults(url):
    assert listed(url, "genders") == ["# genders, version 1: 5 values", *defaults("genders")]
    assert listed(url, "home_languages")[1:] == list(defaults("home_languages"))


def test_a_loaded_language_is_accepted_and_the_run_records_the_versions(url, tmp_path):
    assert imported(url, tmp_path, "Zulu") == (1, ["HOME_LANGUAGE_INVALID"])
    result = invoke("lookups", "load", "home_languages", values_csv(tmp_path / "l.csv", "Zulu"), "--db", url)
    assert result.stdout == "home_languages: version 2, 1 added, 0 removed, 14 values\n"
    assert imported(url, tmp_path, "zulu") == (0, [])
    assert query(url, "SELECT home_language FROM dependents") == [("Zulu",)]
    versions = [json.loads(v) for (v,) in query(url, "SELECT lookups FROM import_runs ORDER BY started_at")]
    assert versions == [{"genders": 1, "home_languages": 1}, {"genders": 1, "home_languages": 2}]


def test_a_removed_value_is_rejected_and_a_used_one_cannot_be_removed(url, tmp_path):
    assert imported(url, tmp_path, "English") == (0, [])
    kept = values_csv(tmp_path / "l.csv", "English", "isiZulu")
    result = invoke("lookups", "load", "home_languages", kept, "--db", url, "--replace")
    assert result.stdout == "home_languages: version 2, 0 added, 11 removed, 2 values\n"
    assert imported(url, tmp_path, "Afrikaans") == (1, ["HOME_LANGUAGE_INVALID"])
    without = values_csv(tmp_path / "l2.csv", "isiZulu")
    result = invoke("lookups", "load", "home_languages", without, "--db", url, "--replace")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: home_languages: cannot remove values stored dependents hold: 'English' (1 dependents)\n"
    )
    assert listed(url, "home_languages") == ["# home_languages, version 2: 2 values", "English", "isiZulu"]


def test_loading_what_is_there_changes_nothing(sqlite_url, tmp_path):
    invoke("db", "init", "--db", sqlite_url)
    same = values_csv(tmp_path / "l.csv", "male", " Female ")
    result = invoke("lookups", "load", "genders", same, "--db", sqlite_url)
    assert result.stdout == "genders: unchanged at version 1\n"


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("name\nZulu\n", "l.csv: a lookup file is CSV with a `value` column"),
        ("value\n\n", "l.csv: no values; a lookup list cannot be empty"),
        ("value\nOk\n" + "x" * 101 + "\n", "l.csv: row 3: a homeLanguage is at most 100 characters"),
    ],
)
def test_a_bad_lookup_file_is_refused_in_one_line_and_changes_nothing(sqlite_url, tmp_path, content, said):
    invoke("db", "init", "--db", sqlite_url)
    (tmp_path / "l.csv").write_text(content)
    result = invoke("lookups", "load", "home_languages", tmp_path / "l.csv", "--db", sqlite_url, "--replace")
    assert (result.exit_code, result.stderr) == (2, f"Error: {said}\n")
    assert listed(sqlite_url, "home_languages")[0] == "# home_languages, version 1: 13 values"


def test_the_longest_value_a_column_holds_is_loaded(sqlite_url, tmp_path):
    invoke("db", "init", "--db", sqlite_url)
    result = invoke(
        "lookups", "load", "genders", values_csv(tmp_path / "l.csv", "g" * 50), "--db", sqlite_url
    )
    assert result.exit_code == 0 and listed(sqlite_url, "genders")[-1] == "g" * 50
    result = invoke(
        "lookups", "load", "genders", values_csv(tmp_path / "l.csv", "g" * 51), "--db", sqlite_url
    )
    assert result.exit_code == 2


def test_the_template_and_a_suggested_mapping_offer_the_databases_lists(url, tmp_path):
    from openpyxl import load_workbook

    invoke("lookups", "load", "home_languages", values_csv(tmp_path / "l.csv", "Zulu"), "--db", url)
    assert invoke("template", tmp_path / "t.xlsx", "--db", url).exit_code == 0
    lists = [c.value for row in load_workbook(tmp_path / "t.xlsx")["Lists"].iter_rows() for c in row]
    assert "Zulu" in lists and "isiZulu" in lists
    draft = tomllib.loads(invoke("mapping", "suggest", SAMPLES / "export.xlsx", "--db", url).stdout)
    assert draft["values"]["homeLanguage"] == {"Sotho": "Sesotho", "Xhosa": "isiXhosa"}  # Zulu is allowed now


def test_without_a_database_the_template_offers_the_shipped_lists(tmp_path):
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert invoke("template", tmp_path / "t.xlsx", "--db", missing).exit_code == 0
    assert not (tmp_path / "none.db").exists()
