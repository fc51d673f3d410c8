"""One chunk checked: its typed columns and every row rule's failures, with their additionalData.

The profile's rules, then cells too long for any spreadsheet, then ragged rows (more or fewer
cells than the header), whose code stands alone. A corrected rejects report's rows also carry
where each first came from (``origin_row``, and the first run when it is known).
"""

from __future__ import annotations

import pandas as pd

from pipeline.rejects.notifications import with_details, with_ragged
from pipeline.rows import columns
from pipeline.rows.normalise import normalise
from pipeline.rows.validate import Validator, long_cells
from schemas import parse


def check_chunk(
    chunk: pd.DataFrame,
    cmap: columns.ColumnMap,
    validator: Validator,
    date_order: parse.DateOrder | None,
    headers: list[str],
    origin_run: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One chunk's typed columns and its row-rule failures (row, code, details)."""
    frame = normalise(chunk, cmap, validator.profile, date_order)
    failures = with_details(validator.failures(frame), validator.details, frame, date_order)
    too_long = long_cells(chunk, headers)
    if len(too_long):
        failures = pd.concat([failures, too_long.astype(failures.dtypes.to_dict())], ignore_index=True)
    if cmap.origin is not None:
        frame["origin_row"] = columns.origin_rows(chunk[cmap.origin])
        if origin_run:
            frame["origin_run_id"] = origin_run
    return frame, with_ragged(failures, chunk.attrs.get("ragged"))
