"""The database rules, decided once per file in SQL, then one set-wise insert.

Each chunk's rows that passed the row rules (and the keys of those that did not, whose
customer is still checked) go into a temporary staging table with one bulk write.
When the whole file is staged, ``decide`` answers every database rule for every row, one
statement per rule: a join finds unknown customers and dependents already stored, grouping
finds natural keys the file repeats, and a window in file order counts dependents only for
the customers the file would take past the self-service limit. The groupings see only the
rows whose hashes ``pipeline.database.sieve`` found suspect while they were staged, and do not run at
all when there are none. Only the rows that fail are kept, in ``dependents_verdicts``;
``verdicts`` reads them back once, before the insert.

How the accepted rows reach ``dependents`` depends on its indexes (``pipeline.database.indexes``):
- Row by row (small loads, MariaDB, a table in use): ``insert`` moves every other
  staged row into ``dependents`` with one ``INSERT ... SELECT``, in customer order with ids
  that ascend in that order, so every index is written front to back. Nothing touches
  ``dependents`` before that, so its statistics stay true while the checks run.
- SQLite, large: the same ``INSERT ... SELECT`` in the order staged, the stage read front to
  back, with the natural-key index dropped just before it and built again after it. SQLite's
  foreign key is checked set-wise after every insert (``db.foreign_keys_set_wise``).
- Keys set aside (a large PostgreSQL load): before the first chunk, the keys, index and
  foreign key are dropped, and each chunk's candidate rows are copied straight into
  ``dependents`` while the next chunk is read, each id counting its row's place in the file;
  the stage keeps only what the rules read. The foreign key to ``customers`` goes back
  before the rules, proving every candidate's customer at once (``indexes.SetAside.
  customers_known``); ``insert`` then takes back out the few rows a database rule refused
  and rebuilds the keys. A million rows' write to ``dependents`` thus
  runs beside reading and checking instead of after the decision, and the stage is not read
  again. The rules tell this run's rows from stored ones by ``import_run_id``. Into an empty
  table (``Loader.narrow``) the stage takes only the rows a row rule rejected: the sieve keeps
  the candidates' staged columns on disk and stages only the groupings' suspects once the
  file is read (a million rows, three alternating pairs: 5.03 -> 4.79 s, the machine's busy
  core-seconds 8.48 -> 7.96, staging 2.24-2.30 -> 2.05-2.12 s, the decision 0.81-0.93 ->
  0.65-0.78 s).

SQLite has no hash join: it looks each staged row's customer up in the customers' index, and
each inserted row's place up in the indexes of ``dependents``. So it stages each chunk in
customer order, and those lookups come in order: a million rows' unknown-customer check took
0.42-0.45 s instead of 1.33 s, the decision 1.24-1.28 s instead of 1.99-2.00 s, the insert
3.10-3.28 s instead of 3.76-4.06 s (two alternating pairs).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.database import bulk, db, indexes, sieve
from pipeline.errors import DatabaseError
from schemas import parse

SELF_SERVICE_LIMIT = 4
NAME_KEY_LENGTH = db.NAME_KEY.length  # characters of the natural key's folded names
CHANNELS = ("self-service", "contact-centre")

# What a staged row carries into ``dependents``; the rest (id, times, run) is the run's own.
_OWN = ("id", "created_at", "updated_at", "import_run_id", "source_row", "name_key")
DATA = [c.name for c in db.dependents.columns if c.name not in _OWN]
_KEY_DATA = ("customer_id", "date_of_birth")  # what the rules read of a staged row's data

_md = sa.MetaData()
stage = sa.Table(
    "dependents_stage",
    _md,
    sa.Column("source_row", sa.Integer, nullable=False),
    sa.Column("candidate", sa.Integer, nullable=False),  # 0: failed a row rule, checked for its customer
    sa.Column("customer_hash", sa.Integer, nullable=False),  # ``pipeline.database.sieve``
    sa.Column("key_hash", sa.Integer, nullable=False),
    sa.Column("name_key", db.NAME_KEY),
    *(sa.Column(c.name, c.type) for c in db.dependents.columns if c.name in DATA),
    prefixes=["TEMPORARY"],
)
suspect_keys = sa.Table(
    "dependents_suspect_keys",  # key hashes the file holds more than once (``pipeline.database.sieve``)
    _md,
    sa.Column("key_hash", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
suspect_customers = sa.Table(
    "dependents_suspect_customers",  # customer hashes it holds more often than the limit, or stored
    _md,
    sa.Column("customer_hash", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
held = sa.Table(
    "dependents_held",  # dependents already stored, per customer of the file (self-service only)
    _md,
    sa.Column("customer_id", db.UUID, primary_key=True),
    sa.Column("existing", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
refused = sa.Table(
    "dependents_refused",  # staged rows whose customer is unknown, or that are stored already
    _md,
    sa.Column("source_row", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("verdict", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
repeated = sa.Table(
    "dependents_repeated",  # natural keys that more than one live row of the file carries
    _md,
    sa.Column("customer_id", db.UUID, nullable=False),
    sa.Column("date_of_birth", sa.Date, nullable=False),
    sa.Column("name_key", db.NAME_KEY, nullable=False),
    sa.Column("first_row", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("customer_id", "date_of_birth", "name_key"),
    prefixes=["TEMPORARY"],
)
repeats = sa.Table(
    "dependents_repeats",  # the later rows of a repeated key, and the row they repeat
    _md,
    sa.Column("source_row", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("first_row", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
crowded = sa.Table(
    "dependents_crowded",  # customers the file would take past the self-service limit
    _md,
    sa.Column("customer_id", db.UUID, primary_key=True),
    sa.Column("existing", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
over = sa.Table(
    "dependents_over",  # the rows past the limit, in file order
    _md,
    sa.Column("source_row", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("existing", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
verdicts = sa.Table(
    "dependents_verdicts",  # the staged rows a database rule turned away, and why
    _md,
    sa.Column("source_row", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("verdict", sa.Integer, nullable=False),
    sa.Column("ref_row", sa.Integer),  # DUPLICATE_IN_FILE: the row it repeats
    sa.Column("existing", sa.Integer),  # DEPENDENT_LIMIT_REACHED: dependents already stored
    prefixes=["TEMPORARY"],
)
accepted_order = sa.Table(
    "dependents_order",  # SQLite: the accepted rows' staged rowids; its own rowid is their seq
    _md,
    sa.Column("stage_rowid", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
WORK_TABLES = (
    *(stage, suspect_keys, suspect_customers),
    *(held, refused, repeated, repeats, crowded, over, verdicts),
)

VERDICTS = {
    1: "CUSTOMER_NOT_FOUND",
    2: "DEPENDENT_ALREADY_EXISTS",
    3: "DUPLICATE_IN_FILE",
    4: "DEPENDENT_LIMIT_REACHED",
}

# The database rules, one statement each, in the order they apply. Joins and grouping do the
# work over the whole file; the one window (file order within a customer) only sees the rows
# of customers past the limit. A "live" row passed every row rule, its customer exists and it
# is not stored yet. Every temporary table is named once per statement (MariaDB cannot open a
# temporary table twice in one statement). Within one natural key, live-ness is all or
# nothing (the customer and the stored twin are the key's), so keys are grouped over every
# candidate row and a refused key's rows are left out afterwards, in ``repeats``. The two
# groupings see only the rows ``pipeline.database.sieve`` found suspect: a key hash the file holds
# twice, a customer hash it holds more often than the limit, or a customer with dependents
# stored (``held_suspects``).
DECISION_SQL = {
    "refused": """
