"""``dependents customers load``: the customers dependents attach to."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline import summary
from pipeline.commands.options import db_option
from pipeline.database import customers as customers_lib
from pipeline.guard import friendly


@click.group("customers")
def customers_group() -> None:
    """Manage the customers dependents attach to."""


@customers_group.command("load")
@click.argument("file", type=click.Path(path_type=Path))
@db_option
@click.option("--encoding", help="CSV text encoding.  [default: detected]")
@click.option("--delimiter", help="CSV delimiter.  [default: sniffed]")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Rejected rows go in customers-<time>/ in here.  [default: reports]",
)
@friendly
def customers_load(
    file: Path, db_url: str, encoding: str | None, delimiter: str | None, report_dir: Path | None
) -> None:
    """Load customers from FILE (an `id` column, optional names, email, phone); existing ids
    are skipped, rows that break a rule rejected with their codes."""
    loaded = customers_lib.load_customers(db_url, file, encoding, delimiter, report_dir)
    for warning in loaded.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(
        f"{file.name}: {summary.counted(loaded.read, 'customer')} read, {loaded.added} added, "
        f"{loaded.skipped} already present, {loaded.rejected} rejected."
    )
    if loaded.report:
        click.echo(f"Rejects report: {loaded.report}")
    sys.exit(loaded.exit_code)
