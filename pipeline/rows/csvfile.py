"""CSV files -> chunks of text cells: the encoding settled for the whole file before the first
chunk (beside the pass that takes its SHA-256), the delimiter sniffed, the rows streamed by
Arrow's reader with the row numbers a spreadsheet program shows."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline.errors import FileError
from pipeline.rows.read import BLOCK, DELIMITERS, Source, drop_blank, sha256_of, stat_of


def open_csv(path: Path, encoding: str | None, delimiter: str | None, header_row: int = 1) -> Source:
    delimiter = _delimiter(path, delimiter)
    before = stat_of(path)
    size, digest, encoding = _fingerprint(path, encoding)
    with path.open("rb") as fh:
        sample = codecs.decode(fh.read(256 * 1024), python_codec(encoding), errors="ignore")
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
        decoder = codecs.getincrementaldecoder(python_codec(encoding))()
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


def python_codec(encoding: str) -> str:
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


def csv_chunks(src: Source, size: int) -> Iterator[pd.DataFrame]:
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

    codec = python_codec(src.encoding or "utf-8")
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
