"""What the tests share: paths, fixed dates, small files, databases with fresh tables, the
command run in-process, and one row run through columns -> normalise -> validate."""

from __future__ import annotations

import csv
import os
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.database import db
from pipeline.errors import DatabaseError
from pipeline.rows import columns
from pipeline.rows.normalise import normalise
from pipeline.rows.validate import Validator
from schemas import PROFILES

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"
AS_OF = "2026-11-22"  # as the command line takes it
AS_OF_DATE = date.fromisoformat(AS_OF)
SERVERS = {"postgres": "DEPENDENTS_TEST_PG_URL", "mariadb": "DEPENDENTS_TEST_MARIADB_URL"}

CUSTOMER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
VALID = {
    "add-dependent": {
        "customerId": CUSTOMER,
        "firstName": "Abigail",
        "lastName": "Jones",
        "birthDate": "2019-01-04",
    },
    "carecycle": {"customerId": CUSTOMER},
}


def frame_for(cells: dict[str, str], profile: str = "add-dependent", date_order=None) -> pd.DataFrame:
    headers = list(cells)
    chunk = pd.DataFrame([list(cells.values())], index=pd.Index([2], name="row"), dtype="str")
    chunk.columns = range(len(headers))
    cmap = columns.match(headers, PROFILES[profile], "test.csv")
    return normalise(chunk, cmap, PROFILES[profile], date_order)


def codes_for(
    overrides: dict[str, str], profile: str = "add-dependent", as_of: date = AS_OF_DATE, date_order=None
) -> set[str]:
    """The codes one row gets: the profile's valid row with ``overrides`` applied. Pandera's own
    lazy ``validate`` must find the same, so every rule test holds the two to each other."""
    cells = {**VALID[profile], **overrides}
    frame = frame_for(cells, profile, date_order)
    validator = Validator(PROFILES[profile], as_of, date_order)
    found = set(validator.failures(frame)["code"])
    assert found == set(validator.by_pandera(frame)["code"])
    return found


def server_url(kind: str) -> str:
    """The URL of a reachable test server, with fresh empty tables; skip (or fail in CI) if none."""
    env = SERVERS[kind]
    url = os.environ.get(env)
    required = os.environ.get("DEPENDENTS_TEST_REQUIRE_DB") == "1"
    if not url:
        (pytest.fail if required else pytest.skip)(f"{env} is not set; {kind} tests need a server")
    engine = db.engine_for(url)
    try:
        db.drop_all(engine)
        db.init(engine)
    except sa.exc.OperationalError as exc:
        (pytest.fail if required else pytest.skip)(f"{kind} at {db.masked(url)} unreachable: {exc.orig}")
    except DatabaseError as exc:
        pytest.fail(f"{kind} at {db.masked(url)}: cannot start from empty tables: {exc}")
    finally:
        engine.dispose()
    return url


