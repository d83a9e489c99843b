"""Tables of the web app: users, roles, sessions, API tokens, review timings, pauses, alerts.

They share :class:`core.storage.models.Base`, so one metadata describes the whole schema;
migration ``0002_web`` creates them.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.storage.models import Base, _enum, utcnow


class Role(enum.StrEnum):
    """What a person may do, always within the tenants a role is granted for."""

    case_worker = "case_worker"  # decides review items in the queues granted (per queue)
    coordinator = "coordinator"  # sees and assigns every queue of the tenant, decides in granted queues
    operations = "operations"  # dashboard, runs, items, schedules, alerts; retries and cancels
    it_admin = "it_admin"  # everything operations sees, plus users and API tokens
    auditor = "auditor"  # the audit and access log: search, export, chain status


class User(Base):
    """A person who logs in: a local account (password) or one from OpenID Connect or SAML."""

    __tablename__ = "web_users"
    __table_args__ = (
        UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_web_users_oidc"),
        UniqueConstraint("saml_issuer", "saml_subject", name="uq_web_users_saml"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(200))
    #: argon2id hash (PHC string); None for users who only log in through OpenID Connect.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    oidc_issuer: Mapped[str | None] = mapped_column(String(500))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))
    #: The SAML IdP's entity ID and the person's persistent NameID there (migration 0014).
    saml_issuer: Mapped[str | None] = mapped_column(String(500))
    saml_subject: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()
    #: Set by an admin's reset: the one-time password must be replaced at the next login.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[datetime | None] = mapped_column()
    #: The TOTP secret (RFC 6238, base32); set at enrolment, confirmed by a first code.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_confirmed_at: Mapped[datetime | None] = mapped_column()
    #: The last 30-second step whose code was accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(Base):
    """A single-use recovery code for the second factor; only its SHA-256 is stored."""

    __tablename__ = "web_recovery_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class LoginThrottle(Base):
    """Failed logins per client address (hashed) and for the whole deployment (``global``)."""

    __tablename__ = "web_login_throttle"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column()
    #: No attempt from this key is checked before then (failures meanwhile do not extend it).
    blocked_until: Mapped[datetime | None] = mapped_column()


class AccessCheck(Base):
    """One access event drawn for an auditor's random check (slumpvis kontroll), and its verdict."""

    __tablename__ = "audit_access_checks"
    __table_args__ = (Index("ix_audit_access_checks_tenant", "tenant", "drawn_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(4))
    event_seq: Mapped[int] = mapped_column(BigInteger)
    drawn_by: Mapped[str] = mapped_column(String(200))
    drawn_at: Mapped[datetime] = mapped_column()
    #: ``ok`` (justified) or ``deviation`` (needs follow-up); None until reviewed.
    verdict: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(1000), default="")
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None] = mapped_column()


class GrantSource(enum.StrEnum):
    """Where a grant comes from: kept apart, so a sign-in never touches what an admin granted."""

    local = "local"  # granted in Kollega by an IT admin or `kollega users grant`
    idp = "idp"  # given by the identity provider at the last sign-in (claims or mapped groups)


class UserRole(Base):
    """One grant: a role in a tenant (and, for case workers and coordinators, a queue), from one source."""

    __tablename__ = "web_user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role", "tenant", "queue", "source", name="uq_web_user_roles"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role))
    #: A kommunkod; not a foreign key, so grants can precede the tenant's first run.
    tenant: Mapped[str] = mapped_column(String(4))
    #: The review queue (e.g. ``ronney.review``); empty string = not queue-bound.
    queue: Mapped[str] = mapped_column(String(128), default="")
    #: ``local`` or ``idp`` (:class:`GrantSource`; migration 0014). A sign-in replaces only ``idp`` rows.
    source: Mapped[str] = mapped_column(String(8), default=GrantSource.local.value, server_default="local")


