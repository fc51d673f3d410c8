"""Which allocator Arrow's buffers come from, for the whole process.

pyarrow allocates through mimalloc by default. An import's chunks allocate and free a few
hundred megabytes of Arrow buffers each second; jemalloc (pyarrow's other bundled allocator)
keeps less of that resident, at the same speed (docs/decisions.md). Where
pyarrow is built without jemalloc the system allocator is used; ``ARROW_DEFAULT_MEMORY_POOL``,
if set, is left to decide.
"""

from __future__ import annotations

import os

import pyarrow as pa


def use_jemalloc() -> str:
    """Make jemalloc (else the system allocator) Arrow's default pool; returns its name."""
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except NotImplementedError:  # pyarrow built without it
            pa.set_memory_pool(pa.system_memory_pool())
    return pa.default_memory_pool().backend_name
