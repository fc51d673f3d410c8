"""Options, parameter types and helpers that more than one command group shares."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import click
from sqlalchemy.engine import Connection

from pipeline.database import db
from schemas import DEFAULT_PROFILE, PROFILES


def profile_option(help: str | None = None):
    """``--profile``: which contract's rules apply (import, template, mapping suggest)."""
    return click.option(
        "--profile",
        type=click.Choice(sorted(PROFILES), case_sensitive=False),
        default=DEFAULT_PROFILE,
        show_default=True,
        help=help,
    )


def db_option(fn):
    return click.option(
        "--db",
        "db_url",
        envvar=db.ENV_URL,
        default=db.DEFAULT_URL,
        show_default=True,
        help=f"Database URL (SQLAlchemy form); else ${db.ENV_URL}.",
    )(fn)


class IsoDate(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx):
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                self.fail(f"{value} is not a real date", param, ctx)
            self.fail(f"{value!r} is not a date in YYYY-MM-DD form", param, ctx)


UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


class Bytes(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        found = re.fullmatch(r"\s*(\d+)\s*([KMG]?)I?B?\s*", str(value).upper())
        if not found:
            self.fail(f"{value!r} is not a size (a number of bytes, or with K, M or G)", param, ctx)
        return int(found.group(1)) * UNITS[found.group(2)]


@contextmanager
def reading(db_url: str) -> Iterator[Connection]:
    """A connection for a command that only reads (it never creates a database), whose errors
    read as one line naming the database."""
    engine = db.engine_for(db_url)
    try:
        with db.errors(db_url):
            db.ensure_schema(engine, create=False)
            with db.reading(engine) as conn:
                yield conn
    finally:
        engine.dispose()
