"""Who is asking: passwords (argon2id), sessions, API tokens, roles scoped to tenants, CSRF.

Sessions live in the database (``web_sessions``): the cookie carries a random value and
only its SHA-256 is stored, so a leaked table cannot be replayed. A login always creates a
new session (the old one, if any, is deleted), a session ends after ``session_idle_minutes``
without a request or ``session_absolute_hours`` after login, and logging out deletes it.

CSRF: every state-changing request carries the session's synchronizer token, in the form
field ``csrf_token`` or the header ``X-CSRF-Token``; before login the login form uses a
double-submit cookie. Requests authenticated with a bearer API token carry no cookie and
need no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from core import audit
from core.errors import WebError
from core.storage.db import Database
from core.storage.models import ReviewItem
from core.storage.web_models import ApiToken, Role, User, UserRole, WebSession
from core.web.settings import WebSettings

#: OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
PASSWORD_HASHER = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
#: Verified against when the user name is unknown, so both cases take the same time.
_DUMMY_HASH = PASSWORD_HASHER.hash(secrets.token_urlsafe(16))
LOGIN_CSRF_COOKIE = "kollega_login_csrf"
LANG_COOKIE = "kollega_lang"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def sha256(value: str) -> str:
    """Hex SHA-256 of a secret value (what is stored instead of the value)."""
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An argon2id PHC string for ``password``."""
    return PASSWORD_HASHER.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches the stored hash (constant work even without one)."""
    try:
        return PASSWORD_HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def session_cookie_name(web: WebSettings) -> str:
    """``__Host-`` prefixed when secure: the browser then refuses it from subdomains and over HTTP."""
    return "__Host-kollega_session" if web.cookie_secure else "kollega_session"


@dataclass(frozen=True)
class Grant:
    """One role in one tenant (and queue)."""

    role: Role
    tenant: str
    queue: str = ""


@dataclass
class Principal:
    """The authenticated person behind a request."""

    user_id: int
    username: str
    display_name: str
    grants: frozenset[Grant]
    lang: str = "sv"
    session_id: str | None = None
    csrf_token: str | None = None
    via: str = "session"
    flash: str | None = field(default=None, repr=False)

    @property
    def actor(self) -> str:
        """The audit log's name for this person."""
        return f"user:{self.username}"

    def tenants(self, *roles: Role) -> set[str]:
        """Tenants in which the person holds any of ``roles`` (all roles when none given)."""
        return {g.tenant for g in self.grants if not roles or g.role in roles}

    def has(self, role: Role, tenant: str | None = None) -> bool:
        """Whether the person holds ``role`` (in ``tenant`` when given)."""
        return any(g.role == role and (tenant is None or g.tenant == tenant) for g in self.grants)

    @property
    def roles(self) -> set[Role]:
        """Every role the person holds in some tenant."""
        return {g.role for g in self.grants}

    def can_view_queue(self, tenant: str, queue: str) -> bool:
        """Case workers see their queues; coordinators every queue of their tenants."""
        return self.has(Role.coordinator, tenant) or Grant(Role.case_worker, tenant, queue) in self.grants

    def can_decide(self, tenant: str, queue: str) -> bool:
        """Case workers decide in their queues; coordinators in theirs, or in all when granted no queue."""
        if Grant(Role.case_worker, tenant, queue) in self.grants:
            return True
        coordinator = [g for g in self.grants if g.role == Role.coordinator and g.tenant == tenant]
        return any(g.queue in ("", queue) for g in coordinator)

    def review_filter(self) -> Any:
        """An SQL condition selecting the review items this person may see."""
        conditions: list[Any] = []
        coordinator = self.tenants(Role.coordinator)
        if coordinator:
            conditions.append(ReviewItem.tenant.in_(coordinator))
        for g in self.grants:
            if g.role == Role.case_worker:
                conditions.append((ReviewItem.tenant == g.tenant) & (ReviewItem.queue == g.queue))
        return or_(*conditions) if conditions else ReviewItem.id < 0

    @property
    def may_use_inbox(self) -> bool:
        """Case workers and coordinators have an inbox."""
        return bool(self.roles & {Role.case_worker, Role.coordinator})

    @property
    def ops_tenants(self) -> set[str]:
        """Tenants whose dashboard this person sees."""
        return self.tenants(Role.operations, Role.it_admin)

    def home(self) -> str:
        """Where this person lands after login."""
        if self.may_use_inbox:
            return "/inbox"
        if self.ops_tenants:
            return "/ops"
        if self.has(Role.auditor):
            return "/audit"
        return "/me"


