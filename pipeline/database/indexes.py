"""A large insert without per-row index and foreign-key work (``--rebuild-indexes``).

Inserting rows one at a time costs an entry in every index and a foreign-key check for
every row; building an index afterwards from the whole table, and validating a foreign key
with one join, costs much less for a load that is large and at least doubles the table.
Which keys a database can set aside, and when, is its dialect's (``dialects``): PostgreSQL
drops its foreign keys, natural-key index and primary key inside the import's transaction
before staging (DDL is transactional there, so a rollback brings them back); SQLite drops only
its natural-key index, just before the insert; MariaDB keeps them all (its ``ALTER TABLE``
would commit the open transaction). Either way every key is recreated exactly as it was,
from the database's own definition, and checks every row, before the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

MODES = ("auto", "always", "never")
MIN_ROWS = 100_000  # below this the per-row work is under a second: never lock the table for it
NATURAL_KEY = "ux_dependents_natural_key"


class Keys(Enum):
    """Where the keys of ``dependents`` stand during one import."""

    KEPT = "row by row"  # in place: every row checked as it goes in
    BUSY = "busy"  # wanted aside, but the table was in use: row by row
    SET_ASIDE = "set aside"  # dropped until ``SetAside.restore``
    REBUILT = "rebuilt"  # recreated, having checked every row


@dataclass
class SetAside:
    """What was set aside, and how to put it back."""

    state: Keys = Keys.KEPT
    restore_sql: list[str] = field(default_factory=list)
    prelude: list[str] = field(default_factory=list)  # session settings before any rebuild
    customer_key: str | None = None  # the foreign key to ``customers``, while it is set aside

    @property
    def unindexed(self) -> bool:
        """Until ``restore``: ``dependents`` has keys set aside."""
        return self.state is Keys.SET_ASIDE

    def restore(self, conn: Connection) -> None:
        """Recreate what was dropped, exactly as it was; each rebuild checks every row."""
        if not self.unindexed:
            return
        for sql in (*self.prelude, *self.restore_sql):
            conn.exec_driver_sql(sql)
        self.state = Keys.REBUILT

    def customers_known(self, conn: Connection) -> bool:
        """Put the foreign key to ``customers`` back now, before the rules are decided, if every
        row copied in has its customer; returns whether it did. Its one join then proves every
        candidate's customer, so the rules look up only the rows a row rule rejected. If a
        customer is missing the attempt rolls back, the rules find every such row, and
        ``restore`` adds the key once they are taken out. Adding it takes ``customers`` in
        SHARE ROW EXCLUSIVE mode until the commit, as the rebuild would."""
        from pipeline.database import dialects

        if not self.unindexed or self.customer_key is None:
            return False
        for sql in self.prelude:
            conn.exec_driver_sql(sql)
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(self.customer_key)
        except sa.exc.IntegrityError as exc:
            if not dialects.of(conn).foreign_key_violated(exc):
                raise
            return False
        self.restore_sql.remove(self.customer_key)
        self.customer_key = None
        return True

    @property
    def note(self) -> str | None:
        if self.state is not Keys.BUSY:
            return None
        return (
            "dependents was in use by another session, so its natural-key index and foreign key "
            "were kept and every row checked as it went in (slower, same result)"
        )


def worth_it(rows: int, stored: int) -> bool:
    """Rebuild when the insert is large and at least doubles the table: a rebuild costs per row
    of the whole table, per-row work per row inserted, and a small nightly load never takes
    the table's exclusive lock."""
    return rows >= MIN_ROWS and stored <= rows


def wanted(conn: Connection, rows: int, mode: str) -> bool:
    """Whether ``mode`` asks to set the keys aside for a load of about ``rows`` rows."""
    if mode not in MODES:
        raise ValueError(f"rebuild mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode != "auto":
        return mode == "always"
    return rows >= MIN_ROWS and worth_it(rows, _stored(conn, rows))  # no count for a small load


def _stored(conn: Connection, rows: int) -> int:
    """How many dependents are stored, counted no further than ``rows + 1``."""
    sql = "SELECT COUNT(*) FROM (SELECT 1 FROM dependents LIMIT :n) s"
    return conn.execute(sa.text(sql), {"n": rows + 1}).scalar_one()
