"""The work tables of one import and what a staged row carries.

Each chunk's rows that passed the row rules (and the keys of those that did not, whose
customer is still checked) are written to ``dependents_stage``; the decision's tables hold
what each database rule found. All are temporary: the connection's own, gone with it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from pipeline.database import db
from schemas import parse

NAME_KEY_LENGTH = db.NAME_KEY.length  # characters of the natural key's folded names
# What a staged row carries into ``dependents``; the rest (id, times, run) is the run's own.
OWN = ("id", "created_at", "updated_at", "import_run_id", "source_row", "name_key")
DATA = [c.name for c in db.dependents.columns if c.name not in OWN]
KEY_DATA = ("customer_id", "date_of_birth")  # what the rules read of a staged row's data
ORIGIN = ("origin_run_id", "origin_row")  # a corrected report's rows only: where each first came from
# What an update may change of a stored dependent: all but its customer, natural key and origin.
UPDATABLE = [n for n in DATA if n not in ("customer_id", "first_name", "last_name", "date_of_birth", *ORIGIN)]
OWN_VALUES = ":now, :now, :run_id, source_row, name_key"  # the run's own columns, in the insert

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
matched = sa.Table(
    "dependents_matched",  # candidates whose natural key is stored already (``--on-existing``)
    _md,
    sa.Column("source_row", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("dependent_id", db.UUID, nullable=False),
    prefixes=["TEMPORARY"],
)
diff = sa.Table(
    "dependents_diff",  # the matched rows that change their dependent: its old and new values
    _md,
    sa.Column("dependent_id", db.UUID, primary_key=True),
    sa.Column("source_row", sa.Integer, nullable=False),
    sa.Column("old_updated_at", sa.DateTime, nullable=False),
    *(sa.Column(f"old_{n}", db.dependents.c[n].type) for n in UPDATABLE),
    *(sa.Column(f"new_{n}", db.dependents.c[n].type) for n in UPDATABLE),
    prefixes=["TEMPORARY"],
)
MATCHING_TABLES = (matched, diff)  # only an import that updates or skips stored dependents
WORK_TABLES = (
    *(stage, suspect_keys, suspect_customers),
    *(held, refused, repeated, repeats, crowded, over, verdicts),
)


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
    """Each row's id as its 16 bytes (``arrow.uuid_series``' form): the run's 24-character
    ``prefix`` (``id_prefix``), then ``seq`` as 6 bytes, so its text is what the insert's SQL
    spells (the dialect's ``id_sql``): the prefix and ``seq`` as 12 hex digits."""
    raw = np.empty((len(seq), 16), np.uint8)
    raw[:, :10] = np.frombuffer(bytes.fromhex(prefix.replace("-", "")), np.uint8)
    raw[:, 10:] = (seq.to_numpy(dtype=np.int64)[:, None] >> _COUNT_SHIFTS) & 0xFF
    packed = pa.Array.from_buffers(pa.binary(16), len(seq), [None, pa.py_buffer(raw.tobytes())])
    return pd.Series(pd.arrays.ArrowExtensionArray(packed), index=seq.index)


def stage_columns(out: dict, customer: pd.Series, born: pd.Series | None) -> pa.Table:
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
