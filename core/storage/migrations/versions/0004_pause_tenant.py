"""pause_tenant: a schedule pause belongs to one tenant (a shared schedule runs on for the others)

Revision ID: 0004_pause_tenant
Revises: 0003
Create Date: 2026-12-07 02:00:00

Before this revision a pause was stored by schedule name and applied to every tenant
(issue 17, M2). The table is rebuilt with the primary key (schedule, tenant); a pause
made before keeps its meaning as tenant ``*`` (every tenant) until operations staff of a
municipality resume their share of it. A downgrade cannot say "paused for one tenant":
a schedule paused for any tenant is then paused for all (the cautious reading).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004_pause_tenant"
down_revision = "0005_login"
branch_labels = None
depends_on = None

_OLD = sa.table(
    "schedule_pauses",
    sa.column("schedule", sa.String),
    sa.column("paused_by", sa.String),
    sa.column("paused_at", sa.DateTime(timezone=True)),
    sa.column("reason", sa.String),
)


def _create(with_tenant: bool) -> sa.Table:
    columns: list[sa.Column[Any]] = [sa.Column("schedule", sa.String(length=128), nullable=False)]
    if with_tenant:
        columns.append(sa.Column("tenant", sa.String(length=4), nullable=False))
    columns += [
        sa.Column("paused_by", sa.String(length=200), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
    ]
    key = ("schedule", "tenant") if with_tenant else ("schedule",)
    return op.create_table("schedule_pauses", *columns, sa.PrimaryKeyConstraint(*key))


def upgrade() -> None:
    conn = op.get_bind()
    rows = [dict(r._mapping) for r in conn.execute(sa.select(_OLD))]
    op.drop_table("schedule_pauses")
    table = _create(with_tenant=True)
    if rows:
        op.bulk_insert(table, [{**r, "tenant": "*"} for r in rows])


def downgrade() -> None:
    conn = op.get_bind()
    rows = [dict(r._mapping) for r in conn.execute(sa.select(_OLD).order_by(_OLD.c.paused_at))]
    op.drop_table("schedule_pauses")
    table = _create(with_tenant=False)
    first: dict[str, dict[str, object]] = {}
    for r in rows:
        first.setdefault(str(r["schedule"]), r)
    if first:
        op.bulk_insert(table, list(first.values()))