INSERT INTO dependents_refused (source_row, verdict)
SELECT s.source_row, CASE WHEN c.id IS NULL THEN 1 ELSE 2 END
FROM dependents_stage s
LEFT JOIN customers c ON c.id = s.customer_id
LEFT JOIN dependents d
       ON s.candidate = 1
      AND d.customer_id = s.customer_id
      AND d.date_of_birth = s.date_of_birth
      AND d.name_key = s.name_key
      AND {stored}
WHERE c.id IS NULL OR d.id IS NOT NULL
""",
    "repeated": """
INSERT INTO dependents_repeated (customer_id, date_of_birth, name_key, first_row)
SELECT customer_id, date_of_birth, name_key, MIN(source_row)
FROM dependents_stage
WHERE candidate = 1 AND name_key IS NOT NULL
  AND key_hash IN (SELECT key_hash FROM dependents_suspect_keys)
GROUP BY customer_id, date_of_birth, name_key
HAVING COUNT(*) > 1
""",
    "repeats": """
INSERT INTO dependents_repeats (source_row, first_row)
SELECT s.source_row, k.first_row
FROM dependents_stage s
JOIN dependents_repeated k
  ON k.customer_id = s.customer_id AND k.date_of_birth = s.date_of_birth AND k.name_key = s.name_key
