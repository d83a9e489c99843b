"""Alerts: a failed, missed or overrunning run, a robot whose exception share jumps, or a decision
that could not be carried out or waits too long to be.

:func:`detect` looks at the runs of the last two days and inserts one ``web_alerts`` row
per problem, keyed (kind + run id, or kind + review item) so that several ``kollega serve`` processes raise and
mail each alert once. :func:`mail_new` sends every alert not yet mailed to its tenant's
``ops_email`` over SMTP, configured like the mail connector (``[connectors.mail]``: host,
port, security, sender, username/password references). The mail says what and where,
never whose: no personal data leaves in an alert.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Literal
from zoneinfo import ZoneInfo

import aiosmtplib
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from core.alert_sink import SqlAlertSink
from core.clock import Clock
from core.interfaces import ReviewStore
from core.logging import get_logger, redact_text
from core.overdue import SweepResult, sweep
from core.registry import Registry
from core.robot import Robot
from core.settings import SecretRef, Settings
from core.storage.db import Database
from core.storage.models import CallbackStatus, ReviewItem, Run, RunStatus, Tenant
from core.storage.web_models import Alert, Role, User, UserRole
from core.web.decisions import is_late
from core.web.settings import AlertSettings

log = get_logger("kollega.web.alerts")
WINDOW = timedelta(days=2)


class AlertMailSettings(BaseModel):
    """The parts of ``[connectors.mail]`` the alert mail needs."""

    model_config = ConfigDict(extra="ignore")

    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: SecretRef | None = None
    password: SecretRef | None = None
    sender: str
    timeout_seconds: float = 30
    validate_certs: bool = True


def _insert(db: Database, alert: dict[str, Any]) -> bool:
    dialect_insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
    stmt = dialect_insert(Alert).values(**alert).on_conflict_do_nothing(index_elements=["key"]).returning(Alert.id)
    with db.session() as s:
        return s.scalar(stmt) is not None


def _share(run: Run) -> float:
    return (run.failed_business + run.failed_application + run.uncertain) / max(run.collected, 1)


def detect(db: Database, cfg: AlertSettings, now: datetime, zone: str = "Europe/Stockholm") -> int:
    """Insert alerts for problems in the last two days' runs and decisions; returns how many are new."""
    new = detect_decisions(db, cfg, now, zone)
    with db.session() as s:
        runs = s.scalars(select(Run).where(Run.created_at >= now - WINDOW).order_by(Run.id)).all()
        history = s.execute(
            select(
                Run.robot, Run.tenant, Run.id, Run.collected, Run.failed_business, Run.failed_application, Run.uncertain
            ).where(Run.created_at >= now - timedelta(days=32), Run.finished_at.is_not(None), Run.collected > 0)
        ).all()
    found: list[tuple[str, Run, str]] = []
    for run in runs:
        if run.status == RunStatus.failed:
            found.append(("failed", run, f"{run.robot} misslyckades för {run.tenant}: {run.error or 'okänt fel'}"))
        elif run.status == RunStatus.missed:
            found.append(("missed", run, f"{run.robot} kördes inte för {run.tenant} (missad körning {run.slot})"))
        if run.deadline_at is not None and (
            (run.finished_at is not None and run.finished_at > run.deadline_at)
            or (
                run.finished_at is None
                and run.status in (RunStatus.queued, RunStatus.running)
                and now > run.deadline_at
            )
        ):
            found.append(("overrun", run, f"{run.robot} för {run.tenant} blev inte klar i tid (körning {run.id})"))
        if run.finished_at is not None and run.collected >= cfg.min_items:
            before = [
                (h.failed_business + h.failed_application + h.uncertain) / h.collected
                for h in history
                if h.robot == run.robot and h.tenant == run.tenant and h.id < run.id
            ]
            if len(before) >= 3:
                mean = sum(before) / len(before)
                share = _share(run)
                if share - mean >= cfg.exception_share_jump:
                    found.append(
                        (
                            "exception_jump",
                            run,
                            f"{run.robot} för {run.tenant}: {share:.0%} undantag i "
                            f"körning {run.id}, mot {mean:.0%} i snitt senaste 30 dagarna",
                        )
                    )
    for kind, run, message in found:
        new += _insert(
            db,
            {
                "key": f"{kind}:{run.id}",
                "kind": kind,
                "tenant": run.tenant,
                "robot": run.robot,
                "run_id": run.id,
                "message": redact_text(message),
                "created_at": now,
            },
        )
    return new


