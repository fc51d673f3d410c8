"""One file's database work, inside the caller's transaction: stage each chunk, decide every
database rule for the whole file, then insert the accepted rows set-wise.

How the accepted rows reach ``dependents`` depends on its keys (``indexes``):
- Row by row (small loads, MariaDB, a table in use): the dialect's ``insert`` moves every
  accepted staged row into ``dependents`` with one ``INSERT ... SELECT``, in customer order
  with ids that ascend in that order, so every index is written front to back.
- Keys set aside before staging (a large PostgreSQL load): each chunk's candidate rows are
  copied straight into ``dependents`` while the next chunk is read, each id counting its
  row's place in the file; the stage keeps only what the rules read. The foreign key to
  ``customers`` goes back before the rules (``SetAside.customers_known``); ``insert`` then
  takes back out the few rows a database rule refused and rebuilds the keys. The rules tell
  this run's rows from stored ones by ``import_run_id``. Into an empty table (``narrow``) the
  stage takes only the rows a row rule rejected, and the groupings' suspects once the file
  is read.
- SQLite sets its natural-key index aside at the insert, after the rules (which look stored
  twins up by it), and stages each chunk in customer order: with no hash join it looks each
  row's customer up in an index, and in order those lookups are cheap.
"""

from __future__ import annotations

import os
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.database import arrow, bulk, db, decide, decide_sql, dialects, sieve, stage, update
from pipeline.database.decide import SELF_SERVICE_LIMIT, Plan, Verdicts
from pipeline.database.dialects import Prepared
from pipeline.database.indexes import SetAside


