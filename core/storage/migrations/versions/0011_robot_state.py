"""robot state: a robot's own small state per tenant, kept across runs (e.g. warnings per application)

Revision ID: 0011_robot_state
Revises: 0012_review_overdue
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_robot_state"
down_revision = "0012_review_overdue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "robot_state",
        sa.Column("robot", sa.String(length=100), nullable=False),
        sa.Column("tenant", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("robot", "tenant", "key"),
    )


def downgrade() -> None:
    op.drop_table("robot_state")
