"""File -> chunks of text cells, each row indexed by the row number a spreadsheet shows.

Everything is read as text first: leading zeros, ``NA``, ``Null`` and ``True``
stay exactly as typed, and the rules decide what text means. A CSV's encoding is
settled for the whole file before the first chunk (in a pass beside the one that
takes its SHA-256), so a decode error never surfaces halfway through a load.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import islice
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline.errors import FileError, shown

XLSX_SUFFIXES = {".xlsx", ".xlsm"}
DELIMITERS = (",", ";", "\t")
BLOCK = 1 << 20
MAX_XLSX_UNCOMPRESSED = 2 << 30  # 2 GiB of XML is far beyond Excel's 1,048,576 rows
MAX_XLSX_RATIO = 200  # zip bombs compress thousands of times over; real sheets 5-20x
OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")  # the compound-file header of .xls and encrypted .xlsx


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
        if self.kind == "xlsx":
            return max(0, self._height - self._header_index - 1)
        return max(1, round(self.size / self._bytes_per_row) - 1)

    def chunks(self, size: int) -> Iterator[pd.DataFrame]:
        """Frames of at most ``size`` non-blank rows; columns 0..n-1 (header order), text cells,
        index = sheet row number. The rows stream: a source is read once. After the last
        chunk, FileError if the file changed since it was opened: rows read from a file that
        is still being written would be a half-loaded file."""
        yield from _csv_chunks(self, size) if self.kind == "csv" else _xlsx_chunks(self, size)
        if self._stat is not None and _stat(self.path) != self._stat:
            raise FileError(
                f"{self.path.name}: the file changed while it was being imported (is it still being "
                "written?); nothing was committed"
            )


def open_source(
    path: Path, *, encoding: str | None = None, delimiter: str | None = None, sheet: str | None = None
) -> Source:
    """Open ``path`` as CSV or XLSX (by its suffix) and read its header; FileError if it cannot."""
    path = Path(path)
    if not path.is_file():
        raise FileError(f"{path}: no such file")
    if path.suffix.lower() in XLSX_SUFFIXES:
        return _open_xlsx(path, sheet)
    if path.suffix.lower() in {".xls", ".ods", ".numbers"}:
        raise FileError(f"{path.name}: {path.suffix} files are not read; save the sheet as .xlsx or .csv")
    return _open_csv(path, encoding, delimiter)


def _stat(path: Path) -> tuple[int, int]:
    found = path.stat()
    return found.st_size, found.st_mtime_ns


# -- CSV ---------------------------------------------------------------------------------------


def _open_csv(path: Path, encoding: str | None, delimiter: str | None) -> Source:
    delimiter = _delimiter(path, delimiter)
    before = _stat(path)
    size, digest, encoding = _fingerprint(path, encoding)
    with path.open("rb") as fh:
        sample = codecs.decode(fh.read(256 * 1024), _python_codec(encoding), errors="ignore")
    if not sample.strip():
        raise FileError(f"{path.name}: the file is empty")
    delimiter = delimiter or _sniff_delimiter(sample)
    try:
        headers = next(csv.reader(io.StringIO(sample), delimiter=delimiter))
    except (csv.Error, StopIteration) as exc:
        raise FileError(f"{path.name}: cannot read the header row ({exc})") from None
    headers = [h.lstrip("\ufeff") for h in headers]
    src = Source(path, "csv", headers, digest, size, encoding=encoding, delimiter=delimiter, _stat=before)
    lines = sample.count("\n") or 1
    src._bytes_per_row = min(size, 256 * 1024) / lines
    return src


def _fingerprint(path: Path, encoding: str | None) -> tuple[int, str, str]:
    """Size, SHA-256 and the encoding the whole file decodes in. The hash takes a thread of its
    own beside the decoding check: hashlib lets go of the GIL over each block, so on two cores
    the two passes over the same pages take about as long as one (a million rows, 111 MB: the
    hash 0.075 s, the check 0.075 s)."""
    with path.open("rb") as fh:
        head = fh.read(4)
    chosen = encoding or _bom_encoding(head) or "utf-8"
    with ThreadPoolExecutor(1, thread_name_prefix="sha256") as hasher:
        hashed = hasher.submit(_sha256, path)
        decodes = _decodes(path, chosen)
        if not decodes and encoding is None and chosen == "utf-8":
            chosen = "cp1252"  # what Excel's "CSV" (not "CSV UTF-8") saves on Western Windows
            decodes = _decodes(path, chosen)
        if not decodes:
            hashed.cancel()
            raise FileError(f"{path.name}: the text is not valid {chosen}; pass --encoding")
        size, digest = hashed.result()
    return size, digest, chosen


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _decodes(path: Path, encoding: str) -> bool:
    """Whether the whole file decodes in ``encoding``."""
    try:
        decoder = codecs.getincrementaldecoder(_python_codec(encoding))()
    except LookupError:
        raise FileError(f"{path.name}: unknown encoding {encoding!r}") from None
    with path.open("rb") as fh:
        try:
            while block := fh.read(BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeError:  # a decode error, or UTF-16 asked for and no byte-order mark
            return False
    return True


def _python_codec(encoding: str) -> str:
    return codecs.lookup(encoding).name


def _delimiter(path: Path, given: str | None) -> str | None:
    """A delimiter given by hand: one character. ``\\t`` (what a shell passes for
    ``--delimiter '\\t'``) and ``tab`` mean the tab."""
    if given is None:
        return None
    given = {"\\t": "\t", "tab": "\t"}.get(given.lower(), given)
    if len(given) != 1:
        raise FileError(f"{path.name}: the delimiter must be one character, not {given!r}")
    return given


def _sniff_delimiter(sample: str) -> str:
    """The candidate that occurs most in the header line; a header has no quoted commas in practice."""
    first = sample.lstrip("\ufeff").splitlines()[0]
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_chunks(src: Source, size: int) -> Iterator[pd.DataFrame]:
    bad: list[pacsv.InvalidRow] = []
    try:
        yield from _csv_batches(src, size, bad)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if bad:
            row = bad[0]
            raise FileError(
                f"{src.path.name}: row {row.number} has {row.actual_columns} cells but the header has "
                f"{row.expected_columns}"
            ) from None
        if "straddl" in str(exc):  # one row does not fit in the reader's block
            raise FileError(
                f"{src.path.name}: a row is longer than {BLOCK >> 20} MB; is a quote left open?"
            ) from None
        # Arrow's own text quotes the offending line (PII): keep only its kind.
        raise FileError(f"{src.path.name}: cannot parse the CSV ({_first_words(exc)})") from None


def _csv_batches(src: Source, size: int, bad: list) -> Iterator[pd.DataFrame]:
    def on_bad_row(row: pacsv.InvalidRow) -> str:
        bad.append(row)
        return "error"

    codec = _python_codec(src.encoding or "utf-8")
    reader = pacsv.open_csv(
        src.path,
        read_options=pacsv.ReadOptions(
            encoding="utf8" if codec in ("utf-8", "utf-8-sig") else codec,
            block_size=BLOCK,  # the reader keeps several blocks: 8 MB ones cost ~100 MB of peak RSS
            use_threads=False,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=src.delimiter, newlines_in_values=True, invalid_row_handler=on_bad_row
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.string() for h in _arrow_names(src.headers)},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    first_row = 2  # the header is row 1 in a spreadsheet program
    pending: list[pa.RecordBatch] = []
    waiting = 0
    for batch in reader:
        pending.append(batch)
        waiting += batch.num_rows
        while waiting >= size:
            table = pa.Table.from_batches(pending)
            yield _frame(table.slice(0, size), first_row)
            first_row += size
            rest = table.slice(size)
            pending, waiting = rest.to_batches(), rest.num_rows
    if waiting:
        yield _frame(pa.Table.from_batches(pending), first_row)


def _arrow_names(headers: list[str]) -> list[str]:
    return [h.lstrip("\ufeff") for h in headers]


def _first_words(exc: Exception) -> str:
    text = str(exc).split(":")[0:2]
    return ":".join(text).strip()[:80]


def _frame(table: pa.Table, first_row: int) -> pd.DataFrame:
    frame = table.to_pandas()
    frame.columns = range(frame.shape[1])
    frame.index = pd.RangeIndex(first_row, first_row + len(frame), name="row")
    return _drop_blank(frame)


def _drop_blank(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with every cell empty are skipped; the others keep their row numbers."""
    return frame[frame.ne("").any(axis=1)]


