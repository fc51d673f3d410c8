"""``--on-existing update|skip``: a row whose dependent is stored already updates it from its
non-empty cells, or is skipped; every count, the history and the limit, on every database."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.helpers import (
    ANN,
    AS_OF,
    BOB,
    C1,
    CID,
    FULL_HEADER,
    database,
    dependents_in,
    import_rows,
    invoke,
    query,
    run_folder,
    run_of,
    write_csv,
)

KINDS = ["sqlite", "postgres", "mariadb"]
COUNTS = "status, accepted, inserted, updated, unchanged, skipped, rejected"


def as_text(url: str, column: str, where: str) -> str:
    """A dependent's ``column`` as ``dependent_changes`` spells it (the dialect's ``text_of``)."""
    from pipeline.database import db, dialects

    engine = db.engine_for(url)
    sql = dialects.of(engine).text_of(column, db.dependents.c[column].type)
    engine.dispose()
    return query(url, f"SELECT {sql} FROM dependents WHERE {where}")[0][0]


def changes(url: str) -> list[tuple]:
    return query(url, "SELECT field, old_value, new_value FROM dependent_changes ORDER BY field")


@pytest.mark.parametrize("kind", KINDS)
def test_update_changes_the_fields_given_and_leaves_empty_cells_alone(kind, tmp_path):
    url = database(kind, tmp_path)
    assert import_rows(url, tmp_path, [ANN, BOB]).exit_code == 0
    before = dependents_in(url)
    # Ann: matched with other spelling, new phone and coverage, empty gender and ssn cells.
    ann = [C1, " ann ", "LEE", "2015-01-04", "", "555-1111", "", "false", "first"]
    result = import_rows(url, tmp_path, [ann, BOB], "--on-existing", "update", name="fix.csv")
    assert result.exit_code == 0, result.output
    assert "2 accepted (0 inserted, 1 updated, 1 unchanged), 0 rejected" in result.stdout
    after = dependents_in(url)
    assert after[1] == before[1]  # Bob: the same values, nothing written, updated_at untouched
    name, gender, phone, ssn, covered, notes, created, updated, run = after[0]
    assert (name, gender, phone, ssn, bool(covered), notes) == (
        "Ann",
        "Female",
        "555-1111",
        "123-45-6789",
        False,
        "first",
    )
    started = query(url, "SELECT started_at FROM import_runs WHERE file_name = 'fix.csv'")[0][0]
    assert created == before[0][6] and run == before[0][8]
    assert str(updated)[:19] == str(started)[:19]  # MariaDB keeps whole seconds
    assert changes(url)[:2] == [("is_covered", "true", "false"), ("phone", "555-1000", "555-1111")]
    assert [c[0] for c in changes(url)] == ["is_covered", "phone", "updated_at"]
    # The history's new updated_at is the text of the value stored, as its old one was.
    (_, old, new), stored = changes(url)[2], as_text(url, "updated_at", "first_name = 'Ann'")
    assert new == stored and old == as_text(url, "updated_at", "first_name = 'Bob'")
    assert run_of(url, "fix.csv", COUNTS) == ("succeeded", 2, 0, 1, 1, 0, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_update_across_a_chunk_boundary_with_new_rows_and_a_repeat(kind, tmp_path):
    url = database(kind, tmp_path)
    assert import_rows(url, tmp_path, [ANN, BOB]).exit_code == 0
    rows = [CID, [*BOB[:5], "555-2222", *BOB[6:]], ANN, [*BOB[:5], "555-3333", *BOB[6:]]]
    result = import_rows(url, tmp_path, rows, "--on-existing", "update", "--chunk-size", "2", name="fix.csv")
    assert result.exit_code == 1, result.output
    # Bob twice: the first row updates him, the later one repeats it.
    assert "3 accepted (1 inserted, 1 updated, 1 unchanged), 1 rejected" in result.stdout
    with (run_folder(tmp_path / "r-fix.csv") / "fix.rejects.csv").open(encoding="utf-8-sig") as fh:
        assert [(r["row"], r["codes"]) for r in csv.DictReader(fh)] == [("5", "DUPLICATE_IN_FILE")]
    assert [r[2] for r in dependents_in(url)] == ["555-1000", "555-2222", None]


@pytest.mark.parametrize("kind", KINDS)
def test_skip_changes_nothing_and_counts_the_skipped(kind, tmp_path):
    url = database(kind, tmp_path)
    assert import_rows(url, tmp_path, [ANN]).exit_code == 0
    before = dependents_in(url)
    changed_ann = [*ANN[:5], "555-9999", *ANN[6:]]
    result = import_rows(url, tmp_path, [changed_ann, CID], "--on-existing", "skip", name="again.csv")
    assert result.exit_code == 0, result.output
    assert "2 accepted (1 inserted, 1 skipped), 0 rejected" in result.stdout
    assert dependents_in(url)[0] == before[0]
    assert changes(url) == []
    assert run_of(url, "again.csv", COUNTS) == ("succeeded", 2, 1, 0, 0, 1, 0)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("mode", ["update", "skip"])
def test_a_matched_row_never_counts_towards_the_self_service_limit(kind, mode, tmp_path):
    url = database(kind, tmp_path)
    kids = [[C1, f"Kid{n}", "Lee", f"2015-01-0{n}", "", "", "", "", ""] for n in range(1, 6)]
    assert import_rows(url, tmp_path, kids[:4]).exit_code == 0
    path = write_csv(tmp_path / "more.csv", FULL_HEADER, [*kids[:4], kids[4]])
    args = ["import", path, "--db", url, "--as-of", AS_OF, "--on-existing", mode]
    result = invoke(*args, "--report-dir", tmp_path / "r")
    # Four matched, the fifth is the customer's fifth dependent: only it is over the limit.
    assert result.exit_code == 1 and "4 accepted" in result.stdout and "1 rejected" in result.stdout
    assert "DEPENDENT_LIMIT_REACHED 1" in result.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_a_dry_run_lists_exactly_the_changes_a_real_run_then_makes(kind, tmp_path):
    url = database(kind, tmp_path)
    assert import_rows(url, tmp_path, [ANN, BOB]).exit_code == 0
    fix = [[*ANN[:4], "Male", "555-1111", "987-65-4321", "", ""], [*BOB[:7], "true", "new note"]]
    listed = tmp_path / "dry.csv"
    dry = import_rows(
        url, tmp_path, fix, "--on-existing", "update", "--changes", listed, "--dry-run", name="fix.csv"
    )
    assert dry.exit_code == 0 and "2 updated" in dry.stdout and f"Changes: {listed}" in dry.stdout
    assert query(url, "SELECT COUNT(*) FROM dependent_changes") == [(0,)]
    made = tmp_path / "made.csv"
    real = import_rows(url, tmp_path, fix, "--on-existing", "update", "--changes", made, name="fix.csv")
    assert real.exit_code == 0, real.output

    def rows(path: Path) -> list[list[str]]:  # the dependent ids are the same stored ones
        return list(csv.reader(path.open(encoding="utf-8")))

    assert rows(listed) == rows(made)
    assert [r[2:] for r in rows(made)] == [
        ["field", "oldValue", "newValue"],
        ["gender", "Female", "Male"],
        ["phone", "555-1000", "555-1111"],
        ["ssn", "***-**-6789", "***-**-4321"],
        ["isCovered", "false", "true"],
        ["notes", "", "new note"],
    ]
    assert oct(made.stat().st_mode & 0o777) == "0o600"


def test_changes_without_update_is_a_usage_error(tmp_path):
    url = database("sqlite", tmp_path)
    result = import_rows(url, tmp_path, [ANN], "--changes", tmp_path / "c.csv")
    assert result.exit_code == 2
    assert (
        result.stderr
        == "Error: --changes lists the fields an update changes: it needs --on-existing update\n"
    )
    assert query(url, "SELECT COUNT(*) FROM import_runs") == [(0,)]


def test_the_changes_list_shows_ssns_in_full_only_when_asked(tmp_path):
    url = database("sqlite", tmp_path)
    assert import_rows(url, tmp_path, [ANN]).exit_code == 0
    fix = [[*ANN[:6], "987-65-4321", *ANN[7:]]]
    made = tmp_path / "made.csv"
    args = ("--on-existing", "update", "--changes", made, "--include-pii")
    assert import_rows(url, tmp_path, fix, *args, name="fix.csv").exit_code == 0
    assert made.read_text().splitlines()[1].endswith(",ssn,123-45-6789,987-65-4321")


def test_a_changes_list_that_cannot_be_written_is_refused_before_any_database_work(tmp_path):
    url = database("sqlite", tmp_path)
    taken = tmp_path / "taken"
    taken.write_text("a file where the folder would be")
    result = import_rows(url, tmp_path, [ANN], "--on-existing", "update", "--changes", taken / "c.csv")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: --changes {taken / 'c.csv'}: cannot create {taken} (")
    assert query(url, "SELECT COUNT(*) FROM import_runs") == [(0,)]
