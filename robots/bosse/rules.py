"""Working-time rules that decide whether a substitute may take a shift (pure, no I/O).

A substitute is eligible for a shift only if every rule below holds with the shift added
to their bookings. Each rule names its source; ``docs/robots/bosse.md`` cites the public
texts read (URL and paragraph).

* the shift's requirements: qualifications, medication delegation, driving licence;
* their stated availability covers the shift, and it overlaps none of their bookings;
* **arbetspass** (AB § 13 from 2023-10-01): bookings less than ``min_daily_rest_hours``
  apart form one work period (a split shift, *delad tur*, when there is a gap); from its
  first start to its last end it lasts at most ``max_shift_hours`` (13 h) and is followed
  by dygnsvila;
* **dygnsvila** (AB § 13 from 2023-10-01, ATL 13 §): every 24-hour period counted from the
  person's *dygnsbryt* contains ``min_daily_rest_hours`` (11 h) of continuous rest;
* **veckovila** (ATL 14 §): every 7-day period (from Monday at the dygnsbryt) contains
  ``min_weekly_rest_hours`` (36 h) of continuous rest that does not overlap the daily rest
  any 24-hour period needs (SKR: the two rests must not overlap);
* **övertid** (ATL 8 §) and **mertid** (ATL 8 a §, 10 a §) counted from the bookings: hours
  beyond full time in a week (ATL 5 §, Monday–Sunday) are overtime, hours beyond a
  part-timer's contract up to full time are mertid; each at most 48 h per 4-week period,
  50 h per calendar month and 200 h per calendar year;
* **genomsnittlig arbetstid** (ATL 10 b §): at most 48 h per 7 days on average over each
  reference period (4 calendar months);
* the **local** monthly cap (e.g. Lund's 165 h for hourly staff) — a local rule, not law.

Exceptions AB allows (work protecting life, health or safety, with compensating rest) are
never applied here: :func:`exception_option` only describes one, for the coordinators.

All instants are timezone-aware and normalised to UTC, so every duration is real elapsed
time: the night the clocks change is 23 or 25 hours long. Reasons are plain Swedish with
Swedish number formatting, because they are shown to staffing coordinators as they are.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_RULES",
    "MONTHS_SV",
    "STOCKHOLM",
    "BosseRules",
    "Counter",
    "ExceptionOption",
    "HourKind",
    "Interval",
    "PeriodHours",
    "Rule",
    "Shift",
    "Substitute",
    "Violation",
    "check_eligibility",
    "counters",
    "day_break_of",
    "exception_option",
    "format_hours",
    "format_interval",
    "format_number",
    "hour_kinds",
    "hours_of",
    "is_eligible",
    "local_to_utc",
    "longest_free_period",
    "normalise_term",
    "work_periods",
]

#: Swedish local time; calendar weeks and the contract's naive timestamps are read in it.
STOCKHOLM = ZoneInfo("Europe/Stockholm")

_MICROSECONDS_PER_HOUR = 3_600_000_000

MONTHS_SV = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)

# Sources, as the reasons name them (the full citations are in docs/robots/bosse.md).
SRC_REQUIREMENT = "passets krav"
SRC_AVAILABILITY = "vikariens anmälda tillgänglighet"
SRC_OVERLAP = "dubbelbokning"
SRC_PASS = "AB § 13 från 2023-10-01: arbetspass följs av dygnsvila, högst 13 h"  # noqa: S105 (not a password)
SRC_DAILY = "AB § 13 från 2023-10-01, ATL 13 §"
SRC_WEEKLY = "ATL 14 §; veckovila får inte överlappa dygnsvila (SKR)"
SRC_OVERTIME = "ATL 8 §"
SRC_MERTID = "ATL 8 a § och 10 a §"
SRC_AVERAGE = "ATL 10 b §"
SRC_LOCAL = "lokal regel, inte lag"


class BosseRules(BaseModel):
    """The thresholds Bosse's rules apply; a frozen settings section (``[robots.bosse.rules]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_daily_rest_hours: float = Field(
        default=11.0,
        ge=0,
        le=24,
        description=(
            "Dygnsvila: least continuous rest in every 24-hour period counted from the person's "
            "dygnsbryt, and after every work period (AB § 13 from 2023-10-01; ATL 13 §: 11 h)."
        ),
    )
    max_shift_hours: float = Field(
        default=13.0,
        gt=0,
        le=24,
        description=(
            "Longest work period (arbetspass) from its first start to its last end, a split shift "
            "(delad tur) included; bookings closer than the daily rest form one period "
            "(24 h − 11 h dygnsvila = 13 h; SKR, Kommunal)."
        ),
    )
    default_day_break: time = Field(
        default=time(9, 0),
        description=(
            "Dygnsbryt used when neither the staffing system nor day_break_by_unit gives one: where "
            "each person's 24-hour periods begin. Not a figure from any agreement – the employer "
            "fixes it per schedule; set your own. 09:00 lets a day (07–16), evening (13:30–21:30, "
            "15–22) and night (21:15–07:15) shift each leave 11 h of rest inside one period."
        ),
    )
    day_break_by_unit: dict[str, time] = Field(
        default_factory=dict,
        description='Per-workplace default dygnsbryt, by the shift\'s unit (e.g. {"Solgården" = "07:00"}).',
    )
    min_weekly_rest_hours: float = Field(
        default=36.0,
        ge=0,
        le=167,
        description=(
            "Veckovila: least continuous rest in every 7-day period (from Monday at the dygnsbryt), "
            "not overlapping any 24-hour period's dygnsvila (ATL 14 §: 36 h)."
        ),
    )
    full_time_hours_week: float = Field(
        default=40.0,
        gt=0,
        le=168,
        description=(
            "Ordinary full-time hours per week (ATL 5 §: 40 h, Monday–Sunday): booked hours beyond "
            "this in a week are overtime."
        ),
    )
    max_overtime_four_weeks: float = Field(default=48.0, ge=0, description="ATL 8 §: overtime per 4-week period.")
    max_overtime_month: float = Field(default=50.0, ge=0, description="ATL 8 §: overtime per calendar month.")
    max_overtime_year: float = Field(default=200.0, ge=0, description="ATL 8 §: overtime per calendar year.")
    max_extra_four_weeks: float = Field(default=48.0, ge=0, description="ATL 10 a §: mertid per 4-week period.")
    max_extra_month: float = Field(default=50.0, ge=0, description="ATL 10 a §: mertid per calendar month.")
    max_extra_year: float = Field(default=200.0, ge=0, description="ATL 8 a §: mertid per calendar year.")
    four_week_anchor: date = Field(
        default=date(2024, 1, 1),
        description="A Monday where a 4-week overtime period begins; the periods follow each other from it.",
    )
    max_average_week_hours: float = Field(
        default=48.0,
        gt=0,
        le=168,
        description="ATL 10 b §: total working time per 7 days, on average over a reference period.",
    )
    average_reference_months: int = Field(
        default=4,
        ge=1,
        le=4,
        description="Reference period of the average (ATL 10 b §: at most 4 months), in calendar months from January.",
    )
    default_max_hours_month: float | None = Field(
        default=165.0,
        gt=0,
        le=744,
        description=(
            "LOCAL rule, not law: monthly cap on booked hours for substitutes without a cap of their "
            "own (e.g. Lund: hourly staff at most 165 h/month); empty = no local cap."
        ),
    )


