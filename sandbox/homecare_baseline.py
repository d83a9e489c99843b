"""The home-care system's own plan for a day: a greedy baseline for Lena to beat.

Visits are taken by latest start (then earliest start, then id); each goes to the qualified
staff member on shift who can be there first, travelling from their previous visit; a
double-staffed visit takes the two first. Breaks are taken when the next visit would end
past the break window. Continuity is ignored, as a plain planning tool does. The travel
model is deliberately simple and public: straight-line distance × 1.3, at 40 km/h by car
(plus 2 minutes to park), 15 km/h by bike and 5 km/h on foot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import asin, cos, radians, sin, sqrt
from typing import Any

__all__ = ["DETOUR", "SPEED_KMH", "baseline_plan", "travel_minutes"]

SPEED_KMH = {"car": 40.0, "bike": 15.0, "walk": 5.0}
DETOUR = 1.3
CAR_OVERHEAD_MINUTES = 2.0


def travel_minutes(a: tuple[float, float], b: tuple[float, float], mode: str) -> float:
    """Minutes from ``a`` to ``b`` (lat, lon) by ``mode``."""
    lat1, lon1, lat2, lon2 = map(radians, (*a, *b))
    h = sin((lat2 - lat1) / 2) ** 2 + cos(lat1) * cos(lat2) * sin((lon2 - lon1) / 2) ** 2
    km = 2 * 6371.0 * asin(sqrt(h)) * DETOUR
    if km < 0.01:
        return 0.0
    return km / SPEED_KMH[mode] * 60 + (CAR_OVERHEAD_MINUTES if mode == "car" else 0.0)


@dataclass
class _Staff:
    id: str
    competences: set[str]
    mode: str
    pos: tuple[float, float]
    free: datetime
    end: datetime
    break_earliest: datetime
    break_latest: datetime
    break_minutes: int
    break_at: datetime | None = None
    route: list[str] = field(default_factory=list)
    travel: float = 0.0

    def trial(
        self, where: tuple[float, float], earliest: datetime, duration: timedelta
    ) -> tuple[datetime, datetime | None, float]:
        """(arrival, break start if one must come first, travel minutes) for a visit at ``where``."""
        minutes = travel_minutes(self.pos, where, self.mode)
        free, pause = self.free, None
        arrival = max(free + timedelta(minutes=minutes), earliest)
        if self.break_at is None and arrival + duration > self.break_latest:
            pause = max(free, self.break_earliest)
            free = pause + timedelta(minutes=self.break_minutes)
            arrival = max(free + timedelta(minutes=minutes), earliest)
        return arrival, pause, minutes

    def commit(
        self,
        visit_id: str,
        where: tuple[float, float],
        start: datetime,
        duration: timedelta,
        pause: datetime | None,
        minutes: float,
    ) -> None:
        """Take the visit."""
        if pause is not None:
            self.break_at = pause
        self.route.append(visit_id)
        self.pos = where
        self.free = start + duration
        self.travel += minutes


def baseline_plan(visits: list[dict[str, Any]], staff: list[dict[str, Any]], day: str, group: str) -> dict[str, Any]:
    """The greedy plan in the shape ``POST /homecare/plans`` takes, plus routes, breaks and totals."""
    team = {
        s["id"]: _Staff(
            id=s["id"],
            competences=set(s["competences"]),
            mode=s["travel_mode"],
            pos=(s["start_location"]["lat"], s["start_location"]["lon"]),
            free=datetime.fromisoformat(s["shift"]["start"]),
            end=datetime.fromisoformat(s["shift"]["end"]),
            break_earliest=datetime.fromisoformat(s["break"]["earliest"]),
            break_latest=datetime.fromisoformat(s["break"]["latest"]),
            break_minutes=s["break"]["minutes"],
        )
        for s in staff
    }
    assignments: list[dict[str, Any]] = []
    unassigned: list[dict[str, Any]] = []
    order = sorted(visits, key=lambda v: (v["latest_start"], v["earliest_start"], v["id"]))
    for v in order:
        where = (v["lat"], v["lon"])
        earliest, latest = datetime.fromisoformat(v["earliest_start"]), datetime.fromisoformat(v["latest_start"])
        duration = timedelta(minutes=v["duration_minutes"])
        if v["locked"]:
            member = team.get(v["locked"]["staff_id"])
            if member is not None:
                start = datetime.fromisoformat(v["locked"]["start"])
                _, pause, minutes = member.trial(where, earliest, duration)
                member.commit(v["id"], where, start, duration, pause, minutes)
                assignments.append({"visit_id": v["id"], "staff_ids": [member.id], "start": v["locked"]["start"]})
                continue
        options = []
        for member in team.values():
            if not set(v["competences"]) <= member.competences:
                continue
            arrival, pause, minutes = member.trial(where, earliest, duration)
            if arrival <= latest and arrival + duration <= member.end:
                options.append((arrival, member.id, pause, minutes))
        options.sort(key=lambda o: (o[0], o[1]))
        if len(options) < v["staff_count"]:
            reason = (
                "ingen med rätt kompetens hinner i tid"
                if options or any(set(v["competences"]) <= m.competences for m in team.values())
                else "ingen med rätt kompetens i tjänst"
            )
            unassigned.append({"visit_id": v["id"], "reason": reason})
            continue
        chosen = options[: v["staff_count"]]
        start = max(o[0] for o in chosen)
        for _, member_id, pause, minutes in chosen:
            team[member_id].commit(v["id"], where, start, duration, pause, minutes)
        assignments.append(
            {"visit_id": v["id"], "staff_ids": [o[1] for o in chosen], "start": start.isoformat(timespec="minutes")}
        )
    for member in team.values():  # anyone who never needed to break takes it at the earliest
        if member.break_at is None:
            member.break_at = max(member.break_earliest, min(member.free, member.break_latest))
    return {
        "kind": "baseline",
        "group": group,
        "date": day,
        "assignments": assignments,
        "unassigned": unassigned,
        "routes": {m.id: m.route for m in team.values()},
        "breaks": {m.id: m.break_at.isoformat(timespec="minutes") if m.break_at else None for m in team.values()},
        "totals": {
            "assigned": len(assignments),
            "unassigned": len(unassigned),
            "travel_minutes": round(sum(m.travel for m in team.values()), 1),
        },
    }