def detect_decisions(db: Database, cfg: AlertSettings, now: datetime, zone: str) -> int:
    """Alert once per decision that could not be carried out, and once per decision waiting too long.

    A decision is late when it has waited more than ``decision_wait_minutes`` of working
    hours (:func:`core.web.decisions.working_minutes`). The message names the robot, the
    municipality and the item number, never whom it concerns.
    """
    with db.session() as s:
        rows = s.scalars(
            select(ReviewItem).where(
                (ReviewItem.callback_status == CallbackStatus.pending)
                | (
                    (ReviewItem.callback_status == CallbackStatus.failed)
                    & (ReviewItem.callback_finished_at >= now - WINDOW)
                )
            )
        ).all()
    new = 0
    for row in rows:
        if row.callback_status == CallbackStatus.failed:
            finished = row.callback_finished_at.isoformat() if row.callback_finished_at else ""
            kind, key = "decision_failed", f"decision_failed:{row.id}:{finished}"
            message = f"{row.robot} kunde inte verkställa beslutet i ärende {row.id} för {row.tenant}"
        elif is_late(row, now, zone, cfg):
            decided = row.decided_at.isoformat() if row.decided_at else ""
            kind, key = "decision_late", f"decision_late:{row.id}:{decided}"
            message = (
                f"Beslutet i ärende {row.id} ({row.robot}, {row.tenant}) har väntat mer än "
                f"{cfg.decision_wait_minutes} minuter på att verkställas"
            )
        else:
            continue
        new += _insert(
            db,
            {
                "key": key[:200],
                "kind": kind,
                "tenant": row.tenant,
                "robot": row.robot,
                "run_id": None,
                "message": redact_text(message),
                "created_at": now,
            },
        )
    return new


def open_alerts(db: Database, tenants: set[str], limit: int = 50) -> list[Alert]:
    """Unacknowledged alerts of the tenants, newest first."""
    with db.session() as s:
        return list(
            s.scalars(
                select(Alert)
                .where(Alert.tenant.in_(tenants), Alert.acknowledged_at.is_(None))
                .order_by(Alert.created_at.desc(), Alert.id.desc())
                .limit(limit)
            )
        )


def acknowledge(db: Database, tenants: set[str], alert_id: int, actor: str, now: datetime) -> bool:
    """Mark an alert as seen; False when it is not one of the tenants'."""
    with db.session() as s:
        alert = s.get(Alert, alert_id)
        if alert is None or alert.tenant not in tenants:
            return False
        alert.acknowledged_by, alert.acknowledged_at = actor, now
        return True


Sender = Callable[[EmailMessage], Any]


def mail_settings(connectors: dict[str, dict[str, Any]]) -> AlertMailSettings | None:
    """The alert mail's SMTP settings from ``[connectors.mail]``; None when mail is not configured."""
    section = connectors.get("mail")
    # shared_by says which municipalities' robots may use the mailer; it is no SMTP setting.
    return AlertMailSettings.model_validate({k: v for k, v in section.items() if k != "shared_by"}) if section else None


#: The subject line per alert kind: fixed Swedish text, never the run's error (which may
#: hold line breaks, which a mail header refuses, or text nobody vetted for a subject).
SUBJECTS = {
    "failed": "körning misslyckades",
    "missed": "körning missades",
    "overrun": "körning blev inte klar i tid",
    "exception_jump": "många undantag",
    "review_overdue": "försenat ärende i inkorgen",
    "queue_age": "gammalt ärende i kön",
}
#: Alert kinds about a review queue: mailed to the tenant's coordinators too (``[review]
#: escalation_mail_coordinators``), as the escalation of an item nobody decided in time.
COORDINATOR_KINDS = frozenset({"review_overdue", "queue_age"})
#: SMTP failures worth another try at the next check (the server is away, not the message bad).
TRANSIENT = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    aiosmtplib.SMTPConnectTimeoutError,
    OSError,
)


