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
import os
import secrets
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request
from sqlalchemy import bindparam, delete, or_, select, tuple_, update
from sqlalchemy.orm import Session

from core import audit
from core.errors import WebError
from core.storage.db import Database
from core.storage.models import ReviewItem, UTCDateTime
from core.storage.web_models import ApiToken, Role, User, UserRole, WebSession
from core.web import mfa, throttle
from core.web.passwords import PasswordPolicyError, check_new_password
from core.web.settings import WebSettings

#: OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
PASSWORD_HASHER = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
#: Verified against when the user name is unknown, so both cases take the same time.
_DUMMY_HASH = PASSWORD_HASHER.hash(secrets.token_urlsafe(16))
#: Password hashing runs on these threads only, one per CPU (it is CPU-bound: more at once
#: would finish no sooner). Each hash takes 19 MiB for its moment, and the C allocator keeps
#: such a block in the arena of the thread that used it: hashed on any of the web server's
#: 40 request threads, a morning's 30 simultaneous logins left the process 400 MiB larger
#: for good (docs/benchmarks.md, "The morning rush").
_HASHING = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="kollega-argon2")
LOGIN_CSRF_COOKIE = "kollega_login_csrf"
#: Where a person who still owes a login step is sent.
PENDING_STEPS = {"password": "/account/password", "mfa_enrol": "/login/mfa/enrol", "mfa": "/login/mfa"}
LANG_COOKIE = "kollega_lang"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def sha256(value: str) -> str:
    """Hex SHA-256 of a secret value (what is stored instead of the value)."""
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An argon2id PHC string for ``password``."""
    return _HASHING.submit(PASSWORD_HASHER.hash, password).result()


def check_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches the stored hash (constant work even without one)."""
    try:
        return _HASHING.submit(PASSWORD_HASHER.verify, stored or _DUMMY_HASH, password).result() and stored is not None
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
    #: A login step still owed (``password``, ``mfa_enrol``, ``mfa``); empty = fully logged in.
    pending: str = ""

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
        return review_filter_for(self.grants)

    @property
    def may_use_inbox(self) -> bool:
        """Case workers and coordinators have an inbox."""
        return bool(self.roles & {Role.case_worker, Role.coordinator})

    @property
    def ops_tenants(self) -> set[str]:
        """Tenants whose dashboard this person sees."""
        return self.tenants(Role.operations, Role.it_admin)

    def home(self) -> str:
        """Where this person lands after login (or the login step they still owe)."""
        if self.pending:
            return PENDING_STEPS[self.pending]
        if self.may_use_inbox:
            return "/inbox"
        if self.ops_tenants:
            return "/ops"
        if self.has(Role.auditor):
            return "/audit"
        return "/me"


@lru_cache(maxsize=1024)
def review_filter_for(grants: frozenset[Grant]) -> Any:
    """The condition of :meth:`Principal.review_filter`, built once per set of grants.

    A page uses it in up to four statements; built afresh each time (an OR of a condition
    per queue) it was a tenth of a page's CPU, in building and in SQLAlchemy's walk over it
    for the statement cache's key. The queues are one row-value IN with one (expanding)
    parameter, which PostgreSQL plans as the OR of the pairs.
    """
    conditions: list[Any] = []
    coordinator = sorted({g.tenant for g in grants if g.role == Role.coordinator})
    if coordinator:
        conditions.append(ReviewItem.tenant.in_(coordinator))
    queues = sorted((g.tenant, g.queue) for g in grants if g.role == Role.case_worker)
    if queues:
        conditions.append(tuple_(ReviewItem.tenant, ReviewItem.queue).in_(queues))
    return or_(*conditions) if conditions else ReviewItem.id < 0


class AuthError(WebError):
    """Not logged in (or the session ended); ``expired`` says the session timed out.

    The web app answers with the login page (401 in the JSON API).
    """

    code = "login_required"

    def __init__(self, expired: bool = False, pending: str = "") -> None:
        super().__init__("login required", expired=expired)
        self.expired = expired
        #: Logged in, but a step is owed first (the app sends the person to it).
        self.pending = pending


