"""The review material of a plan (pure): what the coordinator sees, and the plan itself to publish later.

``material`` = ``{"group", "date", "plan", "view", ...}``: ``plan`` is the plan as data
(:func:`plan_to_dict`, read back with :func:`plan_from_dict`), ``view`` is what the
template shows, in Swedish and with times as HH:MM: warnings first, totals, each staff
member's day as a timeline and a list, unassigned visits with reasons, and continuity per
client compared with the home-care system's own plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robots.lena.check import TravelTable
from robots.lena.continuity import distinct_staff, familiar_staff, plan_assignments
from robots.lena.metrics import PlanMetrics
from robots.lena.model import Plan, Problem, Route, Stop, Unassigned

__all__ = ["build_view", "hhmm", "plan_from_dict", "plan_to_dict"]

#: The timeline spans these hours of the day.
DAY_START, DAY_END = 6 * 60, 23 * 60
#: A single trip longer than this (minutes) is flagged.
LONG_TRIP = 25
MODES = {"car": "bil", "bike": "cykel", "walk": "till fots"}


def hhmm(t: int) -> str:
    """Minutes since midnight as HH:MM."""
    return f"{t // 60:02d}:{t % 60:02d}"


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """A JSON-ready plan."""
    return {
        "routes": [
            {
                "staff_id": r.staff_id,
                "break_start": r.break_start,
                "stops": [{"visit_id": s.visit_id, "start": s.start, "role": s.role} for s in r.stops],
            }
            for r in plan.routes
        ],
        "unassigned": [{"visit_id": u.visit_id, "code": u.code, "reason": u.reason} for u in plan.unassigned],
    }


def plan_from_dict(data: Mapping[str, Any]) -> Plan:
    """The plan of :func:`plan_to_dict`."""
    routes = tuple(
        Route(
            str(r["staff_id"]),
            tuple(Stop(str(s["visit_id"]), int(s["start"]), int(s.get("role", 0))) for s in r.get("stops", [])),
            None if r.get("break_start") is None else int(r["break_start"]),
        )
        for r in data.get("routes", [])
    )
    unassigned = tuple(
        Unassigned(str(u["visit_id"]), str(u.get("code", "")), str(u.get("reason", "")))
        for u in data.get("unassigned", [])
    )
    return Plan(routes, unassigned)


def _pct(t: int) -> float:
    return round(100.0 * (min(max(t, DAY_START), DAY_END) - DAY_START) / (DAY_END - DAY_START), 2)


def build_view(
    problem: Problem,
    plan: Plan,
    metrics: PlanMetrics,
    *,
    baseline: Mapping[str, list[str]] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """The template's view of ``plan``."""
    table = TravelTable(problem)
    assigned = plan.assignments()
    warnings: list[dict[str, str]] = [{"kind": "comment", "text": n} for n in notes or []]
    for u in plan.unassigned:
        v = problem.visit(u.visit_id)
        warnings.append(
            {
                "kind": "unassigned",
                "text": f"{v.id} ({v.client_id}, {v.activity or 'besök'}, "
                f"{hhmm(v.earliest)}–{hhmm(v.latest)}) är inte planerat: {u.reason}",
            }
        )
    days = []
    for r in plan.routes:
        day, extra = _staff_day(problem, table, r, assigned, metrics)
        days.append(day)
        warnings += extra
    ours = distinct_staff(problem, plan_assignments(plan))
    theirs = distinct_staff(problem, baseline) if baseline is not None else {}
    known = familiar_staff(problem)
    continuity: list[dict[str, Any]] = []
    for client in sorted({v.client_id for v in problem.visits}):
        today = sorted({s for v in problem.visits if v.client_id == client for s, _, _ in assigned.get(v.id, [])})
        contact = next((v.contact_person for v in problem.visits if v.client_id == client and v.contact_person), None)
        continuity.append(
            {
                "client_id": client,
                "staff_today": today,
                "new_faces": sorted(s for s in today if s not in known.get(client, set())),
                "contact_person": contact,
                "contact_today": contact in today if contact else None,
                "distinct": ours.get(client, 0),
                "distinct_baseline": theirs.get(client),
            }
        )
    mean = _mean([int(c["distinct"]) for c in continuity])
    mean_base = _mean([int(c["distinct_baseline"]) for c in continuity if c["distinct_baseline"] is not None])
    totals = {
        "visits": len(problem.visits),
        "assigned": len(assigned),
        "unassigned": len(plan.unassigned),
        "staff": len(problem.staff),
        "staff_used": metrics.staff_used,
        "travel_minutes": metrics.travel,
        "idle_minutes": sum(d.idle for d in metrics.days.values()),
        "lateness_minutes": metrics.lateness_total,
        "continuity_mean": mean,
        "continuity_mean_baseline": mean_base if baseline is not None else None,
        "double_staffed": sum(1 for v in problem.visits if v.staff_count == 2),
        "locked": sum(1 for v in problem.visits if v.locked is not None),
    }
    order = {"comment": 0, "unassigned": 1, "tight_break": 2, "long_travel": 3}
    warnings.sort(key=lambda w: order.get(w["kind"], 9))
    return {
        "totals": totals,
        "warnings": warnings,
        "staff": days,
        "continuity": continuity,
        "unassigned": [
            {
                "visit_id": u.visit_id,
                "client_id": problem.visit(u.visit_id).client_id,
                "activity": problem.visit(u.visit_id).activity,
                "window": f"{hhmm(problem.visit(u.visit_id).earliest)}–{hhmm(problem.visit(u.visit_id).latest)}",
                "reason": u.reason,
            }
            for u in plan.unassigned
        ],
        "hours": [{"label": f"{h:02d}", "left": _pct(h * 60)} for h in range(DAY_START // 60, DAY_END // 60 + 1, 2)],
    }


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _staff_day(
    problem: Problem,
    table: TravelTable,
    route: Route,
    assigned: dict[str, list[tuple[str, int, int]]],
    metrics: PlanMetrics,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    member = problem.member(route.staff_id)
    mode = member.travel_mode
    rows: list[dict[str, Any]] = []
    bars: list[dict[str, Any]] = [
        {
            "kind": "shift",
            "left": _pct(member.shift_start),
            "width": round(_pct(member.shift_end) - _pct(member.shift_start), 2),
            "label": f"Pass {hhmm(member.shift_start)}–{hhmm(member.shift_end)}",
        }
    ]
    warnings: list[dict[str, str]] = []
    here, free = member.start_location, member.shift_start
    brk = route.break_start
    minutes = member.break_rule.minutes if member.break_rule else 0
    placed = brk is None
    for st in sorted(route.stops, key=lambda s: s.start):
        v = problem.visit(st.visit_id)
        trip = table.time(here, v.location, mode)
        if not placed and brk is not None and brk + minutes <= st.start:
            rows.append({"kind": "break", "time": f"{hhmm(brk)}–{hhmm(brk + minutes)}", "text": "Rast"})
            bars.append(
                {
                    "kind": "break",
                    "left": _pct(brk),
                    "width": round(_pct(brk + minutes) - _pct(brk), 2),
                    "label": f"Rast {hhmm(brk)}",
                }
            )
            if st.start - free - trip - minutes <= 0:
                warnings.append({"kind": "tight_break", "text": f"{member.id}: rasten {hhmm(brk)} har ingen marginal"})
            placed = True
        if trip > LONG_TRIP:
            warnings.append(
                {
                    "kind": "long_travel",
                    "text": f"{member.id}: {trip} min {MODES.get(mode, mode)} till {v.id} ({v.client_id})",
                }
            )
        partner = [s for s, _, _ in assigned.get(v.id, []) if s != member.id]
        late = max(0, st.start - v.latest)
        rows.append(
            {
                "kind": "visit",
                "time": f"{hhmm(st.start)}–{hhmm(st.start + v.duration)}",
                "visit_id": v.id,
                "client_id": v.client_id,
                "activity": v.activity,
                "travel": trip,
                "partner": ", ".join(partner),
                "locked": v.locked is not None,
                "late": late,
                "window": f"{hhmm(v.earliest)}–{hhmm(v.latest)}",
            }
        )
        bars.append(
            {
                "kind": "visit",
                "left": _pct(st.start),
                "width": round(_pct(st.start + v.duration) - _pct(st.start), 2),
                "label": f"{hhmm(st.start)} {v.client_id} {v.activity}".strip(),
            }
        )
        here, free = v.location, st.start + v.duration
    if not placed and brk is not None:
        rows.append({"kind": "break", "time": f"{hhmm(brk)}–{hhmm(brk + minutes)}", "text": "Rast"})
        bars.append(
            {
                "kind": "break",
                "left": _pct(brk),
                "width": round(_pct(brk + minutes) - _pct(brk), 2),
                "label": f"Rast {hhmm(brk)}",
            }
        )
    figures = metrics.days.get(member.id)
    day = {
        "id": member.id,
        "name": member.name,
        "mode": MODES.get(mode, mode),
        "shift": f"{hhmm(member.shift_start)}–{hhmm(member.shift_end)}",
        "competences": ", ".join(sorted(member.competences)),
        "visits": len(route.stops),
        "travel_minutes": figures.travel if figures else 0,
        "idle_minutes": figures.idle if figures else 0,
        "rows": rows,
        "bars": bars,
    }
    return day, warnings
