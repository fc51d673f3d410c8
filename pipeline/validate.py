"""The profile's Pandera schema, run lazily over a chunk: failure cases -> (row, code) pairs.

Every check in ``schemas.rules`` carries its code as its ``error``, so a failure
case names its code; a missing value in a required column is Pandera's
``not_nullable`` and becomes ``<FIELD>_REQUIRED``.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pandera.pandas as pa

from schemas import parse
from schemas.fields import BY_COLUMN
from schemas.rules import Profile, build, required_code


def _code(column: str, check: str) -> str:
    """A failure's code: the check's own, or ``<FIELD>_REQUIRED`` for a missing value."""
    if check != "not_nullable":
        return check
    return required_code(BY_COLUMN[column.split("__")[0]])


class Validator:
    """A profile's schema built once per run (building costs more than a small chunk)."""

    def __init__(self, profile: Profile, as_of: date, date_order: parse.DateOrder | None):
        self.profile = profile
        self.built = build(profile, as_of, date_order)

    @property
    def details(self) -> dict[str, dict]:
        return self.built.details

    def failures(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per (sheet row, code) that fails; empty when every row passes."""
        try:
            self.built.schema.validate(frame, lazy=True, inplace=True)
        except pa.errors.SchemaErrors as exc:
            return self._codes(exc.failure_cases)
        return pd.DataFrame({"row": pd.Series(dtype="int64"), "code": pd.Series(dtype="str")})

    def _codes(self, cases: pd.DataFrame) -> pd.DataFrame:
        if cases["index"].isna().any():
            # A schema-level failure is a bug in a declaration, not a user's row.
            raise RuntimeError(
                f"schema failure without a row: {cases[cases['index'].isna()].iloc[0].to_dict()}"
            )
        # Few distinct (column, check) pairs: each is named once (0.19 -> 0.04 s a million rows).
        pair, distinct = pd.factorize(cases["column"] + "\x1f" + cases["check"], use_na_sentinel=False)
        named = np.array([_code(*d.split("\x1f")) for d in distinct], dtype=object)
        out = pd.DataFrame(
            {"row": cases["index"].astype("int64"), "code": pd.array(named[pair], dtype="str")}
        )
        return out.drop_duplicates(ignore_index=True)
