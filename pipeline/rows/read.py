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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

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
            yield from _csv_chunks(self, size)
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
    return _open_csv(path, encoding, delimiter, header_row or 1)


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
    src = _open_csv(path, None, None)
    with path.open("rb") as fh:
        sample = codecs.decode(fh.read(256 * 1024), _python_codec(src.encoding), errors="ignore")
    return list(islice(csv.reader(io.StringIO(sample.lstrip("\ufeff")), delimiter=src.delimiter), n))


def stat_of(path: Path) -> tuple[int, int]:
    found = path.stat()
    return found.st_size, found.st_mtime_ns


# -- CSV ---------------------------------------------------------------------------------------


def _open_csv(path: Path, encoding: str | None, delimiter: str | None, header_row: int = 1) -> Source:
    delimiter = _delimiter(path, delimiter)
    before = stat_of(path)
    size, digest, encoding = _fingerprint(path, encoding)
    with path.open("rb") as fh:
        sample = codecs.decode(fh.read(256 * 1024), _python_codec(encoding), errors="ignore")
    if not sample.strip():
        raise FileError(f"{path.name}: the file is empty")
    delimiter = delimiter or _sniff_delimiter(sample)
    try:
        headers = next(islice(csv.reader(io.StringIO(sample), delimiter=delimiter), header_row - 1, None))
    except (csv.Error, StopIteration) as exc:
        raise FileError(
            f"{path.name}: cannot read the header row ({exc or f'no row {header_row}'})"
        ) from None
    headers = [h.lstrip("\ufeff") for h in headers]
    src = Source(path, "csv", headers, digest, size, encoding=encoding, delimiter=delimiter, _stat=before)
    src._header_index = header_row - 1
    lines = sample.count("\n") or 1
    src._bytes_per_row = min(size, 256 * 1024) / lines
    return src


def _fingerprint(path: Path, encoding: str | None) -> tuple[int, str, str]:
    """Size, SHA-256 and the encoding the whole file decodes in. The hash takes a thread of its
    own beside the decoding check: hashlib lets go of the GIL over each block, so on two cores
    the two passes over the same pages take about as long as one."""
    with path.open("rb") as fh:
        head = fh.read(4)
    chosen = encoding or _bom_encoding(head) or "utf-8"
    with ThreadPoolExecutor(1, thread_name_prefix="sha256") as hasher:
        hashed = hasher.submit(sha256_of, path)
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
    open_quote: list[pacsv.InvalidRow] = []
    try:
        yield from _csv_batches(src, size, open_quote)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if open_quote:
            raise FileError(
                f"{src.path.name}: row {open_quote[0].number} opens a quote that is never closed "
                "(it would take in the rest of the file)"
            ) from None
        if "straddl" in str(exc):  # one row does not fit in the reader's block
            raise FileError(
                f"{src.path.name}: a row is longer than {BLOCK >> 20} MB; is a quote left open?"
            ) from None
        # Arrow's own text quotes the offending line (PII): keep only its kind.
        raise FileError(f"{src.path.name}: cannot parse the CSV ({_first_words(exc)})") from None


class _Rows:
    """Sheet row numbers for the rows the reader yields, and the ragged rows it skipped (more
    or fewer cells than the header), which go back among them as rows of their own, cut or
    padded to the header, with how many cells they had (``frame.attrs["ragged"]``)."""

    def __init__(self, src: Source):
        self.delimiter, self.width = src.delimiter or ",", len(src.headers)
        self.next = src._header_index + 2  # row numbers as a spreadsheet program shows them
        self.skipped: list[pacsv.InvalidRow] = []

    def frame(self, table: pa.Table, last: bool = False) -> pd.DataFrame:
        """``table``'s rows numbered, with the ragged rows among them (all that are left, if
        ``last``). Without a ragged row, the usual case, the numbers are one range."""
        n = table.num_rows
        if not self.skipped:
            numbers = pd.RangeIndex(self.next, self.next + n, name="row")
            self.next += n
            return drop_blank(_frame(table, numbers))
        skipped = np.array([r.number for r in self.skipped])
        good = np.setdiff1d(np.arange(self.next, self.next + n + len(skipped)), skipped)[:n]
        end = np.inf if last else (good[-1] if n else self.next - 1)
        mine = [r for r in self.skipped if r.number <= end]
        self.skipped = [r for r in self.skipped if r.number > end]
        self.next = int(max(good[-1] if n else 0, mine[-1].number if mine else 0, self.next - 1)) + 1
        frame = pd.concat([_frame(table, pd.Index(good, name="row")), self._ragged(mine)]).sort_index()
        frame.attrs["ragged"] = {r.number: (r.expected_columns, r.actual_columns) for r in mine}
        return drop_blank(frame)

    def _ragged(self, rows: list[pacsv.InvalidRow]) -> pd.DataFrame:
        pad = [""] * self.width
        cells = [(next(csv.reader([r.text], delimiter=self.delimiter), []) + pad)[: self.width] for r in rows]
        frame = pd.DataFrame(
            cells, columns=range(self.width), index=pd.Index([r.number for r in rows], name="row")
        )
        return frame.astype("str")


def _csv_batches(src: Source, size: int, open_quote: list) -> Iterator[pd.DataFrame]:
    rows = _Rows(src)

    def on_bad_row(row: pacsv.InvalidRow) -> str:
        if row.text.count('"') % 2:  # a quote opened and never closed: the rest of the file is in it
            open_quote.append(row)
            return "error"
        rows.skipped.append(row)
        return "skip"

    codec = _python_codec(src.encoding or "utf-8")
    reader = pacsv.open_csv(
        src.path,
        read_options=pacsv.ReadOptions(
            encoding="utf8" if codec in ("utf-8", "utf-8-sig") else codec,
            block_size=BLOCK,  # the reader keeps several blocks: small ones keep peak memory down
            use_threads=False,
            skip_rows=src._header_index,  # titles and notes above the header
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=src.delimiter,
            newlines_in_values=True,
            invalid_row_handler=on_bad_row,
            ignore_empty_lines=False,  # an empty line is a row of a spreadsheet: it keeps its number
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.string() for h in _arrow_names(src.headers)},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    pending: list[pa.RecordBatch] = []
    waiting = 0
    for batch in reader:
        pending.append(batch)
        waiting += batch.num_rows
        while waiting >= size:
            table = pa.Table.from_batches(pending)
            yield rows.frame(table.slice(0, size))
            rest = table.slice(size)
            pending, waiting = rest.to_batches(), rest.num_rows
    if waiting or rows.skipped:
        yield rows.frame(pa.Table.from_batches(pending, schema=reader.schema), last=True)


def _arrow_names(headers: list[str]) -> list[str]:
    return [h.lstrip("\ufeff") for h in headers]


def _first_words(exc: Exception) -> str:
    text = str(exc).split(":")[0:2]
    return ":".join(text).strip()[:80]


def _frame(table: pa.Table, numbers: pd.Index) -> pd.DataFrame:
    frame = table.to_pandas()
    frame.columns = range(frame.shape[1])
    frame.index = numbers
    return frame


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
