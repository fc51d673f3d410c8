"""The notification-code catalogue: every code the importer can give, with its text.

Codes are public and stable: reports, the ``import_rejects`` table and systems
downstream key on them. Texts are templates filled from the notification's
``additionalData`` (``{limit}``, ``{asOf}``...). Only the codes of fields that hold no
personal data (gender, relationship, home language, the booleans) carry the rejected
value (``{value}``) and the allowed ones, so a reviewer sees what to type; a name, birth
date, SSN, email or phone never reaches a message.

``docs/notification-codes.md`` is generated from this table
(``python -m schemas.codes > docs/notification-codes.md``); a test fails when it is stale.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Code:
    code: str
    text: str
    stage: str = "row"  # "row": the row alone decides; "database": needs the database
    severity: str = "Error"
    verdict: int | None = None  # a database code's number in the decision's SQL
    data: tuple[str, ...] = ()  # additionalData beyond its field that differs row by row

    def render(self, details: dict[str, Any]) -> str:
        """The text filled from ``details``: a list reads as ``a, b, c``; an optional per-row
        key (``hint``) is a sentence after the text, or nothing where a row lacks it."""
        filled = {k: ", ".join(map(str, v)) if isinstance(v, list) else v for k, v in details.items()}
        hints = {k: f" {filled[k]}" if k in filled else "" for k in OPTIONAL}
        return self.text.format(**{**filled, **hints})


OPTIONAL = ("hint",)  # per-row keys only some rows of a code carry
DATE_ORDER_HINT = "Day/month/year dates need --date-order DMY or MDY."


def _enum(prefix: str, field: str) -> Code:
    """An enum or lookup field's ``_INVALID``: the value given and the values allowed."""
    return Code(f"{prefix}_INVALID", field + ' "{value}" is not one of: {allowed}.', data=("value",))


def _not_bool(prefix: str, field: str) -> Code:
    return Code(
        f"{prefix}_INVALID",
        field + ' "{value}" is not a boolean (true/false, yes/no, y/n, 1/0).',
        data=("value",),
    )


def _not_date(prefix: str, field: str) -> Code:
    """A date field's ``_INVALID``: never the value (a birth date is personal); a day/month/year
    date read without ``--date-order`` says to pass it."""
    return Code(
        f"{prefix}_INVALID", field + " is not a real date in a format the import reads.{hint}", data=("hint",)
    )


def _not_text(prefix: str, field: str) -> Code:
    """A text field's ``_INVALID``: a control character, U+FFFE, U+FFFF or U+FFFD (``parse.NOT_TEXT``)."""
    return Code(
        f"{prefix}_INVALID",
        f"{field} holds a control character (such as NUL), a noncharacter (U+FFFE, U+FFFF) "
        "or \ufffd, the mark of unreadable text.",
    )


CATALOGUE: tuple[Code, ...] = (
    Code("ROW_CELL_COUNT", "The row has {found} cells where the header has {expected}."),
    Code(
        "CELL_TOO_LONG",
        "The cell in column {column} is longer than {limit} characters, all a spreadsheet cell holds.",
    ),
    Code("CUSTOMER_ID_REQUIRED", "customerId is required."),
    Code("CUSTOMER_ID_INVALID", "customerId is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."),
    Code("FIRST_NAME_REQUIRED", "firstName is required."),
    Code("FIRST_NAME_TOO_LONG", "firstName is longer than {limit} characters."),
    _not_text("FIRST_NAME", "firstName"),
    Code("MIDDLE_NAME_TOO_LONG", "middleName is longer than {limit} characters."),
    _not_text("MIDDLE_NAME", "middleName"),
    Code("LAST_NAME_REQUIRED", "lastName is required."),
    Code("LAST_NAME_TOO_LONG", "lastName is longer than {limit} characters."),
    _not_text("LAST_NAME", "lastName"),
    Code("BIRTH_DATE_REQUIRED", "birthDate is required."),
    _not_date("BIRTH_DATE", "birthDate"),
    Code("BIRTH_DATE_IN_FUTURE", "birthDate is after the as-of date {asOf}."),
    Code("DEPENDENT_NOT_UNDER_18", "The dependent is not under {limit} on {asOf}."),
    _enum("GENDER", "gender"),
    _enum("RELATIONSHIP_TYPE", "relationshipType"),
    _enum("HOME_LANGUAGE", "homeLanguage"),
    Code("ANNUAL_INCOME_INVALID", "annualIncome is not a whole number from {minimum} to {maximum}."),
    Code("PHONE_TOO_LONG", "phone is longer than {limit} characters."),
    _not_text("PHONE", "phone"),
    Code("EMAIL_TOO_LONG", "email is longer than {limit} characters."),
    Code("EMAIL_INVALID", "email is not a well-formed address."),
    Code("SSN_TOO_LONG", "ssn is longer than {limit} characters."),
    Code(
        "SSN_INVALID",
        "ssn is not a well-formed SSN (ddd-dd-dddd or 9 digits); reports mask all but its last "
        "four characters, keeping its shape (--include-pii shows it whole).",
    ),
    _not_bool("IS_COVERED", "isCovered"),
    _not_bool("IS_ACTIVE", "isActive"),
    _not_date("COVERAGE_START_DATE", "coverageStartDate"),
    _not_date("COVERAGE_END_DATE", "coverageEndDate"),
    Code("COVERAGE_END_BEFORE_START", "coverageEndDate is before coverageStartDate."),
    Code("NOTES_TOO_LONG", "notes is longer than {limit} characters."),
    _not_text("NOTES", "notes"),
    Code("CUSTOMER_NOT_FOUND", "No customer with this customerId exists.", "database", verdict=1),
    Code(
        "DEPENDENT_LIMIT_REACHED",
        "The customer already has {count} dependents; self-service channels may add at most {limit}.",
        "database",
        verdict=4,
        data=("limit", "count"),
    ),
    Code(
        "DUPLICATE_IN_FILE",
        "The same dependent is already in this file at row {row}.",
        "database",
        verdict=3,
        data=("row",),
    ),
    Code(
        "DEPENDENT_ALREADY_EXISTS", "This dependent already exists for the customer.", "database", verdict=2
    ),
)

BY_CODE: dict[str, Code] = {c.code: c for c in CATALOGUE}
ORDER: dict[str, int] = {c.code: i for i, c in enumerate(CATALOGUE)}
BY_VERDICT: dict[int, Code] = {c.verdict: c for c in CATALOGUE if c.verdict is not None}
VERDICT = {c.code: c.verdict for c in BY_VERDICT.values()}  # for the decision's SQL: ``{DUPLICATE_IN_FILE}``


def markdown() -> str:
    """The catalogue as the Markdown page ``docs/notification-codes.md``."""
    lines = [
        "# Notification codes",
        "",
        "Generated from `schemas/codes.py` by `make docs`; do not edit by hand.",
        "",
        "Every rejected row carries one notification per problem, shaped like the Add Dependent",
        "ApiResponse envelope: `severity`, `code`, `text`, `additionalData` (the field, and the",
        "limit where there is one). *row* codes are decided by the row alone; *database* codes",
        "need the database (the customer, the dependents already stored, earlier rows of the file).",
        "",
        "Only the codes whose *per row* column names `value` put the rejected cell in the",
        "message (cut to 60 characters): fields that hold no personal data. Names, birth",
        "dates, SSNs, emails and phones never appear in a message.",
        "",
        "| code | stage | severity | per row | text |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| `{c.code}` | {c.stage} | {c.severity} | {', '.join(c.data)} | {c.text} |" for c in CATALOGUE
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
