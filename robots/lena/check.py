"""The independent plan checker (pure): does a plan keep every hard constraint?

It shares nothing with the solver but the model: it recomputes travel times from the
problem's travel source and walks every staff member's day on its own. Used by the tests
on every plan, by the solver as a last guard, and by the robot before it publishes.

Hard constraints checked (the :class:`Violation` codes):

``unknown_staff`` ``duplicate_route`` ``unknown_visit`` ``missing_visit`` ``duplicate_unassigned``
``assigned_and_unassigned`` ``unassigned_reason`` ``staff_count`` ``same_staff_twice`` ``roles``
``competence`` ``too_early`` ``time_window`` ``order`` ``shift_start`` ``travel`` ``shift_end``
``break_missing`` ``break_window`` ``break_overlap`` ``locked`` ``sync`` ``capacity``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from robots.lena.model import Location, Plan, Problem, Route, Staff, Stop, Visit

__all__ = ["TravelTable", "Violation", "check_plan"]


@dataclass(frozen=True)
class Violation:
    """One broken hard constraint."""

    code: str
    message: str
    visit_id: str | None = None
    staff_id: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class TravelTable:
    """Travel times between the problem's places, per mode, computed on first use."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        places: list[Location] = []
        seen: dict[Location, int] = {}
        for loc in [v.location for v in problem.visits] + [
            x for s in problem.staff for x in (s.start_location, s.end_location)
        ]:
            if loc not in seen:
                seen[loc] = len(places)
                places.append(loc)
        self.index = seen
        self.places = places
        self._by_mode: dict[str, list[list[int]]] = {}

    def time(self, a: Location, b: Location, mode: str) -> int:
        """Travel time from ``a`` to ``b`` by ``mode``."""
        m = self._by_mode.get(mode)
        if m is None:
            m = self._by_mode[mode] = self.problem.travel.matrix(self.places, mode)
        return m[self.index[a]][self.index[b]]


def check_plan(problem: Problem, plan: Plan, travel: TravelTable | None = None) -> list[Violation]:
    """Every hard constraint ``plan`` breaks (empty = the plan may be published)."""
    table = travel or TravelTable(problem)
    out: list[Violation] = []
    visits = {v.id: v for v in problem.visits}
    staff = {s.id: s for s in problem.staff}
    seen_routes: set[str] = set()
    for r in plan.routes:
        if r.staff_id not in staff:
            out.append(Violation("unknown_staff", f"route for unknown staff {r.staff_id}", staff_id=r.staff_id))
            continue
        if r.staff_id in seen_routes:
            out.append(Violation("duplicate_route", f"{r.staff_id} has two routes", staff_id=r.staff_id))
            continue
        seen_routes.add(r.staff_id)
        out += _check_route(problem, staff[r.staff_id], r, table)
    out += _check_coverage(problem, plan, visits, staff)
    return out


def _check_coverage(problem: Problem, plan: Plan, visits: dict[str, Visit], staff: dict[str, Staff]) -> list[Violation]:
    out: list[Violation] = []
    rows: dict[str, list[tuple[str, int, int]]] = {}
    for r in plan.routes:
        if r.staff_id not in staff:
            continue
        for st in r.stops:
            if st.visit_id not in visits:
                out.append(
                    Violation("unknown_visit", f"{r.staff_id} visits unknown {st.visit_id}", st.visit_id, r.staff_id)
                )
                continue
            rows.setdefault(st.visit_id, []).append((r.staff_id, st.start, st.role))
    left: set[str] = set()
    for u in plan.unassigned:
        if u.visit_id not in visits:
            out.append(Violation("unknown_visit", f"unknown visit {u.visit_id} reported unassigned", u.visit_id))
            continue
        if u.visit_id in left:
            out.append(Violation("duplicate_unassigned", f"{u.visit_id} reported unassigned twice", u.visit_id))
        left.add(u.visit_id)
        if not u.reason.strip():
            out.append(Violation("unassigned_reason", f"{u.visit_id} is unassigned without a reason", u.visit_id))
        if u.visit_id in rows:
            out.append(Violation("assigned_and_unassigned", f"{u.visit_id} is both planned and unassigned", u.visit_id))
    for v in problem.visits:
        got = rows.get(v.id)
        if got is None:
            if v.id not in left:
                out.append(Violation("missing_visit", f"{v.id} is neither planned nor reported unassigned", v.id))
            continue
        if len(got) != v.staff_count:
            out.append(Violation("staff_count", f"{v.id} needs {v.staff_count} staff, has {len(got)}", v.id))
            continue
        people = [g[0] for g in got]
        if len(set(people)) != len(people):
            out.append(Violation("same_staff_twice", f"{v.id} has the same person twice", v.id, people[0]))
            continue
        roles = sorted(g[2] for g in got)
        if roles != list(range(v.staff_count)):
            out.append(Violation("roles", f"{v.id} has roles {roles}, expected {list(range(v.staff_count))}", v.id))
            continue
        by_role = {g[2]: g for g in got}
        if v.locked is not None:
            holder = next((g for g in got if g[0] == v.locked.staff_id), None)
            if holder is None:
                out.append(Violation("locked", f"{v.id} is locked to {v.locked.staff_id}", v.id, v.locked.staff_id))
            elif v.locked.start is not None and holder[1] != v.locked.start:
                out.append(
                    Violation(
                        "locked",
                        f"{v.id} is locked to start at {v.locked.start}, starts {holder[1]}",
                        v.id,
                        v.locked.staff_id,
                    )
                )
        if v.staff_count == 2 and v.sync is not None:
            first, second = by_role[0][1], by_role[1][1]
            if v.sync.kind == "simultaneous" and first != second:
                out.append(Violation("sync", f"{v.id}: the two staff start at {first} and {second}", v.id))
            elif v.sync.kind == "sequential" and not v.sync.min_gap <= second - first <= v.sync.max_gap:
                out.append(
                    Violation(
                        "sync",
                        f"{v.id}: second start {second} is {second - first} after the first, "
                        f"allowed {v.sync.min_gap}–{v.sync.max_gap}",
                        v.id,
                    )
                )
    return out


