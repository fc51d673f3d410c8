"""``runs revert``: exactly the run's dependents go, updated ones get their old values back,
the run is marked, and the file may come again; what cannot be reverted is refused."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa

from pipeline.database import db
from tests.helpers import ANN, AS_OF, BOB, C1, CID, database, dependents_in, import_rows, invoke, run_of

KINDS = ["sqlite", "postgres", "mariadb"]


def run_id(url: str, name: str) -> str:
    return run_of(url, name)[0]


def status(url: str, name: str) -> tuple:
    status, reverted_at = run_of(url, name, "status, reverted_at")
    return status, reverted_at is not None


@pytest.mark.parametrize("kind", KINDS)
def test_revert_removes_the_runs_rows_marks_it_and_allows_the_file_again(kind, tmp_path):
    url = database(kind, tmp_path)
    assert import_rows(url, tmp_path, [ANN]).exit_code == 0
    before = dependents_in(url)
    assert import_rows(url, tmp_path, [BOB, CID], name="wrong.csv").exit_code == 0
    run = run_id(url, "wrong.csv")
    dry = invoke("runs", "revert", run[:8], "--dry-run", "--db", url)
    assert dry.exit_code == 0, dry.output
    assert "would remove 2 dependents it inserted and restore 0 dependents" in dry.stdout
    assert len(dependents_in(url)) == 3 and status(url, "wrong.csv") == ("succeeded", False)
    done = invoke("runs", "revert", run, "--db", url)
    assert done.exit_code == 0, done.output
    assert (
        done.stdout
        == f"Reverted run {run}: removed 2 dependents it inserted, restored 0 dependents it updated.\n"
    )
    assert dependents_in(url) == before
    assert status(url, "wrong.csv") == ("reverted", True)
    assert "reverted" in invoke("runs", "--db", url).stdout
    assert "reverted:" in invoke("runs", "show", run, "--db", url).stdout
    again = import_rows(url, tmp_path, [BOB, CID], name="wrong.csv")  # the same content, no --force
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("kind", KINDS)
def test_revert_of_an_updating_run_restores_the_old_values_exactly(kind, tmp_path):
    url = database(kind, tmp_path)
    assert import_rows(url, tmp_path, [ANN, BOB]).exit_code == 0
    before = dependents_in(url)
    fix = [[*ANN[:4], "Male", "555-1111", "987-65-4321", "false", "changed"], CID, BOB]
    assert import_rows(url, tmp_path, fix, "--on-existing", "update", name="fix.csv").exit_code == 0
    assert dependents_in(url) != before
    done = invoke("runs", "revert", run_id(url, "fix.csv"), "--db", url)
    assert done.exit_code == 0, done.output
    assert "removed 1 dependent it inserted, restored 1 dependent it updated" in done.stdout
    assert dependents_in(url) == before  # updated_at included


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_whose_rows_a_later_run_updated_is_refused_naming_it(kind, tmp_path):
    url = database(kind, tmp_path)
    assert import_rows(url, tmp_path, [ANN]).exit_code == 0
    fix = [[*ANN[:5], "555-1111", *ANN[6:]]]
    assert import_rows(url, tmp_path, fix, "--on-existing", "update", name="fix.csv").exit_code == 0
    first, later = run_id(url, "d.csv"), run_id(url, "fix.csv")
    refused = invoke("runs", "revert", first, "--db", url)
    assert refused.exit_code == 2
    assert (
        refused.stderr
        == f"Error: run {later} changed dependents of run {first} later: revert run {later} first\n"
    )
    assert len(dependents_in(url)) == 1
    # In that order both go back.
    assert invoke("runs", "revert", later, "--db", url).exit_code == 0
    assert invoke("runs", "revert", first, "--db", url).exit_code == 0
    assert dependents_in(url) == []


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--dry-run"], "is a dry run: only a succeeded import can be reverted"),
        (["--max-reject-rate", "0"], "is aborted: only a succeeded import can be reverted"),
    ],
)
def test_a_run_that_stored_nothing_is_refused(extra, said, tmp_path):
    url = database("sqlite", tmp_path)
    bad = [C1, "", "Lee", "2015-01-04", "", "", "", "", ""]
    import_rows(url, tmp_path, [ANN, bad], *extra)
    result = invoke("runs", "revert", run_id(url, "d.csv"), "--db", url)
    assert result.exit_code == 2 and said in result.stderr and result.stderr.count("\n") == 1


def test_a_failed_run_and_a_reverted_one_are_refused(tmp_path):
    url = database("sqlite", tmp_path)
    assert import_rows(url, tmp_path, [ANN]).exit_code == 0
    run = run_id(url, "d.csv")
    assert invoke("runs", "revert", run, "--db", url).exit_code == 0
    twice = invoke("runs", "revert", run, "--db", url)
    assert twice.exit_code == 2 and f"run {run} was reverted already, on " in twice.stderr
    failed = "00000000-0000-4000-8000-00000000f00d"
    _record_failed_run(url, failed, "x.csv")
    result = invoke("runs", "revert", failed, "--db", url)
    assert result.exit_code == 2 and "is failed: only a succeeded import can be reverted" in result.stderr


def _record_failed_run(url: str, run_id: str, name: str) -> None:
    """A run the ledger recorded as failed (its database went away mid-import)."""
    engine = db.engine_for(url)
    values = {
        "id": run_id,
        "file_name": name,
        "sha256": "00" * 32,
        "size_bytes": 1,
        "profile": "add-dependent",
        "channel": "self-service",
        "as_of": date.fromisoformat(AS_OF),
        "started_at": datetime(2026, 11, 22),
        "status": "failed",
        "rows_read": 0,
        "accepted": 0,
        "rejected": 0,
    }
    with engine.begin() as conn:
        conn.execute(sa.insert(db.import_runs), values)
    engine.dispose()
