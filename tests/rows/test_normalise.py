"""Text cells -> trimmed, canonical columns: each column-wise shortcut gives what the plain
rule gives one cell at a time."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.rows.normalise import FORMULA_START, canonical, clean
from schemas import PROFILES, parse
from schemas.fields import BY_NAME

CARECYCLE = PROFILES["carecycle"]


def one_by_one_clean(cell: str | None) -> str | None:
    """The rule, one cell at a time: an escaped formula loses its "'", then trim; empty is missing."""
    if cell is None:
        return None
    if cell.startswith("'") and cell[1:2] in FORMULA_START:
        cell = cell[1:]
    return cell.strip() or None


def values(series: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in series]


@pytest.mark.parametrize(
    "cells",
    [
        ["  Anna ", "", "   ", None, "Zoë"],  # no cell starts with "'": the second character is never read
        ["'=SUM(A1)", "'+27 11", "'-1", "'@x", "'\tx", "'x", "'", "''", " 'y", "Anna"],
    ],
)
def test_clean_unescapes_trims_and_blanks_as_one_cell_at_a_time(cells):
    column = pd.Series(cells, dtype="str", index=range(2, 2 + len(cells)))
    cleaned = clean(column)
    assert values(cleaned) == [one_by_one_clean(c) for c in cells]
    assert cleaned.index.equals(column.index)


def test_canonical_spelling_per_distinct_value_equals_one_cell_at_a_time():
    cells = ["male", "FEMALE", "Non-binary", "prefer not to say", "Unknown", None, "male", "OTHER"] * 3
    text = pd.Series(cells, dtype="str", index=range(5, 5 + len(cells)))
    spelling = {v.casefold(): v for v in CARECYCLE.rules["gender"].one_of}
    got = canonical(text, BY_NAME["gender"], CARECYCLE)
    assert values(got) == [None if c is None else spelling.get(c.casefold(), c) for c in cells]
    assert got.index.equals(text.index) and got.dtype == "str"


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        *[(w, True) for w in ("TRUE", "True", "yes", "Y", "1")],
        *[(w, False) for w in ("false", "No", "n", "0")],
        ("maybe", None),
        ("2", None),
        (None, None),
    ],
)
def test_booleans(cell, value):
    parsed = parse.booleans(pd.Series([cell, "yes", None], dtype="str", index=[7, 8, 9]))
    assert parsed.dtype == "boolean" and parsed.index.tolist() == [7, 8, 9]
    assert values(parsed) == [value, True, None]


def one_by_one_date(cell: str | None, order: parse.DateOrder | None) -> pd.Timestamp | None:
    """The rule, one cell at a time: ISO always; d/m/y or m/d/y only in the order given."""
    import re

    if cell is None:
        return None
    if re.fullmatch(parse.ISO_DATE, cell):
        return pd.to_datetime(cell[:10], format="%Y-%m-%d", errors="coerce")
    parts = re.match(parse.NUMERIC_DATE, cell) if order else None
    if not parts:
        return None
    first, second, year = parts.groups()
    day, month = (first, second) if order == "DMY" else (second, first)
    return pd.to_datetime(f"{year}-{month.zfill(2)}-{day.zfill(2)}", format="%Y-%m-%d", errors="coerce")


@pytest.mark.parametrize("order", [None, "DMY", "MDY"])
def test_dates_parsed_once_per_distinct_value_equal_one_cell_at_a_time(order):
    cells = ["2019-01-04", "2019-01-04T00:00:00", "04/01/2019", "2019-02-29", None, "13/12/2019"]
    cells += ["2019-01-04", "4.1.2019", "yesterday", "04/01/2019"]
    text = pd.Series(cells, dtype="str", index=range(3, 3 + len(cells)))
    parsed = parse.dates(text, order)
    assert parsed.index.equals(text.index) and parsed.dtype == "datetime64[s]"
    want = [one_by_one_date(c, order) for c in cells]
    assert values(parsed) == [None if w is None or pd.isna(w) else w for w in want]


@pytest.mark.parametrize("profile", ["carecycle", "add-dependent"])
def test_few_distinct_columns_normalised_once_per_cell_equal_every_cell_normalised(profile):
    """Genders, languages, booleans and dates are normalised once per distinct cell and spread
    back: the frame equals normalising every cell of every column."""
    from pipeline.rows import columns
    from pipeline.rows.normalise import FEW_DISTINCT, field, normalise

    rules = PROFILES[profile]
    headers = ["customerId", "firstName", "lastName", "birthDate", "gender", "homeLanguage", "isCovered"]
    rows = [
        ["c1", " Anna ", "Jones", "2015-01-04", " female", "ENGLISH", "yes"],
        ["c2", "Ben", "'=Jones", " 2015-01-04 ", "FEMALE", "english ", " Y"],
        ["c3", None, "", "04/01/2015", "'=x", None, "maybe"],
        ["c4", "Cy", "Lee", None, "", "   ", None],
        ["c5", "Di", "Lee", "2015-01-04", "female", "Zulu", "yes"],
    ]
    chunk = pd.DataFrame(rows, dtype="str", index=range(2, 2 + len(rows)))
    cmap = columns.match(headers, rules, "f.csv")
    got = normalise(chunk, cmap, rules, "DMY")
    assert set(FEW_DISTINCT) <= {f.kind for f in cmap.fields.values()}  # every shortcut is taken
    for pos, f in cmap.fields.items():
        for column, want in field(chunk[pos], f, rules, "DMY").items():
            pd.testing.assert_series_equal(got[column], want, check_names=False)
