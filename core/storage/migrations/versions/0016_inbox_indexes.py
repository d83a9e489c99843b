"""inbox indexes: the queue counts of open items, and a person's own decisions

The inbox page counts each queue's open and overdue items and reads the person's recent
decisions on every view. With 20,000 open items and years of decided ones, the first read
every open row of the tenant's queues and the second every decided row of the tenant
(docs/benchmarks.md, "The morning rush").

Revision ID: 0016_inbox_indexes
Revises: 0011_robot_state
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_inbox_indexes"
down_revision = "0011_robot_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_review_items_open",
            ["tenant", "queue", "due_at", "created_at"],
            postgresql_where=sa.text("state = 'open'"),
            sqlite_where=sa.text("state = 'open'"),
        )
        batch_op.create_index("ix_review_items_decided_by", ["decided_by", "decided_at"])


def downgrade() -> None:
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_index("ix_review_items_decided_by")
        batch_op.drop_index("ix_review_items_open")
