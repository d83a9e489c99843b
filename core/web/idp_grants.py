"""Grants from the identity provider (OpenID Connect or SAML), kept apart from local ones.

At every sign-in the IdP's grants of the person are recomputed — from the mapped groups
(``[[web.idp_groups]]``: "IdP group" → role, tenant, queues) and, for OpenID Connect, from
the ``roles``/``tenants``/``queues`` claims — and they replace the person's earlier IdP
grants (``web_user_roles.source = 'idp'``). Grants an IT admin gave in Kollega
(``source = 'local'``) are never touched by a sign-in. A change is audited, one event per
municipality it touches, with the grants added and removed.

An IdP can never grant a municipality the deployment does not serve: the mapping is checked
against ``[[tenants]]`` when the app starts (:func:`check_mapping`), and any IdP grant in
another tenant is dropped at sign-in and named in the audit event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.errors import ConfigError
from core.logging import get_logger
from core.storage.web_models import GrantSource, Role, User, UserRole
from core.web.auth import Grant
from core.web.settings import IdpGroupGrant

log = get_logger("kollega.web.idp")


def check_mapping(mapping: Iterable[IdpGroupGrant], tenants: Iterable[str]) -> None:
    """Refuse (ConfigError) a mapping that grants a municipality the deployment does not serve."""
    known = set(tenants)
    for rule in mapping:
        if rule.tenant not in known:
            raise ConfigError(
                f"[[web.idp_groups]] group {rule.group!r} grants tenant {rule.tenant}, which is not in [[tenants]]"
            )


def mapped_grants(groups: Iterable[str], mapping: Iterable[IdpGroupGrant]) -> set[Grant]:
    """The grants the person's groups give (exact, case-sensitive group names; unmapped groups give none)."""
    held = set(groups)
    grants: set[Grant] = set()
    for rule in mapping:
        if rule.group not in held:
            continue
        if rule.queues:
            grants.update(Grant(rule.role, rule.tenant, q) for q in rule.queues)
        else:
            grants.add(Grant(rule.role, rule.tenant))
    return grants


def _label(g: Grant) -> str:
    return f"{g.role.value}:{g.tenant}:{g.queue}"


def sync(
    s: Session, user: User, wanted: set[Grant], *, tenants: Iterable[str], via: str, now: datetime
) -> tuple[set[Grant], set[Grant]]:
    """Make the user's IdP grants ``wanted`` (minus unknown tenants); returns (added, removed), audited."""
    known = set(tenants)
    ignored = {g for g in wanted if g.tenant not in known}
    wanted = wanted - ignored
    if ignored:
        # No user name here: logs carry nothing personal; the audit event below names the person.
        log.warning("web.idp_grant_unknown_tenant", via=via, tenants=sorted({g.tenant for g in ignored}))
    rows = {
        Grant(Role(r.role), r.tenant, r.queue): r
        for r in s.scalars(select(UserRole).where(UserRole.user_id == user.id, UserRole.source == GrantSource.idp))
    }
    removed = set(rows) - wanted
    added = wanted - set(rows)
    for grant in removed:
        s.delete(rows[grant])
    for grant in added:
        s.add(
            UserRole(user_id=user.id, role=grant.role, tenant=grant.tenant, queue=grant.queue, source=GrantSource.idp)
        )
    s.flush()
    for tenant in sorted({g.tenant for g in added | removed}):
        details: dict[str, object] = {
            "via": via,
            "added": sorted(_label(g) for g in added if g.tenant == tenant),
            "removed": sorted(_label(g) for g in removed if g.tenant == tenant),
        }
        audit.append(
            s,
            actor=f"system:{via}",
            action="user.idp_grants_changed",
            tenant=tenant,
            subject=f"user:{user.username}",
            details=details,
            now=now,
        )
    if ignored:
        audit.append(
            s,
            actor=f"system:{via}",
            action="user.idp_grants_ignored",
            subject=f"user:{user.username}",
            details={"via": via, "unknown_tenants": sorted({g.tenant for g in ignored})},
            now=now,
        )
    return added, removed
