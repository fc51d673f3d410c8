"""One measured job, in its own process so its peak RSS is its own: prints one JSON line.

``python -m bench.child JOB '{"url": ..., "path": ...}'`` where JOB is ``importer``,
``baseline`` or ``floor``.
"""

from __future__ import annotations

import io
import json
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

AS_OF = date(2026, 11, 22)


STEPS: dict[str, float] = {}  # the importer's own step timings (``Outcome.steps``), printed too


def importer(url: str, path: str, rebuild_indexes: str = "auto") -> int:
    """The product: every rule, the database checks, one transaction, all four reports."""
    from pipeline.run import Options, import_file

    with tempfile.TemporaryDirectory() as out:
        options = Options(
            as_of=AS_OF,
            report_dir=Path(out),
            force=True,
            rebuild_indexes=rebuild_indexes,
        )
        outcome = import_file(url, Path(path), options)
        STEPS.update(outcome.steps.seconds)
        return outcome.run.rows_read


def baseline(url: str, path: str) -> int:
    """The obvious pandas way: read the whole file, the same Pandera schema, ``to_sql``."""
    import pandas as pd
    import sqlalchemy as sa

    from pipeline import columns, db
    from pipeline.normalise import normalise
    from pipeline.validate import Validator
    from schemas import PROFILES

    profile = PROFILES["add-dependent"]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.index = pd.RangeIndex(2, 2 + len(frame))
    cells = frame.set_axis(range(frame.shape[1]), axis=1)
    cmap = columns.match(list(frame.columns), profile, Path(path).name)
    typed = normalise(cells, cmap, profile, None)
    # Pandera's own lazy validate, as the obvious way calls it (``Validator.by_pandera``), not
    # the importer's runner of the same checks (``Validator.failures``).
    failures = Validator(profile, AS_OF, None).by_pandera(typed)
    good = frame.drop(index=failures["row"].unique())
    engine = sa.create_engine(db.engine_for(url).url)
    with engine.begin() as conn:
        good.to_sql("baseline_dependents", conn, if_exists="replace", index=False)
    engine.dispose()
    return len(frame)


def floor(url: str, path: str) -> int:
    """The floor: pyarrow reads the file, COPY writes it to PostgreSQL, nothing is checked."""
    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from pipeline import db

    table = pacsv.read_csv(
        path, convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=False)
    )
    table = table.cast(pa.schema([(n, pa.string()) for n in table.column_names]))
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
    cols = ", ".join(f'"{n}" text' for n in table.column_names)
    dsn = db.engine_for(url).url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS floor_dependents")
        conn.execute(f"CREATE TABLE floor_dependents ({cols})")
        with conn.cursor() as cur, cur.copy("COPY floor_dependents FROM STDIN (FORMAT csv)") as copy:
            copy.write(buf.getbuffer())
    return table.num_rows


def peak_rss_mb() -> float:
    """This process's own peak RSS. ``VmHWM`` starts afresh at exec; ``ru_maxrss`` on Linux
    carries the parent's peak across fork and exec, which would credit the bench's own
    memory to every job."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


JOBS = {"importer": importer, "baseline": baseline, "floor": floor}

if __name__ == "__main__":
    job, args = sys.argv[1], json.loads(sys.argv[2])
    began = time.perf_counter()
    rows = JOBS[job](**args)
    seconds = time.perf_counter() - began
    peak_mb = peak_rss_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime  # every thread of this process, imports included
    out = {"rows": rows, "seconds": seconds, "peak_rss_mb": peak_mb, "cpu_seconds": cpu, "steps": STEPS}
    print(json.dumps(out))
