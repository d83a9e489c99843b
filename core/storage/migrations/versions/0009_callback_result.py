"""callback result: what carrying out a decision did (summary, reference, time) or why it failed

Revision ID: 0009_callback_result
Revises: 0003
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_callback_result"
down_revision = "0006_audit_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_summary", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("callback_reference", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("callback_finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("callback_message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_column("callback_message")
        batch_op.drop_column("callback_finished_at")
        batch_op.drop_column("callback_reference")
        batch_op.drop_column("callback_summary")
