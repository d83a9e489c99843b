"""Property: no booking Bosse makes ever breaks a rule, on random rosters.

Seeded random rosters (``random.Random(seed)``, so a failure names its seed; hypothesis is
not a dependency of the project yet). Each round plays Bosse's pipeline: rank everyone for
a shift, offer the best, let random people say yes in random order, and book the first yes
that passes the re-check against the roster *as it is then* — as ``settle`` does. At the
end every booking made is checked against the final roster without itself: none may break
a rule, whatever was booked after it.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from robots.bosse.planning import evaluate_shift
from robots.bosse.records import ShiftInfo, SubstituteInfo
from robots.bosse.rules import STOCKHOLM, BosseRules, Interval, check_eligibility

UNITS = ("Solgården", "Vidablick", "Hemtjänst Kallinge")
QUALS = ("undersköterska", "vårdbiträde")
TEMPLATES = ((7, 9.0), (7, 6.0), (13, 8.0), (15, 7.0), (21, 10.0))
MONDAY = datetime(2026, 11, 23, tzinfo=STOCKHOLM)


def _at(day: int, hour: int) -> datetime:
    return (MONDAY + timedelta(days=day)).replace(hour=hour).astimezone(UTC)


def random_pool(rng: random.Random, n: int) -> list[SubstituteInfo]:
    pool = []
    for i in range(n):
        bookings: list[Interval] = []
        ids: list[str | None] = []
        for day in range(-3, 10):
            if rng.random() < 0.35:
                hour, length = rng.choice(TEMPLATES)
                start = _at(day, hour)
                iv = Interval(start, start + timedelta(hours=length))
                if not any(iv.overlaps(b) for b in bookings):
                    bookings.append(iv)
                    ids.append(f"OLD-{i}-{day}")
        available = tuple(Interval(_at(d, 6), _at(d, 6) + timedelta(hours=rng.choice((12, 16, 26))))
                          for d in range(-1, 10) if rng.random() < 0.6)
        hours = sum((b.duration.total_seconds() / 3600 for b in bookings if f"{b.start.astimezone(STOCKHOLM):%Y-%m}" == "2026-11"), 0.0)
        pool.append(SubstituteInfo(
            id=f"V{i:03d}", first_name="Test", last_name=str(i), phone=f"+4670174{i:04d}", personnummer=None,
            qualifications=tuple(rng.sample(QUALS, rng.randint(1, 2))),
            medication_delegation=rng.random() < 0.6, driving_licence=rng.random() < 0.7,
            available=available, bookings=tuple(bookings), booking_ids=tuple(ids),
            hours_by_month={"2026-11": hours + rng.choice((0, 40, 100, 140))},
            max_hours_month=rng.choice((None, 120.0, 165.0)), priority_right=rng.random() < 0.15,
            preferred_units=tuple(rng.sample(UNITS, rng.randint(0, 2))), distance_km=round(rng.uniform(1, 30), 1),
        ))
    return pool


def random_shifts(rng: random.Random, n: int) -> list[ShiftInfo]:
    shifts = []
    for i in range(n):
        hour, length = rng.choice(TEMPLATES)
        start = _at(rng.randint(0, 6), hour)
        shifts.append(ShiftInfo(id=f"PASS-{i:03d}", code=f"P{101 + i}", unit=rng.choice(UNITS), start=start,
                                end=start + timedelta(hours=length), hours=length,
                                qualifications=(rng.choice(QUALS),), medication_delegation=rng.random() < 0.4,
                                driving_licence=rng.random() < 0.3))
    return shifts


def book(person: SubstituteInfo, shift: ShiftInfo) -> SubstituteInfo:
    """The staffing system's booking: one more booking and the month's hours go up."""
    by_month = dict(person.hours_by_month)
    by_month[shift.month] = by_month.get(shift.month, 0.0) + shift.hours
    return replace(person, bookings=(*person.bookings, Interval(shift.start, shift.end)),
                   booking_ids=(*person.booking_ids, f"BOK-{shift.id}"), hours_by_month=by_month)


@pytest.mark.parametrize("seed", range(15))
def test_no_booking_ever_breaks_a_rule(seed: int) -> None:
    rng = random.Random(seed)
    rules = BosseRules(min_daily_rest_hours=rng.choice((9.0, 11.0)), min_weekly_rest_hours=rng.choice((24.0, 36.0)))
    people = {p.id: p for p in random_pool(rng, 25)}
    booked: list[tuple[ShiftInfo, str]] = []
    shifts = random_shifts(rng, 30)
    # Offers for several shifts are out at once: rank all first, answer and book later.
    offered = {s.id: evaluate_shift(s, people.values(), rules).eligible[:6] for s in shifts}
    order = list(shifts)
    rng.shuffle(order)
    for shift in order:
        yeses = [c.id for c in offered[shift.id] if rng.random() < 0.6]
        rng.shuffle(yeses)
        for sub in yeses:  # the first yes that still passes the re-check is booked
            if not check_eligibility(shift.to_rules(), people[sub].to_rules(shift), rules):
                people[sub] = book(people[sub], shift)
                booked.append((shift, sub))
                break
    assert booked, "the random roster should allow some bookings"
    for shift, sub in booked:
        person = people[sub]
        violations = check_eligibility(shift.to_rules(), person.to_rules(shift, without_booking=f"BOK-{shift.id}"),
                                       rules)
        assert violations == [], f"seed {seed}: {sub} on {shift.id}: {[v.reason for v in violations]}"
