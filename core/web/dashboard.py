"""The operations dashboard's figures: last night, 30-day trends, time saved, schedules, runs, items.

"Last night" is every run created since 12:00 local time the day before (or since 12:00
today once it is past 18:00), so at 07:30 it shows the night just ended, and in the evening
the day's runs. Time saved per robot and month comes from the effects ledger
(:mod:`core.effects_report`): outcomes that replaced manual work at the municipality's
measured (or the robot's estimated) minutes, minus the measured review time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core import audit, effects_report
from core.schedule_files import FileProblem, scan
from core.scheduler import next_slots
from core.storage.models import Artifact, ItemStatus, Run, RunStatus, WorkItem
from core.storage.web_models import ALL_TENANTS, SchedulePause
from core.transitions import BULK_FAILED
from core.web.auth import NotFound
from core.web.deps import WebContext

# Worst last: a robot's night shows its worst run. An interrupted run (SIGTERM) left work for
# the next run; an abandoned one lost its runner mid-way, as bad as a failure for a person to check.
SEVERITY = [
    "cancelled",
    "skipped",
    "succeeded",
    "queued",
    "running",
    "interrupted",
    "attention",
    "missed",
    "abandoned",
    "failed",
]


def night_window(now: datetime, zone: str) -> tuple[datetime, datetime]:
    """(start, end) of "last night" in UTC-aware datetimes."""
    local = now.astimezone(ZoneInfo(zone))
    day = local.date() if local.hour >= 18 else local.date() - timedelta(days=1)
    start = datetime.combine(day, time(12), tzinfo=ZoneInfo(zone))
    return start, now


@dataclass
class NightRow:
    """One robot in one tenant last night."""

    robot: str
    tenant: str
    runs: int = 0
    collected: int = 0
    done: int = 0
    needs_review: int = 0
    exceptions: int = 0
    uncertain: int = 0
    duration_seconds: float = 0.0
    status: str = "succeeded"
    last_run_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return dict(self.__dict__)


def last_night(ctx: WebContext, tenants: set[str]) -> list[NightRow]:
    """Per robot and tenant: runs, items, done, to review, exceptions, uncertain, duration, worst status."""
    start, end = night_window(ctx.clock(), ctx.zone)
    with ctx.db.read_session() as s:
        runs = s.scalars(
            select(Run).where(Run.tenant.in_(tenants), Run.created_at >= start, Run.created_at <= end).order_by(Run.id)
        ).all()
    rows: dict[tuple[str, str], NightRow] = {}
    for run in runs:
        row = rows.setdefault((run.robot, run.tenant), NightRow(run.robot, run.tenant))
        row.runs += 1
        row.collected += run.collected
        row.done += run.done
        row.needs_review += run.needs_review
        row.exceptions += run.failed_business + run.failed_application
        row.uncertain += run.uncertain
        if run.started_at and run.finished_at:
            row.duration_seconds += (run.finished_at - run.started_at).total_seconds()
        if SEVERITY.index(run.status.value) > SEVERITY.index(row.status):
            row.status = run.status.value
        row.last_run_id = run.id
    return sorted(rows.values(), key=lambda r: (r.tenant, r.robot))


@dataclass
class DayPoint:
    """One day of one robot's trend."""

    day: date
    collected: int = 0
    done: int = 0
    needs_review: int = 0
    exceptions: int = 0


def trends(ctx: WebContext, tenants: set[str], days: int = 30) -> dict[str, list[DayPoint]]:
    """Per robot, one point per local day for the last ``days`` days (days without runs are zero)."""
    zone = ZoneInfo(ctx.zone)
    today = ctx.clock().astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time(0), tzinfo=zone)
    with ctx.db.read_session() as s:
        runs = s.execute(
            select(
                Run.robot,
                Run.created_at,
                Run.collected,
                Run.done,
                Run.needs_review,
                Run.failed_business,
                Run.failed_application,
                Run.uncertain,
            ).where(Run.tenant.in_(tenants), Run.created_at >= since)
        ).all()
    out: dict[str, dict[date, DayPoint]] = defaultdict(dict)
    for robot, created, collected, done, review, fb, fa, unc in runs:
        day = created.astimezone(zone).date()
        point = out[robot].setdefault(day, DayPoint(day))
        point.collected += collected
        point.done += done
        point.needs_review += review
        point.exceptions += fb + fa + unc
    return {
        robot: [points.get(first + timedelta(days=i), DayPoint(first + timedelta(days=i))) for i in range(days)]
        for robot, points in sorted(out.items())
    }


