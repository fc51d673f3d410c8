"""The ``dependents`` command: parses options and calls the library, nothing more.

Exit statuses are ``pipeline.guard``'s, one set for every command.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

import click

from pipeline import batch as batch_lib
from pipeline import config, inbox, progress, summary
from pipeline import run as run_lib
from pipeline.commands.customers import customers_group
from pipeline.commands.db import db_group
from pipeline.commands.lookups import lookups_group
from pipeline.commands.mapping import mapping_group
from pipeline.commands.options import Bytes, IsoDate, db_option, profile_option
from pipeline.commands.runs import report_cmd, runs_group
from pipeline.commands.template import template_cmd
from pipeline.database import db, decide, indexes
from pipeline.errors import UsageError
from pipeline.guard import friendly
from pipeline.options import CHUNK_SIZE


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": config.ENV_PREFIX}
)
@click.version_option(package_name="dependents-import")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=config.ENV,
    help=f"Settings file (import's long options as keys); else ${config.ENV}, else ./{config.LOCAL}.",
)
@click.pass_context
@friendly
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Bulk import of dependents from CSV/XLSX into a SQL database, validated against the
    CareCycle v2 and Add Dependent v2.0 contracts."""
    settings = config.load(config.find(config_path), import_)
    ctx.meta["settings"] = settings
    ctx.default_map = config.default_map(cli, settings)


@cli.command("import")
@click.argument("paths", metavar="PATH...", nargs=-1, required=True, type=click.Path(path_type=Path))
@db_option
@profile_option("Which contract's rules every row must meet.")
@click.option(
    "--channel",
    type=click.Choice(decide.CHANNELS, case_sensitive=False),
    default="self-service",
    show_default=True,
    help=f"self-service allows at most {decide.SELF_SERVICE_LIMIT} dependents per customer.",
)
@click.option(
    "--as-of", type=IsoDate(), help="The date the age and not-in-future rules use.  [default: today]"
)
@click.option(
    "--date-order",
    type=click.Choice(["DMY", "MDY"], case_sensitive=False),
    help="Read 04/01/2019-style dates in this order; without it they are rejected, never guessed.",
)
@click.option(
    "--encoding", help="CSV text encoding.  [default: detected: UTF-8 (BOM or not), UTF-16, cp1252]"
)
@click.option("--delimiter", help="CSV delimiter.  [default: sniffed from , ; or tab]")
@click.option("--sheet", help="XLSX sheet name.  [default: the first sheet]")
@click.option(
    "--header-row",
    type=click.IntRange(min=1),
    metavar="N",
    help="The sheet row holding the header; the rows above it (titles, notes) are skipped.  [default: 1]",
)
@click.option(
    "--mapping",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A mapping file (TOML): the export's headers to fields, its values to allowed ones, "
    "its sheet, header row and date order.",
)
@click.option(
    "--on-unknown-column",
    type=click.Choice(["warn", "fail"], case_sensitive=False),
    default="warn",
    show_default=True,
    help="A column neither mapped, aliased nor ignored on purpose: warn and ignore it, or refuse the file.",
)
@click.option(
    "--max-unpacked-size",
    type=Bytes(),
    help="Refuse a workbook whose parts would unpack to more than this (e.g. 2G, 500M).  [default: 1G]",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=CHUNK_SIZE,
    show_default=True,
    help="Rows per chunk; memory grows with this, not with the file (larger: faster, more memory).",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Each run's reports go in a folder of its own in here, named for the run.  [default: reports]",
)
@click.option("--dry-run", is_flag=True, help="Apply every rule and write the report; commit nothing.")
@click.option(
    "--force",
    is_flag=True,
    help="Import a file that already has a succeeded run (duplicates still rejected).",
)
@click.option(
    "--max-reject-rate",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Commit nothing (exit 3) when more than this fraction of rows is rejected.",
)
@click.option("--include-pii", is_flag=True, help="Write SSNs in full in the reports (masked by default).")
@click.option(
    "--rebuild-indexes",
    type=click.Choice(indexes.MODES, case_sensitive=False),
    default="auto",
    show_default=True,
    help=(
        f"For a load of {indexes.MIN_ROWS:,}+ rows that at least doubles the table. PostgreSQL: set "
        "the keys, natural-key index and customer foreign key aside, insert, then rebuild and "
        "re-check them before the commit, holding the table exclusively until then. SQLite: "
        "insert without the natural-key index, then build it. auto: only if no one is using "
        "the table; always: wait for it; never: check row by row."
    ),
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Give up (exit 5) after waiting this long for another import into the same database, "
    "or for any lock another session holds.  [default: wait]",
)
@click.option(
    "--on-existing",
    type=click.Choice(decide.ON_EXISTING, case_sensitive=False),
    default="reject",
    show_default=True,
    help="A row whose dependent is stored already (same customer, names and birth date): "
    "reject it, update the stored dependent from its non-empty cells, or skip it.",
)
@click.option(
    "--changes",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --on-existing update: write each changed field (row, dependent id, old and new "
    "value) to this CSV file.",
)
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    help="Move each file whose run committed into this folder (same filesystem).",
)
@click.option(
    "--quarantine",
    type=click.Path(file_okay=False, path_type=Path),
    help="Move each refused or aborted file into this folder, with <name>.why.txt beside it.",
)
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    default=inbox.SETTLE,
    show_default=True,
    metavar="SECONDS",
    help="Leave a file in a folder for the next run if it changed less than this long ago.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"], case_sensitive=False),
    default="text",
    show_default=True,
    help="json: one JSON object per file on stdout (counts, run, reports, move), then one for the batch.",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="No progress bar (there is none anyway when stderr is not a terminal).",
)
@click.option(
    "--timings",
    is_flag=True,
    help="Say on stderr how many seconds each step took (reading, checking and staging; the "
    "database's decision; the insert; ...).",
)
@friendly
def import_(
    paths: tuple[Path, ...],
    db_url: str,
    quiet: bool,
    timings: bool,
    archive: Path | None,
    quarantine: Path | None,
    settle: float,
    log_format: str,
    **options,
) -> None:
    """Import the dependents in each PATH (a CSV file or a workbook, or a folder standing for the
    spreadsheets directly inside it), each file in its own transaction."""
    if options["changes"] and len(paths) > 1:
        raise UsageError("--changes names one file of changes: import one file with it")
    options["progress"] = progress.for_terminal(quiet)
    where = batch_lib.Inbox(archive, quarantine, settle)
    said = _log_done if log_format == "json" else partial(_say_done, timings=timings)
    done = batch_lib.import_all(db_url, list(paths), run_lib.Options(**options), where, said)
    if log_format == "json":
        click.echo(json.dumps(summary.batch_event(done)))
    for line in summary.describe_batch(done) if log_format == "text" else ():
        click.echo(line, err=True)
    sys.exit(done.exit_code)