LEFT JOIN dependents_refused f ON f.source_row = s.source_row
WHERE s.candidate = 1 AND s.source_row <> k.first_row AND f.source_row IS NULL
""",
}
# With no dependent stored there is no twin to find: only unknown customers are refused.
# Joining the empty table anyway: a million rows' step 0.72-0.89 s on PostgreSQL, without it 0.58-0.73 s.
UNKNOWN_CUSTOMERS_SQL = """
INSERT INTO dependents_refused (source_row, verdict)
SELECT s.source_row, 1
FROM dependents_stage s
LEFT JOIN customers c ON c.id = s.customer_id
WHERE c.id IS NULL
"""
# With the foreign key to ``customers`` back before the rules (``indexes.SetAside.
# customers_known``) every candidate's customer is proven: only the rows a row rule rejected
# are looked up (a million rows' step 0.99 -> 0.37 s in the server's log, this machine in a
# slow phase; the key's own join is the one the rebuild ran anyway), and stored twins are
# found by a join of the candidates alone.
UNKNOWN_AMONG_REJECTED_SQL = UNKNOWN_CUSTOMERS_SQL + "  AND s.candidate = 0\n"
TWINS_SQL = """
INSERT INTO dependents_refused (source_row, verdict)
SELECT s.source_row, 2
FROM dependents_stage s
JOIN dependents d
  ON d.customer_id = s.customer_id
 AND d.date_of_birth = s.date_of_birth
 AND d.name_key = s.name_key
 AND {stored}
WHERE s.candidate = 1
"""
# A narrow stage (``Loader.narrow``) holds the rejected rows and the groupings' suspects: the
# other candidates are only in ``dependents``, where their customers are looked up if the
# early foreign key failed.
UNKNOWN_COPIED_SQL = """
INSERT INTO dependents_refused (source_row, verdict)
SELECT d.source_row, 1
FROM dependents d
LEFT JOIN customers c ON c.id = d.customer_id
WHERE d.import_run_id = :run_id AND c.id IS NULL
"""
# ``{stored}``: a dependent stored before this run. A load that sets the keys aside copies its
# rows into ``dependents`` while they are staged (``Loader.prepare``), so the table holds them
# too by the time the rules are decided; every other load's rows are not there yet.
_STORED = "COALESCE(d.import_run_id, '') <> :run_id"
# ``{big}``: MariaDB/MySQL group through an internal temporary table that spills to disk at
# 16 MB; ``SQL_BIG_RESULT`` makes them sort instead. Grouping a million staged rows by
# customer: 11.5 -> 3.3 s. (By natural key it was slower: its sort keys are long.)
_BIG = {"mysql": "SQL_BIG_RESULT"}

# Self-service only: the first live row of each key counts towards its customer's limit.
LIMIT_SQL = {
    "held": """
INSERT INTO dependents_held (customer_id, existing)
SELECT d.customer_id, COUNT(*) FROM dependents d
WHERE d.customer_id IN (SELECT s.customer_id FROM dependents_stage s WHERE s.candidate = 1)
  AND {stored}
GROUP BY d.customer_id
""",
    "held_suspects": """
INSERT INTO dependents_suspect_customers (customer_hash)
SELECT DISTINCT s.customer_hash FROM dependents_stage s
JOIN dependents_held h ON h.customer_id = s.customer_id
WHERE s.candidate = 1
""",
    "crowded": """
INSERT INTO dependents_crowded (customer_id, existing)
SELECT {big} s.customer_id, MAX(COALESCE(h.existing, 0))
FROM dependents_stage s
LEFT JOIN dependents_refused f ON f.source_row = s.source_row
LEFT JOIN dependents_repeats r ON r.source_row = s.source_row
LEFT JOIN dependents_held h ON h.customer_id = s.customer_id
WHERE s.candidate = 1 AND f.source_row IS NULL AND r.source_row IS NULL
  AND s.customer_hash IN (SELECT customer_hash FROM dependents_suspect_customers)
GROUP BY s.customer_id
HAVING MAX(COALESCE(h.existing, 0)) + COUNT(*) > :limit
""",
    "over": """
INSERT INTO dependents_over (source_row, existing)
SELECT source_row, existing FROM (
  SELECT s.source_row, k.existing,
    ROW_NUMBER() OVER (PARTITION BY s.customer_id ORDER BY s.source_row) AS n
  FROM dependents_stage s
  JOIN dependents_crowded k ON k.customer_id = s.customer_id
  LEFT JOIN dependents_refused f ON f.source_row = s.source_row
  LEFT JOIN dependents_repeats r ON r.source_row = s.source_row
  WHERE s.candidate = 1 AND f.source_row IS NULL AND r.source_row IS NULL
) counted
WHERE existing + n > :limit
""",
}
# Steps whose table the later steps join to every staged row: analyzed once written.
_JOINED_LATER = {
    "refused": refused,
    "refused_copied": refused,
    "twins": refused,
    "held": held,
    "held_suspects": suspect_customers,
}
# Steps that join only this file's own tables, run with hash joins (see ``hash_joins``).
_STAGED_ONLY = {"repeated", "repeats", "held_suspects", "crowded", "over"}

# A repeat of a row past the limit is past the limit too; otherwise it names the row it repeats.
VERDICT_SQL = (
    """
INSERT INTO dependents_verdicts (source_row, verdict) SELECT source_row, verdict FROM dependents_refused
""",
    """
INSERT INTO dependents_verdicts (source_row, verdict, existing) SELECT source_row, 4, existing
FROM dependents_over
""",
    """
