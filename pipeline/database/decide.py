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
from pipeline.database import decide_sql as sql
from pipeline.rejects.notifications import json_objects
from schemas.codes import BY_VERDICT

SELF_SERVICE_LIMIT = 4  # dependents per customer a self-service channel may add
CHANNELS = ("self-service", "contact-centre")
ON_EXISTING = ("reject", "update", "skip")  # what a row whose dependent is stored already does


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
    groups = [Step("repeated", sql.REPEATED, own_tables=True), Step("repeats", sql.REPEATS, own_tables=True)]
    if matching:
        groups.append(Step("matched repeats", sql.UNMATCH_REPEATS, own_tables=True))
    limit = []
    if self_service and stored:
        limit += [
            Step("held", sql.HELD, analyze=stage.held),
            Step("held suspects", sql.HELD_SUSPECTS, own_tables=True, analyze=stage.suspect_customers),
        ]
    if self_service and (crowded or stored):
        limit += [
            Step("crowded", sql.CROWDED_MATCHING if matching else sql.CROWDED, own_tables=True),
            Step("over", sql.OVER_MATCHING if matching else sql.OVER, own_tables=True),
        ]
    verdicts = [Step("matched verdicts", sql.MATCHED_VERDICTS, own_tables=True)] if matching else []
    return Plan((*first, *(groups if repeats else ()), *limit, *verdicts))


def _lookups(customers_known: bool, stored: bool, narrow: bool, matching: bool) -> list[Step]:
    """The statements that look each staged row's customer and stored twin up."""
    refused = stage.refused
    if customers_known:
        first = [Step("unknown among rejected", sql.UNKNOWN_AMONG_REJECTED, analyze=refused)]
    elif stored and not matching:
        return [Step("refused", sql.REFUSED, analyze=refused)]
    else:
        first = [Step("unknown customers", sql.UNKNOWN_CUSTOMERS, analyze=refused)]
        if narrow:
            first.append(Step("unknown among copied", sql.UNKNOWN_COPIED, analyze=refused))
    if matching:
        first.append(Step("matched", sql.MATCHES, analyze=stage.matched))
    elif stored:
        first.append(Step("stored twins", sql.TWINS, analyze=refused))
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
