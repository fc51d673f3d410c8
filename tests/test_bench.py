"""The benchmark script runs on a small N so it never rots; its figures are not asserted."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_benchmark_runs_on_a_small_file(tmp_path):
    env = dict(os.environ)
    for server in ("PG", "MARIADB"):  # the bench empties the databases it is given
        env.pop(f"DEPENDENTS_BENCH_{server}_URL", None)
    args = ["--rows", "3000", "--xlsx-rows", "300", "--out", str(tmp_path), "--docs", str(tmp_path / "b.md")]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "| importer SQLite | 3,000 |" in done.stdout
    assert "| importer XLSX SQLite | 300 |" in done.stdout
    if os.environ.get("DEPENDENTS_TEST_PG_URL"):
        assert "| floor PostgreSQL | 3,000 |" in done.stdout
    assert (tmp_path / "b.md").read_text().startswith("# Benchmarks")