class Rule(StrEnum):
    """Stable codes of the eligibility rules, in the order they are checked and reported."""

    QUALIFICATION = "qualification"  # the shift's required qualifications
    MEDICATION_DELEGATION = "medication_delegation"  # delegation for medication
    DRIVING_LICENCE = "driving_licence"  # a driving licence
    AVAILABILITY = "availability"  # the person's stated availability covers the shift
    OVERLAP = "overlap"  # no clash with another booking
    SHIFT_LENGTH = "shift_length"  # arbetspass (split shifts included) at most 13 h, then dygnsvila
    DAILY_REST = "daily_rest"  # 11 h continuous rest in every 24-hour period from the dygnsbryt
    WEEKLY_REST = "weekly_rest"  # 36 h per 7-day period, not overlapping dygnsvila
    OVERTIME = "overtime"  # ATL 8 §
    EXTRA_TIME = "extra_time"  # mertid, ATL 8 a § / 10 a §
    AVERAGE_HOURS = "average_hours"  # ATL 10 b §
    MONTHLY_CAP = "monthly_cap"  # local cap, not law


#: The rules an exception in AB (life, health, safety; compensating rest) may concern.
EXCEPTION_RULES = frozenset({Rule.SHIFT_LENGTH, Rule.DAILY_REST})


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed rule: a stable code, a Swedish reason naming the source, and the source."""

    rule: Rule
    reason: str
    source: str = ""
    #: Hours of rest that were missing (daily rest), or the period's length (shift length).
    shortfall_hours: Fraction | None = None


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open period [start, end) between two aware instants, stored in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = _as_utc(self.start, "start"), _as_utc(self.end, "end")
        if end <= start:
            raise ValueError(f"interval end {end.isoformat()} must be after start {start.isoformat()}")
        # Normalising to UTC matters: subtracting two datetimes sharing one ZoneInfo uses
        # wall-clock time and would make the DST nights 24 h long.
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def duration(self) -> timedelta:
        """Real elapsed time of the interval."""
        return self.end - self.start

    def overlaps(self, other: Interval) -> bool:
        """True if the two intervals share any time (touching ends do not overlap)."""
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class Shift:
    """An open shift and what it requires of the person who takes it."""

    id: str
    start: datetime
    end: datetime
    qualifications: Collection[str] = frozenset()
    medication_delegation: bool = False
    driving_licence: bool = False
    unit: str | None = None

    def __post_init__(self) -> None:
        span = Interval(self.start, self.end)
        object.__setattr__(self, "start", span.start)
        object.__setattr__(self, "end", span.end)
        object.__setattr__(self, "qualifications", tuple(self.qualifications))

    @property
    def span(self) -> Interval:
        """The shift's period as an :class:`Interval`."""
        return Interval(self.start, self.end)


