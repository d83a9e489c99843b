"""Shifts and substitutes as the staffing system describes them, read into Bosse's terms (pure).

The staffing system answers JSON (see ``sandbox/API.md``, section c); these records keep
what Bosse needs and convert to the rules' :class:`~robots.bosse.rules.Shift` and
:class:`~robots.bosse.rules.Substitute`. Times with an offset are taken as they are; a
time without one is Swedish local time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from core.api import BusinessError
from robots.bosse.rules import STOCKHOLM, Interval, PeriodHours, Shift, Substitute, local_to_utc

__all__ = ["BadRecord", "ShiftInfo", "SubstituteInfo", "parse_shift", "parse_substitute", "parse_time"]


class BadRecord(BusinessError):
    """The staffing system sent a record Bosse cannot read (names the field, never a value)."""

    code = "bosse_bad_record"


def parse_time(value: object, what: str) -> datetime:
    """An ISO time from the staffing system as an aware UTC instant."""
    if not isinstance(value, str):
        raise BadRecord(f"{what}: expected a time")
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else local_to_utc(parsed)
    except ValueError:
        raise BadRecord(f"{what}: not a valid time") from None


@dataclass(frozen=True)
class ShiftInfo:
    """An open (or booked) shift in the staffing system."""

    id: str
    code: str
    unit: str
    start: datetime
    end: datetime
    hours: float
    name: str = ""
    unit_kind: str = ""
    qualifications: tuple[str, ...] = ()
    medication_delegation: bool = False
    driving_licence: bool = False
    reason: str = ""
    status: str = "open"
    booking_id: str | None = None
    booked_substitute_id: str | None = None
    booked_by: str | None = None
    deadline: datetime | None = None
    #: When the shift was reported open in the staffing system (the effects ledger counts time to booked from it).
    opened_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """True while nobody is booked on the shift."""
        return self.status == "open" and self.booked_substitute_id is None

    @property
    def local_start(self) -> datetime:
        """The start in Swedish local time."""
        return self.start.astimezone(STOCKHOLM)

    @property
    def local_end(self) -> datetime:
        """The end in Swedish local time."""
        return self.end.astimezone(STOCKHOLM)

    @property
    def month(self) -> str:
        """The calendar month (``YYYY-MM``, Swedish time) the shift's hours count in."""
        return f"{self.local_start:%Y-%m}"

    def to_rules(self) -> Shift:
        """The shift as the rules see it."""
        return Shift(
            id=self.id,
            start=self.start,
            end=self.end,
            qualifications=self.qualifications,
            medication_delegation=self.medication_delegation,
            driving_licence=self.driving_licence,
            unit=self.unit,
        )

    def as_material(self) -> dict[str, Any]:
        """The shift for a review item or a result (local times, no personal data)."""
        return {
            "id": self.id,
            "code": self.code,
            "unit": self.unit,
            "unit_kind": self.unit_kind,
            "name": self.name,
            "start": self.local_start.isoformat(timespec="minutes"),
            "end": self.local_end.isoformat(timespec="minutes"),
            "hours": self.hours,
            "qualifications": list(self.qualifications),
            "medication_delegation": self.medication_delegation,
            "driving_licence": self.driving_licence,
            "reason": self.reason,
            "status": self.status,
            "deadline": self.deadline.astimezone(STOCKHOLM).isoformat(timespec="minutes") if self.deadline else None,
            "opened_at": self.opened_at.astimezone(STOCKHOLM).isoformat(timespec="minutes") if self.opened_at else None,
        }