class Forbidden(WebError):
    """Logged in, but not allowed to do this (403)."""

    code = "forbidden"


class NotFound(WebError):
    """No such object, or one in a tenant or queue the person does not see (the same answer: 404)."""

    code = "not_found"


class CsrfError(WebError):
    """A state-changing request without a valid CSRF token, or from another origin (403)."""

    code = "csrf"


@dataclass(frozen=True)
class LoginAttempt:
    """The outcome of a password check: the user, or None and how long to wait (0 = just wrong)."""

    user: User | None
    wait_seconds: float


def end_all_sessions(s: Session, user_id: int, *, keep: str | None = None) -> int:
    """Delete every session of a user (but ``keep``) and revoke their API tokens; returns sessions ended."""
    ids = [sid for sid in s.scalars(select(WebSession.id).where(WebSession.user_id == user_id)) if sid != keep]
    if ids:
        s.execute(delete(WebSession).where(WebSession.id.in_(ids)))
    s.execute(update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked.is_(False)).values(revoked=True))
    return len(ids)


def load_grants(s: Session, user_id: int) -> frozenset[Grant]:
    """A user's grants."""
    rows = s.scalars(select(UserRole).where(UserRole.user_id == user_id)).all()
    return frozenset(Grant(Role(r.role), r.tenant, r.queue) for r in rows)


