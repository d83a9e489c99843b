"""The JSON contract of ``kollega bosse match FILE``: input models and the pure ``match``.

Input (times are Swedish local time, naive ISO strings such as ``"2026-12-01T07:00"``)::

    {"shift": {"id": "s1", "start": "2026-12-01T07:00", "end": "2026-12-01T16:00",
               "qualifications": ["undersköterska"], "medication_delegation": true,
               "driving_licence": false, "unit": "Solgården"},
     "substitutes": [{"id": "v1", "qualifications": ["undersköterska"],
                      "medication_delegation": true, "driving_licence": true,
                      "available": [{"start": "2026-12-01T06:00", "end": "2026-12-01T18:00"}],
                      "bookings": [{"start": "2026-11-30T13:00", "end": "2026-11-30T21:30"}],
                      "hours_this_month": 120, "max_hours_month": 165, "priority_right": false,
                      "preferred_units": ["Solgården"], "distance_km": 4.2}]}

Output: ``{"eligible": [{"id", "rank", "why"}], "ineligible": [{"id", "reasons": [...]}]}``,
eligible ones best first, ineligible ones in input order.

Unknown keys are refused, so a misspelt key is an error rather than a silently ignored
rule. Optional keys: the shift's ``qualifications``, ``medication_delegation``,
``driving_licence`` and ``unit``; a substitute's ``qualifications``, the two booleans,
``available``, ``bookings``, ``max_hours_month`` (default: the ``BosseRules`` cap),
``priority_right``, ``preferred_units``, ``distance_km``, ``day_break`` (the person's dygnsbryt,
``"HH:MM"``; default from the settings), ``overtime_hours`` and ``extra_hours`` (overtime and
mertid already worked that the bookings do not show: ``{"four_weeks": …, "month": …,
"year": …}``, each optional, for the periods the shift starts in) and ``contract_hours_week``
(a part-timer's agreed hours per week: hours beyond it up to full time are mertid). Every
ineligible substitute's reasons name the rule and its source. A time may carry an explicit
UTC offset (``"2026-10-25T02:30+01:00"``) to say which of the repeated autumn hours it means.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Annotated, Any, TypedDict

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from robots.bosse.ranking import rank_candidates
from robots.bosse.rules import (
    DEFAULT_RULES,
    BosseRules,
    Interval,
    PeriodHours,
    Shift,
    Substitute,
    check_eligibility,
    local_to_utc,
)

__all__ = [
    "DayBreak",
    "EligibleEntry",
    "IneligibleEntry",
    "IntervalIn",
    "MatchInput",
    "MatchResult",
    "PeriodHoursIn",
    "ShiftIn",
    "SubstituteIn",
    "evaluate",
    "format_validation_error",
    "match",
    "match_json",
    "parse_match_input",
]

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")

#: Longest piece of a bad value quoted back in an error message.
_MAX_SHOWN = 40


def _parse_time(value: object) -> datetime:
    """Read a contract timestamp: naive = Swedish local time; returns an aware UTC instant."""
    if not isinstance(value, str):
        # ValueError, not TypeError: pydantic turns only ValueError into a field error.
        raise ValueError("expected a time as a string like '2026-12-01T07:00'")
    if not _TIMESTAMP.fullmatch(value):
        shown = value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "…"
        raise ValueError(f"expected a time like '2026-12-01T07:00', got {shown!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid date and time") from None
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    return local_to_utc(parsed)


#: A contract timestamp, validated to an aware UTC datetime.
LocalTime = Annotated[datetime, PlainValidator(_parse_time)]
_Id = Annotated[StrictStr, Field(min_length=1)]
_Term = Annotated[StrictStr, Field(min_length=1)]
_Hours = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
_Cap = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
_Km = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


def _end_after_start(end: datetime, info: ValidationInfo) -> datetime:
    # Validated on ``end`` (not on the model) so the error path names the field.
    start = info.data.get("start")
    if isinstance(start, datetime) and end <= start:
        raise ValueError("end must be after start")
    return end


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntervalIn(_Strict):
    """A period of availability or a booking, in Swedish local time."""

    start: LocalTime
    end: LocalTime

    _check_end = field_validator("end")(_end_after_start)

    def to_domain(self) -> Interval:
        """The period as a rules :class:`Interval`."""
        return Interval(self.start, self.end)


class ShiftIn(_Strict):
    """The open shift and what it requires."""

    id: _Id
    start: LocalTime
    end: LocalTime
    qualifications: list[_Term] = []
    medication_delegation: StrictBool = False
    driving_licence: StrictBool = False
    unit: _Term | None = None

    _check_end = field_validator("end")(_end_after_start)

    def to_domain(self) -> Shift:
        """The shift as a rules :class:`Shift`."""
        return Shift(
            id=self.id,
            start=self.start,
            end=self.end,
            qualifications=tuple(self.qualifications),
            medication_delegation=self.medication_delegation,
            driving_licence=self.driving_licence,
            unit=self.unit,
        )


def _parse_day_break(value: object) -> time:
    if not isinstance(value, str) or not re.fullmatch(r"\d{2}:\d{2}", value):
        raise ValueError("expected a time of day like '07:00'")
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid time of day") from None


#: A dygnsbryt, ``"HH:MM"`` Swedish time.
DayBreak = Annotated[time, PlainValidator(_parse_day_break)]


class PeriodHoursIn(_Strict):
    """Hours already worked in the current 4-week period, month and year that the bookings do not show."""

    four_weeks: _Hours = 0.0
    month: _Hours = 0.0
    year: _Hours = 0.0

    def to_domain(self) -> PeriodHours:
        """The hours as the rules' :class:`PeriodHours`."""
        return PeriodHours(four_weeks=self.four_weeks, month=self.month, year=self.year)


