"""The dependent's fields: one declaration each, shared by both contracts.

A field has the name the APIs use (``birthDate``), the snake_case column it is
stored in, the prefix of its notification codes (``BIRTH_DATE``), the kind of
value it holds (which decides how text is parsed) and the other header spellings
it is known by in spreadsheets. Profiles (``carecycle``, ``add_dependent``)
attach rules to these fields; nothing else is declared twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["text", "uuid", "date", "enum", "bool", "int", "email", "ssn"]


@dataclass(frozen=True)
class Field:
    name: str
    column: str
    code: str
    kind: Kind = "text"
    aliases: tuple[str, ...] = ()

    @property
    def typed(self) -> bool:
        """Whether the field has a parsed value beside its text (dates, numbers, booleans)."""
        return self.kind in ("date", "int", "bool")

    @property
    def value_column(self) -> str:
        """The frame column that holds the parsed value of a typed field."""
        return f"{self.column}__value" if self.typed else self.column


FIELDS: tuple[Field, ...] = (
    Field("customerId", "customer_id", "CUSTOMER_ID", "uuid", ("profileKey", "customer")),
    Field("firstName", "first_name", "FIRST_NAME"),
    Field("middleName", "middle_name", "MIDDLE_NAME"),
    Field("lastName", "last_name", "LAST_NAME"),
    Field("birthDate", "date_of_birth", "BIRTH_DATE", "date", ("dateOfBirth", "DOB")),
    Field("gender", "gender", "GENDER", "enum", ("sex",)),
    Field("relationshipType", "relationship_type", "RELATIONSHIP_TYPE", "enum", ("relationship",)),
    Field("homeLanguage", "home_language", "HOME_LANGUAGE", "enum", ("language",)),
    Field("annualIncome", "annual_income", "ANNUAL_INCOME", "int"),
    Field("phone", "phone", "PHONE"),
    Field("email", "email", "EMAIL", "email"),
    Field("ssn", "ssn", "SSN", "ssn"),
    Field("isCovered", "is_covered", "IS_COVERED", "bool"),
    Field("coverageStartDate", "coverage_start_date", "COVERAGE_START_DATE", "date"),
    Field("coverageEndDate", "coverage_end_date", "COVERAGE_END_DATE", "date"),
    Field("isActive", "is_active", "IS_ACTIVE", "bool"),
    Field("notes", "notes", "NOTES"),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
BY_COLUMN: dict[str, Field] = {f.column: f for f in FIELDS}

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
