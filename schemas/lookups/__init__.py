"""Lookup lists as data files: ops extend them by editing the CSV, not code."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent


@cache
def load(name: str) -> tuple[str, ...]:
    """The values of lookup ``name`` (``schemas/lookups/<name>.csv``, column ``value``), in file order."""
    with (HERE / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        values = tuple(row["value"].strip() for row in csv.DictReader(fh) if row["value"].strip())
    if not values:
        raise ValueError(f"lookup {name!r} is empty")
    return values
