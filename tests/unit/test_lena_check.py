"""The independent plan checker: a valid plan passes; each broken hard rule is found and named."""

from __future__ import annotations

from dataclasses import replace

import pytest

from robots.lena.check import check_plan
from robots.lena.model import Plan, Problem, Route, Stop, Unassigned
from robots.lena.samples import day

#: A valid plan for samples.day(), worked out by hand (travel: plane distance in minutes, rounded up).
ROUTES = {
    "A": (675, [("V1", 450, 0), ("V2", 495, 0), ("V3", 540, 0), ("V4", 728, 0), ("V5", 780, 0)]),
    "B": (680, [("V3", 540, 1), ("V6", 660, 0), ("V8", 720, 0), ("V5", 790, 1), ("V7", 870, 0)]),
}


def plan(routes: dict | None = None, unassigned: tuple[Unassigned, ...] = ()) -> Plan:
    rows = routes if routes is not None else ROUTES
    return Plan(
        tuple(Route(sid, tuple(Stop(*s) for s in stops), brk) for sid, (brk, stops) in rows.items()), unassigned
    )


def edit(staff: str, index: int, start: int | None = None, **change: object) -> dict:
    """ROUTES with one stop changed."""
    rows = {k: (b, list(s)) for k, (b, s) in ROUTES.items()}
    vid, at, role = rows[staff][1][index]
    rows[staff][1][index] = (change.get("visit_id", vid), start if start is not None else at, change.get("role", role))
    return rows


def codes(p: Problem, pl: Plan) -> set[str]:
    return {v.code for v in check_plan(p, pl)}


class TestValidPlan:
    """The hand-made plan keeps every rule, including a break that exactly fits before a trip."""

    def test_no_violations(self) -> None:
        assert check_plan(day(), plan()) == []

    def test_lateness_within_the_allowance_is_fine(self) -> None:
        assert codes(replace(day(), max_lateness=15), plan(edit("B", 4, 910))) == set()
        assert codes(replace(day(), max_lateness=15), plan(edit("B", 4, 920))) == {"time_window"}


class TestEachRule:
    """Each hard rule broken on its own is detected under its code."""

    @pytest.mark.parametrize(
        ("routes", "code"),
        [
            (edit("A", 0, 440), "too_early"),
            (edit("A", 0, 520), "time_window"),
            (edit("A", 1, 481), "travel"),
            (edit("B", 2, 719), "travel"),  # the break 11:20-11:50 plus 10 min of travel no longer fit
            (edit("B", 0, 545), "sync"),  # simultaneous: both start together
            (edit("B", 3, 781), "sync"),  # sequential: 10-30 min after the first
            (edit("B", 3, 830), "sync"),
            (edit("B", 1, 661), "locked"),
            (edit("B", 1, visit_id="V2"), "competence"),
            (edit("B", 0, role=0), "roles"),
            (edit("B", 0, visit_id="V99"), "unknown_visit"),
        ],
    )
    def test_stop_level_rules(self, routes: dict, code: str) -> None:
        assert code in codes(day(), plan(routes))

    def test_order(self) -> None:
        rows = {k: (b, list(s)) for k, (b, s) in ROUTES.items()}
        rows["A"][1][0], rows["A"][1][1] = rows["A"][1][1], rows["A"][1][0]
        assert "order" in codes(day(), plan(rows))

    def test_missing_and_unassigned(self) -> None:
        rows = {k: (b, [s for s in stops if s[0] != "V7"]) for k, (b, stops) in ROUTES.items()}
        assert codes(day(), plan(rows)) == {"missing_visit"}
        assert codes(day(), plan(rows, (Unassigned("V7", "capacity", "full"),))) == set()
        assert codes(day(), plan(rows, (Unassigned("V7", "capacity", " "),))) == {"unassigned_reason"}
        assert "duplicate_unassigned" in codes(day(), plan(rows, (Unassigned("V7", "c", "r"),) * 2))
        assert "assigned_and_unassigned" in codes(day(), plan(None, (Unassigned("V7", "c", "r"),)))
        assert "unknown_visit" in codes(day(), plan(None, (Unassigned("V0", "c", "r"),)))

    def test_staff_count_and_same_person_twice(self) -> None:
        rows = {k: (b, [s for s in stops if not (k == "B" and s[0] == "V3")]) for k, (b, stops) in ROUTES.items()}
        assert "staff_count" in codes(day(), plan(rows))
        rows["A"] = (rows["A"][0], [*rows["A"][1], ("V3", 540, 1)])
        assert "same_staff_twice" in codes(day(), plan(rows))

    def test_lock_to_another_person(self) -> None:
        rows = {k: (b, list(s)) for k, (b, s) in ROUTES.items()}
        rows["B"][1].remove(("V6", 660, 0))
        rows["A"][1].insert(3, ("V6", 660, 0))
        assert "locked" in codes(day(), plan(rows))

    def test_unknown_and_duplicate_routes(self) -> None:
        p = plan()
        assert "unknown_staff" in codes(day(), Plan((*p.routes, Route("Z")), ()))
        assert "duplicate_route" in codes(day(), Plan((*p.routes, Route("A")), ()))

    def test_shift_start_and_end(self) -> None:
        late_start = replace(day(), staff=(replace(day().staff[0], shift_start=445), day().staff[1]))
        assert "shift_start" in codes(late_start, plan())
        early_end = replace(day(), staff=(day().staff[0], replace(day().staff[1], shift_end=890)))
        assert "shift_end" in codes(early_end, plan())

    @pytest.mark.parametrize(
        ("staff", "start", "code"),
        [
            ("A", None, "break_missing"),
            ("A", 625, "break_window"),
            ("B", 660, "break_overlap"),
        ],
    )
    def test_breaks(self, staff: str, start: int | None, code: str) -> None:
        rows = {k: (b, s) for k, (b, s) in ROUTES.items()}
        rows[staff] = (start, rows[staff][1])
        assert code in codes(day(), plan(rows))

    def test_capacity(self) -> None:
        p = day()
        loaded = replace(
            p, visits=tuple(replace(v, load=2) for v in p.visits), staff=(replace(p.staff[0], capacity=5), p.staff[1])
        )
        assert "capacity" in codes(loaded, plan())

    def test_violations_name_visit_and_staff(self) -> None:
        [v] = check_plan(day(), plan(edit("A", 0, 440)))
        assert (v.visit_id, v.staff_id) == ("V1", "A") and "V1" in str(v)