@dataclass
class SavedRow:
    """Time saved by one robot in one municipality and month, from the effects ledger."""

    robot: str
    tenant: str
    month: str
    #: Minutes of manual work the robot's outcomes replaced (measured baselines or labelled estimates).
    replaced_minutes: float
    #: Review time case workers spent on the robot's items, measured in the inbox.
    review_minutes: float
    reviews_measured: int
    saved_minutes: float
    #: True when any outcome counted with the robot's estimate rather than the municipality's own figure.
    estimated: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return dict(self.__dict__)


def time_saved(ctx: WebContext, tenants: set[str], months: int = 2) -> list[SavedRow]:
    """Per municipality, robot and month (local time), newest month first: the effects ledger's time saved.

    Only outcomes that replaced manual work count, minus the measured review time
    (:mod:`core.effects_report`, docs/effects.md); the full figures are on ``/effekter``.
    """
    current = f"{ctx.clock().astimezone(ZoneInfo(ctx.zone)):%Y-%m}"
    rows = []
    for label in reversed(effects_report.recent_months(current, months)):
        for tenant in sorted(tenants):
            rep = effects_report.report(ctx.db, ctx.registry.robots, ctx.settings, tenant, label)
            rows += [
                SavedRow(
                    r.robot,
                    tenant,
                    label,
                    r.gross_minutes,
                    r.review_minutes,
                    r.reviews_timed,
                    r.saved_minutes,
                    r.estimated,
                )
                for r in rep.robots
                if r.gross_minutes or r.reviews_timed  # a month in which the robot did nothing is left out
            ]
    return rows


@dataclass
class ScheduleRow:
    """A schedule with its next run and pause state, for the person's tenants on it."""

    name: str
    robot: str
    tenants: list[str]
    cron: str
    description: str
    enabled: bool
    next_run: datetime | None
    paused_by: str | None = None
    paused_at: datetime | None = None
    #: The person's tenants on this schedule whose share is paused (a pause is per tenant).
    paused_tenants: list[str] = field(default_factory=list)
    #: The schedule file (in schedules/) and what the dashboard may change in it.
    file: str = ""
    window_end: str = ""
    calendar: str = "all"
    #: Every tenant the schedule covers: changing it changes it for all of them.
    all_tenants: list[str] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        """Paused by operations staff for every one of the person's tenants on it."""
        return bool(self.tenants) and set(self.tenants) <= set(self.paused_tenants)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {**self.__dict__, "paused": self.paused}


def schedules(ctx: WebContext, tenants: set[str]) -> tuple[list[ScheduleRow], str | None]:
    """Schedules touching the person's tenants, and the problems of broken files (if any) in one text."""
    rows, _all, problems = _schedules(ctx, tenants)
    return rows, "; ".join(f"{p.file}: {p.message}" for p in problems) or None


def schedule_problems(ctx: WebContext) -> list[FileProblem]:
    """The schedule files that do not validate: each is reported, the others run."""
    return _schedules(ctx, set())[2]


def _schedules(ctx: WebContext, tenants: set[str]) -> tuple[list[ScheduleRow], dict[str, list[str]], list[FileProblem]]:
    # Also every tenant of each schedule (not only the person's): needed to split an old all-tenant pause.
    codes = {t.code for t in ctx.settings.tenants} | tenants
    # File by file, as the running scheduler reads them: one broken file hides none of the others.
    folder = scan(ctx.settings.scheduler.schedules_dir, robots=set(ctx.registry.robots) or None, tenants=codes)
    found = list(folder.schedules.values())
    with ctx.db.session() as s:
        pauses = {(p.schedule, p.tenant): p for p in s.scalars(select(SchedulePause)).all()}
    now = ctx.clock()
    rows = []
    everyone: dict[str, list[str]] = {}
    for sch in found:
        sch_tenants = sorted(codes) if sch.tenants == ["*"] else list(sch.tenants)
        everyone[sch.name] = sch_tenants
        mine = [t for t in sch_tenants if t in tenants]
        if not mine:
            continue
        upcoming = next_slots(sch, now, 1) if sch.enabled else []
        # Only the pauses of the person's own tenants: another municipality's pause is its business.
        own = {t: p for t in mine if (p := pauses.get((sch.name, t)) or pauses.get((sch.name, ALL_TENANTS)))}
        latest = max(own.values(), key=lambda p: p.paused_at, default=None)
        rows.append(
            ScheduleRow(
                sch.name,
                sch.robot,
                mine,
                sch.cron,
                sch.description,
                sch.enabled,
                upcoming[0][1] if upcoming else None,
                latest.paused_by if latest else None,
                latest.paused_at if latest else None,
                sorted(own),
                folder.files.get(sch.name, ""),
                sch.window_end,
                sch.calendar,
                sch_tenants,
            )
        )
    return rows, everyone, folder.problems


