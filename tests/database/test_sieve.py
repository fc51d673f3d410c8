"""The importer's sieve: which staged rows the database's groupings must see. A collision may
add a suspect; nothing may hide one."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from pipeline.database import sieve
from tests.helpers import C1, C2, kid, run_import, stored


def suspects(customers: list[int], keys: list[int], limit: int = 4) -> tuple[list[int], list[int]]:
    box = sieve.Sieve()
    box.keep(np.array(customers, np.int32), np.array(keys, np.int32))
    try:
        found_keys, found_customers = box.repeated_keys(), box.crowded_customers(limit)
    finally:
        box.close()
    return sorted(found_keys.tolist()), sorted(found_customers.tolist())


def test_a_key_seen_twice_and_a_customer_seen_more_than_the_limit_are_suspects():
    customers = [7] * 4 + [8] * 5 + [-9]  # 4: the limit, not past it; 5: past it
    keys = [1, 2, 2, 3, 3, 3, -4]
    assert suspects(customers, keys) == ([2, 3], [8])
    assert suspects(customers, keys, limit=3) == ([2, 3], [7, 8])


def test_an_empty_file_has_no_suspects():
    assert suspects([], []) == ([], [])


def test_counting_a_slice_of_the_hashes_at_a_time_finds_the_same_suspects(monkeypatch):
    rng = np.random.default_rng(1)
    keys = rng.integers(-(2**31), 2**31, 20_000).astype(np.int32)
    keys = np.concatenate([keys, keys[:300], keys[:5]])  # 300 repeated, 5 of them three times
    customers = np.repeat(rng.integers(-(2**31), 2**31, 4_000).astype(np.int32), rng.integers(1, 8, 4_000))
    whole = suspects(customers.tolist(), keys.tolist())
    monkeypatch.setattr(sieve, "PER_PASS", 1_000)  # 32 passes
    monkeypatch.setattr(sieve, "_BLOCK", 777)
    assert suspects(customers.tolist(), keys.tolist()) == whole
    assert len(whole[0]) == len(np.unique(keys[:300]))


def test_the_same_customer_and_birth_date_hash_alike_in_any_chunk():
    ids = [str(uuid.uuid4()) for _ in range(3)]
    born = pd.Series(pd.to_datetime(["2015-01-01", "2015-01-02", "2015-01-01"]), dtype="datetime64[s]")
    customer, key = sieve.hashes(pd.Series(ids, dtype="str"), born)
    again_customer, again_key = sieve.hashes(pd.Series([i.upper() for i in ids], dtype="str"), born)
    assert (customer == again_customer).all() and (key == again_key).all()
    twin, _ = sieve.hashes(pd.Series([ids[0]] * 2, dtype="str"), born[:2])
    assert twin[0] == twin[1]  # one customer
    one, other = sieve.hashes(pd.Series([ids[0]] * 2, dtype="str"), born[:2])[1]
    assert one != other  # another birth date, another key


def test_hashes_spread_and_a_file_without_birth_dates_has_them_too():
    ids = pd.Series([str(uuid.uuid4()) for _ in range(20_000)], dtype="str")
    customer, key = sieve.hashes(ids, None)
    assert len(np.unique(customer)) >= 19_990 and customer.dtype == key.dtype == np.int32
    sequential = pd.Series([f"00000000-0000-4000-8000-{i:012d}" for i in range(20_000)], dtype="str")
    assert len(np.unique(sieve.hashes(sequential, None)[0])) >= 19_990


def test_colliding_hashes_never_change_a_verdict(any_db, tmp_path, monkeypatch):
    """Every row's hashes the same: every row is a suspect, and the database still decides each
    exactly (twins of one birth date are not duplicates; the fifth dependent is over)."""
    monkeypatch.setattr(
        sieve, "hashes", lambda c, b: (np.zeros(len(c), np.int32), np.zeros(len(c), np.int32))
    )
    twin = [C1, "Twin", "Jones", "2015-01-01"]
    rows = [kid(1), twin, kid(2), kid(1), kid(3), kid(4), kid(1, C2), kid(2, C2)]
    code, codes = run_import(any_db, tmp_path, rows)
    assert code == 1
    assert codes == {5: ["DUPLICATE_IN_FILE"], 7: ["DEPENDENT_LIMIT_REACHED"]}
    assert stored(any_db) == 6


@pytest.mark.parametrize("limit_case", [True, False])
def test_real_hashes_give_the_same_verdicts(any_db, tmp_path, limit_case):
    twin = [C1, "Twin", "Jones", "2015-01-01"]
    rows = [kid(1), twin, kid(2), kid(1), kid(3), kid(4), kid(1, C2)]
    if not limit_case:
        rows = rows[:4]
    _, codes = run_import(any_db, tmp_path, rows)
    expected = {5: ["DUPLICATE_IN_FILE"]} | ({7: ["DEPENDENT_LIMIT_REACHED"]} if limit_case else {})
    assert codes == expected


def test_kept_rows_come_back_for_a_suspect_key_or_customer_and_only_their_candidates():
    import pyarrow as pa

    box = sieve.Sieve()
    try:
        for first in (2, 5):  # two chunks
            rows = pa.table(
                {
                    "source_row": pa.array(range(first, first + 3), pa.int32()),
                    "customer_hash": pa.array([7, 8, 9], pa.int32()),
                    "key_hash": pa.array([first, 1, 1], pa.int32()),
                }
            )
            box.keep_rows(rows, np.array([True, True, first == 2]))
        found = box.suspect_rows(keys=np.array([5], np.int32), customers=np.array([9], np.int32))
    finally:
        box.close()
    assert found["source_row"].to_pylist() == [4, 5]  # row 7 (customer 9) was no candidate


def test_no_kept_rows_is_none():
    box = sieve.Sieve()
    try:
        assert box.suspect_rows(np.array([1], np.int32), np.array([1], np.int32)) is None
    finally:
        box.close()
