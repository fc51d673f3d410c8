"""``dependents mapping suggest``: a draft mapping file for another system's export."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.commands.options import db_option, profile_option
from pipeline.database import lookups
from pipeline.errors import UsageError
from pipeline.guard import friendly


@click.group("mapping")
def mapping_group() -> None:
    """Mapping files for other systems' exports."""


@mapping_group.command("suggest")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the draft here (refused if it exists).  [default: stdout]",
)
@profile_option("Whose fields and allowed values the draft proposes.")
@click.option("--sheet", help="XLSX sheet name.  [default: the first sheet]")
@click.option(
    "--header-row", type=click.IntRange(min=1), metavar="N", help="The header's row.  [default: found]"
)
@db_option
@friendly
def mapping_suggest(
    file: Path, out: Path | None, profile: str, sheet: str | None, header_row: int | None, db_url: str
) -> None:
    """Draft a mapping file for FILE: its headers matched to fields, its values the rules would
    reject matched to allowed ones (the database's lookups, or the shipped defaults when there is
    no database yet), each with a comment to check."""
    from pipeline.rows import suggest  # difflib and the draft: only for this command

    if out is not None and out.exists():
        raise UsageError(f"{out}: exists already; name another file or remove it")
    rules = lookups.profile_at(db_url, profile)
    draft = suggest.suggest(file, rules, sheet, header_row)
    text = suggest.render(draft, rules)
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"Draft mapping for {file.name}: {out}", err=True)
