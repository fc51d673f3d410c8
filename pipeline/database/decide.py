"""The database rules, decided once per file in SQL: which staged rows a rule turns away.

One statement per rule, over the whole file: a join finds unknown customers and dependents
already stored, grouping finds natural keys the file repeats, and a window in file order
counts dependents only for the customers the file would take past the self-service limit.
The groupings see only the rows whose hashes the sieve found suspect while they were staged,
and do not run at all when there are none. A "live" row passed every row rule, its customer
exists and it is not stored yet. Which statements run is a ``Plan``, a value chosen from
what is known before the rules run (``plan``); the failures land in ``dependents_verdicts``
with their code's number from the catalogue.

Every temporary table is named once per statement (MariaDB cannot open a temporary table
twice in one statement). Within one natural key, live-ness is all or nothing (the customer
and the stored twin are the key's), so keys are grouped over every candidate row and a
refused key's rows are left out afterwards, in ``dependents_repeats``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.database import db, stage
from pipeline.rejects.notifications import json_objects
from schemas.codes import BY_VERDICT, VERDICT

SELF_SERVICE_LIMIT = 4
CHANNELS = ("self-service", "contact-centre")
ON_EXISTING = ("reject", "update", "skip")  # what a row whose dependent is stored already does
# Not a rejection: the row matches a stored dependent, to be updated or skipped (no catalogue
# code has this number).
MATCHED = 0


def _sql(text: str) -> str:
    """A statement with the catalogue's verdict numbers in place of ``{CODE}``."""
    return text.format(**VERDICT, stored="{stored}", big="{big}")


def _counting(sql: str, matching: bool) -> str:
    """A limit statement that counts live rows; a matched row is stored already, so it never
    counts towards the limit again."""
    join = "\nLEFT JOIN dependents_matched m ON m.source_row = s.source_row" if matching else ""
    return sql.replace("{unmatched_join}", join).replace(
        "{unmatched}", " AND m.source_row IS NULL" if matching else ""
    )


# ``{stored}``: a dependent stored before this run (a load with its keys set aside has copied
# its own rows into ``dependents`` by the time the rules are decided).
STORED = "COALESCE(d.import_run_id, '') <> :run_id"

