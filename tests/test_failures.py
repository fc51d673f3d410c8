"""Every command, given arguments that make it fail (a server that is not there, a URL that
is not one, a file or run that does not exist), says so in one line with its exit status;
none prints a traceback."""

from __future__ import annotations

import click
import pytest

from pipeline.cli import cli
from tests.helpers import commands, invoke

COMMANDS = commands(cli)

LEAVES = [(path, command) for path, command in COMMANDS if not isinstance(command, click.Group)]
BAD_DATABASES = {
    "unreachable": ("postgresql://nobody@127.0.0.1:9/none", 4),
    "not a URL": ("just-a-name.db", 2),
    "unknown kind": ("oracle://u@h/d", 2),
    "malformed": ("postgresql://u@h:port/d", 2),
}


def arguments(command: click.Command, tmp_path) -> list[str]:
    """A value for each argument that cannot work: a missing file or run, a folder for a file."""
    values = {
        "file": tmp_path / "missing.csv",
        "paths": tmp_path / "missing.csv",
        "run_id": "0123456789abcdef",
        "name": "no-such-lookup",
        "out": tmp_path,
    }
    return [str(values[p.name]) for p in command.params if isinstance(p, click.Argument)]


def takes_db(command: click.Command) -> bool:
    return any(p.name == "db_url" for p in command.params)


@pytest.mark.parametrize("bad", BAD_DATABASES)
@pytest.mark.parametrize("path", [p for p, c in LEAVES if takes_db(c)], ids=" ".join)
def test_a_database_that_cannot_be_used_is_one_line(path, bad, tmp_path):
    command = dict(LEAVES)[path]
    url, status = BAD_DATABASES[bad]
    result = invoke(*path, *arguments(command, tmp_path), "--db", url)
    said_once(result)
    # A missing file or run may be found first; either way it is a refusal, not a crash.
    assert result.exit_code in (status, 2), result.output


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=" ".join)
def test_what_is_not_there_is_one_line(path, tmp_path):
    command = dict(LEAVES)[path]
    args = arguments(command, tmp_path)
    db = ["--db", f"sqlite:///{tmp_path / 'none.db'}"] if takes_db(command) else []
    result = invoke(*path, *args, *db)
    if not args:  # db init, runs ...: nothing to miss; they work on a new SQLite file
        assert result.exit_code == 0, result.output
        return
    said_once(result)
    assert result.exit_code == 2


def said_once(result) -> None:
    """One ``Error:`` line; a mistake Click finds in the arguments also shows the usage line
    and where to get help above it, as every Click program does."""
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("Error: ") and len(lines) in (1, 4), result.stderr
