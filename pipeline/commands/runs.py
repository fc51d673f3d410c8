"""``dependents runs [show|revert]`` and ``dependents report``: the ledger of import runs."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline import summary
from pipeline.commands.options import db_option, reading
from pipeline.database import db, ledger
from pipeline.database import revert as revert_lib
from pipeline.guard import friendly
from pipeline.rejects import rebuild
from pipeline.run import REPORTS


@click.group("runs", invoke_without_command=True)
@db_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.pass_context
@friendly
def runs_group(ctx: click.Context, db_url: str, limit: int) -> None:
    """List recent import runs (newest first)."""
    if ctx.invoked_subcommand:
        return
    with reading(db_url) as conn:
        runs = ledger.recent(conn, limit)
    if not runs:
        click.echo("No runs yet.")
        return
    click.echo(summary.RUNS_HEADER)
    for r in runs:
        click.echo(summary.run_line(r))


@runs_group.command("show")
@click.argument("run_id")
@db_option
@friendly
def runs_show(run_id: str, db_url: str) -> None:
    """Show one run (RUN_ID or a unique prefix of it) with its rejected rows per code."""
    with reading(db_url) as conn:
        r = ledger.resolve(conn, run_id)
        counts = ledger.code_counts(conn, r.id)
    for label, value in (
        ("run", r.id),
        ("file", r.file_name),
        ("sha256", r.sha256),
        ("size", f"{r.size_bytes} bytes"),
        ("profile", r.profile),
        ("channel", r.channel),
        ("as of", r.as_of),
        ("status", r.status),
        ("started", r.started_at),
        ("finished", r.finished_at),
        ("rows read", r.rows_read),
        ("accepted", r.accepted),
        *((name, getattr(r, name)) for name in db.RESULTS),
        ("rejected", r.rejected),
        ("reverted", r.reverted_at),
        ("source run", r.source_run_id),
        ("lookups", ", ".join(f"{n} v{v}" for n, v in r.lookups.items()) or None),
        ("message", r.message),
    ):
        if value is not None:
            click.echo(f"{label + ':':<12}{value}")
    for code, n in counts.most_common():
        click.echo(f"  {code:<28}{n}")


@runs_group.command("revert")
@click.argument("run_id")
@db_option
@click.option(
    "--dry-run", is_flag=True, help="Say how many dependents it would remove and restore; change nothing."
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Give up (exit 5) after waiting this long for an import into the same database.  [default: wait]",
)
@friendly
def runs_revert(run_id: str, db_url: str, dry_run: bool, lock_timeout: float | None) -> None:
    """Undo an import (RUN_ID or a unique prefix): remove the dependents it inserted and give
    those it updated their old values back, in one transaction."""
    done = revert_lib.revert_run(db_url, run_id, dry_run, lock_timeout)
    click.echo(summary.describe_revert(done))


@click.command("report")
@click.argument("run_id")
@db_option
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The reports go in a folder named for the run in here.  [default: reports]",
)
@click.option("--include-pii", is_flag=True, help="Write SSNs in full (masked by default).")
@friendly
def report_cmd(run_id: str, db_url: str, report_dir: Path | None, include_pii: bool) -> None:
    """Write a run's reports again from the database (RUN_ID or a unique prefix)."""
    with reading(db_url) as conn:
        r = ledger.resolve(conn, run_id)
        paths = rebuild.rebuild(conn, r, (report_dir or REPORTS) / r.id, include_pii)
    click.echo(f"Reports for run {r.id}: {paths['rejects_csv'].parent}")
