"""End to end through the ``dependents`` command, as the README tells a user to run it."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from tests.helpers import AS_OF, SAMPLES, invoke, query, run_folder, write_csv

CUSTOMER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
HEADER = ["customerId", "firstName", "lastName", "birthDate", "phone"]


def rejects(report_dir: Path, stem: str) -> list[dict]:
    with (report_dir / f"{stem}.rejects.csv").open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("sample", ["dependents.xlsx", "dependents.csv"])
def test_sample_file_end_to_end(any_db, tmp_path, sample):
    assert invoke("customers", "load", SAMPLES / "customers.csv", "--db", any_db).exit_code == 0
    out = tmp_path / "reports"
    result = invoke("import", SAMPLES / sample, "--db", any_db, "--as-of", AS_OF, "--report-dir", out)
    assert result.exit_code == 1, result.output
    assert "33 rows read, 14 accepted, 19 rejected (committed)" in result.stdout
    assert query(any_db, "SELECT COUNT(*) FROM dependents") == [(14,)]
    lines = rejects(run_folder(out), Path(sample).stem)
    assert len(lines) == 19
    for line in lines:  # each bad sample row names the code it must get in its notes
        expected = line["notes"].split(" ")[0]
        if expected.isupper():
            assert expected in line["codes"].split(";"), line
    summary = json.loads((run_folder(out) / f"{Path(sample).stem}.summary.json").read_text())
    assert (summary["rowsRead"], summary["accepted"], summary["rejected"]) == (33, 14, 19)
    assert summary["codes"]["BIRTH_DATE_INVALID"] == 2


def test_strings_that_look_like_missing_values_and_leading_zeros_are_stored_as_written(any_db, tmp_path):
    invoke("customers", "load", write_csv(tmp_path / "c.csv", ["id"], [[CUSTOMER]]), "--db", any_db)
    rows = [[CUSTOMER, "Null", "NA", "2019-01-04", "0821234567"], [CUSTOMER, "None", "N/A", "2019-01-05", ""]]
    result = invoke("import", write_csv(tmp_path / "d.csv", HEADER, rows), "--db", any_db, "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    stored = query(any_db, "SELECT first_name, last_name, phone FROM dependents ORDER BY source_row")
    assert stored == [("Null", "NA", "0821234567"), ("None", "N/A", None)]


def test_all_rows_accepted_exits_0_and_says_so(sqlite_url, tmp_path):
    invoke(
        "customers", "load", write_csv(tmp_path / "c.csv", ["profileKey"], [[CUSTOMER]]), "--db", sqlite_url
    )
    path = write_csv(tmp_path / "d.csv", HEADER, [[CUSTOMER, "Ann", "Lee", "2019-01-04", ""]])
    result = invoke("import", path, "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path / "r")
    assert result.exit_code == 0
    assert "1 row read, 1 accepted, 0 rejected (committed)" in result.stdout


@pytest.mark.parametrize("dry_run", [False, True])
def test_timings_says_on_stderr_what_each_step_took(sqlite_url, tmp_path, dry_run):
    invoke(
        "customers", "load", write_csv(tmp_path / "c.csv", ["profileKey"], [[CUSTOMER]]), "--db", sqlite_url
    )
    rows = [[CUSTOMER, "Ann", "Lee", "2019-01-04", ""], [CUSTOMER, "", "Lee", "2019-01-04", ""]]
    path = write_csv(tmp_path / "d.csv", HEADER, rows)
    args = ["import", path, "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path / "r"]
    quiet = invoke(*args, "--force")
    assert "Timings" not in quiet.stderr
    timed = invoke(*args, "--force", "--timings", *(["--dry-run"] if dry_run else []))
    assert timed.exit_code == 1 and "Timings" not in timed.stdout
    *_, line, plan = timed.stderr.strip().splitlines()
    assert plan == "Decision plan: refused, held, held suspects, crowded, over"  # stored: a second import
    steps = ["staging", "decision", "assembly", "reports", "ledger"]
    steps += [] if dry_run else ["insert", "commit"]
    assert line.startswith("Timings: ") and "; total " in line
    assert all(re.search(rf"\b{step} \d+\.\d\d s", line) for step in steps), line


def test_missing_column_is_one_line_exit_2_and_nothing_written(sqlite_url, tmp_path):
    path = write_csv(tmp_path / "d.csv", ["customerId", "firstName"], [[CUSTOMER, "Ann"]])
    result = invoke("import", path, "--db", sqlite_url, "--report-dir", tmp_path / "r")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: d.csv: missing required column(s): lastName, birthDate; "
        "the header (row 1) has: customerId, firstName\n"
    )
    assert not (tmp_path / "r").exists()
    assert query(sqlite_url, "SELECT COUNT(*) FROM import_runs") == [(0,)]


def test_usage_errors_exit_2(sqlite_url, tmp_path):
    assert invoke("import", tmp_path / "nope.csv", "--db", sqlite_url).exit_code == 2
    result = invoke("import", tmp_path / "x.csv", "--as-of", "22/11/2026")
    assert result.exit_code == 2 and "is not a date in YYYY-MM-DD form" in result.stderr


def test_unreachable_database_is_exit_4_with_the_password_masked(tmp_path):
    path = write_csv(tmp_path / "d.csv", HEADER, [[CUSTOMER, "Ann", "Lee", "2019-01-04", ""]])
    result = invoke("import", path, "--db", "postgresql://postgres:hunter2@127.0.0.1:1/test")
    assert result.exit_code == 4
    assert result.stderr.startswith("Error: database postgresql://postgres:***@127.0.0.1:1/test: ")
    assert result.stderr.count("\n") == 1 and "hunter2" not in result.stderr
    assert "Traceback" not in result.output


def test_a_mariadb_url_without_a_database_is_a_usage_error_in_one_line(tmp_path):
    path = write_csv(tmp_path / "d.csv", HEADER, [[CUSTOMER, "Ann", "Lee", "2019-01-04", ""]])
    result = invoke("import", path, "--db", "mysql://root:hunter2@127.0.0.1:3306")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: database mysql://root:***@127.0.0.1:3306: the URL names no database "
        "(mysql://USER@HOST/DATABASE)\n"
    )


def test_a_bad_database_url_is_said_before_a_bad_file(tmp_path):
    # The file is opened beside the database's checks (opening.connect_and_open); the database's
    # error still comes first, as when the two ran one after the other.
    result = invoke("import", tmp_path / "nope.csv", "--db", "mysql://root@127.0.0.1:3306")
    assert result.exit_code == 2
    assert "the URL names no database" in result.stderr and "nope.csv" not in result.stderr


def test_db_url_from_the_environment(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("DEPENDENTS_DB_URL", url)
    assert invoke("db", "init").exit_code == 0
    assert (tmp_path / "env.db").exists()


def test_runs_lists_and_shows_a_run_with_its_codes(sqlite_url, tmp_path):
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    invoke(
        "import", SAMPLES / "dependents.csv", "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path
    )
    (run_id,) = query(sqlite_url, "SELECT id FROM import_runs")[0]
    known = "eade7e7f-2d4d-5ebe-a412-3c17d3833b9b"  # a sample customer
    dry = write_csv(tmp_path / "dry.csv", HEADER, [[known, "Zed", "Lee", "2019-01-04", ""]])
    invoke("import", dry, "--db", sqlite_url, "--as-of", AS_OF, "--dry-run", "--report-dir", tmp_path)
    header, dry_run, real = invoke("runs", "--db", sqlite_url).stdout.splitlines()
    assert header.split() == [
        *("run", "started", "(UTC)", "status", "profile", "read", "accepted", "rejected", "file")
    ]
    assert real.startswith(run_id) and real.split()[3:9] == [
        *("succeeded", "add-dependent", "33", "14", "19", "dependents.csv")
    ]
    assert dry_run.split()[3:9] == ["dry", "run", "add-dependent", "1", "(1)", "0"]  # would be accepted
    shown = invoke("runs", "show", run_id[:8], "--db", sqlite_url)
    assert shown.exit_code == 0
    assert "rejected:   19" in shown.stdout and "BIRTH_DATE_INVALID" in shown.stdout
    assert invoke("runs", "show", "nope", "--db", sqlite_url).exit_code == 2


def test_a_report_folder_that_cannot_be_made_is_exit_2_before_any_database_work(sqlite_url, tmp_path):
    (tmp_path / "a-file").write_text("")
    path = write_csv(tmp_path / "d.csv", HEADER, [[CUSTOMER, "Ann", "Lee", "2019-01-04", ""]])
    out = tmp_path / "a-file" / "reports"
    result = invoke("import", path, "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", out)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: cannot write the reports in {out}/")
    assert result.stderr.endswith(": Not a directory\n")
    assert query(sqlite_url, "SELECT COUNT(*) FROM import_runs") == [(0,)]


def test_a_file_system_error_is_one_line_exit_2_naming_the_path(tmp_path):
    (tmp_path / "a-file").write_text("")
    result = invoke("template", tmp_path / "a-file" / "blank.xlsx")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {tmp_path / 'a-file'}: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_reports_that_cannot_be_moved_after_the_commit_keep_the_runs_status_and_can_be_written_again(
    sqlite_url, tmp_path, monkeypatch
):
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    out = tmp_path / "reports"

    def refuse(self, target):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patched:
        patched.setattr(Path, "replace", refuse)
        args = ("--db", sqlite_url, "--as-of", AS_OF, "--report-dir", out)
        result = invoke("import", SAMPLES / "dependents.csv", *args)
    ((run_id,),) = query(sqlite_url, "SELECT id FROM import_runs")
    assert result.exit_code == 1  # the run's own: it rejected rows
    assert result.stderr == (
        f"Error: run {run_id} finished (succeeded), but its reports could not be moved into {out / run_id} "
        f"(Permission denied); `dependents report {run_id}` writes them again\n"
    )
    assert query(sqlite_url, "SELECT COUNT(*) FROM dependents") == [(14,)]
    assert not out.exists()  # nothing half-moved, no hidden folder left
    assert invoke("report", run_id, "--db", sqlite_url, "--report-dir", out).exit_code == 0
    assert len(rejects(out / run_id, "dependents")) == 19


def test_a_failure_after_the_commit_says_the_run_committed_not_the_opposite(
    sqlite_url, tmp_path, monkeypatch
):
    """(A stop after the commit is only noted: tests/test_stops.py.)"""
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)

    def broken(self, target):
        raise RuntimeError("cannot move")

    with monkeypatch.context() as patched:
        patched.setattr(Path, "replace", broken)  # while the reports move, after the commit
        result = invoke("import", SAMPLES / "dependents.csv", "--db", sqlite_url, "--as-of", AS_OF)
    ((run_id,),) = query(sqlite_url, "SELECT id FROM import_runs WHERE status = 'succeeded'")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: run {run_id} finished (succeeded), but its reports")
    assert "(RuntimeError); `dependents report" in result.stderr
    assert "nothing was committed" not in result.stderr
    assert query(sqlite_url, "SELECT COUNT(*) FROM dependents") == [(14,)]


def test_a_nul_in_a_cell_rejects_its_row_not_the_file(any_db, tmp_path):
    """PostgreSQL cannot store NUL: the row gets its code, the rest of the file loads."""
    invoke("customers", "load", write_csv(tmp_path / "c.csv", ["id"], [[CUSTOMER]]), "--db", any_db)
    rows = [
        [CUSTOMER, "An\x00n", "Lee", "2019-01-04", ""],
        [CUSTOMER, "Bea", "Lee", "2019-01-05", "0821\x01"],
    ]
    rows.append([CUSTOMER, "Cy", "Lee", "2019-01-06", ""])
    out = tmp_path / "r"
    path = write_csv(tmp_path / "d.csv", HEADER, rows)
    result = invoke("import", path, "--db", any_db, "--as-of", AS_OF, "--report-dir", out)
    assert result.exit_code == 1, result.output
    assert query(any_db, "SELECT first_name FROM dependents") == [("Cy",)]
    assert [(r["row"], r["codes"]) for r in rejects(run_folder(out), "d")] == [
        ("2", "FIRST_NAME_INVALID"),
        ("3", "PHONE_INVALID"),
    ]


def test_a_file_still_being_written_is_not_half_loaded(any_db, tmp_path, monkeypatch):
    """Cron may pick up an export before its writer has finished: the rows read so far are
    not committed, and the message says why."""
    import pipeline.run

    invoke("customers", "load", write_csv(tmp_path / "c.csv", ["id"], [[CUSTOMER]]), "--db", any_db)
    rows = [[CUSTOMER, f"Kid{k}", "Lee", f"2019-01-{k:02d}", ""] for k in range(1, 4)]
    path = write_csv(tmp_path / "d.csv", HEADER, rows)
    check = pipeline.run.check_chunk

    def check_then_append(chunk, *args):
        with path.open("a", encoding="utf-8") as fh:  # the writer adds the next row meanwhile
            fh.write(f"{CUSTOMER},Late,Lee,2019-02-01,\n")
        return check(chunk, *args)

    monkeypatch.setattr(pipeline.run, "check_chunk", check_then_append)
    out = tmp_path / "r"
    result = invoke(
        "import", path, "--db", any_db, "--as-of", AS_OF, "--report-dir", out, "--chunk-size", "2"
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: d.csv: the file changed while it was being imported (is it still being written?); "
        "nothing was committed\n"
    )
    assert query(any_db, "SELECT COUNT(*) FROM dependents") == [(0,)]
    assert not out.exists()


def test_a_full_disk_while_the_reports_are_written_commits_nothing_and_leaves_no_report(
    sqlite_url, tmp_path, monkeypatch
):
    """The reports are written while the database decides and inserts: their failure stops the
    import before anything commits, in one line, and the hidden folder goes."""
    from pipeline.rejects import report

    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    out = tmp_path / "reports"

    def full(self, table, rejects):
        raise OSError(28, "No space left on device", str(self.path))

    monkeypatch.setattr(report.RejectsCsv, "add", full)
    result = invoke(
        "import", SAMPLES / "dependents.csv", "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", out
    )
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "No space left on device" in result.stderr
    assert "Traceback" not in result.output
    assert query(sqlite_url, "SELECT COUNT(*) FROM dependents") == [(0,)]
    assert query(sqlite_url, "SELECT status FROM import_runs") == [("failed",)]
    assert not out.exists()


MISTAKES = {
    "a run id too short": (["runs", "show", "abc"], "run id 'abc' is too short: give at least its first 8"),
    "a run id that fits no run": (["runs", "show", "abcdefgh"], "no run 'abcdefgh'"),
    "a date that does not exist": (
        ["import", "{csv}", "--as-of", "2026-02-30"],
        "2026-02-30 is not a real date",
    ),
    "--sheet on a CSV": (["import", "{csv}", "--sheet", "Data"], "--sheet chooses a workbook's sheet"),
    "a folder for a file": (["customers", "load", "{tmp}"], "is a folder, not a file"),
    "a header holding |": (
        ["import", "{pipes}"],
        "the header is one cell holding '|': pass --delimiter '|'",
    ),
    "a bare path for --db": (["runs", "--db", "x.db"], "is not a URL; for a SQLite file give sqlite:///x.db"),
    "a port that is not a number": (["runs", "--db", "postgresql://u@h:port/db"], "is not a valid URL"),
    "a database it does not write to": (["runs", "--db", "oracle://u@h/db"], "not a database this importer"),
}


@pytest.mark.parametrize(("args", "says"), MISTAKES.values(), ids=MISTAKES.keys())
def test_usage_mistakes_are_one_line_exit_2_saying_what_was_looked_at(sqlite_url, tmp_path, args, says):
    csv_path = write_csv(tmp_path / "d.csv", HEADER, [[CUSTOMER, "Ann", "Lee", "2019-01-04", ""]])
    pipes = tmp_path / "p.csv"  # | is not among the delimiters sniffed
    pipes.write_text("|".join(HEADER) + "\n" + "|".join([CUSTOMER, "Ann", "Lee", "2019-01-04", ""]) + "\n")
    invoke("db", "init", "--db", sqlite_url)
    given = [a.format(csv=csv_path, tmp=tmp_path, pipes=pipes) for a in args]
    result = invoke(*given, *([] if "--db" in given else ["--db", sqlite_url]))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()  # Click's own usage errors lead with two lines of usage
    assert len(lines) <= 4 and says in lines[-1], result.stderr


def test_choices_take_any_case(sqlite_url, tmp_path):
    invoke("customers", "load", write_csv(tmp_path / "c.csv", ["id"], [[CUSTOMER]]), "--db", sqlite_url)
    path = write_csv(tmp_path / "d.csv", HEADER, [[CUSTOMER, "Ann", "Lee", "04/01/2019", ""]])
    args = ["--date-order", "dmy", "--channel", "Contact-Centre", "--profile", "CARECYCLE"]
    result = invoke("import", path, "--db", sqlite_url, "--as-of", AS_OF, *args, "--rebuild-indexes", "Never")
    assert result.exit_code == 0, result.output
    assert query(sqlite_url, "SELECT date_of_birth FROM dependents") == [("2019-01-04",)]
    assert query(sqlite_url, "SELECT profile, channel FROM import_runs") == [("carecycle", "contact-centre")]


def test_a_postgres_url_is_taken_as_postgresql(tmp_path):
    result = invoke("runs", "--db", "postgres://postgres:hunter2@127.0.0.1:1/test")
    assert result.exit_code == 4  # unreachable, as a PostgreSQL server on port 1 is
    assert result.stderr.startswith("Error: database postgres://postgres:***@127.0.0.1:1/test: ")


def test_ragged_rows_among_good_ones_are_rejected_and_the_rest_loads(any_db, tmp_path):
    invoke("customers", "load", write_csv(tmp_path / "c.csv", ["id"], [[CUSTOMER]]), "--db", any_db)
    path = tmp_path / "d.csv"
    lines = [",".join(HEADER), f"{CUSTOMER},Ann,Lee,2019-01-04,", f"{CUSTOMER},Bob,Lee,2019-01-05,,extra"]
    lines += [f"{CUSTOMER},Cy", f"{CUSTOMER},Dee,Lee,2019-01-06,"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "r"
    result = invoke("import", path, "--db", any_db, "--as-of", AS_OF, "--report-dir", out)
    assert result.exit_code == 1, result.output
    assert sorted(query(any_db, "SELECT first_name FROM dependents")) == [("Ann",), ("Dee",)]
    jsonl = (run_folder(out) / "d.notifications.jsonl").read_text()
    notes = [json.loads(line) for line in jsonl.splitlines()]
    assert [(n["row"], [x["code"] for x in n["notifications"]]) for n in notes] == [
        (3, ["ROW_CELL_COUNT"]),
        (4, ["ROW_CELL_COUNT"]),
    ]
    assert [n["notifications"][0]["additionalData"] for n in notes] == [
        {"expected": 5, "found": 6},
        {"expected": 5, "found": 2},
    ]
    with (run_folder(out) / "d.rejects.csv").open(encoding="utf-8-sig") as fh:
        assert [r["firstName"] for r in csv.DictReader(fh)] == ["Bob", "Cy"]  # the cells as read


@pytest.mark.parametrize(
    "args", [["runs"], ["runs", "show", "abcdefgh"], ["report", "abcdefgh"], ["db", "status"]], ids=" ".join
)
def test_a_command_that_only_reads_never_creates_a_database(tmp_path, args):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = invoke(*args, "--db", url)
    assert not (tmp_path / "none.db").exists()
    if args == ["db", "status"]:
        assert result.exit_code == 0 and "there is no such database yet" in result.stdout
    else:
        assert result.exit_code == 2 and result.stderr.count("\n") == 1
        assert "there is no such database (nothing imported yet)" in result.stderr


@pytest.mark.parametrize(("length", "rejected"), [(32_767, False), (32_768, True)])
def test_a_cell_longer_than_a_spreadsheet_holds_rejects_its_row(sqlite_url, tmp_path, length, rejected):
    """In any column, stored or not: no report could show it whole."""
    invoke("customers", "load", write_csv(tmp_path / "c.csv", ["id"], [[CUSTOMER]]), "--db", sqlite_url)
    header = [*HEADER, "Comments"]
    rows = [
        [CUSTOMER, "Ann", "Lee", "2019-01-04", "", "x" * length],
        [CUSTOMER, "Bo", "Lee", "2019-01-05", "", ""],
    ]
    out = tmp_path / "r"
    result = invoke(
        "import",
        write_csv(tmp_path / "d.csv", header, rows),
        "--db",
        sqlite_url,
        "--as-of",
        AS_OF,
        "--report-dir",
        out,
    )
    assert result.exit_code == (1 if rejected else 0), result.output
    assert query(sqlite_url, "SELECT COUNT(*) FROM dependents") == [(1 if rejected else 2,)]
    if rejected:
        jsonl = (run_folder(out) / "d.notifications.jsonl").read_text()
        (note,) = [json.loads(line) for line in jsonl.splitlines()]
        assert note["row"] == 2 and note["notifications"][0]["code"] == "CELL_TOO_LONG"
        assert note["notifications"][0]["additionalData"] == {"column": "Comments", "limit": 32_767}
        assert (run_folder(out) / "d.rejects.xlsx").stat().st_size > 0


def test_every_workbook_format_stores_the_same_rows_and_writes_the_same_report(sqlite_url, tmp_path):
    """The sample as .xlsx; as .xls and .ods saved by LibreOffice, and as .xlsb written by
    pyxlsbwriter (tests/rows/formats/)."""
    formats = Path(__file__).parent / "rows" / "formats"
    seen = {}
    workbooks = [formats / f"dependents.{kind}" for kind in ("xls", "ods", "xlsb")]
    for path in (SAMPLES / "dependents.xlsx", *workbooks):
        url = f"sqlite:///{tmp_path / path.suffix[1:]}.db"
        invoke("customers", "load", SAMPLES / "customers.csv", "--db", url)
        out = tmp_path / path.suffix[1:]
        result = invoke("import", path, "--db", url, "--as-of", AS_OF, "--report-dir", out)
        assert result.exit_code == 1, result.output
        stored = query(url, "SELECT source_row, first_name, date_of_birth, gender FROM dependents ORDER BY 1")
        seen[path.suffix] = stored, rejects(run_folder(out), "dependents")
    assert seen[".xls"] == seen[".xlsx"] == seen[".ods"] == seen[".xlsb"]
    assert len(seen[".xlsx"][0]) == 14 and len(seen[".xlsx"][1]) == 19


def test_the_closing_lines_name_every_report(sqlite_url, tmp_path):
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    out = tmp_path / "r"
    result = invoke(
        "import", SAMPLES / "dependents.csv", "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", out
    )
    folder = run_folder(out)
    assert (
        f"Rejects reports in {folder}: dependents.rejects.xlsx, dependents.rejects.csv, "
        "dependents.notifications.jsonl\n"
    ) in result.stdout
    assert f"summary: {folder / 'dependents.summary.json'}" in result.stdout
    assert all((folder / name).is_file() for name in ("dependents.rejects.xlsx", "dependents.rejects.csv"))
