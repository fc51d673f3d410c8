"""Schema versions: the Alembic revisions in ``migrations/versions``, applied in order.

``upgrade`` brings any earlier database to the head revision (an empty one included), in one
transaction where the database's DDL is transactional. A database made before revisions
existed holds the first revision's tables and no version: it is stamped at the first
revision, then upgraded. Every command that reads or writes the tables checks the version
first with one query (``check``), and refuses a database behind or ahead of the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.errors import PipelineError

REVISIONS = ("0001", "0002", "0003")  # ``migrations/versions``, oldest first (a test holds them equal)
HEAD = REVISIONS[-1]
BASELINE = "0001"  # the schema ``db init`` made before revisions existed
VERSION_TABLE = "alembic_version"
TABLES = ("customers", "dependents", "import_rejects", "import_runs")
_SCRIPTS = Path(__file__).parent / "migrations"


class SchemaBehind(PipelineError):
    """The database's schema is not the one this importer writes (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class State:
    """Where a database stands: its revision (``None``: unversioned) and its tables."""

    revision: str | None
    tables: frozenset[str]

    @property
    def empty(self) -> bool:
        return self.revision is None and not (self.tables & set(TABLES))

    @property
    def unversioned(self) -> bool:
        """Made before revisions existed: the first revision's tables, and no version."""
        return self.revision is None and set(TABLES) <= self.tables

    def describe(self) -> str:
        if self.empty:
            return "no tables yet: `dependents db init` creates them"
        if self.revision == HEAD:
            return f"at revision {HEAD}, the newest this importer knows"
        if self.revision is not None and self.revision not in REVISIONS:
            return f"revision {self.revision}, newer than this importer knows ({HEAD}): upgrade the importer"
        if self.revision is None and not self.unversioned:
            found = ", ".join(sorted(self.tables & set(TABLES)))
            return f"only some of the importer's tables ({found}) and no schema revision"
        at = (
            "no schema revision (made before revisions)"
            if self.revision is None
            else f"revision {self.revision}"
        )
        return f"{at}; this importer writes revision {HEAD}: run `dependents db upgrade`"


def state(conn: Connection) -> State:
    tables = frozenset(sa.inspect(conn).get_table_names())
    revision = None
    if VERSION_TABLE in tables:
        revision = conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar()
    return State(revision, tables)


def check(conn: Connection, where: str) -> State:
    """Refuse a database whose schema is not the head revision (``where`` names it)."""
    found = state(conn)
    if found.revision != HEAD:
        raise SchemaBehind(f"database {where}: {found.describe()}")
    return found


def upgrade(engine: Engine) -> tuple[State, State]:
    """Bring the database to the head revision; returns where it stood before and after."""
    from alembic import command

    with engine.begin() as conn:
        before = state(conn)
        known = before.revision in REVISIONS or before.empty or before.unversioned
        if not known:
            raise SchemaBehind(f"database {engine.url.render_as_string()}: {before.describe()}")
        config = _config(conn)
        if before.unversioned:
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")
        after = state(conn)
    return before, after


def script_revisions() -> tuple[str, ...]:
    """The revisions among the scripts, oldest first (the test that holds ``REVISIONS`` to it)."""
    from alembic.script import ScriptDirectory

    walked = ScriptDirectory.from_config(_config(None)).walk_revisions()
    return tuple(reversed([script.revision for script in walked]))


def upgrade_to(conn: Connection, revision: str) -> None:
    """Apply the revisions up to ``revision`` on ``conn`` (tests build older databases so)."""
    from alembic import command

    command.upgrade(_config(conn), revision)


def _config(conn: Connection | None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = conn
    return config