def set_paused(
    ctx: WebContext,
    tenants: set[str],
    name: str,
    paused: bool,
    actor: str,
    reason: str = "",
    tenant: str | None = None,
) -> list[str]:
    """Pause or resume the person's share of a schedule (audited per tenant); the tenants changed.

    Only the person's own tenants on the schedule are touched (``tenant`` narrows it to
    one of them); a schedule shared with other municipalities keeps running for them.
    NotFound for a schedule, or a tenant, outside the person's tenants.
    """
    rows, everyone, _problem = _schedules(ctx, tenants)
    row = next((r for r in rows if r.name == name), None)
    if row is None or (tenant is not None and tenant not in row.tenants):
        raise NotFound()
    targets = [tenant] if tenant is not None else row.tenants
    now = ctx.clock()
    with ctx.db.session() as s:
        existing = {p.tenant: p for p in s.scalars(select(SchedulePause).where(SchedulePause.schedule == name))}
        legacy = existing.pop(ALL_TENANTS, None)
        if legacy is not None and not paused:
            # A pause from before pauses were per tenant: it stays for every tenant but these.
            s.delete(legacy)
            for other in everyone.get(name, []):
                if other not in targets and other not in existing:
                    s.add(
                        SchedulePause(
                            schedule=name,
                            tenant=other,
                            paused_by=legacy.paused_by,
                            paused_at=legacy.paused_at,
                            reason=legacy.reason,
                        )
                    )
        for code in targets:
            if paused and code not in existing and legacy is None:
                s.add(SchedulePause(schedule=name, tenant=code, paused_by=actor, paused_at=now, reason=reason[:500]))
            elif not paused and code in existing:
                s.delete(existing[code])
            audit.append(
                s,
                actor=actor,
                action="schedule.paused" if paused else "schedule.resumed",
                tenant=code,
                details={"schedule": name, "reason": reason[:500] or None},
                now=now,
            )
    return targets


def run_now(ctx: WebContext, tenants: set[str], robot: str, tenant: str, actor: str, *, dry_run: bool = False) -> int:
    """Queue a manual run of ``robot`` for ``tenant`` (a dry run writes nothing outside); a worker picks it up.

    Audited by the run store as ``run.queued`` with the person as actor (and ``dry_run``).
    """
    if tenant not in tenants or robot not in ctx.registry.robots:
        raise NotFound()
    configured = {t.code: t for t in ctx.settings.tenants}
    if tenant in configured:
        t = configured[tenant]
        ctx.runs.ensure_tenant(t.code, t.name, t.ops_email)
    run_id = ctx.runs.create(robot=robot, tenant=tenant, trigger="manual", actor=actor, dry_run=dry_run)
    assert run_id is not None  # manual runs have no slot, so no unique conflict
    return run_id


def list_runs(
    ctx: WebContext, tenants: set[str], robot: str | None = None, status: str | None = None, limit: int = 100
) -> list[Run]:
    """Newest runs first."""
    stmt = select(Run).where(Run.tenant.in_(tenants)).order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)
    if robot:
        stmt = stmt.where(Run.robot == robot)
    if status in {s.value for s in RunStatus}:
        stmt = stmt.where(Run.status == RunStatus(status))
    with ctx.db.session() as s:
        return list(s.scalars(stmt).all())


def get_run(ctx: WebContext, tenants: set[str], run_id: int) -> tuple[Run, list[WorkItem]]:
    """A run and its items; NotFound outside the person's tenants."""
    with ctx.db.session() as s:
        run = s.get(Run, run_id)
        if run is None or run.tenant not in tenants:
            raise NotFound()
        items = list(s.scalars(select(WorkItem).where(WorkItem.run_id == run_id).order_by(WorkItem.id).limit(500)))
    return run, items


@dataclass(frozen=True)
class ItemFilter:
    """Which failed items the items page shows and a bulk action takes: always inside the person's tenants."""

    tenants: frozenset[str]
    robot: str | None = None
    status: ItemStatus | None = None
    error_code: str | None = None
    run_id: int | None = None

    @classmethod
    def parse(
        cls, allowed: set[str], robot: str, status: str, error_code: str, tenant: str, run_id: int | None
    ) -> ItemFilter:
        """From the page's fields; an unknown status or a tenant outside ``allowed`` is NotFound."""
        chosen: ItemStatus | None = None
        if status:
            try:
                chosen = ItemStatus(status)
            except ValueError:
                raise NotFound() from None
            if chosen not in BULK_FAILED:
                raise NotFound()
        if tenant and tenant not in allowed:
            raise NotFound()
        return cls(
            frozenset([tenant] if tenant else allowed),
            robot.strip() or None,
            chosen,
            error_code.strip() or None,
            run_id,
        )

    def query(self) -> str:
        """The filter as the items page's query string."""
        fields = {
            "robot": self.robot or "",
            "status": self.status.value if self.status else "",
            "error_code": self.error_code or "",
            "tenant": next(iter(self.tenants)) if len(self.tenants) == 1 else "",
            "run": str(self.run_id) if self.run_id else "",
        }
        return urlencode({k: v for k, v in fields.items() if v})


