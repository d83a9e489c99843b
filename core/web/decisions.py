"""What became of a decision: väntar, utförs, utfört or misslyckades, for the person who made it.

After a person decides, a worker calls the robot's ``on_decision``; the review row keeps
what happened (:meth:`core.review.ReviewQueue.callback_done` / ``callback_failed``). This
module turns that into the Swedish status the item page and "Mina beslut" show, finds the
decisions that waited too long (counted in working hours), and lists a person's own
decisions with the ones needing them first. Shared by the pages, the polling endpoint, the
dashboard, the alerts and ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from holidays import country_holidays
from sqlalchemy import Connection, Integer, Row, bindparam, select

from core.storage.models import CallbackStatus, ReviewItem, ReviewKind, UTCDateTime
from core.web.auth import Grant, review_filter_for
from core.web.i18n import Translator, local_time
from core.web.inbox import DECIDED_STATES, LISTED, reading
from core.web.pagecache import Candidate, MyDecisions

if TYPE_CHECKING:
    from core.web.auth import Principal
    from core.web.deps import WebContext
    from core.web.settings import AlertSettings

#: How far back "Mina beslut" looks.
MY_DECISIONS_DAYS = 14
#: How many of a person's newest decisions "Mina beslut" orders (failed and late first) for the ones shown.
MY_DECISIONS_CANDIDATES = 200


class Status:
    """The four states a decided item's execution can be in (plus "none": nothing to carry out)."""

    waiting = "waiting"  # decided; no robot has carried it out yet (or a retry is due)
    running = "running"  # a worker holds it right now
    done = "done"  # carried out
    failed = "failed"  # given up: back to the person who decided
    none = "none"  # nothing for a robot to do (open, expired, or closed by the system)


LABELS = {
    Status.waiting: "väntar",
    Status.running: "utförs",
    Status.done: "utfört",
    Status.failed: "misslyckades",
    Status.none: "",
}


@dataclass(frozen=True)
class DecisionStatus:
    """The status of one decided item, in words for the person who decided."""

    review_id: int
    code: str
    #: "väntar", "utförs", "utfört" or "misslyckades" (translated).
    label: str
    #: What was done, why it failed, or what it waits for (translated, Swedish by default).
    text: str
    #: Waiting longer than the configured time (in working hours): marked, alerted.
    late: bool = False
    #: "Försök igen" is offered (failed only).
    can_retry: bool = False

    @property
    def settled(self) -> bool:
        """Nothing will change by itself any more: the page stops polling."""
        return self.code in (Status.done, Status.failed, Status.none)

    def as_dict(self) -> dict[str, Any]:
        """For the polling endpoint."""
        return {
            "id": self.review_id,
            "code": self.code,
            "label": self.label,
            "text": self.text,
            "late": self.late,
            "can_retry": self.can_retry,
            "settled": self.settled,
        }


@lru_cache(maxsize=16)
def swedish_holidays(first_year: int, last_year: int) -> frozenset[date]:
    """Swedish public holidays of the years ``first_year``..``last_year`` (built once: every status needs them)."""
    return frozenset(country_holidays("SE", years=range(first_year, last_year + 1)).keys())


def working_minutes(start: datetime, end: datetime, zone: str, cfg: AlertSettings) -> float:
    """Minutes between ``start`` and ``end`` that fall in working hours (local time).

    Working days are weekdays that are not Swedish public holidays. A decision made at 16:55
    on a Friday (or the day before Midsommardagen) has not "waited" over the weekend or the
    holiday: nobody could have carried it out by hand before the next working morning either.
    """
    if end <= start:
        return 0.0
    tz = ZoneInfo(zone)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    day = local_start.date()
    public_holidays = swedish_holidays(day.year, local_end.year)
    total = 0.0
    while day <= local_end.date() and (day - local_start.date()).days <= 31:
        if day.weekday() < 5 and day not in public_holidays:
            opens = datetime.combine(day, time(cfg.working_day_start_hour), tz)
            closes = datetime.combine(day, time(cfg.working_day_end_hour), tz)
            lo, hi = max(opens, local_start), min(closes, local_end)
            if hi > lo:
                total += (hi - lo).total_seconds() / 60
        day += timedelta(days=1)
    return total


def is_late(row: Any, now: datetime, zone: str, cfg: AlertSettings) -> bool:
    """A pending decision that has waited longer than ``decision_wait_minutes`` of working time."""
    if row.callback_status != CallbackStatus.pending or row.decided_at is None:
        return False
    # Working minutes never exceed the minutes on the clock: a decision made less than the
    # limit ago is not late, without walking the calendar (most of a person's recent ones).
    if (now - row.decided_at).total_seconds() <= cfg.decision_wait_minutes * 60:
        return False
    return working_minutes(row.decided_at, now, zone, cfg) > cfg.decision_wait_minutes


