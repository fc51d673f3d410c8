"""Rebuild the sample files: ``python sample_data/build.py`` (deterministic).

``customers.csv``: a customer export. ``dependents.csv`` / ``dependents.xlsx``: the
same dependents, good rows mixed with rows that break each rule (the expected
code is in the ``notes`` column of each bad row), meant for ``--as-of 2026-11-22``.
``export.xlsx``: another system's export of dependents, read with ``export.mapping.toml``.
The XLSX stores good birth dates as real date cells, as a spreadsheet would.
"""

from __future__ import annotations

import csv
import uuid
from datetime import date
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).parent
NS = uuid.UUID("6f1c2d4e-8a9b-4c3d-9e2f-1a2b3c4d5e6f")


def cid(n: int) -> str:
    return str(uuid.uuid5(NS, f"customer-{n}"))


CUSTOMERS = [
    (1, "Thandi", "Mokoena", "thandi.mokoena@example.co.za", "0821234567"),
    (2, "Johan", "van der Merwe", "johan.vdm@example.co.za", "0837654321"),
    (3, "Aisha", "Patel", "aisha.patel@example.com", "0614442211"),
    (4, "Sipho", "Dlamini", "sipho.d@example.co.za", "0729998877"),
    (5, "Emily", "Jones", "emily.jones@example.com", "0115550101"),
    (6, "Lerato", "Khumalo", "lerato.k@example.co.za", "0795551234"),
]

HEADERS = [
    "customerId",
    "firstName",
    "middleName",
    "lastName",
    "birthDate",
    "gender",
    "relationshipType",
    "homeLanguage",
    "annualIncome",
    "phone",
    "email",
    "ssn",
    "isCovered",
    "coverageStartDate",
    "coverageEndDate",
    "isActive",
    "notes",
]


def row(c, first, last, born, **kw):
    values = {"customerId": c, "firstName": first, "lastName": last, "birthDate": born}
    values.update(kw)
    return [values.get(h, "") for h in HEADERS]


GOOD = [
    row(
        cid(1),
        "Abigail",
        "Mokoena",
        date(2019, 1, 4),
        gender="Female",
        relationshipType="Child",
        homeLanguage="isiZulu",
        phone="0821234567",
        isCovered="true",
        coverageStartDate="2024-01-01",
        coverageEndDate="2026-12-31",
        isActive="yes",
    ),
    row(
        cid(1),
        "Lwazi",
        "Mokoena",
        date(2016, 6, 30),
        gender="male",
        relationshipType="child",
        homeLanguage="english",
        ssn="123-45-6789",
    ),
    row(
        cid(2),
        "Pieter",
        "van der Merwe",
        date(2012, 3, 15),
        gender="Male",
        homeLanguage="Afrikaans",
        annualIncome="0",
        email="pieter@example.co.za",
    ),
    row(cid(2), "Anna", "Null", date(2014, 8, 9), gender="Female", notes="Surname really is Null"),
    row(
        cid(3),
        "NA",
        "Patel",
        date(2020, 2, 29),
        gender="Prefer not to say",
        ssn="000123456",
        notes="First name really is NA; leap-day birthday",
    ),
    row(cid(3), "None", "Patel", date(2022, 11, 30), relationshipType="Child"),
    row(
        cid(4),
        "Zanele",
        "Dlamini",
        date(2008, 11, 23),
        gender="Female",
        notes="17 years and 364 days old on the as-of date",
    ),
    row(cid(4), "Themba", "Dlamini", "2011-05-05T00:00:00", gender="Non-Binary", annualIncome="2147483647"),
    row(cid(5), "Oliver", "Jones", date(2026, 11, 22), notes="born on the as-of date"),
    row(cid(5), "A" * 50, "Jones", date(2018, 7, 1), notes="first name of exactly 50 characters"),
    row(cid(6), "Naledi", "Khumalo", date(2015, 1, 20), phone="0795550000", isCovered="N", isActive="1"),
    row(cid(6), "Kagiso", "Khumalo", date(2017, 9, 12)),
    row(cid(6), "Karabo", "Khumalo", date(2019, 4, 2)),
    row(cid(6), "Kamo", "Khumalo", date(2021, 12, 25), notes="the customer's fourth dependent"),
]

