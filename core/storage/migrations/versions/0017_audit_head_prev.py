"""audit head prev_hash: the head row keeps the hash it replaced, so one statement can append an event

On PostgreSQL an audit event is appended by one statement: it advances the head (seq, hash
computed in the database over the event's canonical JSON) and inserts the event, whose
``prev_hash`` is the hash the head held before. An UPDATE returns only the new values, so
the head keeps the one it replaced (core/audit.py, docs/architecture.md "The audit log").

Revision ID: 0017_audit_head_prev
Revises: 0016_inbox_indexes
Create Date: 2026-12-07 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_audit_head_prev"
down_revision = "0016_inbox_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("prev_hash")