def _log_done(done: batch_lib.Done) -> None:
    click.echo(json.dumps(summary.file_event(done)))


def _say_done(done: batch_lib.Done, timings: bool) -> None:
    """One file's end, as a single import says it: its warnings, summary or error, and move."""
    if done.error:
        click.echo(f"Error: {done.error}", err=True)
    else:
        for warning in done.outcome.warnings:
            click.echo(f"Warning: {warning}", err=True)
        click.echo(summary.describe(done.outcome))
        if timings:
            click.echo(summary.describe_steps(done.outcome.steps), err=True)
    if done.moved_to:
        click.echo(f"Moved {done.path.name} to {done.moved_to}", err=True)


@cli.group("config")
def config_group() -> None:
    """The settings in force."""


@config_group.command("show")
@click.pass_context
@friendly
def config_show(ctx: click.Context) -> None:
    """Print each setting of `import` in force (flags aside) and where it came from."""
    settings = ctx.find_root().meta["settings"]
    click.echo(f"settings file: {settings.path or 'none'}")
    for key, value, source in config.sources(import_, ["import"], settings):
        shown = db.masked(str(value)) if key == "db" else value
        click.echo(f"{key:<20}{'(unset)' if shown is None else shown!s:<40}  {source}")


for group in (db_group, customers_group, runs_group, report_cmd, lookups_group, mapping_group, template_cmd):
    cli.add_command(group)

if __name__ == "__main__":
    cli()