@dataclass(frozen=True, slots=True)
class PeriodHours:
    """Hours already worked in the current 4-week period, calendar month and calendar year
    that the bookings do not show (e.g. on the person's other posts with the employer)."""

    four_weeks: float = 0.0
    month: float = 0.0
    year: float = 0.0


@dataclass(frozen=True, slots=True)
class Substitute:
    """A substitute (vikarie) as Bosse sees them: competences, availability, bookings, hours."""

    id: str
    qualifications: Collection[str] = frozenset()
    medication_delegation: bool = False
    driving_licence: bool = False
    available: Sequence[Interval] = ()
    bookings: Sequence[Interval] = ()
    hours_this_month: float = 0.0
    #: The person's own monthly cap; ``None`` means ``BosseRules.default_max_hours_month``.
    max_hours_month: float | None = None
    priority_right: bool = False
    preferred_units: Collection[str] = frozenset()
    distance_km: float | None = None
    #: The person's dygnsbryt from the staffing system; ``None``: the unit's or the default.
    day_break: time | None = None
    #: Overtime / mertid outside the bookings, in the periods the shift starts in.
    overtime_hours: PeriodHours = field(default_factory=PeriodHours)
    extra_hours: PeriodHours = field(default_factory=PeriodHours)
    #: Agreed hours per week (part-time); ``None``: hourly, hours up to full time are ordinary.
    contract_hours_week: float | None = None

    def __post_init__(self) -> None:
        # Freeze the collections so a Substitute is immutable and hashable whatever it was given.
        object.__setattr__(self, "qualifications", tuple(self.qualifications))
        object.__setattr__(self, "available", tuple(self.available))
        object.__setattr__(self, "bookings", tuple(self.bookings))
        object.__setattr__(self, "preferred_units", tuple(self.preferred_units))


DEFAULT_RULES = BosseRules()


def check_eligibility(shift: Shift, substitute: Substitute, rules: BosseRules = DEFAULT_RULES) -> list[Violation]:
    """Every rule the substitute fails for the shift, in :class:`Rule` order; empty if eligible."""
    span = shift.span
    violations: list[Violation] = []
    violations += _check_competence(shift, substitute)
    violations += _check_availability(span, substitute.available)
    overlapping = [b for b in substitute.bookings if b.overlaps(span)]
    if overlapping:
        listed = ", ".join(format_interval(b) for b in sorted(overlapping, key=lambda b: b.start))
        violations.append(Violation(Rule.OVERLAP, f"krockar med bokning {listed} ({SRC_OVERLAP})", SRC_OVERLAP))
        # The time rules below measure rest between bookings; a clash has none to measure.
        return violations + _check_local_cap(span, substitute, rules)
    day_break = day_break_of(substitute, shift, rules)
    work = [*substitute.bookings, span]
    too_long = _check_shift_length(span, work, rules)
    violations += too_long
    # The 24-hour periods are checked when the work periods hold: a rest already too short
    # between bookings is reported once, above, not again for each period it falls in.
    violations += [] if too_long else _check_daily_rest(span, work, day_break, rules)
    violations += _check_weekly_rest(span, work, day_break, rules)
    violations += _check_overtime(span, substitute, rules)
    violations += _check_average(span, substitute.bookings, rules)
    violations += _check_local_cap(span, substitute, rules)
    return violations


def is_eligible(shift: Shift, substitute: Substitute, rules: BosseRules = DEFAULT_RULES) -> bool:
    """True if the substitute breaks no rule by taking the shift."""
    return not check_eligibility(shift, substitute, rules)


def day_break_of(substitute: Substitute, shift: Shift | None, rules: BosseRules) -> time:
    """The person's dygnsbryt: their own, else the shift's workplace default, else the default."""
    if substitute.day_break is not None:
        return substitute.day_break
    if shift is not None and shift.unit is not None:
        wanted = normalise_term(shift.unit)
        for unit, moment in rules.day_break_by_unit.items():
            if normalise_term(unit) == wanted:
                return moment
    return rules.default_day_break


def _check_competence(shift: Shift, substitute: Substitute) -> list[Violation]:
    held = {normalise_term(q) for q in substitute.qualifications}
    missing = [q for q in shift.qualifications if normalise_term(q) not in held]
    violations: list[Violation] = []
    if missing:
        noun = "kvalifikation" if len(missing) == 1 else "kvalifikationerna"
        violations.append(
            Violation(Rule.QUALIFICATION, f"saknar {noun} {', '.join(missing)} ({SRC_REQUIREMENT})", SRC_REQUIREMENT)
        )
    if shift.medication_delegation and not substitute.medication_delegation:
        violations.append(
            Violation(Rule.MEDICATION_DELEGATION, f"saknar läkemedelsdelegering ({SRC_REQUIREMENT})", SRC_REQUIREMENT)
        )
    if shift.driving_licence and not substitute.driving_licence:
        violations.append(Violation(Rule.DRIVING_LICENCE, f"saknar körkort ({SRC_REQUIREMENT})", SRC_REQUIREMENT))
    return violations


