"""How long each step of one import took (``--timings``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Steps:
    """Seconds each step of one import took (``--timings``). The decision, the insert and the
    ledger run on one thread while the rejected rows are assembled and the reports written on
    another, so the steps add up to more than the import's wall time."""

    seconds: dict[str, float] = field(default_factory=dict)
    plan: str | None = None  # the database's decision, step by step (``decide.Plan``)

    @contextmanager
    def timing(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began

    def timed(self, name: str, fn: Callable) -> Callable:
        """``fn``, timed as ``name`` on whichever thread runs it (for work handed to a pool)."""

        def call(*args, **kwargs):
            with self.timing(name):
                return fn(*args, **kwargs)

        return call
