"""A blank import sheet for a profile: its columns in order, each header commented with its
rule, drop-down lists for the fields with allowed values, date columns formatted as dates.

The lists live on a hidden ``Lists`` sheet and the drop-downs point at them: an inline
list is limited to 255 characters, and the lookups are data that ops can extend.
"""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from pipeline.pii import open_private
from schemas import parse
from schemas.fields import Field
from schemas.rules import Profile, describe

ROWS = 1000  # rows prepared with formats and drop-downs
BOOLEAN_CHOICES = (parse.TRUE_WORDS[0], parse.FALSE_WORDS[0])  # "true", "false"


def choices(profile: Profile, f: Field) -> tuple[str, ...] | None:
    """The values a field's drop-down offers: its lookup or enum, or true/false."""
    rule = profile.rules[f.name]
    if rule.one_of:
        return tuple(rule.one_of)
    return BOOLEAN_CHOICES if f.kind == "bool" else None


def write_template(path: Path, profile: Profile) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = "Dependents"
    lists = book.create_sheet("Lists")
    lists.sheet_state = "hidden"
    sheet.freeze_panes = "A2"
    list_col = 0
    for col, f in enumerate(profile.template_fields, start=1):
        letter = get_column_letter(col)
        cell = sheet.cell(row=1, column=col, value=f.name)
        cell.font = Font(bold=True)
        cell.comment = Comment(describe(f, profile.rules[f.name]), "dependents", height=110, width=300)
        sheet.column_dimensions[letter].width = max(14, len(f.name) + 4)
        values = choices(profile, f)
        if values:
            list_col += 1
            ref = _write_list(lists, list_col, f.name, values)
            check = DataValidation(type="list", formula1=ref, allow_blank=True, showErrorMessage=True)
            check.error = f"Choose a {f.name} from the list."
            check.add(f"{letter}2:{letter}{ROWS + 1}")
            sheet.add_data_validation(check)
        number_format = {"date": "yyyy-mm-dd", "uuid": "@", "text": "@", "ssn": "@"}.get(f.kind)
        if number_format:
            for row in range(2, ROWS + 2):
                sheet.cell(row=row, column=col).number_format = number_format
        if f.kind == "uuid":
            sheet.column_dimensions[letter].width = 40
    with open_private(Path(path), "wb") as fh:
        book.save(fh)
    return Path(path)


def _write_list(lists, col: int, name: str, values: tuple[str, ...]) -> str:
    letter = get_column_letter(col)
    lists.cell(row=1, column=col, value=name)
    for i, value in enumerate(values, start=2):
        lists.cell(row=i, column=col, value=value).data_type = "s"
    return f"Lists!${letter}$2:${letter}${len(values) + 1}"
