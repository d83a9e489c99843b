"""The SQL alert sink: a robot's operations alert becomes one ``web_alerts`` row, raised once per key.

The dashboard lists these rows and :func:`core.web.alerts.mail_new` mails them to the tenant's
``ops_email`` like the kernel's own alerts (failed or missed runs). The key is unique, so the
same problem raised by many items, runs or processes is one alert.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from core.clock import Clock, SystemClock
from core.logging import redact_text
from core.storage.db import Database
from core.storage.web_models import Alert

__all__ = ["SqlAlertSink"]


class SqlAlertSink:
    """Alerts in the ``web_alerts`` table (the :class:`core.interfaces.AlertSink` port)."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()

    def raise_alert(self, *, key: str, kind: str, tenant: str, robot: str, run_id: int | None, message: str) -> bool:
        """Insert the alert unless ``key`` exists; True when it is new."""
        dialect_insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        stmt = (
            dialect_insert(Alert)
            .values(
                key=key[:200],
                kind=kind[:32],
                tenant=tenant,
                robot=robot,
                run_id=run_id,
                message=redact_text(message),
                created_at=self.clock.now(),
            )
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(Alert.id)
        )
        with self.db.session() as s:
            return s.scalar(stmt) is not None

    def alert_keys(self, tenant: str | None = None) -> Sequence[str]:
        """The keys raised so far, oldest first."""
        stmt = select(Alert.key).order_by(Alert.id)
        if tenant is not None:
            stmt = stmt.where(Alert.tenant == tenant)
        with self.db.session() as s:
            return list(s.scalars(stmt))
