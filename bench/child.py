"""One measured job, in its own process so its peak RSS is its own: prints one JSON line.

``python -m bench.child JOB '{"url": ..., "path": ...}'`` where JOB is ``importer``,
``baseline`` or ``floor``.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

AS_OF = date(2026, 11, 22)


STEPS: dict[str, float] = {}  # the importer's own step timings (``Outcome.steps``), printed too
RSS_BY_ROWS: dict[str, object] = {}  # the importer's RSS as it reads the file (``Watch.peaks``)


class Watch:
    """This process's RSS every ``EVERY`` seconds beside an import, with how many rows it had
    read (told as ``Options.progress`` is): does memory grow as the file goes on? A peak
    alone cannot say; the peaks of each successive stretch of rows can. Reading
    ``/proc/self/status`` is cheap next to an import."""

    EVERY = 0.01

    def __init__(self) -> None:
        self.rows = 0
        self.samples: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="watch", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.EVERY):
            self.samples.append((self.rows, rss_mb()))

    # ``run.Progress``: the import tells it the rows it has read, chunk by chunk.
    def start(self, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        self.rows += rows

    def finish(self, rows: int) -> None:
        self.rows = rows

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self, every: int, rows_read: int) -> dict[str, object]:
        """The highest RSS while each successive ``every`` rows were read (the first stretch
        includes opening the file), and after the last row was read (the database's decision,
        the insert, the reports)."""
        stretches: list[float | None] = [None] * max(1, -(-rows_read // every))
        after = 0.0
        for rows, mb in self.samples:
            if rows >= rows_read:
                after = max(after, mb)
            else:  # a stretch read within one chunk has no sample of its own: None
                stretches[rows // every] = max(stretches[rows // every] or 0.0, mb)
        return {"every": every, "stretches": stretches, "after": after}


def importer(
    url: str,
    path: str,
    rebuild_indexes: str = "auto",
    rss_every: int = 1_000_000,
    on_existing: str = "reject",
) -> int:
    """The product: every rule, the database checks, one transaction, all four reports."""
    from pipeline.run import Options, import_file

    watch = Watch()
    with tempfile.TemporaryDirectory() as out:
        options = Options(
            as_of=AS_OF,
            report_dir=Path(out),
            force=True,
            rebuild_indexes=rebuild_indexes,
            on_existing=on_existing,
            progress=watch,
        )
        outcome = import_file(url, Path(path), options)
        STEPS.update(outcome.steps.seconds)
        RSS_BY_ROWS.update(watch.peaks(rss_every, outcome.run.rows_read))
        return outcome.run.rows_read


def baseline(url: str, path: str) -> int:
    """The obvious pandas way: read the whole file, the same Pandera schema, ``to_sql``."""
    import pandas as pd
    import sqlalchemy as sa

    from pipeline.database import db
    from pipeline.rows import columns
    from pipeline.rows.normalise import normalise
    from pipeline.rows.validate import Validator
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
    """The floor: the fastest way to put the same rows into a table with a key, nothing
    checked. pyarrow reads the file; each database takes it its fastest way."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from sqlalchemy.engine import make_url

    table = pacsv.read_csv(
        path, convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=False)
    )
    table = table.cast(pa.schema([(n, pa.string()) for n in table.column_names]))
    FLOORS[make_url(url).get_backend_name()](url, table)
    return table.num_rows


def _floor_sqlite(url: str, table) -> None:
    """The Arrow ADBC SQLite driver's bulk ingest (its own SQLite build, one transaction)."""
    import adbc_driver_sqlite.dbapi
    from sqlalchemy.engine import make_url

    cols = ", ".join(f'"{n}" TEXT' for n in table.column_names)
    with adbc_driver_sqlite.dbapi.connect(make_url(url).database) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS floor_dependents")
        cur.execute(f"CREATE TABLE floor_dependents (id INTEGER PRIMARY KEY, {cols})")
        cur.adbc_ingest("floor_dependents", table, mode="append")
        conn.commit()


def _floor_postgresql(url: str, table) -> None:
    """Binary ``COPY`` (encoded from Arrow by pgpq) into a table with a ``bigserial`` key."""
    import psycopg
    from pgpq import ArrowToPostgresBinaryEncoder

    from pipeline.database import db

    cols = ", ".join(f'"{n}" text' for n in table.column_names)
    names = ", ".join(f'"{n}"' for n in table.column_names)
    dsn = db.engine_for(url).url.set(drivername="postgresql").render_as_string(hide_password=False)
    encoder = ArrowToPostgresBinaryEncoder(table.schema)
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS floor_dependents")
        conn.execute(f"CREATE TABLE floor_dependents (id bigserial PRIMARY KEY, {cols})")
        sql = f"COPY floor_dependents ({names}) FROM STDIN (FORMAT binary)"
        with conn.cursor() as cur, cur.copy(sql) as copy:
            copy.write(encoder.write_header())
            for batch in table.to_batches(max_chunksize=16_384):
                copy.write(encoder.write_batch(batch))
            copy.write(encoder.finish())


def _floor_mysql(url: str, table) -> None:
    """Arrow-written CSV through ``LOAD DATA LOCAL INFILE`` into a table with an
    ``AUTO_INCREMENT`` key."""
    import pyarrow.csv as pacsv

    from pipeline.database import db

    cols = ", ".join(f"`{n}` TEXT" for n in table.column_names)
    names = ", ".join(f"`{n}`" for n in table.column_names)
    engine = db.engine_for(url)
    with tempfile.NamedTemporaryFile(suffix=".csv") as tmp, engine.begin() as conn:
        pacsv.write_csv(table, tmp.name, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        conn.exec_driver_sql("DROP TABLE IF EXISTS floor_dependents")
        conn.exec_driver_sql(f"CREATE TABLE floor_dependents (id BIGINT AUTO_INCREMENT PRIMARY KEY, {cols})")
        conn.exec_driver_sql(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE floor_dependents CHARACTER SET utf8mb4 FIELDS "
            "TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' "
            f"({names})",
            (tmp.name,),
        )
    engine.dispose()


FLOORS = {
    "sqlite": _floor_sqlite,
    "postgresql": _floor_postgresql,
    "mysql": _floor_mysql,
    "mariadb": _floor_mysql,
}


def _status_mb(field: str) -> float | None:
    """One memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MB, if it is there."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return None


def rss_mb() -> float:
    """This process's resident memory now."""
    return _status_mb("VmRSS") or 0.0


def peak_rss_mb() -> float:
    """This process's own peak RSS. ``VmHWM`` starts afresh at exec; ``ru_maxrss`` on Linux
    carries the parent's peak across fork and exec, which would credit the bench's own
    memory to every job."""
    found = _status_mb("VmHWM")
    return found if found is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


JOBS = {"importer": importer, "baseline": baseline, "floor": floor}

if __name__ == "__main__":
    job, args = sys.argv[1], json.loads(sys.argv[2])
    began = time.perf_counter()
    rows = JOBS[job](**args)
    seconds = time.perf_counter() - began
    peak_mb = peak_rss_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime  # every thread of this process, imports included
    out = {
        "rows": rows,
        "seconds": seconds,
        "peak_rss_mb": peak_mb,
        "cpu_seconds": cpu,
        "steps": STEPS,
        "rss_by_rows": RSS_BY_ROWS,
    }
    print(json.dumps(out))
