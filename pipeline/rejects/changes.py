"""``--changes FILE.csv``: each field an updating import changes, with its old and new value.

Read back from ``dependent_changes`` inside the import's transaction (so a dry run lists what
a real run would change, before its rollback), written to a private file beside the target
and moved into place once the run's outcome is final. SSNs are masked unless asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline import pii
from pipeline.database import db
from pipeline.errors import ReportError
from schemas.fields import BY_COLUMN

COLUMNS = ["row", "dependentId", "field", "oldValue", "newValue"]
API_NAMES = {column: field.name for column, field in BY_COLUMN.items()}


class ChangesFile:
    """The changes list of one import, written in private, then published or discarded."""

    def __init__(self, target: Path, include_pii: bool = False):
        self.target, self.include_pii = target, include_pii
        self.draft = target.with_name(f".{target.name}.{os.getpid()}.part")
        self._check_folder()

    def _check_folder(self) -> None:
        """Refuse, before any database work, a list that could not be written (exit 2)."""
        folder = self.target.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportError(f"--changes {self.target}: cannot create {folder} ({exc.strerror})") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ReportError(f"--changes {self.target}: the folder {folder} cannot be written")

    def write(self, conn: Connection, run_id: str, size: int = 50_000) -> None:
        """The run's changes in row order (``updated_at`` is history, not a change asked for)."""
        t = db.dependent_changes
        q = (
            sa.select(t.c.source_row, t.c.dependent_id, t.c.field, t.c.old_value, t.c.new_value)
            .where(t.c.run_id == run_id, t.c.field != "updated_at")
            .order_by(t.c.source_row, t.c.field)
        )
        with pii.open_private(self.draft, newline="", encoding="utf-8") as out:
            pd.DataFrame(columns=COLUMNS).to_csv(out, index=False)
            result = conn.execute(q, execution_options={"yield_per": size})
            for part in result.partitions(size):
                self._frame(part).to_csv(out, index=False, header=False)

    def _frame(self, rows: list) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=COLUMNS, dtype="object")
        column = frame["field"]
        frame["field"] = column.map(API_NAMES)
        if not self.include_pii:
            ssn = column.eq("ssn")
            for side in ("oldValue", "newValue"):
                frame.loc[ssn, side] = pii.mask_ssn(frame.loc[ssn, side]).where(frame.loc[ssn, side].notna())
        return frame

    def publish(self) -> Path | None:
        """Move the list into place, if one was written (the run found changes to make)."""
        if not self.draft.exists():
            return None
        self.draft.replace(self.target)
        return self.target

    def discard(self) -> None:
        self.draft.unlink(missing_ok=True)
