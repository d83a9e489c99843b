"""c. The staffing system (bemanningssystem): open shifts, substitutes, bookings.

Open shifts over the coming days (unit, start, end, required qualifications, medication
delegation, driving licence, a short code used in SMS offers) and the pool of substitutes
(qualifications, delegations, driving licence, stated availability, existing bookings,
hours booked per month, priority rights, preferences). A booking is checked for conflicts
here, as a real system does: a shift already booked by someone else, or a substitute
already booked at an overlapping time, answers 409. Booking the same person on the same
shift again is a replay (200), so a retried booking is harmless.

How each substitute answers SMS offers (eager, selective, reluctant, late, silent) is
generated here and kept in ``truth``; the SMS gateway (:mod:`sandbox.sms`) acts it out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sandbox.common import (
    IdempotencyStore,
    error,
    idempotency_key,
    local,
    month_key,
    not_found,
    paginate,
    replay_response,
)
from sandbox.geography import geography
from sandbox.people import PersonFactory, reserved_phone_numbers
from sandbox.state import TZ, SandboxOptions, SandboxState, get_state

__all__ = ["BEHAVIOURS", "QUALIFICATIONS", "StaffingStore", "generate_staffing", "router"]

SYSTEM = "staffing"

QUALIFICATIONS = ("undersköterska", "vårdbiträde", "stödassistent", "sjuksköterska")
#: Shift templates: (name, start hh:mm, length in hours)
_TEMPLATES = (
    ("dag", (7, 0), 9.0),
    ("förmiddag", (7, 0), 6.0),
    ("kväll", (13, 30), 8.0),
    ("sen kväll", (15, 0), 7.0),
    ("natt", (21, 15), 10.0),
)
_REASONS = ("sjukfrånvaro", "semester", "vakans", "utbildning", "vård av barn")
#: Reply behaviour → (share of substitutes, P(yes), delay range in minutes; None = never answers)
BEHAVIOURS: dict[str, tuple[float, float, tuple[int, int] | None]] = {
    "eager": (0.25, 0.85, (2, 15)),
    "selective": (0.35, 0.45, (5, 60)),
    "reluctant": (0.20, 0.10, (10, 120)),
    "late": (0.10, 0.70, (180, 360)),
    "silent": (0.10, 0.0, None),
}


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="minutes")


def _hours(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() / 3600, 2)


def _overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def _shift_times(day: date, template: tuple[str, tuple[int, int], float]) -> tuple[datetime, datetime]:
    start = local(day, *template[1])
    return start, start + timedelta(hours=template[2])  # wall-clock arithmetic, as a roster is written


def _qualifications_for(rng: random.Random, kind: str) -> list[str]:
    if kind == "LSS":
        return ["stödassistent"]
    if rng.random() < 0.05:
        return ["sjuksköterska"]
    return ["undersköterska"] if rng.random() < 0.7 else ["vårdbiträde"]


def generate_staffing(
    rng: random.Random, people: PersonFactory, options: SandboxOptions
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """(substitutes, open shifts, reply behaviour per substitute id)."""
    today = options.today
    units = geography(options.tenant).units
    horizon = [today + timedelta(days=d) for d in range(1, options.staffing_horizon_days + 1)]
    shifts: list[dict[str, Any]] = []
    for i in range(options.open_shifts):
        day = horizon[i * len(horizon) // max(1, options.open_shifts)]
        unit, kind, area = rng.choice(units)
        template = rng.choice(_TEMPLATES)
        start, end = _shift_times(day, template)
        quals = _qualifications_for(rng, kind)
        shifts.append(
            {
                "id": f"PASS-{day:%Y%m%d}-{i + 1:03d}",
                "code": f"P{101 + i}",
                "unit": unit,
                "unit_kind": kind,
                "area": area,
                "name": template[0],
                "start": _iso(start),
                "end": _iso(end),
                "hours": _hours(start, end),
                "qualifications": quals,
                "medication_delegation": quals[0] in ("undersköterska", "sjuksköterska") and rng.random() < 0.5,
                "driving_licence": kind == "hemtjänst" and rng.random() < 0.8,
                "reason": rng.choice(_REASONS),
                "status": "open",
                "booking_id": None,
                "booked_substitute_id": None,
                "deadline": _iso(start - timedelta(hours=2)),
                # When the absence was reported and the shift opened: yesterday, office hours (no rng
                # draw, so the rest of the data stays as it was for a seed).
                "opened_at": _iso(local(today - timedelta(days=1), 8 + i % 9, (i * 7) % 60)),
            }
        )
    phones = reserved_phone_numbers()
    kinds = list(BEHAVIOURS)
    weights = [BEHAVIOURS[k][0] for k in kinds]
    substitutes: list[dict[str, Any]] = []
    behaviour: dict[str, str] = {}
    month_start = today.replace(day=1)
    for i in range(options.substitutes):
        person = people.person(19, 68)
        sub_id = f"V{i + 1:03d}"
        roll = rng.random()
        quals = (
            ["undersköterska", "vårdbiträde"]
            if roll < 0.55
            else ["vårdbiträde"]
            if roll < 0.8
            else ["stödassistent"]
            if roll < 0.92
            else ["sjuksköterska", "undersköterska", "vårdbiträde"]
        )
        if rng.random() < 0.15 and "stödassistent" not in quals:
            quals.append("stödassistent")
        sub: dict[str, Any] = {
            "id": sub_id,
            "personnummer": person.personnummer,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "phone": phones[i],
            "qualifications": quals,
            "medication_delegation": "undersköterska" in quals and rng.random() < 0.6,
            "driving_licence": rng.random() < 0.75,
            "employment_form": "särskild visstidsanställning" if rng.random() < 0.3 else "timanställning",
            "priority_right": rng.random() < 0.12,
            "max_hours_month": 165,
            "preferred_units": sorted(u[0] for u in rng.sample(units, rng.randint(0, 3))),
            "home_area": rng.choice(units)[2],
            "distance_km": round(rng.uniform(0.5, 35.0), 1),
            "available": [],
            "bookings": [],
            "hours_by_month": {},
        }
        sub["priority_right_until"] = (
            (today + timedelta(days=rng.randint(20, 270))).isoformat() if sub["priority_right"] else None
        )
        # past bookings this month, then future ones in the horizon
        target = rng.choice((0, 20, 40, 60, 80, 100, 120, 140, 150, 158)) * rng.uniform(0.9, 1.0)
        day = month_start
        while day < today and _month_hours(sub, month_key(today)) < target:
            template = rng.choice(_TEMPLATES)
            if rng.random() < 0.85 and _month_hours(sub, month_key(today)) + template[2] <= max(target, 10):
                _add_booking(sub, rng, day, rng.choice(units)[0], template, past=True)
            day += timedelta(days=1)
        for day in horizon:
            roll = rng.random()
            if roll < 0.2:
                _add_booking(sub, rng, day - timedelta(days=1), rng.choice(units)[0], _TEMPLATES[2], past=False)
            if rng.random() < rng.uniform(0.3, 0.8):
                start_h, length = rng.choice(((6, 16), (6, 11), (13, 10), (20, 12)))
                start = local(day, start_h)
                sub["available"].append({"start": _iso(start), "end": _iso(start + timedelta(hours=length))})
        substitutes.append(sub)
        behaviour[sub_id] = rng.choices(kinds, weights)[0]
    return substitutes, shifts, behaviour


def _month_hours(sub: dict[str, Any], month: str) -> float:
    return float(sub["hours_by_month"].get(month, 0.0))


def _add_booking(
    sub: dict[str, Any],
    rng: random.Random,
    day: date,
    unit: str,
    template: tuple[str, tuple[int, int], float],
    past: bool,
) -> None:
    start, end = _shift_times(day, template)
    for b in sub["bookings"]:
        if _overlaps(start, end, datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"])):
            return
    booking_id = f"BOK-{sub['id']}-{len(sub['bookings']) + 1:03d}"
    sub["bookings"].append(
        {
            "id": booking_id,
            "shift_id": None,
            "unit": unit,
            "start": _iso(start),
            "end": _iso(end),
            "hours": _hours(start, end),
        }
    )
    _count_hours(sub, start, _hours(start, end))


def _count_hours(sub: dict[str, Any], start: datetime, hours: float) -> None:
    key = month_key(start.date())
    sub["hours_by_month"][key] = round(sub["hours_by_month"].get(key, 0.0) + hours, 2)


# --- store and API -------------------------------------------------------------------------------


@dataclass
class StaffingStore:
    """Bookings made through the API and the idempotency of booking requests."""

    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)
    conflicts: int = 0
    idempotency: IdempotencyStore = field(default_factory=IdempotencyStore)


def _store(state: SandboxState) -> StaffingStore:
    return state.store(SYSTEM, StaffingStore)


def _shift_index(state: SandboxState) -> dict[str, dict[str, Any]]:
    return state.store("staffing.shifts", lambda: {s["id"]: s for s in state.data.shifts})


def _sub_index(state: SandboxState) -> dict[str, dict[str, Any]]:
    return state.store("staffing.subs", lambda: {s["id"]: s for s in state.data.substitutes})


def _public_sub(sub: dict[str, Any], today: date) -> dict[str, Any]:
    return {**sub, "hours_this_month": _month_hours(sub, month_key(today))}


router = APIRouter(prefix="/staffing", tags=["staffing"])


class BookingIn(BaseModel):
    """Book a substitute on a shift."""

    model_config = ConfigDict(extra="forbid")
    shift_id: str
    substitute_id: str
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    booked_by: str | None = None


@router.get("/units")
async def list_units(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """The units that have shifts."""
    return {"items": [{"name": n, "kind": k, "area": a} for n, k, a in geography(state.options.tenant).units]}


@router.get("/shifts")
async def list_shifts(
    state: SandboxState = Depends(get_state),
    status: str | None = "open",
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    unit: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> dict[str, Any]:
    """Shifts (default: open ones) by start time; ``status=all`` for every shift."""

    def keep(s: dict[str, Any]) -> bool:
        start = datetime.fromisoformat(s["start"])
        return (
            (status in (None, "all") or s["status"] == status)
            and (unit is None or s["unit"] == unit)
            and (start_from is None or start >= _aware(start_from))
            and (start_to is None or start < _aware(start_to))
        )

    items = sorted((s for s in state.data.shifts if keep(s)), key=lambda s: (s["start"], s["id"]))
    return paginate(items, offset, limit)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=TZ)


@router.get("/shifts/{shift_id}")
async def get_shift(shift_id: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """One shift, with its booking if booked."""
    shift = _shift_index(state).get(shift_id)
    if shift is None:
        raise not_found(f"shift {shift_id}")
    return {**shift, "booking": _store(state).bookings.get(shift["booking_id"]) if shift["booking_id"] else None}


@router.get("/substitutes")
async def list_substitutes(
    state: SandboxState = Depends(get_state), qualification: str | None = None, offset: int = 0, limit: int = 200
) -> dict[str, Any]:
    """Substitutes with qualifications, availability, bookings and hours this month."""
    items = [
        _public_sub(s, state.today)
        for s in state.data.substitutes
        if qualification is None or qualification in s["qualifications"]
    ]
    return paginate(items, offset, limit)


@router.get("/substitutes/{substitute_id}")
async def get_substitute(substitute_id: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """One substitute."""
    sub = _sub_index(state).get(substitute_id)
    if sub is None:
        raise not_found(f"substitute {substitute_id}")
    return _public_sub(sub, state.today)


@router.post("/bookings", status_code=201)
async def create_booking(body: BookingIn, request: Request, state: SandboxState = Depends(get_state)) -> Any:
    """Book; 409 on a conflict (shift taken, overlapping booking, shift not open); same booking again → 200."""
    store = _store(state)
    key = idempotency_key(request, body.idempotency_key, required=False)
    payload = body.model_dump(mode="json", exclude={"idempotency_key", "booked_by"})
    if key:
        replay = store.idempotency.check("booking", key, payload)
        if replay is not None:
            return replay
    shift = _shift_index(state).get(body.shift_id)
    sub = _sub_index(state).get(body.substitute_id)
    if shift is None or sub is None:
        return error(404, "not_found", "no such shift" if shift is None else "no such substitute")
    if shift["booking_id"]:
        existing = store.bookings[shift["booking_id"]]
        if existing["substitute_id"] == sub["id"]:
            return replay_response(existing)
        store.conflicts += 1
        state.log.record(SYSTEM, "booking.conflict", shift["id"], {"substitute_id": sub["id"], "reason": "taken"})
        return error(409, "shift_already_booked", f"shift {shift['id']} is already booked", booking=existing)
    if shift["status"] != "open":
        store.conflicts += 1
        return error(409, "shift_not_open", f"shift {shift['id']} is {shift['status']}")
    start, end = datetime.fromisoformat(shift["start"]), datetime.fromisoformat(shift["end"])
    for b in sub["bookings"]:
        if _overlaps(start, end, datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"])):
            store.conflicts += 1
            state.log.record(SYSTEM, "booking.conflict", shift["id"], {"substitute_id": sub["id"], "reason": "overlap"})
            return error(
                409, "substitute_overlap", f"{sub['id']} is booked at an overlapping time", conflicting_booking=b
            )
    booking = {
        "id": f"BOK-{len(store.bookings) + 1:05d}",
        "shift_id": shift["id"],
        "substitute_id": sub["id"],
        "unit": shift["unit"],
        "start": shift["start"],
        "end": shift["end"],
        "hours": shift["hours"],
        "booked_at": state.now_iso(),
        "booked_by": body.booked_by,
        "status": "active",
    }
    store.bookings[booking["id"]] = booking
    sub["bookings"].append({k: booking[k] for k in ("id", "shift_id", "unit", "start", "end", "hours")})
    _count_hours(sub, start, shift["hours"])
    shift.update(status="booked", booking_id=booking["id"], booked_substitute_id=sub["id"])
    if key:
        store.idempotency.remember("booking", key, payload, booking)
    state.log.record(SYSTEM, "booking.created", shift["id"], {"booking_id": booking["id"], "substitute_id": sub["id"]})
    return JSONResponse(booking, status_code=201)


@router.get("/bookings")
async def list_bookings(
    state: SandboxState = Depends(get_state), shift_id: str | None = None, substitute_id: str | None = None
) -> dict[str, Any]:
    """Bookings made through this API (active and cancelled)."""
    items = [
        b
        for b in _store(state).bookings.values()
        if (shift_id is None or b["shift_id"] == shift_id)
        and (substitute_id is None or b["substitute_id"] == substitute_id)
    ]
    return {"items": items}


@router.get("/bookings/{booking_id}")
async def get_booking(booking_id: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """One booking."""
    booking = _store(state).bookings.get(booking_id)
    if booking is None:
        raise not_found(f"booking {booking_id}")
    return booking


@router.delete("/bookings/{booking_id}")
async def cancel_booking(booking_id: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Cancel a booking: the shift is open again and the hours are given back."""
    booking = _store(state).bookings.get(booking_id)
    if booking is None:
        raise not_found(f"booking {booking_id}")
    if booking["status"] == "active":
        booking["status"] = "cancelled"
        shift = _shift_index(state)[booking["shift_id"]]
        shift.update(status="open", booking_id=None, booked_substitute_id=None)
        sub = _sub_index(state)[booking["substitute_id"]]
        sub["bookings"] = [b for b in sub["bookings"] if b["id"] != booking_id]
        _count_hours(sub, datetime.fromisoformat(booking["start"]), -booking["hours"])
        state.log.record(SYSTEM, "booking.cancelled", booking["shift_id"], {"booking_id": booking_id})
    return booking


def inspect(state: SandboxState) -> dict[str, Any]:
    """Admin view: bookings, bookings created per shift (more than one active = a double booking), conflicts."""
    store = _store(state)
    active: dict[str, int] = {}
    for b in store.bookings.values():
        if b["status"] == "active":
            active[b["shift_id"]] = active.get(b["shift_id"], 0) + 1
    return {
        "bookings": list(store.bookings.values()),
        "bookings_per_shift": state.log.counts(SYSTEM).get("booking.created", {}),
        "double_booked_shifts": [s for s, n in active.items() if n > 1],
        "conflicts": store.conflicts,
        "scenarios": {"behaviour": state.data.truth.get("staffing", {}).get("behaviour", {})},
    }