def _one_line(text: str, limit: int = 120) -> str:
    """``text`` as one header-safe line: control characters become spaces, then cut."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat[:limit]


def build_message(
    alert: Alert, ops_email: str | list[str], tenant_name: str, sender: str, public_url: str
) -> EmailMessage:
    """The alert mail: a fixed one-line subject, the (redacted) message in the body."""
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, ops_email if isinstance(ops_email, str) else ", ".join(ops_email)
    what = SUBJECTS.get(alert.kind, alert.kind)
    msg["Subject"] = _one_line(f"Kollega: {what}: {alert.robot} för {tenant_name} ({alert.tenant})")
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(
        f"Kollega har upptäckt ett problem för {tenant_name} ({alert.tenant}):\n\n{redact_text(alert.message)}\n\n"
        f"Se driftöversikten: {public_url}/ops\n"
        + (f"Se inkorgen: {public_url}/inbox\n" if alert.kind in COORDINATOR_KINDS else "")
    )
    return msg


def alert_queue(db: Database, alert: Alert) -> str | None:
    """The review queue an overdue-item or old-queue alert is about (from its key), or None."""
    kind, _, rest = alert.key.partition(":")
    if kind == "queue_age":  # queue_age:<tenant>:<queue>:<oldest id>
        parts = rest.split(":")
        return ":".join(parts[1:-1]) or None if len(parts) >= 3 else None
    if kind == "review_overdue" and rest.isdigit():
        with db.session() as s:
            return s.scalar(select(ReviewItem.queue).where(ReviewItem.id == int(rest)))
    return None


def coordinator_emails(db: Database, tenant: str, queue: str | None = None) -> list[str]:
    """The e-mail addresses of the active coordinators of ``tenant`` (of ``queue``: granted it or all), sorted."""
    stmt = (
        select(User.email)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == Role.coordinator, UserRole.tenant == tenant)
        .where(User.active.is_(True), User.email.is_not(None), User.email != "")
        .distinct()
    )
    if queue is not None:
        stmt = stmt.where(UserRole.queue.in_(["", queue]))
    with db.session() as s:
        found = s.scalars(stmt).all()
    return sorted({e for e in found if e})


async def mail_new(
    db: Database, smtp: AlertMailSettings, now: datetime, public_url: str, *, coordinators: bool = True
) -> int:
    """Mail every alert not yet mailed to its tenant's ops_email; returns how many were sent.

    An overdue item's escalation and an old queue (:data:`COORDINATOR_KINDS`) go to the
    tenant's coordinators as well when ``coordinators`` is set.

    Each alert is mailed on its own: one that cannot be mailed (a bad address, a message the
    server refuses) gets its ``mail_error`` recorded and is not tried again, so it never
    stands in front of the others; one that meets an unreachable server is tried again at
    the next check.
    """
    with db.session() as s:
        pending = s.execute(
            select(Alert, Tenant.ops_email, Tenant.name)
            .join(Tenant, Tenant.code == Alert.tenant)
            .where(Alert.mailed_at.is_(None), Alert.mail_error.is_(None))
            .order_by(Alert.id)
        ).all()
    sent = 0
    for alert, ops_email, tenant_name in pending:
        try:
            recipients = [ops_email] if ops_email else []
            if coordinators and alert.kind in COORDINATOR_KINDS:
                queue = alert_queue(db, alert)
                recipients += [e for e in coordinator_emails(db, alert.tenant, queue) if e not in recipients]
            if not recipients:
                _mark(db, alert.id, error="the tenant has no ops_email")
                continue
            msg = build_message(alert, recipients, tenant_name, smtp.sender, public_url)
            await aiosmtplib.send(
                msg,
                hostname=smtp.host,
                port=smtp.port,
                use_tls=smtp.security == "tls",
                start_tls=smtp.security == "starttls",
                validate_certs=smtp.validate_certs,
                username=smtp.username.resolve() if smtp.username else None,
                password=smtp.password.resolve() if smtp.password else None,
                timeout=smtp.timeout_seconds,
            )
        except TRANSIENT as exc:
            log.warning("web.alert_mail_failed", alert=alert.id, error=type(exc).__name__, retry=True)
            continue  # tried again at the next check
        except Exception as exc:  # this alert cannot be mailed: record why, go on with the others
            reason = _one_line(redact_text(f"{type(exc).__name__}: {exc}"), 500)
            log.warning("web.alert_mail_failed", alert=alert.id, error=reason, retry=False)
            try:
                _mark(db, alert.id, error=reason)
            except Exception:
                log.exception("web.alert_mail_error_not_recorded", alert=alert.id)
            continue
        try:
            _mark(db, alert.id, mailed_at=now)
        except Exception:
            # Sent but not recorded: it may go out once more at the next check, which beats losing it.
            log.exception("web.alert_mailed_not_recorded", alert=alert.id)
        sent += 1
    return sent


def _mark(db: Database, alert_id: int, *, mailed_at: datetime | None = None, error: str | None = None) -> None:
    with db.session() as s:
        alert = s.get(Alert, alert_id)
        if alert is not None:
            alert.mailed_at, alert.mail_error = mailed_at, error


def sweep_reviews(
    db: Database, settings: Settings, registry: Registry, reviews: ReviewStore, clock: Clock
) -> SweepResult:
    """Lapse, mark and escalate overdue review items from the web process (as a worker does; see core.overdue).

    `kollega serve` runs it with its alert checks, so nothing waits unseen when no worker is up.
    """

    def robot_for(name: str) -> Robot | None:
        cls = registry.robots.get(name)
        return cls(settings.robot_settings(name, cls.settings_model)) if cls is not None else None

    return sweep(reviews, SqlAlertSink(db, clock), robot_for, settings.review, clock.now(), ZoneInfo(settings.timezone))