@dataclass
class Loader:
    """Stages, decides and inserts the chunks of one import, inside the caller's transaction."""

    conn: Connection
    run_id: str
    channel: str
    now: datetime
    rebuild_indexes: str = "auto"  # see ``indexes``
    on_existing: str = "reject"  # a stored twin: rejected, or matched to update or skip
    set_aside: SetAside = field(default_factory=SetAside)  # see ``set_indexes_aside``

    def __post_init__(self) -> None:
        self.dialect = dialects.of(self.conn)
        self.sieve = sieve.Sieve()
        for table in (*stage.WORK_TABLES, *(stage.MATCHING_TABLES if self.matching else ())):
            self.dialect.fresh_temp_table(self.conn, table)
        self.stored = self._any_stored()  # before this run's rows can be in the table
        self.copied = 0  # rows copied straight into ``dependents`` while staging
        self.prefix = stage.id_prefix(self.now, os.urandom(4))
        self.plan: Plan | None = None  # the decision's statements, once chosen
        self.dialect.start_import(self.conn)

    @property
    def matching(self) -> bool:
        """Whether a row whose dependent is stored already is matched to it, not rejected."""
        return self.on_existing != "reject"

    def set_indexes_aside(self, rows: int) -> None:
        """Before staging a load of about ``rows`` rows: set the keys of ``dependents`` aside
        where the dialect does so before staging and it pays. Then each chunk's candidate rows
        go straight into ``dependents`` while the next chunk is read. Not when matching: the
        matched rows' cells are read from the stage, and they must not be copied in."""
        if self.matching:
            return
        self.set_aside = self.dialect.set_aside_before_staging(self.conn, rows, self.rebuild_indexes)

    @property
    def narrow(self) -> bool:
        """Whether the stage holds only the rows a row rule rejected (and, once the file is
        staged, the groupings' suspects): with the keys set aside the candidates are in
        ``dependents`` already, and into an empty table no rule needs them all again."""
        return self.set_aside.unindexed and not self.stored

    def write(self, prepared: list[Prepared]) -> None:
        """A prepared chunk's bulk writes, in order: the database's half of staging it."""
        for part in prepared:
            bulk.send(self.conn, part)

    def prepare(self, frame: pd.DataFrame, rejected_rows: pd.Index, bad_customer: pd.Index) -> list[Prepared]:
        """A chunk's rows made ready to stage, with no database work, so the import can
        prepare one chunk while the last is written. ``rejected_rows`` failed a row rule: only
        their customer is checked, and they take no place in the file order. Rows whose
        customer id is not a UUID (``bad_customer``) are not staged at all."""
        unkeyed = bad_customer.intersection(frame.index)
        keyed = frame.drop(index=unkeyed) if len(unkeyed) else frame  # a copy of every column
        candidate = ~keyed.index.isin(rejected_rows)
        key = stage.name_key(keyed).where(candidate)
        customer = arrow.uuid_series(keyed["customer_id"])  # once, for the hashes and both tables
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
        for name in stage.DATA:
            source = f"{name}__value" if f"{name}__value" in keyed else name
            if source in keyed:  # else not in the file: the column stays NULL
                data[name] = keyed[source]
        if self.dialect.stage_uuid_bytes:
            data["customer_id"] = customer
        if self.set_aside.unindexed:
            # The candidates go straight into ``dependents``; the stage keeps what the rules ask.
            stored = pd.DataFrame(
                {"id": stage.ids(self.prefix, source_row), **data, **self._own(source_row, key)}
            )
            self.copied += int(candidate.sum())
            prepared.append(bulk.prepare(self.dialect, db.dependents, stored[candidate]))
            data = {k: v for k, v in data.items() if k in stage.KEY_DATA}
            if self.narrow:  # what the stage would hold of them, kept for the suspects among them
                self.sieve.keep_rows(
                    stage.stage_columns(out, customer, keyed.get("date_of_birth__value")), candidate
                )
        for name, values in data.items():
            # A rejected row's cells may not fit the columns (too long, out of range): keys only.
            out[name] = values if name == "customer_id" else values.where(candidate)
        staged = pd.DataFrame(out)
        if self.narrow:
            staged = staged[~candidate]
        if self.dialect.stage_in_customer_order:
            staged = staged.iloc[pc.sort_indices(pa.array(customer)).to_numpy()]
        return [*prepared, bulk.prepare(self.dialect, stage.stage, staged)]

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
        self._analyze(stage.stage)
        customers_known = self.set_aside.customers_known(self.conn)
        self_service = self.channel == "self-service"
        with closing(self.sieve):
            keys = self.sieve.repeated_keys()
            crowded = self.sieve.crowded_customers(SELF_SERVICE_LIMIT) if self_service else keys[:0]
            suspects = self.sieve.suspect_rows(keys, crowded) if self.narrow else None
        self.plan = decide.plan(
            customers_known=customers_known,
            stored=self.stored,
            narrow=self.narrow,
            self_service=self_service,
            repeats=len(keys) > 0,
            crowded=len(crowded) > 0,
            matching=self.matching,
        )
        if len(keys):
            bulk.write(self.conn, stage.suspect_keys, pd.DataFrame({"key_hash": keys}))
        if len(crowded):
            bulk.write(self.conn, stage.suspect_customers, pd.DataFrame({"customer_hash": crowded}))
        if suspects is not None and suspects.num_rows:
            self._stage_suspects(suspects)
        params = {"limit": SELF_SERVICE_LIMIT, "run_id": self.run_id}
        for step in self.plan.steps:
            sql = step.sql.replace("{big}", self.dialect.big_result).replace("{stored}", decide_sql.STORED)
            with self.dialect.hash_joins(self.conn) if step.own_tables else nullcontext():
                self.conn.execute(sa.text(sql), params)
            if step.analyze is not None:
                self._analyze(step.analyze)
        for sql in decide_sql.VERDICT_SQL:
            self.conn.exec_driver_sql(sql)

    def _stage_suspects(self, rows: pa.Table) -> None:
        """A narrow stage: the candidates the groupings will read (a suspect key or customer
        hash: ``Sieve.suspect_rows``), staged now as they would have been with the others."""
        frame = rows.to_pandas(types_mapper=pd.ArrowDtype).assign(candidate=1)
        bulk.write(self.conn, stage.stage, frame)
        self._analyze(stage.stage)

    def verdicts(self, size: int = 50_000) -> Verdicts:
        """Every row a database rule turned away, fetched once, before the insert needs the
        connection; one row per rejected row, so memory follows the rejects, not the file."""
        q = sa.text(decide_sql.VERDICTS_SQL)
        parts = [
            np.array(part, dtype="int64").reshape(-1, 5)
            for part in self.conn.execute(q, execution_options={"yield_per": size}).partitions(size)
        ]
        found = np.concatenate(parts) if parts else np.empty((0, 5), dtype="int64")
        matched = self.conn.exec_driver_sql(decide_sql.MATCHED_SQL).scalar_one() if self.matching else 0
        return Verdicts(
            pd.DataFrame(found, columns=["row", "verdict", "ref_row", "existing", "candidate"]), matched
        )

    def update(self, apply: bool) -> int:
        """``--on-existing update``: record the matched rows' changes, and make them if
        ``apply``; returns how many stored dependents they change."""
        return update.changes(self.conn, self.dialect, self.run_id, self.now, apply)

    def insert(self, rows: int) -> int:
        """Put every staged row no rule turned away (``rows``, by the verdicts) into
        ``dependents``, the dialect's way; returns how many."""
        return self.dialect.insert(self, rows)

    def insert_from_stage(self, template: str) -> int:
        """One ``INSERT ... SELECT`` of the accepted staged rows, by ``template``."""
        params = {"prefix": self.prefix, "now": self.now, "run_id": self.run_id}
        data = ", ".join(stage.DATA)
        sql = template.format(data=data, id=self.dialect.id_sql, own=stage.OWN_VALUES)
        return self.conn.execute(sa.text(sql), params).rowcount

    def _any_stored(self) -> bool:
        """Whether ``dependents`` holds any row. A first load into an empty table need not
        look for stored twins, nor gather the file's customers to count their stored
        dependents."""
        return self.conn.exec_driver_sql("SELECT 1 FROM dependents LIMIT 1").first() is not None

    def _analyze(self, table: sa.Table) -> None:
        self.dialect.analyze(self.conn, table)