REFUSED = _sql("""
INSERT INTO dependents_refused (source_row, verdict)
SELECT s.source_row, CASE WHEN c.id IS NULL THEN {CUSTOMER_NOT_FOUND} ELSE {DEPENDENT_ALREADY_EXISTS} END
FROM dependents_stage s
LEFT JOIN customers c ON c.id = s.customer_id
LEFT JOIN dependents d
       ON s.candidate = 1
      AND d.customer_id = s.customer_id
      AND d.date_of_birth = s.date_of_birth
      AND d.name_key = s.name_key
      AND {stored}
WHERE c.id IS NULL OR d.id IS NOT NULL
""")
# With no dependent stored there is no twin to find: only unknown customers are refused.
UNKNOWN_CUSTOMERS = _sql("""
INSERT INTO dependents_refused (source_row, verdict)
SELECT s.source_row, {CUSTOMER_NOT_FOUND}
FROM dependents_stage s
LEFT JOIN customers c ON c.id = s.customer_id
WHERE c.id IS NULL
""")
# With the foreign key to ``customers`` back before the rules every candidate's customer is
# proven: only the rows a row rule rejected are looked up, and stored twins by a join of their own.
UNKNOWN_AMONG_REJECTED = UNKNOWN_CUSTOMERS + "  AND s.candidate = 0\n"
# Each candidate with a stored twin (the same natural key), and that twin.
WITH_STORED_TWIN = """FROM dependents_stage s
JOIN dependents d
  ON d.customer_id = s.customer_id
 AND d.date_of_birth = s.date_of_birth
 AND d.name_key = s.name_key
 AND {stored}
WHERE s.candidate = 1
"""
TWINS = (
    _sql("""
INSERT INTO dependents_refused (source_row, verdict)
SELECT s.source_row, {DEPENDENT_ALREADY_EXISTS}
""")
    + WITH_STORED_TWIN
)
# A narrow stage holds the rejected rows and the groupings' suspects: the other candidates
# are only in ``dependents``, where their customers are looked up.
UNKNOWN_COPIED = _sql("""
INSERT INTO dependents_refused (source_row, verdict)
SELECT d.source_row, {CUSTOMER_NOT_FOUND}
FROM dependents d
LEFT JOIN customers c ON c.id = d.customer_id
WHERE d.import_run_id = :run_id AND c.id IS NULL
""")
# ``--on-existing update|skip``: a stored twin is a match, not a refusal (its customer exists).
MATCHES = (
    """
INSERT INTO dependents_matched (source_row, dependent_id)
SELECT s.source_row, d.id
"""
    + WITH_STORED_TWIN
)
# A later row of a matched key repeats the row that matched: it changes nothing.
UNMATCH_REPEATS = """
DELETE FROM dependents_matched WHERE source_row IN (SELECT source_row FROM dependents_repeats)
"""
MATCHED_VERDICTS = f"""
INSERT INTO dependents_verdicts (source_row, verdict) SELECT source_row, {MATCHED} FROM dependents_matched
"""
REPEATED = """
INSERT INTO dependents_repeated (customer_id, date_of_birth, name_key, first_row)
SELECT customer_id, date_of_birth, name_key, MIN(source_row)
FROM dependents_stage
WHERE candidate = 1 AND name_key IS NOT NULL
  AND key_hash IN (SELECT key_hash FROM dependents_suspect_keys)
GROUP BY customer_id, date_of_birth, name_key
HAVING COUNT(*) > 1
"""
REPEATS = """
INSERT INTO dependents_repeats (source_row, first_row)
SELECT s.source_row, k.first_row
FROM dependents_stage s
JOIN dependents_repeated k
  ON k.customer_id = s.customer_id AND k.date_of_birth = s.date_of_birth AND k.name_key = s.name_key
LEFT JOIN dependents_refused f ON f.source_row = s.source_row
WHERE s.candidate = 1 AND s.source_row <> k.first_row AND f.source_row IS NULL
"""
# Self-service only: the first live row of each key counts towards its customer's limit.
HELD = """
INSERT INTO dependents_held (customer_id, existing)
SELECT d.customer_id, COUNT(*) FROM dependents d
WHERE d.customer_id IN (SELECT s.customer_id FROM dependents_stage s WHERE s.candidate = 1)
  AND {stored}
GROUP BY d.customer_id
"""
HELD_SUSPECTS = """
INSERT INTO dependents_suspect_customers (customer_hash)
SELECT DISTINCT s.customer_hash FROM dependents_stage s
JOIN dependents_held h ON h.customer_id = s.customer_id
WHERE s.candidate = 1
"""
_CROWDED = """
INSERT INTO dependents_crowded (customer_id, existing)
SELECT {big} s.customer_id, MAX(COALESCE(h.existing, 0))
FROM dependents_stage s
LEFT JOIN dependents_refused f ON f.source_row = s.source_row
LEFT JOIN dependents_repeats r ON r.source_row = s.source_row
LEFT JOIN dependents_held h ON h.customer_id = s.customer_id{unmatched_join}
WHERE s.candidate = 1 AND f.source_row IS NULL AND r.source_row IS NULL{unmatched}
  AND s.customer_hash IN (SELECT customer_hash FROM dependents_suspect_customers)
GROUP BY s.customer_id
HAVING MAX(COALESCE(h.existing, 0)) + COUNT(*) > :limit
"""
_OVER = """
INSERT INTO dependents_over (source_row, existing)
SELECT source_row, existing FROM (
  SELECT s.source_row, k.existing,
    ROW_NUMBER() OVER (PARTITION BY s.customer_id ORDER BY s.source_row) AS n
  FROM dependents_stage s
  JOIN dependents_crowded k ON k.customer_id = s.customer_id
  LEFT JOIN dependents_refused f ON f.source_row = s.source_row
  LEFT JOIN dependents_repeats r ON r.source_row = s.source_row{unmatched_join}
  WHERE s.candidate = 1 AND f.source_row IS NULL AND r.source_row IS NULL{unmatched}
) counted
WHERE existing + n > :limit
"""


