"""Run one row through columns -> normalise -> validate, without a database."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipeline import columns
from pipeline.normalise import normalise
from pipeline.validate import Validator
from schemas import PROFILES

AS_OF = date(2026, 11, 22)
CUSTOMER = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
VALID = {
    "add-dependent": {
        "customerId": CUSTOMER,
        "firstName": "Abigail",
        "lastName": "Jones",
        "birthDate": "2019-01-04",
    },
    "carecycle": {"customerId": CUSTOMER},
}


def frame_for(cells: dict[str, str], profile: str = "add-dependent", date_order=None) -> pd.DataFrame:
    headers = list(cells)
    chunk = pd.DataFrame([list(cells.values())], index=pd.Index([2], name="row"), dtype="str")
    chunk.columns = range(len(headers))
    cmap = columns.match(headers, PROFILES[profile], "test.csv")
    return normalise(chunk, cmap, PROFILES[profile], date_order)


def codes_for(
    overrides: dict[str, str], profile: str = "add-dependent", as_of: date = AS_OF, date_order=None
) -> set[str]:
    """The codes one row gets: the profile's valid row with ``overrides`` applied. Pandera's own
    lazy ``validate`` must find the same, so every rule test holds the two to each other."""
    cells = {**VALID[profile], **overrides}
    frame = frame_for(cells, profile, date_order)
    validator = Validator(PROFILES[profile], as_of, date_order)
    found = set(validator.failures(frame)["code"])
    assert found == set(validator.by_pandera(frame)["code"])
    return found