INSERT INTO dependents_verdicts (source_row, verdict, ref_row, existing)
SELECT r.source_row,
  CASE WHEN o.source_row IS NULL THEN 3 ELSE 4 END,
  CASE WHEN o.source_row IS NULL THEN r.first_row END,
  o.existing
FROM dependents_repeats r LEFT JOIN dependents_over o ON o.source_row = r.first_row
""",
)

# A verdict's row missing from a narrow stage is a candidate (``Loader.narrow``).
VERDICTS_SQL = """
SELECT v.source_row, v.verdict, COALESCE(v.ref_row, -1), COALESCE(v.existing, -1), COALESCE(s.candidate, 1)
FROM dependents_verdicts v LEFT JOIN dependents_stage s ON s.source_row = v.source_row
ORDER BY v.source_row
"""

# The id of the n-th accepted row in customer order: the run's 20-character prefix, then n
# as 12 hex digits (see ``id_prefix``).
_ID = {
    "postgresql": "CAST(:prefix || lpad(to_hex(seq), 12, '0') AS uuid)",
    "sqlite": "(:prefix || printf('%012x', seq))",
    "mysql": "CONCAT(:prefix, LPAD(LOWER(HEX(seq)), 12, '0'))",
}
_OWN_VALUES = ":now, :now, :run_id, source_row, name_key"
# The staged rows the insert takes: those that passed every row rule and no verdict names.
_ACCEPTED = """FROM dependents_stage s
LEFT JOIN dependents_verdicts v ON v.source_row = s.source_row
WHERE s.candidate = 1 AND v.source_row IS NULL"""
INSERT_SQL = """
INSERT INTO dependents (id, {data}, created_at, updated_at, import_run_id, source_row, name_key)
SELECT {id}, {data}, {own} FROM (
  SELECT s.*, ROW_NUMBER() OVER (ORDER BY s.customer_id, s.source_row) AS seq
  {accepted}
) accepted
ORDER BY customer_id, source_row
""".replace("{accepted}", _ACCEPTED)
# SQLite sorts the rows it inserts whole, through its temporary file: sorting the accepted
# rows' keys first and then reading each staged row by its rowid, in that order, took a
# million rows' insert from 12.3 to 9.4 s (the sort alone from 7.4 s to about 1 s).
SQLITE_ORDER_SQL = """
INSERT INTO dependents_order (stage_rowid)
SELECT s.rowid {accepted}
ORDER BY s.customer_id, s.source_row
""".replace("{accepted}", _ACCEPTED)
# With the keys set aside the candidates were copied in while staging: the rows a database
# rule turned away are taken back out (PostgreSQL only, and only when there are any).
REFUSED_SQL = """
DELETE FROM dependents d USING dependents_verdicts v
WHERE d.import_run_id = :run_id AND d.source_row = v.source_row
"""
# SQLite with the natural-key index set aside (``pipeline.database.indexes``): the accepted rows in the
# order staged (each chunk's in customer order), each id counting its row's place in the
# stage, so the stage is read front to back and the table and its primary key are only
# appended to.
SQLITE_STAGE_ORDER_SQL = """
INSERT INTO dependents (id, {data}, created_at, updated_at, import_run_id, source_row, name_key)
SELECT {id}, {data}, {own} FROM (
  SELECT s.*, s.rowid AS seq {accepted}
  ORDER BY s.rowid
) accepted
""".replace("{accepted}", _ACCEPTED)
# SQLite's foreign key, checked set-wise after the insert (``db.foreign_keys_set_wise``): the
# dependents without their customer. A load that rebuilt the natural-key index checks the
# whole table through it, as PostgreSQL's rebuilt foreign key does: the index leads with the
# customer, so the lookups come in order (0.27 s a million rows, in the import's transaction).
# Otherwise only the rows the insert added: their rowids follow the largest before it (the
# write lock keeps anyone else's out), and they went in in customer order (0.55 s a million;
# through the stage instead, 2.4 s; SQLite's own check of each row cost 2.5 s).
ORPHANS_SQL = {
    "rebuilt": """
SELECT COUNT(*) FROM dependents d LEFT JOIN customers c ON c.id = d.customer_id WHERE c.id IS NULL
""",
    "row by row": """
