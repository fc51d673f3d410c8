"""``dependents db init|upgrade|status``: the database's schema."""

from __future__ import annotations

import click

from pipeline.commands.options import db_option
from pipeline.database import db, dialects, migrate
from pipeline.guard import friendly


@click.group("db")
def db_group() -> None:
    """Manage the database."""


@db_group.command("init")
@db_option
@friendly
def db_init(db_url: str) -> None:
    """Create the tables (or bring an existing database to this version's schema)."""
    _upgrade(db_url)


@db_group.command("upgrade")
@db_option
@friendly
def db_upgrade(db_url: str) -> None:
    """Bring the database's schema to this version's, one revision at a time."""
    _upgrade(db_url)


@db_group.command("status")
@db_option
@friendly
def db_status(db_url: str) -> None:
    """Say which schema revision the database is at."""
    engine = db.engine_for(db_url)
    try:
        if not dialects.of(engine).exists(engine.url):
            click.echo(f"{db.masked(db_url)}: there is no such database yet (`dependents db init` makes one)")
            return
        with db.errors(db_url), engine.connect() as conn:
            found = migrate.state(conn)
    finally:
        engine.dispose()
    click.echo(f"{db.masked(db_url)}: {found.describe()}")


def _upgrade(db_url: str) -> None:
    engine = db.engine_for(db_url)
    try:
        with db.errors(db_url):
            before, after = db.init(engine)
    finally:
        engine.dispose()
    if before.revision == after.revision:
        click.echo(f"{db.masked(db_url)}: schema already at revision {after.revision}")
        return
    was = "empty" if before.empty else f"revision {before.revision or 'none (made before revisions)'}"
    click.echo(f"{db.masked(db_url)}: schema upgraded to revision {after.revision} (was {was})")
