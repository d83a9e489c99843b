"""How many shifts any policy could fill in bench/bosse_month.py's month: a clairvoyant upper bound.

The simulated substitute answers their *n*-th offer of the month with a draw fixed by the
seed, the person and *n* (:func:`reply`): yes with their behaviour's chance, after a delay in
their behaviour's range, or never (silent). The answer does not depend on the shift, on who
sends the offer or on when; only the count of offers the person has had so far. So the
month's replies are fixed in advance for every policy, and the most any policy could fill
is a finite problem: choose bookings such that

* each shift has at most one booking, each person only shifts they were eligible for at the
  start (competence, stated availability and the rules against their bookings then);
* every booking is backed by its own yes: the person's *n*-th answer is yes, arrives before
  the shift's offers close (``close_at``) when the offer goes out at a daytime step (07–21,
  5-minute steps) inside the shift's offer window, and *n* is at most the number of shifts
  the person could have been offered by then (shifts already released for which they were
  eligible at the start; an offer is made once per person and shift);
* each person's bookings together break no rule (:func:`robots.bosse.rules.check_eligibility`,
  each booking against all the others, as the bench's final check does).

The bound relaxes the timing in three ways, each of which can only raise it: the yeses a
person's bookings use need not come in the order of the offers (only distinct yeses, each
one early enough: Hall's condition on nested sets, :func:`_prefix_limits`), offers needed
only to reach a yes may go to shifts already filled, and the oracle knows every answer
beforehand. The rules are enforced as far as the solver gets: pairs of shifts less than 7 days
apart that the rules forbid together, a free stretch of the weekly rest's length in every
7-day period and the monthly cap are in the model up front; any other combination the rules
forbid (the weekly rest's interplay with the daily rest, the overtime counters) is cut away
lazily, round after round, until the solution passes the full check or the time is up.
Each round's proven bound is valid; the plan found is the last solution without the
bookings that broke a rule, so the most any policy could book lies between the two. Adding a booking
never makes another legal (every rule counts work or rest), so a combination that breaks a
rule stays forbidden in every larger one and each cut is valid.

CP-SAT (OR-Tools) solves it; the bound reported is the solver's proven objective bound
(equal to the solution found when the status is OPTIMAL).
"""

from __future__ import annotations

import bisect
import random
import time as _time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from ortools.sat.python import cp_model

from robots.bosse.messages import Answer
from robots.bosse.planning import close_at
from robots.bosse.records import ShiftInfo, SubstituteInfo
from robots.bosse.rules import STOCKHOLM, Interval, check_eligibility, week_periods
from robots.bosse.settings import BosseSettings
from sandbox.staffing import BEHAVIOURS

__all__ = ["Bound", "oracle_bound", "reply"]
#: Pairs of shifts closer than this are checked up front (the weekly rest spans 7 days); larger
#: combinations are cut away as solutions break them.
_PAIR_HORIZON = timedelta(days=7)


def reply(seed: int, behaviour: str, sub_id: str, n: int) -> tuple[Answer, int] | None:
    """The simulated answer to ``sub_id``'s ``n``-th offer and its delay in minutes (None: never answers)."""
    rng = random.Random(f"{seed}:reply:{sub_id}:{n}")
    _, p_yes, delay = BEHAVIOURS[behaviour]
    u_yes, u_delay = rng.random(), rng.random()
    if delay is None:
        return None
    return (Answer.yes if u_yes < p_yes else Answer.no), round(delay[0] + u_delay * (delay[1] - delay[0]))


@dataclass(frozen=True)
class Bound:
    """The bound and how it was reached."""

    shifts: int
    bound: int  # proven: no policy books more
    solution: int  # bookings of the best plan found that breaks no rule (== bound when optimal)
    optimal: bool  # the plan found reaches the bound: it is the most any policy could book
    rounds: int  # solves, each after adding the cuts the previous solution broke
    cuts: int
    min_offers: int  # the fewest offers the plan found needs (each person up to their last yes used)
    booked_by_day: dict[str, int]
    seconds: float
    plan: dict[str, list[str]]  # the legal plan found: person -> shift ids

    def as_json(self) -> dict[str, Any]:
        """The figures for the bench's JSON."""
        return {
            "shifts": self.shifts,
            "bound": self.bound,
            "fill_rate_bound": round(self.bound / max(self.shifts, 1), 4),
            "plan_found": self.solution,
            "optimal": self.optimal,
            "rounds": self.rounds,
            "lazy_cuts": self.cuts,
            "min_offers_of_plan": self.min_offers,
            "booked_by_day": self.booked_by_day,
            "seconds": round(self.seconds, 1),
        }


