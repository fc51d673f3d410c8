"""A large insert without per-row index and foreign-key work (``--rebuild-indexes``).

Inserting rows into ``dependents`` one at a time costs PostgreSQL an entry in the natural-key
index and a foreign-key check against ``customers`` for every row: for 950,325 rows, 13.4 s
of ``INSERT`` of which 2.9 s is the heap (measured in psql). Building the index afterwards
from the whole table and validating the foreign key with one join took 1.7 s. The primary
key's index costs the same way, even though the ids ascend: setting it aside too took that
insert, rebuild included, from 8.6-9.6 s to 6.8-8.9 s (three runs each, alternating); the
key itself is rebuilt in 0.5-0.7 s. So for a load that is large and at least doubles the
table, the foreign keys, the index and the primary key are dropped inside the import's
transaction before its first chunk is staged (judged by the file's estimated rows), the
rows are copied in as they are staged (``pipeline.database.load``), and all are recreated exactly as
they were (their definitions are read from the catalogue) before the commit. A primary key
that another table's foreign key refers to stays in place.

The foreign key to ``customers`` goes back first, before the rules are decided
(``SetAside.customers_known``): its validation is one join of every row with its customer,
which proves all the candidates' customers at once, so the rules need look up only the rows a
row rule rejected. A file with an unknown customer among its valid rows pays for a failed
attempt (a million rows with one such row at the end: the decision 1.83 -> 2.82 s).

PostgreSQL's DDL is transactional: an error, a kill or a failed rebuild (a duplicate key or
a vanished customer, which the checks before the insert make unlikely) rolls the drop back
with the rows, and the rebuild enforces the same rules as the per-row checks would have.
The price is an ``ACCESS EXCLUSIVE`` lock on ``dependents`` from the drop, before staging, to
the commit: readers of the table wait for the whole import (a dry run never takes it). So
``auto`` takes the lock only if it is free at once (``NOWAIT``) and otherwise checks row by
row, as ``never`` always does.

SQLite sets aside only the natural-key index (its primary key and foreign key belong to the
table), and only for the insert itself, after the rules are decided (they look up stored
twins by it): the rows then go in in the order they were staged, the index is built once
from the whole table, and no lock is needed. ``BEGIN IMMEDIATE`` already holds the one writer's lock and
readers see the table as it was, index included, until the commit. Its foreign key is
checked set-wise on every SQLite import (``pipeline.database.db.foreign_keys_set_wise``). Together, a
million rows' insert: 6.54-6.86 -> 4.46-4.76 s (three alternating pairs). Since each chunk
is staged in customer order (``pipeline.database.load``) keeping the index costs little more: the
insert took 3.14-3.84 s with it kept, 3.08-3.22 s set aside (three alternating pairs). MariaDB always
inserts row by row (its ``ALTER TABLE`` would commit the open transaction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.database import db

MODES = ("auto", "always", "never")
MIN_ROWS = 100_000  # below this the per-row work is under a second: never lock the table for it
NATURAL_KEY = "ux_dependents_natural_key"

# What is set aside: the foreign keys of ``dependents``, its natural-key index and its primary
# key, as (drop, create) statements written by the catalogue itself, names and options
# included, in the order they are dropped. The primary key only when no other table's foreign
# key needs it: dropping it would mean dropping theirs. Order 0 marks the foreign key from
# ``customer_id`` to ``customers (id)``, which ``SetAside.customers_known`` may put back early.
DEFINITIONS_SQL = """
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid)),
       CASE WHEN c.contype = 'p' THEN 3
            WHEN c.confrelid = to_regclass('customers')
             AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute
                                   WHERE attrelid = c.conrelid AND attname = 'customer_id')]
             AND c.confkey = ARRAY[(SELECT attnum FROM pg_attribute
                                    WHERE attrelid = c.confrelid AND attname = 'id')] THEN 0
            ELSE 1 END
FROM pg_constraint c WHERE c.conrelid = to_regclass('dependents')
  AND (c.contype = 'f' OR c.contype = 'p' AND NOT EXISTS (
    SELECT 1 FROM pg_constraint r WHERE r.confrelid = c.conrelid AND r.contype = 'f'))