def _check_availability(span: Interval, available: Iterable[Interval]) -> list[Violation]:
    gaps = _uncovered(span, _merge(available))
    if not gaps:
        return []
    if gaps == [span]:
        return [
            Violation(
                Rule.AVAILABILITY, f"ingen anmäld tillgänglighet under passet ({SRC_AVAILABILITY})", SRC_AVAILABILITY
            )
        ]
    listed = ", ".join(format_interval(g) for g in gaps)
    return [
        Violation(Rule.AVAILABILITY, f"anmäld tillgänglighet saknas {listed} ({SRC_AVAILABILITY})", SRC_AVAILABILITY)
    ]


# -- arbetspass and dygnsvila --------------------------------------------------------------
def work_periods(work: Iterable[Interval], min_rest: timedelta) -> list[Interval]:
    """The work periods (arbetspass): bookings less than ``min_rest`` apart joined into one,
    from the first start to the last end – a split shift (delad tur) is one period."""
    periods: list[Interval] = []
    for iv in _merge(work):
        if periods and iv.start - periods[-1].end < min_rest:
            periods[-1] = Interval(periods[-1].start, max(periods[-1].end, iv.end))
        else:
            periods.append(iv)
    return periods


def _check_shift_length(span: Interval, work: Sequence[Interval], rules: BosseRules) -> list[Violation]:
    rest = timedelta(hours=rules.min_daily_rest_hours)
    reach = timedelta(hours=rules.max_shift_hours + rules.min_daily_rest_hours) * 2
    work = [w for w in work if w.overlaps(Interval(span.start - reach, span.end + reach))]
    period = next(p for p in work_periods(work, rest) if p.overlaps(span))
    if period.duration <= timedelta(hours=rules.max_shift_hours):
        return []
    pieces = [m for m in _merge(work) if _clip(m, period) is not None]
    mine = next(m for m in pieces if m.overlaps(span))
    before = [mine.start - m.end for m in pieces if m.end < mine.start]
    after = [m.start - mine.end for m in pieces if m.start > mine.end]
    long_text = (
        f"som delad tur skulle arbetspasset {format_interval(period)} bli {format_hours(period.duration)}, "
        f"högst {format_number(rules.max_shift_hours)} h ({SRC_PASS})"
    )
    violations: list[Violation] = []
    for rests, side in ((before, "före"), (after, "efter")):
        if rests:
            gap = min(rests)
            violations.append(
                Violation(
                    Rule.DAILY_REST,
                    f"dygnsvila {format_hours(gap, round_down=True)} {side} passet, minst "
                    f"{format_number(rules.min_daily_rest_hours)} h krävs efter ett arbetspass; {long_text}",
                    SRC_PASS,
                    hours_of(rest - gap),
                )
            )
    if violations:
        return violations
    return [
        Violation(
            Rule.SHIFT_LENGTH,
            f"arbetspasset {format_interval(period)} blir {format_hours(period.duration)}, högst "
            f"{format_number(rules.max_shift_hours)} h följt av {format_number(rules.min_daily_rest_hours)} h "
            f"dygnsvila ({SRC_PASS})",
            SRC_PASS,
            hours_of(period.duration),
        )
    ]


def day_periods(window: Interval, day_break: time) -> list[Interval]:
    """The 24-hour periods (from the dygnsbryt, Swedish time) that share time with ``window``.

    A period runs from the dygnsbryt one day to the dygnsbryt the next; on the nights the
    clocks change it is 23 or 25 real hours long, as the schedule reads it.
    """
    first = window.start.astimezone(STOCKHOLM).date() - timedelta(days=1)
    periods: list[Interval] = []
    day = first
    while (start := _local_at(day, day_break)) < window.end:
        period = Interval(start, _local_at(day + timedelta(days=1), day_break))
        if period.overlaps(window):
            periods.append(period)
        day += timedelta(days=1)
    return periods


def _check_daily_rest(span: Interval, work: Sequence[Interval], day_break: time, rules: BosseRules) -> list[Violation]:
    # Only the periods the shift touches change; the others are as they were.
    required = timedelta(hours=rules.min_daily_rest_hours)
    near = Interval(span.start - timedelta(days=2), span.end + timedelta(days=2))
    work = [w for w in work if w.overlaps(near)]
    violations: list[Violation] = []
    for period in day_periods(span, day_break):
        longest = longest_free_period(period, work)
        if longest < required:
            violations.append(
                Violation(
                    Rule.DAILY_REST,
                    f"dygnsvila: dygnet {format_interval(period)} (dygnsbryt {day_break:%H:%M}) har som längst "
                    f"{format_hours(longest, round_down=True)} sammanhängande vila, minst "
                    f"{format_number(rules.min_daily_rest_hours)} h krävs ({SRC_DAILY})",
                    SRC_DAILY,
                    hours_of(required - longest),
                )
            )
    return violations


# -- veckovila --------------------------------------------------------------------------------
def week_periods(window: Interval, day_break: time) -> list[Interval]:
    """The 7-day periods (Monday at the dygnsbryt to the next Monday's) sharing time with ``window``."""
    first = window.start.astimezone(STOCKHOLM).date()
    monday = first - timedelta(days=first.weekday() + 7)
    periods: list[Interval] = []
    while (start := _local_at(monday, day_break)) < window.end:
        period = Interval(start, _local_at(monday + timedelta(days=7), day_break))
        if period.overlaps(window):
            periods.append(period)
        monday += timedelta(days=7)
    return periods


