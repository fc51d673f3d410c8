"""The benchmark: ``make bench`` (or ``python -m bench --help``). A script, not a test.

Generates a synthetic dependents CSV of N rows (about 5% breaking a rule; N/3 customers,
loaded first, untimed) and an XLSX, then measures on the same files and servers: the
importer into SQLite, PostgreSQL (also with ``--rebuild-indexes never``, every row checked as
it goes in) and MariaDB, and on each the same file with half its rows stored already and
updated (``--on-existing update``); on each, the naive baseline (``read_csv`` whole, the same Pandera
schema, ``to_sql``) and the floor (pyarrow and the database's fastest bulk path into a table
with a key, no validation).
Every job runs in a fresh process: wall seconds and that process's peak RSS.

The server databases are emptied (the project's tables dropped and recreated).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from bench import generate, tables
from bench.tables import UPDATE
from pipeline.database import db
from pipeline.database.customers import load_customers

URL_VARIABLES = {"PostgreSQL": "DEPENDENTS_BENCH_PG_URL", "MariaDB": "DEPENDENTS_BENCH_MARIADB_URL"}
PG = os.environ.get(URL_VARIABLES["PostgreSQL"], os.environ.get("DEPENDENTS_TEST_PG_URL", ""))
MARIADB = os.environ.get(URL_VARIABLES["MariaDB"], os.environ.get("DEPENDENTS_TEST_MARIADB_URL", ""))


ROW_BY_ROW = "importer PostgreSQL, --rebuild-indexes never"


@dataclass
class Result:
    """One job's runs: the table shows the median, and the spread when there are several."""

    name: str
    rows: int
    runs: list[float]
    peak_rss_mb: float  # the highest of the runs
    cpu: list[float] = field(default_factory=list)  # the job's own CPU seconds, all its threads
    busy: list[float] = field(default_factory=list)  # every core's busy seconds, servers included
    steps: list[dict[str, float]] = field(default_factory=list)  # the importer's, per run
    rss: list[dict] = field(default_factory=list)  # the importer's RSS by rows read, per run

    def rss_stretches(self) -> list[float | None]:
        """The highest RSS over the runs while each successive stretch of rows was read."""
        found = [r["stretches"] for r in self.rss]
        width = max(map(len, found), default=0)
        return [
            max((s[i] for s in found if i < len(s) and s[i] is not None), default=None) for i in range(width)
        ]

    def step_seconds(self, name: str) -> float | None:
        """The median over the runs of one importer step (``pipeline.run.Steps``)."""
        found = [s[name] for s in self.steps if name in s]
        return statistics.median(found) if found else None

    @property
    def seconds(self) -> float:
        return statistics.median(self.runs)

    @property
    def cpu_seconds(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu else None

    @property
    def busy_seconds(self) -> float | None:
        return statistics.median(self.busy) if self.busy else None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def spread(self) -> str:
        return f"{min(self.runs):.1f}–{max(self.runs):.1f}" if len(self.runs) > 1 else ""


@dataclass
class Job:
    """One line of the table: a measured job, what empties its tables first, its arguments."""

    name: str
    job: str
    before: Callable[[], None] | None = None  # called (untimed) before each run
    args: dict = field(default_factory=dict)


def measure(jobs: list[Job], repeat: int = 1) -> dict[str, Result]:
    """Run every job ``repeat`` times, each run in a fresh process after its ``before()``, in
    rounds: every job once per round, in order. This machine's speed drifts by a third over
    minutes; run back to back, one job's three runs could all fall in a slow phase and
    another's in a fast one, and the ratios between them would measure the drift. In rounds,
    a phase falls on every job alike."""
    runs: dict[str, list[Result]] = {j.name: [] for j in jobs}
    for _ in range(repeat):
        for j in jobs:
            if j.before:
                j.before()
            runs[j.name].append(_run_once(j.name, j.job, **j.args))
    return {name: _combined(name, found) for name, found in runs.items()}


def _combined(name: str, runs: list[Result]) -> Result:
    return Result(
        name,
        runs[0].rows,
        [r.runs[0] for r in runs],
        max(r.peak_rss_mb for r in runs),
        [c for r in runs for c in r.cpu],
        [b for r in runs for b in r.busy],
        [s for r in runs for s in r.steps if s],
        [m for r in runs for m in r.rss],
    )


def _run_once(name: str, job: str, **args) -> Result:
    settle(args["url"])
    cmd = [
        sys.executable,
        "-m",
        "bench.child",
        job,
        json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in args.items()}),
    ]
    before = busy_core_seconds()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    after = busy_core_seconds()
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    busy = [after - before] if before is not None and after is not None else []
    print(f"  {name}: {out['seconds']:.1f} s, {out['cpu_seconds']:.1f} CPU s", file=sys.stderr)
    rss = [out["rss_by_rows"]] if out.get("rss_by_rows") else []
    return Result(
        name,
        out["rows"],
        [out["seconds"]],
        out["peak_rss_mb"],
        [out["cpu_seconds"]],
        busy,
        [out["steps"]],
        rss,
    )


