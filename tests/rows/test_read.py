"""Reading: every cell as text, rows numbered as a spreadsheet shows them, encodings detected."""

from __future__ import annotations

import hashlib
import os
import zipfile
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

from pipeline.errors import FileError
from pipeline.rows.read import open_source
from tests.helpers import SAMPLES

FORMATS = Path(__file__).parent / "formats"

HEADER = ["firstName", "lastName", "phone", "ssn"]
ROWS = [["Zoë", "Null", "0821234567", "000123456"], ["NA", "N/A", "None", "True"]]


def cells(path: Path, **kw) -> tuple[list[str], pd.DataFrame]:
    src = open_source(path, **kw)
    return src.headers, pd.concat(list(src.chunks(1000)))


def csv_text(delimiter: str = ",") -> str:
    return "\r\n".join(delimiter.join(r) for r in [HEADER, *ROWS]) + "\r\n"


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("cp1252", b"")],
)
def test_csv_encodings_as_excel_saves_them(tmp_path, encoding, bom):
    path = tmp_path / "in.csv"
    path.write_bytes(bom + csv_text().encode(encoding))
    headers, frame = cells(path)
    assert headers == HEADER
    assert frame.values.tolist() == ROWS
    assert list(frame.index) == [2, 3]


@pytest.mark.parametrize("body", [csv_text().encode("utf-8"), csv_text().encode("cp1252")])
def test_the_fingerprint_is_the_whole_files_size_and_sha256(tmp_path, body):
    # Hashed on a thread of its own beside the decoding check, cp1252's second try included.
    path = tmp_path / "in.csv"
    path.write_bytes(body * 5000)
    src = open_source(path)
    assert (src.size, src.sha256) == (len(body) * 5000, hashlib.sha256(body * 5000).hexdigest())