def weekly_rest_in(week: Interval, work: Sequence[Interval], day_break: time, rules: BosseRules) -> Interval | None:
    """A veckovila inside ``week``: ``min_weekly_rest_hours`` of continuous rest that leaves every
    24-hour period it touches *that has work in it* its dygnsvila outside it (SKR: the two
    rests must not overlap; a period whose dygnsvila came before its work may be followed by
    the veckovila at once); ``None`` when there is none."""
    need = timedelta(hours=rules.min_weekly_rest_hours)
    daily = timedelta(hours=rules.min_daily_rest_hours)
    near = Interval(week.start - timedelta(days=3), week.end + timedelta(days=3))
    work = [w for w in work if w.overlaps(near)]
    busy = _merge(c for w in work if (c := _clip(w, week)) is not None)
    free = _uncovered(week, busy)
    for stretch in free:
        if stretch.duration < need:
            continue
        if stretch.duration >= need + 2 * daily:
            # Room for a dygnsvila on both sides: any period with work that the veckovila
            # placed 11 h into the stretch touches has those 11 h outside it.
            return Interval(stretch.start + daily, stretch.start + daily + need)
        around = Interval(stretch.start - timedelta(days=2), stretch.end + timedelta(days=2))
        days = day_periods(around, day_break)
        last = stretch.end - need
        # The placements where the answer can change: the stretch's ends and each day
        # period's ends, shifted by the daily and the weekly rest.
        marks = {stretch.start, last}
        for p in days:
            for edge in (p.start, p.end, stretch.start, stretch.end):
                for offset in (timedelta(0), -need, daily, -daily, -need - daily):
                    marks.add(edge + offset)
        for s in sorted(m for m in marks if stretch.start <= m <= last):
            candidate = Interval(s, s + need)
            # A period with work keeps its dygnsvila apart from the veckovila; a period with
            # no work at all lies wholly in the rest and has nothing to keep apart.
            if all(
                _longest_outside(p, work, candidate) >= daily
                for p in days
                if p.overlaps(candidate) and any(w.overlaps(p) for w in work)
            ):
                return candidate
    return None


def _longest_outside(period: Interval, work: Sequence[Interval], taken: Interval) -> timedelta:
    """The longest rest inside ``period`` that is neither work nor ``taken``."""
    return longest_free_period(period, [*work, taken])


def _check_weekly_rest(span: Interval, work: Sequence[Interval], day_break: time, rules: BosseRules) -> list[Violation]:
    violations: list[Violation] = []
    for week in week_periods(span, day_break):
        if weekly_rest_in(week, work, day_break, rules) is not None:
            continue
        longest = longest_free_period(week, work)
        monday = week.start.astimezone(STOCKHOLM).date()
        violations.append(
            Violation(
                Rule.WEEKLY_REST,
                f"veckovila: sjudagarsperioden från {format_interval(week)} har ingen sammanhängande vila på "
                f"{format_number(rules.min_weekly_rest_hours)} h utöver dygnsvilan "
                f"(längsta ledighet {format_hours(longest, round_down=True)}, vecka {monday.isocalendar().week}) "
                f"({SRC_WEEKLY})",
                SRC_WEEKLY,
            )
        )
    return violations


# -- övertid, mertid, average ----------------------------------------------------------------
class HourKind(StrEnum):
    """What a booked hour counts as."""

    ordinary = "ordinary"  # within the contract (or within full time for hourly staff)
    extra = "extra"  # mertid: beyond a part-timer's contract, up to full time
    overtime = "overtime"  # beyond full time in the week


def _calendar_week(moment: datetime) -> Interval:
    day = moment.astimezone(STOCKHOLM).date()
    monday = day - timedelta(days=day.weekday())
    return Interval(_local_midnight(monday), _local_midnight(monday + timedelta(days=7)))


def hour_kinds(
    work: Iterable[Interval], contract_hours_week: float | None, rules: BosseRules
) -> list[tuple[Interval, HourKind]]:
    """Every booked piece of time with what it counts as, week by week (ATL 5 §: Monday–Sunday).

    The hours of a week are counted in time order: up to the contract they are ordinary,
    then mertid up to full time, then overtime. Hourly staff (no contract) have no mertid.
    """
    full = timedelta(hours=rules.full_time_hours_week)
    contract = full if contract_hours_week is None else min(timedelta(hours=contract_hours_week), full)
    pieces: list[tuple[Interval, HourKind]] = []
    merged = _merge(work)
    weeks: dict[datetime, list[Interval]] = {}
    for iv in merged:
        cursor = iv.start
        while cursor < iv.end:
            week = _calendar_week(cursor)
            piece = Interval(cursor, min(iv.end, week.end))
            weeks.setdefault(week.start, []).append(piece)
            cursor = piece.end
    for parts in weeks.values():
        done = timedelta(0)
        for piece in parts:
            for limit, kind in ((contract, HourKind.ordinary), (full, HourKind.extra), (None, HourKind.overtime)):
                if piece.start >= piece.end:
                    break
                room = piece.duration if limit is None else limit - done
                if room <= timedelta(0):
                    continue
                take = min(room, piece.duration)
                pieces.append((Interval(piece.start, piece.start + take), kind))
                done += take
                if take == piece.duration:
                    break
                piece = Interval(piece.start + take, piece.end)
    return pieces


