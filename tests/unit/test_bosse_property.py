"""Properties: no booking Bosse makes ever breaks a rule, on random rosters (hypothesis).

Each example is a random roster — substitutes with qualifications, delegation, licence,
stated availability, earlier bookings, the month's hours and a cap — a batch of open
shifts, random working-time thresholds, and random replies. It plays Bosse's pipeline:
rank everyone for every shift and offer the best (offers for many shifts are out at
once), then the shifts are answered in random order, random people say yes in random
order, and the first yes that passes the re-check against the roster *as it is then* is
booked — as ``Work.settle`` does. Finally every booking is checked against the final
roster without itself: none may break any rule (qualification, availability, overlap,
work periods and dygnsvila per 24-hour period from each person's dygnsbryt, veckovila per
7-day period apart from the dygnsvila, overtime and mertid, the 48-hour average, the local
monthly cap), whatever was booked after it — by the rules module and again by the
independent check in ``robots.bosse.audit_check``.

The weeks include the two DST weeks and a week across a month boundary. A cheaper
property pins the time rules to the independent check (brute force on a 15-minute grid).

Run time and determinism: ``max_examples`` and ``deadline`` are set here; on CI the
``ci`` profile (tests/conftest.py) derandomizes, so a failure there is reproducible. A
passing run takes a few seconds; a failing one spends a few minutes shrinking the roster
to a handful of people and shifts before it reports.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from robots.bosse.audit_check import Limits, Person, audit
from robots.bosse.planning import evaluate_shift
from robots.bosse.records import ShiftInfo, SubstituteInfo
from robots.bosse.rules import (
    STOCKHOLM,
    BosseRules,
    Interval,
    Rule,
    Shift,
    Substitute,
    check_eligibility,
    longest_free_period,
)

UNITS = ("Solgården", "Vidablick", "Hemtjänst Kallinge")
QUALS = ("undersköterska", "vårdbiträde", "sjuksköterska")
#: Mondays of the weeks played: an ordinary week, the autumn DST week (25 Oct 2026, 169 h),
#: the spring DST week (29 Mar 2026, 167 h), and a week across November/December.
MONDAYS = (date(2026, 11, 23), date(2026, 10, 19), date(2026, 3, 23), date(2026, 11, 30))
GRID = timedelta(minutes=15)
MOSTLY_TRUE = st.sampled_from((True, True, True, False))
MOSTLY_FALSE = st.sampled_from((False, False, False, True))
#: Dygnsbryt drawn for people: the calendar day, a morning, the default, a late evening.
DAY_BREAKS = (time(0, 0), time(7, 0), time(9, 0), time(22, 0))


def midnight(day: date) -> datetime:
    """Local midnight of ``day`` as an aware UTC instant (midnight always exists in Sweden)."""
    return datetime(day.year, day.month, day.day, tzinfo=STOCKHOLM).astimezone(UTC)


def month_of(moment: datetime) -> str:
    return f"{moment.astimezone(STOCKHOLM):%Y-%m}"


def hours(iv: Interval) -> float:
    return iv.duration.total_seconds() / 3600


# -- strategies ------------------------------------------------------------------------------
@st.composite
def periods(
    draw: st.DrawFn, monday: date, first_day: int, last_day: int, min_hours: float = 2.0, max_hours: float = 13.0
) -> Interval:
    """A period starting on a quarter-hour of a day near ``monday`` (built in UTC, so the
    hour the clocks skip in spring is never produced as a local time)."""
    day = draw(st.integers(first_day, last_day))
    start = midnight(monday + timedelta(days=day)) + GRID * draw(st.integers(0, 95))
    length = GRID * draw(st.integers(int(min_hours * 4), int(max_hours * 4)))
    return Interval(start, start + length)


@st.composite
def substitutes(draw: st.DrawFn, monday: date, n: int) -> SubstituteInfo:
    """One substitute with random competences, availability, bookings, hours and cap."""
    bookings: list[Interval] = []
    for iv in draw(st.lists(periods(monday, -4, 10, 3, 12), max_size=8)):
        if not any(iv.overlaps(b) for b in bookings):  # the staffing system never holds overlaps
            bookings.append(iv)
    # Availability as people state it: whole days or long stretches on some of the days.
    available = [
        Interval(start, start + GRID * draw(st.integers(12 * 4, 30 * 4)))
        for day in range(-1, 9)
        if draw(st.integers(0, 9)) < 7
        for start in [midnight(monday + timedelta(days=day)) + GRID * draw(st.integers(0, 40))]
    ]
    by_month: dict[str, float] = {}
    for b in bookings:
        by_month[month_of(b.start)] = by_month.get(month_of(b.start), 0.0) + hours(b)
    for month in sorted({*by_month, month_of(midnight(monday))}):  # hours booked outside the roster shown
        by_month[month] = by_month.get(month, 0.0) + draw(st.sampled_from((0.0, 20.0, 60.0, 110.0, 150.0)))
    return SubstituteInfo(
        id=f"V{n:03d}",
        first_name="Test",
        last_name=str(n),
        phone=f"+4670174{n:04d}",
        personnummer=None,
        qualifications=tuple(draw(st.sets(st.sampled_from(QUALS), min_size=1))),
        medication_delegation=draw(MOSTLY_TRUE),
        driving_licence=draw(MOSTLY_TRUE),
        available=tuple(available),
        bookings=tuple(bookings),
        booking_ids=tuple(f"OLD-{n}-{i}" for i in range(len(bookings))),
        hours_by_month=by_month,
        max_hours_month=draw(st.sampled_from((None, 120.0, 165.0, 180.0))),
        priority_right=draw(st.booleans()),
        preferred_units=tuple(draw(st.sets(st.sampled_from(UNITS)))),
        distance_km=draw(st.one_of(st.none(), st.floats(0.5, 40, allow_nan=False))),
        day_break=draw(st.sampled_from((None, *DAY_BREAKS))),
        contract_hours_week=draw(st.sampled_from((None, None, 20.0, 30.0))),
    )


@st.composite
def shifts(draw: st.DrawFn, monday: date, n: int) -> ShiftInfo:
    """One open shift in the week of ``monday`` (or just after it)."""
    span = draw(periods(monday, 0, 7, 3, 12))
    return ShiftInfo(
        id=f"PASS-{n:03d}",
        code=f"P{101 + n}",
        unit=draw(st.sampled_from(UNITS)),
        start=span.start,
        end=span.end,
        hours=hours(span),
        qualifications=tuple(draw(st.sets(st.sampled_from(QUALS), max_size=1))),
        medication_delegation=draw(MOSTLY_FALSE),
        driving_licence=draw(MOSTLY_FALSE),
    )


@dataclass(frozen=True)
class Roster:
    """A random roster: thresholds, the pool and the open shifts of one week."""

    rules: BosseRules
    people: tuple[SubstituteInfo, ...]
    shifts: tuple[ShiftInfo, ...]


@st.composite
def rosters(draw: st.DrawFn) -> Roster:
    monday = draw(st.sampled_from(MONDAYS))
    rules = BosseRules(
        min_daily_rest_hours=draw(st.sampled_from((9.0, 11.0, 12.5))),
        min_weekly_rest_hours=draw(st.sampled_from((24.0, 36.0, 48.0))),
    )
    size = draw(st.integers(3, 12))
    people = tuple(draw(substitutes(monday, i)) for i in range(size))
    open_shifts = tuple(draw(shifts(monday, i)) for i in range(draw(st.integers(1, 10))))
    return Roster(rules, people, open_shifts)


# -- the pipeline ----------------------------------------------------------------------------
def book(person: SubstituteInfo, shift: ShiftInfo) -> SubstituteInfo:
    """The staffing system's booking: one more booking and the month's hours go up."""
    by_month = dict(person.hours_by_month)
    by_month[shift.month] = by_month.get(shift.month, 0.0) + shift.hours
    return replace(
        person,
        bookings=(*person.bookings, Interval(shift.start, shift.end)),
        booking_ids=(*person.booking_ids, f"BOK-{shift.id}"),
        hours_by_month=by_month,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(roster=rosters(), data=st.data())
def test_no_booking_bosse_makes_ever_breaks_a_rule(roster: Roster, data: st.DataObject) -> None:
    rules = roster.rules
    people = {p.id: p for p in roster.people}
    wave = data.draw(st.integers(1, 8), label="offers per shift")
    # Offers for several shifts are out at once: rank all first, answer and book later.
    offered = {s.id: [c.id for c in evaluate_shift(s, people.values(), rules).eligible[:wave]] for s in roster.shifts}
    booked: list[tuple[ShiftInfo, str]] = []
    for shift in data.draw(st.permutations(roster.shifts), label="order the shifts are answered in"):
        yeses = data.draw(
            st.lists(st.sampled_from(offered[shift.id]), unique=True) if offered[shift.id] else st.just([]),
            label=f"yeses for {shift.id}, in order",
        )
        for sub in yeses:  # the first yes that still passes the re-check is booked
            if not check_eligibility(shift.to_rules(), people[sub].to_rules(shift), rules):
                people[sub] = book(people[sub], shift)
                booked.append((shift, sub))
                break
    note(f"bookings: {[(s.id, sub) for s, sub in booked]}")
    for shift, sub in booked:
        person = people[sub].to_rules(shift, without_booking=f"BOK-{shift.id}")
        violations = check_eligibility(shift.to_rules(), person, rules)
        assert violations == [], f"{sub} on {shift.id}: {[v.reason for v in violations]}"
    # And the independent check, which does not use the rules module, finds nothing either.
    checked = {
        sub: Person(
            sub,
            [(b.start, b.end) for b in people[sub].bookings],
            people[sub].day_break or rules.default_day_break,
            contract_hours_week=people[sub].contract_hours_week,
        )
        for _, sub in booked
    }
    findings = audit(checked, [(sub, s.start, s.end) for s, sub in booked], limits_of(rules))
    assert findings == [], findings


def test_the_random_rosters_do_lead_to_bookings() -> None:
    """Guard against a vacuous property: the roster strategy must often allow bookings."""
    outcomes: list[bool] = []

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(roster=rosters())
    def count(roster: Roster) -> None:
        outcomes.append(any(evaluate_shift(s, roster.people, roster.rules).eligible for s in roster.shifts))

    count()
    assert sum(outcomes) >= len(outcomes) // 4, f"only {sum(outcomes)} of {len(outcomes)} rosters had a candidate"


# -- pure rules against brute force ----------------------------------------------------------
def slots(window: Interval) -> list[datetime]:
    """The starts of the 15-minute slots of ``window``."""
    out, t = [], window.start
    while t < window.end:
        out.append(t)
        t += GRID
    return out


def brute_longest_free(window: Interval, work: list[Interval]) -> timedelta:
    longest = run = timedelta(0)
    for t in slots(window):
        busy = any(w.start < t + GRID and t < w.end for w in work)
        run = timedelta(0) if busy else run + GRID
        longest = max(longest, run)
    return longest


def brute_weeks(span: Interval) -> list[Interval]:
    """Every Monday–Sunday week (local) that contains a slot of ``span``."""
    mondays = {(d := t.astimezone(STOCKHOLM).date()) - timedelta(days=d.weekday()) for t in slots(span)}
    return [Interval(midnight(m), midnight(m + timedelta(days=7))) for m in sorted(mondays)]


def limits_of(rules: BosseRules) -> Limits:
    """The independent checker's figures, taken from the thresholds the example uses."""
    return Limits(
        daily_rest_h=rules.min_daily_rest_hours,
        max_period_h=rules.max_shift_hours,
        weekly_rest_h=rules.min_weekly_rest_hours,
        full_time_h=rules.full_time_hours_week,
        local_month_cap_h=None,
    )


