"""The benchmark: ``make bench`` (or ``python -m bench --help``). A script, not a test.

Generates a synthetic dependents CSV of N rows (about 5% breaking a rule; N/3 customers,
loaded first, untimed) and an XLSX, then measures on the same files and servers: the
importer into SQLite, PostgreSQL (also with ``--rebuild-indexes never``, every row checked as
it goes in) and MariaDB; on each, the naive baseline (``read_csv`` whole, the same Pandera
schema, ``to_sql``) and the floor (pyarrow and the database's fastest bulk path into a table
with a key, no validation).
Every job runs in a fresh process: wall seconds and that process's peak RSS.

The server databases are emptied (the project's tables dropped and recreated).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from bench import generate
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
    table = render(results, args) + STEPS_INTRO + render_steps(results) + render_rss(results, args.rows)
    print(table)
    print(f"pace: {paced[0]:.2f} s before the jobs, {paced[1]:.2f} s after", file=sys.stderr)
    if args.docs:
        args.docs.write_text(docs(table, args, *paced), encoding="utf-8")
        print(f"wrote {args.docs}", file=sys.stderr)
    return 0


TARGETS = {
    "importer PostgreSQL": "≤ 2.5x floor, ≤ 600 MB",
    "importer SQLite": "≥ 3x baseline, ≤ 3x floor, ≤ 600 MB",
    "importer MariaDB": "≤ 2.5x floor, ≤ 600 MB",
}


def target(name: str) -> str:
    """A job's target, if it has one; the larger file's job (``--rss-rows``) is held to within
    10% of the million rows' peak."""
    if name.startswith("importer PostgreSQL ") and name.endswith(" rows"):
        return "peak ≤ 1.1x the million rows' (below)"
    return TARGETS.get(name, "")