def _in(pieces: Iterable[tuple[Interval, HourKind]], kind: HourKind, window: Interval) -> Fraction:
    total = Fraction(0)
    for iv, k in pieces:
        if k is kind and (c := _clip(iv, window)) is not None:
            total += hours_of(c.duration)
    return total


def four_week_period(moment: datetime, rules: BosseRules) -> Interval:
    """The 4-week overtime period ``moment`` lies in (periods follow each other from the anchor)."""
    day = moment.astimezone(STOCKHOLM).date()
    index = (day - rules.four_week_anchor).days // 28
    first = rules.four_week_anchor + timedelta(days=28 * index)
    return Interval(_local_midnight(first), _local_midnight(first + timedelta(days=28)))


def calendar_month(moment: datetime) -> Interval:
    """The calendar month ``moment`` lies in (Swedish time)."""
    day = moment.astimezone(STOCKHOLM).date()
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Interval(_local_midnight(first), _local_midnight(following))


def calendar_year(moment: datetime) -> Interval:
    """The calendar year ``moment`` lies in (Swedish time)."""
    year = moment.astimezone(STOCKHOLM).year
    return Interval(_local_midnight(date(year, 1, 1)), _local_midnight(date(year + 1, 1, 1)))


def reference_period(moment: datetime, rules: BosseRules) -> Interval:
    """The reference period of the 48-hour average (calendar months from January)."""
    day = moment.astimezone(STOCKHOLM).date()
    size = rules.average_reference_months
    first_month = (day.month - 1) // size * size + 1
    first = date(day.year, first_month, 1)
    month = first_month + size
    following = date(day.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)
    return Interval(_local_midnight(first), _local_midnight(following))


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter for the coordinators: overtime or mertid in one period, with its limit."""

    kind: HourKind
    period: str  # four_weeks | month | year
    label: str  # Swedish: "december", "4-veckorsperioden 30/11–27/12", "2026"
    window: Interval
    hours: Fraction
    limit: float
    source: str

    @property
    def exceeded(self) -> bool:
        """True when the hours are over the limit."""
        return self.hours > Fraction(str(self.limit))

    @property
    def text(self) -> str:
        """Swedish, e.g. ``övertid i december: 38 av 50 h``."""
        noun = "övertid" if self.kind is HourKind.overtime else "mertid"
        return f"{noun} {self.label}: {format_number(self.hours)} av {format_number(self.limit)} h"


def _period_label(period: str, window: Interval) -> str:
    start = window.start.astimezone(STOCKHOLM)
    if period == "month":
        return f"i {MONTHS_SV[start.month - 1]}"
    if period == "year":
        return f"under {start.year}"
    last = (window.end - timedelta(seconds=1)).astimezone(STOCKHOLM)
    return f"under 4-veckorsperioden {start.day}/{start.month}–{last.day}/{last.month}"


def counters(shift: Shift | None, substitute: Substitute, rules: BosseRules = DEFAULT_RULES) -> list[Counter]:
    """Overtime and mertid per 4-week period, month and year around the shift, counted from
    the bookings (with the shift, when given) plus the hours the bookings do not show."""
    work = list(substitute.bookings) + ([shift.span] if shift is not None else [])
    if not work:
        return []
    pieces = hour_kinds(work, substitute.contract_hours_week, rules)
    anchor_at = shift.start if shift is not None else max(w.start for w in work)
    # The periods the shift's week touches: the shift changes the count only in its week.
    week = _calendar_week(anchor_at)
    result: list[Counter] = []
    kinds = [(HourKind.overtime, substitute.overtime_hours, SRC_OVERTIME)]
    if substitute.contract_hours_week is not None and substitute.contract_hours_week < rules.full_time_hours_week:
        kinds.append((HourKind.extra, substitute.extra_hours, SRC_MERTID))
    for kind, outside, source in kinds:
        limits = (
            (rules.max_overtime_four_weeks, rules.max_overtime_month, rules.max_overtime_year)
            if kind is HourKind.overtime
            else (rules.max_extra_four_weeks, rules.max_extra_month, rules.max_extra_year)
        )
        for period, make, limit, before in (
            ("four_weeks", lambda m: four_week_period(m, rules), limits[0], outside.four_weeks),
            ("month", calendar_month, limits[1], outside.month),
            ("year", calendar_year, limits[2], outside.year),
        ):
            windows = {make(week.start), make(week.end - timedelta(seconds=1))}
            for window in sorted(windows, key=lambda w: w.start):
                hours = _in(pieces, kind, window)
                if window.start <= anchor_at < window.end:
                    hours += Fraction(str(before))
                result.append(Counter(kind, period, _period_label(period, window), window, hours, limit, source))
    return result


def _check_overtime(span: Interval, substitute: Substitute, rules: BosseRules) -> list[Violation]:
    week = _calendar_week(span.start)
    if span.end <= week.end:
        # A week whose hours, the shift's included, stay within the contract (full time for
        # hourly staff) has neither mertid nor overtime: the shift adds nothing to count.
        within = sum(
            (
                min(b.end, week.end) - max(b.start, week.start)
                for b in substitute.bookings
                if b.start < week.end and week.start < b.end
            ),
            span.duration,
        )
        contract = substitute.contract_hours_week
        limit = rules.full_time_hours_week if contract is None else min(contract, rules.full_time_hours_week)
        if within <= timedelta(hours=limit):
            return []
    shift = Shift("_", span.start, span.end)
    violations: list[Violation] = []
    for c in counters(shift, substitute, rules):
        if c.exceeded:
            rule = Rule.OVERTIME if c.kind is HourKind.overtime else Rule.EXTRA_TIME
            violations.append(Violation(rule, f"{c.text} med passet, gränsen överskrids ({c.source})", c.source))
    return violations


def average_hours(window: Interval, work: Iterable[Interval]) -> Fraction:
    """Booked hours per 7 days on average over ``window``."""
    total = sum((hours_of(c.duration) for w in _merge(work) if (c := _clip(w, window)) is not None), Fraction(0))
    return total / (hours_of(window.duration) / 168)


def _check_average(span: Interval, bookings: Sequence[Interval], rules: BosseRules) -> list[Violation]:
    violations: list[Violation] = []
    windows = {reference_period(span.start, rules), reference_period(span.end - timedelta(seconds=1), rules)}
    for window in sorted(windows, key=lambda w: w.start):
        # Cheap bound first: all the hours near the period cannot reach the average.
        bound = sum((b.duration for b in bookings if b.start < window.end and window.start < b.end), span.duration)
        if bound <= (window.end - window.start) * rules.max_average_week_hours / 168:
            continue
        average = average_hours(window, [*bookings, span])
        if average > Fraction(str(rules.max_average_week_hours)):
            start = window.start.astimezone(STOCKHOLM)
            last = (window.end - timedelta(seconds=1)).astimezone(STOCKHOLM)
            violations.append(
                Violation(
                    Rule.AVERAGE_HOURS,
                    f"genomsnittlig arbetstid {start:%Y-%m-%d}–{last:%Y-%m-%d} blir "
                    f"{format_number(average)} h per vecka, högst {format_number(rules.max_average_week_hours)} h "
                    f"({SRC_AVERAGE})",
                    SRC_AVERAGE,
                )
            )
    return violations


def _check_local_cap(span: Interval, substitute: Substitute, rules: BosseRules) -> list[Violation]:
    # The whole shift counts against the month it is booked in, even a night shift that ends
    # on the 1st: the conservative reading, and the input carries only one month's hours.
    cap = substitute.max_hours_month if substitute.max_hours_month is not None else rules.default_max_hours_month
    if cap is None:
        return []
    booked = Fraction(str(substitute.hours_this_month))
    shift_hours = hours_of(span.duration)
    total = booked + shift_hours
    # Exact fractions so that the boundary (165 h exactly) is never lost to float rounding.
    if total <= Fraction(str(cap)):
        return []
    return [
        Violation(
            Rule.MONTHLY_CAP,
            f"månadstak: {format_number(booked)} h bokade + {format_number(shift_hours)} h pass = "
            f"{format_number(total)} h, högst {format_number(cap)} h tillåts ({SRC_LOCAL})",
            SRC_LOCAL,
        )
    ]


# -- exceptions: described for the coordinators, never applied -------------------------------
@dataclass(frozen=True, slots=True)
class ExceptionOption:
    """A shift the person could take only under an exception in AB, for a coordinator to weigh."""

    rules: tuple[Rule, ...]
    compensating_rest_hours: Fraction
    text: str


def exception_option(violations: Sequence[Violation], rules: BosseRules = DEFAULT_RULES) -> ExceptionOption | None:
    """When every failed rule is one AB allows an exception from (arbetspass, dygnsvila), what
    it would take: AB's exceptions are only for work protecting life, health or safety, when
    staffing cannot be solved otherwise, with compensating rest. Bosse never books on one."""
    if not violations or any(v.rule not in EXCEPTION_RULES for v in violations):
        return None
    rest = Fraction(0)
    parts: list[str] = []
    for v in violations:
        if v.rule is Rule.SHIFT_LENGTH and v.shortfall_hours is not None:
            # SKR: after an exception period (work + jour, at most 20 h) the rest that
            # follows is at least as long as the working time, and at least 11 h.
            if v.shortfall_hours > 20:
                return None
            need = max(v.shortfall_hours, Fraction(str(rules.min_daily_rest_hours)))
            rest = max(rest, need)
            parts.append(f"vila direkt efter passet minst lika lång som arbetstiden: {format_number(need)} h")
        elif v.rule is Rule.DAILY_REST and v.shortfall_hours is not None:
            rest = max(rest, v.shortfall_hours)
            parts.append(f"kompenserande vila för förkortad dygnsvila: {format_number(v.shortfall_hours)} h")
    text = (
        "UNDANTAG (AB § 13, endast verksamhet som skyddar liv, hälsa eller säkerhet och när bemanningen "
        "inte kan lösas på annat sätt): " + "; ".join(parts) + ". Bosse bokar inte på undantag."
    )
    return ExceptionOption(tuple(v.rule for v in violations), rest, text)


def longest_free_period(week: Interval, work: Iterable[Interval]) -> timedelta:
    """The longest stretch inside ``week`` (any period) not covered by the ``work`` intervals."""
    # Rest is measured inside the period only: each period must *contain* its rest.
    busy = _merge(clipped for w in work if (clipped := _clip(w, week)) is not None)
    longest = timedelta(0)
    cursor = week.start
    for b in busy:
        longest = max(longest, b.start - cursor)
        cursor = b.end
    return max(longest, week.end - cursor)


@lru_cache(maxsize=8192)
def _local_at(day: date, moment: time) -> datetime:
    """``moment`` on ``day`` Swedish time as UTC; a time skipped in spring is read an hour later."""
    local = datetime.combine(day, moment)
    try:
        return local_to_utc(local)
    except ValueError:
        return local_to_utc(local + timedelta(hours=1))


@lru_cache(maxsize=8192)
def _local_midnight(day: date) -> datetime:
    # Midnight always exists exactly once in Sweden (clocks change at 02:00/03:00).
    return datetime(day.year, day.month, day.day, tzinfo=STOCKHOLM).astimezone(UTC)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Union of intervals as sorted, disjoint intervals; touching intervals are joined."""
    merged: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: (i.start, i.end)):
        if merged and iv.start <= merged[-1].end:
            if iv.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, iv.end)
        else:
            merged.append(iv)
    return merged


