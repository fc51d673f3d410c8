"""Lookup lists in the database: read once by each import, listed and loaded by ops.

A load adds the file's values to the list (``replace``: the file becomes the list) and
counts a new version when it changes anything. A value that stored dependents hold cannot
be removed: their rows would no longer meet the rules they were accepted by.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.database import db, dialects
from pipeline.errors import FileError, UsageError, shown
from schemas import PROFILES
from schemas.fields import BY_NAME
from schemas.lookups import LOOKUPS, Lookup
from schemas.rules import Profile


@dataclass(frozen=True)
class Listed:
    name: str
    version: int
    values: tuple[str, ...]


@dataclass(frozen=True)
class Loaded:
    before: Listed
    after: Listed

    @property
    def added(self) -> list[str]:
        return _without(self.after.values, self.before.values)

    @property
    def removed(self) -> list[str]:
        return _without(self.before.values, self.after.values)


def lookup(name: str) -> Lookup:
    if name not in LOOKUPS:
        raise UsageError(f"no lookup {name!r}; the lookups are: {', '.join(LOOKUPS)}")
    return LOOKUPS[name]


def profile_at(url: str, name: str) -> Profile:
    """Profile ``name`` with the lookup lists of the database at ``url``; with the shipped
    defaults when there is no such database yet (a command that only reads never makes one)."""
    profile = PROFILES[name]
    if not profile.lookups:
        return profile
    engine = db.engine_for(url)
    try:
        if not dialects.of(engine).exists(engine.url):
            return profile
        with db.errors(url):
            db.ensure_schema(engine, create=False)
            with db.reading(engine) as conn:
                found = read(conn, list(profile.lookups))
    finally:
        engine.dispose()
    return ruled(profile, found)


def ruled(profile: Profile, found: dict[str, Listed]) -> Profile:
    """``profile`` with its lookup fields allowing the lists ``found`` in the database."""
    return profile.with_lookups({n: listed.values for n, listed in found.items()})


def read(conn: Connection, names: list[str]) -> dict[str, Listed]:
    """The lists ``names`` as the database holds them, in one query each."""
    return {name: listed(conn, name) for name in names}


def listed(conn: Connection, name: str) -> Listed:
    lookup(name)
    version = conn.execute(
        sa.select(db.lookup_lists.c.version).where(db.lookup_lists.c.name == name)
    ).scalar()
    t = db.lookup_values
    values = conn.execute(sa.select(t.c.value).where(t.c.name == name).order_by(t.c.position)).scalars()
    return Listed(name, version or 0, tuple(values))


def load(conn: Connection, name: str, path: Path, replace: bool) -> Loaded:
    """Load ``path`` (CSV, column ``value``) into lookup ``name``, in the caller's transaction."""
    found = lookup(name)
    given = read_values(path, found)
    before = listed(conn, name)
    kept = given if replace else (*before.values, *_without(given, before.values))
    if kept == before.values:
        return Loaded(before, before)
    if replace:
        _refuse_used(conn, found, _without(before.values, given))
    after = Listed(name, before.version + 1, kept)
    _store(conn, after, path.name)
    return Loaded(before, after)


def read_values(path: Path, found: Lookup) -> tuple[str, ...]:
    """The file's values, trimmed, each once (compared case-insensitively), in file order."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FileError(f"{path.name}: cannot read the lookup file ({type(exc).__name__})") from None
    if "value" not in (reader.fieldnames or ()):
        raise FileError(f"{path.name}: a lookup file is CSV with a `value` column")
    values: dict[str, str] = {}
    for i, row in enumerate(rows, start=2):
        value = (row["value"] or "").strip()
        if len(value) > found.max_length:
            field = BY_NAME[found.field].name
            raise FileError(f"{path.name}: row {i}: a {field} is at most {found.max_length} characters")
        if value:
            values.setdefault(value.casefold(), value)
    if not values:
        raise FileError(f"{path.name}: no values; a lookup list cannot be empty")
    return tuple(values.values())


def _refuse_used(conn: Connection, found: Lookup, removed: list[str]) -> None:
    """Refuse to remove values stored dependents hold (compared case-insensitively)."""
    if not removed:
        return
    column = db.dependents.c[BY_NAME[found.field].column]
    folded = sa.func.lower(column)
    q = (
        sa.select(column, sa.func.count())
        .where(folded.in_([v.lower() for v in removed]))
        .group_by(column)
        .order_by(column)
    )
    used = conn.execute(q).all()
    if used:
        said = ", ".join(f"{shown(v)!r} ({n:,} dependents)" for v, n in used[:5])
        raise UsageError(f"{found.name}: cannot remove values stored dependents hold: {said}")


def _store(conn: Connection, after: Listed, source: str) -> None:
    t, lists = db.lookup_values, db.lookup_lists
    conn.execute(t.delete().where(t.c.name == after.name))
    conn.execute(
        t.insert(), [{"name": after.name, "position": i, "value": v} for i, v in enumerate(after.values)]
    )
    values = {
        "version": after.version,
        "loaded_at": datetime.now(UTC).replace(tzinfo=None),
        "source": source[:500],
    }
    updated = conn.execute(lists.update().where(lists.c.name == after.name), values).rowcount
    if not updated:
        conn.execute(lists.insert(), {"name": after.name, **values})


def _without(values: tuple[str, ...], other: tuple[str, ...]) -> list[str]:
    """``values`` not in ``other``, compared case-insensitively."""
    folded = {v.casefold() for v in other}
    return [v for v in values if v.casefold() not in folded]