def _daytime_steps(first: datetime, last: datetime, step: timedelta) -> list[datetime]:
    """The simulation's clock ticks at which offers can go out (07:00–21:00 Swedish time)."""
    out = []
    now = first
    while now < last:
        if 7 <= now.astimezone(STOCKHOLM).hour < 21:
            out.append(now)
        now += step
    return out


def _with(person: SubstituteInfo, shifts: Iterable[ShiftInfo]) -> SubstituteInfo:
    """``person`` with ``shifts`` booked (ids ``oracle:<shift>``)."""
    hours = dict(person.hours_by_month)
    bookings, ids = list(person.bookings), list(person.booking_ids)
    for s in shifts:
        hours[s.month] = hours.get(s.month, person.hours_this_month if not hours else 0.0) + s.hours
        bookings.append(Interval(s.start, s.end))
        ids.append(f"oracle:{s.id}")
    return replace(person, bookings=tuple(bookings), booking_ids=tuple(ids), hours_by_month=hours)


def _broken(person: SubstituteInfo, shifts: Sequence[ShiftInfo], settings: BosseSettings) -> ShiftInfo | None:
    """The first of ``shifts`` that breaks a rule given the others (None: all legal together)."""
    booked = _with(person, shifts)
    for s in shifts:
        if check_eligibility(s.to_rules(), booked.to_rules(s, without_booking=f"oracle:{s.id}"), settings.rules):
            return s
    return None


def _minimal_conflict(
    person: SubstituteInfo, shifts: Sequence[ShiftInfo], culprit: ShiftInfo, settings: BosseSettings
) -> list[ShiftInfo]:
    """A small subset of ``shifts`` (with ``culprit``) that still breaks a rule: the cut is stronger."""
    kept = [s for s in shifts if s.id != culprit.id]
    kept.sort(key=lambda s: -abs((s.start - culprit.start).total_seconds()))  # the farthest go first
    for s in list(kept):
        trial = [k for k in kept if k.id != s.id]
        if _broken(person, [*trial, culprit], settings) is not None:
            kept = trial
    return [*kept, culprit]


def _weekly_rest_windows(
    model: cp_model.CpModel,
    x: Mapping[tuple[str, str], Any],
    person: SubstituteInfo,
    spans: Mapping[tuple[datetime, datetime], list[str]],
    settings: BosseSettings,
) -> None:
    """Up front, what every 7-day period needs at least (weaker than the rule, so still a
    relaxation): a free stretch of the weekly rest's length inside it. Such a stretch starts at
    the period's start or where some work ends, so one of those starts must be followed by
    that much time without work."""
    rules = settings.rules
    if person.day_break is None and rules.day_break_by_unit:
        return  # periods would differ by workplace: left to the cuts
    day_break = person.day_break or rules.default_day_break
    need = timedelta(hours=rules.min_weekly_rest_hours)
    times = sorted(spans)
    if not times:
        return
    existing = list(person.bookings)
    for week in week_periods(Interval(times[0][0], times[-1][1]), day_break):
        inside = [t for t in times if t[0] < week.end and week.start < t[1]]
        if not inside:
            continue
        starts = {week.start} | {t[1] for t in inside} | {b.end for b in existing if week.start <= b.end < week.end}
        options = []
        for a in sorted(starts):
            window = Interval(a, a + need)
            if window.end > week.end or any(b.overlaps(window) for b in existing):
                continue
            blocked = [x[(person.id, sid)] for t in inside if Interval(t[0], t[1]).overlaps(window) for sid in spans[t]]
            free = model.NewBoolVar("")
            for var in blocked:
                model.AddImplication(free, var.Not())
            options.append(free)
        model.AddBoolOr(options) if options else model.Add(
            sum(x[(person.id, sid)] for t in inside for sid in spans[t]) == 0
        )


