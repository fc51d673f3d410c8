"""Loading the customers that dependents attach to, from a customer export (CSV or XLSX).

Ids already present are skipped, so the same export can be loaded again. Rows
go through a temporary staging table and one ``INSERT ... SELECT``, the same
bulk path as dependents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipeline.database import bulk, db
from pipeline.errors import FileError
from pipeline.rows.columns import header_key
from pipeline.rows.normalise import clean
from pipeline.rows.read import open_source
from schemas import parse

COLUMNS = {
    "id": ("id", "customerId", "customer_id", "profileKey", "customer"),
    "first_name": ("firstName",),
    "last_name": ("lastName",),
    "email": ("email",),
    "phone": ("phone",),
}

_stage_md = sa.MetaData()
stage = sa.Table(
    "customers_stage",
    _stage_md,
    *(sa.Column(c.name, c.type) for c in db.customers.columns),
    prefixes=["TEMPORARY"],
)


@dataclass
class Loaded:
    read: int
    added: int

    @property
    def skipped(self) -> int:
        return self.read - self.added


def load_customers(url: str, path: Path, encoding: str | None = None, delimiter: str | None = None) -> Loaded:
    src = open_source(path, encoding=encoding, delimiter=delimiter)
    positions = _positions(src.headers, src.path.name)
    headers = {col: src.headers[pos] for col, pos in positions.items()}
    engine = db.engine_for(url)
    read = added = 0
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        with db.errors(url):
            db.ensure_schema(engine)
            with engine.begin() as conn:
                db.fresh_temp_table(conn, stage)
                for chunk in src.chunks(50_000):
                    frame = pd.DataFrame({col: clean(chunk[pos]) for col, pos in positions.items()})
                    frame["id"] = frame["id"].str.lower()
                    bad = ~frame["id"].str.fullmatch(parse.UUID).fillna(False).astype(bool)
                    if bad.any():
                        raise FileError(f"{src.path.name}: row {frame.index[bad][0]}: id is not a UUID")
                    _refuse_control_characters(frame, src.path.name, headers)
                    frame["created_at"] = now
                    conn.execute(stage.delete())
                    bulk.write(conn, stage, frame.drop_duplicates("id"))
                    added += conn.execute(_INSERT).rowcount
                    read += len(frame)
    finally:
        engine.dispose()
    return Loaded(read, added)


_COLS = ", ".join(c.name for c in db.customers.columns)
_INSERT = sa.text(
    f"INSERT INTO customers ({_COLS}) SELECT {_COLS} FROM customers_stage s "
    "WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = s.id)"
)


def _refuse_control_characters(frame: pd.DataFrame, name: str, headers: dict[str, str]) -> None:
    """A control character (NUL above all, which PostgreSQL cannot store) means a broken export."""
    for col, header in headers.items():
        hit = frame[col].str.contains(parse.CONTROL, regex=True).fillna(False).astype(bool)
        if hit.any():
            raise FileError(f"{name}: row {frame.index[hit][0]}: {header} holds a control character")


def _positions(headers: list[str], name: str) -> dict[str, int]:
    keys = [header_key(h) for h in headers]
    found: dict[str, int] = {}
    for col, spellings in COLUMNS.items():
        for spelling in (col, *spellings):
            if header_key(spelling) in keys:
                found[col] = keys.index(header_key(spelling))
                break
    if "id" not in found:
        raise FileError(f"{name}: missing required column: id (or customerId, profileKey)")
    return found
