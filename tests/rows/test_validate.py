"""The validator runs the schema's checks one by one; Pandera's lazy ``validate`` is the reference.

Every rule test (``tests/helpers.codes_for``) already asks both for one row; these ask them of
whole files, and check that a schema needing more than the checks alone is refused.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pandera.pandas as pa
import pytest

from bench import generate
from pipeline.rows import columns
from pipeline.rows.normalise import normalise
from pipeline.rows.validate import Validator, _refuse_unrun
from schemas import PROFILES
from tests.helpers import AS_OF_DATE as AS_OF
from tests.helpers import SAMPLES


def typed(frame: pd.DataFrame, profile: str) -> pd.DataFrame:
    """A file's text as the import checks it: sheet rows from 2, typed columns beside the text."""
    cells = frame.set_axis(range(frame.shape[1]), axis=1).set_axis(pd.RangeIndex(2, 2 + len(frame)))
    cmap = columns.match(list(frame.columns), PROFILES[profile], "test.csv")
    return normalise(cells, cmap, PROFILES[profile], None)


def both(frame: pd.DataFrame, profile: str, as_of: date = AS_OF) -> tuple[pd.DataFrame, pd.DataFrame]:
    validator = Validator(PROFILES[profile], as_of, None)
    order = ["row", "code"]
    fast = validator.failures(frame).sort_values(order, ignore_index=True)
    reference = validator.by_pandera(frame.copy()).sort_values(order, ignore_index=True)
    return fast, reference


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_sample_file_fails_as_pandera_says(profile):
    frame = pd.read_csv(SAMPLES / "dependents.csv", dtype="str", keep_default_na=False)
    fast, reference = both(typed(frame, profile), profile)
    assert len(fast) > 10  # the sample breaks many rules: this is not two empty frames
    pd.testing.assert_frame_equal(fast, reference)


def test_twenty_thousand_generated_rows_fail_as_pandera_says():
    customers = generate.customer_ids(7_000)
    frame = generate.dependents(20_000, customers)
    fast, reference = both(typed(frame, "add-dependent"), "add-dependent", date(2026, 11, 22))
    assert fast["code"].nunique() == 5 and len(fast) > 900
    pd.testing.assert_frame_equal(fast, reference)


def test_a_chunk_with_no_failure_is_an_empty_table():
    frame = pd.DataFrame({"customerId": [generate.customer_ids(1)[0]], "firstName": ["Ann"]}, dtype="str")
    fast = Validator(PROFILES["carecycle"], AS_OF, None).failures(typed(frame, "carecycle"))
    assert fast.empty and list(fast.columns) == ["row", "code"] and fast["row"].dtype == "int64"


@pytest.mark.parametrize(
    "schema",
    [
        pa.DataFrameSchema({"a": pa.Column(int, required=False)}),
        pa.DataFrameSchema({"a": pa.Column(required=False, unique=True)}),
        pa.DataFrameSchema({"a": pa.Column(required=False, coerce=True)}),
        pa.DataFrameSchema({"a": pa.Column(required=False, default="x")}),
        pa.DataFrameSchema({"a": pa.Column()}),  # required
        pa.DataFrameSchema({"a": pa.Column(required=False)}, checks=[pa.Check(lambda f: True)]),
        pa.DataFrameSchema({"a": pa.Column(required=False, checks=[pa.Check(len, element_wise=True)])}),
        pa.DataFrameSchema({"a": pa.Column(required=False, checks=[pa.Check.ge(0, raise_warning=True)])}),
    ],
    ids=["dtype", "unique", "coerce", "default", "required", "frame check", "element-wise", "warning"],
)
def test_a_schema_asking_more_than_checks_is_refused(schema):
    with pytest.raises(ValueError):
        _refuse_unrun(schema)


def test_a_check_that_judges_a_whole_column_is_a_bug_not_a_row(monkeypatch):
    validator = Validator(PROFILES["carecycle"], AS_OF, None)
    column = validator.built.schema.columns["first_name"]
    monkeypatch.setattr(column, "checks", [pa.Check(lambda s: False, error="X")])
    row = {"customerId": [generate.customer_ids(1)[0]], "firstName": ["Ann"]}
    frame = typed(pd.DataFrame(row, dtype="str"), "carecycle")
    with pytest.raises(RuntimeError, match="whole column"):
        validator.failures(frame)