def _uncovered(span: Interval, cover: Sequence[Interval]) -> list[Interval]:
    """The parts of ``span`` not covered by the sorted, disjoint intervals ``cover``."""
    gaps: list[Interval] = []
    cursor = span.start
    for c in cover:
        if c.end <= cursor:
            continue
        if c.start >= span.end:
            break
        if c.start > cursor:
            gaps.append(Interval(cursor, c.start))
        cursor = max(cursor, c.end)
        if cursor >= span.end:
            return gaps
    if cursor < span.end:
        gaps.append(Interval(cursor, span.end))
    return gaps


def _clip(iv: Interval, window: Interval) -> Interval | None:
    start, end = max(iv.start, window.start), min(iv.end, window.end)
    return Interval(start, end) if start < end else None


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (use local_to_utc for Swedish local time)")
    return moment.astimezone(UTC)


def local_to_utc(local: datetime) -> datetime:
    """Read a naive Swedish local time as an aware UTC instant.

    A time in the hour skipped in spring does not exist and raises ``ValueError``; a time in
    the hour repeated in autumn is read as its first occurrence (summer time, ``fold=0``).
    """
    if local.tzinfo is not None:
        raise ValueError("local_to_utc expects a naive local time")
    aware = local.replace(tzinfo=STOCKHOLM).astimezone(UTC)
    if aware.astimezone(STOCKHOLM).replace(tzinfo=None) != local:
        raise ValueError(
            f"{local.isoformat(timespec='minutes')} does not exist in Swedish time (the clocks skip that hour)"
        )
    return aware


