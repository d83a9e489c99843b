"""identity-provider grants and SAML: grants by source, SAML identities, requests and seen assertions

Grants get a ``source``: ``local`` (an admin's) or ``idp`` (the identity provider's, replaced
at every sign-in). Grants of accounts that sign in through OpenID Connect were written by
the sign-in's role sync (on by default), so they become ``idp``; everyone else's stay
``local``. Deployments that ran with ``sync_roles = false`` and granted their OIDC accounts
by hand: their grants became IdP grants; `kollega users grant NAME --grant … --revoke --idp`
removes one, `kollega users grant` gives local ones.

Revision ID: 0014_idp_grants
Revises: 0015_run_records
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_idp_grants"
down_revision = "0015_run_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_user_roles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=8), nullable=False, server_default="local"))
        batch_op.drop_constraint("uq_web_user_roles", type_="unique")
        batch_op.create_unique_constraint("uq_web_user_roles", ["user_id", "role", "tenant", "queue", "source"])
    users = sa.table("web_users", sa.column("id"), sa.column("oidc_subject"))
    oidc_users = sa.select(users.c.id).where(users.c.oidc_subject.is_not(None))
    roles = sa.table("web_user_roles", sa.column("user_id"), sa.column("source"))
    op.execute(roles.update().where(roles.c.user_id.in_(oidc_users)).values(source="idp"))
    with op.batch_alter_table("web_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("saml_issuer", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("saml_subject", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint("uq_web_users_saml", ["saml_issuer", "saml_subject"])
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idp_name_id", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("idp_session_index", sa.String(length=200), nullable=True))
    op.create_table(
        "web_saml_requests",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("browser_binding", sa.String(length=64), nullable=False),
        sa.Column("next_url", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_table(
        "web_saml_assertions_seen",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )


def downgrade() -> None:
    op.drop_table("web_saml_assertions_seen")
    op.drop_table("web_saml_requests")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_column("idp_session_index")
        batch_op.drop_column("idp_name_id")
    with op.batch_alter_table("web_users", schema=None) as batch_op:
        batch_op.drop_constraint("uq_web_users_saml", type_="unique")
        batch_op.drop_column("saml_subject")
        batch_op.drop_column("saml_issuer")
    # An IdP grant that duplicates a local one would break the old unique constraint; the rest stay.
    op.execute(
        "DELETE FROM web_user_roles WHERE source = 'idp' AND EXISTS (SELECT 1 FROM web_user_roles AS l "
        "WHERE l.source = 'local' AND l.user_id = web_user_roles.user_id AND l.role = web_user_roles.role "
        "AND l.tenant = web_user_roles.tenant AND l.queue = web_user_roles.queue)"
    )
    with op.batch_alter_table("web_user_roles", schema=None) as batch_op:
        batch_op.drop_constraint("uq_web_user_roles", type_="unique")
        batch_op.create_unique_constraint("uq_web_user_roles", ["user_id", "role", "tenant", "queue"])
        batch_op.drop_column("source")