BAD = [
    row(cid(1), "", "Mokoena", "2018-02-02", notes="FIRST_NAME_REQUIRED"),
    row(cid(1), "Sam", "B" * 51, "2018-02-02", notes="LAST_NAME_TOO_LONG"),
    row(cid(2), "Ruan", "van der Merwe", "2019-02-30", notes="BIRTH_DATE_INVALID (no 30 February)"),
    row(cid(2), "Ilse", "van der Merwe", "04/01/2019", notes="BIRTH_DATE_INVALID (no --date-order)"),
    row(cid(3), "Ravi", "Patel", "2026-11-23", notes="BIRTH_DATE_IN_FUTURE"),
    row(cid(3), "Priya", "Patel", date(2008, 11, 22), notes="DEPENDENT_NOT_UNDER_18 (exactly 18)"),
    row(cid(4), "Bongani", "Dlamini", "2013-03-03", gender="Mal", notes="GENDER_INVALID"),
    row(cid(4), "Nomsa", "Dlamini", "2013-04-04", homeLanguage="Klingon", notes="HOME_LANGUAGE_INVALID"),
    row("not-a-uuid", "Ghost", "Row", "2015-05-05", notes="CUSTOMER_ID_INVALID"),
    row("0b9f3c55-5a5e-4a4e-9d7e-000000000000", "Nobody", "Known", "2015-05-05", notes="CUSTOMER_NOT_FOUND"),
    row(cid(5), "Harry", "Jones", "2016-01-01", annualIncome="2147483648", notes="ANNUAL_INCOME_INVALID"),
    row(cid(5), "Ella", "Jones", "2017-01-01", email="ella.at.example.com", notes="EMAIL_INVALID"),
    row(cid(5), "Finn", "Jones", "2015-01-01", ssn="12-345-6789", notes="SSN_INVALID"),
    row(cid(1), "Mia", "Mokoena", "2020-01-01", isCovered="maybe", notes="IS_COVERED_INVALID"),
    row(
        cid(2),
        "Lena",
        "van der Merwe",
        "2020-03-03",
        coverageStartDate="2025-06-01",
        coverageEndDate="2025-05-31",
        notes="COVERAGE_END_BEFORE_START",
    ),
    row(cid(3), "Arjun", "Patel", "2019-09-09", relationshipType="Cousin", notes="RELATIONSHIP_TYPE_INVALID"),
    row(cid(6), "Lesedi", "Khumalo", "2023-03-03", notes="DEPENDENT_LIMIT_REACHED (a fifth dependent)"),
    row(cid(1), " abigail ", "MOKOENA", date(2019, 1, 4), notes="DUPLICATE_IN_FILE (of row 2)"),
    row(
        cid(4),
        "",
        "C" * 60,
        "2031-01-01",
        gender="Unknown",
        ssn="1234567890123",
        notes='=HYPERLINK("http://example.com","several problems at once")',
    ),
]


def main() -> None:
    with (HERE / "customers.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "firstName", "lastName", "email", "phone"])
        w.writerows([cid(n), *rest] for n, *rest in CUSTOMERS)
    rows = [GOOD[0], *[r for pair in zip(GOOD[1:], BAD, strict=False) for r in pair], *BAD[len(GOOD) - 1 :]]
    with (HERE / "dependents.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADERS)
        w.writerows([v.isoformat() if isinstance(v, date) else v for v in r] for r in rows)
    book = Workbook()
    sheet = book.active
    sheet.title = "Dependents"
    sheet.append(HEADERS)
    for r in rows:
        sheet.append(r)
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"
            elif isinstance(cell.value, str):
                cell.data_type = "s"  # "=HYPERLINK(...)" stays text, as typed by a user with a leading '
    book.save(HERE / "dependents.xlsx")
    export()


# Another system's export: a title and a note above the header on row 3, its own headers,
# codes instead of the allowed values, US dates. ``export.mapping.toml`` reads it.
EXPORT_HEADERS = [
    "Customer ID", "First Name", "Last Name", "Date of Birth", "Sex", "Relationship",
    "Language", "Phone Number", "E-mail", "Notes (internal)",
]  # fmt: skip
EXPORT_ROWS = [
    (1, "Lerato", "Mokoena", "04/25/2019", "F", "Daughter", "Zulu", "0821110001", "lerato@example.co.za"),
    (1, "Kabelo", "Mokoena", "11/02/2016", "M", "Son", "Sotho", "0821110002", ""),
    (2, "Anke", "van der Merwe", "01/30/2020", "F", "Daughter", "Afrikaans", "", ""),
    (3, "Zara", "Patel", "07/04/2021", "X", "Daughter", "English", "0614440001", ""),  # X: mapped to nothing
    (4, "Ayanda", "Dlamini", "13/01/2018", "M", "Son", "Xhosa", "", ""),  # no 13th month
]


def export() -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "Dependents export"
    sheet.append(["Dependents export, all branches"])
    sheet.append(["Generated nightly; do not edit"])
    sheet.append(EXPORT_HEADERS)
    for n, *cells in EXPORT_ROWS:
        sheet.append([cid(n), *cells, "from the CRM"])
    book.save(HERE / "export.xlsx")


if __name__ == "__main__":
    main()
