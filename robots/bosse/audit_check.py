"""An independent re-check of a finished roster against the working-time rules (pure).

Written from the rule texts, not from :mod:`robots.bosse.rules`, and by another method:
time is cut into 15-minute slots (UTC) and every rule is checked by brute force over the
slots — the longest rest in each 24-hour period from the dygnsbryt, every work period,
every placement of the veckovila, the hours of every week counted in time order. The
bench (``bench/bosse_month.py``) and the property tests use it to re-check every booking
Bosse made; a rule the two modules read differently shows up as a finding.

Exact on the 15-minute grid the sandbox's shifts lie on; a booking off the grid is
widened to whole slots, which can only make the check stricter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Finding", "Limits", "Person", "audit"]

_TZ = ZoneInfo("Europe/Stockholm")
_SLOT = timedelta(minutes=15)
_PER_HOUR = 4
_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday; slot 0


@dataclass(frozen=True)
class Limits:
    """The figures, as the law and the agreement give them (see docs/robots/bosse.md)."""

    daily_rest_h: float = 11  # AB § 13 from 2023-10-01; ATL 13 §
    max_period_h: float = 13  # 24 h − 11 h: the longest work period, split shifts included
    weekly_rest_h: float = 36  # ATL 14 §
    full_time_h: float = 40  # ATL 5 §
    overtime: tuple[float, float, float] = (48, 50, 200)  # ATL 8 §: 4 weeks, month, year
    extra: tuple[float, float, float] = (48, 50, 200)  # ATL 10 a §, 8 a §: mertid
    average_h: float = 48  # ATL 10 b §
    reference_months: int = 4
    four_week_anchor: date = date(2024, 1, 1)
    local_month_cap_h: float | None = 165  # a local rule, not law


@dataclass(frozen=True)
class Person:
    """What the check needs to know about one person."""

    id: str
    bookings: Sequence[tuple[datetime, datetime]]
    day_break: time
    contract_hours_week: float | None = None
    month_cap_h: float | None = None
    #: Overtime / mertid outside the bookings in the 4-week period, month and year of ``anchor``.
    overtime_outside: tuple[float, float, float] = (0, 0, 0)
    extra_outside: tuple[float, float, float] = (0, 0, 0)
    anchor: datetime | None = None


@dataclass(frozen=True)
class Finding:
    """One rule a booking breaks in the finished roster."""

    person: str
    booking: tuple[datetime, datetime]
    rule: str
    detail: str = ""


def _slot(moment: datetime, *, up: bool = False) -> int:
    seconds = (moment.astimezone(UTC) - _EPOCH).total_seconds()
    whole, part = divmod(seconds, _SLOT.total_seconds())
    return int(whole) + (1 if up and part else 0)


def _local(day: date, moment: time) -> datetime:
    naive = datetime.combine(day, moment)
    for shift in (0, 1):
        candidate = (naive + timedelta(hours=shift)).replace(tzinfo=_TZ)
        if candidate.astimezone(UTC).astimezone(_TZ).replace(tzinfo=None) == naive + timedelta(hours=shift):
            return candidate.astimezone(UTC)
    raise AssertionError("unreachable")


def _runs(busy: Sequence[bool], lo: int, hi: int, base: int) -> int:
    """The longest run of free slots in [lo, hi) (absolute slots; ``busy`` starts at ``base``)."""
    best = run = 0
    for s in range(lo, hi):
        if 0 <= s - base < len(busy) and busy[s - base]:
            run = 0
        else:
            run += 1
            best = max(best, run)
    return best


@dataclass
class _Roster:
    person: Person
    base: int
    busy: list[bool] = field(default_factory=list)

    def free(self, s: int) -> bool:
        i = s - self.base
        return not (0 <= i < len(self.busy) and self.busy[i])


def audit(
    people: Mapping[str, Person], booked: Iterable[tuple[str, datetime, datetime]], limits: Limits
) -> list[Finding]:
    """Every rule each booked ``(person, start, end)`` breaks in the finished rosters of ``people``."""
    findings: list[Finding] = []
    for person_id, start, end in booked:
        person = people[person_id]
        findings += _audit_one(person, (start, end), limits)
    return findings


def _audit_one(person: Person, booking: tuple[datetime, datetime], limits: Limits) -> list[Finding]:
    spans = [(_slot(a), _slot(b, up=True)) for a, b in person.bookings]
    lo = min(a for a, _ in spans) - 14 * 96
    hi = max(b for _, b in spans) + 14 * 96
    roster = _Roster(person, lo, [False] * (hi - lo))
    out: list[Finding] = []
    for a, b in spans:
        for s in range(a, b):
            roster.busy[s - lo] = True
    b0, b1 = _span(booking)
    if sum(1 for a, b in spans if a < b1 and b0 < b) > 1:
        out.append(Finding(person.id, booking, "overlap"))
    out += _work_period(roster, booking, limits)
    out += _daily(roster, booking, limits)
    out += _weekly(roster, booking, limits)
    out += _hours(roster, booking, limits)
    return out


def _span(booking: tuple[datetime, datetime]) -> tuple[int, int]:
    return _slot(booking[0]), _slot(booking[1], up=True)


def _work_period(r: _Roster, booking: tuple[datetime, datetime], limits: Limits) -> list[Finding]:
    # Walk out from the booking while the rest between work is shorter than the daily rest.
    gap_max = int(limits.daily_rest_h * _PER_HOUR)
    a, b = _span(booking)
    first, last = a, b
    s, free = a - 1, 0
    while s >= r.base and free < gap_max:
        if r.free(s):
            free += 1
        else:
            first, free = s, 0
        s -= 1
    s, free = b, 0
    while s < r.base + len(r.busy) and free < gap_max:
        if r.free(s):
            free += 1
        else:
            last, free = s + 1, 0
        s += 1
    if (last - first) > limits.max_period_h * _PER_HOUR:
        return [Finding(r.person.id, booking, "work_period", f"{(last - first) / _PER_HOUR} h")]
    return []


def _day_starts(r: _Roster, a: int, b: int) -> list[tuple[int, int]]:
    first = (_EPOCH + a * _SLOT).astimezone(_TZ).date() - timedelta(days=1)
    periods: list[tuple[int, int]] = []
    day = first
    while True:
        p0 = _slot(_local(day, r.person.day_break))
        p1 = _slot(_local(day + timedelta(days=1), r.person.day_break))
        if p0 >= b:
            return periods
        if p1 > a:
            periods.append((p0, p1))
        day += timedelta(days=1)


def _daily(r: _Roster, booking: tuple[datetime, datetime], limits: Limits) -> list[Finding]:
    a, b = _span(booking)
    need = int(limits.daily_rest_h * _PER_HOUR)
    return [
        Finding(r.person.id, booking, "daily_rest", f"period from slot {p0}")
        for p0, p1 in _day_starts(r, a, b)
        if _runs(r.busy, p0, p1, r.base) < need
    ]


def _weekly(r: _Roster, booking: tuple[datetime, datetime], limits: Limits) -> list[Finding]:
    a, b = _span(booking)
    need = int(limits.weekly_rest_h * _PER_HOUR)
    daily = int(limits.daily_rest_h * _PER_HOUR)
    found: list[Finding] = []
    day = (_EPOCH + a * _SLOT).astimezone(_TZ).date()
    monday = day - timedelta(days=day.weekday() + 7)
    while (w0 := _slot(_local(monday, r.person.day_break))) < b:
        w1 = _slot(_local(monday + timedelta(days=7), r.person.day_break))
        monday += timedelta(days=7)
        if w1 <= a:
            continue
        days = [p for p in _day_starts(r, w0 - 96, w1 + 96) if any(not r.free(s) for s in range(*p))]
        # run[s]: free slots in a row from s on (inside the week).
        run = [0] * (w1 - w0 + 1)
        for s in range(w1 - 1, w0 - 1, -1):
            run[s - w0] = run[s - w0 + 1] + 1 if r.free(s) else 0
        ok = False
        for start in range(w0, w1 - need + 1):
            if run[start - w0] < need:
                continue
            if all(
                _runs([not r.free(s) or start <= s < start + need for s in range(p0, p1)], p0, p1, p0) >= daily
                for p0, p1 in days
                if p0 < start + need and start < p1
            ):
                ok = True
                break
        if not ok:
            found.append(Finding(r.person.id, booking, "weekly_rest", f"week from slot {w0}"))
    return found


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date, n: int = 1) -> date:
    m = day.month - 1 + n
    return date(day.year + m // 12, m % 12 + 1, 1)


def _hours(r: _Roster, booking: tuple[datetime, datetime], limits: Limits) -> list[Finding]:
    person = r.person
    full = int(limits.full_time_h * _PER_HOUR)
    contract = full if person.contract_hours_week is None else min(int(person.contract_hours_week * _PER_HOUR), full)
    kind: dict[int, str] = {}
    # Count each calendar week (Monday 00:00 local) in time order.
    first_day = (_EPOCH + r.base * _SLOT).astimezone(_TZ).date()
    monday = first_day - timedelta(days=first_day.weekday())
    end = r.base + len(r.busy)
    while (w0 := _slot(_local(monday, time(0)))) < end:
        w1 = _slot(_local(monday + timedelta(days=7), time(0)))
        count = 0
        for s in range(w0, w1):
            if not r.free(s):
                count += 1
                kind[s] = "ordinary" if count <= contract else ("extra" if count <= full else "overtime")
        monday += timedelta(days=7)
    a = _span(booking)[0]
    found: list[Finding] = []
    day = (_EPOCH + a * _SLOT).astimezone(_TZ).date()
    week_monday = day - timedelta(days=day.weekday())
    anchor = person.anchor
    for what, caps, outside in (
        ("overtime", limits.overtime, person.overtime_outside),
        ("extra_time", limits.extra, person.extra_outside),
    ):
        if what == "extra_time" and contract >= full:
            continue
        for moment_day in {week_monday, week_monday + timedelta(days=6)}:
            index = (moment_day - limits.four_week_anchor).days // 28
            four = limits.four_week_anchor + timedelta(days=28 * index)
            windows = (
                (four, four + timedelta(days=28), caps[0], outside[0]),
                (_month_start(moment_day), _next_month(moment_day), caps[1], outside[1]),
                (date(moment_day.year, 1, 1), date(moment_day.year + 1, 1, 1), caps[2], outside[2]),
            )
            for d0, d1, cap, before in windows:
                s0, s1 = _slot(_local(d0, time(0))), _slot(_local(d1, time(0)))
                hours = sum(
                    1 for s, k in kind.items() if k == ("overtime" if what == "overtime" else "extra") and s0 <= s < s1
                )
                total = hours / _PER_HOUR
                if anchor is not None and s0 <= _slot(anchor) < s1:
                    total += before
                if total > cap:
                    found.append(Finding(person.id, booking, what, f"{total} h > {cap} h from {d0}"))
    # ATL 10 b §: the average over each reference period the booking touches.
    for moment in (booking[0], booking[1] - timedelta(seconds=1)):
        local = moment.astimezone(_TZ).date()
        size = limits.reference_months
        first = date(local.year, (local.month - 1) // size * size + 1, 1)
        following = _next_month(first, size)
        s0, s1 = _slot(_local(first, time(0))), _slot(_local(following, time(0)))
        worked = sum(1 for s in range(s0, s1) if not r.free(s)) / _PER_HOUR
        weeks = (s1 - s0) / (_PER_HOUR * 168)
        if worked > limits.average_h * weeks:
            found.append(Finding(person.id, booking, "average_hours", f"{worked / weeks:.2f} h/week"))
    # The local cap: hours of the bookings starting in the booking's month.
    month_cap = person.month_cap_h if person.month_cap_h is not None else limits.local_month_cap_h
    if month_cap is not None:
        month = booking[0].astimezone(_TZ).strftime("%Y-%m")
        total = sum(
            (e - s).total_seconds() / 3600 for s, e in person.bookings if s.astimezone(_TZ).strftime("%Y-%m") == month
        )
        if total > month_cap + 1e-9:
            found.append(Finding(person.id, booking, "monthly_cap", f"{total} h > {month_cap} h"))
    return list(dict.fromkeys(found))
