"""An import's opening: its mapping file read, the database's engine (its schema checked and its
lookup lists read), the file opened beside it, and the file's headers matched to fields."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.engine import Engine

from pipeline.database import db, lookups
from pipeline.database.lookups import Listed
from pipeline.options import Options
from pipeline.rows import columns, mapping
from pipeline.rows.read import Source, open_source
from schemas import PROFILES
from schemas.rules import Profile


@dataclass
class Opened:
    engine: Engine
    src: Source
    lookups: dict[str, Listed]
    profile: Profile  # with the database's lookup lists
    cmap: columns.ColumnMap


def with_mapping(options: Options) -> tuple[Options, mapping.Mapping | None]:
    """The options with the mapping file's sheet, header row and date order where the command
    line gave none (its own choices beat the file's), and the mapping."""
    if not options.mapping:
        return options, None
    m = mapping.load(options.mapping)
    merged = replace(
        options,
        sheet=options.sheet or m.sheet,
        header_row=options.header_row or m.header_row,
        date_order=options.date_order or m.date_order,
    )
    return merged, m


def open_import(url: str, path: Path, options: Options, mapped: mapping.Mapping | None) -> Opened:
    """Connect, open the file and match its headers; the engine is disposed of on any error."""
    engine, src, found = connect_and_open(url, path, options)
    try:
        profile = lookups.ruled(PROFILES[options.profile], found)
        if mapped:  # its values are checked against the database's lookups
            mapped.check(profile)
        cmap = columns.match(
            src.headers,
            profile,
            src.path.name,
            mapped.columns if mapped else None,
            options.on_unknown_column,
            src.header_at,
        )
    except BaseException:
        engine.dispose()
        raise
    cmap.values = mapped.values if mapped else {}
    return Opened(engine, src, found, profile, cmap)


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
