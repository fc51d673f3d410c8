"""How cell text becomes values: column-wise, never row by row.

Each parser takes a Series of trimmed text (``<NA>`` for empty cells) and returns
a Series of values with ``<NA>``/``NaT`` where the text is empty *or* unreadable.
The schemas call the same parsers to decide "is this text readable?", so the
rule and the stored value can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

DateOrder = Literal["DMY", "MDY"]

# ISO 8601 date, optionally with a time (the Add Dependent sample sends 2019-01-04T00:00:00).
ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?)?"
# 04/01/2019, 4-1-2019, 04.01.2019: read only when the user says which part is the day.
NUMERIC_DATE = r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$"
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
EMAIL = r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+"
SSN = r"\d{3}-\d{2}-\d{4}|\d{9}"
INTEGER = r"[+-]?\d{1,20}"
# Control characters no text cell should hold: every C0 control but tab, line feed and
# carriage return. PostgreSQL cannot store NUL, and XML (so the rejects workbook) none of
# them; in a spreadsheet they are the debris of a binary paste. Read by Python's re and Arrow.
CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
# What XML 1.0, so the rejects workbook, cannot hold: those, and the noncharacters U+FFFE
# and U+FFFF (UTF-8 can carry them; lxml refuses them).
NOT_XML = CONTROL[:-1] + "\ufffe\uffff]"  # the characters themselves: Python's re and RE2 read them
# What the rules refuse in text: those, and U+FFFD, the mark left where text could not be
# read; the reports show each of the others as U+FFFD, so an unfixed cell is refused again.
NOT_TEXT = NOT_XML[:-1] + "\ufffd]"
# Bytes that can start one of them in UTF-8 (U+FFFD..U+FFFF are EF BF BD..BF); nothing else can.
_SUSPECT_BYTES = np.zeros(256, dtype=bool)
_SUSPECT_BYTES[[*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xEF]] = True

TRUE_WORDS = ("true", "yes", "y", "1")
FALSE_WORDS = ("false", "no", "n", "0")
BOOLEANS = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}


def free_of_control(text: pd.Series) -> pd.Series:
    """True where ``text`` holds no ``NOT_TEXT`` character. They are rare, so one scan of the
    column's UTF-8 bytes for a byte that could start one clears a whole column at once (about
    a tenth of the regex's work); the regex runs only on a column with such a byte (or, since
    the scan reads whole buffers, a slice beside one)."""
    if not suspect_bytes(text):
        return pd.Series(True, index=text.index)
    return ~text.astype("str").str.contains(NOT_TEXT, regex=True).fillna(False).astype(bool)


def suspect_bytes(text: pd.Series) -> bool:
    """Whether ``text``'s UTF-8 holds a byte that could start a ``NOT_TEXT`` character
    (``_SUSPECT_BYTES``): False clears the whole column; True says only "look closer"."""
    arrow = pa.array(text.array if isinstance(text.dtype, pd.StringDtype) else text)
    chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    return any(_suspect_byte_in(chunk) for chunk in chunks)


def _suspect_byte_in(strings: pa.Array) -> bool:
    """Two comparisons over the bytes clear almost every column; the table of suspect
    bytes is read only when a byte below 0x20
    (a tab, say, which is allowed) or 0xEF is there."""
    data = strings.buffers()[2] if len(strings) > strings.null_count else None
    raw = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)
    if not raw.size or (raw.min() >= 0x20 and not (raw == 0xEF).any()):
        return False
    return bool(_SUSPECT_BYTES[raw].any())


def dates(text: pd.Series, order: DateOrder | None = None) -> pd.Series:
    """Parse ISO dates always, and day/month/year text only in the ``order`` given.

    Each distinct text is parsed once: a file's birth and coverage dates repeat (a million
    rows hold a few thousand distinct dates), and the pattern match and parse cost far more
    than spreading the values back. Rules and values call this same function, so they agree."""
    return per_distinct(text, lambda distinct: _dates(distinct, order))


def _dates(text: pd.Series, order: DateOrder | None) -> pd.Series:
    iso = text.str.fullmatch(ISO_DATE).fillna(False).astype(bool)
    ymd = text.str.slice(0, 10).where(iso)
    if order is not None:
        rest = text[~iso & text.notna()]
        parts = rest.str.extract(NUMERIC_DATE)
        day, month = (parts[0], parts[1]) if order == "DMY" else (parts[1], parts[0])
        ymd = ymd.fillna(parts[2] + "-" + month.str.zfill(2) + "-" + day.str.zfill(2))
    return pd.to_datetime(ymd, format="%Y-%m-%d", errors="coerce").astype("datetime64[s]")


def integers(text: pd.Series) -> pd.Series:
    """Whole numbers written as digits with an optional sign; anything else is <NA>."""
    whole = text.where(text.str.fullmatch(INTEGER).fillna(False).astype(bool))
    return pd.to_numeric(whole, errors="coerce").astype("Float64")


def booleans(text: pd.Series) -> pd.Series:
    """true/false, yes/no, y/n, 1/0 in any case; anything else is <NA>."""
    return per_distinct(text, lambda d: d.str.casefold().map(BOOLEANS).astype("boolean"))


def casefold(text: pd.Series) -> pd.Series:
    """``str.casefold`` of a column. Python folds one value at a time; ASCII text, where
    folding is lower-casing, is lowered by Arrow instead, and Python folds only the rest
    (``ß`` -> ``ss``)."""
    folded = text.str.lower()
    other = ~text.str.isascii().fillna(True).astype(bool)
    if other.any():
        folded.loc[other] = text[other].str.casefold()
    return folded


def casefold_few(text: pd.Series) -> pd.Series:
    """``str.casefold`` of a column of few distinct values (enums, booleans): each distinct
    value is folded once."""
    return per_distinct(text, lambda d: d.str.casefold())


def per_distinct(text: pd.Series, work: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``work`` done once per distinct value of a column of few (enums, booleans, dates) and
    spread back to every row; missing values stay missing."""
    codes, distinct = pd.factorize(text)
    return spread(work(pd.Series(distinct, dtype="str")), codes, text.index)


def spread(done: pd.Series, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """Values worked out once per distinct cell (``pd.factorize``'s uniques), back on every
    row; code -1 (a missing cell) stays missing."""
    return pd.Series(done.array.take(codes, allow_fill=True), index=index)


def age_on(born: pd.Series, as_of: date) -> pd.Series:
    """Age in completed calendar years on ``as_of``.

    A 29 February birthday is reached on 1 March in a non-leap year, because
    (2, 29) is after (2, 28) and before (3, 1).
    """
    month, day = born.dt.month, born.dt.day
    had_birthday = (month < as_of.month) | ((month == as_of.month) & (day <= as_of.day))
    return as_of.year - born.dt.year - (~had_birthday).astype("Int64")
