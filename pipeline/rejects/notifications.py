"""(row, code, details) failures -> one notification list per rejected row.

Each notification has the Add Dependent ApiResponse shape: ``severity``, ``code``,
``text``, ``additionalData``. Texts come from the catalogue and are filled only
from ``additionalData`` (limits, dates, row numbers, and the cells of the few fields
that hold no personal data), so no PII reaches a message. Work here is proportional
to the rejected rows only.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from schemas import parse
from schemas.codes import BY_CODE, DATE_ORDER_HINT, ORDER
from schemas.fields import BY_NAME

SHOWN_VALUE = 60  # characters of a rejected cell a message shows
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'  # what JSON escapes in a string; the rest goes in as it is


def json_strings(text: pd.Series) -> pd.Series:
    """Each value as a JSON string, column-wise; the few that need escaping one by one."""
    quoted = '"' + text + '"'
    escape = text.str.contains(_NEEDS_ESCAPE).fillna(False).astype(bool)
    if escape.any():
        quoted[escape] = text[escape].map(json.dumps)
    return quoted


def json_objects(fields: dict[str, Any]) -> Any:
    """additionalData as JSON text, exactly as ``json.dumps`` writes it: a constant field
    once, a Series field column-wise (then the result is a Series, one object per row)."""
    text: Any = "{"
    for i, (key, value) in enumerate(fields.items()):
        text = text + ("" if i == 0 else ", ") + json.dumps(key) + ": "
        text = text + (value.astype("str") if isinstance(value, pd.Series) else json.dumps(value))
    return text + "}"


def with_details(
    failures: pd.DataFrame,
    details: dict[str, dict[str, Any]],
    frame: pd.DataFrame | None = None,
    date_order: str | None = None,
) -> pd.DataFrame:
    """Attach each row-level code's additionalData as JSON text: its static part (field,
    limit...) written once per code, and for the codes that carry a per-row part (the value
    given, a hint) that part from the row's cell in ``frame``. The spool keeps the text and
    ``assemble`` reads it as it is."""
    text = {code: json_objects(d) for code, d in details.items()}
    out = failures.assign(details=failures["code"].map(text).fillna("{}").astype("str"))
    if frame is None:
        return out
    for code in out["code"].unique():
        if BY_CODE[code].data and code in details:
            at = (out["code"] == code).to_numpy()
            cells = frame[BY_NAME[details[code]["field"]].column].reindex(out.loc[at, "row"].to_numpy())
            out.loc[at, "details"] = _per_row(code, details[code], cells, date_order).to_numpy()
    return out


def _per_row(code: str, static: dict[str, Any], cells: pd.Series, date_order: str | None) -> pd.Series:
    """additionalData of one row code's failing rows, with the parts that differ by row."""
    if "value" in BY_CODE[code].data:  # ``field`` first, then the value, then what is allowed
        shown = cells.fillna("").str.slice(0, SHOWN_VALUE).str.replace(parse.NOT_XML, "\ufffd", regex=True)
        rest = {k: v for k, v in static.items() if k != "field"}
        return json_objects({"field": static["field"], "value": json_strings(shown), **rest})
    plain = pd.Series(json_objects(static), index=cells.index)
    if date_order is not None:
        return plain
    hinted = cells.str.fullmatch(parse.NUMERIC_DATE[1:-1]).fillna(False).astype(bool)
    return plain.where(~hinted, json_objects({**static, "hint": DATE_ORDER_HINT}))


def with_ragged(failures: pd.DataFrame, ragged: dict[int, tuple[int, int]] | None) -> pd.DataFrame:
    """A chunk's failures with its ragged rows' (more or fewer cells than the header): each such
    row gets ``ROW_CELL_COUNT`` alone, since its cells may not be where the header says."""
    if not ragged:
        return failures
    rows = pd.Series(list(ragged), dtype="int64")
    expected = pd.Series([e for e, _ in ragged.values()], dtype="int64")
    found = pd.Series([f for _, f in ragged.values()], dtype="int64")
    own = pd.DataFrame(
        {
            "row": rows,
            "code": "ROW_CELL_COUNT",
            "details": json_objects({"expected": expected, "found": found}),
        }
    )
    kept = failures[~failures["row"].isin(rows)]
    return pd.concat([kept, own.astype(kept.dtypes.to_dict())], ignore_index=True)


def notification(code: str, details: dict[str, Any]) -> dict[str, Any]:
    entry = BY_CODE[code]
    return {
        "severity": entry.severity,
        "code": code,
        "text": entry.render(details),
        "additionalData": details,
    }


def assemble(failures: pd.DataFrame) -> pd.DataFrame:
    """Per rejected row (index ``row``): ``codes`` (;-joined), ``messages``, ``notifications``
    (JSON). ``failures``: row, code, details (additionalData as JSON text). Each distinct code
    and additionalData becomes a notification once, not once per failure."""
    if failures.empty:
        return pd.DataFrame(
            {"codes": [], "messages": [], "notifications": []}, index=pd.Index([], name="row")
        ).astype("str")
    ordered = failures.assign(order=failures["code"].map(ORDER)).sort_values(["row", "order"], kind="stable")
    which, distinct = pd.factorize(ordered["code"] + "\x1f" + ordered["details"], use_na_sentinel=False)
    notes = [notification(*_split(pair)) for pair in distinct]
    table = pa.table(
        {
            "row": ordered["row"].to_numpy(),
            "code": ordered["code"].to_numpy(dtype=object),
            "text": pa.array([n["text"] for n in notes], pa.string()).take(which),
            "note": pa.array([json.dumps(n, ensure_ascii=False) for n in notes], pa.string()).take(which),
        }
    )
    # Arrow's single-threaded group-by keeps each row's codes in catalogue order, joined in C.
    grouped = table.group_by("row", use_threads=False).aggregate(
        [("code", "list"), ("text", "list"), ("note", "list")]
    )
    return (
        pd.DataFrame(
            {
                "codes": _joined(grouped["code_list"], ";"),
                "messages": _joined(grouped["text_list"], " "),
                "notifications": "[" + _joined(grouped["note_list"], ",") + "]",
            },
            index=pd.Index(grouped["row"].to_numpy(), name="row"),
        )
        .astype("str")
        .sort_index()
    )  # Arrow's group order is not promised: reports go in input order


def _split(pair: str) -> tuple[str, dict[str, Any]]:
    """``code<US>details`` -> the code and its additionalData (JSON escapes a US, so the first is the one)."""
    code, details = pair.split("\x1f", 1)
    return code, json.loads(details)


def _joined(lists: pa.ChunkedArray, sep: str) -> np.ndarray:
    return pc.binary_join(lists, sep).to_numpy(zero_copy_only=False)