class AuthError(WebError):
    """Not logged in (or the session ended); ``expired`` says the session timed out.

    The web app answers with the login page (401 in the JSON API).
    """

    code = "login_required"

    def __init__(self, expired: bool = False) -> None:
        super().__init__("login required", expired=expired)
        self.expired = expired


class Forbidden(WebError):
    """Logged in, but not allowed to do this (403)."""

    code = "forbidden"


class NotFound(WebError):
    """No such object, or one in a tenant or queue the person does not see (the same answer: 404)."""

    code = "not_found"


class CsrfError(WebError):
    """A state-changing request without a valid CSRF token, or from another origin (403)."""

    code = "csrf"


def load_grants(s: Session, user_id: int) -> frozenset[Grant]:
    """A user's grants."""
    rows = s.scalars(select(UserRole).where(UserRole.user_id == user_id)).all()
    return frozenset(Grant(Role(r.role), r.tenant, r.queue) for r in rows)


class Auth:
    """Logins, sessions and tokens against the database."""

    def __init__(self, db: Database, web: WebSettings, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.web = web
        self.clock = clock
        self.idle = timedelta(minutes=web.session_idle_minutes)
        self.absolute = timedelta(hours=web.session_absolute_hours)

    # -- local accounts -------------------------------------------------------------
    def verify_password(self, username: str, password: str) -> User | None:
        """The user when the password is right and the account active and unlocked; audited either way."""
        now = self.clock()
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.username == username))
            ok = check_password(user.password_hash if user else None, password)
            if user is None:
                audit.append(s, actor="system:web", action="user.login_failed", details={"reason": "unknown"}, now=now)
                return None
            locked = user.locked_until is not None and user.locked_until > now
            if not ok or not user.active or locked:
                reason = "locked" if locked else "inactive" if not user.active else "password"
                if not ok:
                    user.failed_logins += 1
                    if user.failed_logins >= self.web.max_failed_logins:
                        user.locked_until = now + timedelta(minutes=self.web.lockout_minutes)
                        user.failed_logins = 0
                audit.append(
                    s, actor=f"user:{user.username}", action="user.login_failed", details={"reason": reason}, now=now
                )
                return None
            user.failed_logins, user.locked_until = 0, None
            if user.password_hash and PASSWORD_HASHER.check_needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            return user

    # -- sessions --------------------------------------------------------------------
    def start_session(self, user: User, *, method: str, lang: str, old_token: str | None = None) -> str:
        """A new session for ``user`` (any previous one of this browser is deleted); returns the cookie value."""
        now = self.clock()
        token = secrets.token_urlsafe(32)
        with self.db.session() as s:
            if old_token:
                s.execute(delete(WebSession).where(WebSession.id == sha256(old_token)))
            s.add(
                WebSession(
                    id=sha256(token),
                    user_id=user.id,
                    csrf_token=secrets.token_urlsafe(32),
                    lang=lang,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.absolute,
                    method=method,
                )
            )
            row = s.get(User, user.id)
            assert row is not None
            row.last_login_at = now
            audit.append(s, actor=f"user:{user.username}", action="user.login", details={"method": method}, now=now)
        return token

    def principal_for_session(self, token: str) -> Principal:
        """The person behind a session cookie; AuthError(expired=True) after a timeout."""
        now = self.clock()
        ended: str | None = None
        with self.db.session() as s:
            row = s.get(WebSession, sha256(token))
            if row is None:
                ended = "unknown"
            elif now >= row.expires_at or now - row.last_seen_at >= self.idle:
                # Deleted and audited in this transaction; AuthError is raised after it commits.
                ended = "absolute" if now >= row.expires_at else "idle"
                s.delete(row)
                user = s.get(User, row.user_id)
                audit.append(
                    s,
                    actor=f"user:{user.username if user else row.user_id}",
                    action="user.session_expired",
                    details={"reason": ended},
                    now=now,
                )
            else:
                user = s.get(User, row.user_id)
                if user is None or not user.active:
                    s.delete(row)
                    ended = "inactive"
                else:
                    row.last_seen_at = now
                    flash, row.flash = row.flash, None
                    return Principal(
                        user.id,
                        user.username,
                        user.display_name or user.username,
                        load_grants(s, user.id),
                        lang=row.lang,
                        session_id=row.id,
                        csrf_token=row.csrf_token,
                        flash=flash,
                    )
        raise AuthError(expired=ended != "inactive")

    def end_session(self, principal: Principal) -> None:
        """Log out: the session row is deleted, so the cookie is worthless even if kept."""
        if principal.session_id is None:
            return
        with self.db.session() as s:
            s.execute(delete(WebSession).where(WebSession.id == principal.session_id))
            audit.append(s, actor=principal.actor, action="user.logout", now=self.clock())

    def set_flash(self, principal: Principal, message: str) -> None:
        """A message shown once on the person's next page."""
        if principal.session_id is None:
            return
        with self.db.session() as s:
            row = s.get(WebSession, principal.session_id)
            if row is not None:
                row.flash = message

    def set_lang(self, principal: Principal, lang: str) -> None:
        """Remember the chosen language in the session."""
        if principal.session_id is None:
            return
        with self.db.session() as s:
            row = s.get(WebSession, principal.session_id)
            if row is not None:
                row.lang = lang

    # -- API tokens ------------------------------------------------------------------
    def principal_for_token(self, token: str, lang: str) -> Principal:
        """The person behind a bearer token; AuthError when unknown, revoked or expired."""
        now = self.clock()
        with self.db.session() as s:
            row = s.scalar(select(ApiToken).where(ApiToken.token_hash == sha256(token)))
            if row is None or row.revoked or (row.expires_at is not None and row.expires_at <= now):
                raise AuthError()
            user = s.get(User, row.user_id)
            if user is None or not user.active:
                raise AuthError()
            row.last_used_at = now
            return Principal(
                user.id,
                user.username,
                user.display_name or user.username,
                load_grants(s, user.id),
                lang=lang,
                via="token",
            )