SELECT COUNT(*) FROM dependents d
WHERE d.rowid > :before AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = d.customer_id)
""",
}
SQLITE_INSERT_SQL = """
INSERT INTO dependents (id, {data}, created_at, updated_at, import_run_id, source_row, name_key)
SELECT {id}, {data}, {own} FROM (
  SELECT s.*, o.rowid AS seq FROM dependents_order o JOIN dependents_stage s ON s.rowid = o.stage_rowid
) accepted
ORDER BY seq
"""


def name_key(frame: pd.DataFrame) -> pd.Series:
    """Casefolded trimmed ``first<US>last`` where both names and the birth date are present.

    Casefolding can lengthen a name (``ß`` -> ``ss``, up to three characters for one), so two
    255-character CareCycle names may fold to more than the column's 511. Such a key is
    stored as ``#`` and the SHA-256 of the folded pair instead: a pair always holds the
    separator and a digest never does, so the two forms cannot meet. Only those rare rows
    are hashed one by one."""
    if not {"first_name", "last_name", "date_of_birth__value"} <= set(frame):
        return pd.Series(pd.NA, index=frame.index, dtype="str")
    key = parse.casefold(frame["first_name"]) + "\x1f" + parse.casefold(frame["last_name"])
    long = key.str.len().gt(NAME_KEY_LENGTH).fillna(False).astype(bool)
    if long.any():
        key[long] = [_digest(k) for k in key[long]]
    return key.where(frame["date_of_birth__value"].notna())


def _stage_columns(out: dict, customer: pd.Series, born: pd.Series | None) -> pa.Table:
    """A chunk's staged key columns as Arrow (``Sieve.keep_rows``): customers as 16 bytes;
    ``born`` is ``None`` when the file has no birth dates."""
    if born is None:
        dates = pa.nulls(len(customer), pa.date32())
    else:
        dates = pa.array(born, pa.timestamp("s"), from_pandas=True).cast(pa.date32())
    return pa.table(
        {
            "source_row": pa.array(out["source_row"].to_numpy(np.int32)),
            "customer_hash": pa.array(out["customer_hash"].to_numpy()),
            "key_hash": pa.array(out["key_hash"].to_numpy()),
            "name_key": pa.array(out["name_key"], pa.string(), from_pandas=True),
            "customer_id": pa.array(customer),
            "date_of_birth": dates,
        }
    )


def _digest(key: str) -> str:
    return "#" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def id_prefix(when: datetime, entropy: bytes) -> str:
    """The first 24 of a run's ids' 36 characters: a version 7 UUID layout.

    48 bits of the run's start in milliseconds, the version ``7``, 12 random bits, the variant,
    12 more random bits; the last 48 bits count the run's rows (the accepted rows in customer
    order, or each row's place in the file when the keys are rebuilt afterwards). Ids of one
    run ascend in the order they are inserted, so the primary key's index is appended to, not
    split at random.
    """
    ms = f"{int(when.replace(tzinfo=UTC).timestamp() * 1000):012x}"  # ``when`` is naive UTC
    r = entropy.hex()
    variant = "89ab"[entropy[0] & 3]
    return f"{ms[:8]}-{ms[8:]}-7{r[1:4]}-{variant}{r[4:7]}-"


_COUNT_SHIFTS = np.arange(40, -1, -8, dtype=np.int64)  # 6 bytes, most significant first


def ids(prefix: str, seq: pd.Series) -> pd.Series:
    """Each row's id as its 16 bytes (``bulk.uuid_series``' form): the run's 24-character
    ``prefix`` (``id_prefix``), then ``seq`` as 6 bytes, so its text is what the insert's SQL
    spells (``_ID``): the prefix and ``seq`` as 12 hex digits."""
    raw = np.empty((len(seq), 16), np.uint8)
    raw[:, :10] = np.frombuffer(bytes.fromhex(prefix.replace("-", "")), np.uint8)
    raw[:, 10:] = (seq.to_numpy(dtype=np.int64)[:, None] >> _COUNT_SHIFTS) & 0xFF
    packed = pa.Array.from_buffers(pa.binary(16), len(seq), [None, pa.py_buffer(raw.tobytes())])
    return pd.Series(pd.arrays.ArrowExtensionArray(packed), index=seq.index)


@dataclass
class Loader:
    """Stages, decides and inserts the chunks of one import, inside the caller's transaction."""

    conn: Connection
    run_id: str
    channel: str
    now: datetime
    rebuild_indexes: str = "auto"  # see ``pipeline.database.indexes``
    set_aside: indexes.SetAside = field(default_factory=indexes.SetAside)  # see ``set_indexes_aside``

    def __post_init__(self) -> None:
        self.sieve = sieve.Sieve()
        for table in WORK_TABLES:
            db.fresh_temp_table(self.conn, table)
        self.kind = db.dialect(self.conn)
        self.stored = self._any_stored()  # before this run's rows can be in the table
        self.copied = 0  # rows copied straight into ``dependents`` while staging
        self.prefix = id_prefix(self.now, os.urandom(4))
        if self.kind == "postgresql":
            # A file's sorts (decisions, customer order) fit in memory instead of spilling to
            # disk; compiling these one-off queries costs more than it saves.
            self.conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
            self.conn.exec_driver_sql("SET LOCAL jit = off")
            # The work tables' statistics from 3,000 sampled rows, not 30,000: a million staged
            # rows' ANALYZE 134-166 -> 18 ms (psql, two runs each); a file under 3,000 rows is
            # read whole either way, and the joins among the file's own tables are hash joins.
            self.conn.exec_driver_sql("SET LOCAL default_statistics_target = 10")

    def set_indexes_aside(self, rows: int) -> None:
        """Before staging a load of about ``rows`` rows into PostgreSQL: set the keys, index and
        foreign key of ``dependents`` aside when that pays (``pipeline.database.indexes``). Then each
        chunk's candidate rows go straight into ``dependents`` (``prepare``, ``write``) while
        the next chunk is read, and ``insert`` only takes back the few a database rule
        refuses and rebuilds: no second pass over a staged copy of every row. (SQLite's one
        connection would do the same work either way: it sets its index aside at ``insert``.)"""
        if self.kind == "postgresql":
            self.set_aside = indexes.set_aside(self.conn, rows, self.rebuild_indexes)

    @property
    def narrow(self) -> bool:
        """Whether the stage holds only the rows a row rule rejected (and, once the file is
        staged, the groupings' suspects). With the keys set aside the candidates are copied
        into ``dependents`` as they are staged; into an empty table no rule needs them all
        again (no stored twin to find, no stored dependent to count): only the suspects of the
        two groupings, whose staged columns the sieve keeps on disk meanwhile
        (``Sieve.keep_rows``) and ``decide`` stages. The server then writes each candidate once,
        not twice."""
        return self.set_aside.unindexed and not self.stored

    def write(self, prepared: list[bulk.Prepared]) -> None:
        """A prepared chunk's bulk writes, in order: the database's half of staging it."""
        for part in prepared:
            bulk.send(self.conn, part)

    def prepare(
        self, frame: pd.DataFrame, rejected_rows: pd.Index, bad_customer: pd.Index
    ) -> list[bulk.Prepared]:
        """A chunk's rows made ready to stage, with no database work, so the import can
        prepare one chunk while the last is written. ``rejected_rows`` failed a row rule: only
        their customer is checked, and they take no place in the file order. Rows whose
        customer id is not a UUID (``bad_customer``) are not staged at all."""
        unkeyed = bad_customer.intersection(frame.index)
        keyed = frame.drop(index=unkeyed) if len(unkeyed) else frame  # a copy of every column
        candidate = ~keyed.index.isin(rejected_rows)
        key = name_key(keyed).where(candidate)
        customer = bulk.uuid_series(keyed["customer_id"])  # once, for the hashes and both tables
        customer_hash, key_hash = sieve.hashes(customer, keyed.get("date_of_birth__value"))
        self.sieve.keep(customer_hash[candidate], key_hash[key.notna().to_numpy()])
        # Series, not arrays: the text stays in Arrow all the way to the bulk write.
        source_row = pd.Series(keyed.index.to_numpy(dtype="int64"), index=keyed.index)
        out = {
            "source_row": source_row,
            "candidate": pd.Series(candidate.astype("int64"), index=keyed.index),
            "customer_hash": pd.Series(customer_hash, index=keyed.index),
            "key_hash": pd.Series(key_hash, index=keyed.index),
            "name_key": key,
        }
        data, prepared = {}, []
        for name in DATA:
            source = f"{name}__value" if f"{name}__value" in keyed else name
            if source in keyed:  # else not in the file: the column stays NULL
                data[name] = keyed[source]
        if self.kind == "postgresql":  # its binary COPY takes the bytes; the others the text
            data["customer_id"] = customer
        if self.set_aside.unindexed:
            # The candidates go straight into ``dependents``; the stage keeps what the rules ask.
            stored = pd.DataFrame({"id": ids(self.prefix, source_row), **data, **self._own(source_row, key)})
            self.copied += int(candidate.sum())
            prepared.append(bulk.prepare(self.kind, db.dependents, stored[candidate]))
            data = {k: v for k, v in data.items() if k in _KEY_DATA}
            if self.narrow:  # what the stage would hold of them, kept for the suspects among them
                self.sieve.keep_rows(
                    _stage_columns(out, customer, keyed.get("date_of_birth__value")), candidate
                )
        for name, values in data.items():
            # A rejected row's cells may not fit the columns (too long, out of range): keys only.
            out[name] = values if name == "customer_id" else values.where(candidate)
        staged = pd.DataFrame(out)
        if self.narrow:
            staged = staged[~candidate]
        if self.kind == "sqlite":  # in customer order: SQLite looks customers up one by one
            staged = staged.iloc[pc.sort_indices(pa.array(customer)).to_numpy()]
        return [*prepared, bulk.prepare(self.kind, stage, staged)]

    def _own(self, source_row: pd.Series, key: pd.Series) -> dict[str, pd.Series | object]:
        """The columns of ``dependents`` that are the run's, not the file's (but for the id)."""
        return {
            "created_at": self.now,
            "updated_at": self.now,
            "import_run_id": self.run_id,
            "source_row": source_row,
            "name_key": key,
        }

    def decide(self) -> None:
        """Every database rule for the whole file, at once; failures go to ``dependents_verdicts``."""
        self._analyze(stage)
        steps = dict(DECISION_SQL)
        if self.set_aside.customers_known(self.conn):
            twins = {"twins": TWINS_SQL} if self.stored else {}
            steps = {"refused": UNKNOWN_AMONG_REJECTED_SQL, **twins} | {
                name: sql for name, sql in DECISION_SQL.items() if name != "refused"
            }
        elif not self.stored:
            steps["refused"] = UNKNOWN_CUSTOMERS_SQL
            if self.narrow:  # the candidates' customers are looked up where they are
                steps = {"refused": steps.pop("refused"), "refused_copied": UNKNOWN_COPIED_SQL, **steps}
        if self.channel == "self-service":
            steps |= LIMIT_SQL
            if not self.stored:  # no stored dependent to count: dependents_held stays empty
                del steps["held"], steps["held_suspects"]
        with closing(self.sieve):
            keys = self.sieve.repeated_keys()
            crowded = self.sieve.crowded_customers(SELF_SERVICE_LIMIT) if "crowded" in steps else keys[:0]
            suspects = self.sieve.suspect_rows(keys, crowded) if self.narrow else None
        # A grouping with no suspect to see finds nothing, but still reads every staged row
        # (about 0.2 s a million on PostgreSQL): the file repeats no key, crowds no customer.
        if len(keys):
            bulk.write(self.conn, suspect_keys, pd.DataFrame({"key_hash": keys}))
        else:
            del steps["repeated"], steps["repeats"]
        if len(crowded):
            bulk.write(self.conn, suspect_customers, pd.DataFrame({"customer_hash": crowded}))
        elif "crowded" in steps and not self.stored:  # nor can a stored dependent make one
            del steps["crowded"], steps["over"]
        if suspects is not None and suspects.num_rows:
            self._stage_suspects(suspects)
        for name, sql in steps.items():
            sql = sql.replace("{big}", _BIG.get(self.kind, "")).replace("{stored}", _STORED)
            with hash_joins(self.conn) if name in _STAGED_ONLY else nullcontext():
                self.conn.execute(sa.text(sql), {"limit": SELF_SERVICE_LIMIT, "run_id": self.run_id})
            if name in _JOINED_LATER:
                self._analyze(_JOINED_LATER[name])
        for sql in VERDICT_SQL:
            self.conn.exec_driver_sql(sql)

    def _stage_suspects(self, rows: pa.Table) -> None:
        """A narrow stage: the candidates the groupings will read (a suspect key or customer
        hash: ``Sieve.suspect_rows``), staged now as they would have been with the others."""
        frame = rows.to_pandas(types_mapper=pd.ArrowDtype).assign(candidate=1)
        bulk.write(self.conn, stage, frame)
        self._analyze(stage)

    def verdicts(self, size: int = 50_000) -> Verdicts:
        """Every row a database rule turned away, fetched once, before the insert needs the
        connection; one row per rejected row, so memory follows the rejects, not the file."""
        q = sa.text(VERDICTS_SQL)
        parts = [
            np.array(part, dtype="int64").reshape(-1, 5)
            for part in self.conn.execute(q, execution_options={"yield_per": size}).partitions(size)
        ]
        found = np.concatenate(parts) if parts else np.empty((0, 5), dtype="int64")
        return Verdicts(pd.DataFrame(found, columns=["row", "verdict", "ref_row", "existing", "candidate"]))

    def insert(self, rows: int) -> int:
        """Put every staged row no rule turned away (``rows``, by the verdicts) into
        ``dependents``; returns how many. With the keys set aside the rows are there already:
        only those a database rule refused are taken out, and the keys, index and foreign key
        rebuilt (checking every row). Otherwise one ``INSERT ... SELECT`` moves them from the
        stage in customer order, checked row by row."""
        if self.set_aside.unindexed:
            refused = self.copied - rows
            taken = (
                self.conn.execute(sa.text(REFUSED_SQL), {"run_id": self.run_id}).rowcount if refused else 0
            )
            if taken != refused:  # the verdicts and the copied rows disagree: a bug, say so
                raise RuntimeError(f"took back {taken} refused rows, expected {refused}")
            self.set_aside.restore(self.conn)
            return self.copied - taken
        if self.kind == "sqlite":
            return self._insert_sqlite(rows)
        return self._insert_from_stage(INSERT_SQL)

    def _insert_from_stage(self, template: str) -> int:
        params = {"prefix": self.prefix, "now": self.now, "run_id": self.run_id}
        sql = template.format(data=", ".join(DATA), id=_ID[self.kind], own=_OWN_VALUES)
        return self.conn.execute(sa.text(sql), params).rowcount

    def _insert_sqlite(self, rows: int) -> int:
        """SQLite: with the natural-key index set aside when that pays (decided now, with the
        rules already answered), the rows in the order staged and the index built again; else
        in customer order, every index written front to back. Then its foreign key, set-wise."""
        self.set_aside = indexes.set_aside(self.conn, rows, self.rebuild_indexes)
        if self.set_aside.unindexed:
            inserted = self._insert_from_stage(SQLITE_STAGE_ORDER_SQL)
            self.set_aside.restore(self.conn)
            orphans = self.conn.exec_driver_sql(ORPHANS_SQL["rebuilt"]).scalar_one()
        else:
            before = self.conn.exec_driver_sql("SELECT COALESCE(MAX(rowid), 0) FROM dependents").scalar_one()
            db.fresh_temp_table(self.conn, accepted_order)
            self.conn.exec_driver_sql(SQLITE_ORDER_SQL)  # rowids 1, 2, ... in that order
            inserted = self._insert_from_stage(SQLITE_INSERT_SQL)
            check = sa.text(ORPHANS_SQL["row by row"])
            orphans = self.conn.execute(check, {"before": before}).scalar_one()
        if orphans:
            which = "1 dependent" if orphans == 1 else f"{orphans} dependents"
            raise DatabaseError(
                f"{which} would have no customer (foreign key dependents.customer_id); nothing was committed"
            )
        return inserted

    def _any_stored(self) -> bool:
        """Whether ``dependents`` holds any row. A first load into an empty table need not
        look for stored twins, nor gather the file's customers to count their stored
        dependents: SQLite built that list from every staged row before looking, 3.4 s of a
        million rows' decision."""
        return self.conn.exec_driver_sql("SELECT 1 FROM dependents LIMIT 1").first() is not None

    def _analyze(self, table: sa.Table) -> None:
        """Give the planner the staged table's real size and spread (temporary tables have none)."""
        if self.kind in ("postgresql", "sqlite"):
            self.conn.exec_driver_sql(f"ANALYZE {table.name}")


