"""The fastest append each database allows, for frames already checked.

``write`` is ``prepare`` (the client's work: typing and encoding, column-wise through Arrow,
no connection) then ``send`` (the database's), so an import can prepare one chunk while it
sends the last. How each database takes the rows is its dialect's (``dialects``): binary
``COPY`` on PostgreSQL, multi-row ``INSERT``s on SQLite, ``LOAD DATA LOCAL INFILE`` on
MariaDB/MySQL where allowed.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.database import dialects
from pipeline.database.dialects import Dialect, Prepared


def write(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    """Append ``frame`` (columns named as the table's) by the dialect's fastest path."""
    dialect = dialects.of(conn)
    send(conn, prepare(dialect, table, frame))


def prepare(dialect: Dialect, table: sa.Table, frame: pd.DataFrame) -> Prepared:
    """The client's half of ``write``: every value typed (and encoded) column-wise."""
    if frame.empty:
        return Prepared(table, list(frame.columns), None, 0)
    return dialect.prepare(table, frame)


def send(conn: Connection, prepared: Prepared) -> None:
    """The database's half of ``write``: one ``COPY``, ``LOAD DATA`` or ``executemany``."""
    if prepared.rows:
        dialects.of(conn).send(conn, prepared)