@dataclass(frozen=True)
class SubstituteInfo:
    """A substitute (vikarie) in the staffing system's pool."""

    id: str
    first_name: str
    last_name: str
    phone: str | None
    personnummer: str | None
    qualifications: tuple[str, ...] = ()
    medication_delegation: bool = False
    driving_licence: bool = False
    available: tuple[Interval, ...] = ()
    bookings: tuple[Interval, ...] = ()
    booking_ids: tuple[str | None, ...] = ()
    hours_by_month: dict[str, float] = field(default_factory=dict)
    hours_this_month: float = 0.0
    max_hours_month: float | None = None
    priority_right: bool = False
    priority_right_until: date | None = None
    preferred_units: tuple[str, ...] = ()
    distance_km: float | None = None
    #: The person's dygnsbryt as the staffing system gives it (None: the settings' default).
    day_break: time | None = None
    overtime_hours: PeriodHours = field(default_factory=PeriodHours)
    extra_hours: PeriodHours = field(default_factory=PeriodHours)
    contract_hours_week: float | None = None

    @property
    def name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}".strip()

    def has_priority_on(self, day: date) -> bool:
        """True when the person's priority right (företrädesrätt) is in force on ``day``."""
        return self.priority_right and (self.priority_right_until is None or day <= self.priority_right_until)

    def hours_in(self, month: str) -> float:
        """Hours booked in ``month`` (``YYYY-MM``) as the staffing system gives them.

        Without per-month figures, ``hours_this_month`` is the month's and other months have none.
        """
        return self.hours_by_month.get(month, self.hours_this_month if not self.hours_by_month else 0.0)

    def to_rules(self, shift: ShiftInfo, *, without_booking: str | None = None) -> Substitute:
        """The person as the rules see them for ``shift``: that month's hours, priority on its day.

        ``without_booking`` leaves one booking out (to check a booking already made).
        """
        hours = self.hours_in(shift.month)
        bookings = self.bookings
        if without_booking is not None:
            kept = [b for b, bid in zip(self.bookings, self.booking_ids, strict=True) if bid != without_booking]
            removed = [b for b, bid in zip(self.bookings, self.booking_ids, strict=True) if bid == without_booking]
            bookings = tuple(kept)
            hours -= sum(float(b.duration.total_seconds()) / 3600 for b in removed if _month(b.start) == shift.month)
        return Substitute(
            id=self.id,
            qualifications=self.qualifications,
            medication_delegation=self.medication_delegation,
            driving_licence=self.driving_licence,
            available=self.available,
            bookings=bookings,
            hours_this_month=round(max(hours, 0.0), 4),
            max_hours_month=self.max_hours_month,
            priority_right=self.has_priority_on(shift.local_start.date()),
            preferred_units=self.preferred_units,
            distance_km=self.distance_km,
            day_break=self.day_break,
            overtime_hours=self.overtime_hours,
            extra_hours=self.extra_hours,
            contract_hours_week=self.contract_hours_week,
        )


def _month(moment: datetime) -> str:
    return f"{moment.astimezone(STOCKHOLM):%Y-%m}"