@contextmanager
def hash_joins(conn: Connection) -> Iterator[None]:
    """PostgreSQL: the statements inside join without nested loops.

    The planner takes an empty table it has analyzed (no row of the file refused, none
    repeated) for one row, and joins it by scanning it once per staged row: 0.5 s of the
    million rows' 1.1-1.7 s limit check, which took 0.9-1.1 s with a hash join. Only for the
    steps among this file's own tables: a small file's check against a large ``dependents``
    is right to look each row up by its index. The setting is the transaction's own, put
    back afterwards; after an error the rollback puts it back (a statement now would fail)."""
    if db.dialect(conn) != "postgresql":
        yield
        return
    before = conn.exec_driver_sql("SELECT current_setting('enable_nestloop')").scalar_one()
    conn.exec_driver_sql("SELECT set_config('enable_nestloop', 'off', true)")
    yield
    conn.execute(sa.text("SELECT set_config('enable_nestloop', :v, true)"), {"v": before})


@dataclass
class Verdicts:
    """The database rules' verdicts of one file, in row order (``ref_row``/``existing``: -1
    where they do not apply)."""

    frame: pd.DataFrame

    @property
    def rejected_candidates(self) -> int:
        """Rows that passed every row rule but not the database's: rejected by the database alone."""
        return int(self.frame["candidate"].sum())

    def failures(self, first: int, last: int) -> pd.DataFrame:
        """Failures (row, code, details) of the rows ``first``..``last``, in row order."""
        lo, hi = np.searchsorted(self.frame["row"].to_numpy(), [first, last + 1])
        found = self.frame.iloc[lo:hi]
        code = found["verdict"].map(VERDICTS).astype("str")
        return pd.DataFrame(
            {
                "row": found["row"].to_numpy(),
                "code": code.to_numpy(),
                "details": _details(code, found["ref_row"], found["existing"]).to_numpy(),
            }
        )


def _details(code: pd.Series, ref_row: pd.Series, existing: pd.Series) -> pd.Series:
    """Each verdict's additionalData as JSON text (what ``json.dumps`` writes), column-wise."""
    count = existing.clip(lower=SELF_SERVICE_LIMIT).astype("str")
    text = pd.Series('{"field": "customerId"}', index=code.index, dtype="str")
    text = text.mask(
        code == "DUPLICATE_IN_FILE", '{"field": "customerId", "row": ' + ref_row.astype("str") + "}"
    )
    limit = f'{{"field": "customerId", "limit": {SELF_SERVICE_LIMIT}, "count": '
    return text.mask(code == "DEPENDENT_LIMIT_REACHED", limit + count + "}")
