"""The auditors' view of the access log: search by personnummer, user or period; CSV; chain status.

A search by personnummer is itself an access to personal data: it is written to the log
(``audit.searched``, the number as subject), once per municipality searched, with that
municipality as tenant, so only its own auditors see it. Personnummer never travel in
URLs: the search form is a POST.

Scoping (issue 17, H1): an auditor sees the events of the tenants where they hold the
auditor role, and of the events that carry no tenant (logins, logouts, expired sessions,
API tokens, password resets: a person's account, not a municipality's case) only those
whose actor or subject is an account holding a grant in one of those tenants, by the
account's grants at the time of the search. One municipality's auditor thus never sees
another's logins, password resets or searches; events about nobody's account (a failed
login with an unknown user name) belong to the deployment and are read with the
database's own tools, not in a municipality's audit view.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, and_, literal, or_, select

from core import audit, audit_checkpoint
from core.audit import VerifyResult
from core.storage.models import AuditEvent
from core.storage.web_models import User, UserRole
from core.web.deps import WebContext

MAX_ROWS = 5000
_DIGITS = re.compile(r"\D")


def subject_candidates(value: str) -> list[str]:
    """The stored forms a typed personnummer may have (12 digits; a 10-digit one in both centuries)."""
    raw = value.strip()
    digits = _DIGITS.sub("", raw)
    if len(digits) == 12:
        return [digits]
    if len(digits) == 10:
        return [f"19{digits}", f"20{digits}"]
    return [raw] if raw else []


@dataclass(frozen=True)
class AuditQuery:
    """What an auditor searches for (every part optional)."""

    personnummer: str = ""
    user: str = ""
    start: date | None = None
    end: date | None = None
    action: str = ""

    @property
    def empty(self) -> bool:
        """Nothing to search for."""
        return not (self.personnummer or self.user or self.start or self.end or self.action)


def parse_date(value: str | None) -> date | None:
    """YYYY-MM-DD, else None."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def scope(tenants: set[str]) -> ColumnElement[bool]:
    """The events an auditor of ``tenants`` may see (see the module docstring)."""
    # The audit actors ("user:anna") of every account with a grant in these tenants.
    accounts = (
        select(literal("user:", String) + User.username)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.tenant.in_(tenants))
    )
    return or_(
        AuditEvent.tenant.in_(tenants),
        and_(AuditEvent.tenant.is_(None), or_(AuditEvent.actor.in_(accounts), AuditEvent.subject.in_(accounts))),
    )


def search(
    ctx: WebContext, tenants: set[str], q: AuditQuery, limit: int = MAX_ROWS, viewer: str | None = None
) -> list[AuditEvent]:
    """Events matching the query in the auditor's tenants, oldest first.

    The ``viewer``'s own searches are not listed back to them (each search would otherwise
    find the ones before it); the other auditors of the tenant see them.
    """
    zone = ZoneInfo(ctx.zone)
    stmt = select(AuditEvent).where(scope(tenants)).order_by(AuditEvent.seq).limit(limit)
    if viewer is not None:
        own_search = and_(AuditEvent.actor == viewer, AuditEvent.action.in_(["audit.searched", "audit.exported"]))
        stmt = stmt.where(~own_search)
    if q.personnummer:
        stmt = stmt.where(AuditEvent.subject.in_(subject_candidates(q.personnummer)))
    if q.user:
        name = q.user.strip().removeprefix("user:")
        stmt = stmt.where(AuditEvent.actor.in_([f"user:{name}", name]))
    if q.start:
        stmt = stmt.where(AuditEvent.time >= datetime.combine(q.start, time(0), tzinfo=zone))
    if q.end:
        stmt = stmt.where(AuditEvent.time < datetime.combine(q.end + timedelta(days=1), time(0), tzinfo=zone))
    if q.action:
        stmt = stmt.where(AuditEvent.action.startswith(q.action.strip()))
    with ctx.db.session() as s:
        return list(s.scalars(stmt).all())


def record_search(ctx: WebContext, actor: str, tenants: set[str], q: AuditQuery, found: int, export: bool) -> None:
    """Write the auditor's own search to the log: one event per tenant searched, in that tenant."""
    now = ctx.clock()
    with ctx.db.session() as s:
        for tenant in sorted(tenants):
            audit.append(
                s,
                actor=actor,
                action="audit.exported" if export else "audit.searched",
                tenant=tenant,
                subject=next(iter(subject_candidates(q.personnummer)), None),
                purpose="logguppföljning",
                details={
                    "user": q.user or None,
                    "start": q.start.isoformat() if q.start else None,
                    "end": q.end.isoformat() if q.end else None,
                    "action": q.action or None,
                    "found": found,
                },
                now=now,
            )


def to_csv(ctx: WebContext, events: list[AuditEvent]) -> str:
    """The events as CSV (semicolon separated, as Swedish spreadsheet programs expect), local times."""
    zone = ZoneInfo(ctx.zone)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["seq", "tid", "kommun", "aktör", "händelse", "person/objekt", "syfte", "detaljer", "hash"])
    for ev in events:
        details = ";".join(f"{k}={v}" for k, v in sorted((ev.details or {}).items()))
        cells = [ev.tenant or "", ev.actor, ev.action, ev.subject or "", ev.purpose or "", details]
        writer.writerow([ev.seq, ev.time.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"), *map(_cell, cells), ev.hash])
    return out.getvalue()


def _cell(value: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet: neutralise it.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def chain_status(ctx: WebContext) -> VerifyResult:
    """Walk the whole chain now, against the latest checkpoint kept outside the database."""
    latest = audit_checkpoint.read_latest(audit_checkpoint.checkpoint_file(ctx.settings))
    with ctx.db.session() as s:
        return audit.verify(s, (latest.seq, latest.hash) if latest else None)
