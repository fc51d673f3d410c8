"""``dependents mapping suggest``: a commented draft mapping file for another system's export.

Each header is matched to a field by alias, or by closeness of spelling (its score in a
comment); a header nothing matches is listed as ``""`` for a person to decide. For each
closed-set column, every value the rules would reject is listed with the closest allowed
value, or blank. Only the headers and those columns' distinct values are kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher, get_close_matches
from pathlib import Path

import pandas as pd

from pipeline.rows.columns import ALIASES, header_key
from pipeline.rows.mapping import MAPPED_KINDS, fold
from pipeline.rows.read import Source, first_rows, open_source
from schemas import parse
from schemas.fields import Field
from schemas.rules import Profile
from schemas.synonyms import SYNONYMS

CLOSE = 0.6  # the least closeness of spelling taken as a match
LOOK_FOR_HEADER = 20  # rows searched for the header when the first one is a title
SLASHED = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{4}\s*$")


@dataclass
class Column:
    header: str
    field: Field | None = None
    score: float = 0.0  # 1.0: a built-in alias


@dataclass
class Draft:
    file: str
    sheet: str | None
    header_row: int
    columns: list[Column]
    date_order: tuple[str, str] | None = None  # the order, and why
    values: dict[str, dict[str, str | None]] = field(default_factory=dict)  # field -> value -> proposal


def suggest(path: Path, profile: Profile, sheet: str | None = None, header_row: int | None = None) -> Draft:
    if header_row is None and path.is_file():
        header_row = _header_row(first_rows(path, LOOK_FOR_HEADER, sheet), profile)
    src = open_source(path, sheet=sheet, header_row=header_row)
    columns = _columns(src.headers, profile)
    draft = Draft(src.path.name, src.sheet, header_row or 1, columns)
    _read_values(src, draft, profile)
    return draft


def _match(header: str, profile: Profile) -> tuple[Field | None, float]:
    key = header_key(header)
    if not key:
        return None, 0.0
    if key in ALIASES and ALIASES[key].name in profile.rules:
        return ALIASES[key], 1.0
    scored = [
        (SequenceMatcher(None, key, k).ratio(), f) for k, f in ALIASES.items() if f.name in profile.rules
    ]
    score, best = max(scored, key=lambda pair: pair[0])
    return (best, round(score, 2)) if score >= CLOSE else (None, 0.0)


def _matched(headers: list[str], profile: Profile) -> int:
    return sum(1 for h in headers if _match(h, profile)[0] is not None)


def _header_row(rows: list[list[str]], profile: Profile) -> int | None:
    """The first row whose cells name at least two fields: the header, under any titles."""
    return next((n for n, cells in enumerate(rows, start=1) if _matched(cells, profile) >= 2), None)


def _columns(headers: list[str], profile: Profile) -> list[Column]:
    """Each header with its field; where two headers match one field, the closer keeps it."""
    columns = [Column(h, *_match(h, profile)) for h in headers if h.strip()]
    taken: dict[str, Column] = {}
    for column in sorted(columns, key=lambda c: -c.score):
        if column.field is None:
            continue
        if column.field.name in taken:
            column.field, column.score = None, 0.0
        else:
            taken[column.field.name] = column
    return columns


def _read_values(src: Source, draft: Draft, profile: Profile) -> None:
    """The distinct cells of the closed-set columns (and birth dates, for their order)."""
    positions = {i: f for i, f in enumerate(_by_position(src.headers, draft.columns)) if f}
    closed = {i: f for i, f in positions.items() if f.kind in MAPPED_KINDS}
    dates = [i for i, f in positions.items() if f.kind == "date"]
    seen: dict[int, set[str]] = {i: set() for i in [*closed, *dates]}
    for chunk in src.chunks(100_000):
        for i in seen:
            seen[i].update(pd.unique(chunk[i].str.strip()))
    for i, f in closed.items():
        rejected = {v: _closest(f, v, profile) for v in sorted(seen[i]) if v and not _allowed(f, v, profile)}
        if rejected:
            draft.values[f.name] = rejected
    draft.date_order = _date_order(set().union(*(seen[i] for i in dates)) if dates else set())


def _by_position(headers: list[str], columns: list[Column]) -> list[Field | None]:
    by_header = {c.header: c for c in columns}
    return [by_header[h].field if h in by_header else None for h in headers]


def _allowed_values(f: Field, profile: Profile) -> list[str]:
    if f.kind == "bool":
        return [*parse.TRUE_WORDS, *parse.FALSE_WORDS]
    rule = profile.rules.get(f.name)
    return list(rule.one_of) if rule and rule.one_of else []


def _allowed(f: Field, value: str, profile: Profile) -> bool:
    return fold(value) in {fold(a) for a in _allowed_values(f, profile)}


def _closest(f: Field, value: str, profile: Profile) -> str | None:
    """A synonym other systems use, else the allowed value closest in spelling, else none."""
    allowed = _allowed_values(f, profile)
    known = SYNONYMS.get(f.name, {}).get(fold(value))
    if known in allowed:
        return known
    by_fold = {fold(a): a for a in allowed}
    found = get_close_matches(fold(value), list(by_fold), n=1, cutoff=CLOSE)
    return by_fold[found[0]] if found else None


def _date_order(values: set[str]) -> tuple[str, str] | None:
    """The order most slashed dates can only be read in (a number over 12 is a day), and why."""
    parts = [(int(m[1]), int(m[2])) for v in values if v and (m := SLASHED.match(v))]
    dmy = sum(1 for first, _ in parts if first > 12)
    mdy = sum(1 for _, second in parts if second > 12)
    if not dmy and not mdy:
        return None
    why = f"distinct dates only DMY reads: {dmy}, only MDY reads: {mdy}"
    return ("DMY" if dmy > mdy else "MDY"), why


def render(draft: Draft, profile: Profile) -> str:
    """The draft as a commented TOML mapping file."""
    q = json.dumps  # a JSON string is a valid TOML basic string
    lines = [
        f"# Draft mapping for {draft.file}, made by `dependents mapping suggest`: check every line,",
        '# fill each "" you want to keep, then: dependents import FILE --mapping THIS.toml',
    ]
    if draft.sheet:
        lines.append(f"sheet = {q(draft.sheet)}")
    if draft.header_row > 1:
        lines.append(f"header_row = {draft.header_row}  # the rows above it look like titles")
    if draft.date_order:
        order, why = draft.date_order
        lines.append(f"date_order = {q(order)}  # {why}")
    lines += ["", "[columns]"]
    width = max((len(q(c.header)) for c in draft.columns), default=0)
    for c in draft.columns:
        if c.field is None:
            lines.append(f'{q(c.header):<{width}} = ""  # no field found: name one, or leave "" to ignore it')
        else:
            how = "alias" if c.score == 1.0 else f"closeness {c.score:.2f}"
            lines.append(f"{q(c.header):<{width}} = {q(c.field.name)}  # {how}")
    for name, proposals in draft.values.items():
        f = next(c.field for c in draft.columns if c.field and c.field.name == name)
        allowed = ", ".join(_allowed_values(f, profile))
        lines += ["", f"[values.{name}]  # allowed: {allowed}"]
        for value, proposal in proposals.items():
            note = "" if proposal else "  # no allowed value found: fill one in, or delete the line"
            lines.append(f"{q(value)} = {q(proposal or '')}{note}")
    return "\n".join(lines) + "\n"