def busy_core_seconds() -> float | None:
    """Seconds every core of the machine has spent busy since boot (Linux ``/proc/stat``): the
    difference across a job counts the database server's work too, which the job's own CPU
    time does not. Busy is user, nice, system, irq and softirq: not idle, not waiting on the
    disk, not stolen by the hypervisor."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = ticks
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def settle(url: str) -> None:
    """On PostgreSQL, a ``CHECKPOINT`` first, so no job pays for the WAL of the one before it
    (PostgreSQL checkpoints by WAL volume; a million-row import writes about 0.5 GB of it)."""
    if url != PG:
        return
    engine = db.engine_for(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
    except sa.exc.DBAPIError:
        print("  (no CHECKPOINT: needs superuser or pg_checkpoint)", file=sys.stderr)
    finally:
        engine.dispose()


def fresh(url: str, customers: Path) -> None:
    """Empty the project's tables and load the customers (untimed). A SQLite database starts
    as a new file, so no run reuses the pages the run before it freed."""
    if url not in (PG, MARIADB):  # the bench's own SQLite file
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    engine = db.engine_for(url)
    with engine.begin() as conn:
        for table in ("baseline_dependents", "floor_dependents"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    db.drop_all(engine)
    db.init(engine)
    engine.dispose()
    load_customers(url, customers)


def half_stored(url: str, customers: Path, half: Path) -> None:
    """``fresh``, then half the rows stored already (untimed), for the update leg."""
    from pipeline.run import Options, import_file

    fresh(url, customers)
    with tempfile.TemporaryDirectory() as out:
        import_file(url, half, Options(as_of=date(2026, 11, 22), report_dir=Path(out), force=True))


def write_xlsx(frame, path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Dependents")
    sheet.append(list(frame.columns))
    for row in frame.itertuples(index=False, name=None):
        sheet.append(list(row))
    book.save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (default 1,000,000)")
    parser.add_argument("--xlsx-rows", type=int, default=100_000, help="XLSX rows (default 100,000)")
    parser.add_argument(
        "--rss-rows",
        type=int,
        default=0,
        help="also import a CSV this large into PostgreSQL for peak RSS (e.g. 5000000)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out"), help="where the generated files go")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each job this many times and show the median and the spread (default 1)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        help="write the figures as Markdown here (docs/benchmarks.md), replacing the file",
    )
    args = parser.parse_args(argv)

    print(
        f"generating {args.rows:,} CSV rows and {args.xlsx_rows:,} XLSX rows in {args.out}", file=sys.stderr
    )
    customers, csv_path = generate.files(args.out, args.rows)
    ids = generate.customer_ids(max(1, -(-args.rows // 3)))
    xlsx_path = write_xlsx(
        generate.dependents(args.xlsx_rows, ids), args.out / f"dependents-{args.xlsx_rows}.xlsx"
    )
    half = generate.stored_half(csv_path, args.out / f"stored-half-{args.rows}.csv")
    sqlite = f"sqlite:///{args.out / 'bench.db'}"
    servers = {"SQLite": sqlite, "PostgreSQL": PG, "MariaDB": MARIADB}
    jobs: list[Job] = []
    watched = {"rss_every": args.rows}  # the importer's RSS by each successive --rows rows read
    for label, url in servers.items():
        if not url:
            print(f"  {label}: skipped (set {URL_VARIABLES[label]})", file=sys.stderr)
            continue
        emptied = partial(fresh, url, customers)
        jobs.append(Job(f"importer {label}", "importer", emptied, {**watched, "url": url, "path": csv_path}))
        jobs.append(Job(f"baseline {label}", "baseline", emptied, {"url": url, "path": csv_path}))
        jobs.append(Job(f"floor {label}", "floor", None, {"url": url, "path": csv_path}))
        updating = {**watched, "url": url, "path": csv_path, "on_existing": "update"}
        jobs.append(
            Job(f"{UPDATE} {label}", "importer", partial(half_stored, url, customers, half), updating)
        )
        if url == PG:  # the same import with every row checked as it goes in
            args_never = {**watched, "url": url, "path": csv_path, "rebuild_indexes": "never"}
            jobs.append(Job(ROW_BY_ROW, "importer", emptied, args_never))
    jobs.append(
        Job(
            "importer XLSX SQLite",
            "importer",
            partial(fresh, sqlite, customers),
            {**watched, "url": sqlite, "path": xlsx_path},
        )
    )
    paced = [pace()]
    results = measure(jobs, args.repeat)
    if args.rss_rows and PG:
        big_customers, big = generate.files(args.out / "big", args.rss_rows)
        big_job = Job(
            f"importer PostgreSQL {args.rss_rows:,} rows",
            "importer",
            partial(fresh, PG, big_customers),
            {**watched, "url": PG, "path": big},
        )
        results |= measure([big_job])
    paced.append(pace())
    table = tables.render(results) + tables.STEPS_INTRO + tables.render_steps(results)
    table += tables.render_rss(results, args.rows)
    print(table)
    print(f"pace: {paced[0]:.2f} s before the jobs, {paced[1]:.2f} s after", file=sys.stderr)
    if args.docs:
        args.docs.write_text(
            tables.docs(table, args, *paced, PACE_LOOP, {"PostgreSQL": PG, "MariaDB": MARIADB}),
            encoding="utf-8",
        )
        print(f"wrote {args.docs}", file=sys.stderr)
    return 0


PACE_LOOP = 10_000_000


def pace() -> float:
    """Seconds of a fixed pure-Python loop: how fast this machine is running just now (the
    bench's figures move with it), so two runs' figures can be set side by side."""
    began = time.perf_counter()
    total = 0
    for i in range(PACE_LOOP):
        total += i
    return time.perf_counter() - began


if __name__ == "__main__":
    raise SystemExit(main())
