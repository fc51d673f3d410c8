"""Every rule at its boundary: the last valid value passes, the first invalid one gets its code."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from tests.helpers import CUSTOMER, VALID, codes_for, frame_for

A = "A"

ADD_DEPENDENT = [
    # field, value, expected code (None: accepted)
    ("customerId", "", "CUSTOMER_ID_REQUIRED"),
    ("customerId", "not-a-uuid", "CUSTOMER_ID_INVALID"),
    ("customerId", "3C90C3CC-0D44-4B50-8888-8DD25736052A", None),
    ("customerId", "3c90c3cc-0d44-4b50-8888-8dd25736052", "CUSTOMER_ID_INVALID"),
    ("firstName", "", "FIRST_NAME_REQUIRED"),
    ("firstName", "   ", "FIRST_NAME_REQUIRED"),
    ("firstName", A * 50, None),
    ("firstName", A * 51, "FIRST_NAME_TOO_LONG"),
    ("firstName", f"  {A * 50}  ", None),  # trimmed before counting
    ("firstName", "Null", None),
    ("firstName", "NA", None),
    ("firstName", "None", None),
    ("lastName", "", "LAST_NAME_REQUIRED"),
    ("lastName", A * 50, None),
    ("lastName", A * 51, "LAST_NAME_TOO_LONG"),
    ("birthDate", "", "BIRTH_DATE_REQUIRED"),
    ("birthDate", "2026-11-22", None),  # today
    ("birthDate", "2026-11-23", "BIRTH_DATE_IN_FUTURE"),  # tomorrow
    ("birthDate", "2008-11-23", None),  # 17 years 364 days
    ("birthDate", "2008-11-22", "DEPENDENT_NOT_UNDER_18"),  # exactly 18
    ("birthDate", "2019-01-04T00:00:00", None),  # the contract's own sample form
    ("birthDate", "2019-01-04 13:45", None),
    ("birthDate", "2019-01-04T24:00:00", "BIRTH_DATE_INVALID"),
    ("birthDate", "2019-02-29", "BIRTH_DATE_INVALID"),  # not a leap year
    ("birthDate", "2020-02-29", None),
    ("birthDate", "2019-13-01", "BIRTH_DATE_INVALID"),
    ("birthDate", "04/01/2019", "BIRTH_DATE_INVALID"),  # never guessed without --date-order
    ("birthDate", "20190104", "BIRTH_DATE_INVALID"),
    ("birthDate", "yesterday", "BIRTH_DATE_INVALID"),
    ("gender", "", None),
    ("gender", "female", None),
    ("gender", "PREFER NOT TO SAY", None),
    ("gender", "Mal", "GENDER_INVALID"),
    ("homeLanguage", "", None),
    ("homeLanguage", "ISIZULU", None),
    ("homeLanguage", "Klingon", "HOME_LANGUAGE_INVALID"),
    # CareCycle columns in an add-dependent file are held to the CareCycle rules
    ("relationshipType", "Cousin", "RELATIONSHIP_TYPE_INVALID"),
    ("ssn", "12-345-6789", "SSN_INVALID"),
]

CARECYCLE = [
    ("customerId", "", "CUSTOMER_ID_REQUIRED"),
    ("firstName", "", None),
    ("firstName", A * 255, None),
    ("firstName", A * 256, "FIRST_NAME_TOO_LONG"),
    ("middleName", A * 255, None),
    ("middleName", A * 256, "MIDDLE_NAME_TOO_LONG"),
    ("lastName", A * 255, None),
    ("lastName", A * 256, "LAST_NAME_TOO_LONG"),
    ("dateOfBirth", "1960-05-05", None),  # no age limit in CareCycle
    ("dateOfBirth", "2026-11-22", None),
    ("dateOfBirth", "2026-11-23", "BIRTH_DATE_IN_FUTURE"),
    ("dateOfBirth", "1960-02-30", "BIRTH_DATE_INVALID"),
    ("gender", "Non-Binary", None),
    ("gender", "nonbinary", "GENDER_INVALID"),
    ("relationshipType", "spouse", None),
    ("relationshipType", "Cousin", "RELATIONSHIP_TYPE_INVALID"),
    ("annualIncome", "2147483647", None),
    ("annualIncome", "2147483648", "ANNUAL_INCOME_INVALID"),
    ("annualIncome", "-2147483648", None),
    ("annualIncome", "-2147483649", "ANNUAL_INCOME_INVALID"),
    ("annualIncome", "12.5", "ANNUAL_INCOME_INVALID"),
    ("annualIncome", "1e5", "ANNUAL_INCOME_INVALID"),
    ("annualIncome", "99999999999999999999999", "ANNUAL_INCOME_INVALID"),
    ("phone", "0" * 50, None),
    ("phone", "0" * 51, "PHONE_TOO_LONG"),
    ("email", "a@b.co", None),
    ("email", "a" * 243 + "@example.com", None),  # 255
    ("email", "a" * 244 + "@example.com", "EMAIL_TOO_LONG"),  # 256
    ("email", "ella.at.example.com", "EMAIL_INVALID"),
    ("email", "ella@example", "EMAIL_INVALID"),
    ("email", "ella @example.com", "EMAIL_INVALID"),
    ("ssn", "123-45-6789", None),
    ("ssn", "123456789", None),
    ("ssn", "12345678", "SSN_INVALID"),
    ("ssn", "1234567890", "SSN_INVALID"),
    ("isCovered", "Yes", None),
    ("isCovered", "n", None),
    ("isCovered", "0", None),
    ("isCovered", "TRUE", None),
    ("isCovered", "maybe", "IS_COVERED_INVALID"),
    ("isActive", "2", "IS_ACTIVE_INVALID"),
    ("coverageStartDate", "2025-13-01", "COVERAGE_START_DATE_INVALID"),
    ("coverageEndDate", "2025-02-29", "COVERAGE_END_DATE_INVALID"),
    ("notes", A * 1000, None),
    ("notes", A * 1001, "NOTES_TOO_LONG"),
]

# Control characters inside a text value: tab, line feed and carriage return are the last
# allowed; NUL (which PostgreSQL cannot store), the other C0 controls and U+FFFD are refused.
CONTROL = [
    *[("notes", f"line{c}two", None) for c in "\t\n\r"],
    *[("notes", f"line{c}two", "NOTES_INVALID") for c in "\x00\x08\x0b\x0c\x0e\x1f"],
    ("notes", "bell\x7f", None),  # DEL is not a C0 control; PostgreSQL and XML hold it
    ("firstName", "An\x00n", "FIRST_NAME_INVALID"),
    ("middleName", "Ma\x1fe", "MIDDLE_NAME_INVALID"),
    ("lastName", "Le\x00e", "LAST_NAME_INVALID"),
    ("phone", "082\x00123", "PHONE_INVALID"),
    ("email", "ella\x00@example.com", "EMAIL_INVALID"),
    # U+FFFD, the mark of unreadable text (and what the reports show for a control character)
    ("lastName", "Le\ufffde", "LAST_NAME_INVALID"),
    # the noncharacters beside it: UTF-8 carries them, XML (so the rejects workbook) cannot
    ("lastName", "Le\ufffee", "LAST_NAME_INVALID"),
    ("notes", "x\uffff", "NOTES_INVALID"),
    ("lastName", "Le\ufffce", None),  # the last character before them is text
    ("lastName", "Ｌｅｅ", None),  # fullwidth letters: UTF-8 starts like U+FFFD, and they are text
]


@pytest.mark.parametrize(("field", "value", "code"), ADD_DEPENDENT)
def test_add_dependent_rule(field, value, code):
    assert codes_for({field: value}) == ({code} if code else set())


@pytest.mark.parametrize(("field", "value", "code"), CARECYCLE)
def test_carecycle_rule(field, value, code):
    assert codes_for({field: value}, profile="carecycle") == ({code} if code else set())


@pytest.mark.parametrize(("field", "value", "code"), CONTROL)
def test_control_characters_in_text(field, value, code):
    assert codes_for({field: value}, profile="carecycle") == ({code} if code else set())


def test_ssn_too_long_is_also_malformed():
    assert codes_for({"ssn": "123-45-67890"}, profile="carecycle") == {"SSN_TOO_LONG", "SSN_INVALID"}


@pytest.mark.parametrize(
    ("start", "end", "codes"),
    [
        ("2025-01-01", "2025-01-01", set()),  # same day: start not after end
        ("2025-01-01", "2024-12-31", {"COVERAGE_END_BEFORE_START"}),
        ("", "2024-12-31", set()),
        ("2025-01-01", "", set()),
    ],
)
def test_coverage_end_not_before_start(start, end, codes):
    row = {"coverageStartDate": start, "coverageEndDate": end}
    assert codes_for(row, profile="carecycle") == codes


@pytest.mark.parametrize(
    ("as_of", "codes"),
    [
        (date(2026, 2, 28), set()),  # 17 on the last day of February in a non-leap year
        (date(2026, 3, 1), {"DEPENDENT_NOT_UNDER_18"}),  # 18 on 1 March
        (date(2024, 2, 28), set()),
        (date(2024, 2, 29), set()),  # born 2008-02-29: 16 in 2024
    ],
)
def test_leap_day_birthday_turns_18_on_1_march(as_of, codes):
    assert codes_for({"birthDate": "2008-02-29"}, as_of=as_of) == codes


def test_every_error_of_a_row_is_reported():
    got = codes_for({"firstName": "", "lastName": A * 51, "birthDate": "2030-01-01", "gender": "x"})
    assert got == {"FIRST_NAME_REQUIRED", "LAST_NAME_TOO_LONG", "BIRTH_DATE_IN_FUTURE", "GENDER_INVALID"}


@pytest.mark.parametrize(
    ("order", "text", "expected"),
    [
        ("DMY", "04/01/2019", date(2019, 1, 4)),
        ("MDY", "04/01/2019", date(2019, 4, 1)),
        ("DMY", "4.1.2019", date(2019, 1, 4)),
        ("DMY", "2019-01-04", date(2019, 1, 4)),  # ISO is always read
    ],
)
def test_date_order_reads_day_month_text(order, text, expected):
    frame = frame_for({**VALID["add-dependent"], "birthDate": text}, date_order=order)
    assert frame["date_of_birth__value"].iloc[0].date() == expected
    assert "BIRTH_DATE_INVALID" not in codes_for({"birthDate": text}, date_order=order)


def test_date_order_still_rejects_impossible_dates():
    assert codes_for({"birthDate": "13/01/2019"}, date_order="MDY") == {"BIRTH_DATE_INVALID"}
    assert codes_for({"birthDate": "31/02/2019"}, date_order="DMY") == {"BIRTH_DATE_INVALID"}


def test_enum_values_are_stored_in_their_canonical_spelling():
    cells = {
        **VALID["add-dependent"],
        "customerId": CUSTOMER.upper(),
        "gender": " female ",
        "homeLanguage": "isizulu",
    }
    frame = frame_for(cells)
    assert frame.loc[2, "gender"] == "Female"
    assert frame.loc[2, "home_language"] == "isiZulu"
    assert frame.loc[2, "customer_id"] == CUSTOMER


def test_the_byte_scan_for_control_characters_only_clears_never_condemns():
    """The scan reads whole Arrow buffers, so a slice may see its neighbour's bytes: a hit
    there must fall through to the per-row search, not reject the slice's rows."""
    from schemas.parse import free_of_control

    column = pd.concat([pd.Series(["Ann", "B\x00b"], dtype="str"), pd.Series([None, "Cy"], dtype="str")])
    assert free_of_control(column.reset_index(drop=True)).tolist() == [True, False, True, True]
    assert free_of_control(pd.Series(["Ann", "B\x00b", "Cy"], dtype="str").iloc[2:]).tolist() == [True]


