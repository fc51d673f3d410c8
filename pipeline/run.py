"""One import, start to finish: read -> check -> stage -> decide -> insert -> record -> publish.

The whole file is one database transaction: its accepted dependents and its run record
commit together or not at all. Chunk by chunk, rows are checked and staged in the database,
and their raw cells and row-rule failures spooled to private temporary files, so memory stays
flat however long the file. Once the whole file is staged, one thread has the database decide
its rules, insert and record the run, while this one assembles the rejected rows and writes
them into the reports. The reports are published after the commit.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Connection

from pipeline import memory, stops
from pipeline.database import db, decide, faults, ledger, load
from pipeline.errors import AlreadyImported, DatabaseError, PipelineError, UsageError
from pipeline.opening import open_import, with_mapping
from pipeline.options import Options
from pipeline.rejects import assemble, publish, report
from pipeline.rejects.changes import ChangesFile
from pipeline.rows.check import check_chunk
from pipeline.rows.spool import Spool
from pipeline.rows.validate import Validator
from pipeline.timings import Steps

REPORTS = Path("reports")  # where each run's report folder goes, unless told


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
        return self.run.exit_code


def import_file(url: str, path: Path, options: Options) -> Outcome:
    """Import one file into the database at ``url``; raises PipelineError (with its exit code).
    A deadlock or serialisation failure with another session runs the whole import again, a
    few times, before it is given up as a database error."""
    for attempt in range(1, faults.CONFLICT_ATTEMPTS + 1):
        try:
            return Import(url, path, options).execute()
        except DatabaseError as exc:
            if not (exc.fault and exc.fault.retried):
                raise
            if attempt == faults.CONFLICT_ATTEMPTS:
                raise DatabaseError(f"{exc}; gave up after {attempt} attempts", exc.fault) from None
            time.sleep(faults.CONFLICT_PAUSE * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


class Import:
    """One file's import: its state is these attributes, its steps the methods below, in order:
    ``stage`` (read, check and stage every chunk), ``settle`` (decide, insert, assemble the
    rejected rows, write the reports, record the run), ``finish`` (commit or roll back), then
    ``publish`` (move the reports into place). Only this object's own thread changes the run."""

    def __init__(self, url: str, path: Path, options: Options):
        if options.changes and options.on_existing != "update":
            raise UsageError("--changes lists the fields an update changes: it needs --on-existing update")
        options, self.mapping = with_mapping(options)
        self.url, self.options = url, options
        self.steps, self.began = Steps(), time.perf_counter()
        memory.use_jemalloc()
        opened = open_import(url, path, options, self.mapping)
        self.engine, self.src, self.lookups = opened.engine, opened.src, opened.lookups
        self.profile, self.cmap = opened.profile, opened.cmap
        self.run = self._new_run()
        self.validator = Validator(self.profile, self.run.as_of, options.date_order)
        self.spool, self.counts = Spool(), Counter()
        layout = report.Layout(
            self.src.headers, self.cmap.report, self.cmap.positions, options.include_pii, self.cmap.origin
        )
        out_dir = (options.report_dir or REPORTS) / self.run.id
        self.pending = publish.Pending(out_dir, report.stem_of(self.src.path), layout)
        self.warnings = list(self.cmap.warnings)
        self.loader: load.Loader | None = None
        self.changes = ChangesFile(options.changes, options.include_pii) if options.changes else None
        self.rule_rejected = 0  # rows a row rule rejected, counted while staging
        self.origin_run: str | None = None  # a corrected report's: the run its rows first came from

    def _new_run(self) -> ledger.Run:
        return ledger.Run(
            id=str(uuid.uuid4()),
            file_name=self.src.path.name,
            sha256=self.src.sha256,
            size_bytes=self.src.size,
            profile=self.profile.name,
            channel=self.options.channel,
            as_of=self.options.as_of or date.today(),
            started_at=_now(),
            columns=self.src.headers,
            lookups={name: found.version for name, found in self.lookups.items()},
        )

    def execute(self) -> Outcome:
        try:
            self.pending.prepare()
            with (
                db.errors(self.url),
                self.engine.connect() as conn,
                db.import_lock(conn, self.options.lock_timeout),
                db.foreign_keys_set_wise(conn),
            ):
                self._in_transaction(conn)
            reports = self.pending.publish(self.run)
            if self.changes and (published := self.changes.publish()):
                reports["changes"] = published
            self.steps.seconds["total"] = time.perf_counter() - self.began
            return Outcome(
                self.run, self.counts, reports, self.warnings, self.options.include_pii, self.steps
            )
        except BaseException as exc:
            self.pending.discard()
            if self.changes:
                self.changes.discard()
            if self.pending.committed and not isinstance(exc, PipelineError):
                # After the commit (stops are held then): the data is in; say so, not "nothing committed".
                raise self.pending.unpublished(self.run, type(exc).__name__) from None
            raise
        finally:
            if self.options.progress:
                self.options.progress.close()
            self.spool.close()
            self.engine.dispose()

    def _in_transaction(self, conn: Connection) -> None:
        """Every step that needs the database, in the import's one transaction; a run that
        does not commit is recorded after its rollback, so the ledger tells what happened."""
        trans = conn.begin()
        try:
            self._start(conn)
            self.stage()
            self.settle(conn)
        except BaseException as exc:
            if trans.is_active:
                with suppress(Exception):  # a lost connection's transaction ended with it
                    trans.rollback()
            if not isinstance(exc, AlreadyImported):
                ledger.record_failure(conn, self.run, db.explained(self.url, exc))
                if isinstance(exc, PipelineError):
                    exc.run_id = self.run.id
            raise
        self.finish(conn, trans)

    def _start(self, conn: Connection) -> None:
        prior = ledger.succeeded_with(conn, self.run.sha256)
        if prior and not self.options.force:
            raise AlreadyImported(
                f"{self.src.path.name} was already imported by run {prior.id} on "
                f"{prior.started_at:%Y-%m-%d %H:%M} UTC; pass --force to import it again"
            )
        if self.cmap.report:
            self.run.source_run_id = _source_run(conn, self.src.path)
            self.origin_run = ledger.origin_of(conn, self.run.source_run_id)
        ledger.start(conn, self.run)
        o = self.options
        self.loader = load.Loader(
            conn, self.run.id, o.channel, self.run.started_at, o.rebuild_indexes, o.on_existing
        )
        if not o.dry_run:  # a dry run inserts nothing: it never takes the table
            self.loader.set_indexes_aside(self.src.estimated_rows)

    def stage(self) -> None:
        """Read, check and stage every chunk. Three threads, one step of a chunk each: this one
        reads and checks chunk n+2 while the next prepares chunk n+1 for the database and the
        last writes chunk n; so memory holds about four chunks."""
        progress = self.options.progress
        if progress:
            progress.start(self.src.estimated_rows)
        with (
            self.steps.timing("staging"),
            ThreadPoolExecutor(1, thread_name_prefix="prepare") as preparer,
            ThreadPoolExecutor(1, thread_name_prefix="stage") as stager,
        ):
            staged: Future | None = None
            for chunk in self.src.chunks(self.options.chunk_size):
                prepared = self._check_and_prepare(chunk, preparer)
                if staged:
                    staged.result()
                staged = stager.submit(_write, self.loader, prepared)
                self.run.rows_read += len(chunk)
                if progress:
                    progress.advance(len(chunk))
                del chunk, prepared  # let this chunk go before the next is read
            if staged:
                staged.result()
        if progress:
            progress.finish(self.run.rows_read)

    def _check_and_prepare(self, chunk: pd.DataFrame, preparer: ThreadPoolExecutor) -> Future:
        """Check a chunk, hand it to be prepared for the database and spool it. Its frames are
        this method's own, so they are freed on return, not when the next chunk is read."""
        frame, failures = check_chunk(
            chunk, self.cmap, self.validator, self.options.date_order, self.src.headers, self.origin_run
        )
        rejected = pd.Index(failures["row"].unique())
        # Rows the database cannot look at: no customer id to look up, or cells out of place.
        unstaged = failures["code"].str.startswith("CUSTOMER_ID_") | failures["code"].eq("ROW_CELL_COUNT")
        bad_customer = pd.Index(failures.loc[unstaged, "row"].unique())
        prepared = preparer.submit(self.loader.prepare, frame, rejected, bad_customer)
        self.spool.keep(chunk, failures)
        self.rule_rejected += len(rejected)
        return prepared

    def settle(self, conn: Connection) -> None:
        """The database decides, inserts and records on its own thread while this one writes
        the rejected rows (as the row rules alone make them) into the reports: if no verdict
        falls in the file, the usual case, the reports then only need closing."""
        with _database_thread() as database:
            decided = database.submit(self.steps.timed("decision", self._decide))
            inserted = database.submit(self._insert, decided)
            draft = assemble.Draft(self.pending.draft(), decided)
            try:
                self._assemble_and_write(database, decided, inserted, draft, conn)
            except BaseException:
                draft.drop()  # its files go with the hidden folder (``Pending.discard``)
                raise

    def _assemble_and_write(
        self, database: ThreadPoolExecutor, decided: Future, inserted: Future, draft: assemble.Draft, conn
    ) -> None:
        """The rejected rows, assembled and written into the reports beside the database's work;
        a run that commits is recorded on the database's thread once its rows are in."""
        early = assemble.early(self.spool, self.steps.timed("reports", draft.add), self.steps)
        decision = decided.result()
        self._apply(decision)
        with self.steps.timing("assembly"):
            assemble.with_verdicts(decision.verdicts, self.spool, early, self.counts, self.run.rejected)
        if decision.commits:
            recorded = database.submit(self.steps.timed("ledger", self._record_after), inserted, conn)
        with self.steps.timing("reports"):
            self.pending.write(self.run, self.counts, self.spool.frames(), draft.kept())
        if decision.commits:
            self.run = recorded.result()
        inserted.result()

    def _decide(self) -> decide.Decision:
        """Every database rule's verdicts for the whole file, and what they make of the run
        (on the database's thread: it reads the run, never changes it)."""
        self.loader.decide()
        self.steps.plan = str(self.loader.plan)
        o = self.options
        decision = decide.Decision.of(
            self.loader.verdicts(),
            self.rule_rejected,
            self.run.rows_read,
            o.max_reject_rate,
            o.dry_run,
            o.on_existing,
        )
        if decision.updates:
            with self.steps.timing("update"):
                decision = replace(decision, updated=self.loader.update(apply=decision.commits))
        if self.changes and decision.status != "aborted":
            self.changes.write(self.loader.conn, self.run.id)
        return decision

    def _apply(self, decision: decide.Decision) -> None:
        self.run.rejected, self.run.accepted = decision.rejected, decision.accepted
        self.run.status, self.run.message = decision.status, decision.message
        for name, count in decision.results.items():
            setattr(self.run, name, count)

    def _insert(self, decided: Future) -> None:
        """Insert the accepted rows, exactly as many as the verdicts left, if the run is to
        commit (on the database's thread, straight after the decision)."""
        decision: decide.Decision = decided.result()
        if not decision.commits:
            return
        with self.steps.timing("insert"):
            inserted = self.loader.insert(decision.inserted)
        if inserted != decision.inserted:  # the verdicts and the insert disagree: a bug, say so
            raise RuntimeError(f"inserted {inserted} rows, expected {decision.inserted}")

    def _record_after(self, inserted: Future, conn: Connection) -> ledger.Run:
        """The run's ledger row and rejected rows, once the insert has succeeded; returns the
        run as recorded (finished now)."""
        inserted.result()
        return self._record(conn, replace(self.run, finished_at=_now()))

    def _record(self, conn: Connection, run: ledger.Run) -> ledger.Run:
        ledger.record(conn, run)
        for frame in self.spool.frames():
            ledger.add_rejects(conn, run.id, frame)
        return run

    def finish(self, conn: Connection, trans) -> None:
        """Commit a succeeded run; roll back any other, then record it on its own."""
        if self.run.status == "succeeded":
            stops.hold()  # from the commit on, a stop cannot undo anything: it is only noted
            with self.steps.timing("commit"), _outcome_unknown_if_cut_off(self.url, self.run.id):
                trans.commit()
            self.pending.committed = True
            if self.loader.set_aside.note:
                self.warnings.append(self.loader.set_aside.note)
            return
        trans.rollback()
        self.run.finished_at = _now()
        with self.steps.timing("ledger"), conn.begin():
            self._record(conn, self.run)


