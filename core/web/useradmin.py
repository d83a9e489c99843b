"""The IT admin's user management in the web app: accounts, grants, passwords, disabling.

An IT admin acts only within the municipalities (tenants) where they hold the it_admin
role: they may grant and revoke roles there, create local accounts with a first grant
there, and disable, enable, reset the password of or grant a role to an account whose
grants all lie in their tenants (one municipality's IT can neither lock out another's
staff nor, by granting them a role, take them out of their own IT's hands); an account
with no grant at all may be given one by any IT admin. Every change is audited with the
admin as actor. A new or reset password is generated, shown once, stored only as an
argon2id hash, and must be replaced by the person at the next login.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from core import audit
from core.errors import WebError
from core.storage.db import Database
from core.storage.web_models import GrantSource, Role, User, UserRole
from core.web.auth import Forbidden, Grant, NotFound, create_user, end_all_sessions, hash_password

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
QUEUE = re.compile(r"^[a-z0-9_.-]{0,128}$")


class UserAdminError(WebError):
    """The user-admin request cannot be carried out as asked; the admin can correct it.

    The message is Swedish: the page shows it to the admin.
    """

    code = "user_admin"


@dataclass(frozen=True)
class Created:
    """A new account and its one-time password (None for OpenID Connect accounts)."""

    user_id: int
    password: str | None


def _grant(role: str, tenant: str, queue: str, admin_tenants: set[str]) -> Grant:
    if role not in Role.__members__:
        raise UserAdminError(f"Okänd roll: {role}")
    if tenant not in admin_tenants:
        raise Forbidden()
    queue = queue.strip()
    if not QUEUE.match(queue):
        raise UserAdminError("Kön får bara innehålla små bokstäver, siffror, punkt, bindestreck och understreck")
    if queue and Role(role) not in (Role.case_worker, Role.coordinator):
        raise UserAdminError("Bara handläggare och samordnare har behörighet per kö")
    return Grant(Role(role), tenant, queue)


def _manageable(db: Database, username: str, admin_tenants: set[str]) -> User:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound()
        tenants = set(s.scalars(select(UserRole.tenant).where(UserRole.user_id == user.id)))
    if not tenants & admin_tenants:
        raise NotFound()  # not theirs to see
    if not tenants <= admin_tenants:
        raise Forbidden()  # also has roles in another municipality: that municipality's IT decides
    return user


def create(
    db: Database,
    admin: str,
    admin_tenants: set[str],
    *,
    username: str,
    display_name: str,
    email: str,
    role: str,
    tenant: str,
    queue: str,
    oidc_only: bool,
    now: datetime,
) -> Created:
    """A local account with a first grant; a generated password unless it logs in through OIDC only."""
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise UserAdminError("Användarnamnet ska vara 2–63 tecken: små bokstäver, siffror, punkt, bindestreck")
    grant = _grant(role, tenant, queue, admin_tenants)
    with db.session() as s:
        if s.scalar(select(User.id).where(User.username == username)) is not None:
            raise UserAdminError(f"Användaren {username} finns redan")
    password = None if oidc_only else secrets.token_urlsafe(12)
    user_id = create_user(
        db,
        username,
        display_name=display_name.strip(),
        email=email.strip() or None,
        password=password,
        grants=[grant],
        actor=admin,
        now=now,
    )
    if password is not None:
        with db.session() as s:
            row = s.get(User, user_id)
            assert row is not None
            row.must_change_password = True  # the admin saw it: the person replaces it at first login
    return Created(user_id, password)


def change_grant(
    db: Database,
    admin: str,
    admin_tenants: set[str],
    *,
    username: str,
    role: str,
    tenant: str,
    queue: str,
    revoke: bool,
    now: datetime,
) -> None:
    """Add or remove one grant in one of the admin's tenants."""
    grant = _grant(role, tenant, queue, admin_tenants)
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound()
        held = set(s.scalars(select(UserRole.tenant).where(UserRole.user_id == user.id)))
        if held and not held & admin_tenants:
            raise NotFound()  # another municipality's account: not theirs to see (issue 17)
        if not revoke and not held <= admin_tenants:
            # A grant here would take the account out of its own municipality's IT's hands
            # (an account with grants in several municipalities is managed by none alone).
            raise Forbidden()
        if revoke and user.username == admin.removeprefix("user:") and grant.role == Role.it_admin:
            raise UserAdminError("Du kan inte ta bort din egen IT-administratörsroll")
        if revoke and not s.scalar(
            select(UserRole.id).where(
                UserRole.user_id == user.id,
                UserRole.role == grant.role,
                UserRole.tenant == grant.tenant,
                UserRole.queue == grant.queue,
                UserRole.source == GrantSource.local,
            )
        ):
            raise UserAdminError("Behörigheten kommer från kommunens inloggning och ändras i kommunens katalog")
        # Only the local grant: the IdP's (source idp) is the IdP's to change, at the next sign-in.
        s.execute(
            delete(UserRole).where(
                UserRole.user_id == user.id,
                UserRole.role == grant.role,
                UserRole.tenant == grant.tenant,
                UserRole.queue == grant.queue,
                UserRole.source == GrantSource.local,
            )
        )
        if not revoke:
            s.add(UserRole(user_id=user.id, role=grant.role, tenant=grant.tenant, queue=grant.queue))
        audit.append(
            s,
            actor=admin,
            action="user.revoked" if revoke else "user.granted",
            tenant=grant.tenant,
            subject=f"user:{username}",
            details={"grants": [f"{grant.role.value}:{grant.tenant}:{grant.queue}"]},
            now=now,
        )


def set_active(
    db: Database, admin: str, admin_tenants: set[str], *, username: str, active: bool, now: datetime
) -> None:
    """Disable (sessions and tokens stop working at once) or enable an account."""
    user = _manageable(db, username, admin_tenants)
    if not active and user.username == admin.removeprefix("user:"):
        raise UserAdminError("Du kan inte stänga av ditt eget konto")
    with db.session() as s:
        row = s.get(User, user.id)
        assert row is not None
        row.active = active
        audit.append(
            s, actor=admin, action="user.enabled" if active else "user.disabled", subject=f"user:{username}", now=now
        )


def reset_password(db: Database, admin: str, admin_tenants: set[str], *, username: str, now: datetime) -> str:
    """A one-time password (shown once) the person must replace at the next login.

    The account is unlocked, and every session and API token of the person ends: whoever
    held the old password (or a token made with it) is out. The admin never learns the
    password the person goes on to use.
    """
    user = _manageable(db, username, admin_tenants)
    password = secrets.token_urlsafe(12)
    with db.session() as s:
        row = s.get(User, user.id)
        assert row is not None
        one_time_password(s, row, password)
        ended = end_all_sessions(s, row.id)
        audit.append(
            s,
            actor=admin,
            action="user.password_reset",
            subject=f"user:{username}",
            details={"sessions_ended": ended, "tokens_revoked": True, "must_change": True},
            now=now,
        )
    return password


def one_time_password(s: Any, row: User, password: str) -> None:
    """Set ``password`` as a one-time password on ``row``: unlocked, to be changed at the next login."""
    row.password_hash, row.failed_logins, row.locked_until = hash_password(password), 0, None
    row.must_change_password = True
