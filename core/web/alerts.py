"""Alerts: a failed, missed or overrunning run, or a robot whose exception share jumps.

:func:`detect` looks at the runs of the last two days and inserts one ``web_alerts`` row
per problem, keyed (kind + run id) so that several ``kollega serve`` processes raise and
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

import aiosmtplib
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from core.logging import get_logger, redact_text
from core.settings import SecretRef
from core.storage.db import Database
from core.storage.models import Run, RunStatus, Tenant
from core.storage.web_models import Alert
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


def detect(db: Database, cfg: AlertSettings, now: datetime) -> int:
    """Insert alerts for problems in the last two days' runs; returns how many are new."""
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
    new = 0
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


async def mail_new(db: Database, smtp: AlertMailSettings, now: datetime, public_url: str) -> int:
    """Mail every alert not yet mailed to its tenant's ops_email; returns how many were sent."""
    with db.session() as s:
        pending = s.execute(
            select(Alert, Tenant.ops_email, Tenant.name)
            .join(Tenant, Tenant.code == Alert.tenant)
            .where(Alert.mailed_at.is_(None), Alert.mail_error.is_(None))
            .order_by(Alert.id)
        ).all()
    sent = 0
    for alert, ops_email, tenant_name in pending:
        if not ops_email:
            _mark(db, alert.id, error="the tenant has no ops_email")
            continue
        msg = EmailMessage()
        msg["From"], msg["To"] = smtp.sender, ops_email
        msg["Subject"] = f"Kollega: {alert.message[:120]}"
        msg["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
        msg.set_content(
            f"Kollega har upptäckt ett problem för {tenant_name} ({alert.tenant}):\n\n{alert.message}\n\n"
            f"Se driftöversikten: {public_url}/ops\n"
        )
        try:
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
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("web.alert_mail_failed", alert=alert.id, error=type(exc).__name__)
            continue  # tried again at the next check
        _mark(db, alert.id, mailed_at=now)
        sent += 1
    return sent


def _mark(db: Database, alert_id: int, *, mailed_at: datetime | None = None, error: str | None = None) -> None:
    with db.session() as s:
        alert = s.get(Alert, alert_id)
        if alert is not None:
            alert.mailed_at, alert.mail_error = mailed_at, error
