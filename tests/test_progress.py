"""The progress bar shows on a terminal only, and --quiet silences it."""

from __future__ import annotations

import io
from datetime import date

from pipeline.progress import Bar, for_terminal
from pipeline.run import Options, import_file
from tests.helpers import AS_OF, SAMPLES, invoke


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


def test_the_bar_ends_at_the_rows_read_not_at_the_estimate():
    stream = Terminal()
    bar = Bar(stream)
    bar.start(105)  # a CSV's total is estimated from its size
    bar.advance(60)
    bar.advance(40)
    bar.finish(100)
    bar.close()
    frames = stream.getvalue().split("\r")
    assert "100/105" in frames[-2]  # the last chunk, against the estimate
    assert "[####################################]  100/100" in frames[-1]


class Recorder:
    """What an import tells its progress: ``run.Progress``."""

    def __init__(self) -> None:
        self.told: list[tuple[str, int]] = []

    def start(self, total: int) -> None:
        self.told.append(("start", total))

    def advance(self, rows: int) -> None:
        self.told.append(("advance", rows))

    def finish(self, rows: int) -> None:
        self.told.append(("finish", rows))

    def close(self) -> None:
        self.told.append(("close", 0))


def test_an_import_tells_its_progress_the_estimate_each_chunk_and_the_rows_read(sqlite_url, tmp_path):
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    recorder = Recorder()
    options = Options(as_of=date.fromisoformat(AS_OF), report_dir=tmp_path, chunk_size=10, progress=recorder)
    outcome = import_file(sqlite_url, SAMPLES / "dependents.csv", options)
    rows = outcome.run.rows_read
    kinds = [kind for kind, _ in recorder.told]
    assert kinds == ["start"] + ["advance"] * -(-rows // 10) + ["finish", "close"]
    assert sum(n for kind, n in recorder.told if kind == "advance") == rows
    assert recorder.told[-2] == ("finish", rows)


def test_an_import_off_a_terminal_prints_no_progress(sqlite_url, tmp_path):
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    result = invoke(
        "import", SAMPLES / "dependents.csv", "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path
    )
    assert result.stderr == "" and "Importing" not in result.output
