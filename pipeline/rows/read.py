"""File -> chunks of text cells, each row indexed by the row number a spreadsheet shows.

Everything is read as text first: leading zeros, ``NA``, ``Null`` and ``True``
stay exactly as typed, and the rules decide what text means. The format is the file's
first bytes, not its name; CSV is read by ``csvfile``, workbooks by ``workbook``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import pandas as pd

from pipeline.errors import FileError

WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}  # what python-calamine reads
SPREADSHEET_SUFFIXES = {".csv", ".tsv", *WORKBOOK_SUFFIXES}  # what a folder of files to import offers
ZIP_MAGIC = b"PK\x03\x04"  # .xlsx, .xlsm, .xlsb, .ods
OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")  # .xls, and a password-protected .xlsx
BINARY_BYTES = bytes([*range(0, 9), 11, 12, *range(14, 32)])  # control bytes text rarely holds
DELIMITERS = (",", ";", "\t")
BLOCK = 1 << 20


@dataclass
class Source:
    """An opened input: its headers, fingerprint and a way to stream its rows."""

    path: Path
    kind: str
    headers: list[str]
    sha256: str
    size: int
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    _rows: Iterator[list[object]] = field(default_factory=lambda: iter(()), repr=False)
    _header_index: int = 0
    _height: int = 0  # XLSX: rows of the sheet, blank ones above the header included
    _bytes_per_row: float = 100.0
    _stat: tuple[int, int] | None = None  # size and modification time before the first read

    @property
    def estimated_rows(self) -> int:
        """Data rows: exact for XLSX; for CSV, the size over the sample's bytes per line."""
        if self.kind == "workbook":
            return max(0, self._height - self._header_index - 1)
        return max(1, round(self.size / self._bytes_per_row) - 1)

    @property
    def header_at(self) -> str:
        """Where the header was read, as a message names it: ``sheet 'Export', row 3``."""
        row = f"row {self._header_index + 1}"
        return f"sheet {self.sheet!r}, {row}" if self.sheet else row

    def chunks(self, size: int) -> Iterator[pd.DataFrame]:
        """Frames of at most ``size`` non-blank rows; columns 0..n-1 (header order), text cells,
        index = sheet row number. The rows stream: a source is read once. After the last
        chunk, FileError if the file changed since it was opened: rows read from a file that
        is still being written would be a half-loaded file."""
        if self.kind == "csv":
            from pipeline.rows import csvfile

            yield from csvfile.csv_chunks(self, size)
        else:
            from pipeline.rows import workbook

            yield from workbook.chunks(self, size)
        if self._stat is not None and stat_of(self.path) != self._stat:
            raise FileError(
                f"{self.path.name}: the file changed while it was being imported (is it still being "
                "written?); nothing was committed"
            )


def open_source(
    path: Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
    max_unpacked: int | None = None,
    header_row: int | None = None,
) -> Source:
    """Open ``path`` as CSV or XLSX (by its suffix) and read its header; FileError if it cannot.
    ``max_unpacked``: the most bytes a workbook may unpack to (``workbook.MAX_UNPACKED``)."""
    path = Path(path)
    if path.is_dir():
        raise FileError(f"{path}: is a folder, not a file")
    if not path.is_file():
        raise FileError(f"{path}: no such file")
    kind = format_of(path)
    if kind == "workbook":
        from pipeline.rows import workbook

        return workbook.open_workbook(path, sheet, max_unpacked or workbook.MAX_UNPACKED, header_row)
    if kind == "binary":
        raise FileError(f"{path.name}: neither a workbook (.xlsx, .xls, .xlsb, .ods) nor CSV text")
    if sheet is not None:
        raise FileError(f"{path.name}: --sheet chooses a workbook's sheet, and this file is read as CSV")
    from pipeline.rows import csvfile

    return csvfile.open_csv(path, encoding, delimiter, header_row or 1)


def format_of(path: Path) -> str:
    """``workbook``, ``csv`` or ``binary``, by the file's first bytes, not its name: an
    ``.xlsx`` that is really CSV is read as CSV. Text is mostly free of control bytes."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith((ZIP_MAGIC, OLE_MAGIC)):
        return "workbook"
    controls = sum(head.count(bytes([b])) for b in BINARY_BYTES)
    if controls > len(head) // 20 and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "binary"  # a NUL in a cell of a CSV is a row's problem, not the file's
    return "csv"


def first_rows(path: Path, n: int, sheet: str | None = None) -> list[list[str]]:
    """The first ``n`` rows of a file as text cells, whatever their width (titles included)."""
    if format_of(path) == "workbook":
        from pipeline.rows import workbook

        return workbook.first_rows(path, n, sheet)
    from pipeline.rows import csvfile

    src = csvfile.open_csv(path, None, None)
    with path.open("rb") as fh:
        sample = codecs.decode(fh.read(256 * 1024), csvfile.python_codec(src.encoding), errors="ignore")
    return list(islice(csv.reader(io.StringIO(sample.lstrip("\ufeff")), delimiter=src.delimiter), n))


def stat_of(path: Path) -> tuple[int, int]:
    found = path.stat()
    return found.st_size, found.st_mtime_ns


def drop_blank(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with every cell empty are skipped; the others keep their row numbers."""
    return frame[frame.ne("").any(axis=1)]


def sha256_of(path: Path) -> tuple[int, str]:
    """The file's size and SHA-256, from one pass over it (CSV and XLSX alike)."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()
