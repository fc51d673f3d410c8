"""Mapping files: how another system's export reads as a dependents sheet. A TOML file names
the sheet, the header row and the date order, maps the export's headers to API fields (or
to ``""``: ignored on purpose) and, per field, the export's values to the allowed ones.

```toml
sheet = "Dependents export"
header_row = 3
date_order = "MDY"
[columns]
"Sex" = "gender"
"Notes (internal)" = ""
[values.gender]
"M" = "Male"
```

Headers and source values match trimmed and case-insensitively; a value map is applied before
the rules, and the rejects report still shows the cell as the file held it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import tomlfile
from pipeline.errors import UsageError
from schemas import parse
from schemas.fields import BY_NAME
from schemas.rules import Profile

KEYS = {"sheet", "header_row", "date_order", "columns", "values"}
MAPPED_KINDS = ("enum", "bool")  # the fields whose values come from a closed set


@dataclass(frozen=True)
class Mapping:
    path: Path
    sheet: str | None = None
    header_row: int | None = None
    date_order: parse.DateOrder | None = None
    columns: dict[str, str] = field(default_factory=dict)  # folded header -> field name, or ""
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # field -> folded value -> value
    written: dict[str, dict[str, str]] = field(default_factory=dict)  # the same, as the file spells it

    def check(self, profile: Profile) -> None:
        """Refuse a value mapped to one the profile's rule for its field does not allow."""
        for name, mapped in self.written.items():
            allowed = _allowed(profile, name)
            for source, target in mapped.items():
                if target.strip().casefold() not in allowed:
                    raise UsageError(
                        f"{self.path}: values.{name}: {source!r} maps to {target!r}, which {name} "
                        f"does not allow (allowed: {', '.join(sorted(allowed.values()))})"
                    )


def fold(text: str) -> str:
    """The form headers and values are matched in: trimmed, case-insensitive."""
    return text.strip().casefold()


def load(path: Path) -> Mapping:
    """Read a mapping file; exit 2 naming the file, the key and why for anything wrong in it."""
    data = tomlfile.read(path)
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r} (a mapping has {', '.join(sorted(KEYS))})")
    written = _values(path, data.get("values", {}))
    return Mapping(
        path,
        sheet=_typed(path, data, "sheet", str),
        header_row=_header_row(path, data),
        date_order=_date_order(path, data),
        columns=_columns(path, data.get("columns", {})),
        values={name: {fold(s): t.strip() for s, t in mapped.items()} for name, mapped in written.items()},
        written=written,
    )


def _typed(path: Path, data: dict, key: str, kind: type) -> Any:
    value = data.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise UsageError(f"{path}: {key}: expected {kind.__name__}, found {type(value).__name__}")
    return value


def _header_row(path: Path, data: dict) -> int | None:
    row = _typed(path, data, "header_row", int)
    if row is not None and row < 1:
        raise UsageError(f"{path}: header_row: rows count from 1")
    return row


def _date_order(path: Path, data: dict) -> parse.DateOrder | None:
    order = _typed(path, data, "date_order", str)
    if order is not None and order.upper() not in ("DMY", "MDY"):
        raise UsageError(f"{path}: date_order: {order!r} is neither DMY nor MDY")
    return order.upper() if order else None


def _columns(path: Path, table: Any) -> dict[str, str]:
    if not isinstance(table, dict):
        raise UsageError(f"{path}: columns: expected a table of header = field")
    found: dict[str, str] = {}
    by_field: dict[str, str] = {}
    for header, name in table.items():
        if not isinstance(name, str) or (name and name not in BY_NAME):
            raise UsageError(f"{path}: columns.{header!r}: {name!r} is not a field ({_fields()})")
        if name and name in by_field:
            raise UsageError(f"{path}: columns {by_field[name]!r} and {header!r} both map to {name}")
        by_field[name] = header
        found[fold(header)] = name
    return found


def _values(path: Path, table: Any) -> dict[str, dict[str, str]]:
    if not isinstance(table, dict):
        raise UsageError(f"{path}: values: expected a table per field")
    found = {}
    for name, mapped in table.items():
        f = BY_NAME.get(name)
        if f is None or f.kind not in MAPPED_KINDS:
            closed = ", ".join(g.name for g in BY_NAME.values() if g.kind in MAPPED_KINDS)
            raise UsageError(f"{path}: values.{name}: only these fields' values can be mapped: {closed}")
        if not isinstance(mapped, dict) or not all(isinstance(v, str) for v in mapped.values()):
            raise UsageError(f"{path}: values.{name}: expected source = value pairs of text")
        found[name] = dict(mapped)
    return found


def _allowed(profile: Profile, name: str) -> dict[str, str]:
    """The values a field allows, folded -> as spelt."""
    f = BY_NAME[name]
    if f.kind == "bool":
        return {w: w for w in (*parse.TRUE_WORDS, *parse.FALSE_WORDS)}
    rule = profile.rules.get(name)
    return {v.casefold(): v for v in (rule.one_of if rule and rule.one_of else ())}


def _fields() -> str:
    return 'a field name, or "" to ignore the column'
