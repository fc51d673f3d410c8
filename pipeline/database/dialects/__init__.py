"""One class per database: everything that differs between SQLite, PostgreSQL and
MariaDB/MySQL lives in these classes and nowhere else."""

from __future__ import annotations

from sqlalchemy.engine import URL, Connection, Engine

from pipeline.database.dialects.base import Dialect, Prepared
from pipeline.database.dialects.mysql import MySQL
from pipeline.database.dialects.postgresql import PostgreSQL
from pipeline.database.dialects.sqlite import SQLite

__all__ = ["ALL", "Dialect", "Prepared", "for_backend", "of"]

ALL: tuple[Dialect, ...] = (SQLite(), PostgreSQL(), MySQL())
_BY_BACKEND: dict[str, Dialect] = {b: d for d in ALL for b in d.backends}


def for_backend(name: str) -> Dialect | None:
    """The dialect serving a SQLAlchemy backend name (``postgresql``, ``mariadb``...), if any."""
    return _BY_BACKEND.get(name)


def of(bind: Connection | Engine | URL) -> Dialect:
    """The dialect of a connection, an engine or a URL."""
    name = bind.get_backend_name() if isinstance(bind, URL) else bind.dialect.name
    return _BY_BACKEND[name]
