"""run records: the robot's version and code hash on each run, and each run's structured log

Revision ID: 0015_run_records
Revises: 0009_callback_result
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015_run_records"
down_revision = "0009_callback_result"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("robot_version", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("code_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("log_dropped", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "run_logs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=500), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("fields", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.UniqueConstraint("run_id", "seq", name="uq_run_logs_run_seq"),
    )
    op.create_index("ix_run_logs_run_level", "run_logs", ["run_id", "level"])
    op.create_index("ix_run_logs_run_item", "run_logs", ["run_id", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_run_logs_run_item", table_name="run_logs")
    op.drop_index("ix_run_logs_run_level", table_name="run_logs")
    op.drop_table("run_logs")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("log_dropped")
        batch_op.drop_column("code_hash")
        batch_op.drop_column("robot_version")
