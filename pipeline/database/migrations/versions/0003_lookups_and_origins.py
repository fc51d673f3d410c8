"""Lookups as reference data: the genders and home languages lists in the database, filled
with the defaults of their day, and the version of each list a run read; a dependent loaded
from a corrected rejects report keeps the run and row it first came from.

Revision ID: 0003
Revises: 0002
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MOMENT = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
DEFAULTS = {
    "genders": ("Male", "Female", "Non-Binary", "Other", "Prefer Not to Say"),
    "home_languages": (
        *("Afrikaans", "English", "isiNdebele", "isiXhosa", "isiZulu", "Sepedi", "Sesotho"),
        *("Setswana", "siSwati", "Tshivenda", "Xitsonga", "South African Sign Language", "Other"),
    ),
}


def upgrade() -> None:
    lists = op.create_table(
        "lookup_lists",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("loaded_at", MOMENT, nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
    )
    values = op.create_table(
        "lookup_values",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.String(100), nullable=False),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(
        lists, [{"name": n, "version": 1, "loaded_at": now, "source": "defaults"} for n in DEFAULTS]
    )
    op.bulk_insert(
        values,
        [{"name": n, "position": i, "value": v} for n, vs in DEFAULTS.items() for i, v in enumerate(vs)],
    )
    with op.batch_alter_table("import_runs") as runs:
        runs.add_column(sa.Column("lookups", sa.String(500)))
    with op.batch_alter_table("dependents") as dependents:
        dependents.add_column(sa.Column("origin_run_id", sa.String(36)))
        dependents.add_column(sa.Column("origin_row", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("dependents") as dependents:
        dependents.drop_column("origin_row")
        dependents.drop_column("origin_run_id")
    with op.batch_alter_table("import_runs") as runs:
        runs.drop_column("lookups")
    op.drop_table("lookup_values")
    op.drop_table("lookup_lists")
