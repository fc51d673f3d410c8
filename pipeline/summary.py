"""What an import says when it ends: its counts, its reports, and on request its timings."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from pipeline.batch import Batch, Done
from pipeline.database.db import RESULTS
from pipeline.database.ledger import Run
from pipeline.database.revert import Reverted
from pipeline.rows.columns import listed
from pipeline.run import Outcome
from pipeline.timings import Steps


def describe_steps(steps: Steps) -> str:
    """``Timings: staging 3.91 s, decision 2.52 s, ...; total 12.13 s`` (the steps overlap)."""
    parts = [f"{name} {seconds:.2f} s" for name, seconds in steps.seconds.items() if name != "total"]
    total = steps.seconds.get("total")
    tail = f"; total {total:.2f} s" if total is not None else ""
    beside = "the assembly and the reports run beside the decision, the insert and the ledger"
    timings = f"Timings: {', '.join(parts)}{tail} ({beside})"
    return timings + (f"\nDecision plan: {steps.plan}" if steps.plan else "")


def describe(outcome: Outcome) -> str:
    r = outcome.run
    verb = {
        "succeeded": "committed",
        "dry run": "dry run, nothing committed",
        "aborted": "aborted, nothing committed",
    }[r.status]
    accepted = "accepted" if r.status == "succeeded" else "would be accepted"
    lines = [
        f"{r.file_name}: {counted(r.rows_read, 'row')} read, {r.accepted} {accepted}{results_of(r)}, "
        f"{r.rejected} rejected ({verb})."
    ]
    if r.message:
        lines.append(r.message)
    if outcome.counts:
        top = ", ".join(f"{code} {n}" for code, n in outcome.counts.most_common(5))
        lines.append(f"Most frequent: {top}")
    if r.rejected:
        named = [outcome.reports[kind] for kind in ("rejects_xlsx", "rejects_csv", "notifications")]
        lines.append(f"Rejects reports in {named[0].parent}: {', '.join(p.name for p in named)}")
    if "changes" in outcome.reports:
        lines.append(f"Changes: {outcome.reports['changes']}")
    if outcome.include_pii:
        lines.append("SSNs are written in full in the reports (--include-pii).")
    lines.append(f"Run {r.id}; summary: {outcome.reports['summary']}")
    return "\n".join(lines)


def describe_revert(done: Reverted) -> str:
    """What ``runs revert`` did, or with ``--dry-run`` would do."""
    removed = counted(done.removed, "dependent")
    restored = counted(done.restored, "dependent")
    if done.dry_run:
        return (
            f"Reverting run {done.run.id} would remove {removed} it inserted and restore {restored} "
            "it updated (--dry-run: nothing changed)."
        )
    return f"Reverted run {done.run.id}: removed {removed} it inserted, restored {restored} it updated."


def describe_batch(batch: Batch) -> list[str]:
    """The closing lines of an import of several files (none for one file imported alone):
    what each file came to, what was left for later, and the batch's status."""
    lines = []
    if batch.settling:
        names = [p.name for p in batch.settling]
        lines.append(f"Left for the next run, changed too recently (--settle): {listed(names)}")
    if batch.left:
        lines.append(f"Not tried, the batch stopped: {listed([p.name for p in batch.left])}")
    if len(batch.done) == 1 and not lines:
        return lines
    by_status = Counter(done.exit_code for done in batch.done)
    ended = "".join(f", {n} {BATCH_STATUS[code]}" for code, n in sorted(by_status.items()))
    lines.append(f"{counted(len(batch.done), 'file')} imported{ended}; exit status {batch.exit_code}")
    return lines


def file_event(done: Done) -> dict:
    """One file's end as a JSON log event: what a monitor needs, never a cell's value."""
    run = done.outcome.run if done.outcome else None
    event = {
        "event": "file",
        "time": _now(),
        "file": str(done.path),
        "exit": done.exit_code,
        "outcome": BATCH_STATUS[done.exit_code],
        "run": run.id if run else done.error.run_id,
        "status": run.status if run else None,
        "message": str(done.error) if done.error else (run.message or None),
        "movedTo": str(done.moved_to) if done.moved_to else None,
    }
    if run:
        counts = {"rowsRead": run.rows_read, "accepted": run.accepted, "rejected": run.rejected}
        event |= counts | {name: getattr(run, name) for name in RESULTS}
        event["reports"] = str(done.outcome.reports["summary"].parent)
        event["warnings"] = done.outcome.warnings
    return event


def batch_event(batch: Batch) -> dict:
    """The batch's end as a JSON log event."""
    return {
        "event": "batch",
        "time": _now(),
        "files": len(batch.done),
        "exit": batch.exit_code,
        "outcomes": dict(Counter(BATCH_STATUS[d.exit_code] for d in batch.done)),
        "settling": [str(p) for p in batch.settling],
        "left": [str(p) for p in batch.left],
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


BATCH_STATUS = {
    0: "clean",
    1: "with rejected rows",
    2: "refused",
    3: "aborted",
    4: "stopped by the database",
    5: "stopped by a lock",
}


def counted(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


RUNS_HEADER = (
    f"{'run':<36}  {'started (UTC)':<16}  {'status':<11}  {'profile':<13}  "
    f"{'read':>8}  {'accepted':>8}  {'rejected':>8}  file"
)


def run_line(r: Run) -> str:
    """One run under ``RUNS_HEADER``; a run that did not commit shows what it would have accepted."""
    accepted = f"{r.accepted:>8}" if r.status in ("succeeded", "reverted") else f"{f'({r.accepted})':>8}"
    return (
        f"{r.id}  {r.started_at:%Y-%m-%d %H:%M}  {r.status:<11}  {r.profile:<13}  "
        f"{r.rows_read:>8}  {accepted}  {r.rejected:>8}  {r.file_name}" + results_of(r)
    )


def results_of(run: Run) -> str:
    """`` (3 inserted, 2 updated, 1 unchanged)`` when some rows matched stored dependents."""
    if not (run.updated or run.unchanged or run.skipped):
        return ""
    found = [(name, getattr(run, name)) for name in RESULTS]
    return " (" + ", ".join(f"{n} {name}" for name, n in found if n or name == "inserted") + ")"
