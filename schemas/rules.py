"""Rules as declarations, and the one function that turns them into a Pandera schema.

A profile is a table: field -> Rule. ``build`` turns that table into a
``pandera.DataFrameSchema`` whose every check carries its notification code as
its ``error``, so a failure case names its code directly. Nothing here knows
about files or databases.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.pandas import Check, Column

from schemas import parse
from schemas.fields import BY_NAME, FIELDS, Field


@dataclass(frozen=True)
class Rule:
    """What one contract demands of one field. Every part is optional."""

    required: bool = False
    max_length: int | None = None
    one_of: tuple[str, ...] | None = None  # canonical spellings; matched case-insensitively
    minimum: int | None = None
    maximum: int | None = None
    not_future: bool = False
    under_age: int | None = None
    not_before: tuple[str, str] | None = None  # (other date field, code)
    lookup: str | None = None  # ``one_of`` is this lookup's list: the defaults until the database's is read


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    rules: dict[str, Rule]
    template: tuple[str, ...] = ()  # the fields a blank import sheet offers; all when empty

    @property
    def template_fields(self) -> list[Field]:
        """Every column the profile stores, in the fields' own order (or ``template``'s)."""
        if self.template:
            return [BY_NAME[name] for name in self.template]
        return [f for f in FIELDS if f.name in self.rules]

    @property
    def lookups(self) -> dict[str, str]:
        """Lookup name -> the field it serves, for the lookups this profile's rules use."""
        return {rule.lookup: name for name, rule in self.rules.items() if rule.lookup}

    def with_lookups(self, values: dict[str, tuple[str, ...]]) -> Profile:
        """The same profile with its lookup fields allowing ``values`` (lookup name -> values)."""
        rules = {
            name: replace(rule, one_of=values[rule.lookup]) if rule.lookup in values else rule
            for name, rule in self.rules.items()
        }
        return replace(self, rules=rules)

    @property
    def fields(self) -> list[Field]:
        return [BY_NAME[name] for name in self.rules]

    @property
    def required_fields(self) -> list[Field]:
        return [BY_NAME[name] for name, rule in self.rules.items() if rule.required]


@dataclass
class Built:
    """A profile's Pandera schema for one run, and the additionalData of each code."""

    schema: pa.DataFrameSchema
    details: dict[str, dict[str, Any]] = field(default_factory=dict)


def required_code(f: Field) -> str:
    return f"{f.code}_REQUIRED"


def span_column(f: Field, other: Field) -> str:
    """Derived column: days from ``other`` to ``f`` (negative when ``f`` comes first)."""
    return f"{f.column}__days_after_{other.column}"


