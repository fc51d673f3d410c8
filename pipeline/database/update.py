"""``--on-existing update``: the matched rows' changes to their stored dependents, set-wise.

The decision leaves each row whose natural key is stored already in ``dependents_matched``.
Here, one join gathers those whose non-empty cells differ from what is stored into
``dependents_diff`` (old and new values side by side); one statement per field records each
changed field in ``dependent_changes``; one ``UPDATE`` joined to the diff then writes them.
A matched row that changes nothing is ``unchanged`` and writes nothing.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.database import db, stage
from pipeline.database.dialects import Dialect

FIELDS = stage.UPDATABLE


def diff_sql(dialect: Dialect) -> str:
    """The matched rows with at least one non-empty cell that differs from the stored value."""
    old = ", ".join(f"d.{f}" for f in FIELDS)
    new = ", ".join(f"s.{f}" for f in FIELDS)
    names = ", ".join([*(f"old_{f}" for f in FIELDS), *(f"new_{f}" for f in FIELDS)])
    changed = "\n   OR ".join(_changed(dialect, f"d.{f}", f"s.{f}") for f in FIELDS)
    return f"""
INSERT INTO dependents_diff (dependent_id, source_row, old_updated_at, {names})
SELECT m.dependent_id, m.source_row, d.updated_at, {old}, {new}
FROM dependents_matched m
JOIN dependents_stage s ON s.source_row = m.source_row
JOIN dependents d ON d.id = m.dependent_id
WHERE {changed}
"""


def _changed(dialect: Dialect, old: str, new: str) -> str:
    """An empty cell (NULL) leaves the stored value: only a present, different value changes it."""
    return f"({new} IS NOT NULL AND {dialect.differs(old, new)})"


def change_sql(dialect: Dialect, field: str) -> str:
    """One field's changes, as text, into ``dependent_changes``."""
    kind = db.dependents.c[field].type
    old = dialect.text_of(f"old_{field}", kind)
    new = dialect.text_of(f"new_{field}", kind)
    return f"""
INSERT INTO dependent_changes (run_id, dependent_id, field, source_row, old_value, new_value, changed_at)
SELECT :run_id, dependent_id, '{field}', source_row, {old}, {new}, :now
FROM dependents_diff
WHERE {_changed(dialect, f"old_{field}", f"new_{field}")}
"""


def touched_sql(dialect: Dialect) -> str:
    """Each updated dependent's ``updated_at``, old and new, so a revert restores it too. Every
    updated row took the same new value: its text (``:new``) is read once, not joined per row."""
    old = dialect.text_of("old_updated_at", db.dependents.c.updated_at.type)
    return f"""
INSERT INTO dependent_changes (run_id, dependent_id, field, source_row, old_value, new_value, changed_at)
SELECT :run_id, dependent_id, 'updated_at', source_row, {old}, :new, :now
FROM dependents_diff
"""


def touched_text_sql(dialect: Dialect) -> str:
    """The new ``updated_at`` of the updated dependents, as ``dependent_changes`` spells it."""
    new = dialect.text_of("updated_at", db.dependents.c.updated_at.type)
    return f"SELECT {new} FROM dependents WHERE id = (SELECT dependent_id FROM dependents_diff LIMIT 1)"


def changes(conn: Connection, dialect: Dialect, run_id: str, now: datetime, apply: bool) -> int:
    """Find and record the matched rows' changes; write them into ``dependents`` if ``apply``
    (a dry run records them, to be read back, and rolls back). Returns the dependents changed."""
    params = {"run_id": run_id, "now": now}
    changed = conn.exec_driver_sql(diff_sql(dialect)).rowcount
    if not changed:
        return 0
    dialect.analyze(conn, stage.diff)
    for field in FIELDS:
        conn.execute(sa.text(change_sql(dialect, field)), params)
    if apply:
        sets = [(f, f"COALESCE(x.new_{f}, d.{f})") for f in FIELDS] + [("updated_at", ":now")]
        conn.execute(sa.text(dialect.update_joined(sets)), params)
        new = conn.execute(sa.text(touched_text_sql(dialect))).scalar_one()
        conn.execute(sa.text(touched_sql(dialect)), {**params, "new": new})
    return changed
