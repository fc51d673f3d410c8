"""``dependents template``: a blank import sheet for a profile."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.commands.options import profile_option
from pipeline.errors import UsageError
from pipeline.guard import friendly
from schemas import PROFILES


@click.command("template")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@profile_option()
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@friendly
def template_cmd(out: Path, profile: str, force: bool) -> None:
    """Write a blank import sheet OUT.xlsx with every column the profile stores, each header
    commented with its rule, and drop-down lists of the allowed values."""
    from pipeline.template import write_template  # openpyxl: not imported by every command

    if out.exists() and not force:
        raise UsageError(f"{out}: exists already; pass --force to replace it")
    write_template(out, PROFILES[profile])
    click.echo(f"Template for {profile}: {out}")