def derive(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Add the cross-field columns the schema checks (e.g. coverage end minus start)."""
    for name, rule in profile.rules.items():
        if rule.not_before and name in _present(frame, profile):
            f, other = BY_NAME[name], BY_NAME[rule.not_before[0]]
            if other.value_column in frame:
                gap = frame[f.value_column] - frame[other.value_column]
                frame[span_column(f, other)] = gap.dt.days.astype("Int64")
    return frame


def _present(frame: pd.DataFrame, profile: Profile) -> set[str]:
    return {f.name for f in profile.fields if f.column in frame}


def build(profile: Profile, as_of: date, date_order: parse.DateOrder | None) -> Built:
    """One Pandera schema for ``profile`` on ``as_of``; every column optional, every check coded."""
    built = Built(pa.DataFrameSchema({}, strict=False))
    columns: dict[str, Column] = {}
    for name, rule in profile.rules.items():
        f = BY_NAME[name]
        text_checks, value_checks = _checks(f, rule, as_of, date_order, built.details)
        built.details[required_code(f)] = {"field": f.name}
        columns[f.column] = Column(nullable=not rule.required, required=False, checks=text_checks)
        if value_checks:
            columns[f.value_column] = Column(nullable=True, required=False, checks=value_checks)
        if rule.not_before:
            other, code = BY_NAME[rule.not_before[0]], rule.not_before[1]
            built.details[code] = {"field": f.name, "notBefore": other.name}
            columns[span_column(f, other)] = Column(
                nullable=True, required=False, checks=[Check.ge(0, error=code)]
            )
    built.schema = pa.DataFrameSchema(columns, strict=False, coerce=False)
    return built


def _checks(
    f: Field,
    rule: Rule,
    as_of: date,
    date_order: parse.DateOrder | None,
    details: dict[str, dict[str, Any]],
) -> tuple[list[Check], list[Check]]:
    """The checks on a field's text, and on its parsed value."""
    invalid, text, value = f"{f.code}_INVALID", [], []
    details[invalid] = {"field": f.name}
    if rule.max_length is not None:
        code = f"{f.code}_TOO_LONG"
        details[code] = {"field": f.name, "limit": rule.max_length}
        text.append(Check.str_length(max_value=rule.max_length, error=code))
    if f.kind in ("text", "email"):  # the other kinds' patterns and lookups admit no control character
        text.append(Check(parse.free_of_control, error=invalid))
    if f.kind in ("uuid", "email", "ssn"):
        pattern = {"uuid": parse.UUID, "email": parse.EMAIL, "ssn": parse.SSN}[f.kind]
        text.append(Check(lambda s, p=pattern: s.str.fullmatch(p), error=invalid))
    elif f.kind == "enum":
        assert rule.one_of, f"{f.name}: an enum needs its allowed values"
        details[invalid]["allowed"] = list(rule.one_of)
        text.append(Check.isin(rule.one_of, error=invalid))
    elif f.kind == "date":
        text.append(Check(lambda s: parse.dates(s, date_order).notna(), error=invalid))
    elif f.kind == "bool":
        details[invalid]["allowed"] = [*parse.TRUE_WORDS, *parse.FALSE_WORDS]
        text.append(Check(lambda s: parse.casefold_few(s).isin(parse.BOOLEANS), error=invalid))
    elif f.kind == "int":
        text.append(Check(lambda s: s.str.fullmatch(parse.INTEGER), error=invalid))
        if rule.minimum is not None or rule.maximum is not None:
            details[invalid].update(minimum=rule.minimum, maximum=rule.maximum)
            value.append(Check.in_range(rule.minimum, rule.maximum, error=invalid))
    if rule.not_future:
        code = f"{f.code}_IN_FUTURE"
        details[code] = {"field": f.name, "asOf": as_of.isoformat()}
        value.append(Check.le(pd.Timestamp(as_of), error=code))
    if rule.under_age is not None:
        code = f"DEPENDENT_NOT_UNDER_{rule.under_age}"
        details[code] = {"field": f.name, "limit": rule.under_age, "asOf": as_of.isoformat()}
        value.append(Check(lambda s, n=rule.under_age: parse.age_on(s, as_of) < n, error=code))
    return text, value


def describe(f: Field, rule: Rule) -> str:
    """The rule in words, for a template's header comment."""
    parts = ["Required." if rule.required else "Optional."]
    kind_words = {
        "uuid": "A UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).",
        "date": "A date (YYYY-MM-DD).",
        "bool": "true or false (also yes/no, y/n, 1/0).",
        "int": "A whole number.",
        "email": "An email address.",
        "ssn": "An SSN: ddd-dd-dddd or 9 digits.",
    }
    if f.kind in kind_words:
        parts.append(kind_words[f.kind])
    if rule.max_length is not None:
        parts.append(f"At most {rule.max_length} characters.")
    if rule.one_of:
        parts.append(f"One of: {', '.join(rule.one_of)}.")
    if rule.minimum is not None or rule.maximum is not None:
        parts.append(f"From {rule.minimum} to {rule.maximum}.")
    if rule.not_future:
        parts.append("Not after the import's as-of date.")
    if rule.under_age is not None:
        parts.append(f"The dependent must be under {rule.under_age} on the as-of date.")
    if rule.not_before:
        parts.append(f"Not before {rule.not_before[0]}.")
    return " ".join(parts)
