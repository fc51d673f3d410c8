"""``dependents lookups``: the lookup lists an import checks gender and home language against."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.commands.options import db_option, reading
from pipeline.database import db
from pipeline.database import lookups as lookups_lib
from pipeline.guard import friendly
from schemas.lookups import LOOKUPS

NAME = click.Choice(sorted(LOOKUPS))


@click.group("lookups")
def lookups_group() -> None:
    """The lookup lists in the database (genders, home languages)."""


@lookups_group.command("list")
@click.argument("name", type=NAME)
@db_option
@friendly
def lookups_list(name: str, db_url: str) -> None:
    """Print a lookup's values, one a line, after a line with its version."""
    with reading(db_url) as conn:
        found = lookups_lib.listed(conn, name)
    click.echo(f"# {name}, version {found.version}: {len(found.values)} values")
    for value in found.values:
        click.echo(value)


@lookups_group.command("load")
@click.argument("name", type=NAME)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--replace", is_flag=True, help="The file becomes the whole list.  [default: its values are added]"
)
@db_option
@friendly
def lookups_load(name: str, file: Path, replace: bool, db_url: str) -> None:
    """Add a CSV's `value` column to a lookup (or replace the list with it)."""
    engine = db.engine_for(db_url)
    try:
        with db.errors(db_url):
            db.ensure_schema(engine, create=False)
            with engine.begin() as conn:
                loaded = lookups_lib.load(conn, name, file, replace)
    finally:
        engine.dispose()
    if loaded.after.version == loaded.before.version:
        click.echo(f"{name}: unchanged at version {loaded.after.version}")
        return
    click.echo(
        f"{name}: version {loaded.after.version}, {len(loaded.added)} added, "
        f"{len(loaded.removed)} removed, {len(loaded.after.values)} values"
    )
