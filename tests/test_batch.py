"""Many files in one call: an inbox of files, each its own import, moved to the archive or
the quarantine once its outcome is final; one batch at a time over an inbox."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import inbox
from tests.helpers import AS_OF, C1, C2, HEADER, customers_csv, invoke, kid, query, write_csv

LONG_AGO = time.time() - 3600


def inbox_of(tmp: Path, files: dict[str, list[list[str]]], header=HEADER) -> Path:
    """A folder of CSVs, each last changed an hour ago (settled)."""
    folder = tmp / "inbox"
    folder.mkdir(exist_ok=True)
    for name, rows in files.items():
        path = write_csv(folder / name, header, rows)
        os.utime(path, (LONG_AGO, LONG_AGO))
    return folder


def batch(url: str, tmp: Path, *paths, extra: tuple = ()):
    invoke("customers", "load", customers_csv(tmp / "c.csv", [C1, C2]), "--db", url)
    args = ["--db", url, "--as-of", AS_OF, "--report-dir", tmp / "reports"]
    return invoke("import", *paths, *args, "--archive", tmp / "archive", "--quarantine", tmp / "q", *extra)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_each_file_ends_in_its_place_and_the_batch_status_is_the_highest(sqlite_url, tmp_path):
    folder = inbox_of(
        tmp_path,
        {
            "a-good.csv": [kid(1), kid(2)],
            "b-rejects.csv": [kid(3), kid(4), [C1, "", "Lee", "2019-01-01"]],
            "c-all-bad.csv": [[C1, "", "Lee", "2019-01-01"]],
        },
    )
    write_csv(folder / "d-refused.csv", ["customerId", "firstName"], [[C1, "Ann"]])
    os.utime(folder / "d-refused.csv", (LONG_AGO, LONG_AGO))
    write_csv(folder / "e-arriving.csv", HEADER, [kid(5)])  # changed just now: still arriving
    (folder / "notes.txt").write_text("not a spreadsheet")

    result = batch(sqlite_url, tmp_path, folder, extra=("--max-reject-rate", "0.5"))

    assert result.exit_code == 3, result.output  # 0, 1, 3 (aborted) and 2 (refused): the highest
    assert names(folder) == ["e-arriving.csv", "notes.txt"]
    assert names(tmp_path / "archive") == ["a-good.csv", "b-rejects.csv"]
    assert names(tmp_path / "q") == [
        "c-all-bad.csv",
        "c-all-bad.csv.why.txt",
        "d-refused.csv",
        "d-refused.csv.why.txt",
    ]
    why = (tmp_path / "q" / "d-refused.csv.why.txt").read_text()
    assert why.startswith("d-refused.csv: missing required column(s): lastName, birthDate")
    aborted = (tmp_path / "q" / "c-all-bad.csv.why.txt").read_text().splitlines()
    ((run_id,),) = query(sqlite_url, "SELECT id FROM import_runs WHERE file_name = 'c-all-bad.csv'")
    assert aborted[-1] == f"run {run_id}"
    assert "Left for the next run, changed too recently (--settle): e-arriving.csv" in result.stderr
    assert (
        "4 files imported, 1 clean, 1 with rejected rows, 1 refused, 1 aborted; exit status 3"
        in result.stderr
    )
    assert query(sqlite_url, "SELECT COUNT(*) FROM dependents") == [(4,)]
    assert oct((tmp_path / "q" / "d-refused.csv.why.txt").stat().st_mode & 0o777) == "0o600"


def test_files_are_taken_oldest_first_and_named_files_as_they_are(sqlite_url, tmp_path):
    folder = inbox_of(tmp_path, {"b.csv": [kid(1)], "a.csv": [kid(2)]})
    os.utime(folder / "b.csv", (LONG_AGO - 60, LONG_AGO - 60))
    fresh = write_csv(tmp_path / "named.csv", HEADER, [kid(3)])  # named: no settling asked of it
    result = batch(sqlite_url, tmp_path, folder, fresh)
    assert result.exit_code == 0, result.output
    order = [line.split(":")[0] for line in result.stdout.splitlines() if " row read, " in line]
    assert order == ["b.csv", "a.csv", "named.csv"]
    assert names(tmp_path / "archive") == ["a.csv", "b.csv", "named.csv"]


def test_a_file_already_imported_is_quarantined_as_such_and_a_name_taken_gets_a_suffix(sqlite_url, tmp_path):
    folder = inbox_of(tmp_path, {"d.csv": [kid(1)]})
    assert batch(sqlite_url, tmp_path, folder).exit_code == 0
    inbox_of(tmp_path, {"d.csv": [kid(1)]})  # the same file again
    result = batch(sqlite_url, tmp_path, folder)
    assert result.exit_code == 2
    assert names(tmp_path / "q") == ["d.csv", "d.csv.why.txt"]
    assert "was already imported by run" in (tmp_path / "q" / "d.csv.why.txt").read_text()
    inbox_of(tmp_path, {"d.csv": [kid(2)]})  # new content, same name
    assert batch(sqlite_url, tmp_path, folder).exit_code == 0
    assert names(tmp_path / "archive") == ["d-1.csv", "d.csv"]


def test_a_file_that_stored_nothing_may_come_again_without_force(sqlite_url, tmp_path):
    header_only = write_csv(tmp_path / "quiet.csv", HEADER, [])
    for _night in range(2):
        result = invoke(
            "import", header_only, "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path / "r"
        )
        assert result.exit_code == 0, result.output
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    unknown = write_csv(tmp_path / "unknown.csv", HEADER, [kid(1, customer=C2)])
    assert invoke("import", unknown, "--db", sqlite_url, "--as-of", AS_OF).exit_code == 1  # all rejected
    invoke("customers", "load", customers_csv(tmp_path / "c2.csv", [C2]), "--db", sqlite_url)
    again = invoke("import", unknown, "--db", sqlite_url, "--as-of", AS_OF)
    assert again.exit_code == 0, again.output


def test_two_runs_with_one_report_dir_keep_both_reports(sqlite_url, tmp_path):
    out = tmp_path / "reports"
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    bad = [C1, "", "Lee", "2019-01-01"]
    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    first = write_csv(tmp_path / "one" / "d.csv", HEADER, [kid(1), bad])
    second = write_csv(tmp_path / "two" / "d.csv", HEADER, [kid(2), bad, bad])
    invoke("import", first, "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", out)
    invoke("import", second, "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", out, "--dry-run")
    runs = query(sqlite_url, "SELECT id, rejected FROM import_runs ORDER BY started_at")
    for run_id, rejected in runs:
        lines = (out / run_id / "d.rejects.csv").read_text(encoding="utf-8-sig").splitlines()
        assert len(lines) == 1 + rejected


def test_a_second_batch_over_the_same_inbox_is_refused_with_exit_5(sqlite_url, tmp_path):
    folder = inbox_of(tmp_path, {"d.csv": [kid(1)]})
    with inbox.locked([folder]):
        result = batch(sqlite_url, tmp_path, folder)
    assert result.exit_code == 5
    assert result.stderr == f"Error: {folder}: another batch is importing from this folder\n"
    assert names(folder) == ["d.csv"]
    assert batch(sqlite_url, tmp_path, folder).exit_code == 0  # the lock went with the first batch


def test_a_database_that_cannot_be_reached_stops_the_batch_and_leaves_the_files(tmp_path):
    folder = inbox_of(tmp_path, {"a.csv": [kid(1)], "b.csv": [kid(2)]})
    args = ["--db", "postgresql://nobody@127.0.0.1:9/none", "--archive", tmp_path / "archive"]
    result = invoke("import", folder, *args, "--quarantine", tmp_path / "q")
    assert result.exit_code == 4
    assert result.stderr.count("Error: ") == 1
    assert "Not tried, the batch stopped: " in result.stderr
    assert names(folder) == ["a.csv", "b.csv"]
    assert names(tmp_path / "archive") == names(tmp_path / "q") == []


def test_changes_is_for_one_file(sqlite_url, tmp_path):
    a, b = write_csv(tmp_path / "a.csv", HEADER, []), write_csv(tmp_path / "b.csv", HEADER, [])
    args = ["--db", sqlite_url, "--on-existing", "update", "--changes", tmp_path / "ch.csv"]
    result = invoke("import", a, b, *args)
    assert result.exit_code == 2
    assert result.stderr == "Error: --changes names one file of changes: import one file with it\n"


@pytest.mark.slow
def test_a_batch_killed_at_any_moment_loses_no_file_and_half_loads_none(tmp_path):
    """Killed with SIGKILL at random instants: each file is in exactly one of inbox, archive
    and quarantine, each archived file's rows are stored, and no file's rows are half there."""
    rng = random.Random(7)
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1, C2]), "--db", url)
    rows = {
        f"f{n}.csv": [kid(k, C1 if n % 2 else C2, first=f"K{n}x{k}") for k in range(1, 4)] for n in range(8)
    }
    rows["g-refused.csv"] = [[C1]]
    folder = inbox_of(tmp_path, {})
    digests = {}
    for attempt in range(4):
        for name, file_rows in rows.items():
            if not any((d / name).exists() for d in (folder, tmp_path / "archive", tmp_path / "q")):
                header = HEADER if name.startswith("f") else ["customerId"]
                path = write_csv(folder / name, header, file_rows)
                os.utime(path, (LONG_AGO, LONG_AGO))
                digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        args = [sys.executable, "-m", "pipeline.cli", "import", str(folder), "--db", url, "--as-of", AS_OF]
        args += ["--archive", str(tmp_path / "archive"), "--quarantine", str(tmp_path / "q")]
        args += ["--report-dir", str(tmp_path / "reports"), "--channel", "contact-centre"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 3.0) if attempt < 3 else 0)
        if attempt < 3:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        places = {
            name: [d for d in ("inbox", "archive", "q") if (tmp_path / d / name).exists()] for name in rows
        }
        assert all(len(found) == 1 for found in places.values()), places
        committed = dict(query(url, "SELECT sha256, inserted FROM import_runs WHERE status = 'succeeded'"))
        for name, (place,) in places.items():
            if place == "archive":
                assert committed.get(digests[name]) == 3, name
        per_file = query(url, "SELECT import_run_id, COUNT(*) FROM dependents GROUP BY import_run_id")
        assert all(n == 3 for _, n in per_file)
    # Run to its end: every file settled. One committed just before a kill, not yet moved, was
    # quarantined on the next run as already imported; its rows are stored once all the same.
    assert [n for n in names(folder)] == []
    for name in rows:
        if name.startswith("f") and (tmp_path / "q" / name).exists():
            assert "already imported" in (tmp_path / "q" / f"{name}.why.txt").read_text()
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(3 * 8,)]


def test_the_json_log_has_an_event_per_file_and_the_batch_and_no_personal_data(sqlite_url, tmp_path):
    ssn, email, phone = "123-45-6789", "ann@example.com", "0821234567"
    header = [*HEADER, "ssn", "email", "phone"]
    rows = [
        [*kid(1), ssn, email, phone],  # accepted
        [C1, "", "Lee", "2019-01-02", ssn, email, phone],  # rejected: firstName missing
        [*kid(3), "12-345-6789", "not-an-email", "x" * 60],  # rejected: each value malformed
    ]
    folder = inbox_of(tmp_path, {"a.csv": rows, "b.csv": [[*kid(4), "", "", ""]]}, header=header)
    write_csv(folder / "c.csv", ["customerId"], [[C1]])
    os.utime(folder / "c.csv", (LONG_AGO, LONG_AGO))
    result = batch(sqlite_url, tmp_path, folder, extra=("--log-format", "json"))
    assert result.exit_code == 2
    assert result.stderr == ""
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["event"], e.get("file", "").rsplit("/", 1)[-1]) for e in events] == [
        ("file", "a.csv"),
        ("file", "b.csv"),
        ("file", "c.csv"),
        ("batch", ""),
    ]
    a, b, c, end = events
    assert (a["exit"], a["rowsRead"], a["accepted"], a["inserted"], a["rejected"]) == (1, 3, 1, 1, 2)
    assert a["movedTo"].endswith("archive/a.csv") and a["status"] == "succeeded"
    assert (b["exit"], b["outcome"], b["accepted"]) == (0, "clean", 1)
    assert (c["exit"], c["outcome"], c["run"]) == (2, "refused", None)
    assert c["message"].startswith("c.csv: missing required column(s)")
    assert end == {**end, "files": 3, "exit": 2, "left": [], "settling": []}
    assert end["outcomes"] == {"with rejected rows": 1, "clean": 1, "refused": 1}
    for secret in (ssn, "12-345-6789", email, "not-an-email", phone, "x" * 60):
        assert secret not in result.output


@pytest.mark.slow
def test_two_batches_started_together_never_import_a_file_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'two.db'}"
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1, C2]), "--db", url)
    files = {f"f{n}.csv": [kid(k, first=f"K{n}x{k}") for k in range(1, 3)] for n in range(6)}
    folder = inbox_of(tmp_path, files)
    args = [sys.executable, "-m", "pipeline.cli", "import", str(folder), "--db", url, "--as-of", AS_OF]
    args += ["--archive", str(tmp_path / "archive"), "--channel", "contact-centre"]
    batches = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"
    ]
    ended = sorted((p.wait(timeout=120), p.stderr.read()) for p in batches)
    for proc in batches:
        proc.stdout.close(), proc.stderr.close()
    assert ended[0][0] == 0, ended
    assert ended[1][0] in (0, 5), ended  # refused at once, or started after the first had finished
    if ended[1][0] == 5:
        assert ended[1][1] == f"Error: {folder}: another batch is importing from this folder\n"
    assert names(tmp_path / "archive") == sorted(files)
    per_file = query(
        url, "SELECT sha256, COUNT(*) FROM import_runs WHERE status = 'succeeded' GROUP BY sha256"
    )
    assert sorted(n for _, n in per_file) == [1] * len(files)
    assert query(url, "SELECT COUNT(*) FROM dependents") == [(12,)]
