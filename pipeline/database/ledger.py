"""The run ledger: ``import_runs`` (one row per run) and ``import_rejects`` (its rejected rows).

A succeeded run's record commits in the same transaction as its dependents; a
run whose rows were rolled back (dry run, aborted, failed) is recorded after the
rollback, so the ledger tells what happened to every file either way.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.database import bulk, db
from pipeline.database.faults import Fault
from pipeline.errors import DatabaseError, PipelineError, UsageError, shown


@dataclass
class Run:
    id: str
    file_name: str
    sha256: str
    size_bytes: int
    profile: str
    channel: str
    as_of: date
    started_at: datetime
    status: str = "running"
    finished_at: datetime | None = None
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    source_run_id: str | None = None
    columns: list[str] = field(default_factory=list)
    message: str | None = None
    inserted: int = 0  # what the accepted rows did (``db.RESULTS``)
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    reverted_at: datetime | None = None
    lookups: dict[str, int] = field(default_factory=dict)  # the version of each lookup list read

    @property
    def exit_code(self) -> int:
        """0 every row accepted, 1 some rejected, 3 aborted by the reject-rate guard."""
        if self.status == "aborted":
            return 3
        return 1 if self.rejected else 0

    def row(self) -> dict:
        values = asdict(self)
        values["columns"] = json.dumps(self.columns, ensure_ascii=False)
        values["lookups"] = json.dumps(self.lookups) if self.lookups else None
        return values


def start(conn: Connection, run: Run) -> None:
    conn.execute(db.import_runs.insert(), run.row())


def finish(conn: Connection, run: Run) -> None:
    values = run.row()
    conn.execute(db.import_runs.update().where(db.import_runs.c.id == run.id), values)


def record(conn: Connection, run: Run) -> None:
    """Insert or update the run's row (it may have been rolled back with the data)."""
    exists = conn.execute(sa.select(db.import_runs.c.id).where(db.import_runs.c.id == run.id)).first()
    (finish if exists else start)(conn, run)


REJECT_COLUMNS = ["row", "codes", "messages", "notifications", "cells"]  # as ``import_rejects`` keeps them


def add_rejects(conn: Connection, run_id: str, rejects: pd.DataFrame) -> None:
    frame = rejects[REJECT_COLUMNS].assign(run_id=run_id)
    bulk.write(conn, db.import_rejects, frame)


def succeeded_with(conn: Connection, sha256: str) -> Run | None:
    """The latest succeeded run of a file with this SHA-256 that stored rows, if any: a run
    that stored none (a header-only file, every row rejected) does not make it imported."""
    t = db.import_runs
    stored = (t.c.inserted + t.c.updated) > 0
    q = sa.select(t).where(t.c.sha256 == sha256, t.c.status == "succeeded", stored)
    q = q.order_by(t.c.started_at.desc())
    found = conn.execute(q).mappings().first()
    return _run(found) if found else None


MIN_PREFIX = 8  # characters of a run id that may stand for it


def get(conn: Connection, run_id: str) -> Run | None:
    """A run by its id, or by an unambiguous prefix of at least ``MIN_PREFIX`` characters."""
    t = db.import_runs
    found = conn.execute(sa.select(t).where(t.c.id == run_id)).mappings().first()
    if found is None and len(run_id) >= MIN_PREFIX:
        some = conn.execute(sa.select(t).where(_prefixed(run_id)).limit(2)).mappings().all()
        found = some[0] if len(some) == 1 else None
    return _run(found) if found else None


RUN_ID_LENGTH = 36  # a whole run id, as an import prints it


