"""The bench's figures as Markdown tables: the jobs, where each import's time went, and memory
as the file goes on; and the page ``docs/benchmarks.md`` they make."""

from __future__ import annotations

import os
import platform
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from pipeline.database import db

if TYPE_CHECKING:
    from bench.__main__ import Result


UPDATE = "half updates, importer"  # the file with half its rows stored already, --on-existing update
TARGETS = {
    "importer PostgreSQL": "≤ 2.5x floor, ≤ 600 MB",
    "importer SQLite": "≥ 3x baseline, ≤ 3x floor, ≤ 600 MB",
    "importer MariaDB": "≤ 2.5x floor, ≤ 600 MB",
}


def target(name: str) -> str:
    """A job's target, if it has one; the larger file's job (``--rss-rows``) is held to within
    10% of the million rows' peak, the update leg to the import's speed class."""
    if name.startswith(UPDATE):
        return "same class as the import (≤ 2x)"
    if name.startswith("importer PostgreSQL ") and name.endswith(" rows"):
        return "peak ≤ 1.1x the million rows' (below)"
    return TARGETS.get(name, "")


def render(results: dict[str, Result]) -> str:
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
        if name.startswith(UPDATE) and (plain := results.get(name.replace(UPDATE, "importer"))):
            vs_floor = f"{r.seconds / plain.seconds:.1f}x the import"
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
    "than the total; the update (an updating import's changes, found and made) is part of the "
    "decision's time.\n\n"
)
STEP_NAMES = ("staging", "decision", "update", "insert", "ledger", "commit", "assembly", "reports", "total")


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


def docs(table: str, args, before: float, after: float, loop: int, servers: dict[str, str]) -> str:
    """The figures as Markdown, with the machine and its pace (``pace``) before and after."""
    mem = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "?",
    )
    versions = _versions(servers)
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
- Pace: {loop:,} additions in a pure-Python loop took {before:.2f} s before the jobs and
  {after:.2f} s after them. This machine's speed moves from day to day and hour to hour: runs
  compare by their ratios, or by this pace.
"""


def _versions(servers: dict[str, str]) -> str:
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
    for label, url in servers.items():
        if url:
            engine = db.engine_for(url)
            with engine.connect() as conn:
                found = conn.execute(sa.text("SELECT version()")).scalar().split(" on ")[0]
                parts.append(found if found.startswith(label) else f"{label} {found}")
            engine.dispose()
    return ", ".join(parts)