class SubstituteIn(_Strict):
    """A substitute with competences, stated availability, bookings and this month's hours."""

    id: _Id
    qualifications: list[_Term] = []
    medication_delegation: StrictBool = False
    driving_licence: StrictBool = False
    available: list[IntervalIn] = []
    bookings: list[IntervalIn] = []
    hours_this_month: _Hours
    max_hours_month: _Cap | None = None
    priority_right: StrictBool = False
    preferred_units: list[_Term] = []
    distance_km: _Km | None = None
    day_break: DayBreak | None = None
    overtime_hours: PeriodHoursIn = PeriodHoursIn()
    extra_hours: PeriodHoursIn = PeriodHoursIn()
    contract_hours_week: Annotated[float, Field(strict=True, ge=0, le=168, allow_inf_nan=False)] | None = None

    def to_domain(self) -> Substitute:
        """The substitute as a rules :class:`Substitute`."""
        return Substitute(
            id=self.id,
            qualifications=tuple(self.qualifications),
            medication_delegation=self.medication_delegation,
            driving_licence=self.driving_licence,
            available=tuple(a.to_domain() for a in self.available),
            bookings=tuple(b.to_domain() for b in self.bookings),
            hours_this_month=self.hours_this_month,
            max_hours_month=self.max_hours_month,
            priority_right=self.priority_right,
            preferred_units=tuple(self.preferred_units),
            distance_km=self.distance_km,
            day_break=self.day_break,
            overtime_hours=self.overtime_hours.to_domain(),
            extra_hours=self.extra_hours.to_domain(),
            contract_hours_week=self.contract_hours_week,
        )


class MatchInput(_Strict):
    """The whole input of ``kollega bosse match``: one shift and the substitutes to consider."""

    shift: ShiftIn
    substitutes: list[SubstituteIn]

    @field_validator("substitutes")
    @classmethod
    def _unique_ids(cls, substitutes: list[SubstituteIn]) -> list[SubstituteIn]:
        seen: set[str] = set()
        for s in substitutes:
            if s.id in seen:
                raise ValueError(f"duplicate substitute id {s.id!r}")
            seen.add(s.id)
        return substitutes


class EligibleEntry(TypedDict):
    """An eligible substitute in the output, ``rank`` 1 first."""

    id: str
    rank: int
    why: str


class IneligibleEntry(TypedDict):
    """An ineligible substitute in the output with every failed rule's reason."""

    id: str
    reasons: list[str]


class MatchResult(TypedDict):
    """The output of ``kollega bosse match``."""

    eligible: list[EligibleEntry]
    ineligible: list[IneligibleEntry]


def parse_match_input(payload: object) -> MatchInput:
    """Validate a decoded JSON payload; raises ``pydantic.ValidationError`` on bad input."""
    return MatchInput.model_validate(payload)


def evaluate(data: MatchInput, rules: BosseRules = DEFAULT_RULES) -> MatchResult:
    """Check every substitute against the rules and rank the eligible ones."""
    shift = data.shift.to_domain()
    eligible: list[Substitute] = []
    ineligible: list[IneligibleEntry] = []
    for sub in (s.to_domain() for s in data.substitutes):
        violations = check_eligibility(shift, sub, rules)
        if violations:
            ineligible.append({"id": sub.id, "reasons": [v.reason for v in violations]})
        else:
            eligible.append(sub)
    ranked: list[EligibleEntry] = [{"id": c.id, "rank": c.rank, "why": c.why} for c in rank_candidates(shift, eligible)]
    return {"eligible": ranked, "ineligible": ineligible}


def match(payload: object, rules: BosseRules = DEFAULT_RULES) -> MatchResult:
    """The contract as a pure function: decoded JSON in, result dict out.

    Raises ``pydantic.ValidationError`` on bad input; see :func:`format_validation_error`.
    """
    return evaluate(parse_match_input(payload), rules)


def match_json(text: str | bytes, rules: BosseRules = DEFAULT_RULES) -> MatchResult:
    """Like :func:`match` but from JSON text, so malformed JSON is a ``ValidationError`` too."""
    return evaluate(MatchInput.model_validate_json(text), rules)


def format_validation_error(exc: ValidationError) -> str:
    """One English line naming the first bad field, e.g. ``invalid input at shift.end: …``."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return "invalid input"
    first = errors[0]
    where = _format_loc(first["loc"])
    more = len(errors) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    line = (
        f"invalid input at {where}: {_describe(first)}{suffix}"
        if where
        else f"invalid input: {_describe(first)}{suffix}"
    )
    return " ".join(line.split())


def _format_loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _describe(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key (not part of the contract)"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "expected a JSON object"
    if kind == "list_type":
        return "expected a JSON array"
    if kind == "value_error":
        ctx: dict[str, Any] = dict(error.get("ctx") or {})
        return str(ctx.get("error", error["msg"]))
    message = error["msg"]
    return message[:1].lower() + message[1:]
