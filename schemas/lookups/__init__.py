"""Lookup lists: the values a field may take that ops, not the contract, decide.

The lists here are the defaults a new database is filled with (``db init``); from then on
the database's own lists are the rules (``dependents lookups load``), read once by each
import. Each list serves one field and holds values that fit that field's column.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Lookup:
    name: str
    field: str  # the API field whose values it lists
    max_length: int  # characters a value may have: its field's column


LOOKUPS: dict[str, Lookup] = {
    "genders": Lookup("genders", "gender", 50),
    "home_languages": Lookup("home_languages", "homeLanguage", 100),
}


@cache
def load(name: str) -> tuple[str, ...]:
    """Lookup ``name``'s defaults (``schemas/lookups/<name>.csv``, column ``value``), in file order."""
    with (HERE / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        values = tuple(row["value"].strip() for row in csv.DictReader(fh) if row["value"].strip())
    if not values:
        raise ValueError(f"lookup {name!r} is empty")
    return values
