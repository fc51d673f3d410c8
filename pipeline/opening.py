"""An import's opening: the database's engine, its schema checked and its lookup lists read,
and the file opened beside it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy.engine import Engine

from pipeline.database import db, lookups
from pipeline.database.lookups import Listed
from pipeline.options import Options
from pipeline.rows.read import Source, open_source
from schemas import PROFILES


def connect_and_open(url: str, path: Path, options: Options) -> tuple[Engine, Source, dict[str, Listed]]:
    """The database's engine (its schema checked), the opened file, and the lookup lists the
    profile uses, as the database holds them. The file is opened on a thread of its own
    meanwhile (its hash and decoding check mostly let go of the GIL). A database error is
    raised before a file error, as when they ran one after the other."""
    with ThreadPoolExecutor(1, thread_name_prefix="open") as opener:
        opened = opener.submit(
            open_source,
            path,
            encoding=options.encoding,
            delimiter=options.delimiter,
            sheet=options.sheet,
            max_unpacked=options.max_unpacked_size,
            header_row=options.header_row,
        )
        engine = db.engine_for(url)
        try:
            with db.errors(url):
                db.ensure_schema(engine)
                with db.reading(engine) as conn:
                    found = lookups.read(conn, list(PROFILES[options.profile].lookups))
            return engine, opened.result(), found
        except BaseException:
            engine.dispose()
            raise
