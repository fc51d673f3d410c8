"""Mutated sample files (flipped bytes, truncation, inserted quotes, NULs, newlines, BOMs,
duplicated runs): whatever the damage, the import ends in 0, 1 or 2, never a traceback, and
what it says matches what it stored. Inputs that once broke it are kept as named files."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from tests.helpers import AS_OF, ROOT, SAMPLES, invoke, query

pytestmark = pytest.mark.slow
MUTATIONS = 300  # per format: six hundred imports in under half a minute
INSERTS = [b'"', b"\x00", b"\n", b"\r", b"\xef\xbb\xbf", b",", b";", b"\xff\xfe", b"<", b"&"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    op = rng.choice(["flip", "truncate", "insert", "repeat"])
    if op == "flip":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif op == "truncate":
        b = b[: rng.randrange(len(b))]
    elif op == "insert":
        at = rng.randrange(len(b) + 1)
        b[at:at] = rng.choice(INSERTS)
    else:
        at = rng.randrange(len(b))
        b[at:at] = b[at : at + rng.randrange(200)]
    return bytes(b)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_mutated_file_is_loaded_or_refused_never_a_crash(sqlite_url, tmp_path, kind):
    rng = random.Random(kind)
    seed = (SAMPLES / f"dependents.{kind}").read_bytes()
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    for n in range(MUTATIONS):
        path = tmp_path / f"m{n}.{kind}"
        path.write_bytes(mutate(seed, rng))
        out = tmp_path / f"r{n}"
        result = invoke("import", path, "--db", sqlite_url, "--as-of", AS_OF, "--force", "--report-dir", out)
        assert result.exit_code in (0, 1, 2), (n, result.output)
        assert "Traceback" not in result.output and len(result.stderr.splitlines()) <= 4, (n, result.stderr)
        if result.exit_code == 2:
            continue
        run_id = result.stdout.split("Run ")[-1].split(";")[0]
        (read, accepted, rejected), *_ = query(
            sqlite_url, "SELECT rows_read, accepted, rejected FROM import_runs WHERE id = :r", r=run_id
        )
        stored = query(sqlite_url, "SELECT COUNT(*) FROM dependents WHERE import_run_id = :r", r=run_id)
        assert stored == [(accepted,)] and read == accepted + rejected, n
        reported = out / run_id / f"m{n}.rejects.csv"
        with reported.open(encoding="utf-8-sig", newline="") as fh:
            assert sum(1 for _ in csv.DictReader(fh)) == rejected, n


REGRESSIONS = sorted((ROOT / "tests" / "rows" / "regressions").iterdir())


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.name for p in REGRESSIONS])
def test_inputs_that_once_broke_the_import_now_load_or_are_refused_in_one_line(sqlite_url, path: Path):
    invoke("customers", "load", SAMPLES / "customers.csv", "--db", sqlite_url)
    result = invoke("import", path, "--db", sqlite_url, "--as-of", AS_OF)
    assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output, result.output
    if result.exit_code == 2:
        assert result.stderr.count("\n") == 1 and path.name in result.stderr
