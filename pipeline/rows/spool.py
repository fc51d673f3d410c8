"""A run's working files, in a private temporary directory, so memory stays flat.

While chunks stream in, the spool keeps each chunk's raw cells and its row-rule failures
(Arrow IPC files, one record batch per chunk). The database's verdicts only exist once the
whole file is staged; then ``chunks`` hands each chunk's failures and cells back, and the
assembled rejected rows are kept the same way (``add``) and read back, a chunk at a time,
by the ledger and the reports (``frames``).

The files hold the input's raw cells, personal data included. An import that is killed
outright (SIGKILL, the out-of-memory killer, a power cut) cannot remove them, so each
spool holds a lock for its lifetime, and the next import removes every spool whose lock
is free: its process is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.rows import cells as json_cells

try:
    import fcntl
except ImportError:  # Windows: no flock; spools of killed imports stay until removed by hand
    fcntl = None

PREFIX = "dependents-"
LOCK = "lock"

_FAILURES = pa.schema([("row", pa.int64()), ("code", pa.string()), ("details", pa.string())])
_REJECTS = pa.schema(
    [("row", pa.int64())] + [(c, pa.large_string()) for c in ("codes", "messages", "notifications", "cells")]
)


@dataclass
class Chunk:
    """One chunk as spooled: its row range, row-rule failures and raw cells."""

    first: int
    last: int
    failures: pd.DataFrame  # row, code, details (additionalData as JSON text)
    _cells: pa.RecordBatch

    def cells(self, rows: pd.Index) -> list[str]:
        """The raw cells of ``rows`` (ascending), each as a JSON list in the input's column order."""
        picked = self._cells.filter(pc.is_in(self._cells["row"], pa.array(rows.to_numpy(), pa.int64())))
        if picked.num_rows != len(rows):
            raise RuntimeError("spooled cells do not match the rejected rows")  # a bug, not the input
        return json_cells.encode(picked.drop_columns(["row"]).columns, picked.num_rows)


