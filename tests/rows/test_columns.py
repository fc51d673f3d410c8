"""Headers: matched forgivingly, missing ones named, unknown ones warned about."""

from __future__ import annotations

import pytest

from pipeline.errors import FileError
from pipeline.rows.columns import MAX_COLUMNS, match
from schemas import PROFILES

ADD = PROFILES["add-dependent"]


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("birthDate", "birthDate"),
        ("dateOfBirth", "birthDate"),
        ("DOB", "birthDate"),
        ("date_of_birth", "birthDate"),
        ("Date of Birth", "birthDate"),
        ("customerId", "customerId"),
        ("profileKey", "customerId"),
        ("Customer", "customerId"),
        ("customer-id", "customerId"),
        ("relationship", "relationshipType"),
        ("RELATIONSHIP_TYPE", "relationshipType"),
        ("language", "homeLanguage"),
        ("Home Language", "homeLanguage"),
        ("FIRST NAME", "firstName"),
    ],
)
def test_header_spellings_and_aliases(header, field):
    headers = [h for h in ["customerId", "firstName", "lastName", "birthDate"] if h != field] + [header]
    cmap = match(headers, ADD, "f.csv")
    assert cmap.fields[len(headers) - 1].name == field


def test_unknown_columns_are_ignored_with_a_warning_naming_them():
    cmap = match(["customerId", "firstName", "lastName", "birthDate", "Shoe size", "Team"], ADD, "f.csv")
    assert cmap.warnings == ["ignored unknown column(s): Shoe size, Team"]


def test_a_header_cannot_send_the_terminal_control_codes():
    cmap = match(["customerId", "firstName", "lastName", "birthDate", "\x1b]0;owned\x07Notes"], ADD, "f.csv")
    assert cmap.warnings == ["ignored unknown column(s): \\x1b]0;owned\\x07Notes"]


def test_a_missing_required_column_is_named_with_the_headers_found_and_where():
    said = r"^f\.xlsx: missing required column\(s\): birthDate; the header \(sheet 'Kids', row 3\) has: "
    with pytest.raises(FileError, match=said + r"customerId, firstName, lastName, Born$"):
        match(["customerId", "firstName", "lastName", "Born"], ADD, "f.xlsx", header_at="sheet 'Kids', row 3")


def test_carecycle_needs_only_the_customer():
    assert match(["profileKey"], PROFILES["carecycle"], "f.csv").fields[0].name == "customerId"


def test_two_columns_for_one_field_are_refused():
    with pytest.raises(FileError, match="columns 'DOB' and 'birthDate' are both birthDate"):
        match(["customerId", "firstName", "lastName", "DOB", "birthDate"], ADD, "f.csv")


def test_a_rejects_reports_own_columns_are_ignored_silently():
    cmap = match(["row", "codes", "messages", "customerId", "firstName", "lastName", "DOB"], ADD, "f.csv")
    assert cmap.report == [0, 1, 2] and cmap.warnings == []
    assert cmap.origin == 0  # a report without sourceRow: its row is where each row came from


@pytest.mark.parametrize("headers", [["row", "sourceRow"], ["Source Row", "row"]])
def test_a_reports_source_row_is_each_rows_origin(headers):
    cmap = match([*headers, "codes", "messages", "customerId", "firstName", "lastName", "DOB"], ADD, "f.csv")
    assert cmap.report == [0, 1, 2, 3] and cmap.origin == headers.index(
        next(h for h in headers if h != "row")
    )


def test_a_file_that_is_no_report_has_no_origin_column():
    assert match(["customerId", "firstName", "lastName", "DOB"], ADD, "f.csv").origin is None


REQUIRED = ["customerId", "firstName", "lastName", "birthDate"]


@pytest.mark.parametrize(("extra", "refused"), [(MAX_COLUMNS - 4, False), (MAX_COLUMNS - 3, True)])
def test_a_header_of_more_than_a_thousand_columns_is_refused(extra, refused):
    headers = REQUIRED + [f"extra {i}" for i in range(extra)]
    if refused:
        with pytest.raises(FileError, match=r"^f.csv: 1,001 columns; a dependents sheet has at most 1,000$"):
            match(headers, ADD, "f.csv")
    else:
        assert len(match(headers, ADD, "f.csv").ignored) == extra


def test_the_unknown_columns_warning_names_ten_and_counts_the_rest():
    headers = REQUIRED + [f"x{i}" for i in range(25)]
    (warning,) = match(headers, ADD, "f.csv").warnings
    assert warning == "ignored unknown column(s): " + ", ".join(f"x{i}" for i in range(10)) + " and 15 more"