def status_of(
    row: ReviewItem | Row[Any], now: datetime, zone: str, cfg: AlertSettings, _: Translator
) -> DecisionStatus:
    """What became of ``row``'s decision, in the person's language."""
    when = local_time(row.callback_finished_at, zone, "%H:%M") if row.callback_finished_at else ""
    if row.callback_status == CallbackStatus.done:
        text = row.callback_summary or _("Roboten har genomfört beslutet.")
        if row.callback_reference:
            text += " " + _("Referens: {ref}.", ref=row.callback_reference)
        if when:
            text += " " + _("Klart {time}.", time=when)
        return DecisionStatus(row.id, Status.done, _(LABELS[Status.done]), text)
    if row.callback_status == CallbackStatus.failed:
        text = (
            (row.callback_message or _("Roboten kunde inte genomföra beslutet."))
            + " "
            + _("Försök igen, eller genomför beslutet för hand i verksamhetssystemet.")
        )
        return DecisionStatus(row.id, Status.failed, _(LABELS[Status.failed]), text, can_retry=True)
    if row.callback_status == CallbackStatus.pending:
        late = is_late(row, now, zone, cfg)
        leased = row.callback_token is not None and row.callback_next_at is not None and row.callback_next_at > now
        if leased and not row.callback_message:
            return DecisionStatus(
                row.id, Status.running, _(LABELS[Status.running]), _("Roboten genomför beslutet just nu."), late
            )
        if row.callback_message:
            text = _(
                "Ett försök misslyckades: {reason} Roboten försöker igen {time}.",
                reason=row.callback_message,
                time=local_time(row.callback_next_at, zone, "%H:%M"),
            )
        else:
            text = _("Beslutet väntar på att roboten ska genomföra det.")
        if late:
            text += " " + _("Det har dröjt längre än väntat; driften har fått ett larm.")
        return DecisionStatus(row.id, Status.waiting, _(LABELS[Status.waiting]), text, late)
    return DecisionStatus(row.id, Status.none, "", "")


# Built once per set of grants, the person and times bound per request (as core.web.inbox's
# page statements: building them and their cache keys cost more than running them).
@lru_cache(maxsize=1024)
def _candidates_statement(grants: frozenset[Grant]) -> Any:
    return (
        select(ReviewItem.id, ReviewItem.callback_status, ReviewItem.decided_at)
        .where(
            review_filter_for(grants),
            ReviewItem.decided_by == bindparam("actor"),
            ReviewItem.kind == ReviewKind.decision,
            ReviewItem.state.in_(DECIDED_STATES),
            ReviewItem.decided_at >= bindparam("since", type_=UTCDateTime()),
        )
        .order_by(ReviewItem.decided_at.desc(), ReviewItem.id.desc())
        .limit(MY_DECISIONS_CANDIDATES)
    )


#: "Dina senaste beslut" beside an item: the person's decisions of this many hours.
RECENT_HOURS = 1


@lru_cache(maxsize=1024)
def recent_statement(grants: frozenset[Grant], limit: int) -> Any:
    """The person's newest decisions in their queues since a time (values: actor, since); built once."""
    return (
        select(*LISTED)
        .where(
            review_filter_for(grants),
            ReviewItem.decided_by == bindparam("actor"),
            ReviewItem.kind == ReviewKind.decision,
            ReviewItem.decided_at >= bindparam("since", type_=UTCDateTime()),
            ReviewItem.callback_status != CallbackStatus.none,
        )
        .order_by(ReviewItem.decided_at.desc(), ReviewItem.id.desc())
        .limit(limit)
    )


#: The person's newest decisions (time and id), newest first (the index on decided_by and
#: decided_at): what a kept "Mina beslut" is checked against.
_NEWEST = (
    select(ReviewItem.decided_at, ReviewItem.id)
    .where(ReviewItem.decided_by == bindparam("actor"), ReviewItem.decided_at.is_not(None))
    .order_by(ReviewItem.decided_at.desc(), ReviewItem.id.desc())
    .limit(bindparam("n", type_=Integer()))
)