def resolve(conn: Connection, run_id: str) -> Run:
    """The run ``run_id`` names (``get``), or a usage error saying why none is found."""
    found = get(conn, run_id)
    if found is not None:
        return found
    if len(run_id) < MIN_PREFIX:
        raise UsageError(
            f"run id {shown(run_id)!r} is too short: give at least its first {MIN_PREFIX} "
            "characters (see `dependents runs`)"
        )
    if matching(conn, run_id) > 1:
        raise UsageError(f"run id {shown(run_id)!r} fits more than one run: give more characters")
    if len(run_id) == RUN_ID_LENGTH:  # asked after an import's commit was cut off: answer that
        raise UsageError(f"no run {shown(run_id)!r} in this database: nothing of it was committed")
    raise UsageError(f"no run {shown(run_id)!r} (see `dependents runs`)")


def matching(conn: Connection, prefix: str) -> int:
    """How many runs' ids start with ``prefix`` (counted no further than 2)."""
    t = db.import_runs
    return len(conn.execute(sa.select(t.c.id).where(_prefixed(prefix)).limit(2)).all())


def _prefixed(prefix: str):
    """Ids starting with ``prefix``, its ``%`` and ``_`` taken as they are."""
    escaped = prefix.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return db.import_runs.c.id.like(f"{escaped}%", escape="/")


def origin_of(conn: Connection, run_id: str | None) -> str | None:
    """The first run of a chain of corrected reports, each imported from the one before."""
    seen: set[str] = set()
    while run_id and run_id not in seen:
        seen.add(run_id)
        before = conn.execute(
            sa.select(db.import_runs.c.source_run_id).where(db.import_runs.c.id == run_id)
        ).scalar()
        if before is None:
            return run_id
        run_id = before
    return run_id


def recent(conn: Connection, limit: int = 20) -> list[Run]:
    t = db.import_runs
    rows = conn.execute(sa.select(t).order_by(t.c.started_at.desc()).limit(limit)).mappings().all()
    return [_run(r) for r in rows]


def code_counts(conn: Connection, run_id: str) -> Counter:
    """Rejected rows per code for a run."""
    counts: Counter = Counter()
    for frame in rejects(conn, run_id):
        counts.update(frame["codes"].str.split(";").explode().value_counts().to_dict())
    return counts


def rejects(conn: Connection, run_id: str, size: int = 50_000) -> Iterator[pd.DataFrame]:
    """A run's rejected rows in row order, in frames of at most ``size``."""
    t = db.import_rejects
    q = (
        sa.select(t.c.row, t.c.codes, t.c.messages, t.c.notifications, t.c.cells)
        .where(t.c.run_id == run_id)
        .order_by(t.c.row)
    )
    result = conn.execute(q, execution_options={"yield_per": size})  # this query only
    for part in result.partitions(size):
        yield pd.DataFrame(part, columns=REJECT_COLUMNS)


def _run(row) -> Run:
    values = dict(row)
    values["columns"] = json.loads(values["columns"] or "[]")
    values["lookups"] = json.loads(values["lookups"] or "{}")
    return Run(**values)


STOPPED = {"KeyboardInterrupt": "interrupted by Ctrl-C", "Terminated": "stopped by SIGTERM"}


def record_failure(conn: Connection, run: Run, exc: BaseException) -> None:
    """Best effort: note a failed run in the ledger, on a new connection if the import's own
    was lost (the database may be gone altogether)."""
    stopped = STOPPED.get(type(exc).__name__)
    run.status = "interrupted" if stopped else "failed"
    run.finished_at = datetime.now(UTC).replace(tzinfo=None)
    if stopped:
        run.message = f"{stopped} after {run.rows_read:,} rows read; nothing committed"
    else:
        run.message = str(exc)[:1000] if isinstance(exc, PipelineError) else type(exc).__name__
        run.rows_read = 0
    run.accepted = run.rejected = 0
    run.inserted = run.updated = run.unchanged = run.skipped = 0
    lost = isinstance(exc, DatabaseError) and exc.fault is Fault.DISCONNECTED
    try:
        with conn.engine.connect() if lost else nullcontext(conn) as usable, usable.begin():
            record(usable, run)
    except Exception:
        pass  # the original error is what the user needs to see