def test_every_character_the_rules_refuse_starts_with_a_byte_the_scan_looks_for():
    """The scan may clear a column only if no refused character can hide from it."""
    import re

    import pyarrow as pa

    from schemas.parse import NOT_TEXT, _suspect_byte_in

    refused = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and re.match(NOT_TEXT, chr(c))]
    assert len(refused) == 32  # 29 C0 controls, U+FFFD, U+FFFE, U+FFFF
    assert all(_suspect_byte_in(pa.array([f"a{c}b"])) for c in refused)


CASES = ["Anna", "ANNA", "Straße", "STRASSE", "ΣΊΣΥΦΟΣ", "İstanbul", "ǅemal", "Zoë", "ﬁne", "", " x ", None]


def test_casefold_is_pythons_casefold_for_any_text():
    from schemas.parse import casefold, casefold_few

    text = pd.Series(CASES * 3, dtype="str")
    expected = [None if v is None else v.casefold() for v in CASES * 3]
    assert [None if pd.isna(v) else v for v in casefold(text)] == expected
    assert [None if pd.isna(v) else v for v in casefold_few(text)] == expected
    assert casefold(text.iloc[4:9]).index.tolist() == list(range(4, 9))
    assert casefold_few(text.iloc[4:9]).index.tolist() == list(range(4, 9))