class WebSession(Base):
    """A logged-in browser: only the SHA-256 of the cookie's random value is stored."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    lang: Mapped[str] = mapped_column(String(8), default="sv")
    created_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column()
    #: The absolute timeout: the session ends then however active it is.
    expires_at: Mapped[datetime] = mapped_column()
    #: How the user logged in: ``password`` or ``oidc``.
    method: Mapped[str] = mapped_column(String(16), default="password")
    #: A one-time message for the next page (e.g. "someone else decided first").
    flash: Mapped[str | None] = mapped_column(Text)
    #: A step still owed before the session may do anything else: ``password`` (change the
    #: one-time password), ``mfa_enrol``, ``mfa`` (enter a code); empty = fully logged in.
    pending: Mapped[str] = mapped_column(String(16), default="")
    #: SAML sessions: the NameID and SessionIndex the IdP asserted, for single logout.
    idp_name_id: Mapped[str | None] = mapped_column(String(500))
    idp_session_index: Mapped[str | None] = mapped_column(String(200))


class LoginState(Base):
    """An OpenID Connect login under way: state, nonce and PKCE verifier, used once."""

    __tablename__ = "web_login_states"
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    browser_binding: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()


class SamlRequest(Base):
    """A SAML request we sent (AuthnRequest or LogoutRequest), awaiting its answer; used once."""

    __tablename__ = "web_saml_requests"
    #: SHA-256 of the request's ID (the answer's InResponseTo).
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``authn`` or ``logout``.
    kind: Mapped[str] = mapped_column(String(8))
    #: SHA-256 of the browser-binding cookie (empty for logouts, whose browser has no session left).
    browser_binding: Mapped[str] = mapped_column(String(64), default="")
    #: Where to go after the login (a path of this app).
    next_url: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column()


class SamlAssertionSeen(Base):
    """An assertion already used to sign in: refused if it comes again before it expires (replay)."""

    __tablename__ = "web_saml_assertions_seen"
    #: SHA-256 of the IdP's entity ID and the assertion's ID.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The assertion's NotOnOrAfter (plus the tolerated skew): the row may be forgotten then.
    expires_at: Mapped[datetime] = mapped_column()


class ApiToken(Base):
    """A bearer token for the JSON API (scripts, integrations); only its SHA-256 is stored."""

    __tablename__ = "web_api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class ReviewTiming(Base):
    """When a person opened a review item and when they decided it: the measured review time."""

    __tablename__ = "web_review_timings"
    __table_args__ = (Index("ix_web_review_timings_review", "review_id", "actor"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"))
    robot: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(4))
    actor: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()
    seconds: Mapped[int | None] = mapped_column(Integer)


#: The tenant of a pause made before pauses were per tenant (migration 0004): every tenant.
ALL_TENANTS = "*"


class SchedulePause(Base):
    """One municipality's share of a schedule paused by its operations staff; those slots are skipped.

    A schedule shared by several municipalities keeps running for the others. A row whose
    tenant is :data:`ALL_TENANTS` pauses every tenant (a pause from before migration 0004).
    """

    __tablename__ = "schedule_pauses"
    schedule: Mapped[str] = mapped_column(String(128), primary_key=True)
    #: A kommunkod, or ``*`` (every tenant: only pauses from before migration 0004).
    tenant: Mapped[str] = mapped_column(String(4), primary_key=True)
    paused_by: Mapped[str] = mapped_column(String(200))
    paused_at: Mapped[datetime] = mapped_column()
    reason: Mapped[str] = mapped_column(String(500), default="")


class Alert(Base):
    """Something operations must look at: a failed, missed or overrunning run, or exceptions jumping."""

    __tablename__ = "web_alerts"
    __table_args__ = (Index("ix_web_alerts_tenant_created", "tenant", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: Deduplication key (kind + run id): every alert is raised and mailed once.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    tenant: Mapped[str] = mapped_column(String(4))
    robot: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    mailed_at: Mapped[datetime | None] = mapped_column()
    mail_error: Mapped[str | None] = mapped_column(Text)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None] = mapped_column()


def schedule_pause(session: Session, schedule: str, tenant: str) -> SchedulePause | None:
    """The pause of a schedule for ``tenant``, or None when it runs there (asked before recording a slot)."""
    return session.get(SchedulePause, (schedule, tenant)) or session.get(SchedulePause, (schedule, ALL_TENANTS))
