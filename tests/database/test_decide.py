"""The decision's plan: which statements run follows from what is known before the rules."""

from __future__ import annotations

import pytest

from pipeline.database import decide, decide_sql

GROUPS = ["repeated", "repeats"]
LIMIT = ["crowded", "over"]
HELD = ["held", "held suspects"]


@pytest.mark.parametrize(
    ("known", "stored", "narrow", "self_service", "repeats", "crowded", "steps"),
    [
        (False, False, False, False, False, False, ["unknown customers"]),
        (False, False, True, False, False, False, ["unknown customers", "unknown among copied"]),
        (False, True, False, False, False, False, ["refused"]),
        (True, False, True, False, False, False, ["unknown among rejected"]),
        (True, True, False, False, False, False, ["unknown among rejected", "stored twins"]),
        (False, False, False, False, True, False, ["unknown customers", *GROUPS]),
        (False, False, False, True, False, False, ["unknown customers"]),
        (False, False, False, True, False, True, ["unknown customers", *LIMIT]),
        (False, True, False, True, False, False, ["refused", *HELD, *LIMIT]),
        (False, True, False, True, True, True, ["refused", *GROUPS, *HELD, *LIMIT]),
    ],
)
def test_plan_runs_only_the_statements_that_can_find_something(
    known, stored, narrow, self_service, repeats, crowded, steps
):
    plan = decide.plan(
        customers_known=known,
        stored=stored,
        narrow=narrow,
        self_service=self_service,
        repeats=repeats,
        crowded=crowded,
    )
    assert [s.name for s in plan.steps] == steps
    assert str(plan) == ", ".join(steps)


def test_verdict_numbers_come_from_the_catalogue():
    from schemas.codes import VERDICT

    assert "{" not in decide_sql.REFUSED.replace("{stored}", "")
    assert (
        f"THEN {VERDICT['CUSTOMER_NOT_FOUND']} ELSE {VERDICT['DEPENDENT_ALREADY_EXISTS']}"
        in decide_sql.REFUSED
    )
    assert sorted(VERDICT) == [
        "CUSTOMER_NOT_FOUND",
        "DEPENDENT_ALREADY_EXISTS",
        "DEPENDENT_LIMIT_REACHED",
        "DUPLICATE_IN_FILE",
    ]
