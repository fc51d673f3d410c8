"""Which staged rows the database's two groupings need to see, sifted out by the importer.

The database finds the natural keys a file repeats and the customers it would take past the
self-service limit by grouping the staged rows. Nearly every group holds one row, and each
group costs the server a hash-table entry however small it is, while the importer waits.

So while the rows are staged, each candidate row's customer, and its customer with its birth
date, are hashed here to 32 bits (column-wise, from the UUID's 16 bytes and the date's day
number) and written to two unnamed temporary files: 8 bytes a row on disk, none in memory,
and gone when the process is. Once the whole file is staged, ``Sieve.repeated_keys`` and
``Sieve.crowded_customers`` count them a slice of the hash space at a time, so memory stays
flat however long the file: a key hash seen twice is a suspect key, a customer hash seen more
often than the limit a suspect customer. The database then groups only the rows whose hash
is a suspect, and decides exactly as before. Equal natural keys have the same customer and
birth date, so the same hash: a collision can only add a suspect, never hide a repeat or a
crowded customer.

A stage that does not take the candidates (``load.Loader.narrow``) gets the suspects from here
too: ``Sieve.keep_rows`` keeps each candidate's staged key columns (row, hashes, customer,
birth date, natural key) in a third unnamed file, an Arrow stream read back a batch at a time
by ``Sieve.suspect_rows``.
"""

from __future__ import annotations

import math
import tempfile
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.database import arrow

PER_PASS = 1 << 21  # hashes counted at once: 8 MB, and as much again to sort them
_BLOCK = 1 << 20  # hashes read from the file at a time
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: every input bit moves every output bit (uint64 arithmetic wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def hashes(customer_id: pd.Series, born: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes (as int32, the staged columns' type) of each row's customer and of its
    customer and birth date. ``customer_id``: canonical UUIDs (text, or their 16 bytes from
    ``arrow.uuid_series``), none missing; ``born``: dates (``None``: the file has none), where
    a missing one gives a hash no row uses, since a row without a birth date has no natural
    key."""
    if born is None:
        born = pd.Series(pd.NaT, index=customer_id.index, dtype="datetime64[s]")
    packed = pa.array(customer_id, from_pandas=True)
    if not pa.types.is_fixed_size_binary(packed.type):  # text, not ``arrow.uuid_series``' bytes
        packed = arrow.uuid_bytes(packed)
    words = np.frombuffer(packed.buffers()[1], np.uint64, 2 * len(packed)).reshape(-1, 2)
    customer = _mix(words[:, 0] ^ _mix(words[:, 1]))
    days = born.to_numpy("datetime64[D]", na_value=np.datetime64("NaT")).view(np.int64).astype(np.uint64)
    key = _mix(customer + _mix(days))
    return _high(customer), _high(key)


def _high(x: np.ndarray) -> np.ndarray:
    return (x >> np.uint64(32)).astype(np.uint32).view(np.int32)


class Sieve:
    """The hashes of one import's candidate rows, kept on disk until they are counted."""

    def __init__(self) -> None:
        # Open for the sieve's life, closed by ``close`` once the suspects are read; unnamed,
        # so an import that dies leaves nothing behind.
        self._customers: BinaryIO = tempfile.TemporaryFile(prefix="dependents-")  # noqa: SIM115
        self._keys: BinaryIO = tempfile.TemporaryFile(prefix="dependents-")  # noqa: SIM115
        self._rows: pa.RecordBatchStreamWriter | None = None  # ``keep_rows``
        self._rows_file: BinaryIO | None = None

    def keep(self, customers: np.ndarray, keys: np.ndarray) -> None:
        """Keep the hashes of candidate rows: every such row's customer; the keys of those
        that have a natural key."""
        self._customers.write(np.ascontiguousarray(customers, np.int32).tobytes())
        self._keys.write(np.ascontiguousarray(keys, np.int32).tobytes())

    def keep_rows(self, rows: pa.Table, candidate: np.ndarray) -> None:
        """Keep the ``candidate`` rows of a chunk's staged key columns (``rows``: source_row,
        both hashes, the natural key's parts) in an unnamed file, for a stage that does not
        take them (``load.Loader.narrow``); ``suspect_rows`` hands back the suspects'."""
        if self._rows is None:
            self._rows_file = tempfile.TemporaryFile(prefix="dependents-")  # noqa: SIM115
            self._rows = pa.ipc.new_stream(self._rows_file, rows.schema)
        self._rows.write_table(rows.filter(pa.array(candidate)))

    def suspect_rows(self, keys: np.ndarray, customers: np.ndarray) -> pa.Table | None:
        """The kept rows (``keep_rows``) whose key hash is among ``keys`` or customer hash among
        ``customers``, read a batch at a time; ``None`` if none was kept."""
        if self._rows is None:
            return None
        self._rows.close()  # the stream ends; its file stays open until ``close``
        self._rows_file.seek(0)
        reader = pa.ipc.open_stream(self._rows_file)
        found = []
        for batch in reader:
            hit = np.isin(batch["key_hash"].to_numpy(), keys) | np.isin(
                batch["customer_hash"].to_numpy(), customers
            )
            found.append(batch.filter(pa.array(hit)))
        return pa.Table.from_batches(found, schema=reader.schema)

    def repeated_keys(self) -> np.ndarray:
        """Key hashes seen more than once."""
        return _seen_more_than(self._keys, 1)

    def crowded_customers(self, limit: int) -> np.ndarray:
        """Customer hashes seen more than ``limit`` times (only the self-service limit asks)."""
        return _seen_more_than(self._customers, limit)

    def close(self) -> None:
        self._customers.close()
        self._keys.close()
        if self._rows_file is not None:
            self._rows_file.close()


def _seen_more_than(file: BinaryIO, times: int) -> np.ndarray:
    """The hashes in ``file`` that occur more than ``times`` times. At most ``PER_PASS``
    hashes are counted at once: each pass reads the file again and keeps one slice of the
    hash space (its top bits), so a longer file means more passes, not more memory."""
    count = file.seek(0, 2) // 4
    bits = max(0, math.ceil(math.log2(count / PER_PASS))) if count else 0
    found = []
    for part in range(1 << bits):
        file.seek(0)
        picked = []
        while block := file.read(4 * _BLOCK):
            values = np.frombuffer(block, np.int32)
            if bits:
                values = values[(values.view(np.uint32) >> np.uint32(32 - bits)) == part]
            picked.append(values)
        values = np.concatenate(picked) if picked else np.empty(0, np.int32)
        distinct, counts = np.unique(values, return_counts=True)
        found.append(distinct[counts > times])
    return np.concatenate(found) if found else np.empty(0, np.int32)
