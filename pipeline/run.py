"""One import, start to finish: read -> columns -> normalise -> validate -> load -> report.

The whole file is one database transaction: its accepted dependents and its run
record commit together or not at all. Chunk by chunk, rows are validated and staged
in the database, and their raw cells and row-rule failures spooled to private
temporary files, so memory stays flat however long the file. Once the whole file is
staged, one thread has the database decide its rules, insert and record the run, while
another turns each chunk's row-rule failures into rejected rows (spooled too) and writes
them into the reports; a chunk the database's verdicts touch is assembled again with them,
and then the reports are written again. The reports are published after the commit.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from pipeline import memory
from pipeline.database import db, decide, ledger, load
from pipeline.errors import AlreadyImported, PipelineError, Terminated
from pipeline.rejects import report
from pipeline.rejects.notifications import assemble, with_details
from pipeline.rows import columns
from pipeline.rows.normalise import normalise
from pipeline.rows.read import Source, open_source
from pipeline.rows.spool import Chunk, Spool
from pipeline.rows.validate import Validator
from schemas import DEFAULT_PROFILE, PROFILES, parse

EXIT_OK, EXIT_REJECTS, EXIT_FILE, EXIT_ABORTED, EXIT_DATABASE = 0, 1, 2, 3, 4
_STOPPED = {KeyboardInterrupt: "stopped by Ctrl-C", Terminated: "stopped by SIGTERM"}


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, rows: int) -> None: ...
    def finish(self, rows: int) -> None: ...
    def close(self) -> None: ...


# Rows per chunk. Pandera's lazy validation costs about 0.15 s a chunk whatever its size (it
# gathers each failing column's cases into frames): 100,000 rather than 50,000 took 0.6-1.0 s
# off a million rows' checks, for 30-50 MB more peak memory (PostgreSQL 417-440 MB, SQLite
# 522-529 MB, 1,000,000 rows).
CHUNK_SIZE = 100_000


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
    chunk_size: int = CHUNK_SIZE
    report_dir: Path | None = None
    dry_run: bool = False
    force: bool = False
    max_reject_rate: float = 1.0
    include_pii: bool = False
    rebuild_indexes: str = "auto"  # PostgreSQL: see ``pipeline.database.indexes``
    progress: Progress | None = None  # told the estimated rows, each chunk's rows, then all rows


@dataclass
class Steps:
    """Seconds each step of one import took (``--timings``). The decision, the insert and the
    ledger run on one thread while the rejected rows are assembled and the reports written on
    another, so the steps add up to more than the import's wall time."""

    seconds: dict[str, float] = field(default_factory=dict)
    plan: str | None = None  # the database's decision, step by step (``decide.Plan``)

    @contextmanager
    def timing(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began

    def timed(self, name: str, fn: Callable) -> Callable:
        """``fn``, timed as ``name`` on whichever thread runs it (for work handed to a pool)."""

        def call(*args, **kwargs):
            with self.timing(name):
                return fn(*args, **kwargs)

        return call


@dataclass
class Outcome:
    run: ledger.Run
    counts: Counter
    reports: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    include_pii: bool = False
    steps: Steps = field(default_factory=Steps)

    @property
    def exit_code(self) -> int:
        if self.run.status == "aborted":
            return EXIT_ABORTED
        return EXIT_REJECTS if self.run.rejected else EXIT_OK


def import_file(url: str, path: Path, options: Options) -> Outcome:
    """Import one file into the database at ``url``; raises PipelineError (with its exit code)."""
    steps, began = Steps(), time.perf_counter()
    memory.use_jemalloc()
    profile = PROFILES[options.profile]
    as_of = options.as_of or date.today()
    engine, src = _connect_and_open(url, path, options)
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
    layout = report.Layout(src.headers, cmap.report, cmap.positions, options.include_pii)
    pending = report.Pending(options.report_dir or Path("reports") / run.id, report_stem(src.path), layout)
    warnings = list(cmap.warnings)
    try:
        pending.prepare()
        with db.errors(url), engine.connect() as conn, db.import_lock(conn), db.foreign_keys_set_wise(conn):
            _load(conn, src, cmap, validator, run, options, spool, counts, pending, warnings, steps)
        reports = pending.publish(run)
        steps.seconds["total"] = time.perf_counter() - began
        return Outcome(run, counts, reports, warnings, options.include_pii, steps)
    except BaseException as exc:
        pending.discard()
        if pending.committed and not isinstance(exc, PipelineError):
            # Ctrl-C or SIGTERM after the commit: the data is in; say so, not "nothing committed".
            raise pending.unpublished(run, _STOPPED.get(type(exc), type(exc).__name__)) from None
        raise
    finally:
        if options.progress:
            options.progress.close()
        spool.close()
        engine.dispose()


def _connect_and_open(url: str, path: Path, options: Options):
    """The database's engine (its schema checked) and the opened file. The file is opened on a
    thread of its own meanwhile: its hash and decoding check (about 0.1 s a million rows)
    mostly let go of the GIL, while the driver's import and the schema check mostly hold it.
    A database error is raised before a file error, as when they ran one after the other."""
    with ThreadPoolExecutor(1, thread_name_prefix="open") as opener:
        opened = opener.submit(
            open_source, path, encoding=options.encoding, delimiter=options.delimiter, sheet=options.sheet
        )
        engine = db.engine_for(url)
        try:
            with db.errors(url):
                db.ensure_schema(engine)
            return engine, opened.result()
        except BaseException:
            engine.dispose()
            raise


def _load(
    conn,
    src: Source,
    cmap,
    validator: Validator,
    run: ledger.Run,
    options: Options,
    spool: Spool,
    counts: Counter,
    pending: report.Pending,
    warnings: list[str],
    steps: Steps,
) -> None:
    trans = conn.begin()
    draft: _Draft | None = None
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
        loader = load.Loader(conn, run.id, options.channel, run.started_at, options.rebuild_indexes)
        if not options.dry_run:  # a dry run inserts nothing: it never takes the table
            loader.set_indexes_aside(src.estimated_rows)
        with steps.timing("staging"):
            rule_rejected = _stage_all(src, cmap, validator, loader, run, options, spool)
        # One thread talks to the database: it decides the rules and, if the run is to
        # commit, goes straight on to the insert, then the ledger. This one meanwhile
        # assembles the rejected rows as the row rules alone would have them and writes them
        # into the reports: most rejected rows' notes do not wait on the database, and if no
        # verdict falls in the file (the usual case) the reports then only need closing. On
        # two cores the two run side by side; the reports are published after the commit.
        with _database_thread() as database:
            decided = database.submit(
                steps.timed("decision", _decide), loader, run, rule_rejected, options, steps
            )
            inserted = database.submit(_insert, loader, run, steps)
            draft = _Draft(pending.draft(), decided)
            early = _assemble_early(spool, steps.timed("reports", draft.add), steps)
            verdicts = decided.result()
            if run.status == "succeeded":
                with steps.timing("assembly"):
                    _assemble(verdicts, spool, early, counts, run)
                recorded = database.submit(steps.timed("ledger", _record_after), inserted, conn, run, spool)
                with steps.timing("reports"):
                    pending.write(run, counts, spool.frames(), draft.kept())
                recorded.result()
            inserted.result()
        if run.status == "succeeded":
            with steps.timing("commit"):
                trans.commit()
            pending.committed = True
            if loader.set_aside.note:
                warnings.append(loader.set_aside.note)
            return
        trans.rollback()
        with steps.timing("assembly"):
            _assemble(verdicts, spool, early, counts, run)
        run.finished_at = datetime.now(UTC).replace(tzinfo=None)
        with steps.timing("reports"):
            pending.write(run, counts, spool.frames(), draft.kept())
    except BaseException as exc:
        if draft is not None:
            draft.drop()  # its files go with the hidden folder (``Pending.discard``)
        if trans.is_active:
            trans.rollback()
        if not isinstance(exc, AlreadyImported):
            _record_failure(conn, run, exc)
        raise
    with steps.timing("ledger"), conn.begin():
        _record(conn, run, spool)


def _stage_all(
    src: Source,
    cmap,
    validator: Validator,
    loader: load.Loader,
    run: ledger.Run,
    options: Options,
    spool: Spool,
) -> int:
    """Validate and stage every chunk; returns how many rows a row rule rejected.

    Three threads, one step of a chunk each: this one reads and validates chunk n+2 while the
    next prepares chunk n+1 for the database (keys, hashes, typing and encoding) and the last
    writes chunk n, which mostly waits on the server. One chunk is prepared and one written at
    a time, which keeps memory to about four chunks.
    """
    if options.progress:
        options.progress.start(src.estimated_rows)
    rejected = 0
    with (
        ThreadPoolExecutor(1, thread_name_prefix="prepare") as preparer,
        ThreadPoolExecutor(1, thread_name_prefix="stage") as stager,
    ):
        staged: Future | None = None
        for chunk in src.chunks(options.chunk_size):
            prepared, rejected_rows = _check_and_prepare(
                chunk, cmap, validator, options, loader, preparer, spool
            )
            if staged:
                staged.result()
            staged = stager.submit(_write, loader, prepared)
            rejected += rejected_rows
            run.rows_read += len(chunk)
            if options.progress:
                options.progress.advance(len(chunk))
            # Let this chunk go before the next is read: the threads hold what they still need.
            del chunk, prepared
        if staged:
            staged.result()
    if options.progress:
        options.progress.finish(run.rows_read)
    return rejected


def _check_and_prepare(
    chunk: pd.DataFrame, cmap, validator: Validator, options: Options, loader: load.Loader, preparer, spool
) -> tuple[Future, int]:
    """Check a chunk, hand it to be prepared for the database and spool it; returns the
    preparation and how many rows a row rule rejected. Its frames are this function's own,
    so they are freed on return, not when the next chunk has been read."""
    frame, failures = _check(chunk, cmap, validator, options)
    rejected_rows = pd.Index(failures["row"].unique())
    bad_customer = pd.Index(failures.loc[failures["code"].str.startswith("CUSTOMER_ID_"), "row"].unique())
    prepared = preparer.submit(loader.prepare, frame, rejected_rows, bad_customer)
    spool.keep(chunk, failures)
    return prepared, len(rejected_rows)


def _write(loader: load.Loader, prepared: Future) -> None:
    """Stage a chunk once it is prepared (its preparation's error, if any, surfaces here)."""
    loader.write(prepared.result())


def _check(
    chunk: pd.DataFrame, cmap, validator: Validator, options: Options
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One chunk's typed columns and its row-rule failures (row, code, details)."""
    frame = normalise(chunk, cmap, validator.profile, options.date_order)
    return frame, with_details(validator.failures(frame), validator.details)


@contextmanager
def _database_thread() -> Iterator[ThreadPoolExecutor]:
    """The one thread that talks to the database after staging. If this thread fails first,
    what has not started there (the insert, the ledger) never does; what has, finishes
    before the caller rolls back (the connection is not to be used by two threads)."""
    database = ThreadPoolExecutor(1, thread_name_prefix="database")
    try:
        yield database
    except BaseException:
        database.shutdown(cancel_futures=True)
        raise
    database.shutdown()


def _decide(
    loader: load.Loader, run: ledger.Run, rule_rejected: int, options: Options, steps: Steps
) -> decide.Verdicts:
    """Every database rule's verdicts for the whole file, and what they make of the run."""
    loader.decide()
    steps.plan = str(loader.plan)
    verdicts = loader.verdicts()
    run.rejected = rule_rejected + verdicts.rejected_candidates
    run.accepted = run.rows_read - run.rejected
    run.status = _status(run, options)
    return verdicts


class _Draft:
    """The reports, written from the rejected rows as the row rules alone make them while the
    database decides. If no verdict falls in the file they are the reports (``kept``);
    once the decision is known to have any, they are dropped, and written again after."""

    def __init__(self, writers: report.RejectsWriters, decided: Future):
        self.writers: report.RejectsWriters | None = writers
        self.decided = decided

    def add(self, frame: pd.DataFrame) -> None:
        if self.kept() is not None:
            self.writers.add(frame)

    def kept(self) -> report.RejectsWriters | None:
        """The reports so far, if every rejected row is in them as it stands (else dropped)."""
        if self.writers is not None and self._spoilt():
            self.drop()
        return self.writers

    def drop(self) -> None:
        if self.writers is not None:
            self.writers.abandon()
            self.writers = None

    def _spoilt(self) -> bool:
        """The decision is in, and it changes some rows' notes (or failed)."""
        if not self.decided.done():
            return False
        return self.decided.exception() is not None or len(self.decided.result().frame) > 0


def _assemble_early(spool: Spool, report: Callable[[pd.DataFrame], None], steps: Steps) -> list[Counter]:
    """Each chunk's rejected rows as its row-rule failures alone make them, spooled and given
    to ``report`` (as ``Spool.frames`` would give them); returns each chunk's code counts. A
    chunk the database's verdicts leave alone is then done."""
    counts = []
    for chunk in spool.chunks():
        with steps.timing("assembly"):
            notes = _notes(chunk, chunk.failures)
            batch = spool.keep_early(notes)
            counts.append(Counter(_codes(notes)))
        if batch.num_rows:
            report(batch.to_pandas())
    return counts


def _assemble(
    verdicts: decide.Verdicts, spool: Spool, early: list[Counter], counts: Counter, run: ledger.Run
) -> None:
    """Each chunk's rejected rows, spooled: the early ones as they are, or assembled again
    with the database's verdicts where any fall in the chunk (their codes join the row's)."""
    rejected = 0
    for i, ((first, last), batch) in enumerate(zip(spool.ranges, spool.early(), strict=True)):
        found = verdicts.failures(first, last)
        if found.empty:
            spool.add_batch(batch)
            counts.update(early[i])
            rejected += batch.num_rows
            continue
        chunk = spool.chunk(i)
        notes = _notes(chunk, pd.concat([chunk.failures, found], ignore_index=True))
        spool.add(notes)
        counts.update(_codes(notes))
        rejected += len(notes)
    spool.seal()
    if rejected != run.rejected:  # the counts before the insert and the rows disagree: a bug
        raise RuntimeError(f"assembled {rejected} rejected rows, counted {run.rejected}")


def _notes(chunk: Chunk, failures: pd.DataFrame) -> pd.DataFrame:
    """A chunk's rejected rows (row, codes, messages, notifications, cells) from its failures."""
    notes = assemble(failures)
    return notes.reset_index().assign(cells=chunk.cells(notes.index) if len(notes) else [])


def _codes(notes: pd.DataFrame) -> dict[str, int]:
    """How many rejected rows carry each code."""
    if notes.empty:
        return {}
    return notes["codes"].str.split(";").explode().value_counts().to_dict()


def _insert(loader: load.Loader, run: ledger.Run, steps: Steps) -> None:
    """Insert the accepted rows, exactly as many as the verdicts left, if the run is to commit
    (after the decision, on its thread: ``run.status`` is then known)."""
    if run.status != "succeeded":
        return
    with steps.timing("insert"):
        inserted = loader.insert(run.accepted)
    if inserted != run.accepted:  # the verdicts and the insert disagree: a bug, say so
        raise RuntimeError(f"inserted {inserted} rows, expected {run.accepted}")
    run.finished_at = datetime.now(UTC).replace(tzinfo=None)


def _record_after(inserted: Future, conn, run: ledger.Run, spool: Spool) -> None:
    """The run's ledger row and rejected rows, once the insert has succeeded."""
    inserted.result()
    _record(conn, run, spool)


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