def _check_route(problem: Problem, member: Staff, route: Route, table: TravelTable) -> list[Violation]:
    out: list[Violation] = []
    sid = member.id
    visits = {v.id: v for v in problem.visits}
    stops = [st for st in route.stops if st.visit_id in visits]
    load = 0
    for prev, st in itertools.pairwise(stops):
        if st.start < prev.start:
            out.append(
                Violation("order", f"{sid}: {st.visit_id} starts before the stop listed before it", st.visit_id, sid)
            )
    for st in stops:
        v = visits[st.visit_id]
        load += v.load
        roles = v.roles()
        required = roles[st.role] if 0 <= st.role < len(roles) else roles[0]
        if not required <= member.competences:
            missing = ", ".join(sorted(required - member.competences))
            out.append(Violation("competence", f"{sid} lacks {missing} for {v.id}", v.id, sid))
        if st.start < v.earliest:
            out.append(Violation("too_early", f"{v.id} starts {st.start}, window opens {v.earliest}", v.id, sid))
        if st.start > v.latest + problem.max_lateness:
            allowed = f" (+{problem.max_lateness} allowed)" if problem.max_lateness else ""
            out.append(
                Violation("time_window", f"{v.id} starts {st.start}, window closes {v.latest}{allowed}", v.id, sid)
            )
    if member.capacity is not None and load > member.capacity:
        out.append(Violation("capacity", f"{sid} carries {load}, capacity {member.capacity}", staff_id=sid))
    out += _check_break(member, route, stops, visits)
    brk = None
    if route.break_start is not None and member.break_rule is not None:
        brk = (route.break_start, route.break_start + member.break_rule.minutes)
    mode = member.travel_mode
    ordered = sorted(stops, key=lambda st: st.start)
    here, free = member.start_location, member.shift_start
    code = "shift_start"
    for st in ordered:
        v = visits[st.visit_id]
        need = table.time(here, v.location, mode)
        if brk is not None and free <= brk[0] and brk[1] <= st.start:
            need += brk[1] - brk[0]
        if st.start - free < need:
            out.append(
                Violation(code, f"{sid} cannot reach {v.id} by {st.start} (free {free}, needs {need})", v.id, sid)
            )
        here, free, code = v.location, max(free, st.start + v.duration), "travel"
    need = table.time(here, member.end_location, mode)
    if brk is not None and free <= brk[0]:
        need += brk[1] - brk[0]
    if free + need > member.shift_end:
        out.append(
            Violation("shift_end", f"{sid} is back at {free + need}, the shift ends {member.shift_end}", staff_id=sid)
        )
    return out


def _check_break(member: Staff, route: Route, stops: Sequence[Stop], visits: dict[str, Visit]) -> list[Violation]:
    sid = member.id
    window = member.break_window()
    if route.break_start is None:
        if window is not None:
            return [Violation("break_missing", f"{sid} has no break", staff_id=sid)]
        return []
    rule = member.break_rule
    if rule is None:
        return []
    start, end = route.break_start, route.break_start + rule.minutes
    out: list[Violation] = []
    lo, hi = window if window is not None else (member.shift_start, member.shift_end - rule.minutes)
    if not lo <= start <= hi:
        out.append(Violation("break_window", f"{sid}'s break starts {start}, allowed {lo}–{hi}", staff_id=sid))
    for st in stops:
        v = visits[st.visit_id]
        if start < st.start + v.duration and st.start < end:
            out.append(Violation("break_overlap", f"{sid}'s break overlaps {v.id}", v.id, sid))
    return out