def _write(loader: load.Loader, prepared: Future) -> None:
    """Stage a chunk once it is prepared (its preparation's error, if any, surfaces here)."""
    loader.write(prepared.result())


@contextmanager
def _outcome_unknown_if_cut_off(url: str, run_id: str) -> Iterator[None]:
    """A connection lost while the commit is on its way leaves the client not knowing
    whether the server committed: say so, and how to find out, rather than guess."""
    try:
        with db.errors(url):
            yield
    except DatabaseError as exc:
        if exc.fault is faults.Fault.DISCONNECTED:
            said = f"database {db.masked(url)}: {faults.outcome_unknown(run_id)}"
            raise DatabaseError(said, exc.fault) from None
        raise


@contextmanager
def _database_thread():
    """The one thread that talks to the database after staging. If it fails first, what has
    not started there (the insert, the ledger) never does; what has, finishes before the
    caller rolls back (a connection is not to be used by two threads)."""
    database = ThreadPoolExecutor(1, thread_name_prefix="database")
    try:
        yield database
    except BaseException:
        database.shutdown(cancel_futures=True)
        raise
    database.shutdown()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _source_run(conn: Connection, path: Path) -> str | None:
    """A rejects report sits in ``reports/<run id>/``: name that run when the ledger knows it."""
    found = ledger.get(conn, path.parent.name)
    return found.id if found else None