def database(kind: str, tmp_path: Path) -> str:
    """A database of ``kind`` (sqlite, postgres, mariadb) with fresh empty tables."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        db.init(db.engine_for(url))
        return url
    return server_url(kind)


def write_csv(path: Path, header: list[str], rows: list[list[str]], **kw) -> Path:
    with path.open("w", newline="", encoding=kw.pop("encoding", "utf-8")) as fh:
        csv.writer(fh, delimiter=kw.pop("delimiter", ",")).writerows([header, *rows])
    return path


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = db.engine_for(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params).all()]
    finally:
        engine.dispose()


def invoke(*args: str):
    """Run ``dependents ARGS`` in-process, as a user would from a shell."""
    from click.testing import CliRunner

    from pipeline.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def customers_csv(path: Path, ids: list[str]) -> Path:
    return write_csv(
        path, ["id", "firstName", "lastName"], [[i, "Cust", f"No{n}"] for n, i in enumerate(ids)]
    )


C1 = "11111111-1111-4111-8111-111111111111"
C2 = "22222222-2222-4222-8222-222222222222"
HEADER = ["customerId", "firstName", "lastName", "birthDate"]


def kid(n: int, customer: str = C1, first: str | None = None) -> list[str]:
    return [customer, first or f"Kid{n}", "Jones", f"2015-01-{n:02d}"]


def run_folder(out: Path) -> Path:
    """The report folder of the latest run under ``out`` (``--report-dir``: a folder per run);
    ``out`` itself when it holds none."""
    folders = [p for p in out.glob("*") if p.is_dir() and not p.name.startswith(".")]
    return max(folders, key=lambda p: p.stat().st_mtime_ns, default=out)


def run_import(url: str, tmp: Path, rows: list[list[str]], *extra: str, name: str = "d.csv"):
    """Import ``rows``; returns (exit code, {row: [codes]}, notifications by row)."""
    if not query(url, "SELECT id FROM customers"):
        invoke("customers", "load", customers_csv(tmp / "c.csv", [C1, C2]), "--db", url)
    out = tmp / f"r-{name}"
    path = write_csv(tmp / name, HEADER, rows)
    result = invoke("import", path, "--db", url, "--as-of", AS_OF, "--report-dir", out, *extra)
    codes: dict[int, list[str]] = {}
    rejects = run_folder(out) / f"{path.stem}.rejects.csv"
    if rejects.is_file():
        with rejects.open(encoding="utf-8-sig") as fh:
            codes = {int(r["row"]): r["codes"].split(";") for r in csv.DictReader(fh)}
    return result.exit_code, codes


# Dependents with the fields an update may change, for ``--on-existing`` and ``runs revert``.
FULL_HEADER = [*HEADER, "gender", "phone", "ssn", "isCovered", "notes"]
ANN = [C1, "Ann", "Lee", "2015-01-04", "Female", "555-1000", "123-45-6789", "true", "first"]
BOB = [C1, "Bob", "Lee", "2016-02-05", "Male", "555-2000", "", "false", ""]
CID = [C1, "Cid", "Lee", "2017-03-06", "", "", "", "", ""]
STORED_FIELDS = "first_name, gender, phone, ssn, is_covered, notes, created_at, updated_at, import_run_id"


def import_rows(url: str, tmp: Path, rows: list[list[str]], *extra: str, name: str = "d.csv"):
    """Import ``rows`` (``FULL_HEADER``) from the contact centre; returns the command's result."""
    if not query(url, "SELECT id FROM customers"):
        invoke("customers", "load", customers_csv(tmp / "c.csv", [C1, C2]), "--db", url)
    path = write_csv(tmp / name, FULL_HEADER, rows)
    args = ["import", path, "--db", url, "--as-of", AS_OF, "--report-dir", tmp / f"r-{name}"]
    return invoke(*args, "--channel", "contact-centre", *extra)


def dependents_in(url: str) -> list[tuple]:
    """Every stored dependent's ``STORED_FIELDS``, by name and birth date."""
    return query(url, f"SELECT {STORED_FIELDS} FROM dependents ORDER BY first_name, date_of_birth")


def run_of(url: str, name: str, columns: str = "id") -> tuple:
    """``columns`` of the one run of the file ``name``."""
    (found,) = query(url, f"SELECT {columns} FROM import_runs WHERE file_name = :name", name=name)
    return tuple(found)


def stored(url: str) -> int:
    return query(url, "SELECT COUNT(*) FROM dependents")[0][0]


# What a cell may hold that XML or a spreadsheet treats specially.
AWKWARD = [
    "",
    " ",
    "  lead",
    "trail  ",
    "a & b",
    "<b>bold</b>",
    "x > y",
    "line\r\nbreak",
    "cr\ronly",
    "lf\nonly",
    "tab\tin",
    '=HYPERLINK("http://x","click")',
    "+1 555",
    "@SUM(A1)",
    "'quoted",
    '"double"',
    "&amp; already",
    "]]>",
    "Zoë Ñandú 李 🙂",
    "\u00a0nbsp\u00a0",
    "1e5",
    "007",
]


def commands(group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """Every command under ``group`` (a Click group), by its path of names, groups included."""
    import click

    found = []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
    return found


def execute(url: str, *statements: str) -> None:
    """Run ``statements`` on ``url`` in one transaction."""
    engine = db.engine_for(url)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
    finally:
        engine.dispose()