#: A session, its user and their grants (one row per grant), by the session's hashed id: built
#: once, so each request only binds the id (the statement's cache key is computed once too).
_SESSION_QUERY = (
    select(
        WebSession.id,
        WebSession.lang,
        WebSession.csrf_token,
        WebSession.pending,
        WebSession.expires_at,
        WebSession.last_seen_at,
        WebSession.flash,
        User.id.label("user_id"),
        User.username,
        User.display_name,
        User.active,
        UserRole.role,
        UserRole.tenant,
        UserRole.queue,
    )
    .join(User, User.id == WebSession.user_id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .where(WebSession.id == bindparam("session_id"))
)


@lru_cache(maxsize=4)
def _touch_statement(touch: bool, take: bool) -> Any:
    """A live session's activity recorded and/or its one-time message taken (built once per kind)."""
    changes: dict[str, Any] = {}
    if touch:
        changes["last_seen_at"] = bindparam("b_now", type_=UTCDateTime())
    if take:
        changes["flash"] = None
    stmt = update(WebSession).where(WebSession.id == bindparam("b_id")).values(**changes)
    return stmt.where(WebSession.flash == bindparam("b_flash")) if take else stmt


#: A one-time message for the session's next page.
_SET_FLASH = update(WebSession).where(WebSession.id == bindparam("b_id")).values(flash=bindparam("b_flash"))


class Auth:
    """Logins, sessions and tokens against the database."""

    def __init__(self, db: Database, web: WebSettings, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.web = web
        self.clock = clock
        self.idle = timedelta(minutes=web.session_idle_minutes)
        self.touch = min(timedelta(minutes=1), self.idle / 10)
        self.absolute = timedelta(hours=web.session_absolute_hours)

    # -- local accounts -------------------------------------------------------------
    def _rules(self) -> tuple[throttle.Rule, throttle.Rule]:
        window = timedelta(minutes=self.web.throttle_window_minutes)
        address = throttle.Rule(self.web.address_free_attempts, 1.0, self.web.address_max_delay_seconds, window)
        everyone = throttle.Rule(self.web.global_free_attempts, 1.0, self.web.global_max_delay_seconds, window)
        return address, everyone

    def verify_password(self, username: str, password: str, address: str | None = None) -> LoginAttempt:
        """Check a password behind the throttles; audited either way.

        While the client's address, the deployment (global) or the account is in its delay,
        nothing is checked and nothing is counted: an attempt then never extends a delay.
        """
        now = self.clock()
        keys = [throttle.address_key(address), throttle.GLOBAL]
        with self.db.session() as s:
            wait = throttle.blocked_for(s, keys, now)
            user = s.scalar(select(User).where(User.username == username))
            if user is not None and user.locked_until is not None and user.locked_until > now:
                wait = max(wait, (user.locked_until - now).total_seconds())
            if wait > 0:
                audit.append(
                    s,
                    actor=f"user:{user.username}" if user else "system:web",
                    action="user.login_throttled",
                    details={"wait_seconds": int(wait) + 1},
                    now=now,
                )
                return LoginAttempt(None, wait)
            ok = check_password(user.password_hash if user else None, password)
            if user is None or not ok or not user.active:
                reason = "unknown" if user is None else "inactive" if ok else "password"
                self._failed(s, user, keys, now)
                audit.append(
                    s,
                    actor=f"user:{user.username}" if user else "system:web",
                    action="user.login_failed",
                    details={"reason": reason},
                    now=now,
                )
                return LoginAttempt(None, 0.0)
            user.failed_logins, user.locked_until = 0, None
            throttle.record_success(s, keys[0])
            if user.password_hash and PASSWORD_HASHER.check_needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            s.flush()
            s.expunge(user)
            return LoginAttempt(user, 0.0)

    def _failed(self, s: Session, user: User | None, keys: list[str], now: datetime) -> None:
        """Count a failure against the address, the deployment and (when known) the account."""
        address_rule, global_rule = self._rules()
        throttle.record_failure(s, keys[0], address_rule, now)
        throttle.record_failure(s, keys[1], global_rule, now)
        if user is not None:
            user.failed_logins += 1
            account = throttle.Rule(self.web.max_failed_logins, 1.0, self.web.lockout_minutes * 60.0, timedelta(0))
            seconds = throttle.delay(account, user.failed_logins)
            if seconds:
                user.locked_until = now + timedelta(seconds=seconds)

    def login_blocked_for(self, address: str | None) -> float:
        """Seconds this address (or everyone) must wait before the next attempt (0 = none)."""
        with self.db.session() as s:
            return throttle.blocked_for(s, [throttle.address_key(address), throttle.GLOBAL], self.clock())

    def first_pending_step(self, user: User) -> str:
        """What a password login still owes before the session is complete ("" = nothing)."""
        if user.must_change_password:
            return "password"
        if self.web.mfa_required and user.password_hash is not None:
            return "mfa" if user.totp_confirmed_at is not None else "mfa_enrol"
        return ""

    def check_second_factor(self, principal: Principal, code: str, address: str | None) -> bool:
        """A TOTP code or an unused recovery code; on success the session is complete (audited)."""
        now = self.clock()
        keys = [throttle.address_key(address), throttle.GLOBAL]
        with self.db.session() as s:
            user = s.get(User, principal.user_id)
            if user is None or throttle.blocked_for(s, keys, now) > 0:
                return False
            if user.locked_until is not None and user.locked_until > now:
                return False
            method = "totp" if mfa.check_totp(user, code, now) else ""
            if not method and mfa.use_recovery_code(s, user.id, code, now):
                method = "recovery_code"
            if not method:
                self._failed(s, user, keys, now)
                audit.append(s, actor=principal.actor, action="user.mfa_failed", now=now)
                return False
            user.failed_logins, user.locked_until = 0, None
            self._complete_step(s, principal, "mfa")
            audit.append(s, actor=principal.actor, action="user.mfa_passed", details={"method": method}, now=now)
            return True

    def _complete_step(self, s: Session, principal: Principal, step: str) -> None:
        row = s.get(WebSession, principal.session_id) if principal.session_id else None
        if row is None or row.pending != step:
            return
        user = s.get(User, principal.user_id)
        assert user is not None
        # After the one-time password is replaced, the second factor is still owed.
        row.pending = self.first_pending_step(user) if step == "password" else ""

    def change_password(self, principal: Principal, current: str, new: str) -> None:
        """The person's own change: the current password, the policy; other sessions and all tokens end.

        Raises PasswordPolicyError (Swedish message) when refused.
        """
        now = self.clock()
        with self.db.session() as s:
            user = s.get(User, principal.user_id)
            if user is None or user.password_hash is None:
                raise PasswordPolicyError("Kontot loggar in via kommunens inloggning och har inget lösenord här.")
            if not check_password(user.password_hash, current):
                audit.append(s, actor=principal.actor, action="user.password_change_failed", now=now)
                raise PasswordPolicyError("Det nuvarande lösenordet stämmer inte.")
            if new == current:
                raise PasswordPolicyError("Det nya lösenordet måste skilja sig från det gamla.")
            check_new_password(new, username=user.username, min_length=self.web.password_min_length)
            user.password_hash = hash_password(new)
            user.must_change_password, user.password_changed_at = False, now
            ended = end_all_sessions(s, user.id, keep=principal.session_id)
            self._complete_step(s, principal, "password")
            audit.append(
                s, actor=principal.actor, action="user.password_changed", details={"sessions_ended": ended}, now=now
            )

    def begin_enrolment(self, principal: Principal) -> str:
        """A new (unconfirmed) TOTP secret for the person; returns it."""
        secret = mfa.new_secret()
        with self.db.session() as s:
            user = s.get(User, principal.user_id)
            assert user is not None
            if user.totp_confirmed_at is not None and principal.pending != "mfa_enrol":
                raise Forbidden()  # re-enrolment goes through an admin's reset
            user.totp_secret, user.totp_confirmed_at, user.totp_last_step = secret, None, None
        return secret

    def confirm_enrolment(self, principal: Principal, code: str) -> list[str] | None:
        """Confirm the secret with a first code; returns the new recovery codes (None when the code is wrong)."""
        now = self.clock()
        with self.db.session() as s:
            user = s.get(User, principal.user_id)
            if user is None or user.totp_secret is None or user.totp_confirmed_at is not None:
                return None
            if not mfa.check_totp(user, code, now):
                audit.append(s, actor=principal.actor, action="user.mfa_failed", details={"enrolment": True}, now=now)
                return None
            user.totp_confirmed_at = now
            codes = mfa.new_recovery_codes(s, user.id, now)
            self._complete_step(s, principal, "mfa_enrol")
            audit.append(s, actor=principal.actor, action="user.mfa_enrolled", now=now)
            return codes

    def totp_secret(self, principal: Principal) -> str | None:
        """The person's unconfirmed secret during enrolment (None otherwise)."""
        with self.db.session() as s:
            user = s.get(User, principal.user_id)
            if user is None or user.totp_confirmed_at is not None:
                return None
            return user.totp_secret

    def mfa_status(self, principal: Principal) -> tuple[bool, int]:
        """(enrolled, recovery codes left) for the profile page."""
        with self.db.session() as s:
            user = s.get(User, principal.user_id)
            enrolled = user is not None and user.totp_confirmed_at is not None
            return enrolled, mfa.recovery_codes_left(s, principal.user_id) if enrolled else 0

    def new_recovery_codes(self, principal: Principal) -> list[str]:
        """Replace the person's recovery codes (the old ones stop working); audited."""
        now = self.clock()
        with self.db.session() as s:
            codes = mfa.new_recovery_codes(s, principal.user_id, now)
            audit.append(s, actor=principal.actor, action="user.recovery_codes_renewed", now=now)
            return codes

    # -- sessions --------------------------------------------------------------------
    def start_session(
        self,
        user: User,
        *,
        method: str,
        lang: str,
        old_token: str | None = None,
        pending: str = "",
        idp_session: tuple[str, str] | None = None,
    ) -> str:
        """A new session for ``user`` (any previous one of this browser is deleted); returns the cookie value.

        ``pending``: a step the session owes first (see :meth:`first_pending_step`);
        ``idp_session``: the SAML NameID and SessionIndex, for single logout.
        """
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
                    pending=pending,
                    idp_name_id=idp_session[0] if idp_session else None,
                    idp_session_index=idp_session[1] if idp_session else None,
                )
            )
            row = s.get(User, user.id)
            assert row is not None
            row.last_login_at = now
            details: dict[str, Any] = {"method": method}
            if pending:
                details["pending"] = pending
            audit.append(s, actor=f"user:{user.username}", action="user.login", details=details, now=now)
        return token

    def principal_for_session(self, token: str) -> Principal:
        """The person behind a session cookie; AuthError(expired=True) after a timeout."""
        now = self.clock()
        # Most requests only read: one query for the session, its user and their grants.
        # Plain rows of the columns needed: ORM objects for a session and a user on every request
        # cost more than the query.
        with self.db.read_connection() as conn:
            found = conn.execute(_SESSION_QUERY, {"session_id": sha256(token)}).all()
        if found:
            live = found[0]
            if now < live.expires_at and now - live.last_seen_at < self.idle and live.active:
                grants = frozenset(Grant(Role(g.role), g.tenant, g.queue) for g in found if g.role is not None)
                flash = self._touch_and_take_flash(live, now)
                return self._principal(live, live.user_id, live.username, live.display_name, grants, flash)
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
                    # Live after all (changed since the read above): as _touch_and_take_flash.
                    if now - row.last_seen_at >= self.touch:
                        row.last_seen_at = now
                    flash, row.flash = row.flash, None
                    grants = load_grants(s, user.id)
                    return self._principal(row, user.id, user.username, user.display_name, grants, flash)
        raise AuthError(expired=ended != "inactive")

    def _touch_and_take_flash(self, row: Any, now: datetime) -> str | None:
        """Record a live session's activity (once a minute) and take its one-time message, in one statement.

        Written when a minute old (or a tenth of the idle limit), not on every request: a
        session may end up to that much early, never late, and a page view costs no write
        (and no WAL flush) for it. The message is shown by the one request whose UPDATE still
        found it there, so two pages loaded at once never both show it.
        """
        touch, take = now - row.last_seen_at >= self.touch, row.flash is not None
        if not (touch or take):
            return None
        values: dict[str, Any] = {"b_id": row.id, "b_now": now, "b_flash": row.flash}
        with self.db.single_statement() as conn:
            taken = conn.execute(_touch_statement(touch, take), values).rowcount == 1
        return row.flash if taken else None

    @staticmethod
    def _principal(
        row: Any, user_id: int, username: str, display_name: str | None, grants: frozenset[Grant], flash: str | None
    ) -> Principal:
        """The person of a live session (``row``: the session's row or ORM object) with their grants."""
        return Principal(
            user_id,
            username,
            display_name or username,
            grants,
            lang=row.lang,
            session_id=row.id,
            csrf_token=row.csrf_token,
            flash=flash,
            pending=row.pending,
        )

    def end_session(self, principal: Principal) -> tuple[str, str] | None:
        """Log out: the session row is deleted, so the cookie is worthless even if kept.

        Returns the SAML (NameID, SessionIndex) of a SAML session, for single logout at the IdP.
        """
        if principal.session_id is None:
            return None
        with self.db.session() as s:
            row = s.get(WebSession, principal.session_id)
            idp = (row.idp_name_id, row.idp_session_index or "") if row is not None and row.idp_name_id else None
            s.execute(delete(WebSession).where(WebSession.id == principal.session_id))
            audit.append(s, actor=principal.actor, action="user.logout", now=self.clock())
        return idp

    def set_flash(self, principal: Principal, message: str) -> None:
        """A message shown once on the person's next page."""
        if principal.session_id is None:
            return
        # One statement, built once (a decision's redirect writes this on every decision).
        with self.db.single_statement() as conn:
            conn.execute(_SET_FLASH, {"b_id": principal.session_id, "b_flash": message})

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