def normalise_term(term: str) -> str:
    """Case- and whitespace-insensitive form of a qualification or unit name, for comparing."""
    return " ".join(term.split()).casefold()


def hours_of(duration: timedelta) -> Fraction:
    """A duration in hours, exactly (no float rounding)."""
    return Fraction(duration // timedelta(microseconds=1), _MICROSECONDS_PER_HOUR)


def format_number(value: float | Fraction | Decimal, *, decimals: int = 2, round_down: bool = False) -> str:
    """A number the Swedish way: decimal comma, no trailing zeros, space between thousands.

    ``round_down`` truncates instead of rounding, so a rest of 10.999 h reads "10,99 h" and
    never "11 h" next to "minst 11 h krävs".
    """
    if isinstance(value, Fraction):
        exact = Decimal(value.numerator) / Decimal(value.denominator)
    else:
        exact = Decimal(str(value))
    quantum = Decimal(1).scaleb(-decimals)
    rounded = exact.quantize(quantum, rounding=ROUND_FLOOR if round_down else ROUND_HALF_UP)
    text = f"{rounded:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    text = text.replace(",", " ").replace(".", ",")
    return "0" if text in ("-0", "") else text


def format_hours(duration: timedelta, *, round_down: bool = False) -> str:
    """A duration as Swedish hours, e.g. ``"9,5 h"``."""
    return f"{format_number(hours_of(duration), round_down=round_down)} h"


def format_interval(iv: Interval) -> str:
    """An interval in Swedish local time: ``2026-12-01 06:00–10:00`` or across midnight in full."""
    start, end = iv.start.astimezone(STOCKHOLM), iv.end.astimezone(STOCKHOLM)
    if start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"
    return f"{start:%Y-%m-%d %H:%M}–{end:%Y-%m-%d %H:%M}"
