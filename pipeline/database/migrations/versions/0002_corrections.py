"""Corrections: what each accepted row did, reverted runs, and the history of updated fields;
a run's times to the microsecond on MariaDB/MySQL, as elsewhere.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UUID = sa.Uuid(as_uuid=False).with_variant(sa.CHAR(36), "sqlite", "mysql", "mariadb")
RESULTS = ("inserted", "updated", "unchanged", "skipped")
MOMENT = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("import_runs") as runs:
        for name in RESULTS:
            runs.add_column(sa.Column(name, sa.Integer, nullable=False, server_default="0"))
        runs.add_column(sa.Column("reverted_at", MOMENT))
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        op.alter_column("import_runs", "started_at", type_=MOMENT, existing_nullable=False)
        op.alter_column("import_runs", "finished_at", type_=MOMENT, existing_nullable=True)
    # Every run before this revision inserted each row it accepted.
    op.execute("UPDATE import_runs SET inserted = accepted WHERE status = 'succeeded'")
    op.create_table(
        "dependent_changes",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("dependent_id", UUID, primary_key=True),
        sa.Column("field", sa.String(40), primary_key=True),
        sa.Column("source_row", sa.Integer, nullable=False),
        sa.Column("old_value", sa.Text),
        sa.Column("new_value", sa.Text),
        sa.Column("changed_at", MOMENT, nullable=False),
    )
    op.create_index("ix_dependent_changes_dependent", "dependent_changes", ["dependent_id"])


def downgrade() -> None:
    op.drop_table("dependent_changes")
    with op.batch_alter_table("import_runs") as runs:
        for name in (*RESULTS, "reverted_at"):
            runs.drop_column(name)