CROWDED, CROWDED_MATCHING = _counting(_CROWDED, False), _counting(_CROWDED, True)
OVER, OVER_MATCHING = _counting(_OVER, False), _counting(_OVER, True)
# Every rule's failures in one table. A repeat of a row past the limit is past the limit too;
# otherwise it names the row it repeats.
VERDICT_SQL = tuple(
    _sql(text)
    for text in (
        """
INSERT INTO dependents_verdicts (source_row, verdict) SELECT source_row, verdict FROM dependents_refused
""",
        """
INSERT INTO dependents_verdicts (source_row, verdict, existing)
SELECT source_row, {DEPENDENT_LIMIT_REACHED}, existing FROM dependents_over
""",
        """
INSERT INTO dependents_verdicts (source_row, verdict, ref_row, existing)
SELECT r.source_row,
  CASE WHEN o.source_row IS NULL THEN {DUPLICATE_IN_FILE} ELSE {DEPENDENT_LIMIT_REACHED} END,
  CASE WHEN o.source_row IS NULL THEN r.first_row END,
  o.existing
FROM dependents_repeats r LEFT JOIN dependents_over o ON o.source_row = r.first_row
""",
    )
)
# The verdicts, read back once (a verdict's row missing from a narrow stage is a candidate).
VERDICTS_SQL = f"""
SELECT v.source_row, v.verdict, COALESCE(v.ref_row, -1), COALESCE(v.existing, -1), COALESCE(s.candidate, 1)
FROM dependents_verdicts v LEFT JOIN dependents_stage s ON s.source_row = v.source_row
WHERE v.verdict <> {MATCHED}
ORDER BY v.source_row
"""
# Matched rows are only counted: joined to the stage, as many as the file holds, MariaDB
# (no index on a temporary table's ``source_row``) would read the stage once per row.
MATCHED_SQL = "SELECT COUNT(*) FROM dependents_matched"


@dataclass(frozen=True)
class Step:
    """One statement of the decision."""

    name: str
    sql: str
    own_tables: bool = False  # joins only this file's work tables: hash joins pay
    analyze: sa.Table | None = None  # later steps join this table to every staged row


@dataclass(frozen=True)
class Plan:
    """The statements one file's decision runs, in order."""

    steps: tuple[Step, ...]

    def __str__(self) -> str:
        return ", ".join(s.name for s in self.steps) or "nothing to decide"


def plan(
    *,
    customers_known: bool,
    stored: bool,
    narrow: bool,
    self_service: bool,
    repeats: bool,
    crowded: bool,
    matching: bool = False,
) -> Plan:
    """The decision's statements, from what is known before it runs: whether the foreign key
    already proved the candidates' customers, whether any dependent is stored, whether the
    stage is narrow, the channel, whether the sieve found repeated keys or crowded customers
    (a grouping with no suspect to see finds nothing, yet reads every staged row), and whether
    a stored twin is a match to update or skip (``matching``) rather than a refusal."""
    matching = matching and stored
    first = _lookups(customers_known, stored, narrow, matching)
    groups = [Step("repeated", REPEATED, own_tables=True), Step("repeats", REPEATS, own_tables=True)]
    if matching:
        groups.append(Step("matched repeats", UNMATCH_REPEATS, own_tables=True))
    limit = []
    if self_service and stored:
        limit += [
            Step("held", HELD, analyze=stage.held),
            Step("held suspects", HELD_SUSPECTS, own_tables=True, analyze=stage.suspect_customers),
        ]
    if self_service and (crowded or stored):
        limit += [
            Step("crowded", CROWDED_MATCHING if matching else CROWDED, own_tables=True),
            Step("over", OVER_MATCHING if matching else OVER, own_tables=True),
        ]
    verdicts = [Step("matched verdicts", MATCHED_VERDICTS, own_tables=True)] if matching else []
    return Plan((*first, *(groups if repeats else ()), *limit, *verdicts))


