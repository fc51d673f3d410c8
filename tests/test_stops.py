"""Ctrl-C and SIGTERM at any instant of an import, from the libraries loading to the last line
printed: what the import says and its exit status follow what happened, checked against the
database each time, and no traceback or "Exception ignored" line ever shows."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import generate
from pipeline.database import db
from pipeline.database.customers import load_customers
from tests.helpers import (
    AS_OF,
    C1,
    HEADER,
    customers_csv,
    invoke,
    kid,
    query,
    run_folder,
    server_url,
    write_csv,
)

ROWS = 20_000
POINTS = 9  # instants spread from the process's start to just past its end


def fresh(kind: str, tmp_path: Path, customers: Path, n: int) -> str:
    url = f"sqlite:///{tmp_path / f'scan{n}.db'}" if kind == "sqlite" else server_url(kind)
    engine = db.engine_for(url)
    db.init(engine)
    engine.dispose()
    load_customers(url, customers)
    return url


def run(url: str, path: Path, out: Path, stop_after: float | None, signum: int):
    args = [sys.executable, "-m", "pipeline", "import", str(path), "--db", url, "--as-of", AS_OF]
    proc = subprocess.Popen(
        [*args, "--report-dir", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    began = time.monotonic()
    if stop_after is not None:
        time.sleep(stop_after)
        if proc.poll() is None:
            proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr, time.monotonic() - began


def stored(url: str) -> int:
    engine = db.engine_for(url)
    with engine.connect() as conn:
        found = conn.exec_driver_sql("SELECT COUNT(*) FROM dependents").scalar_one()
    engine.dispose()
    return found


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_stop_at_any_instant_says_what_happened(kind, tmp_path):
    customers, path = generate.files(tmp_path, ROWS)
    _, _, _, whole = run(fresh(kind, tmp_path, customers, 0), path, tmp_path / "r0", None, 0)
    outcomes = set()
    for n in range(1, POINTS + 1):
        url = fresh(kind, tmp_path, customers, n)
        signum = signal.SIGINT if n % 2 else signal.SIGTERM
        code, stdout, stderr, _ = run(url, path, tmp_path / f"r{n}", whole * (n - 1) / (POINTS - 2), signum)
        said = f"point {n}: exit {code}\n{stdout}\n{stderr}"
        assert "Traceback" not in stderr and "Exception ignored" not in stderr, said
        if code in (-signal.SIGINT, -signal.SIGTERM):  # before Python itself had started
            assert stderr == "" and stored(url) == 0, said
        elif code in (130, 143):
            assert stderr.strip().endswith("nothing was committed."), said
            assert stored(url) == 0, said
            outcomes.add("stopped")
        else:
            assert code in (0, 1), said
            accepted = int(re.search(r"(\d+) accepted", stdout).group(1))
            assert stored(url) == accepted > 0, said
            outcomes.add("finished")
    assert outcomes == {"stopped", "finished"}  # the scan reached both sides of the commit


@pytest.mark.parametrize(("signum", "name"), [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_a_stop_just_after_the_commit_is_said_and_the_run_stands(
    sqlite_url, tmp_path, monkeypatch, signum, name
):
    """The instant the issue was found at: the rows are in, so the import says so and exits
    with the run's own status, not "nothing was committed"."""

    from pipeline.rejects import publish

    published = publish.Pending.publish

    def stopped_then_published(self, run):
        os.kill(os.getpid(), signum)  # as the reports are moved into place, after the commit
        return published(self, run)

    monkeypatch.setattr(publish.Pending, "publish", stopped_then_published)
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1]), "--db", sqlite_url)
    path = write_csv(tmp_path / "d.csv", HEADER, [kid(1), kid(2), [C1, "", "Lee", "2019-01-04"]])
    result = invoke("import", path, "--db", sqlite_url, "--as-of", AS_OF, "--report-dir", tmp_path / "r")
    assert result.exit_code == 1, result.output
    assert "3 rows read, 2 accepted, 1 rejected (committed)" in result.stdout
    assert result.stderr == f"{name} came as the import committed: what it committed is said above.\n"
    assert query(sqlite_url, "SELECT COUNT(*) FROM dependents") == [(2,)]
    assert (run_folder(tmp_path / "r") / "d.rejects.csv").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_landing_in_a_weakref_callback_is_raised_after_it_not_lost(signum):
    """Python cannot raise out of a finaliser or weakref callback (it prints "Exception
    ignored" and goes on): a stop that lands there is raised again in ordinary code."""
    import weakref

    from pipeline import stops
    from pipeline.errors import Terminated

    class Thing:
        pass

    def callback(_ref) -> None:
        os.kill(os.getpid(), signum)
        for _ in range(10_000):  # the handler runs here, inside the callback
            pass

    expected = KeyboardInterrupt if signum == signal.SIGINT else Terminated
    with pytest.raises(expected), stops.stoppable():
        thing = Thing()
        ref = weakref.ref(thing, callback)
        del thing
        time.sleep(5)  # the stop is raised again here, in ordinary code
    assert ref() is None
