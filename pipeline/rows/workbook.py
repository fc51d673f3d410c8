"""Workbooks (.xlsx, .xlsm, .xlsb, .xls, .ods) -> rows of text cells, as a spreadsheet shows
them (python-calamine)."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from datetime import date, datetime, time
from itertools import islice
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pipeline.errors import FileError, shown
from pipeline.rows.read import OLE_MAGIC, ZIP_MAGIC, Source, drop_blank, sha256_of, stat_of

# A password-protected .xlsx is an OLE compound file holding this stream (its name in UTF-16).
ENCRYPTED = "EncryptedPackage".encode("utf-16-le")
MAX_XLSX_RATIO = 200  # zip bombs compress thousands of times over; real sheets 5-20x
MAX_UNPACKED = 1 << 30  # bytes: a full sheet of Excel's 1,048,576 rows unpacks to far less
PROLOG = 64 * 1024  # bytes of each XML part read for a DOCTYPE, which must precede its root


def open_workbook(
    path: Path, sheet: str | None, max_unpacked: int = MAX_UNPACKED, header_row: int | None = None
) -> Source:
    """The workbook's sheet (``sheet``, else the first), its header the first row with a cell
    in it, or row ``header_row`` (the rows above it skipped: titles, notes)."""
    before = stat_of(path)
    size, digest = sha256_of(path)
    _check_container(path, max_unpacked)
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        names = book.sheet_names
        if not names:
            raise FileError(f"{path.name}: the workbook has no sheet")
        name = sheet or names[0]
        if name not in names:
            raise FileError(f"{path.name}: no sheet named {name!r} (sheets: {', '.join(map(shown, names))})")
        data = book.get_sheet_by_name(name)
    except CalamineError as exc:
        if _encrypted(path):
            raise FileError(f"{path.name}: the workbook is password-protected; save it without one") from None
        raise FileError(f"{path.name}: cannot read the workbook ({type(exc).__name__})") from None
    # calamine has parsed the sheet into its own compact cells; turning them into Python
    # lists a chunk at a time (not all at once) keeps those lists to one chunk's worth.
    rows = _from_column_a(data.iter_rows(), data.start[1] if data.start else 0)
    if header_row:
        header_index, header = header_row - 1, next(islice(rows, header_row - 1, None), [])
        if not any(c != "" for c in header):
            raise FileError(f"{path.name}: sheet {name!r} row {header_row} (the header row) is empty")
    else:
        found = ((i, r) for i, r in enumerate(rows) if any(c != "" for c in r))
        header_index, header = next(found, (None, []))
        if header_index is None:
            raise FileError(f"{path.name}: sheet {name!r} is empty")
    headers = [_cell_text(c) for c in header]
    while headers and headers[-1] == "":
        headers.pop()
    src = Source(path, "workbook", headers, digest, size, sheet=name, _stat=before)
    src._rows, src._header_index, src._height = rows, header_index, data.end[0] + 1
    return src


def first_rows(path: Path, n: int, sheet: str | None) -> list[list[str]]:
    """The sheet's first ``n`` rows as text, whatever their width."""
    src = open_workbook(path, sheet, header_row=1)
    rows = [src.headers, *islice(src._rows, n - 1)]
    return [[_cell_text(c) for c in row] for row in rows]


def _from_column_a(rows: Iterator[list[object]], lead: int) -> Iterator[list[object]]:
    """calamine's rows start at the sheet's first used column: put back the empty columns left
    of it, so cells keep the columns (and headers the positions) a spreadsheet shows."""
    if not lead:
        return rows
    blanks = [""] * lead
    return (blanks + r for r in rows)


def _encrypted(path: Path) -> bool:
    """Whether an OLE compound file holds an encrypted workbook (read only once one failed)."""
    with path.open("rb") as fh:
        if fh.read(8) != OLE_MAGIC:
            return False
        return ENCRYPTED in fh.read()


def _check_container(path: Path, max_unpacked: int) -> None:
    """Refuse a password-protected workbook, zip bombs (by the sizes a zip's directory
    declares) and XML that declares a DOCTYPE (no entity is ever expanded or fetched), before
    any XML is parsed. An OLE file (.xls) holds no XML."""
    with path.open("rb") as fh:
        head = fh.read(8)
    if head == OLE_MAGIC:
        return
    if head[:4] != ZIP_MAGIC or not zipfile.is_zipfile(path):
        raise FileError(f"{path.name}: a damaged workbook (not a readable zip archive)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            unpacked = sum(i.file_size for i in infos)
            packed = sum(i.compress_size for i in infos) or 1
            if unpacked > max_unpacked or unpacked / packed > MAX_XLSX_RATIO:
                raise FileError(
                    f"{path.name}: the workbook would unpack to {unpacked:,} bytes, {unpacked / packed:,.0f} "
                    f"times its size (at most {max_unpacked:,} bytes and {MAX_XLSX_RATIO} times, "
                    "--max-unpacked-size); refused as unsafe"
                )
            for info in infos:
                if info.filename.endswith((".xml", ".rels")) and _declares_doctype(zf, info):
                    raise FileError(
                        f"{path.name}: its part {shown(info.filename)} declares a DOCTYPE; refused "
                        "(a workbook needs none, and entities are never expanded)"
                    )
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        NotImplementedError,
        EOFError,
        ValueError,
        OSError,
    ) as exc:
        raise FileError(f"{path.name}: the workbook is damaged ({type(exc).__name__})") from None


def _declares_doctype(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    with zf.open(info) as part:
        return b"<!doctype" in part.read(PROLOG).lower()


def chunks(src: Source, size: int) -> Iterator[pd.DataFrame]:
    width = len(src.headers)
    pad = [""] * width
    first = src._header_index + 2  # the sheet row number of the row after the header
    while block := list(islice(src._rows, size)):
        cells = pd.DataFrame([(r + pad)[:width] for r in block], dtype=object)
        frame = pd.DataFrame({i: _column_text(cells[i]) for i in range(width)}, index=cells.index)
        frame.index = pd.RangeIndex(first, first + len(block), name="row")
        first += len(block)
        yield drop_blank(frame)
    src._rows = iter(())  # let calamine's copy of the sheet go before the database work


def _column_text(cells: pd.Series) -> pd.Series:
    """A column of cells as text. A column of text only (the usual case) goes to Arrow in one
    call; a column holding numbers, dates or booleans goes through ``_cell_text`` cell by cell."""
    try:
        return pd.Series(pa.array(cells.to_numpy(), type=pa.string()).fill_null(""), dtype="str")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return cells.map(_cell_text).astype("str")


def _cell_text(value: object) -> str:
    """A cell as the text a user sees: dates in ISO form, whole numbers without '.0'."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return "" if value is None else str(value)
