"""The guard around every command: a bug is one line on stderr, exit 70, nothing committed,
the run recorded as failed, and its traceback in an owner-only file with no cell's value."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from tests.helpers import AS_OF, C1, HEADER, customers_csv, invoke, kid, query, write_csv

SECRET = "987-65-4321"  # what a bug's message might carry: a cell's value


def broken(*args, **kwargs):
    raise RuntimeError(f"cannot handle {SECRET}")


@pytest.mark.parametrize("report_dir", [True, False], ids=["in the report folder", "in the working folder"])
def test_a_bug_is_one_line_exit_70_and_nothing_committed(sqlite_url, tmp_path, monkeypatch, report_dir):
    from pipeline.rows.validate import Validator

    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    path = write_csv(tmp_path / "d.csv", HEADER, [kid(1), kid(2)])
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(Validator, "failures", broken)
    args = [
        "import",
        path,
        "--db",
        sqlite_url,
        "--as-of",
        AS_OF,
        *(["--report-dir", out] if report_dir else []),
    ]
    result = invoke(*args)
    assert result.exit_code == 70
    line = result.stderr
    assert line.count("\n") == 1 and "Traceback" not in result.output and SECRET not in result.output
    found = re.fullmatch(r"internal error: RuntimeError; details in (.+)\n", line)
    assert found, line
    details = Path(found.group(1))
    assert details.parent == (out if report_dir else tmp_path)
    assert stat.S_IMODE(details.stat().st_mode) == 0o600
    text = details.read_text(encoding="utf-8")
    assert "builtins.RuntimeError (message withheld)" in text and "in broken" in text
    assert SECRET not in text
    assert query(sqlite_url, "SELECT COUNT(*) FROM dependents") == [(0,)]
    assert query(sqlite_url, "SELECT status, message FROM import_runs") == [("failed", "RuntimeError")]


def test_a_bug_in_a_command_without_a_report_folder_is_caught_too(sqlite_url, tmp_path, monkeypatch):
    from pipeline.database import ledger

    invoke("db", "init", "--db", sqlite_url)
    monkeypatch.setattr(ledger, "recent", broken)
    result = invoke("runs", "--db", sqlite_url)
    assert result.exit_code == 70 and result.stderr.startswith("internal error: RuntimeError; details in ")
    assert SECRET not in result.output


def test_a_bug_where_no_details_file_can_be_written_is_still_one_line(sqlite_url, tmp_path, monkeypatch):
    from pipeline import guard
    from pipeline.database import ledger

    def unwritable(exc, report_dir):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.txt"))

    invoke("db", "init", "--db", sqlite_url)
    monkeypatch.setattr(ledger, "recent", broken)
    monkeypatch.setattr(guard, "_details_file", unwritable)
    result = invoke("runs", "--db", sqlite_url)
    assert result.exit_code == 70 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("internal error: RuntimeError; no details file (")