def _str(data: dict[str, Any], key: str, what: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise BadRecord(f"{what}.{key}: expected text")
    return value


def _bool(data: dict[str, Any], key: str) -> bool:
    return bool(data.get(key) or False)


def _terms(data: dict[str, Any], key: str, what: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRecord(f"{what}.{key}: expected a list of text")
    return tuple(value)


def _number(data: dict[str, Any], key: str, what: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecord(f"{what}.{key}: expected a number")
    return float(value)


def _day_break(data: dict[str, Any], what: str) -> time | None:
    value = data.get("day_break")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 5:
        raise BadRecord(f"{what}.day_break: expected a time of day like 07:00")
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise BadRecord(f"{what}.day_break: expected a time of day like 07:00") from None


def _period_hours(data: dict[str, Any], key: str, what: str) -> PeriodHours:
    value = data.get(key)
    if value is None:
        return PeriodHours()
    if not isinstance(value, dict) or set(value) - {"four_weeks", "month", "year"}:
        raise BadRecord(f"{what}.{key}: expected an object with four_weeks, month and year")
    hours = {k: _number(value, k, f"{what}.{key}") or 0.0 for k in ("four_weeks", "month", "year")}
    if any(h < 0 for h in hours.values()):
        raise BadRecord(f"{what}.{key}: hours cannot be negative")
    return PeriodHours(**hours)


def _intervals(data: dict[str, Any], key: str, what: str) -> tuple[tuple[Interval, ...], tuple[str | None, ...]]:
    raw = data.get(key) or []
    if not isinstance(raw, list):
        raise BadRecord(f"{what}.{key}: expected a list")
    intervals: list[Interval] = []
    ids: list[str | None] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise BadRecord(f"{what}.{key}[{i}]: expected an object")
        start = parse_time(entry.get("start"), f"{what}.{key}[{i}].start")
        end = parse_time(entry.get("end"), f"{what}.{key}[{i}].end")
        if end <= start:
            raise BadRecord(f"{what}.{key}[{i}]: ends before it starts")
        intervals.append(Interval(start, end))
        ids.append(entry.get("id") if isinstance(entry.get("id"), str) else None)
    return tuple(intervals), tuple(ids)


def parse_shift(data: object) -> ShiftInfo:
    """A shift record (``GET /shifts`` item or ``GET /shifts/{id}``) as a :class:`ShiftInfo`."""
    if not isinstance(data, dict):
        raise BadRecord("shift: expected an object")
    what = "shift"
    start = parse_time(data.get("start"), f"{what}.start")
    end = parse_time(data.get("end"), f"{what}.end")
    if end <= start:
        raise BadRecord(f"{what}: ends before it starts")
    booking = data.get("booking") if isinstance(data.get("booking"), dict) else None
    deadline = data.get("deadline")
    opened = data.get("opened_at")
    hours = _number(data, "hours", what)
    return ShiftInfo(
        id=_str(data, "id", what),
        code=_str(data, "code", what, required=False) or _str(data, "id", what),
        unit=_str(data, "unit", what, required=False),
        start=start,
        end=end,
        hours=hours if hours is not None else round((end - start).total_seconds() / 3600, 2),
        name=_str(data, "name", what, required=False),
        unit_kind=_str(data, "unit_kind", what, required=False),
        qualifications=_terms(data, "qualifications", what),
        medication_delegation=_bool(data, "medication_delegation"),
        driving_licence=_bool(data, "driving_licence"),
        reason=_str(data, "reason", what, required=False),
        status=_str(data, "status", what, required=False) or "open",
        booking_id=data.get("booking_id") if isinstance(data.get("booking_id"), str) else None,
        booked_substitute_id=(
            data.get("booked_substitute_id") if isinstance(data.get("booked_substitute_id"), str) else None
        ),
        booked_by=booking.get("booked_by") if booking and isinstance(booking.get("booked_by"), str) else None,
        deadline=parse_time(deadline, f"{what}.deadline") if deadline is not None else None,
        opened_at=parse_time(opened, f"{what}.opened_at") if opened is not None else None,
    )


def parse_substitute(data: object) -> SubstituteInfo:
    """A substitute record (``GET /substitutes`` item) as a :class:`SubstituteInfo`."""
    if not isinstance(data, dict):
        raise BadRecord("substitute: expected an object")
    what = "substitute"
    available, _ = _intervals(data, "available", what)
    bookings, booking_ids = _intervals(data, "bookings", what)
    by_month_raw = data.get("hours_by_month") or {}
    if not isinstance(by_month_raw, dict):
        raise BadRecord(f"{what}.hours_by_month: expected an object")
    by_month: dict[str, float] = {}
    for month, hours in by_month_raw.items():
        if isinstance(hours, bool) or not isinstance(hours, int | float):
            raise BadRecord(f"{what}.hours_by_month: expected numbers")
        by_month[str(month)] = float(hours)
    until_raw = data.get("priority_right_until")
    try:
        until = date.fromisoformat(until_raw) if isinstance(until_raw, str) else None
    except ValueError:
        raise BadRecord(f"{what}.priority_right_until: not a date") from None
    phone = data.get("phone")
    pnr = data.get("personnummer")
    return SubstituteInfo(
        id=_str(data, "id", what),
        first_name=_str(data, "first_name", what, required=False),
        last_name=_str(data, "last_name", what, required=False),
        phone=phone if isinstance(phone, str) and phone.strip() else None,
        personnummer=pnr if isinstance(pnr, str) and pnr else None,
        qualifications=_terms(data, "qualifications", what),
        medication_delegation=_bool(data, "medication_delegation"),
        driving_licence=_bool(data, "driving_licence"),
        available=available,
        bookings=bookings,
        booking_ids=booking_ids,
        hours_by_month=by_month,
        hours_this_month=_number(data, "hours_this_month", what) or 0.0,
        max_hours_month=_number(data, "max_hours_month", what),
        priority_right=_bool(data, "priority_right"),
        priority_right_until=until,
        preferred_units=_terms(data, "preferred_units", what),
        distance_km=_number(data, "distance_km", what),
        day_break=_day_break(data, what),
        overtime_hours=_period_hours(data, "overtime_hours", what),
        extra_hours=_period_hours(data, "extra_hours", what),
        contract_hours_week=_number(data, "contract_hours_week", what),
    )
