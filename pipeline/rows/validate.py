"""The profile's Pandera schema over a chunk, every check run, every failure kept: -> (row, code).

Every check in ``schemas.rules`` carries its code as its ``error``, so a failing row names its
code; a missing value in a required column is Pandera's ``not_nullable`` and becomes
``<FIELD>_REQUIRED``.

``Validator.failures`` runs the schema's checks one by one through Pandera's own ``Check``
(its ``ignore_na``, its built-in checks, its output per row) and reads each check's output,
instead of ``DataFrameSchema.validate(lazy=True)``: that raises and catches a ``SchemaErrors``
for every column that has a failure and merges its failure cases into a frame each time, then
once more for the whole chunk: most of a chunk's checking time. The two agree row for row
and code for code: ``Validator.by_pandera`` is
``validate(lazy=True)`` itself, and the rule tests and the sample files ask both. A schema
that uses what the checks alone do not run (dtypes, coercion, uniqueness, defaults, parsers,
frame-wide checks) is refused when the validator is built, not silently half-checked.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pandera.pandas as pa

from schemas import parse
from schemas.fields import BY_COLUMN
from schemas.rules import Profile, build, required_code

NOT_NULLABLE = "not_nullable"  # Pandera's name for a missing value in a column that needs one
MAX_CELL = 32_767  # characters a spreadsheet cell holds (Excel's limit): no report could show more


def long_cells(chunk: pd.DataFrame, headers: list[str]) -> pd.DataFrame:
    """(row, code, details) for every cell, in any column, longer than a spreadsheet cell can
    hold: such a row is rejected whole, whether or not the column is stored."""
    found = [
        pd.DataFrame(
            {
                "row": chunk.index[long],
                "code": "CELL_TOO_LONG",
                "details": json.dumps({"column": headers[position], "limit": MAX_CELL}),
            }
        )
        for position in chunk.columns
        if (long := chunk[position].str.len().gt(MAX_CELL).fillna(False).to_numpy(bool)).any()
    ]
    return pd.concat(found, ignore_index=True) if found else _table([], []).assign(details=[])


def _code(column: str, check: str) -> str:
    """A failure's code: the check's own, or ``<FIELD>_REQUIRED`` for a missing value."""
    if check != NOT_NULLABLE:
        return check
    return required_code(BY_COLUMN[column.split("__")[0]])


class Validator:
    """A profile's schema built once per run (building costs more than a small chunk)."""

    def __init__(self, profile: Profile, as_of: date, date_order: parse.DateOrder | None):
        self.profile = profile
        self.built = build(profile, as_of, date_order)
        _refuse_unrun(self.built.schema)

    @property
    def details(self) -> dict[str, dict]:
        return self.built.details

    def failures(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per (sheet row, code) that fails; empty when every row passes. Columns the
        schema declares but ``frame`` lacks are not checked (every column is optional)."""
        rows: list[np.ndarray] = []
        codes: list[str] = []
        for name, column in self.built.schema.columns.items():
            if name not in frame:
                continue
            values = frame[name]
            present = values.notna()
            if not column.nullable:
                rows.append(_failing(present))
                codes.append(_code(name, NOT_NULLABLE))
            # What an ``ignore_na`` check reads, dropped once here, not by each check again.
            given = values if present.all() else values[present]
            for check in column.checks:
                rows.append(_failing(check(given if check.ignore_na else values).check_output))
                codes.append(check.error)
        return _table(rows, codes)

    def by_pandera(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``failures`` as Pandera's own lazy ``validate`` finds them: the reference the tests
        hold ``failures`` to."""
        try:
            self.built.schema.validate(frame, lazy=True, inplace=True)
        except pa.errors.SchemaErrors as exc:
            return _from_cases(exc.failure_cases)
        return _table([], [])


def _failing(passed: pd.Series) -> np.ndarray:
    """The sheet rows where a check's output is False (it holds only the rows it checked)."""
    if not isinstance(passed, pd.Series):  # a verdict on the whole column names no row
        raise RuntimeError(f"a check judged a whole column, not its rows: {passed!r}")
    return passed.index.to_numpy()[~passed.to_numpy(dtype=bool, na_value=False)]


def _table(rows: list[np.ndarray], codes: list[str]) -> pd.DataFrame:
    """(row, code) pairs from each check's failing rows, every pair once."""
    sizes = [len(r) for r in rows]
    return pd.DataFrame(
        {
            "row": np.concatenate([np.empty(0, "int64"), *rows]).astype("int64"),
            "code": pd.array(np.repeat(np.array(codes, dtype=object), sizes), dtype="str"),
        }
    ).drop_duplicates(ignore_index=True)


def _from_cases(cases: pd.DataFrame) -> pd.DataFrame:
    if cases["index"].isna().any():
        # A schema-level failure is a bug in a declaration, not a user's row.
        raise RuntimeError(f"schema failure without a row: {cases[cases['index'].isna()].iloc[0].to_dict()}")
    # Few distinct (column, check) pairs: each is named once, not once per failure.
    pair, distinct = pd.factorize(cases["column"] + "\x1f" + cases["check"], use_na_sentinel=False)
    named = np.array([_code(*d.split("\x1f")) for d in distinct], dtype=object)
    return pd.DataFrame(
        {"row": cases["index"].to_numpy(dtype="int64"), "code": pd.array(named[pair], dtype="str")}
    ).drop_duplicates(ignore_index=True)


def _refuse_unrun(schema: pa.DataFrameSchema) -> None:
    """Refuse what ``failures`` does not run: it runs each column's checks and nullability."""
    frame_wide = schema.checks or schema.parsers or schema.unique or schema.coerce or schema.dtype
    if frame_wide or schema.index is not None or schema.drop_invalid_rows:
        raise ValueError("the validator runs column checks only; this schema asks for more")
    for name, column in schema.columns.items():
        if column.dtype or column.coerce or column.unique or column.regex or column.parsers:
            raise ValueError(f"{name}: the validator runs checks and nullability only")
        if column.required or column.default is not None:
            raise ValueError(f"{name}: every column is optional and has no default")
        if any(c.groupby is not None or c.element_wise or c.raise_warning for c in column.checks):
            raise ValueError(f"{name}: a check groups, runs per element or only warns")
