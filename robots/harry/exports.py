"""Reading the scheduling system's CSV exports into schedules (pure: bytes in, schedules out).

An export is UTF-8, ``;``-separated, one line per schedule row::

    employee_id;personnummer;schedule_id;version;period;date;start;end;break_minutes;activity_code;approved_at

Lines are validated one by one (:class:`ExportRow`); they are grouped into schedules by
employee, period and version. A schedule with any invalid line is never registered in
part: it becomes a :class:`BrokenSchedule` that a person sees, with every problem named
by line and column (never by value: the values may be personal data).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.files import FileFormatError, RowError, decode_text, sniff_delimiter, validate_rows
from robots.harry.schedule import Row, Schedule, period_bounds

TIME_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"
#: Columns an export must have (``personnummer`` and ``approved_at`` are optional).
REQUIRED_COLUMNS = (
    "employee_id",
    "schedule_id",
    "version",
    "period",
    "date",
    "start",
    "end",
    "break_minutes",
    "activity_code",
)
#: Columns naming the schedule a line belongs to (used to group lines, even invalid ones).
_KEY_COLUMNS = ("employee_id", "period", "version", "schedule_id")


class ExportRow(BaseModel):
    """One line of a schedule export."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)

    employee_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="The employee number (anställningsnummer).")
    personnummer: str | None = Field(default=None, pattern=r"^\d{12}$", description="12 digits; the item's subject.")
    schedule_id: str = Field(min_length=1, max_length=100, description="The scheduling system's id of the version.")
    version: int = Field(ge=1, description="Version of the approved schedule (a change is approved as a new one).")
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="The month, YYYY-MM.")
    day: Date = Field(alias="date", description="The day of the row, YYYY-MM-DD, inside the period.")
    start: str = Field(pattern=TIME_PATTERN, description="Start time, HH:MM.")
    end: str = Field(pattern=TIME_PATTERN, description="End time, HH:MM.")
    break_minutes: int = Field(ge=0, le=720, description="Break in whole minutes.")
    activity_code: str = Field(pattern=r"^[A-ZÅÄÖ0-9]{1,10}$", description="Activity code (ARB, UTB …).")
    approved_at: datetime | None = Field(default=None, description="When the manager approved the schedule.")

    @model_validator(mode="after")
    def _inside_period(self) -> ExportRow:
        first, last = period_bounds(self.period)
        if not first <= self.day <= last:
            raise ValueError("the date is outside the period")
        return self

    def row(self) -> Row:
        """The schedule row."""
        return Row(self.day, self.start, self.end, self.break_minutes, self.activity_code)


@dataclass(frozen=True)
class BrokenSchedule:
    """A schedule in an export with invalid lines: never registered, shown to a person instead."""

    employee_id: str
    period: str
    version: str
    file: str
    file_sha256: str
    problems: tuple[str, ...]
    subject: str | None = None

    @property
    def reference(self) -> str:
        """One item per broken schedule per file content."""
        return f"{self.employee_id or 'okänd'}/{self.period or 'okänd'}/v{self.version or '?'}/ogiltig-{self.file_sha256[:12]}"

    def payload(self) -> dict[str, Any]:
        """The work item's payload."""
        return {
            "kind": "invalid",
            "employee_id": self.employee_id,
            "period": self.period,
            "version": self.version,
            "file": self.file,
            "problems": list(self.problems),
        }


@dataclass
class ExportContents:
    """What one export file holds: valid schedules (with their subjects) and broken ones."""

    file: str
    sha256: str
    schedules: list[Schedule] = field(default_factory=list)
    subjects: dict[str, str] = field(default_factory=dict)  # reference → personnummer
    broken: list[BrokenSchedule] = field(default_factory=list)
    superseded: int = 0  # older versions of a schedule that a newer version in the same file replaces


def _problem(error: RowError) -> str:
    column = f", kolumn {error.column}" if error.column else ""
    if error.row == 1:
        return f"rubrikraden{column}: kolumnen saknas"
    return f"rad {error.row}{column}: ogiltigt eller saknat värde"


def read_export(data: bytes, file: str) -> ExportContents:
    """Parse and validate one export; a file that cannot be read at all raises FileFormatError."""
    digest = hashlib.sha256(data).hexdigest()
    text = decode_text(data, file)
    delimiter = sniff_delimiter(text)
    try:
        parsed = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise FileFormatError(f"{file} is not valid CSV: {exc}", file=file) from exc
    if not parsed:
        raise FileFormatError(f"{file} is empty", file=file)
    header = [h.strip() for h in parsed[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise FileFormatError(f"{file}: the header lacks the column(s) {', '.join(missing)}", file=file)
    lines = list(enumerate(parsed[1:], start=2))
    index = {name: header.index(name) for name in (*_KEY_COLUMNS, "personnummer") if name in header}

    def cell(cells: list[str], name: str) -> str:
        i = index.get(name)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    key_of = {n: tuple(cell(cells, c) for c in _KEY_COLUMNS) for n, cells in lines}
    subject_of = {n: cell(cells, "personnummer") for n, cells in lines}
    table = validate_rows(ExportRow, header, lines, file=file, max_errors=10_000)

    contents = ExportContents(file, digest)
    valid: dict[tuple[str, ...], list[ExportRow]] = {}
    for number, model in zip(table.row_numbers, table.rows, strict=True):
        valid.setdefault(key_of[number], []).append(model)
    errors: dict[tuple[str, ...], list[RowError]] = {}
    for error in table.errors:
        errors.setdefault(key_of.get(error.row, ("", "", "", "")), []).append(error)
    subjects = {key_of[n]: subject_of[n] for n, _ in lines if subject_of[n]}

    newest: dict[tuple[str, str], int] = {}
    for key in {*valid, *errors}:
        employee, period, version, _sid = key
        if version.isdigit():
            newest[(employee, period)] = max(newest.get((employee, period), 0), int(version))
    for key in sorted({*valid, *errors}):
        employee, period, version, schedule_id = key
        if version.isdigit() and int(version) < newest.get((employee, period), 0):
            contents.superseded += 1
            continue
        if key in errors:
            contents.broken.append(
                BrokenSchedule(
                    employee,
                    period,
                    version,
                    file,
                    digest,
                    tuple(_problem(e) for e in errors[key]),
                    subjects.get(key) or None,
                )
            )
            continue
        models = valid[key]
        first, last = period_bounds(period)
        approved = next((m.approved_at for m in models if m.approved_at is not None), None)
        schedule = Schedule(
            employee,
            period,
            first,
            last,
            int(version),
            schedule_id,
            tuple(m.row() for m in models),
            f"csv:{file}",
            approved.isoformat(timespec="seconds") if approved else None,
        )
        contents.schedules.append(schedule)
        personnummer = next((m.personnummer for m in models if m.personnummer), None)
        if personnummer:
            contents.subjects[schedule.reference] = personnummer
    return contents