# -- XLSX --------------------------------------------------------------------------------------


def _open_xlsx(path: Path, sheet: str | None) -> Source:
    before = _stat(path)
    size, digest = _sha256(path)
    _check_zip(path)
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        names = book.sheet_names
        name = sheet or names[0]
        if name not in names:
            raise FileError(f"{path.name}: no sheet named {name!r} (sheets: {', '.join(map(shown, names))})")
        data = book.get_sheet_by_name(name)
    except CalamineError as exc:
        raise FileError(f"{path.name}: cannot read the workbook ({type(exc).__name__})") from None
    # calamine has parsed the sheet into its own compact cells; turning them into Python
    # lists a chunk at a time (not all at once) keeps those lists to one chunk's worth.
    rows = _from_column_a(data.iter_rows(), data.start[1] if data.start else 0)
    header_index, header = next(((i, r) for i, r in enumerate(rows) if any(c != "" for c in r)), (None, []))
    if header_index is None:
        raise FileError(f"{path.name}: sheet {name!r} is empty")
    headers = [_cell_text(c) for c in header]
    while headers and headers[-1] == "":
        headers.pop()
    src = Source(path, "xlsx", headers, digest, size, sheet=name, _stat=before)
    src._rows, src._header_index, src._height = rows, header_index, data.end[0] + 1
    return src


