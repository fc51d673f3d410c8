"""(row, code, details) failures -> one notification list per rejected row.

Each notification has the Add Dependent ApiResponse shape: ``severity``, ``code``,
``text``, ``additionalData``. Texts come from the catalogue and are filled only
from ``additionalData`` (limits, dates, row numbers), never from a cell, so no
PII reaches a message. Work here is proportional to the rejected rows only.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from schemas.codes import BY_CODE, ORDER


def with_details(failures: pd.DataFrame, details: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Attach each row-level code's static additionalData (field, limit...)."""
    return failures.assign(details=failures["code"].map(lambda c: details.get(c, {})))


def notification(code: str, details: dict[str, Any]) -> dict[str, Any]:
    entry = BY_CODE[code]
    return {
        "severity": entry.severity,
        "code": code,
        "text": entry.render(details),
        "additionalData": details,
    }


def assemble(failures: pd.DataFrame) -> pd.DataFrame:
    """Per rejected row (index ``row``): ``codes`` (;-joined), ``messages``, ``notifications`` (JSON)."""
    if failures.empty:
        return pd.DataFrame(
            {"codes": [], "messages": [], "notifications": []}, index=pd.Index([], name="row")
        ).astype("str")
    ordered = failures.assign(order=failures["code"].map(ORDER)).sort_values(["row", "order"], kind="stable")
    notes = [notification(c, d) for c, d in zip(ordered["code"], ordered["details"], strict=True)]
    ordered = ordered.assign(
        text=[n["text"] for n in notes], note=[json.dumps(n, ensure_ascii=False) for n in notes]
    )
    grouped = ordered.groupby("row", sort=True)
    return pd.DataFrame(
        {
            "codes": grouped["code"].agg(";".join),
            "messages": grouped["text"].agg(" ".join),
            "notifications": "[" + grouped["note"].agg(",".join) + "]",
        }
    )