def test_explicit_encoding_wins(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(csv_text().encode("latin-1"))
    assert cells(path, encoding="latin-1")[1].iloc[0, 0] == "Zoë"


def test_undecodable_text_is_a_file_error(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"firstName\n\x81\x8d\x8f\n")
    with pytest.raises(FileError, match=r"in\.csv: the text is not valid cp1252; pass --encoding"):
        open_source(path)


def test_utf16_asked_for_without_a_byte_order_mark_is_a_file_error(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(csv_text(), encoding="utf-8")
    with pytest.raises(FileError, match=r"in\.csv: the text is not valid utf-16; pass --encoding"):
        open_source(path, encoding="utf-16")


@pytest.mark.parametrize("given", ["\t", "\\t", "tab", "TAB"])
def test_a_tab_delimiter_may_be_typed_as_backslash_t_or_tab(tmp_path, given):
    path = tmp_path / "in.csv"
    path.write_text(csv_text("\t"), encoding="utf-8")
    assert cells(path, delimiter=given)[1].values.tolist() == ROWS


@pytest.mark.parametrize("given", [";;", ""])
def test_a_delimiter_of_other_than_one_character_is_a_file_error(tmp_path, given):
    path = tmp_path / "in.csv"
    path.write_text(csv_text(";"), encoding="utf-8")
    with pytest.raises(FileError, match=f"in\\.csv: the delimiter must be one character, not '{given}'"):
        open_source(path, delimiter=given)


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_sniffed(tmp_path, delimiter):
    path = tmp_path / "in.csv"
    path.write_text(csv_text(delimiter), encoding="utf-8")
    assert cells(path)[1].values.tolist() == ROWS


def test_quoted_fields_with_embedded_newlines_keep_row_numbers(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('notes,x\n"line one\nline two",1\n,\nlast,3\n', encoding="utf-8")
    _, frame = cells(path)
    assert frame.loc[2, 0] == "line one\nline two"
    assert list(frame.index) == [2, 4]  # the blank record (row 3) is skipped, numbers kept


@pytest.mark.parametrize("size", [1, 2, 1000])
def test_an_empty_line_is_a_blank_row_that_keeps_its_number(tmp_path, size):
    """A spreadsheet program shows an empty line as a blank row: the rows after it keep the
    numbers it shows, whatever the chunks."""
    path = tmp_path / "in.csv"
    path.write_text("a,b\n1,2\n\n\n3,4\n\nx,y,z\n5,6\n", encoding="utf-8")
    chunks = list(open_source(path).chunks(size))
    assert list(pd.concat(chunks).index) == [2, 5, 7, 8]
    assert {k for c in chunks for k in c.attrs.get("ragged", {})} == {7}


@pytest.mark.parametrize("size", [1, 2, 3, 1000])
def test_a_row_with_more_or_fewer_cells_is_a_row_of_its_own_and_numbers_hold(tmp_path, size):
    """Ragged rows come back among the others, cut or padded to the header, with their cell
    counts; every row keeps the number a spreadsheet shows, across chunk boundaries."""
    path = tmp_path / "in.csv"
    path.write_text('a,b\n1,2\nx,2,3\n"q\nq",4\nlone\n5,6\n7,8,9,10\n', encoding="utf-8")
    chunks = list(open_source(path).chunks(size))
    frame = pd.concat(chunks)
    assert list(frame.index) == [2, 3, 4, 5, 6, 7]
    assert frame.loc[3].tolist() == ["x", "2"] and frame.loc[5].tolist() == ["lone", ""]
    assert frame.loc[4].tolist() == ["q\nq", "4"]
    ragged = {k: v for c in chunks for k, v in c.attrs.get("ragged", {}).items()}
    assert ragged == {3: (2, 3), 5: (2, 1), 7: (2, 4)}


def test_a_quote_left_open_refuses_the_file_naming_the_row_it_opened_in(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('a,b\n1,2\n"secret-ssn-123456789,2\n3,4\n5,6\n', encoding="utf-8")
    with pytest.raises(FileError) as err:
        cells(path)
    assert (
        str(err.value)
        == "in.csv: row 3 opens a quote that is never closed (it would take in the rest of the file)"
    )


def test_chunks_are_bounded_and_numbered_across_boundaries(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("n\n" + "".join(f"{i}\n" for i in range(2500)), encoding="utf-8")
    chunks = list(open_source(path).chunks(1000))
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert chunks[1].index[0] == 1002 and chunks[1].iloc[0, 0] == "1000"


def xlsx(path: Path, rows: list[list], sheet: str = "Sheet") -> Path:
    book = Workbook()
    ws = book.active
    ws.title = sheet
    for r in rows:
        ws.append(r)
    book.save(path)
    return path


def test_xlsx_date_cells_text_cells_and_blank_rows(tmp_path):
    path = xlsx(
        tmp_path / "in.xlsx",
        [
            ["firstName", "birthDate", "phone", "income"],
            ["Null", date(2019, 1, 4), "0821234567", 50000],
            [None, None, None, None],
            ["True", datetime(2019, 1, 4, 0, 0), 821234567, 12.5],
            ["NA", "04/01/2019", None, None],
        ],
    )
    headers, frame = cells(path)
    assert headers == ["firstName", "birthDate", "phone", "income"]
    assert list(frame.index) == [2, 4, 5]
    assert frame.loc[2].tolist() == ["Null", "2019-01-04", "0821234567", "50000"]
    assert frame.loc[4].tolist() == ["True", "2019-01-04", "821234567", "12.5"]
    assert frame.loc[5].tolist() == ["NA", "04/01/2019", "", ""]


def test_xlsx_named_sheet_and_header_below_blank_rows(tmp_path):
    book = Workbook()
    book.active.append(["ignored"])
    ws = book.create_sheet("Dependents")
    ws.append([])
    ws.append(["firstName"])
    ws.append(["Ann"])
    book.save(tmp_path / "in.xlsx")
    headers, frame = cells(tmp_path / "in.xlsx", sheet="Dependents")
    assert headers == ["firstName"] and frame.loc[3, 0] == "Ann"
    with pytest.raises(FileError, match=r"no sheet named 'Nope' \(sheets: Sheet, Dependents\)"):
        open_source(tmp_path / "in.xlsx", sheet="Nope")


def test_xlsx_used_range_away_from_a1_keeps_sheet_rows_and_columns(tmp_path):
    """The table starts at C3: blank columns A and B stay (empty headers), rows keep their
    sheet numbers, and chunks that split the rows join up without a gap."""
    book = Workbook()
    ws = book.active
    ws["C3"], ws["D3"] = "firstName", "lastName"
    for n in range(4, 9):
        ws[f"C{n}"], ws[f"D{n}"] = f"Ann{n}", f"Lee{n}"
    ws["D10"] = "Last"
    book.save(tmp_path / "in.xlsx")
    src = open_source(tmp_path / "in.xlsx")
    assert src.headers == ["", "", "firstName", "lastName"]
    assert src.estimated_rows == 7
    chunks = list(src.chunks(2))
    assert [list(c.index) for c in chunks] == [[4, 5], [6, 7], [8], [10]]
    frame = pd.concat(chunks)
    assert frame.loc[4].tolist() == ["", "", "Ann4", "Lee4"]
    assert frame.loc[10].tolist() == ["", "", "", "Last"]


def test_a_damaged_workbook_or_a_zip_bomb_is_refused(tmp_path):
    (tmp_path / "damaged.xlsx").write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    with pytest.raises(FileError, match=r"damaged\.xlsx: a damaged workbook"):
        open_source(tmp_path / "damaged.xlsx")
    with zipfile.ZipFile(tmp_path / "bomb.xlsx", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"0" * 50_000_000)
    with pytest.raises(FileError, match="refused as unsafe"):
        open_source(tmp_path / "bomb.xlsx")


def test_a_row_longer_than_the_readers_block_names_the_likely_cause(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("firstName,lastName\n" + "a" * (3 << 20) + ",b\nAnn,Lee\n", encoding="utf-8")
    src = open_source(path)
    with pytest.raises(FileError, match=r"in\.csv: a row is longer than 1 MB; is a quote left open\?$"):
        list(src.chunks(1000))


def test_a_password_protected_workbook_is_named_as_such():
    """``formats/locked.xlsx``: the sample workbook encrypted by msoffcrypto-tool, as Excel does."""
    with pytest.raises(
        FileError, match=r"^locked\.xlsx: the workbook is password-protected; save it without one$"
    ):
        open_source(FORMATS / "locked.xlsx")


@pytest.mark.parametrize("name", ["dependents.xlsx", "dependents.xls", "dependents.ods", "dependents.xlsb"])
def test_every_workbook_format_reads_the_same_rows(name):
    """``formats/``: the sample workbook saved as .xls and .ods by LibreOffice, and written as
    .xlsb by pyxlsbwriter (LibreOffice reads .xlsb but does not write it)."""
    src = open_source(SAMPLES / name if name.endswith("x") else FORMATS / name)
    frame = pd.concat(src.chunks(10))
    expected = pd.concat(open_source(SAMPLES / "dependents.xlsx").chunks(10))
    assert src.headers == open_source(SAMPLES / "dependents.xlsx").headers
    pd.testing.assert_frame_equal(frame, expected)


def test_the_format_is_the_contents_not_the_name(tmp_path):
    (tmp_path / "export.xlsx").write_text("firstName,lastName\nAnn,Lee\n", encoding="utf-8")
    src = open_source(tmp_path / "export.xlsx")
    assert (src.kind, src.headers) == ("csv", ["firstName", "lastName"])
    (tmp_path / "renamed.csv").write_bytes((FORMATS / "dependents.xls").read_bytes())
    assert open_source(tmp_path / "renamed.csv").kind == "workbook"
    (tmp_path / "image.csv").write_bytes(bytes(range(256)) * 16)
    with pytest.raises(
        FileError, match=r"^image\.csv: neither a workbook \(.xlsx, .xls, .xlsb, .ods\) nor CSV text$"
    ):
        open_source(tmp_path / "image.csv")


def test_a_csv_that_grows_while_it_is_read_is_refused_after_the_last_chunk(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(csv_text(), encoding="utf-8")
    src = open_source(path)
    with path.open("a", encoding="utf-8") as fh:  # the export is still being written
        fh.write("Late,Row,1,2\r\n")
    chunks = src.chunks(1)
    assert len(next(chunks)) == 1
    with pytest.raises(FileError, match=r"in\.csv: the file changed while it was being imported"):
        list(chunks)


def test_a_workbook_saved_again_while_it_is_read_is_refused(tmp_path):
    path = xlsx(tmp_path / "in.xlsx", [HEADER, *ROWS])
    src = open_source(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    with pytest.raises(FileError, match="the file changed while it was being imported"):
        list(src.chunks(1000))


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileError, match="no such file"):
        open_source(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(FileError, match="the file is empty"):
        open_source(tmp_path / "empty.csv")


def _stored_zip(path: Path, parts: dict[str, bytes]) -> Path:
    """A zip whose parts are stored, not deflated: its ratio is 1, only its size counts."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(("limit", "refused"), [(10_000, False), (9_999, True)])
def test_a_workbook_unpacking_past_the_set_size_is_refused_before_it_is_parsed(tmp_path, limit, refused):
    path = _stored_zip(tmp_path / "w.xlsx", {"xl/worksheets/sheet1.xml": b"0" * 10_000})
    if refused:
        with pytest.raises(FileError, match=r"would unpack to 10,000 bytes.*at most 9,999 bytes"):
            open_source(path, max_unpacked=limit)
    else:  # past the size check: calamine is what refuses this one (it is no real workbook)
        with pytest.raises(FileError, match="cannot read the workbook"):
            open_source(path, max_unpacked=limit)


def test_a_workbook_part_declaring_a_doctype_is_refused(tmp_path):
    lol = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><worksheet>&lol;</worksheet>'
    path = _stored_zip(
        tmp_path / "w.xlsx", {"[Content_Types].xml": b"<Types/>", "xl/worksheets/sheet1.xml": lol}
    )
    with pytest.raises(FileError, match=r"w.xlsx: its part xl/worksheets/sheet1.xml declares a DOCTYPE"):
        open_source(path)


def test_max_unpacked_size_takes_units(sqlite_url, tmp_path):
    from tests.helpers import invoke

    path = _stored_zip(tmp_path / "w.xlsx", {"xl/worksheets/sheet1.xml": b"0" * 2048})
    result = invoke("import", path, "--db", sqlite_url, "--max-unpacked-size", "1k")
    assert result.exit_code == 2 and "at most 1,024 bytes" in result.stderr
    bad = invoke("import", path, "--db", sqlite_url, "--max-unpacked-size", "lots")
    assert bad.exit_code == 2 and "'lots' is not a size" in bad.stderr