def _from_column_a(rows: Iterator[list[object]], lead: int) -> Iterator[list[object]]:
    """calamine's rows start at the sheet's first used column: put back the empty columns left
    of it, so cells keep the columns (and headers the positions) a spreadsheet shows."""
    if not lead:
        return rows
    blanks = [""] * lead
    return (blanks + r for r in rows)


def _sha256(path: Path) -> tuple[int, str]:
    """The file's size and SHA-256, from one pass over it (CSV and XLSX alike)."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _check_zip(path: Path) -> None:
    """Refuse what is not an XLSX, and zip bombs, before any XML is parsed."""
    if not zipfile.is_zipfile(path):
        with path.open("rb") as fh:
            if fh.read(8) == OLE_MAGIC:  # Excel wraps a password-protected workbook in OLE
                raise FileError(
                    f"{path.name}: the workbook is password-protected (or an old .xls); "
                    "save it as .xlsx without a password"
                )
        raise FileError(f"{path.name}: not an XLSX workbook (not a zip archive)")
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    unpacked = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if unpacked > MAX_XLSX_UNCOMPRESSED or unpacked / packed > MAX_XLSX_RATIO:
        raise FileError(f"{path.name}: the workbook unpacks to {unpacked:,} bytes; refused as unsafe")


def _xlsx_chunks(src: Source, size: int) -> Iterator[pd.DataFrame]:
    width = len(src.headers)
    pad = [""] * width
    first = src._header_index + 2  # the sheet row number of the row after the header
    while block := list(islice(src._rows, size)):
        cells = pd.DataFrame([(r + pad)[:width] for r in block], dtype=object)
        frame = pd.DataFrame({i: _column_text(cells[i]) for i in range(width)}, index=cells.index)
        frame.index = pd.RangeIndex(first, first + len(block), name="row")
        first += len(block)
        yield _drop_blank(frame)
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
