"""Headers -> fields: forgiving about spelling, strict about what is missing.

``First Name``, ``first_name``, ``FIRSTNAME`` and ``first-name`` are one header;
``DOB`` and ``dateOfBirth`` are ``birthDate``. A rejects report's own columns
(``row``, ``sourceRow``, ``codes``, ``messages``) are recognised and not read as
fields, so a corrected report can be imported as it is; its ``sourceRow`` (or, in a
report without one, its ``row``) is the row each dependent first came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from pipeline.errors import FileError, shown
from schemas.fields import BY_NAME, FIELDS, Field
from schemas.rules import Profile

REPORT_COLUMNS = ("row", "sourceRow", "codes", "messages")
MAX_COLUMNS = 1_000  # far more than any export of dependents; more is a file gone wrong
SEPARATORS = (";", "|", "\t", ",")  # what a header read as one cell may hold between its names


def header_key(header: str) -> str:
    """The spelling-insensitive form of a header: case, spaces, underscores and hyphens dropped."""
    return re.sub(r"[\s_\-]+", "", header).casefold()


_REPORT_KEYS = {header_key(c): c for c in REPORT_COLUMNS}
ALIASES: dict[str, Field] = {
    header_key(spelling): f for f in FIELDS for spelling in (f.name, f.column, *f.aliases)
}


@dataclass
class ColumnMap:
    """Which input column (by position) feeds which field."""

    fields: dict[int, Field]
    ignored: list[str] = field(default_factory=list)
    report: list[int] = field(default_factory=list)
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # a mapping file's, per field
    origin: int | None = None  # a corrected report's column of each row's first row number

    @property
    def warnings(self) -> list[str]:
        return ignored_warning(self.ignored)

    @property
    def positions(self) -> dict[str, int]:
        """API field name -> input column position."""
        return {f.name: pos for pos, f in self.fields.items()}


def origin_rows(cells: pd.Series) -> pd.Series:
    """A corrected report's row-number cells as numbers; anything that is not one is <NA>."""
    found = pd.to_numeric(cells.str.strip().where(cells.str.fullmatch(r"\s*\d{1,9}\s*")), errors="coerce")
    return found.astype("Int64")


def ignored_warning(names: list[str]) -> list[str]:
    """The one warning for columns nothing reads (none when there are none)."""
    return [f"ignored unknown column(s): {listed(names)}"] if names else []


def listed(names: list[str], most: int = 10) -> str:
    """At most ``most`` names, shown safely and cut short, then how many more: a message
    stays a line whatever the file holds."""
    head = ", ".join(shown(n[:80]) for n in names[:most])
    return head + (f" and {len(names) - most:,} more" if len(names) > most else "")


def match(
    headers: list[str],
    profile: Profile,
    file_name: str,
    mapped: dict[str, str] | None = None,
    on_unknown: str = "warn",
    header_at: str = "",
) -> ColumnMap:
    """Map ``headers`` to the profile's fields, a mapping file's columns (``mapped``: folded
    header -> field, or "" for a column ignored on purpose) before the built-in aliases.
    FileError on a missing or doubled column, on more columns than any dependents sheet has
    (``MAX_COLUMNS``), and with ``on_unknown="fail"`` on a column nothing accounts for.
    ``header_at`` says where the header was read (``sheet 'X', row 3``), for the missing-column line."""
    if len(headers) > MAX_COLUMNS:
        raise FileError(
            f"{file_name}: {len(headers):,} columns; a dependents sheet has at most {MAX_COLUMNS:,}"
        )
    in_profile = set(profile.rules)
    mapped = mapped or {}
    cmap = ColumnMap({})
    seen: dict[str, str] = {}
    for pos, header in enumerate(headers):
        key = header_key(header)
        name = mapped.get(header.strip().casefold())
        if name == "":
            continue  # ignored on purpose
        f = BY_NAME[name] if name else ALIASES.get(key)
        if key in _REPORT_KEYS and name is None:
            cmap.report.append(pos)
            if _REPORT_KEYS[key] == "sourceRow" or (_REPORT_KEYS[key] == "row" and cmap.origin is None):
                cmap.origin = pos
        elif f is None or f.name not in in_profile:
            if header.strip():
                cmap.ignored.append(header.strip())
        elif f.name in seen:
            raise FileError(
                f"{file_name}: columns {shown(seen[f.name][:80])!r} and {shown(header[:80])!r} "
                f"are both {f.name}; keep one"
            )
        else:
            seen[f.name] = header
            cmap.fields[pos] = f
    missing = [f.name for f in profile.required_fields if f.name not in seen]
    if missing:
        raise FileError(
            f"{file_name}: missing required column(s): {', '.join(missing)}; "
            f"{_found(headers, header_at)}{_hint(headers)}"
        )
    if cmap.ignored and on_unknown == "fail":
        raise FileError(
            f"{file_name}: unknown column(s): {listed(cmap.ignored)}; map or ignore them in a "
            "mapping file, or pass --on-unknown-column warn"
        )
    return cmap


def _found(headers: list[str], header_at: str) -> str:
    """What the header row holds, and where it was read: the reviewer sees which sheet or row
    to fix, or which column to map."""
    where = f" ({header_at})" if header_at else ""
    named = [h.strip() for h in headers if h.strip()]
    return f"the header{where} has: {listed(named)}" if named else f"the header{where} is empty"


def _hint(headers: list[str]) -> str:
    """A header read as one cell that holds a separator: the file's delimiter was not the one used."""
    if len(headers) != 1:
        return ""
    found = next((d for d in SEPARATORS if d in headers[0]), None)
    return f"; the header is one cell holding {found!r}: pass --delimiter {found!r}" if found else ""
