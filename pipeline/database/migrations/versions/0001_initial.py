"""The first schema: customers, dependents, the run ledger and its rejected rows.

Spelled out here, not taken from ``db.metadata``: a revision must keep making the schema of
its day when the code's tables change (``test_migrate`` holds the head to the code).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UUID = sa.Uuid(as_uuid=False).with_variant(sa.CHAR(36), "sqlite", "mysql", "mariadb")
NAME_KEY = (
    sa.String(511)
    .with_variant(mysql.VARCHAR(511, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb")
    .with_variant(sa.String(511, collation="C"), "postgresql")
)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("first_name", sa.String(255)),
        sa.Column("last_name", sa.String(255)),
        sa.Column("email", sa.String(255)),
        sa.Column("phone", sa.String(50)),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "import_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("profile", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("source_run_id", sa.String(36)),
        sa.Column("columns", sa.Text),
        sa.Column("message", sa.String(1000)),
    )
    op.create_index("ix_import_runs_sha256", "import_runs", ["sha256"])
    op.create_table(
        "dependents",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("customer_id", UUID, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("first_name", sa.String(255)),
        sa.Column("middle_name", sa.String(255)),
        sa.Column("last_name", sa.String(255)),
        sa.Column("date_of_birth", sa.Date),
        sa.Column("gender", sa.String(50)),
        sa.Column("relationship_type", sa.String(20)),
        sa.Column("home_language", sa.String(100)),
        sa.Column("annual_income", sa.Integer),
        sa.Column("phone", sa.String(50)),
        sa.Column("email", sa.String(255)),
        sa.Column("ssn", sa.String(11)),
        sa.Column("is_covered", sa.Boolean),
        sa.Column("coverage_start_date", sa.Date),
        sa.Column("coverage_end_date", sa.Date),
        sa.Column("is_active", sa.Boolean),
        sa.Column("notes", sa.String(1000)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("import_run_id", sa.String(36)),
        sa.Column("source_row", sa.Integer),
        sa.Column("name_key", NAME_KEY),
    )
    op.create_index(
        "ux_dependents_natural_key", "dependents", ["customer_id", "date_of_birth", "name_key"], unique=True
    )
    op.create_table(
        "import_rejects",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("row", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("codes", sa.Text, nullable=False),
        sa.Column("messages", sa.Text, nullable=False),
        sa.Column("notifications", sa.Text, nullable=False),
        sa.Column("cells", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("import_rejects", "dependents", "import_runs", "customers"):
        op.drop_table(table)
