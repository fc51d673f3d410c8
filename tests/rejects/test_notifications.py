"""Failures -> one notification list per rejected row: each distinct code and additionalData
is rendered once, and gives exactly what rendering every failure would."""

from __future__ import annotations

import json

import pandas as pd

from pipeline.database.load import SELF_SERVICE_LIMIT, Verdicts
from pipeline.rejects.notifications import assemble, notification, with_details
from schemas.codes import ORDER


def test_verdict_details_are_what_json_dumps_writes():
    frame = pd.DataFrame(
        {
            "row": [2, 3, 4, 5, 6],
            "verdict": [1, 2, 3, 4, 4],
            "ref_row": [-1, -1, 2, -1, -1],
            "existing": [-1, -1, -1, 0, 7],  # none stored yet: the count says the limit
            "candidate": [1, 1, 1, 1, 1],
        }
    )
    found = Verdicts(frame).failures(2, 6)
    want = [
        {"field": "customerId"},
        {"field": "customerId"},
        {"field": "customerId", "row": 2},
        {"field": "customerId", "limit": SELF_SERVICE_LIMIT, "count": SELF_SERVICE_LIMIT},
        {"field": "customerId", "limit": SELF_SERVICE_LIMIT, "count": 7},
    ]
    assert found["details"].tolist() == [json.dumps(w) for w in want]
    assert found["code"].tolist() == [
        "CUSTOMER_NOT_FOUND",
        "DEPENDENT_ALREADY_EXISTS",
        "DUPLICATE_IN_FILE",
        "DEPENDENT_LIMIT_REACHED",
        "DEPENDENT_LIMIT_REACHED",
    ]
    assert Verdicts(frame).failures(3, 4)["row"].tolist() == [3, 4]


def test_notifications_rendered_once_per_distinct_failure_equal_each_rendered():
    static = {
        "FIRST_NAME_REQUIRED": {"field": "firstName"},
        "LAST_NAME_TOO_LONG": {"field": "lastName", "limit": 50},
    }
    rows = pd.DataFrame(
        {
            "row": [9, 9, 4, 4, 7],
            "code": ["LAST_NAME_TOO_LONG", "FIRST_NAME_REQUIRED"] * 2 + ["LAST_NAME_TOO_LONG"],
        }
    )
    failures = pd.concat(
        [
            with_details(rows, static),
            pd.DataFrame(
                {
                    "row": [4, 7, 8],
                    "code": ["DUPLICATE_IN_FILE", "DUPLICATE_IN_FILE", "CUSTOMER_NOT_FOUND"],
                    "details": [
                        '{"field": "customerId", "row": 2}',
                        '{"field": "customerId", "row": 3}',
                        '{"field": "customerId"}',
                    ],
                }
            ),
        ],
        ignore_index=True,
    )
    got = assemble(failures)
    assert got.index.tolist() == [4, 7, 8, 9]
    for row, found in got.iterrows():
        mine = failures[failures["row"] == row]
        notes = [notification(c, json.loads(d)) for c, d in zip(mine["code"], mine["details"], strict=True)]
        notes.sort(key=lambda n: ORDER[n["code"]])  # the catalogue's order
        parsed = json.loads(found["notifications"])
        assert parsed == notes
        assert found["codes"].split(";") == [n["code"] for n in notes]
        assert found["messages"] == " ".join(n["text"] for n in parsed)
    assert json.loads(got.loc[7, "notifications"])[1]["additionalData"] == {"field": "customerId", "row": 3}
