"""The benchmark script runs on a small N so it never rots; its figures are not asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import bench.__main__ as bench_main
from bench.__main__ import KEEP, Job, Result, busy_core_seconds, kept, measure
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_benchmark_runs_on_a_small_file(tmp_path):
    docs = tmp_path / "b.md"
    docs.write_text(f"# Benchmarks\n\nold figures\n{KEEP}\n## Reading the figures\nwritten by hand\n")
    env = dict(os.environ)
    for server in ("PG", "MARIADB"):  # the bench empties the databases it is given
        env.pop(f"DEPENDENTS_BENCH_{server}_URL", None)
    args = [
        "--rows",
        "3000",
        "--xlsx-rows",
        "300",
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
    figures = r" \| ".join(["3,000", number, spread, number, number, number, number])
    assert re.search(rf"\| importer SQLite \| {figures} \|", done.stdout)
    assert "| importer XLSX SQLite | 300 |" in done.stdout
    steps = r" \| ".join([number] * 8)  # staging ... total, as the importer timed them
    assert re.search(rf"\| importer SQLite \| {steps} \|", done.stdout)
    if os.environ.get("DEPENDENTS_TEST_PG_URL"):
        assert "| floor PostgreSQL | 3,000 |" in done.stdout
        assert "| importer PostgreSQL, --rebuild-indexes never | 3,000 |" in done.stdout
    written = docs.read_text()
    assert written.startswith("# Benchmarks") and "old figures" not in written
    assert re.search(r"- Pace: 10,000,000 additions in a pure-Python loop took [\d.]+ s before", written)
    assert written.endswith(f"{KEEP}\n## Reading the figures\nwritten by hand\n")


@pytest.mark.parametrize(
    ("runs", "median", "spread"),
    [([3.0], 3.0, ""), ([5.0, 1.0, 2.0], 2.0, "1.0–5.0"), ([1.0, 2.0], 1.5, "1.0–2.0")],
)
def test_a_job_shows_its_median_and_spread(runs, median, spread):
    result = Result("importer SQLite", 1_000, runs, 100.0)
    assert (result.seconds, result.spread) == (median, spread)


def test_new_docs_get_an_empty_section_to_keep(tmp_path):
    assert kept(tmp_path / "absent.md") == f"\n{KEEP}\n"


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


def test_a_skipped_server_is_told_the_variable_the_bench_reads_and_the_readme_names():
    """``PostgreSQL: skipped (set DEPENDENTS_BENCH_PG_URL)``, the variable the README documents."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert set(bench_main.URL_VARIABLES) == {"PostgreSQL", "MariaDB"}
    for variable in bench_main.URL_VARIABLES.values():
        assert f"`{variable}`" in readme