class Spool:
    """Three Arrow files, each written once and then only read: ``cells`` and ``failures``
    while reading (closed by ``chunks``), ``rejects`` while assembling (closed by ``seal``).
    Writers still open are closed by ``close``, which also removes the files."""

    def __init__(self) -> None:
        sweep(Path(tempfile.gettempdir()))
        self.dir = Path(tempfile.mkdtemp(prefix=PREFIX))  # mode 0700
        self._lock = _hold_lock(self.dir)
        self._writing: dict[str, pa.RecordBatchFileWriter] = {}
        self._rejects = self._open("rejects", _REJECTS)
        self._cells: pa.RecordBatchFileWriter | None = None  # its schema is the input's columns
        self._failures = self._open("failures", _FAILURES)
        self.ranges: list[tuple[int, int]] = []

    def _open(self, name: str, schema: pa.Schema) -> pa.RecordBatchFileWriter:
        self._writing[name] = pa.ipc.new_file(self.dir / f"{name}.arrow", schema)
        return self._writing[name]

    def _finish(self, *names: str) -> None:
        """Close these files for writing (once); from then on they are read."""
        for name in names:
            if name in self._writing:
                self._writing.pop(name).close()

    # -- while reading ----------------------------------------------------------------------

    def keep(self, chunk: pd.DataFrame, failures: pd.DataFrame) -> None:
        """Keep a chunk's raw cells (index: sheet row) and its row-rule failures."""
        if chunk.empty:
            return
        arrays = [pa.array(chunk.index.to_numpy(), pa.int64())]
        arrays += [pa.array(chunk[c], pa.large_string(), from_pandas=True) for c in chunk.columns]
        table = pa.table(arrays, names=["row", *(str(c) for c in chunk.columns)])
        batch = table.combine_chunks().to_batches()[0]  # one batch per chunk: ``chunks`` counts on it
        if self._cells is None:
            self._cells = self._open("cells", batch.schema)
        self._cells.write_batch(batch)
        self._failures.write_batch(
            pa.record_batch(
                [
                    pa.array(failures["row"].to_numpy(), pa.int64()),
                    pa.array(failures["code"].to_numpy(dtype=object), pa.string()),
                    pa.array(failures["details"].to_numpy(dtype=object), pa.string()),
                ],
                schema=_FAILURES,
            )
        )
        self.ranges.append((int(chunk.index[0]), int(chunk.index[-1])))

    def chunks(self) -> Iterator[Chunk]:
        """The kept chunks, in file order, one in memory at a time."""
        self._finish("failures", "cells")
        for i in range(len(self.ranges)):
            yield self.chunk(i)

    def chunk(self, i: int) -> Chunk:
        """The ``i``-th kept chunk (once ``chunks`` has closed the files for writing)."""
        first, last = self.ranges[i]
        # Plain reads, not memory maps: a mapped page counts in the process's resident memory
        # once touched, so mapping would make memory grow with the file after all.
        with (
            pa.OSFile(str(self.dir / "cells.arrow")) as cells_file,
            pa.OSFile(str(self.dir / "failures.arrow")) as failures_file,
        ):
            failures = pa.ipc.open_file(failures_file).get_batch(i).to_pandas()
            return Chunk(first, last, failures, pa.ipc.open_file(cells_file).get_batch(i))

    # -- rejected rows ----------------------------------------------------------------------

    def keep_early(self, frame: pd.DataFrame) -> pa.RecordBatch:
        """Keep a chunk's rejected rows by its row rules alone (``run`` assembles them while the
        database decides its own rules), one batch per chunk, empty or not; returns the batch."""
        if "early" not in self._writing:
            self._open("early", _REJECTS)
        batch = _rejects_batch(frame)
        self._writing["early"].write_batch(batch)
        return batch

    def early(self) -> Iterator[pa.RecordBatch]:
        """The batches ``keep_early`` kept, one per chunk, in file order."""
        self._finish("early")
        if (self.dir / "early.arrow").exists():  # else no chunk: an empty file
            yield from self._batches("early")

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """``add`` for rejected rows already in the spool's own form (an early batch)."""
        if batch.num_rows:
            self._rejects.write_batch(batch)

    def add(self, frame: pd.DataFrame) -> None:
        """Keep a chunk's rejected rows (row, codes, messages, notifications, cells)."""
        self.add_batch(_rejects_batch(frame))

    def seal(self) -> None:
        """Every rejected row is kept: from now on ``frames`` may be read, by several threads."""
        self._finish("rejects")

    def frames(self) -> Iterator[pd.DataFrame]:
        """The rejected rows, one frame per chunk, in row order (read back, not parsed)."""
        for batch in self._batches("rejects"):
            yield batch.to_pandas()

    def _batches(self, name: str) -> Iterator[pa.RecordBatch]:
        """The record batches of one of the spool's finished files, one read at a time."""
        with pa.OSFile(str(self.dir / f"{name}.arrow")) as fh:
            reader = pa.ipc.open_file(fh)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)

    def close(self) -> None:
        """Close what is still being written (after a failure) and remove the files."""
        for writer in self._writing.values():
            with contextlib.suppress(pa.ArrowInvalid, OSError):  # removed next, whatever it says
                writer.close()
        self._writing.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def _rejects_batch(frame: pd.DataFrame) -> pa.RecordBatch:
    """A chunk's rejected rows in the spool's form; an empty frame is an empty batch."""
    if frame.empty:
        return pa.record_batch([pa.array([], f.type) for f in _REJECTS], schema=_REJECTS)
    return pa.RecordBatch.from_pandas(frame, schema=_REJECTS, preserve_index=False)


def _hold_lock(folder: Path) -> int | None:
    """Lock a file that only then takes the name ``lock``, so a sweep never sees the name
    before the lock is held. The lock goes when this process does, however it ends."""
    if fcntl is None:
        return None
    fd = os.open(folder / f"{LOCK}.new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(folder / f"{LOCK}.new", folder / LOCK)
    return fd


def sweep(root: Path) -> list[Path]:
    """Remove the spools in ``root`` left by imports that were killed; returns them. A spool
    whose lock is held belongs to a running import; one without a lock file is not ours to judge."""
    if fcntl is None:
        return []
    removed = []
    for folder in root.glob(f"{PREFIX}*"):
        try:
            fd = os.open(folder / LOCK, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # held: a running import
        else:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed
