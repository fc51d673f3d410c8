"""The code catalogue: complete, and its generated page up to date."""

from __future__ import annotations

from datetime import date

from schemas import PROFILES
from schemas.codes import BY_CODE, markdown
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
            BY_CODE[code].render(built.details[code])
        for f in profile.required_fields:
            BY_CODE[f"{f.code}_REQUIRED"].render(built.details[f"{f.code}_REQUIRED"])


def test_codes_are_upper_snake_and_unique():
    assert all(code.isupper() and " " not in code for code in BY_CODE)
