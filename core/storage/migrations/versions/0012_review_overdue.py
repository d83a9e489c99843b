"""review overdue: an open item past its deadline is marked (overdue_at) and escalated once (escalated_at)

Before this revision a worker closed such items as ``expired``, unseen. Now they stay open;
the new state ``lapsed`` (an item whose robot found it lost its point) needs no schema change
(states are stored as strings).

Revision ID: 0012_review_overdue
Revises: 0014_idp_grants
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_review_overdue"
down_revision = "0014_idp_grants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_review_items_due", ["state", "due_at"])


def downgrade() -> None:
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_index("ix_review_items_due")
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("overdue_at")
