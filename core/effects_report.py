"""The effects ledger: each robot's measured effect per municipality and month, and the time it saved.

For one robot, municipality and month (local time) the facts are gathered from the
database (work items created in the month, review items created or decided in it, the
robot's audit events in it) and handed to the robot's pure ``measure_effects``. Time saved
counts only the outcomes the robot declares as replacing manual work, each at the
municipality's own measured minutes (``effect_minutes`` in its ``[[tenants]]`` entry) or
else the robot's documented estimate, labelled as one; from that the review time case
workers spent on the robot's items in the month is subtracted (measured in the inbox from
the first opening of an item to the decision). docs/effects.md explains every figure.

Read-only: the effects page, ``kollega effects`` and the exports all come from here.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from core.effects import EffectFacts, EffectsDeclaration, EventFact, ItemFact, Measured, ReviewFact
from core.errors import ConfigError
from core.robot import Robot
from core.settings import Settings
from core.storage.db import Database
from core.storage.models import AuditEvent, ReviewItem, WorkItem
from core.storage.web_models import ReviewTiming

__all__ = [
    "MonthReport",
    "RobotMonth",
    "TimeLine",
    "csv_text",
    "month_range",
    "parse_month",
    "recent_months",
    "report",
    "report_json",
    "series",
]

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str) -> str:
    """``YYYY-MM`` checked; ConfigError naming the bad value otherwise."""
    if not _MONTH.match(text.strip()):
        raise ConfigError(f"month {text!r} is not YYYY-MM (e.g. 2026-11)", code="bad_month")
    return text.strip()


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def month_range(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's first instant, local midnight, time-zone aware."""
    start = datetime.combine(date.fromisoformat(f"{month}-01"), time(0), tzinfo=zone)
    end = datetime.combine(date.fromisoformat(f"{_next_month(month)}-01"), time(0), tzinfo=zone)
    return start, end


def recent_months(last: str, count: int) -> list[str]:
    """``count`` months ending with ``last``, oldest first."""
    year, mon = int(last[:4]), int(last[5:])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{mon:02d}")
        year, mon = (year - 1, 12) if mon == 1 else (year, mon - 1)
    return out[::-1]


@dataclass(frozen=True)
class TimeLine:
    """One outcome kind's part of the time saved."""

    key: str
    label: str
    count: int
    minutes_each: float
    #: True when the municipality set its own measured figure; False = the robot's estimate.
    measured: bool
    source: str

    @property
    def minutes(self) -> float:
        """Count × minutes each."""
        return round(self.count * self.minutes_each, 1)


