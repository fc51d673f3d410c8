"""One import, start to finish: read -> columns -> normalise -> validate -> load -> report.

The whole file is one database transaction: its accepted dependents and its run
record commit together or not at all. Rejected rows are spooled to a private
temporary file as they are found, so memory stays flat however many there are;
the ledger and the reports are written from that spool at the end.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from pipeline import columns, db, ledger, load, report
from pipeline.errors import AlreadyImported, PipelineError
from pipeline.normalise import normalise
from pipeline.notifications import assemble, with_details
from pipeline.read import Source, open_source
from pipeline.validate import Validator
from schemas import DEFAULT_PROFILE, PROFILES, parse

EXIT_OK, EXIT_REJECTS, EXIT_FILE, EXIT_ABORTED, EXIT_DATABASE = 0, 1, 2, 3, 4


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, rows: int) -> None: ...
    def close(self) -> None: ...


@dataclass
class Options:
    """Everything ``dependents import`` can be told; defaults are the CLI's defaults."""

    profile: str = DEFAULT_PROFILE
    channel: str = "self-service"
    as_of: date | None = None
    date_order: parse.DateOrder | None = None
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    chunk_size: int = 50_000
    report_dir: Path | None = None
    dry_run: bool = False
    force: bool = False
    max_reject_rate: float = 1.0
    include_pii: bool = False
    progress: Progress | None = None  # told the estimated rows, then each chunk's rows


@dataclass
class Outcome:
    run: ledger.Run
    counts: Counter
    reports: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    include_pii: bool = False

    @property
    def exit_code(self) -> int:
        if self.run.status == "aborted":
            return EXIT_ABORTED
        return EXIT_REJECTS if self.run.rejected else EXIT_OK


