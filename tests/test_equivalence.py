"""Results are identical, row for row and code for code, whatever the chunk size and database."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from bench import generate
from tests.helpers import AS_OF, invoke, query, run_folder, server_url

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    """6,000 generated rows, plus repeats of earlier rows and fifth dependents (the DB rules)."""
    directory = tmp_path_factory.mktemp("equivalence")
    customers = generate.customer_ids(2000)
    frame = generate.dependents(6000, customers)
    extra = frame.iloc[[10, 500, 2500, 4999]].copy()  # duplicates in the file, across chunks
    fourth = frame.iloc[[20, 21]].assign(firstName="Fourth", birthDate="2020-01-01")
    fifth = frame.iloc[[20, 21]].assign(firstName="Fifth", birthDate="2020-01-02")  # over the limit
    frame = pd.concat([frame, extra, fourth, fifth], ignore_index=True)
    return (
        generate.write_customers(customers, directory / "customers.csv"),
        generate.write_csv(frame, directory / "dependents.csv"),
    )


def outcome(url: str, files: tuple[Path, Path], tmp: Path, chunk: int, *extra: str) -> tuple[list, list]:
    customers, dependents = files
    invoke("customers", "load", customers, "--db", url)
    result = invoke(
        "import",
        dependents,
        "--db",
        url,
        "--as-of",
        AS_OF,
        "--chunk-size",
        chunk,
        "--report-dir",
        tmp,
        *extra,
    )
    assert result.exit_code == 1, result.output
    with (run_folder(tmp) / "dependents.rejects.csv").open(encoding="utf-8-sig") as fh:
        rejects = [(int(r["row"]), r["codes"]) for r in csv.DictReader(fh)]
    stored = query(
        url, "SELECT source_row, customer_id, first_name, last_name FROM dependents ORDER BY source_row"
    )
    return rejects, [(int(r), str(c), f, la) for r, c, f, la in stored]


def test_chunk_size_does_not_change_results(files, tmp_path):
    small = outcome(f"sqlite:///{tmp_path / 'small.db'}", files, tmp_path / "small", 1000)
    large = outcome(f"sqlite:///{tmp_path / 'large.db'}", files, tmp_path / "large", 50_000)
    assert small == large
    codes = {c for _, cs in small[0] for c in cs.split(";")}
    assert {"DUPLICATE_IN_FILE", "DEPENDENT_LIMIT_REACHED", "FIRST_NAME_REQUIRED"} <= codes


def test_sqlite_and_postgresql_give_the_same_results(files, tmp_path):
    lite = outcome(f"sqlite:///{tmp_path / 'lite.db'}", files, tmp_path / "lite", 50_000)
    pg = outcome(server_url("postgres"), files, tmp_path / "pg", 1000)
    assert lite == pg


def test_rebuilding_the_indexes_does_not_change_results(files, tmp_path):
    kept = outcome(server_url("postgres"), files, tmp_path / "kept", 1000, "--rebuild-indexes", "never")
    rebuilt = outcome(
        server_url("postgres"), files, tmp_path / "rebuilt", 1000, "--rebuild-indexes", "always"
    )
    assert kept == rebuilt
