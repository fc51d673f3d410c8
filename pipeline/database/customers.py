"""Loading the customers that dependents attach to, from a customer export (CSV or XLSX).

Ids already present are skipped, so the same export can be loaded again. A row that breaks
a rule is rejected with its code into a report, as a dependent's is; the rest go through a
temporary staging table and one ``INSERT ... SELECT``, the same bulk path as dependents.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipeline.database import bulk, db
from pipeline.errors import FileError
from pipeline.pii import open_private
from pipeline.rejects import report
from pipeline.rejects.notifications import with_ragged
from pipeline.rows.columns import header_key, ignored_warning
from pipeline.rows.normalise import clean
from pipeline.rows.read import open_source
from schemas import customers as rules
from schemas import parse
from schemas.codes import BY_CODE

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
    rejected: int = 0
    report: Path | None = None  # the rejected rows, with their codes, when there are any
    warnings: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return self.read - self.added - self.rejected

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected else 0


def load_customers(
    url: str,
    path: Path,
    encoding: str | None = None,
    delimiter: str | None = None,
    report_dir: Path | None = None,
) -> Loaded:
    """Load the customers in ``path`` in one transaction: a row that breaks a rule
    (``schemas.customers``) is rejected into ``<report_dir>/customers-<time>/``, the rest load."""
    src = open_source(path, encoding=encoding, delimiter=delimiter)
    positions = _positions(src.headers, src.path.name)
    now = datetime.now(UTC).replace(tzinfo=None)
    folder = (report_dir or Path("reports")) / f"customers-{now:%Y%m%dT%H%M%S}"
    rejects = Rejects(folder / f"{report.stem_of(src.path)}.rejects.csv", src.headers)
    loaded = Loaded(0, 0, warnings=_unknown(src.headers, positions))
    engine = db.engine_for(url)
    try:
        with db.errors(url):
            db.ensure_schema(engine)
            with engine.begin() as conn:
                db.fresh_temp_table(conn, stage)
                for chunk in src.chunks(50_000):
                    frame = pd.DataFrame({col: clean(chunk[pos]) for col, pos in positions.items()})
                    frame["id"] = frame["id"].str.lower()
                    failures = with_ragged(_failures(frame), chunk.attrs.get("ragged"))
                    rejects.add(chunk, failures)
                    good = frame.drop(index=failures["row"].unique())
                    conn.execute(stage.delete())
                    bulk.write(conn, stage, good.drop_duplicates("id").assign(created_at=now))
                    loaded.added += conn.execute(_INSERT).rowcount
                    loaded.read += len(frame)
        loaded.rejected, loaded.report = rejects.rows, rejects.close()
    except BaseException:
        rejects.discard()
        raise
    finally:
        engine.dispose()
    return loaded


def _failures(frame: pd.DataFrame) -> pd.DataFrame:
    """Each row's broken rules (row, code, details), column by column."""
    found = []
    missing = frame["id"].isna() | frame["id"].eq("")
    malformed = ~missing & ~frame["id"].str.fullmatch(parse.UUID).fillna(False).astype(bool)
    found += [_rows(missing, rules.ID_REQUIRED, {}), _rows(malformed, rules.ID_INVALID, {})]
    for field_ in rules.TEXT:
        if field_.column not in frame:
            continue
        text = frame[field_.column]
        found.append(
            _rows(text.str.len().gt(field_.limit).fillna(False), field_.too_long, {"limit": field_.limit})
        )
        found.append(_rows(~parse.free_of_control(text), field_.not_text, {}))
    return pd.concat(found, ignore_index=True).sort_values("row", kind="stable")


def _rows(hit: pd.Series, code: str, details: dict) -> pd.DataFrame:
    rows = hit.index[hit.astype(bool)]
    return pd.DataFrame({"row": rows.astype("int64"), "code": code, "details": json.dumps(details)})


class Rejects:
    """The rejected customer rows as a CSV: row, codes, messages, then the row's cells as read.
    Written owner-only, and only once a row is rejected."""

    def __init__(self, path: Path, headers: list[str]):
        self.path, self.headers, self.rows = path, headers, 0
        self.fh = None

    def add(self, chunk: pd.DataFrame, failures: pd.DataFrame) -> None:
        if failures.empty:
            return
        if self.fh is None:
            self.fh = open_private(self.path, "w", newline="", encoding="utf-8-sig")
            csv.writer(self.fh).writerow(["row", "codes", "messages", *self.headers])
        said = {
            (code, details): BY_CODE[code].render(json.loads(details))
            for code, details in failures[["code", "details"]].drop_duplicates().itertuples(index=False)
        }
        keys = pd.MultiIndex.from_frame(failures[["code", "details"]])
        messages = failures.assign(message=keys.map(said.get))
        by_row = messages.groupby("row", sort=True).agg({"code": ";".join, "message": " ".join})
        cells = chunk.loc[by_row.index].apply(report.defuse)
        table = pd.concat([by_row.reset_index(), cells.reset_index(drop=True)], axis=1)
        table.to_csv(self.fh, header=False, index=False)
        self.rows += len(by_row)

    def close(self) -> Path | None:
        if self.fh is None:
            return None
        self.fh.close()
        return self.path

    def discard(self) -> None:
        if self.fh is not None:
            self.fh.close()
            shutil.rmtree(self.path.parent, ignore_errors=True)


def _unknown(headers: list[str], positions: dict[str, int]) -> list[str]:
    return ignored_warning([h for i, h in enumerate(headers) if i not in positions.values()])


_COLS = ", ".join(c.name for c in db.customers.columns)
_INSERT = sa.text(
    f"INSERT INTO customers ({_COLS}) SELECT {_COLS} FROM customers_stage s "
    "WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = s.id)"
)


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