def _lookups(customers_known: bool, stored: bool, narrow: bool, matching: bool) -> list[Step]:
    """The statements that look each staged row's customer and stored twin up."""
    refused = stage.refused
    if customers_known:
        first = [Step("unknown among rejected", UNKNOWN_AMONG_REJECTED, analyze=refused)]
    elif stored and not matching:
        return [Step("refused", REFUSED, analyze=refused)]
    else:
        first = [Step("unknown customers", UNKNOWN_CUSTOMERS, analyze=refused)]
        if narrow:
            first.append(Step("unknown among copied", UNKNOWN_COPIED, analyze=refused))
    if matching:
        first.append(Step("matched", MATCHES, analyze=stage.matched))
    elif stored:
        first.append(Step("stored twins", TWINS, analyze=refused))
    return first


@dataclass
class Verdicts:
    """The database rules' verdicts of one file, in row order (``ref_row``/``existing``: -1
    where they do not apply)."""

    frame: pd.DataFrame
    matched: int = 0  # rows that match a stored dependent (``--on-existing update|skip``)

    @property
    def rejected_candidates(self) -> int:
        """Rows that passed every row rule but not the database's."""
        return int(self.frame["candidate"].sum())

    def failures(self, first: int, last: int) -> pd.DataFrame:
        """Failures (row, code, details) of the rows ``first``..``last``, in row order."""
        lo, hi = np.searchsorted(self.frame["row"].to_numpy(), [first, last + 1])
        found = self.frame.iloc[lo:hi]
        code = found["verdict"].map({n: c.code for n, c in BY_VERDICT.items()}).astype("str")
        return pd.DataFrame(
            {
                "row": found["row"].to_numpy(),
                "code": code.to_numpy(),
                "details": _details(found, code).to_numpy(),
            }
        )


def _details(found: pd.DataFrame, code: pd.Series) -> pd.Series:
    """Each verdict's additionalData as JSON text: its field, then the values its catalogue
    entry names (``data``), column-wise."""
    values = {
        "row": found["ref_row"],
        "limit": SELF_SERVICE_LIMIT,
        "count": found["existing"].clip(lower=SELF_SERVICE_LIMIT),
    }
    text = pd.Series("", index=code.index, dtype="str")
    for entry in BY_VERDICT.values():
        mine = code == entry.code
        if mine.any():
            fields = {"field": "customerId", **{k: values[k] for k in entry.data}}
            text = text.mask(mine, json_objects(fields))
    return text


@dataclass(frozen=True)
class Decision:
    """What the database's rules make of the file, worked out on the database's thread and
    applied to the run record by the import's own thread."""

    verdicts: Verdicts
    rejected: int
    accepted: int
    status: str
    message: str | None = None
    on_existing: str = "reject"
    updated: int = 0  # matched rows that change their dependent (``--on-existing update``)

    @property
    def commits(self) -> bool:
        return self.status == "succeeded"

    @property
    def updates(self) -> bool:
        """Whether the matched rows' changes are to be found (and, if it commits, made)."""
        return self.on_existing == "update" and self.status != "aborted" and self.verdicts.matched > 0

    @property
    def inserted(self) -> int:
        """Accepted rows that are new dependents (the others match stored ones)."""
        return self.accepted - self.verdicts.matched

    @property
    def results(self) -> dict[str, int]:
        """What the accepted rows did or, in a dry run, would do (``db.RESULTS``); nothing for
        an aborted run."""
        matched = self.verdicts.matched
        if self.status == "aborted":
            return dict.fromkeys(db.RESULTS, 0)
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": matched - self.updated if self.on_existing == "update" else 0,
            "skipped": matched if self.on_existing == "skip" else 0,
        }

    @classmethod
    def of(
        cls,
        verdicts: Verdicts,
        rule_rejected: int,
        read: int,
        max_reject_rate: float,
        dry_run: bool,
        on_existing: str = "reject",
    ) -> Decision:
        """The run's counts and status: aborted past the reject-rate guard, else a dry run or
        a run that commits."""
        rejected = rule_rejected + verdicts.rejected_candidates
        if read and rejected / read > max_reject_rate:
            message = (
                f"{rejected} of {read} rows rejected, more than --max-reject-rate {max_reject_rate:g}; "
                "nothing committed"
            )
            return cls(verdicts, rejected, read - rejected, "aborted", message, on_existing)
        status = "dry run" if dry_run else "succeeded"
        return cls(verdicts, rejected, read - rejected, status, None, on_existing)