@dataclass
class RobotMonth:
    """One robot's figures for one municipality and month."""

    robot: str
    display_name: str
    month: str
    declaration: EffectsDeclaration | None
    measured: Measured
    time_lines: list[TimeLine] = field(default_factory=list)
    review_minutes: float = 0.0
    reviews_timed: int = 0

    @property
    def gross_minutes(self) -> float:
        """Minutes of manual work the outcomes replaced."""
        return round(sum(t.minutes for t in self.time_lines), 1)

    @property
    def saved_minutes(self) -> float:
        """Gross minus the measured review time."""
        return round(self.gross_minutes - self.review_minutes, 1)

    @property
    def estimated(self) -> bool:
        """True when any outcome counted with the robot's estimate rather than a measured baseline."""
        return any(not t.measured and t.count for t in self.time_lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: measures with labels and units, outcomes, time saved."""
        d = self.declaration
        measures = []
        for m in d.measures if d else ():
            measures.append(
                {
                    "key": m.key,
                    "label": m.label,
                    "unit": m.unit,
                    "value": self.measured.values.get(m.key),
                    "basis": self.measured.bases.get(m.key),
                    "better": m.better,
                    "how": m.how,
                }
            )
        return {
            "robot": self.robot,
            "display_name": self.display_name,
            "month": self.month,
            "questions": (
                {"why": d.why, "value": d.value, "when": d.when, "how_measured": d.how_measured} if d else None
            ),
            "measures": measures,
            "time_saved": {
                "outcomes": [
                    {
                        "key": t.key,
                        "label": t.label,
                        "count": t.count,
                        "minutes_each": t.minutes_each,
                        "baseline": "measured" if t.measured else "estimate",
                        "source": t.source,
                        "minutes": t.minutes,
                    }
                    for t in self.time_lines
                ],
                "gross_minutes": self.gross_minutes,
                "review_minutes": self.review_minutes,
                "reviews_timed": self.reviews_timed,
                "saved_minutes": self.saved_minutes,
                "estimated": self.estimated,
            },
        }


@dataclass
class MonthReport:
    """Every robot's figures for one municipality and month."""

    tenant: str
    tenant_name: str
    month: str
    robots: list[RobotMonth]
    #: ``effect_minutes`` keys of this municipality that name no declared outcome (a typo or a removed robot).
    unknown_baselines: list[str] = field(default_factory=list)

    @property
    def saved_minutes(self) -> float:
        """All robots' time saved."""
        return round(sum(r.saved_minutes for r in self.robots), 1)


def _facts(
    db: Database, robot: str, tenant: str, month: str, zone: ZoneInfo, material_keys: Sequence[str] = ()
) -> tuple[EffectFacts, float, int]:
    """The month's facts, the review minutes measured and how many reviews they cover."""
    start, end = month_range(month, zone)
    columns = [
        ReviewItem.id,
        ReviewItem.work_item_id,
        ReviewItem.queue,
        ReviewItem.kind,
        ReviewItem.state,
        ReviewItem.created_at,
        ReviewItem.decided_at,
        ReviewItem.decision_data,
    ]
    if material_keys:
        columns.append(ReviewItem.material)
    with db.session() as s:
        items = s.execute(
            select(
                WorkItem.id,
                WorkItem.reference,
                WorkItem.status,
                WorkItem.payload,
                WorkItem.result,
                WorkItem.created_at,
                WorkItem.finished_at,
            )
            .where(
                WorkItem.robot == robot,
                WorkItem.tenant == tenant,
                WorkItem.created_at >= start,
                WorkItem.created_at < end,
            )
            .order_by(WorkItem.id)
        ).all()
        reviews = s.execute(
            select(*columns)
            .where(
                ReviewItem.robot == robot,
                ReviewItem.tenant == tenant,
                or_(
                    (ReviewItem.created_at >= start) & (ReviewItem.created_at < end),
                    (ReviewItem.decided_at >= start) & (ReviewItem.decided_at < end),
                ),
            )
            .order_by(ReviewItem.id)
        ).all()
        review_facts = tuple(
            ReviewFact(
                id=r.id,
                work_item_id=r.work_item_id,
                queue=r.queue,
                kind=r.kind.value,
                state=r.state.value,
                created_at=r.created_at,
                decided_at=r.decided_at,
                decision_data=r.decision_data,
                material={k: v for k, v in (r.material or {}).items() if k in material_keys} if material_keys else {},
                created_in_month=start <= r.created_at < end,
            )
            for r in reviews
        )
        events = s.execute(
            select(AuditEvent.seq, AuditEvent.action, AuditEvent.time, AuditEvent.details)
            .where(
                AuditEvent.actor == f"robot:{robot}",
                AuditEvent.tenant == tenant,
                AuditEvent.time >= start,
                AuditEvent.time < end,
            )
            .order_by(AuditEvent.seq)
        ).all()
        timed = s.execute(
            select(func.coalesce(func.sum(ReviewTiming.seconds), 0), func.count()).where(
                ReviewTiming.robot == robot,
                ReviewTiming.tenant == tenant,
                ReviewTiming.decided_at >= start,
                ReviewTiming.decided_at < end,
                ReviewTiming.seconds.is_not(None),
            )
        ).one()
    facts = EffectFacts(
        tenant=tenant,
        month=month,
        zone=zone,
        items=tuple(
            ItemFact(i.id, i.reference, i.status.value, i.payload or {}, i.result, i.created_at, i.finished_at)
            for i in items
        ),
        reviews=review_facts,
        events=tuple(EventFact(e.seq, e.action, e.time, e.details or {}) for e in events),
    )
    return facts, round(float(timed[0] or 0) / 60, 1), int(timed[1])


def _tenant_baselines(settings: Settings, tenant: str) -> dict[str, float]:
    for t in settings.tenants:
        if t.code == tenant:
            return dict(t.effect_minutes)
    return {}


def _tenant_name(settings: Settings, tenant: str) -> str:
    return next((t.name for t in settings.tenants if t.code == tenant), tenant)


def robot_month(
    db: Database, cls: type[Robot], tenant: str, month: str, zone: ZoneInfo, baselines: Mapping[str, float]
) -> RobotMonth:
    """One robot's figures for one municipality and month."""
    declaration = cls.effects
    keys = declaration.material_keys if declaration else ()
    facts, review_minutes, timed = _facts(db, cls.name, tenant, month, zone, keys)
    measured = cls.measure_effects(facts) if declaration is not None else Measured()
    lines = []
    for kind in declaration.outcomes if declaration else ():
        own = baselines.get(f"{cls.name}.{kind.key}")
        lines.append(
            TimeLine(
                kind.key,
                kind.label,
                int(measured.outcomes.get(kind.key, 0)),
                float(own) if own is not None else kind.default_minutes,
                own is not None,
                "kommunens egen mätning" if own is not None else kind.source,
            )
        )
    return RobotMonth(cls.name, cls.display_name, month, declaration, measured, lines, review_minutes, timed)


def report(db: Database, robots: Mapping[str, type[Robot]], settings: Settings, tenant: str, month: str) -> MonthReport:
    """Every installed robot's figures for ``tenant`` in ``month`` (robots without a declaration are left out)."""
    zone = ZoneInfo(settings.timezone)
    baselines = _tenant_baselines(settings, tenant)
    declared = {f"{name}.{o.key}" for name, cls in robots.items() if cls.effects for o in cls.effects.outcomes}
    rows = [
        robot_month(db, cls, tenant, month, zone, baselines)
        for name, cls in sorted(robots.items())
        if cls.effects is not None
    ]
    return MonthReport(tenant, _tenant_name(settings, tenant), month, rows, sorted(set(baselines) - declared))


def series(
    db: Database, robots: Mapping[str, type[Robot]], settings: Settings, tenant: str, months: Sequence[str]
) -> list[MonthReport]:
    """One report per month, oldest first (for the page's charts)."""
    return [report(db, robots, settings, tenant, m) for m in months]


def report_json(rep: MonthReport) -> dict[str, Any]:
    """What ``kollega effects --json`` prints and the JSON API returns."""
    return {
        "tenant": rep.tenant,
        "tenant_name": rep.tenant_name,
        "month": rep.month,
        "saved_minutes": rep.saved_minutes,
        "unknown_baselines": rep.unknown_baselines,
        "robots": [r.as_dict() for r in rep.robots],
        "definitions": "docs/effects.md",
    }


CSV_COLUMNS = ["kommun", "månad", "robot", "typ", "nyckel", "namn", "värde", "enhet", "underlag", "anmärkning"]


def csv_rows(rep: MonthReport) -> list[list[str]]:
    """The report as rows of :data:`CSV_COLUMNS` (Swedish labels; a municipality publishes it as it is)."""
    rows: list[list[str]] = []
    for r in rep.robots:
        for m in r.declaration.measures if r.declaration else ():
            value = r.measured.values.get(m.key)
            basis = r.measured.bases.get(m.key)
            rows.append(
                [
                    rep.tenant,
                    rep.month,
                    r.display_name,
                    "mått",
                    m.key,
                    m.label,
                    "" if value is None else f"{value:.{m.decimals}f}",
                    m.unit,
                    "" if basis is None else str(basis),
                    "",
                ]
            )
        for t in r.time_lines:
            rows.append(
                [
                    rep.tenant,
                    rep.month,
                    r.display_name,
                    "utfall",
                    t.key,
                    t.label,
                    str(t.count),
                    "st",
                    f"{t.minutes_each:g} min/st",
                    "uppmätt av kommunen" if t.measured else f"uppskattning: {t.source}",
                ]
            )
        for key, label, value in (
            ("gross_minutes", "Ersatt manuellt arbete", r.gross_minutes),
            ("review_minutes", "Uppmätt granskningstid", r.review_minutes),
            ("saved_minutes", "Sparad tid", r.saved_minutes),
        ):
            note = "innehåller uppskattningar" if r.estimated and key != "review_minutes" else ""
            timed = str(r.reviews_timed) if key == "review_minutes" else ""
            rows.append([rep.tenant, rep.month, r.display_name, "tid", key, label, f"{value:.1f}", "min", timed, note])
    return rows


def csv_text(reports: Sequence[MonthReport]) -> str:
    """CSV (comma-separated, UTF-8) of one or more months."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for rep in reports:
        writer.writerows(csv_rows(rep))
    return out.getvalue()
