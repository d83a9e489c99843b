"""Working-time rules that decide whether a substitute may take a shift (pure, no I/O).

A substitute is eligible for a shift only if they hold every required qualification,
medication delegation and driving licence; their stated availability covers the shift; it
overlaps none of their bookings; there are at least ``min_daily_rest_hours`` of rest
between the shift and every booking before and after it (AB dygnsvila); every calendar week
(Monday–Sunday, Swedish local time) the shift touches still contains ``min_weekly_rest_hours``
consecutive hours free of work (veckovila); and the month's hours plus the shift stay within
the monthly cap.

All instants are timezone-aware and normalised to UTC, so every duration is real elapsed
time: the night the clocks change is 23 or 25 hours long. Reasons are plain Swedish with
Swedish number formatting, because they are shown to staffing coordinators as they are.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_RULES",
    "STOCKHOLM",
    "BosseRules",
    "Interval",
    "Rule",
    "Shift",
    "Substitute",
    "Violation",
    "check_eligibility",
    "format_hours",
    "format_interval",
    "format_number",
    "hours_of",
    "is_eligible",
    "local_to_utc",
    "longest_free_period",
    "normalise_term",
]

#: Swedish local time; calendar weeks and the contract's naive timestamps are read in it.
STOCKHOLM = ZoneInfo("Europe/Stockholm")

_MICROSECONDS_PER_HOUR = 3_600_000_000


class BosseRules(BaseModel):
    """The thresholds Bosse's rules apply; a frozen settings section (``[bosse]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_daily_rest_hours: float = Field(
        default=11.0,
        ge=0,
        le=24,
        description=(
            "Dygnsvila: least consecutive hours of rest between the shift and any booking "
            "before or after it. AB (from 2023-10-01) requires 11 h after every shift."
        ),
    )
    min_weekly_rest_hours: float = Field(
        default=36.0,
        ge=0,
        le=167,
        description=(
            "Veckovila: least consecutive hours free of work that every calendar week "
            "(Monday–Sunday, Swedish time) the shift touches must still contain (ATL: 36 h)."
        ),
    )
    default_max_hours_month: float = Field(
        default=165.0,
        gt=0,
        le=744,
        description=(
            "Monthly cap on booked hours for substitutes who have no cap of their own "
            "(e.g. Lund: hourly staff at most 165 h/month)."
        ),
    )


