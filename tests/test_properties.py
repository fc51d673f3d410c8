"""Generated CSV contents: awkward quoting, delimiters, line endings, encodings, ragged rows
and values valid or not. Whatever Hypothesis writes, the import ends in 0, 1 or 2 without a
traceback; the database holds exactly the rows it reports accepted; every row that is not
blank is stored or reported, once; and a reported row's cells are the file's."""

from __future__ import annotations

import csv
import itertools
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.rows.normalise import FORMULA_START
from schemas import parse
from tests.helpers import AS_OF, C1, C2, customers_csv, execute, invoke, query

pytestmark = pytest.mark.slow

HEADER = ["customerId", "firstName", "lastName", "birthDate", "gender", "email", "notes"]
AWKWARD = "\"',;\t\r\n =+-@ \u00a0éßØ€“”\u200b\ufeff\x00漢😀"

text = st.text(alphabet=st.sampled_from(AWKWARD) | st.characters(codec="utf-8"), max_size=12)
names = st.sampled_from(["Ann", " Bo ", "", "O'Neil", "Zoë", "x" * 50, "x" * 51]) | text
dates = st.sampled_from(
    ["2019-01-04", "2008-11-23", "2008-11-22", "2026-11-23", "2019-02-30", "04/01/2019", ""]
)
cells = {
    "customerId": st.sampled_from([C1, C2, C1.upper(), "33333333-3333-4333-8333-333333333333", "", "nope"]),
    "firstName": names,
    "lastName": names,
    "birthDate": dates | st.dates().map(str),
    "gender": st.sampled_from(["Male", "female", " FEMALE ", "X", ""]) | text,
    "email": st.sampled_from(["a@b.co", "a@", ""]) | text,
    "notes": text,
}
GOOD = [C1, "Ann", "Lee", "2019-01-04", "Female", "a@b.co", ""]
row = (
    st.fixed_dictionaries(cells).map(list)
    | st.just(GOOD)
    | st.builds(lambda n: [C2, n, "Lee", "2019-01-04", "", "", ""], names)
)
ragged = st.tuples(row, st.sampled_from([0, 0, 0, 0, -1, 1, 3])).map(
    lambda r: r[0][: len(r[0]) + r[1]] if r[1] < 0 else r[0] + ["extra"] * r[1]
)
files = st.fixed_dictionaries(
    {
        "rows": st.lists(ragged, min_size=1, max_size=25),
        "delimiter": st.sampled_from([",", ";", "\t"]),
        "quote_all": st.booleans(),
        "newline": st.sampled_from(["\r\n", "\n"]),
        "encoding": st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
    }
)
EXAMPLES = 60 if os.environ.get("CI") else 150
numbered = itertools.count()


def written(path: Path, f: dict) -> Path:
    """The file Hypothesis described, in its encoding (cp1252 only where UTF-8 cannot be
    mistaken for it: the reader tries UTF-8 first, as the README says)."""
    lines = [f["delimiter"].join(quoted(c, f) for c in cells) for cells in [HEADER, *f["rows"]]]
    content = "".join(line + f["newline"] for line in lines)
    encoding = f["encoding"]
    if encoding == "cp1252":
        try:
            content.encode("cp1252").decode("utf-8")
            encoding = "utf-8"  # its bytes read as UTF-8 too: write it as such
        except UnicodeEncodeError:
            encoding = "utf-8"
        except UnicodeDecodeError:
            pass
    path.write_bytes(content.encode(encoding))
    return path


def quoted(cell: str, f: dict) -> str:
    """A cell as RFC 4180 writes it: quoted if it holds the delimiter, a quote or either line
    break (Python's writer leaves a lone CR bare when lines end in LF: a row break to a reader)."""
    if f["quote_all"] or any(c in cell for c in (f["delimiter"], '"', "\r", "\n")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


@pytest.fixture
def url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'props.db'}"
    invoke("customers", "load", customers_csv(tmp_path / "c.csv", [C1, C2]), "--db", url)
    return url


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),  # CI runs the same examples every time
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(f=files)
def test_every_row_is_stored_or_reported_once_with_its_cells(url, tmp_path, f):
    n = next(numbered)
    execute(url, "DELETE FROM dependents")  # each example starts from the same customers
    path = written(tmp_path / f"p{n}.csv", f)
    out = tmp_path / f"r{n}"
    args = ["--delimiter", f["delimiter"]] if f["delimiter"] != "," else []
    result = invoke("import", path, "--db", url, "--as-of", AS_OF, "--force", "--report-dir", out, *args)
    event(f"exit {result.exit_code}")
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output and len(result.stderr.splitlines()) <= 4, result.stderr
    if result.exit_code == 2:
        assert result.stderr.startswith(f"Error: {path.name}"), result.stderr
        return
    run_id = result.stdout.split("Run ")[-1].split(";")[0]
    (read, accepted, rejected), *_ = query(
        url, "SELECT rows_read, accepted, rejected FROM import_runs WHERE id = :r", r=run_id
    )
    stored = [
        r for (r,) in query(url, "SELECT source_row FROM dependents WHERE import_run_id = :r", r=run_id)
    ]
    reported = rejects(out / run_id / f"{path.stem}.rejects.csv")
    expected = {i for i, cells in enumerate(f["rows"], start=2) if any(c != "" for c in cells)}
    event(f"rows stored: {'some' if stored else 'none'}; rejected: {'some' if reported else 'none'}")
    assert len(stored) == accepted and len(reported) == rejected and read == accepted + rejected
    assert set(stored).isdisjoint(reported) and set(stored) | set(reported) == expected
    for number, (codes, shown) in reported.items():
        source = f["rows"][number - 2]
        if "ROW_CELL_COUNT" in codes:
            assert len(source) != len(HEADER)
            continue
        assert shown == [as_reported(c) for c in source], number


def rejects(path: Path) -> dict[int, tuple[list[str], list[str]]]:
    """The rejects CSV: row -> (codes, the row's cells under the file's headers)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return {int(r["row"]): (r["codes"].split(";"), [r[h] for h in HEADER]) for r in csv.DictReader(fh)}


def as_reported(cell: str) -> str:
    """A cell as the report shows it: behind a ``'`` if a spreadsheet would run it as a formula,
    with each character XML cannot hold as U+FFFD (its row is rejected for it)."""
    cell = "'" + cell if cell.startswith(FORMULA_START) else cell
    return re.sub(parse.NOT_XML, "\ufffd", cell)