@settings(max_examples=80, deadline=None)
@given(
    monday=st.sampled_from(MONDAYS),
    data=st.data(),
    daily=st.sampled_from((9.0, 11.0)),
    weekly=st.sampled_from((24.0, 36.0, 48.0)),
    day_break=st.sampled_from(DAY_BREAKS),
)
def test_time_rules_agree_with_the_independent_check(
    monday: date, data: st.DataObject, daily: float, weekly: float, day_break: time
) -> None:
    """The rules module and ``audit_check`` (slots, brute force) agree on every time rule."""
    rules = BosseRules(min_daily_rest_hours=daily, min_weekly_rest_hours=weekly, default_max_hours_month=None)
    span = data.draw(periods(monday, -1, 7, 1, 14), label="shift")
    bookings = [
        b
        for b in data.draw(st.lists(periods(monday, -3, 10, 1, 14), max_size=10), label="bookings")
        if not b.overlaps(span)
    ]
    shift = Shift("s", span.start, span.end)
    person = Substitute(
        "v",
        available=(Interval(span.start - timedelta(days=1), span.end + timedelta(days=1)),),
        bookings=bookings,
        day_break=day_break,
    )
    found = check_eligibility(shift, person, rules)
    rules_found = {v.rule for v in found}
    split = any(v.rule is Rule.DAILY_REST and v.source.startswith("AB § 13 från 2023-10-01: arbetspass") for v in found)
    checked = audit(
        {"v": Person("v", [(b.start, b.end) for b in [*bookings, span]], day_break)},
        [("v", span.start, span.end)],
        limits_of(rules),
    )
    audit_found = {f.rule for f in checked}
    assert ("work_period" in audit_found) == (Rule.SHIFT_LENGTH in rules_found or split)
    if "work_period" not in audit_found:
        assert ("daily_rest" in audit_found) == (Rule.DAILY_REST in rules_found)
    assert ("weekly_rest" in audit_found) == (Rule.WEEKLY_REST in rules_found)
    work = [*bookings, span]
    for week in brute_weeks(span):
        assert longest_free_period(week, work) == brute_longest_free(week, work)


@settings(max_examples=60, deadline=None)
@given(monday=st.sampled_from(MONDAYS), data=st.data())
def test_the_dst_weeks_have_their_real_length(monday: date, data: st.DataObject) -> None:
    """A week with nothing in it is all rest: 167 h in the spring DST week, 169 h in the autumn one."""
    week = Interval(midnight(monday), midnight(monday + timedelta(days=7)))
    expected = {date(2026, 3, 23): 167, date(2026, 10, 19): 169}.get(monday, 168)
    assert longest_free_period(week, []) == timedelta(hours=expected)
    outside = data.draw(st.lists(periods(monday, -5, -1, 1, 20).filter(lambda iv: iv.end <= week.start)))
    assert longest_free_period(week, outside) == timedelta(hours=expected)
