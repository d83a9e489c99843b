"""audit guard: on PostgreSQL the database itself refuses UPDATE, DELETE and TRUNCATE of audit events

Revision ID: 0006_audit_guard
Revises: 0003
Create Date: 2026-12-07 02:00:00

The trigger stops every role that does not own the table: the application's role cannot
rewrite or remove audit events, and cannot drop or disable the trigger either (only the
owner can ALTER the table). Run the application under a role of its own, not the owner
(docs/operations.md, "The audit log": the GRANTs). On SQLite whoever can write the file
controls it whole; there the checkpoints kept outside the database are the guard.
"""

from __future__ import annotations

from alembic import op

revision = "0006_audit_guard"
down_revision = "0010_decision_data"
branch_labels = None
depends_on = None

GUARD_FUNCTION = """
CREATE OR REPLACE FUNCTION kollega_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % on audit_events refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'The audit log is verified with kollega audit verify; it is never edited.';
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(GUARD_FUNCTION)
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION kollega_audit_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION kollega_audit_append_only()"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
    op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
    op.execute("DROP FUNCTION IF EXISTS kollega_audit_append_only()")
