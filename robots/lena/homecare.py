"""The home-care system's JSON ↔ Lena's model (pure: the robot fetches and posts).

Times in the home-care API are ISO 8601 with the Europe/Stockholm offset; the model counts
minutes of real elapsed time since the local midnight that begins the planned day, so the
DST nights (23 or 25 hours) come out right.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from robots.lena.model import (
    BreakRule,
    HaversineTravelTimes,
    HistoryEntry,
    Location,
    Lock,
    ModelError,
    Plan,
    Problem,
    Staff,
    Sync,
    TravelTimeSource,
    Visit,
)

__all__ = ["STOCKHOLM", "assignments_of", "from_minutes", "plan_body", "to_minutes", "to_problem"]

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)


def to_minutes(day: date, value: str | datetime, tz: ZoneInfo = STOCKHOLM) -> int:
    """Minutes since the local midnight of ``day`` (a naive time is read as local)."""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return round((when.astimezone(UTC) - _midnight(day, tz)).total_seconds() / 60)


def from_minutes(day: date, minutes: int, tz: ZoneInfo = STOCKHOLM) -> datetime:
    """The local time ``minutes`` after the local midnight of ``day``."""
    return (_midnight(day, tz) + timedelta(minutes=minutes)).astimezone(tz)


def iso(day: date, minutes: int, tz: ZoneInfo = STOCKHOLM) -> str:
    """ISO 8601 with offset, to the minute."""
    return from_minutes(day, minutes, tz).isoformat(timespec="minutes")


def _place(d: Mapping[str, Any], where: str) -> Location:
    try:
        return Location(float(d["lon"]), float(d["lat"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError([f"{where}: no coordinates (lat, lon)"]) from exc


def to_problem(
    day: date,
    visits: Iterable[Mapping[str, Any]],
    staff: Iterable[Mapping[str, Any]],
    history: Iterable[Mapping[str, Any]] = (),
    *,
    travel: TravelTimeSource | None = None,
    max_lateness: int = 0,
    name: str = "",
    tz: ZoneInfo = STOCKHOLM,
) -> Problem:
    """The model of a day from the home-care API's visits, staff and history; ModelError names what is wrong."""
    problems: list[str] = []
    out_visits: list[Visit] = []
    for v in visits:
        try:
            out_visits.append(_visit(day, v, tz))
        except ModelError as exc:  # already in plain words (e.g. a place without coordinates)
            problems.extend(exc.problems)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"visit {v.get('id', '?')}: {type(exc).__name__}: {exc}")
    out_staff: list[Staff] = []
    for s in staff:
        try:
            out_staff.append(_staff(day, s, tz))
        except ModelError as exc:  # already in plain words (e.g. a place without coordinates)
            problems.extend(exc.problems)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"staff {s.get('id', '?')}: {type(exc).__name__}: {exc}")
    if problems:
        raise ModelError(problems)
    past = tuple(HistoryEntry(str(h["date"]), str(h["client_id"]), tuple(h.get("staff_ids") or ())) for h in history)
    problem = Problem(
        tuple(out_visits), tuple(out_staff), travel or HaversineTravelTimes(), past, max_lateness, day, name
    )
    problem.validate()
    return problem


def _visit(day: date, v: Mapping[str, Any], tz: ZoneInfo) -> Visit:
    sync = v.get("sync")
    lock = v.get("locked")
    staff_count = int(v.get("staff_count", 1))
    return Visit(
        id=str(v["id"]),
        client_id=str(v["client_id"]),
        location=_place(v, f"visit {v['id']}"),
        earliest=to_minutes(day, v["earliest_start"], tz),
        latest=to_minutes(day, v["latest_start"], tz),
        duration=int(v["duration_minutes"]),
        competences=frozenset(v.get("competences") or ()),
        staff_count=staff_count,
        sync=(
            Sync(sync["type"], int(sync.get("min_gap_minutes", 0)), int(sync.get("max_gap_minutes", 0)))
            if sync
            else (Sync() if staff_count == 2 else None)
        ),
        locked=Lock(str(lock["staff_id"]), to_minutes(day, lock["start"], tz) if lock.get("start") else None)
        if lock
        else None,
        preferred_staff=tuple(v.get("preferred_staff") or ()),
        contact_person=v.get("contact_person"),
        activity=str(v.get("activity", "")),
    )


def _staff(day: date, s: Mapping[str, Any], tz: ZoneInfo) -> Staff:
    b = s.get("break")
    home = _place(s["start_location"], f"staff {s['id']} start")
    return Staff(
        id=str(s["id"]),
        shift_start=to_minutes(day, s["shift"]["start"], tz),
        shift_end=to_minutes(day, s["shift"]["end"], tz),
        start_location=home,
        end_location=_place(s["end_location"], f"staff {s['id']} end") if s.get("end_location") else home,
        competences=frozenset(s.get("competences") or ()),
        travel_mode=str(s.get("travel_mode", "car")),
        break_rule=BreakRule(
            int(b["minutes"]),
            to_minutes(day, b["earliest"], tz),
            to_minutes(day, b["latest"], tz),
            int(b.get("max_work_without_break_minutes", 300)),
        )
        if b
        else None,
        name=" ".join(x for x in (s.get("first_name"), s.get("last_name")) if x),
    )


def plan_body(
    problem: Problem,
    plan: Plan,
    *,
    day: date,
    group: str,
    published_by: str,
    idempotency_key: str,
    comment: str | None = None,
    tz: ZoneInfo = STOCKHOLM,
) -> dict[str, Any]:
    """The body of ``POST /homecare/plans`` for ``plan``."""
    rows = plan.assignments()
    assignments = []
    for vid in sorted(rows):
        people = rows[vid]
        v = problem.visit(vid)
        start = people[0][1]
        if v.locked is not None:
            start = next((t for s, t, _ in people if s == v.locked.staff_id), start)
        item: dict[str, Any] = {"visit_id": vid, "staff_ids": [p[0] for p in people], "start": iso(day, start, tz)}
        if len({p[1] for p in people}) > 1:
            item["starts"] = [iso(day, p[1], tz) for p in people]
        assignments.append(item)
    body: dict[str, Any] = {
        "date": day.isoformat(),
        "group": group,
        "published_by": published_by,
        "idempotency_key": idempotency_key,
        "assignments": assignments,
        "unassigned": [{"visit_id": u.visit_id, "reason": u.reason} for u in plan.unassigned],
    }
    if comment:
        body["comment"] = comment
    return body


def assignments_of(plan_json: Mapping[str, Any]) -> dict[str, list[str]]:
    """visit id → staff ids, from a published or baseline plan of the home-care system."""
    return {str(a["visit_id"]): [str(s) for s in a["staff_ids"]] for a in plan_json.get("assignments", [])}