class Rule(StrEnum):
    """Stable codes of the eligibility rules, in the order they are checked and reported."""

    QUALIFICATION = "qualification"
    MEDICATION_DELEGATION = "medication_delegation"
    DRIVING_LICENCE = "driving_licence"
    AVAILABILITY = "availability"
    OVERLAP = "overlap"
    DAILY_REST = "daily_rest"
    WEEKLY_REST = "weekly_rest"
    MONTHLY_CAP = "monthly_cap"


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed rule: a stable code for machines and a Swedish reason for people."""

    rule: Rule
    reason: str


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
        violations.append(Violation(Rule.OVERLAP, f"krockar med bokning {listed}"))
    violations += _check_daily_rest(span, substitute.bookings, rules)
    violations += _check_weekly_rest(span, substitute.bookings, rules)
    violations += _check_monthly_cap(span, substitute, rules)
    return violations


def is_eligible(shift: Shift, substitute: Substitute, rules: BosseRules = DEFAULT_RULES) -> bool:
    """True if the substitute breaks no rule by taking the shift."""
    return not check_eligibility(shift, substitute, rules)


def _check_competence(shift: Shift, substitute: Substitute) -> list[Violation]:
    held = {normalise_term(q) for q in substitute.qualifications}
    missing = [q for q in shift.qualifications if normalise_term(q) not in held]
    violations: list[Violation] = []
    if missing:
        noun = "kvalifikation" if len(missing) == 1 else "kvalifikationerna"
        violations.append(Violation(Rule.QUALIFICATION, f"saknar {noun} {', '.join(missing)}"))
    if shift.medication_delegation and not substitute.medication_delegation:
        violations.append(Violation(Rule.MEDICATION_DELEGATION, "saknar läkemedelsdelegering"))
    if shift.driving_licence and not substitute.driving_licence:
        violations.append(Violation(Rule.DRIVING_LICENCE, "saknar körkort"))
    return violations


def _check_availability(span: Interval, available: Iterable[Interval]) -> list[Violation]:
    gaps = _uncovered(span, _merge(available))
    if not gaps:
        return []
    if gaps == [span]:
        return [Violation(Rule.AVAILABILITY, "ingen anmäld tillgänglighet under passet")]
    listed = ", ".join(format_interval(g) for g in gaps)
    return [Violation(Rule.AVAILABILITY, f"anmäld tillgänglighet saknas {listed}")]


def _check_daily_rest(span: Interval, bookings: Iterable[Interval], rules: BosseRules) -> list[Violation]:
    # Only the nearest booking on each side can be the tightest; overlapping bookings are
    # reported by the overlap rule and have no "rest between" to measure.
    before = [span.start - b.end for b in bookings if b.end <= span.start]
    after = [b.start - span.end for b in bookings if b.start >= span.end]
    required = timedelta(hours=rules.min_daily_rest_hours)
    violations: list[Violation] = []
    for rests, side in ((before, "före"), (after, "efter")):
        if rests and min(rests) < required:
            violations.append(
                Violation(
                    Rule.DAILY_REST,
                    f"dygnsvila {format_hours(min(rests), round_down=True)} {side} passet, "
                    f"minst {format_number(rules.min_daily_rest_hours)} h krävs",
                )
            )
    return violations


def _check_weekly_rest(span: Interval, bookings: Sequence[Interval], rules: BosseRules) -> list[Violation]:
    required = timedelta(hours=rules.min_weekly_rest_hours)
    work = [*bookings, span]
    violations: list[Violation] = []
    for monday, week in _weeks_touched(span):
        longest = longest_free_period(week, work)
        if longest < required:
            violations.append(
                Violation(
                    Rule.WEEKLY_REST,
                    f"veckovila vecka {monday.isocalendar().week}: längsta sammanhängande ledighet "
                    f"{format_hours(longest, round_down=True)}, "
                    f"minst {format_number(rules.min_weekly_rest_hours)} h krävs",
                )
            )
    return violations


def _check_monthly_cap(span: Interval, substitute: Substitute, rules: BosseRules) -> list[Violation]:
    # The whole shift counts against the month it is booked in, even a night shift that ends
    # on the 1st: the conservative reading, and the input carries only one month's hours.
    cap = substitute.max_hours_month if substitute.max_hours_month is not None else rules.default_max_hours_month
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
            f"{format_number(total)} h, högst {format_number(cap)} h tillåts",
        )
    ]


def longest_free_period(week: Interval, work: Iterable[Interval]) -> timedelta:
    """The longest stretch inside ``week`` not covered by any of the ``work`` intervals."""
    # Rest is measured inside the period only: the issue asks that each calendar week
    # *contain* the veckovila, so free time just before Monday 00:00 does not count.
    busy = _merge(clipped for w in work if (clipped := _clip(w, week)) is not None)
    longest = timedelta(0)
    cursor = week.start
    for b in busy:
        longest = max(longest, b.start - cursor)
        cursor = b.end
    return max(longest, week.end - cursor)


def _weeks_touched(span: Interval) -> list[tuple[date, Interval]]:
    """The calendar weeks (Monday, its period in UTC) that share time with ``span``."""
    first_day = span.start.astimezone(STOCKHOLM).date()
    monday = first_day - timedelta(days=first_day.weekday())
    weeks: list[tuple[date, Interval]] = []
    while (week_start := _local_midnight(monday)) < span.end:
        # 7 local days: 167 h in the spring DST week, 169 h in the autumn one.
        weeks.append((monday, Interval(week_start, _local_midnight(monday + timedelta(days=7)))))
        monday += timedelta(days=7)
    return weeks


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
