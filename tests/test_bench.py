"""The benchmark script runs on a small N so it never rots; its figures are not asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

import bench.__main__ as bench_main
from bench.__main__ import Job, Result, busy_core_seconds, measure
from bench.child import Watch
from bench.tables import render_rss, target
from tests.helpers import ROOT

pytestmark = pytest.mark.slow


def test_benchmark_runs_on_a_small_file(tmp_path):
    docs = tmp_path / "b.md"
    docs.write_text("# Benchmarks\n\nold figures\n")
    env = dict(os.environ)
    for server in ("PG", "MARIADB"):  # the bench empties the databases it is given
        env.pop(f"DEPENDENTS_BENCH_{server}_URL", None)
    args = [
        "--rows",
        "20000",  # a small N, so the script never rots
        "--xlsx-rows",
        "2000",
        "--out",
        str(tmp_path),
        "--docs",
        str(docs),
        "--repeat",
        "2",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    number, spread = r"[\d.,]+", r"[\d.]+–[\d.]+"
    # job, rows, seconds, spread, rows/s, peak RSS, own CPU, busy core-s
    figures = r" \| ".join(["20,000", number, spread, number, number, number, number])
    assert re.search(rf"\| importer SQLite \| {figures} \|", done.stdout)
    assert "| importer XLSX SQLite | 2,000 |" in done.stdout
    # staging, decision, update (only an updating import has one), insert ... total
    steps = r" \| ".join([number, number, "", *[number] * 6])
    assert re.search(rf"\| importer SQLite \| {steps} \|", done.stdout)
    # Memory as the file goes on: one stretch of 20,000 rows, then after the last row, the peak.
    assert re.search(rf"\| importer SQLite \| {number} \| {number} \| {number} \|\n", done.stdout)
    assert "| job | rows 1–20,000 | after the last row | peak RSS MB |" in done.stdout
    assert re.search(r"\| importer SQLite \| 20,000 \|.*\| [\d.]+x floor \|", done.stdout)
    assert "| floor SQLite | 20,000 |" in done.stdout
    assert re.search(r"\| half updates, importer SQLite \| 20,000 \|.*\| [\d.]+x the import \|", done.stdout)
    if os.environ.get("DEPENDENTS_TEST_PG_URL"):
        assert "| floor PostgreSQL | 20,000 |" in done.stdout
        assert "| importer PostgreSQL, --rebuild-indexes never | 20,000 |" in done.stdout
    written = docs.read_text()
    assert written.startswith("# Benchmarks") and "old figures" not in written
    assert re.search(r"- Pace: 10,000,000 additions in a pure-Python loop took [\d.]+ s before", written)
    assert written.rstrip().endswith("compare by their ratios, or by this pace.")


@pytest.mark.parametrize(
    ("runs", "median", "spread"),
    [([3.0], 3.0, ""), ([5.0, 1.0, 2.0], 2.0, "1.0–5.0"), ([1.0, 2.0], 1.5, "1.0–2.0")],
)
def test_a_job_shows_its_median_and_spread(runs, median, spread):
    result = Result("importer SQLite", 1_000, runs, 100.0)
    assert (result.seconds, result.spread) == (median, spread)


def test_a_job_shows_the_median_of_its_cpu_figures():
    result = Result(
        "importer SQLite", 1_000, [3.0, 1.0, 2.0], 100.0, cpu=[4.0, 2.0, 3.0], busy=[5.0, 9.0, 6.0]
    )
    assert (result.cpu_seconds, result.busy_seconds) == (3.0, 6.0)
    assert Result("floor", 1, [1.0], 1.0).cpu_seconds is None


@pytest.mark.skipif(
    not os.path.exists("/proc/stat"), reason="busy core-seconds are read from Linux /proc/stat"
)
def test_busy_core_seconds_count_work_done():
    before = busy_core_seconds()
    sum(i * i for i in range(3_000_000))  # about a tenth of a second of one core
    after = busy_core_seconds()
    assert before is not None and after is not None and after > before


def test_jobs_run_in_rounds_so_a_slow_phase_falls_on_every_job(monkeypatch):
    """Every job once per round, each run after its own ``before``: the ratios between jobs
    compare runs made minutes apart at most, not a whole job's runs against another's."""
    order: list[str] = []

    def run_once(name: str, job: str, **args) -> Result:
        order.append(name)
        return Result(name, 10, [float(len(order))], 100.0 + len(order), [1.0], [2.0])

    monkeypatch.setattr(bench_main, "_run_once", run_once)
    jobs = [Job("a", "importer", lambda: order.append("empty a")), Job("b", "floor")]
    results = measure(jobs, repeat=3)
    assert order == ["empty a", "a", "b"] * 3
    assert results["a"].runs == [2.0, 5.0, 8.0] and results["b"].runs == [3.0, 6.0, 9.0]
    assert results["b"].peak_rss_mb == 109.0 and results["a"].cpu == [1.0] * 3


def test_a_skipped_server_is_told_the_variable_the_bench_reads_and_the_docs_name():
    """``PostgreSQL: skipped (set DEPENDENTS_BENCH_PG_URL)``, the variable the docs name."""
    readme = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    assert set(bench_main.URL_VARIABLES) == {"PostgreSQL", "MariaDB"}
    for variable in bench_main.URL_VARIABLES.values():
        assert f"`{variable}`" in readme


def test_the_watch_keeps_the_highest_rss_of_each_stretch_of_rows_read():
    """Samples are (rows read so far, MB): each falls in its stretch of ``every`` rows, or
    after the last row; a stretch read inside one chunk has no sample and shows none."""
    watch = Watch()
    watch.close()
    watch.samples = [(0, 200.0), (0, 250.0), (1_000, 240.0), (3_000, 230.0), (4_000, 300.0), (4_000, 280.0)]
    assert watch.peaks(1_000, 4_000) == {
        "every": 1_000,
        "stretches": [250.0, 240.0, None, 230.0],
        "after": 300.0,
    }


def test_the_watch_samples_while_told_the_rows_read():
    watch = Watch()
    watch.start(10)
    watch.advance(5)
    time.sleep(10 * Watch.EVERY)
    watch.close()
    assert watch.samples and {rows for rows, _ in watch.samples} <= {0, 5}
    assert all(mb > 0 for _, mb in watch.samples)


def test_memory_by_rows_read_is_the_highest_of_the_runs_for_each_stretch():
    runs = [
        {"every": 10, "stretches": [300.0, 310.0, None], "after": 290.0},
        {"every": 10, "stretches": [320.0, 305.0, None], "after": 280.0},
    ]
    big = Result("importer PostgreSQL 30 rows", 30, [1.0, 1.0], 330.0, rss=runs)
    small = Result(
        "importer SQLite", 10, [1.0], 250.0, rss=[{"every": 10, "stretches": [240.0], "after": 250.0}]
    )
    assert big.rss_stretches() == [320.0, 310.0, None]
    table = render_rss(
        {"importer SQLite": small, big.name: big, "floor": Result("floor", 10, [1.0], 9.0)}, 10
    )
    assert "| job | rows 1–10 | rows 11–20 | rows 21–30 | after the last row | peak RSS MB |" in table
    assert "| importer SQLite | 240 |  |  | 250 | 250 |" in table
    assert "| importer PostgreSQL 30 rows | 320 | 310 |  | 290 | 330 |" in table
    assert "floor" not in table.split("|---|")[1]


@pytest.mark.parametrize(
    ("job", "shown"),
    [
        ("importer PostgreSQL", "≤ 2.5x floor, ≤ 600 MB"),
        ("importer SQLite", "≥ 3x baseline, ≤ 3x floor, ≤ 600 MB"),
        ("importer MariaDB", "≤ 2.5x floor, ≤ 600 MB"),
        ("importer PostgreSQL 5,000,000 rows", "peak ≤ 1.1x the million rows' (below)"),
        ("importer PostgreSQL, --rebuild-indexes never", ""),
        ("baseline PostgreSQL", ""),
    ],
)
def test_each_job_shows_its_target(job, shown):
    assert target(job) == shown
