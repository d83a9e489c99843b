"""Slumpvis kontroll: auditors draw random access events of their municipality and review each.

Socialstyrelsen's rules ask that the access log be checked regularly and systematically
(docs/operations.md, "Åtkomstloggen"). An auditor draws a sample of access events
(:data:`core.retention.ACCESS_ACTIONS`) from a period, never their own; each drawn event
waits on the page until an auditor records a verdict — ``ok`` (the access was justified)
or ``deviation`` (to be followed up) — with a note. Drawing and every verdict are audit
events themselves; the note stays out of the log (it may name a person), its presence does not.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core import audit
from core.retention import ACCESS_ACTIONS
from core.storage.db import Database
from core.storage.models import AuditEvent
from core.storage.web_models import AccessCheck
from core.web.auth import NotFound
from core.web.useradmin import UserAdminError

MAX_SAMPLE = 100
VERDICTS = ("ok", "deviation")


@dataclass(frozen=True)
class CheckRow:
    """A drawn event and its review, for the page."""

    check: AccessCheck
    event: AuditEvent


def draw(
    db: Database,
    actor: str,
    tenant: str,
    start: date,
    end: date,
    size: int,
    *,
    zone: str,
    now: datetime,
) -> list[int]:
    """Draw up to ``size`` access events of ``tenant`` in [start, end] (not the drawer's own); returns check ids."""
    if not 1 <= size <= MAX_SAMPLE:
        raise UserAdminError(f"Ange ett urval mellan 1 och {MAX_SAMPLE} händelser.")
    if end < start:
        raise UserAdminError("Slutdatumet ligger före startdatumet.")
    tz = ZoneInfo(zone)
    low = datetime.combine(start, time(0), tzinfo=tz)
    high = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz)
    with db.session() as s:
        seqs = list(
            s.scalars(
                select(AuditEvent.seq).where(
                    AuditEvent.tenant == tenant,
                    AuditEvent.action.in_(ACCESS_ACTIONS),
                    AuditEvent.time >= low,
                    AuditEvent.time < high,
                    AuditEvent.actor != actor,
                )
            )
        )
        # The OS's random source: nobody can predict (or steer) which accesses get checked.
        chosen = sorted(secrets.SystemRandom().sample(seqs, min(size, len(seqs))))
        rows = [AccessCheck(tenant=tenant, event_seq=seq, drawn_by=actor, drawn_at=now, note="") for seq in chosen]
        s.add_all(rows)
        s.flush()
        audit.append(
            s,
            actor=actor,
            action="audit.check_drawn",
            tenant=tenant,
            purpose="logguppföljning",
            details={
                "start": start.isoformat(),
                "end": end.isoformat(),
                "population": len(seqs),
                "drawn": len(chosen),
                "events": chosen,
            },
            now=now,
        )
        return [r.id for r in rows]


def rows(db: Database, tenants: set[str], *, reviewed: bool, limit: int = 200) -> list[CheckRow]:
    """Drawn events in the auditor's tenants: waiting for review, or the latest reviewed."""
    stmt = (
        select(AccessCheck, AuditEvent)
        .join(AuditEvent, AuditEvent.seq == AccessCheck.event_seq)
        .where(AccessCheck.tenant.in_(tenants))
        .where(AccessCheck.verdict.is_not(None) if reviewed else AccessCheck.verdict.is_(None))
        .order_by(AccessCheck.reviewed_at.desc() if reviewed else AccessCheck.id)
        .limit(limit)
    )
    with db.session() as s:
        return [CheckRow(check, event) for check, event in s.execute(stmt).all()]


def review(
    db: Database, actor: str, tenants: set[str], check_id: int, verdict: str, note: str, *, now: datetime
) -> None:
    """Record an auditor's verdict on one drawn event (audited); a deviation needs a note."""
    if verdict not in VERDICTS:
        raise UserAdminError("Välj en bedömning.")
    note = note.strip()
    if verdict == "deviation" and not note:
        raise UserAdminError("Beskriv avvikelsen i anteckningen.")
    with db.session() as s:
        row = s.get(AccessCheck, check_id)
        if row is None or row.tenant not in tenants:
            raise NotFound()
        if row.verdict is not None:
            raise UserAdminError("Händelsen är redan granskad.")
        row.verdict, row.note, row.reviewed_by, row.reviewed_at = verdict, note[:1000], actor, now
        audit.append(
            s,
            actor=actor,
            action="audit.check_reviewed",
            tenant=row.tenant,
            subject=f"audit:{row.event_seq}",
            purpose="logguppföljning",
            details={"check": row.id, "verdict": verdict, "note": bool(note)},
            now=now,
        )
