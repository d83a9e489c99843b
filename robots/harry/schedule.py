"""Pure schedule logic for HaRry: rows, content hash, references, form values, comparison.

No I/O here. A schedule is what a manager approved in the scheduling system for one
employee and one period (a month); HaRry registers it in the payroll system, where the
registration form has two rows per day, and compares what the payroll system shows with
what was approved, field by field.

The content hash is the SHA-256 of the rows' canonical JSON (sorted by date and start,
keys sorted), the same definition the scheduling system uses for its ``content_hash``,
so a schedule read from the API and the same schedule read from a CSV export get the
same work-item reference and are registered once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

#: Rows the payroll system's form has per day (a split shift needs both).
ROWS_PER_DAY = 2
#: The compared fields of a row, in the order people read them.
FIELDS = ("start", "end", "break_minutes", "activity_code")
#: The payroll form's label of each field: ``"<label> <date> rad <n>"``.
FORM_LABELS = {
    "start": "Starttid",
    "end": "Sluttid",
    "break_minutes": "Rast (minuter)",
    "activity_code": "Aktivitetskod",
}
#: How a field is called in a Swedish message.
FIELD_NAMES_SV = {
    "start": "starttid",
    "end": "sluttid",
    "break_minutes": "rast",
    "activity_code": "aktivitetskod",
    "row": "rad",
}

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, order=True)
class Row:
    """One scheduled (or registered) stretch of work on one day."""

    day: date
    start: str
    end: str
    break_minutes: int
    activity_code: str

    def as_dict(self) -> dict[str, Any]:
        """The scheduling system's JSON form (also the canonical form for the content hash)."""
        return {
            "date": self.day.isoformat(),
            "start": self.start,
            "end": self.end,
            "break_minutes": self.break_minutes,
            "activity_code": self.activity_code,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Row:
        """From the JSON form (``date``, ``start``, ``end``, ``break_minutes``, ``activity_code``)."""
        return cls(
            date.fromisoformat(str(data["date"])),
            str(data["start"]),
            str(data["end"]),
            int(data["break_minutes"]),
            str(data["activity_code"]),
        )

    def value(self, name: str) -> str:
        """One field as the payroll form shows it (text)."""
        return str(getattr(self, name))

    def label(self) -> str:
        """The row as people write it: ``2026-12-01 07:00–16:00``."""
        return f"{self.day.isoformat()} {self.start}–{self.end}"


def canonical(rows: Iterable[Row]) -> list[Row]:
    """Rows in canonical order: by date, then start and end."""
    return sorted(rows, key=lambda r: (r.day, r.start, r.end, r.break_minutes, r.activity_code))


def content_hash(rows: Iterable[Row]) -> str:
    """SHA-256 of the canonical JSON of the rows (the scheduling system's ``content_hash``)."""
    payload = [r.as_dict() for r in canonical(rows)]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def reference(employee_id: str, period: str, version: int, digest: str) -> str:
    """The work-item reference: employee, period, version and content hash.

    An unchanged schedule keeps its reference (collected again = no new item); a changed one
    gets a new hash and so a new item. The version is part of it so that a schedule changed
    back to an earlier content (A → B → A) is registered again rather than taken as done.
    """
    return f"{employee_id}/{period}/v{version}/{digest[:16]}"


def period_bounds(period: str) -> tuple[date, date]:
    """First and last day of a month ``YYYY-MM``; ValueError when it is not one."""
    found = _PERIOD.match(period)
    if not found:
        raise ValueError(f"not a period (YYYY-MM): {period!r}")
    first = date(int(found.group(1)), int(found.group(2)), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def is_time(value: str) -> bool:
    """Whether ``value`` is a time of day as ``HH:MM``."""
    return bool(_TIME.match(value))


def days(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class Schedule:
    """An approved schedule for one employee and one period, from the API or a CSV export."""

    employee_id: str
    period: str
    first: date
    last: date
    version: int
    schedule_id: str
    rows: tuple[Row, ...]
    source: str  # "api" or "csv:<file name>"
    approved_at: str | None = None
    digest: str = field(default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(canonical(self.rows)))
        if not self.digest:
            object.__setattr__(self, "digest", content_hash(self.rows))

    @property
    def reference(self) -> str:
        """The work-item reference of this schedule version."""
        return reference(self.employee_id, self.period, self.version, self.digest)

    def payload(self) -> dict[str, Any]:
        """The work item's payload (no personnummer: that is the item's subject)."""
        return {
            "kind": "schedule",
            "employee_id": self.employee_id,
            "period": self.period,
            "period_from": self.first.isoformat(),
            "period_to": self.last.isoformat(),
            "version": self.version,
            "schedule_id": self.schedule_id,
            "content_hash": self.digest,
            "source": self.source,
            "approved_at": self.approved_at,
            "rows": [r.as_dict() for r in canonical(self.rows)],
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Schedule:
        """From a work item's payload (or an API schedule, which has the same keys)."""
        first = date.fromisoformat(str(data["period_from"]))
        last = date.fromisoformat(str(data["period_to"]))
        return cls(
            str(data["employee_id"]),
            str(data["period"]),
            first,
            last,
            int(data["version"]),
            str(data["schedule_id"]),
            tuple(Row.from_dict(r) for r in data.get("rows") or []),
            str(data.get("source") or "api"),
            data.get("approved_at"),
            str(data.get("content_hash") or ""),
        )

    def what(self) -> str:
        """A short, personnummer-free description for messages and the audit log."""
        return f"schemat för {self.employee_id}, period {self.period} (version {self.version})"


def problems(schedule: Schedule) -> list[str]:
    """Why the payroll form cannot hold this schedule as it stands (Swedish; empty when it can)."""
    found: list[str] = []
    per_day: dict[date, int] = {}
    for r in canonical(schedule.rows):
        if not schedule.first <= r.day <= schedule.last:
            found.append(f"{r.day.isoformat()} ligger utanför perioden {schedule.period}.")
            continue
        per_day[r.day] = per_day.get(r.day, 0) + 1
        for name in ("start", "end"):
            if not is_time(r.value(name)):
                found.append(f"{r.day.isoformat()}: ogiltig {FIELD_NAMES_SV[name]} (ange tt:mm).")
        if r.break_minutes < 0:
            found.append(f"{r.day.isoformat()}: rasten kan inte vara negativ.")
    for day, count in sorted(per_day.items()):
        if count > ROWS_PER_DAY:
            found.append(f"{day.isoformat()} har {count} rader; PersonalLön tar emot högst {ROWS_PER_DAY} per dag.")
    return found


def form_label(name: str, day: date, slot: int) -> str:
    """The payroll form's label of field ``name`` on ``day``, row ``slot`` (1 or 2)."""
    return f"{FORM_LABELS[name]} {day.isoformat()} rad {slot}"


def form_values(schedule: Schedule) -> dict[str, str]:
    """Every field of the period's form, by label: the schedule's values, blank where there is no row."""
    by_day: dict[date, list[Row]] = {}
    for r in canonical(schedule.rows):
        by_day.setdefault(r.day, []).append(r)
    values: dict[str, str] = {}
    for day in days(schedule.first, schedule.last):
        rows = by_day.get(day, [])
        for slot in range(1, ROWS_PER_DAY + 1):
            row = rows[slot - 1] if slot <= len(rows) else None
            for name in FIELDS:
                values[form_label(name, day, slot)] = row.value(name) if row is not None else ""
    return values


def changed_fields(wanted: Mapping[str, str], current: Mapping[str, str]) -> dict[str, str]:
    """The fields whose current value differs from the wanted one (a missing field counts as blank)."""
    return {label: value for label, value in wanted.items() if (current.get(label) or "").strip() != value}


@dataclass(frozen=True)
class Difference:
    """One field that differs between the approved schedule and what the payroll system shows."""

    day: date
    slot: int
    field: str  # one of FIELDS, or "row" when the whole row is missing on one side
    expected: str | None
    shown: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the review material."""
        return {
            "date": self.day.isoformat(),
            "row": self.slot,
            "field": self.field,
            "expected": self.expected,
            "shown": self.shown,
        }

    def describe(self) -> str:
        """In Swedish, for a summary line."""
        what = FIELD_NAMES_SV.get(self.field, self.field)
        return (
            f"{self.day.isoformat()} rad {self.slot}, {what}: godkänt {self.expected or '–'}, "
            f"i PersonalLön {self.shown or '–'}"
        )


def _by_day(rows: Iterable[Row]) -> dict[date, list[Row]]:
    grouped: dict[date, list[Row]] = {}
    for r in canonical(rows):
        grouped.setdefault(r.day, []).append(r)
    return grouped


def compare(expected: Sequence[Row], shown: Sequence[Row]) -> list[Difference]:
    """Field-by-field differences between approved and registered rows (empty = identical)."""
    want, have = _by_day(expected), _by_day(shown)
    found: list[Difference] = []
    for day in sorted(set(want) | set(have)):
        a, b = want.get(day, []), have.get(day, [])
        for slot in range(1, max(len(a), len(b)) + 1):
            x = a[slot - 1] if slot <= len(a) else None
            y = b[slot - 1] if slot <= len(b) else None
            if x is None or y is None:
                found.append(Difference(day, slot, "row", x.label() if x else None, y.label() if y else None))
                continue
            for name in FIELDS:
                if x.value(name) != y.value(name):
                    found.append(Difference(day, slot, name, x.value(name), y.value(name)))
    return found


def side_by_side(expected: Sequence[Row], shown: Sequence[Row]) -> list[dict[str, Any]]:
    """One line per day and row with the approved and the registered values and what differs (for HR)."""
    want, have = _by_day(expected), _by_day(shown)
    lines: list[dict[str, Any]] = []
    for day in sorted(set(want) | set(have)):
        a, b = want.get(day, []), have.get(day, [])
        for slot in range(1, max(len(a), len(b)) + 1):
            x = a[slot - 1] if slot <= len(a) else None
            y = b[slot - 1] if slot <= len(b) else None
            differs = list(FIELDS) if x is None or y is None else [n for n in FIELDS if x.value(n) != y.value(n)]
            lines.append(
                {
                    "date": day.isoformat(),
                    "row": slot,
                    "expected": x.as_dict() if x else None,
                    "shown": y.as_dict() if y else None,
                    "differs": differs,
                }
            )
    return lines


def summary_of(differences: Sequence[Difference], limit: int = 3) -> str:
    """A one-line Swedish summary of the differences."""
    if not differences:
        return "Inga skillnader."
    shown = "; ".join(d.describe() for d in differences[:limit])
    more = f" (och {len(differences) - limit} till)" if len(differences) > limit else ""
    return f"{len(differences)} skillnad(er): {shown}{more}."