def render(results: dict[str, Result], args) -> str:
    lines = [
        "| job | rows | seconds | spread (s) | rows/s | peak RSS MB | own CPU s | busy core-s "
        "| baseline ÷ importer | importer ÷ floor | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        base = results.get(name.replace("importer", "baseline")) if name.startswith("importer") else None
        floor = results.get(name.replace("importer", "floor")) if name.startswith("importer") else None
        vs_base = f"{base.seconds / r.seconds:.2f}x" if base and base is not r else ""
        vs_floor = f"{r.seconds / floor.seconds:.1f}x floor" if floor and floor is not r else ""
        lines.append(
            f"| {name} | {r.rows:,} | {r.seconds:.1f} | {r.spread} | {r.rate:,.0f} | {r.peak_rss_mb:,.0f} "
            f"| {_one(r.cpu_seconds)} | {_one(r.busy_seconds)} | {vs_base} | {vs_floor} "
            f"| {target(name)} |"
        )
    return "\n".join(lines)


STEPS_INTRO = (
    "\n\nWhere each import's time went: the median seconds of each step, as the importer times "
    "them itself (`dependents import --timings`). Assembling the rejected rows and writing the "
    "reports run beside the decision, the insert and the ledger, so the steps add up to more "
    "than the total.\n\n"
)
STEP_NAMES = ("staging", "decision", "insert", "ledger", "commit", "assembly", "reports", "total")


def render_steps(results: dict[str, Result]) -> str:
    """Where each import's time went: the median of each step the importer timed itself."""
    lines = [
        "| job | " + " | ".join(STEP_NAMES) + " |",
        "|---|" + "---:|" * len(STEP_NAMES),
    ]
    for name, r in results.items():
        if r.steps:
            lines.append(f"| {name} | " + " | ".join(_one(r.step_seconds(s)) for s in STEP_NAMES) + " |")
    return "\n".join(lines)


RSS_INTRO = (
    "\n\nMemory as the file goes on: each import's highest RSS in MB (over its runs) while each "
    "successive {every:,} rows were read, and after its last row was read (the last chunks' "
    "staging, the decision, the insert, the reports). Memory that grew with the file would "
    "climb along a line; the peak is the highest of the line.\n\n"
)


def render_rss(results: dict[str, Result], every: int) -> str:
    """The importer's RSS by the rows it had read (``bench.child.Watch``): flat, or growing."""
    watched = {name: r for name, r in results.items() if r.rss}
    if not watched:
        return ""
    width = max(len(r.rss_stretches()) for r in watched.values())
    heads = [f"rows {i * every + 1:,}–{(i + 1) * every:,}" for i in range(width)]
    lines = [
        "| job | " + " | ".join(heads) + " | after the last row | peak RSS MB |",
        "|---|" + "---:|" * (width + 2),
    ]
    for name, r in watched.items():
        found = ["" if mb is None else f"{mb:,.0f}" for mb in r.rss_stretches()]
        after = max(m["after"] for m in r.rss)
        cells = found + [""] * (width - len(found)) + [f"{after:,.0f}", f"{r.peak_rss_mb:,.0f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return RSS_INTRO.format(every=every) + "\n".join(lines)


def _one(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def docs(table: str, args, before: float, after: float) -> str:
    """The figures as Markdown, with the machine and its pace (``pace``) before and after."""
    mem = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "?",
    )
    versions = _versions()
    rss = f" --rss-rows {args.rss_rows}" if args.rss_rows else ""
    repeat = f" --repeat {args.repeat}" if args.repeat > 1 else ""
    once = f" (the {args.rss_rows:,}-row job once)" if args.rss_rows else ""
    runs = (
        f"Each job ran {args.repeat} times{once}, in rounds (every job once per round, in the "
        "table's order, so a slow phase of the machine falls on every job alike), each time in a "
        "fresh process on freshly emptied tables; seconds are the median wall time, the spread the "
        "fastest and slowest run, peak RSS the highest of the runs"
        if args.repeat > 1
        else "Each job runs in a fresh process on freshly emptied tables; seconds are wall time, "
        "peak RSS is that process's"
    )
    intro = textwrap.fill(
        f"Generated by `make bench` (`python -m bench --rows {args.rows} --xlsx-rows {args.xlsx_rows}"
        f"{rss}{repeat}`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. {runs}; each PostgreSQL job "
        "starts after a `CHECKPOINT`. The importer runs every rule, the database checks (customer "
        "exists, duplicates, the dependent limit), one transaction, the run ledger, and writes all "
        "four reports (CSV, XLSX, JSONL, summary). The baseline does none of the database checks, "
        "keeps no ledger and writes no report: it is the floor of the naive approach, not its equal. "
        "Own CPU is the job's process (user and system, every thread; SQLite runs inside it); busy "
        "core-s is every core's busy time while the job ran, the database server's included: on "
        f"{os.cpu_count()} cores no job can take less than its busy core-s ÷ {os.cpu_count()}.",
        width=92,
        break_on_hyphens=False,
    )
    return f"""# Benchmarks

{intro}

{table}

## Machine

- {platform.platform()}, {os.cpu_count()} CPUs, {int(mem) // 1024:,} MB RAM
- Python {platform.python_version()}; {versions}
- Pace: {PACE_LOOP:,} additions in a pure-Python loop took {before:.2f} s before the jobs and
  {after:.2f} s after them. This machine's speed moves from day to day and hour to hour: runs
  compare by their ratios, or by this pace.
"""


PACE_LOOP = 10_000_000


def pace() -> float:
    """Seconds of a fixed pure-Python loop: how fast this machine is running just now (the
    bench's figures move with it), so two runs' figures can be set side by side."""
    began = time.perf_counter()
    total = 0
    for i in range(PACE_LOOP):
        total += i
    return time.perf_counter() - began


def _versions() -> str:
    from importlib.metadata import version

    names = (
        "adbc-driver-sqlite",
        "pandas",
        "pandera",
        "pyarrow",
        "sqlalchemy",
        "psycopg",
        "pgpq",
        "pymysql",
        "openpyxl",
        "lxml",
        "python-calamine",
    )
    parts = [f"{n} {version(n)}" for n in names]
    for label, url in (("PostgreSQL", PG), ("MariaDB", MARIADB)):
        if url:
            engine = db.engine_for(url)
            with engine.connect() as conn:
                found = conn.execute(sa.text("SELECT version()")).scalar().split(" on ")[0]
                parts.append(found if found.startswith(label) else f"{label} {found}")
            engine.dispose()
    return ", ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
