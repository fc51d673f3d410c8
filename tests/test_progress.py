"""The progress bar shows on a terminal only, and --quiet silences it."""

from __future__ import annotations

import io

from pipeline.progress import Bar, for_terminal
from tests.conftest import AS_OF, SAMPLES, invoke


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_only_on_a_terminal_and_never_when_quiet():
    assert for_terminal(quiet=False, stream=io.StringIO()) is None  # cron, CI, a pipe
    assert isinstance(for_terminal(quiet=False, stream=Terminal()), Bar)
    assert for_terminal(quiet=True, stream=Terminal()) is None


def test_the_bar_shows_rows_done_and_rate():
    stream = Terminal()
    bar = Bar(stream)
    bar.start(100)
    bar.advance(40)
    bar.advance(60)
    bar.close()
    text = stream.getvalue()
    assert "100/100" in text and "rows/s" in text


def test_an_import_off_a_terminal_prints_no_progress(sqlite_url, tmp_path):
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    result = invoke(
        "import", SAMPLES / "dependents.csv", "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path
    )
    assert result.stderr == "" and "Importing" not in result.output