def my_decisions(ctx: WebContext, p: Principal, limit: int = 20) -> list[Row[Any]]:
    """The person's recent decisions: failed and late first, then the newest.

    Kept per person for ``[web] inbox_cache_seconds`` in each process
    (:class:`core.web.pagecache.MyDecisionsCache`): a view then reads only the person's newest
    decisions' times and ids, to check that nothing was decided since, here or elsewhere.
    """
    since = ctx.clock() - timedelta(days=MY_DECISIONS_DAYS)
    now, cfg = ctx.clock(), ctx.web.alerts
    cache, key = ctx.my_decisions, (p.actor, p.grants)
    with ctx.db.read_connection() as conn:
        kept = cache.peek(key) if cache is not None else None
        known: tuple[tuple[datetime, int], ...] = ()
        if cache is not None:
            wanted = len(kept.known) if kept is not None and kept.known else 1
            known = tuple((r[0], r[1]) for r in conn.execute(_NEWEST, {"actor": p.actor, "n": wanted}))
            if kept is not None and known != kept.known:
                kept = None
        if kept is not None:
            candidates, rows = kept.candidates, dict(kept.rows)
        else:
            # Ordered on three columns; whole rows only for the ones shown (a busy morning's
            # 200 decisions made into objects cost more than the rest of the page).
            found = conn.execute(_candidates_statement(p.grants), {"actor": p.actor, "since": since})
            candidates, rows = tuple(Candidate(*r) for r in found), {}
        ordered = sorted(
            (c for c in candidates[:MY_DECISIONS_CANDIDATES] if c.decided_at is not None and c.decided_at >= since),
            key=lambda r: (
                0 if r.callback_status == CallbackStatus.failed else 1 if is_late(r, now, ctx.zone, cfg) else 2,
            ),
        )
        shown = [r.id for r in ordered[:limit]]
        missing = [i for i in shown if i not in rows]
        if missing:
            rows.update({r.id: r for r in conn.execute(select(*LISTED).where(ReviewItem.id.in_(missing)))})
    if cache is not None and (kept is None or missing or len(known) > 1):
        # Once the database has confirmed the decisions put in front, only the newest need be
        # compared next time.
        cache.put(key, MyDecisions(now if kept is None else kept.read_at, known[:1], candidates, rows))
    return [rows[i] for i in shown if i in rows]


def recent_decisions(
    ctx: WebContext, p: Principal, *, exclude: int | None = None, limit: int = 3, conn: Connection | None = None
) -> list[Row[Any]]:
    """The person's decisions of the last hour (newest first): shown beside the next item they open."""
    since = ctx.clock() - timedelta(hours=RECENT_HOURS)
    with reading(ctx, conn) as c:
        found = c.execute(recent_statement(p.grants, limit + 1), {"actor": p.actor, "since": since})
        rows = [r for r in found.all() if r.id != exclude]
    return rows[:limit]


def statuses(ctx: WebContext, p: Principal, ids: list[int], _: Translator) -> list[DecisionStatus]:
    """The statuses of the items ``ids`` the person may see (others are left out, without a hint)."""
    if not ids:
        return []
    with ctx.db.read_session() as s:
        rows = s.scalars(select(ReviewItem).where(p.review_filter(), ReviewItem.id.in_(ids[:100]))).all()
    now = ctx.clock()
    return [status_of(r, now, ctx.zone, ctx.web.alerts, _) for r in rows]


@dataclass(frozen=True)
class WaitingRow:
    """Decisions of one robot and municipality not yet carried out (the dashboard's table)."""

    robot: str
    tenant: str
    waiting: int
    late: int
    failed: int
    oldest_decided_at: datetime | None
    oldest_minutes: float


def waiting_by_robot(ctx: WebContext, tenants: set[str]) -> list[WaitingRow]:
    """Per robot and municipality: decisions waiting to be carried out, how many are late, the oldest's age.

    Failed ones of the last two weeks are counted too: they wait for a person.
    """
    now, cfg = ctx.clock(), ctx.web.alerts
    since = now - timedelta(days=MY_DECISIONS_DAYS)
    with ctx.db.read_session() as s:
        # Only the columns counted: a morning's decisions are thousands of rows.
        rows = s.execute(
            select(ReviewItem.robot, ReviewItem.tenant, ReviewItem.callback_status, ReviewItem.decided_at).where(
                ReviewItem.tenant.in_(tenants),
                (ReviewItem.callback_status == CallbackStatus.pending)
                | ((ReviewItem.callback_status == CallbackStatus.failed) & (ReviewItem.decided_at >= since)),
            )
        ).all()
    groups: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        groups.setdefault((r.robot, r.tenant), []).append(r)
    out = []
    for (robot, tenant), members in sorted(groups.items()):
        pending = [r for r in members if r.callback_status == CallbackStatus.pending]
        oldest = min((r.decided_at for r in pending if r.decided_at is not None), default=None)
        out.append(
            WaitingRow(
                robot,
                tenant,
                len(pending),
                sum(1 for r in pending if is_late(r, now, ctx.zone, cfg)),
                len(members) - len(pending),
                oldest,
                (now - oldest).total_seconds() / 60 if oldest else 0.0,
            )
        )
    return out
