"""``runs revert``: take back one import, in one transaction.

The dependents the run inserted are deleted (``dependents.import_run_id``), the fields it
updated get their old values back from ``dependent_changes`` (``updated_at`` included), and
the run is marked ``reverted``. A run whose dependents a later run changed is refused: that
run's changes would be lost or made wrong, so it must be reverted first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.database import db, dialects, ledger
from pipeline.errors import PipelineError


class NotRevertible(PipelineError):
    """The run cannot be reverted as it stands (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Reverted:
    run: ledger.Run
    removed: int  # dependents the run inserted
    restored: int  # dependents the run updated, given their old values back
    dry_run: bool


# Dependents of the run (inserted or updated by it) that a run committed after it changed.
LATER_SQL = """
SELECT r.id FROM dependent_changes c
JOIN import_runs r ON r.id = c.run_id
WHERE r.status = 'succeeded' AND r.id <> :run_id AND r.finished_at > :finished
  AND (c.dependent_id IN (SELECT d.id FROM dependents d WHERE d.import_run_id = :run_id)
       OR c.dependent_id IN (SELECT o.dependent_id FROM dependent_changes o WHERE o.run_id = :run_id))
ORDER BY r.finished_at
"""
INSERTED_SQL = "SELECT COUNT(*) FROM dependents WHERE import_run_id = :run_id"
UPDATED_SQL = "SELECT COUNT(DISTINCT dependent_id) FROM dependent_changes WHERE run_id = :run_id"
DELETE_SQL = "DELETE FROM dependents WHERE import_run_id = :run_id"
MARK_SQL = "UPDATE import_runs SET status = 'reverted', reverted_at = :now WHERE id = :run_id"


def revert_run(url: str, run_id: str, dry_run: bool = False, lock_timeout: float | None = None) -> Reverted:
    """Revert the run ``run_id`` (or a unique prefix) in the database at ``url``, holding the
    import lock so no import runs meanwhile; ``dry_run``: count, change nothing."""
    engine = db.engine_for(url)
    try:
        with db.errors(url):
            db.ensure_schema(engine, create=False)
            with engine.connect() as conn, db.import_lock(conn, lock_timeout), conn.begin():
                return revert(conn, ledger.resolve(conn, run_id), dry_run)
    finally:
        engine.dispose()


def revert(conn: Connection, run: ledger.Run, dry_run: bool = False) -> Reverted:
    """Revert ``run`` inside the caller's transaction (which holds the import lock)."""
    _check(conn, run)
    params = {"run_id": run.id}
    removed = conn.execute(sa.text(INSERTED_SQL), params).scalar_one()
    restored = conn.execute(sa.text(UPDATED_SQL), params).scalar_one()
    if not dry_run:
        dialect = dialects.of(conn)
        for field in ("updated_at", *_fields(conn, run.id)):
            conn.execute(sa.text(restore_sql(dialect, field)), {**params, "field": field})
        deleted = conn.execute(sa.text(DELETE_SQL), params).rowcount
        if deleted != removed:  # the lock keeps every other writer out: a bug, say so
            raise RuntimeError(f"deleted {deleted} dependents, counted {removed}")
        conn.execute(sa.text(MARK_SQL), {**params, "now": datetime.now(UTC).replace(tzinfo=None)})
    return Reverted(run, removed, restored, dry_run)


def _check(conn: Connection, run: ledger.Run) -> None:
    if run.status == "reverted":
        raise NotRevertible(f"run {run.id} was reverted already, on {run.reverted_at:%Y-%m-%d %H:%M} UTC")
    if run.status != "succeeded":
        what = "a dry run" if run.status == "dry run" else run.status
        raise NotRevertible(
            f"run {run.id} is {what}: only a succeeded import can be reverted (nothing of it is stored)"
        )
    later = conn.execute(sa.text(LATER_SQL), {"run_id": run.id, "finished": run.finished_at}).first()
    if later:
        raise NotRevertible(
            f"run {later[0]} changed dependents of run {run.id} later: revert run {later[0]} first"
        )


def _fields(conn: Connection, run_id: str) -> list[str]:
    t = db.dependent_changes
    q = sa.select(t.c.field).where(t.c.run_id == run_id, t.c.field != "updated_at").distinct()
    return sorted(conn.execute(q).scalars())


def restore_sql(dialect: dialects.Dialect, field: str) -> str:
    """One field's old values back, for the dependents the run changed (a correlated lookup by
    the changes' primary key; ``field`` is a column name of ``dependents``)."""
    old = dialect.value_of("c.old_value", db.dependents.c[field].type)
    return f"""
UPDATE dependents SET {field} = (
  SELECT {old} FROM dependent_changes c
  WHERE c.run_id = :run_id AND c.field = :field AND c.dependent_id = dependents.id
)
WHERE id IN (SELECT o.dependent_id FROM dependent_changes o WHERE o.run_id = :run_id AND o.field = :field)
"""
