"""The settings file: import's long options as keys, `db` for every command; a flag beats
the environment, which beats the file, which beats the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import AS_OF, C1, HEADER, customers_csv, invoke, kid, query, write_csv

BAD = [C1, "", "Lee", "2019-01-01"]  # firstName missing: rejected


def settings(text: str, path: Path = Path("dependents.toml")) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def half_rejected(url: str, tmp: Path) -> Path:
    invoke("customers", "load", customers_csv(tmp / "c.csv", [C1]), "--db", url)
    return write_csv(tmp / "half.csv", HEADER, [kid(1), BAD])


def test_flag_beats_environment_beats_file_beats_default(sqlite_url, tmp_path, monkeypatch):
    path = half_rejected(sqlite_url, tmp_path)
    settings(f'db = "{sqlite_url}"\nmax-reject-rate = 0.1\n')

    def imported(*flags: str) -> int:
        return invoke("import", path, "--as-of", AS_OF, "--dry-run", *flags).exit_code

    assert imported() == 3  # the file's 0.1: half the rows rejected is too many
    monkeypatch.setenv("DEPENDENTS_IMPORT_MAX_REJECT_RATE", "0.9")
    assert imported() == 1  # the environment's 0.9
    assert imported("--max-reject-rate", "0.2") == 3  # the flag's
    monkeypatch.delenv("DEPENDENTS_IMPORT_MAX_REJECT_RATE")
    (tmp_path / "dependents.toml").unlink()
    assert imported("--db", sqlite_url) == 1  # the default, 1.0


def test_config_show_says_where_each_setting_came_from_and_masks_the_password(monkeypatch):
    settings('db = "postgresql://ops:hunter2@db.example/prod"\nchannel = "Contact-Centre"\n')
    monkeypatch.setenv("DEPENDENTS_IMPORT_SETTLE", "5")
    result = invoke("config", "show")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "hunter2" not in result.output
    assert lines["db"].split()[1:] == [
        "postgresql://ops:***@db.example/prod",
        "settings",
        "file",
        "(dependents.toml)",
    ]
    assert lines["channel"].split()[1] == "contact-centre"  # as the command line would take it
    assert lines["settle"].split()[1:] == ["5", "environment", "($DEPENDENTS_IMPORT_SETTLE)"]
    assert lines["profile"].split()[1:] == ["add-dependent", "default"]


def test_the_db_setting_serves_every_command_and_paths_are_the_files_own(sqlite_url, tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir()
    path = half_rejected(sqlite_url, tmp_path)
    named = settings(f'db = "{sqlite_url}"\nreport-dir = "reports"\n', folder / "nightly.toml")
    result = invoke("--config", named, "import", path, "--as-of", AS_OF)
    assert result.exit_code == 1, result.output
    ((run_id,),) = query(sqlite_url, "SELECT id FROM import_runs")
    assert (folder / "reports" / run_id / "half.rejects.csv").exists()  # beside the settings file
    assert run_id in invoke("--config", named, "runs").stdout


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("nope = 1\n", "dependents.toml: unknown key 'nope' (not a long option of dependents import)"),
        ('max-reject-rate = "lots"\n', "dependents.toml: key 'max-reject-rate': 'lots' is not a valid float"),
        ("channel = 1\n", "dependents.toml: key 'channel': 1 is not one of 'self-service', 'contact-centre'"),
        ("force = [true]\n", "dependents.toml: key 'force': expected a single boolean value"),
        ("timings = true\n", "dependents.toml: unknown key 'timings'"),
        ("db = \n", "dependents.toml: not valid TOML (Invalid value (at line 1, column 6))"),
        ("\udcff", "dependents.toml: not valid TOML"),
    ],
    ids=["unknown key", "not a number", "not a choice", "a list", "per run only", "not TOML", "not UTF-8"],
)
def test_a_bad_settings_file_is_exit_2_naming_the_file_and_the_key(sqlite_url, text, said):
    Path("dependents.toml").write_bytes(text.encode("utf-8", "surrogateescape"))
    result = invoke("runs", "--db", sqlite_url)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {said}"), result.stderr
    assert result.stderr.count("\n") == 1


def test_a_settings_file_named_that_is_not_there_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("DEPENDENTS_CONFIG", str(tmp_path / "gone.toml"))
    result = invoke("runs")
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'gone.toml'}: no such settings file\n"
