"""Arrow's allocator: jemalloc (else the system's) unless ARROW_DEFAULT_MEMORY_POOL says."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline import memory


def test_arrow_allocates_through_jemalloc_or_the_system():
    assert memory.use_jemalloc() in ("jemalloc", "system")
    assert pa.default_memory_pool().backend_name in ("jemalloc", "system")


def test_the_environment_variable_decides_when_set(monkeypatch):
    before = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())
    except NotImplementedError:
        pytest.skip("this pyarrow has no mimalloc to leave in place")
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
    try:
        assert memory.use_jemalloc() == "mimalloc"
    finally:
        pa.set_memory_pool(before)