def create_user(
    db: Database,
    username: str,
    *,
    display_name: str = "",
    email: str | None = None,
    password: str | None = None,
    grants: Iterable[Grant] = (),
    actor: str = "system:cli",
    now: datetime | None = None,
    password_hash: str | None = None,
) -> int:
    """Create a local user with grants (audited); returns the id. ``password_hash``: an argon2id hash made earlier."""
    with db.session() as s:
        user = User(
            username=username,
            display_name=display_name or username,
            email=email,
            password_hash=hash_password(password) if password else password_hash,
            active=True,
            failed_logins=0,
        )
        if now is not None:
            user.created_at = now
        s.add(user)
        s.flush()
        for g in set(grants):
            s.add(UserRole(user_id=user.id, role=g.role, tenant=g.tenant, queue=g.queue))
        audit.append(
            s,
            actor=actor,
            action="user.created",
            subject=f"user:{username}",
            details={"grants": sorted(f"{g.role.value}:{g.tenant}:{g.queue}" for g in grants)},
            now=now,
        )
        return user.id


def create_token(
    db: Database, username: str, name: str, *, expires_at: datetime | None = None, actor: str = "system:cli"
) -> str:
    """A new API token for ``username``; the value is returned once and only its hash kept."""
    token = "kol_" + secrets.token_urlsafe(32)
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise LookupError(f"no user {username!r}")
        s.add(ApiToken(user_id=user.id, name=name, token_hash=sha256(token), expires_at=expires_at, revoked=False))
        audit.append(s, actor=actor, action="user.token_created", subject=f"user:{username}", details={"name": name})
    return token


def check_csrf(request: Request, principal: Principal | None, provided: str | None, public_origin: str) -> None:
    """Refuse a state-changing request without the right token or from a foreign origin (CsrfError)."""
    if request.method in SAFE_METHODS:
        return
    if principal is not None and principal.via == "token":
        return
    origin = request.headers.get("origin")
    own = {public_origin.rstrip("/"), f"{request.url.scheme}://{request.url.netloc}"}
    if origin and origin != "null" and origin.rstrip("/") not in own:
        raise CsrfError()
    expected = principal.csrf_token if principal is not None else request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not provided or not hmac.compare_digest(expected.encode(), provided.encode()):
        raise CsrfError()
