"""``dependents template``: a blank import sheet for a profile."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.commands.options import db_option, profile_option
from pipeline.database import lookups
from pipeline.errors import UsageError
from pipeline.guard import friendly


@click.command("template")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@profile_option()
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@db_option
@friendly
def template_cmd(out: Path, profile: str, force: bool, db_url: str) -> None:
    """Write a blank import sheet OUT.xlsx with every column the profile stores, each header
    commented with its rule, and drop-down lists of the allowed values (the database's lookups,
    or the shipped defaults when there is no database yet)."""
    from pipeline.template import write_template  # openpyxl: not imported by every command

    if out.exists() and not force:
        raise UsageError(f"{out}: exists already; pass --force to replace it")
    write_template(out, lookups.profile_at(db_url, profile))
    click.echo(f"Template for {profile}: {out}")
