"""Nothing leaves the inbox unseen: review items past their deadline are marked, escalated once, or lapsed.

:func:`sweep` runs in every worker (and in `kollega serve`'s alert loop) at most every
``[review] check_every_seconds``. For each open item whose deadline has passed it asks the
item's robot (:meth:`core.robot.Robot.lapse_reason`) whether the item has lost its point;
if so the item is closed as ``lapsed`` with that reason (audited, shown in the inbox).
Otherwise it stays open, is marked overdue ("Försenad", sorted first in the inbox) and is
escalated once: an ``review_overdue`` alert on the operations dashboard (mailed to the
tenant's ops_email and, when configured, to its coordinators), recorded on the item. A queue
whose oldest open item is older than its configured age raises one ``queue_age`` alert per
oldest item. Alerts say which item and queue, never whom it concerns.

Every step goes through the ports (:class:`~core.interfaces.ReviewStore`,
:class:`~core.interfaces.AlertSink`), so it behaves the same on memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.interfaces import AlertSink, ReviewRecord, ReviewStore
from core.logging import get_logger
from core.records import ReviewKind, ReviewView
from core.robot import Robot
from core.settings import ReviewSettings

log = get_logger("kollega.overdue")

#: Who marks, escalates and (on the robot's word) lapses items, in the audit log.
ACTOR = "system:kollega"
#: Whom an escalation goes to (recorded on the item's audit event).
ESCALATED_TO = "coordinators,operations"

RobotLookup = Callable[[str], Robot | None]


def _raise(alerts: AlertSink | None, **alert: str | None) -> bool:
    """Raise through the sink; without one (a store set without alerts) the alert is only logged."""
    if alerts is None:
        log.warning("review.alert", kind=alert["kind"], tenant=alert["tenant"], message=alert["message"])
        return False
    return alerts.raise_alert(
        key=str(alert["key"]),
        kind=str(alert["kind"]),
        tenant=str(alert["tenant"]),
        robot=str(alert["robot"]),
        run_id=None,
        message=str(alert["message"]),
    )


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    lapsed: int = 0
    marked_overdue: int = 0
    escalated: int = 0
    queue_alerts: int = 0


def _local(when: datetime | None, zone: ZoneInfo) -> str:
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M") if when is not None else "–"


def _lapse_reason(robot: Robot | None, row: ReviewRecord, now: datetime, zone: ZoneInfo) -> str | None:
    if robot is None or row.kind != ReviewKind.decision:
        return None  # a problem report is a person's to close; it never lapses
    try:
        reason = robot.lapse_reason(ReviewView.from_row(row), now, zone)
    except Exception:
        log.exception("review.lapse_check_failed", robot=row.robot, review_id=row.id)
        return None
    return reason.strip() if isinstance(reason, str) and reason.strip() else None


def sweep(
    reviews: ReviewStore,
    alerts: AlertSink | None,
    robot_for: RobotLookup,
    settings: ReviewSettings,
    now: datetime,
    zone: ZoneInfo,
) -> SweepResult:
    """Lapse, mark and escalate the open items past their deadline; alert on old queues."""
    lapsed = marked = escalated = 0
    robots: dict[str, Robot | None] = {}
    for row in reviews.past_due():
        if row.robot not in robots:
            try:
                robots[row.robot] = robot_for(row.robot)
            except Exception:  # a robot whose settings do not load must not stop the sweep
                log.exception("review.lapse_robot_unavailable", robot=row.robot)
                robots[row.robot] = None
        reason = _lapse_reason(robots[row.robot], row, now, zone)
        if reason is not None:
            if reviews.lapse(row.id, reason, actor=f"robot:{row.robot}"):
                lapsed += 1
                log.info("review.lapsed", review_id=row.id, queue=row.queue, tenant=row.tenant)
            continue
        if row.overdue_at is None and reviews.mark_overdue(row.id, actor=ACTOR):
            marked += 1
        if row.escalated_at is None:
            # The alert first: its key makes it once-only, so a crash before the mark repeats nothing.
            _raise(
                alerts,
                key=f"review_overdue:{row.id}",
                kind="review_overdue",
                tenant=row.tenant,
                robot=row.robot,
                message=(
                    f"Ärende {row.id} i kön {row.queue} ({row.tenant}) är försenat: tidsfristen gick ut "
                    f"{_local(row.due_at, zone)}. Det ligger kvar i inkorgen, överst, tills någon beslutar."
                ),
            )
            if reviews.mark_escalated(row.id, actor=ACTOR, to=ESCALATED_TO):
                escalated += 1
                log.warning("review.escalated", review_id=row.id, queue=row.queue, tenant=row.tenant)
    return SweepResult(lapsed, marked, escalated, _queue_age_alerts(reviews, alerts, settings, now, zone))


def _queue_age_alerts(
    reviews: ReviewStore, alerts: AlertSink | None, settings: ReviewSettings, now: datetime, zone: ZoneInfo
) -> int:
    new = 0
    for q in reviews.backlog():
        limit = settings.oldest_open_limit(q.queue)
        if q.oldest_created_at is None or now - q.oldest_created_at <= timedelta(hours=limit):
            continue
        hours = (now - q.oldest_created_at).total_seconds() / 3600
        new += _raise(
            alerts,
            key=f"queue_age:{q.tenant}:{q.queue}:{q.oldest_id}",
            kind="queue_age",
            tenant=q.tenant,
            robot=q.queue.partition(".")[0],
            message=(
                f"Kön {q.queue} ({q.tenant}) har {q.open} öppna ärenden; det äldsta (ärende {q.oldest_id}, "
                f"skapat {_local(q.oldest_created_at, zone)}) har väntat {hours:.0f} timmar, "
                f"mer än gränsen {limit:g} timmar."
            ),
        )
    return new


class SweepTimer:
    """Runs :func:`sweep` at most every ``check_every_seconds`` (by the clock it is given)."""

    def __init__(self, every_seconds: float) -> None:
        self.every = timedelta(seconds=every_seconds)
        self.last: datetime | None = None

    def due(self, now: datetime) -> bool:
        """True (and the timer restarts) when a sweep is due."""
        if self.last is not None and now - self.last < self.every:
            return False
        self.last = now
        return True
