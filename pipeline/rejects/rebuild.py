"""``dependents report RUN_ID``: a run's reports written again from the database.

The ledger keeps the input's headers and every rejected row's cells, codes and
notifications, so the files come out as the import wrote them.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Connection

from pipeline.database import ledger
from pipeline.rejects import report
from pipeline.rows import columns
from schemas import PROFILES


def rebuild(conn: Connection, run: ledger.Run, out_dir: Path, include_pii: bool) -> dict[str, Path]:
    profile = PROFILES[run.profile]
    cmap = columns.match(run.columns, profile, run.file_name)
    layout = report.Layout(run.columns, cmap.report, cmap.positions, include_pii, cmap.origin)
    counts = ledger.code_counts(conn, run.id)
    return report.write(
        out_dir, report.stem_of(Path(run.file_name)), run, counts, layout, ledger.rejects(conn, run.id)
    )