def _month_caps(
    model: cp_model.CpModel,
    x: Mapping[tuple[str, str], Any],
    person: SubstituteInfo,
    spans: Mapping[tuple[datetime, datetime], list[str]],
    shifts: Mapping[str, ShiftInfo],
    settings: BosseSettings,
) -> None:
    """The monthly cap on booked hours (the local rule) as one sum per month, in minutes."""
    cap = person.max_hours_month if person.max_hours_month is not None else settings.rules.default_max_hours_month
    if cap is None:
        return
    by_month: dict[str, list[tuple[int, str]]] = {}
    for t, sids in spans.items():
        for sid in sids:
            minutes = int((t[1] - t[0]).total_seconds() // 60)
            by_month.setdefault(shifts[sid].month, []).append((minutes, sid))
    for month, items in by_month.items():
        booked = person.hours_in(month)
        room = int((Fraction(str(cap)) - Fraction(str(booked))) * 60)
        model.Add(sum(m * x[(person.id, sid)] for m, sid in items) <= room)


def _prefix_limits(yes_at: Sequence[int]) -> Callable[[int], int]:
    """``count(v)``: how many of the person's answers 1..v are yes."""
    return lambda v: bisect.bisect_right(yes_at, v)


def oracle_bound(
    nights: Sequence[tuple[date, Sequence[ShiftInfo]]],
    pool: Mapping[str, SubstituteInfo],
    candidates: Mapping[str, Sequence[str]],
    behaviour: Mapping[str, str],
    seed: int,
    settings: BosseSettings,
    *,
    step: timedelta = timedelta(minutes=5),
    time_limit: float = 120.0,
    max_rounds: int = 200,
    workers: int = 2,
) -> Bound:
    """The most shifts any policy could book in the month (see the module docstring).

    ``nights``: each night's date and its shifts (released at midnight of that date, offered
    from 07:00); ``pool``: everyone at the start, with their bookings; ``candidates``: per
    shift, who passes the checks that never change (competence, stated availability).
    """

    started = _time.monotonic()
    shifts = {s.id: s for _, day in nights for s in day}
    release = {s.id: datetime.combine(night, datetime.min.time(), STOCKHOLM) for night, day in nights for s in day}
    first = min(release.values())
    steps = _daytime_steps(first, max(s.start for s in shifts.values()), step)
    # Who could ever be booked: eligible against their bookings at the start (the rules only tighten).
    eligible: dict[str, list[str]] = {}
    for sid, people in candidates.items():
        s = shifts[sid]
        eligible[sid] = [p for p in people if not check_eligibility(s.to_rules(), pool[p].to_rules(s), settings.rules)]
    per_person: dict[str, list[str]] = {}
    for sid in sorted(shifts, key=lambda k: (shifts[k].start, k)):
        for p in eligible[sid]:
            per_person.setdefault(p, []).append(sid)
    # The answers each person would give, up to the most offers they could ever get.
    limits: dict[tuple[str, str], int] = {}
    yes_index: dict[str, list[int]] = {}
    for p, sids in per_person.items():
        released = sorted(release[s] for s in sids)
        answers = [reply(seed, behaviour.get(p, "selective"), p, n) for n in range(1, len(sids) + 1)]
        yes_index[p] = [n for n, a in enumerate(answers, 1) if a is not None and a[0] is Answer.yes]
        for sid in sids:
            s = shifts[sid]
            closes = close_at(s, settings)
            opens = next((t for t in steps if t >= release[sid]), None)
            best = 0
            for n in reversed(yes_index[p]):
                delay = answers[n - 1][1]  # type: ignore[index]
                i = bisect.bisect_left(steps, min(closes - timedelta(minutes=delay), s.start)) - 1
                if opens is None or i < 0 or steps[i] < opens:
                    continue
                offered_by_then = bisect.bisect_right(released, steps[i])
                if n <= offered_by_then:
                    best = n
                    break
            if best:
                limits[(p, sid)] = best
    model = cp_model.CpModel()
    x = {key: model.NewBoolVar(f"x_{key[0]}_{key[1]}") for key in limits}
    for sid in shifts:
        row = [x[(p, sid)] for p in eligible[sid] if (p, sid) in x]
        if len(row) > 1:
            model.AddAtMostOne(row)
    by_span: dict[str, dict[tuple[datetime, datetime], list[str]]] = {}
    for p, sids in per_person.items():
        usable = [sid for sid in sids if (p, sid) in x]
        count = _prefix_limits(yes_index[p])
        for v in sorted({limits[(p, sid)] for sid in usable}):
            within = [x[(p, sid)] for sid in usable if limits[(p, sid)] <= v]
            if len(within) > count(v):
                model.Add(sum(within) <= count(v))
        # Shifts with the same times are alike to the rules: pairs are checked once per pair of
        # times, and every cut covers all the shifts with those times (at most one of them is booked).
        spans: dict[tuple[datetime, datetime], list[str]] = {}
        for sid in usable:
            spans.setdefault((shifts[sid].start, shifts[sid].end), []).append(sid)
        by_span[p] = spans
        times = sorted(spans)
        for i, a in enumerate(times):
            model.AddAtMostOne([x[(p, sid)] for sid in spans[a]])
            for b in times[i + 1 :]:
                if b[0] - a[1] >= _PAIR_HORIZON:
                    break
                if _broken(pool[p], [shifts[spans[a][0]], shifts[spans[b][0]]], settings) is not None:
                    model.Add(sum(x[(p, sid)] for sid in spans[a] + spans[b]) <= 1)
    for p, spans in by_span.items():
        _weekly_rest_windows(model, x, pool[p], spans, settings)
        _month_caps(model, x, pool[p], spans, shifts, settings)
    model.Maximize(sum(x.values()))

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = workers
    cuts = rounds = 0
    chosen: dict[str, list[str]] = {}
    bound = len(shifts)
    while rounds < max_rounds and _time.monotonic() - started < time_limit:
        rounds += 1
        solver.parameters.max_time_in_seconds = max(time_limit - (_time.monotonic() - started), 1.0)
        status = solver.Solve(model)

        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break
        bound = min(bound, int(solver.BestObjectiveBound() + 1e-6))
        found: dict[str, list[str]] = {}
        for (p, sid), var in x.items():
            if solver.Value(var):
                found.setdefault(p, []).append(sid)
        added = 0
        legal: dict[str, list[str]] = {}
        for p, sids in found.items():
            booked = [shifts[s] for s in sids]
            culprit = _broken(pool[p], booked, settings)
            while culprit is not None:
                conflict = _minimal_conflict(pool[p], booked, culprit, settings)
                alike = [sid for c in conflict for sid in by_span[p][(c.start, c.end)]]
                model.Add(sum(x[(p, sid)] for sid in alike) <= len(conflict) - 1)
                added += 1
                booked = [s for s in booked if s.id != culprit.id]
                culprit = _broken(pool[p], booked, settings)
            legal[p] = [s.id for s in booked]
        cuts += added
        # The solution without the bookings that broke a rule is a legal plan: the best so far is kept.
        if sum(map(len, legal.values())) > sum(map(len, chosen.values())):
            chosen = legal
        if not added or sum(map(len, chosen.values())) >= bound:
            break
        model.ClearHints()
        for var in x.values():
            model.AddHint(var, solver.Value(var))
    solution = sum(len(v) for v in chosen.values())
    optimal = solution == bound
    by_day: dict[str, int] = {}
    for sids in chosen.values():
        for sid in sids:
            day = shifts[sid].local_start.date().isoformat()
            by_day[day] = by_day.get(day, 0) + 1
    min_offers = sum(yes_index[p][len(sids) - 1] for p, sids in chosen.items() if sids)
    return Bound(
        shifts=len(shifts),
        bound=bound,
        solution=solution,
        optimal=optimal,
        rounds=rounds,
        cuts=cuts,
        min_offers=min_offers,
        booked_by_day=dict(sorted(by_day.items())),
        seconds=_time.monotonic() - started,
        plan={p: sorted(sids) for p, sids in chosen.items() if sids},
    )