#: Items the items page lists at most (a bulk action takes up to core.interfaces' limit).
ITEMS_SHOWN = 200


def failed_items(ctx: WebContext, chosen: ItemFilter) -> list[WorkItem]:
    """The failed items matching ``chosen``, oldest first (at most :data:`ITEMS_SHOWN`)."""
    stmt = select(WorkItem).where(
        WorkItem.tenant.in_(sorted(chosen.tenants)),
        WorkItem.status.in_([chosen.status] if chosen.status else sorted(BULK_FAILED)),
    )
    if chosen.robot:
        stmt = stmt.where(WorkItem.robot == chosen.robot)
    if chosen.error_code:
        stmt = stmt.where(WorkItem.error_code == chosen.error_code)
    if chosen.run_id is not None:
        stmt = stmt.where(WorkItem.run_id == chosen.run_id)
    with ctx.db.session() as s:
        return list(s.scalars(stmt.order_by(WorkItem.id).limit(ITEMS_SHOWN)))


def bulk_items(ctx: WebContext, chosen: ItemFilter, action: str, actor: str) -> list[int]:
    """Retry or cancel every failed item matching ``chosen`` through the work-item store (audited); the ids."""
    return ctx.queue.bulk_failed(
        action,
        chosen.tenants,
        actor=actor,
        robot=chosen.robot,
        status=chosen.status,
        error_code=chosen.error_code,
        run_id=chosen.run_id,
    )


def get_item(ctx: WebContext, tenants: set[str], item_id: int) -> tuple[WorkItem, list[Artifact]]:
    """A work item and its artifacts; NotFound outside the person's tenants."""
    with ctx.db.session() as s:
        item = s.get(WorkItem, item_id)
        if item is None or item.tenant not in tenants:
            raise NotFound()
        artifacts = list(s.scalars(select(Artifact).where(Artifact.work_item_id == item_id).order_by(Artifact.id)))
    return item, artifacts


def get_artifact(ctx: WebContext, tenants: set[str], artifact_id: int, actor: str) -> Artifact:
    """An artifact to show; the access is audited (screenshots hold personal data)."""
    with ctx.db.session() as s:
        art = s.get(Artifact, artifact_id)
        if art is None or art.tenant not in tenants:
            raise NotFound()
        subject = s.scalar(select(WorkItem.subject).where(WorkItem.id == art.work_item_id))
        audit.append(
            s,
            actor=actor,
            action="artifact.opened",
            tenant=art.tenant,
            subject=subject,
            purpose="felsökning",
            details={"artifact_id": art.id, "work_item_id": art.work_item_id},
            now=ctx.clock(),
        )
    return art


def retry_item(ctx: WebContext, tenants: set[str], item_id: int, actor: str) -> bool:
    """Put a failed, uncertain or cancelled item back in the queue; False when its status does not allow it."""
    get_item(ctx, tenants, item_id)  # NotFound outside the person's tenants
    return ctx.queue.retry(item_id, actor=actor)


def cancel_item(ctx: WebContext, tenants: set[str], item_id: int, actor: str) -> bool:
    """Cancel a pending, failed or uncertain item (audited); False when its status does not allow it."""
    get_item(ctx, tenants, item_id)
    return ctx.queue.cancel(item_id, actor=actor)


@dataclass(frozen=True)
class BacklogRow:
    """One review queue on the dashboard: open and overdue items, the oldest one's age against its limit."""

    tenant: str
    queue: str
    open: int
    overdue: int
    oldest_created_at: datetime | None
    age_hours: float
    limit_hours: float


def inbox_backlog(ctx: WebContext, tenants: set[str]) -> list[BacklogRow]:
    """Each review queue's backlog and the age of its oldest open item (``[review]`` sets the alert limit)."""
    now = ctx.clock()
    return [
        BacklogRow(
            q.tenant,
            q.queue,
            q.open,
            q.overdue,
            q.oldest_created_at,
            (now - q.oldest_created_at).total_seconds() / 3600 if q.oldest_created_at else 0.0,
            ctx.settings.review.oldest_open_limit(q.queue),
        )
        for q in ctx.reviews.backlog(tenants=tenants)
    ]