class Spool:
    """Rejected rows as JSON lines in a private temporary directory, read back in frames."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dependents-"))
        self.path = self.dir / "rejects.jsonl"
        self.fh = self.path.open("w", encoding="utf-8")

    def add(self, frame: pd.DataFrame) -> None:
        if not frame.empty:
            frame.to_json(self.fh, orient="records", lines=True, force_ascii=False)
            self.fh.write("\n")

    def frames(self, size: int = 50_000) -> Iterator[pd.DataFrame]:
        self.fh.flush()
        if self.path.stat().st_size == 0:
            return
        with pd.read_json(self.path, lines=True, chunksize=size, dtype=False) as reader:
            yield from reader

    def close(self) -> None:
        self.fh.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def import_file(url: str, path: Path, options: Options) -> Outcome:
    """Import one file into the database at ``url``; raises PipelineError (with its exit code)."""
    profile = PROFILES[options.profile]
    as_of = options.as_of or date.today()
    engine = db.engine_for(url)
    with db.errors(url):
        db.ensure_schema(engine)
    src = open_source(path, encoding=options.encoding, delimiter=options.delimiter, sheet=options.sheet)
    cmap = columns.match(src.headers, profile, src.path.name)
    started = datetime.now(UTC).replace(tzinfo=None)
    run = ledger.Run(
        id=str(uuid.uuid4()),
        file_name=src.path.name,
        sha256=src.sha256,
        size_bytes=src.size,
        profile=profile.name,
        channel=options.channel,
        as_of=as_of,
        started_at=started,
        columns=src.headers,
    )
    validator = Validator(profile, as_of, options.date_order)
    spool, counts = Spool(), Counter()
    try:
        with db.errors(url), engine.connect() as conn, db.import_lock(conn):
            _load(conn, src, cmap, validator, run, options, spool, counts)
        layout = report.Layout(src.headers, cmap.report, cmap.positions, options.include_pii)
        out_dir = options.report_dir or Path("reports") / run.id
        reports = report.write(out_dir, report_stem(src.path), run, counts, layout, spool.frames())
        return Outcome(run, counts, reports, cmap.warnings, options.include_pii)
    finally:
        if options.progress:
            options.progress.close()
        spool.close()
        engine.dispose()


def _load(
    conn,
    src: Source,
    cmap,
    validator: Validator,
    run: ledger.Run,
    options: Options,
    spool: Spool,
    counts: Counter,
) -> None:
    trans = conn.begin()
    try:
        prior = ledger.succeeded_with(conn, run.sha256)
        if prior and not options.force:
            raise AlreadyImported(
                f"{src.path.name} was already imported by run {prior.id} on "
                f"{prior.started_at:%Y-%m-%d %H:%M} UTC; pass --force to import it again"
            )
        if cmap.report:
            run.source_run_id = _source_run(conn, src.path)
        ledger.start(conn, run)
        loader = load.Loader(conn, run.id, options.channel, run.started_at)
        if options.progress:
            options.progress.start(src.estimated_rows)
        for chunk in src.chunks(options.chunk_size):
            rejected = _chunk(chunk, cmap, validator, loader, options, spool, counts)
            run.rows_read += len(chunk)
            run.rejected += rejected
            run.accepted += len(chunk) - rejected
            if options.progress:
                options.progress.advance(len(chunk))
        run.finished_at = datetime.now(UTC).replace(tzinfo=None)
        run.status = _status(run, options)
        if run.status == "succeeded":
            _record(conn, run, spool)
            trans.commit()
            return
        trans.rollback()
    except BaseException as exc:
        if trans.is_active:
            trans.rollback()
        if not isinstance(exc, AlreadyImported):
            _record_failure(conn, run, exc)
        raise
    with conn.begin():
        _record(conn, run, spool)


def _chunk(
    chunk: pd.DataFrame,
    cmap,
    validator: Validator,
    loader: load.Loader,
    options: Options,
    spool: Spool,
    counts: Counter,
) -> int:
    """Validate, check and insert one chunk; spool its rejects; return how many were rejected."""
    frame = normalise(chunk, cmap, validator.profile, options.date_order)
    failures = with_details(validator.failures(frame), validator.details)
    rejected_rows = pd.Index(failures["row"].unique())
    bad_customer = pd.Index(failures.loc[failures["code"].str.startswith("CUSTOMER_ID_"), "row"].unique())
    database = loader.check(frame, rejected_rows, bad_customer)
    loader.insert(frame)
    notes = assemble(pd.concat([failures, database], ignore_index=True))
    counts.update(notes["codes"].str.split(";").explode().value_counts().to_dict())
    cells = chunk.loc[notes.index].to_json(orient="values", force_ascii=False)
    spool.add(
        notes.reset_index().assign(cells=[json.dumps(c, ensure_ascii=False) for c in json.loads(cells)])
    )
    return len(notes)


def _status(run: ledger.Run, options: Options) -> str:
    if run.rows_read and run.rejected / run.rows_read > options.max_reject_rate:
        run.message = (
            f"{run.rejected} of {run.rows_read} rows rejected, more than --max-reject-rate "
            f"{options.max_reject_rate:g}; nothing committed"
        )
        return "aborted"
    return "dry run" if options.dry_run else "succeeded"


def _record(conn, run: ledger.Run, spool: Spool) -> None:
    ledger.record(conn, run)
    for frame in spool.frames():
        ledger.add_rejects(conn, run.id, frame)


def _record_failure(conn, run: ledger.Run, exc: BaseException) -> None:
    """Best effort: note a failed run in the ledger (the connection may be gone)."""
    run.status = "failed"
    run.finished_at = datetime.now(UTC).replace(tzinfo=None)
    run.message = str(exc)[:1000] if isinstance(exc, PipelineError) else type(exc).__name__
    run.rows_read = run.accepted = run.rejected = 0
    try:
        with conn.begin():
            ledger.record(conn, run)
    except Exception:
        pass  # the original error is what the user needs to see


def report_stem(path: Path) -> str:
    """``in.csv`` -> ``in``; a corrected ``in.rejects.xlsx`` -> ``in`` too, not ``in.rejects.rejects``."""
    return path.stem.removesuffix(".rejects")


def _source_run(conn, path: Path) -> str | None:
    """A rejects report sits in ``reports/<run id>/``: name that run when the ledger knows it."""
    found = ledger.get(conn, path.parent.name)
    return found.id if found else None
