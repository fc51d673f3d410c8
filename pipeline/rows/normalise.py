"""Text cells -> one frame per chunk with a column per field, trimmed and canonical,
and a parsed ``<column>__value`` beside each date, number and boolean.

Nothing is rejected here: unreadable text simply has no parsed value, and the
schema (``pipeline.rows.validate``) says why.
"""

from __future__ import annotations

import pandas as pd

from pipeline.rows.columns import ColumnMap
from schemas import parse
from schemas.fields import Field
from schemas.rules import Profile, derive

# A rejects report writes a cell that starts with one of these behind a "'" so a
# spreadsheet shows it as text; the "'" is taken off again when the report is imported.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# Kinds whose column holds few distinct cells (a lookup's values, true/false, dates): each
# distinct cell is normalised once and spread back to its rows.
FEW_DISTINCT = ("enum", "bool", "date")


def normalise(
    chunk: pd.DataFrame, cmap: ColumnMap, profile: Profile, date_order: parse.DateOrder | None
) -> pd.DataFrame:
    out = pd.DataFrame(index=chunk.index)
    for pos, f in cmap.fields.items():
        cells = chunk[pos]
        if f.kind in FEW_DISTINCT:
            codes, distinct = pd.factorize(cells)
            done = field(pd.Series(distinct, dtype="str"), f, profile, date_order, cmap.values.get(f.name))
            for column, values in done.items():
                out[column] = parse.spread(values, codes, cells.index)
        else:
            for column, values in field(cells, f, profile, date_order).items():
                out[column] = values
    return derive(out, profile)


def field(
    cells: pd.Series,
    f: Field,
    profile: Profile,
    date_order: parse.DateOrder | None,
    mapped: dict[str, str] | None = None,
) -> dict:
    """One field's cells -> its canonical text column and, for dates, numbers and booleans,
    the parsed values beside it (``<column>__value``). ``mapped``: a mapping file's values
    for the field (folded source -> value), put in place before anything else."""
    text = clean(cells)
    if mapped:
        text = text.str.casefold().map(mapped).fillna(text).astype(text.dtype)
    out = {f.column: canonical(text, f, profile)}
    if f.kind == "date":
        out[f.value_column] = parse.dates(text, date_order)
    elif f.kind == "int":
        out[f.value_column] = parse.integers(text)
    elif f.kind == "bool":
        out[f.value_column] = parse.booleans(text)
    return out


def clean(cells: pd.Series) -> pd.Series:
    """Unescape report-escaped formulas, trim, and make empty cells missing. The second
    character is looked at only in a column where some cell starts with "'"."""
    quoted = cells.str.startswith("'")
    if quoted.any():
        escaped = quoted & cells.str.slice(1, 2).isin(FORMULA_START)
        cells = cells.where(~escaped, cells.str.slice(1))
    text = cells.str.strip()
    return text.where(text != "")


def canonical(text: pd.Series, f: Field, profile: Profile) -> pd.Series:
    """Enum and lookup values in their canonical spelling, UUIDs in lower case."""
    if f.kind == "uuid":
        return text.str.lower()
    allowed = profile.rules[f.name].one_of
    if f.kind == "enum" and allowed:
        spelling = {v.casefold(): v for v in allowed}
        return parse.per_distinct(text, lambda d: d.str.casefold().map(spelling).fillna(d).astype("str"))
    return text