UNION ALL
SELECT 'DROP INDEX ' || i.oid::regclass::text, pg_get_indexdef(i.oid), 2
FROM pg_class i WHERE i.oid = to_regclass(:index)
ORDER BY 3
"""


@dataclass
class SetAside:
    """What ``set_aside`` decided: ``set aside`` (until ``restore`` makes it ``rebuilt``,
    checked after the insert), ``row by row``, or ``busy`` (wanted, but the table was in use,
    so row by row)."""

    how: str = "row by row"
    restore_sql: list[str] = field(default_factory=list)
    customer_key: str | None = None  # the foreign key to ``customers``, while it is set aside

    @property
    def unindexed(self) -> bool:
        """Until ``restore``: ``dependents`` has no key, index or foreign key to keep in order."""
        return self.how == "set aside"

    def restore(self, conn: Connection) -> None:
        """Recreate what ``set_aside`` dropped, exactly as it was; each rebuild checks every row."""
        if not self.unindexed:
            return
        if db.dialect(conn) == "postgresql":
            _more_sort_memory(conn)
        for create in self.restore_sql:
            conn.exec_driver_sql(create)
        self.how = "rebuilt"

    def customers_known(self, conn: Connection) -> bool:
        """Put the foreign key to ``customers`` back now, before the rules are decided, if every
        row copied in has its customer; returns whether it did. Then the rules need not look
        up a candidate's customer: the key's own check (one join, which ``restore`` would run
        anyway) has proved them all, and from here on it guards them as any foreign key does.
        If a row's customer is missing, the attempt is rolled back (it stops at that row), the
        rules find every such row, and ``restore`` adds the key once they are taken out.

        Adding the key takes ``customers`` in SHARE ROW EXCLUSIVE mode until the commit, as the
        rebuild does: others' writes to customers wait from the decision on, not only from the
        rebuild (a million rows: about 4 s longer)."""
        if not self.unindexed or self.customer_key is None:
            return False
        _more_sort_memory(conn)
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(self.customer_key)
        except sa.exc.IntegrityError as exc:
            if not db.foreign_key_violated(exc):
                raise
            return False
        self.restore_sql.remove(self.customer_key)
        self.customer_key = None
        return True

    @property
    def note(self) -> str | None:
        if self.how != "busy":
            return None
        return (
            "dependents was in use by another session, so its natural-key index and foreign key "
            "were kept and every row checked as it went in (slower, same result)"
        )


def worth_it(rows: int, stored: int) -> bool:
    """Rebuild when the insert is large and at least doubles the table. Per-row work cost about
    11 µs per inserted row and the primary key's entry about 1-2 µs more; rebuilding all three
    about 2.4 µs per row of the *whole* table, so a rebuild already pays once a load adds a
    fifth of the table; asking for doubling keeps the table's exclusive lock for loads that
    are mostly new data, and a small nightly load never takes it."""
    return rows >= MIN_ROWS and stored <= rows


def set_aside(conn: Connection, rows: int, mode: str = "auto") -> SetAside:
    """Before a load of about ``rows`` rows into ``dependents``, inside the import's transaction:
    drop its foreign keys, natural-key index and primary key (SQLite: the index) if the load is
    worth it and the table is free (``SetAside.unindexed``), else leave them be.
    ``SetAside.restore`` recreates what was dropped; if the import fails first, its rollback
    does."""
    if mode not in MODES:
        raise ValueError(f"rebuild mode must be one of {', '.join(MODES)}, not {mode!r}")
    plan = SetAside()
    kind = db.dialect(conn)
    if kind not in ("postgresql", "sqlite") or not _wanted(conn, rows, mode):
        return plan
    if kind == "sqlite":
        return _set_aside_sqlite(conn, plan)
    if not _lock(conn, wait=mode == "always"):
        plan.how = "busy"
        return plan
    for drop, create, order in conn.execute(sa.text(DEFINITIONS_SQL), {"index": NATURAL_KEY}).all():
        conn.exec_driver_sql(drop)
        plan.restore_sql.insert(0, create)  # keys and index first, then the foreign keys
        if order == 0:
            plan.customer_key = create
    plan.how = "set aside"
    return plan


def _set_aside_sqlite(conn: Connection, plan: SetAside) -> SetAside:
    """SQLite: drop the natural-key index, to be created again from its own definition."""
    sql = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :index"
    create = conn.execute(sa.text(sql), {"index": NATURAL_KEY}).scalar()
    if create:
        conn.exec_driver_sql(f"DROP INDEX {NATURAL_KEY}")
        plan.restore_sql.append(create)
    plan.how = "set aside"
    return plan


def _wanted(conn: Connection, rows: int, mode: str) -> bool:
    if mode != "auto":
        return mode == "always"
    return rows >= MIN_ROWS and worth_it(rows, _stored(conn, rows))  # no count for a small load


def _stored(conn: Connection, rows: int) -> int:
    """How many dependents are stored, counted no further than ``rows + 1``."""
    sql = "SELECT COUNT(*) FROM (SELECT 1 FROM dependents LIMIT :n) s"
    return conn.execute(sa.text(sql), {"n": rows + 1}).scalar_one()


def _lock(conn: Connection, wait: bool) -> bool:
    """Take ``dependents`` for this transaction alone; without ``wait``, only if no one holds it."""
    sql = "LOCK TABLE dependents IN ACCESS EXCLUSIVE MODE" + ("" if wait else " NOWAIT")
    try:
        with conn.begin_nested():  # a refused lock rolls back to here, not the whole import
            conn.exec_driver_sql(sql)
    except sa.exc.OperationalError as exc:
        if db.lock_refused(exc):
            return False
        raise
    return True


def _more_sort_memory(conn: Connection) -> None:
    """A million keys sort in memory (PostgreSQL's default of 64 MB spills to disk); never less
    than the server already allows. For the rest of this transaction only."""
    conn.exec_driver_sql(
        "SELECT set_config('maintenance_work_mem', '256MB', true) "
        "WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < 256 * 1024 * 1024"
    )
