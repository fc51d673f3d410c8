"""The code catalogue: complete, and its generated page up to date."""

from __future__ import annotations

from datetime import date

from schemas import PROFILES
from schemas.codes import BY_CODE, OPTIONAL, markdown
from schemas.fields import BY_NAME
from schemas.rules import build
from tests.helpers import ROOT


def test_docs_page_is_generated_from_the_catalogue():
    page = (ROOT / "docs" / "notification-codes.md").read_text(encoding="utf-8")
    assert page == markdown(), "docs/notification-codes.md is stale: run `make docs`"


def test_every_code_a_schema_can_give_is_in_the_catalogue_and_renders():
    for profile in PROFILES.values():
        built = build(profile, date(2026, 11, 22), None)
        checks = [c.error for col in built.schema.columns.values() for c in col.checks]
        for code in checks:
            assert code in BY_CODE, code
            per_row = {k: "x" for k in BY_CODE[code].data if k not in OPTIONAL}
            BY_CODE[code].render(built.details[code] | per_row)
        for f in profile.required_fields:
            BY_CODE[f"{f.code}_REQUIRED"].render(built.details[f"{f.code}_REQUIRED"])


def test_codes_are_upper_snake_and_unique():
    assert all(code.isupper() and " " not in code for code in BY_CODE)


PERSONAL = {"firstName", "middleName", "lastName", "birthDate", "ssn", "email", "phone"}


def test_only_codes_of_fields_without_personal_data_carry_the_value():
    for profile in PROFILES.values():
        built = build(profile, date(2026, 11, 22), None)
        for code, details in built.details.items():
            if code in BY_CODE and "value" in BY_CODE[code].data:
                assert BY_NAME[details["field"]].name not in PERSONAL, code
                assert "{value}" in BY_CODE[code].text and details.get("allowed"), code


def test_an_enum_message_names_the_value_and_the_allowed_values():
    details = {"field": "relationshipType", "value": "Son", "allowed": ["Spouse", "Child", "Parent"]}
    text = BY_CODE["RELATIONSHIP_TYPE_INVALID"].render(details)
    assert text == 'relationshipType "Son" is not one of: Spouse, Child, Parent.'


def test_a_hint_is_a_sentence_after_the_text_and_nothing_without_one():
    code = BY_CODE["BIRTH_DATE_INVALID"]
    assert code.render({"field": "birthDate"}) == "birthDate is not a real date in a format the import reads."
    hinted = code.render({"field": "birthDate", "hint": "Pass --date-order."})
    assert hinted == "birthDate is not a real date in a format the import reads. Pass --date-order."
