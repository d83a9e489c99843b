"""The greedy's insertion with soft time windows: a visit may push the visits after it, never a fixed one."""

from __future__ import annotations

import pytest

from robots.lena import construct
from robots.lena.check import TravelTable, check_plan
from robots.lena.construct import Greedy
from robots.lena.metrics import Weights
from robots.lena.model import Plan, Problem
from robots.lena.routing import Network
from robots.lena.samples import member, problem, visit
from robots.lena.solver import SolverOptions, _tasks, solve

SOFT = 600


def greedy(p: Problem) -> Greedy:
    tasks, _ = _tasks(p, TravelTable(p))
    return Greedy(Network(p, tasks, Weights(travel=1.0, lateness=1.0)), push=p.max_lateness > 0)


def task(g: Greedy, visit_id: str, role: int = 0) -> int:
    return next(k for k, t in enumerate(g.net.tasks) if t.visit.id == visit_id and t.role == role)


def order(g: Greedy, v: int = 0) -> list[tuple[str, int]]:
    nd = g.net.num_depots
    return [(g.net.tasks[it.node - nd].visit.id, it.start) for it in g.items[v][1:-1]]


class TestPush:
    """With lateness allowed, a visit goes in between two others and the later one starts later."""

    def test_insert_between_pushes_the_next_visit(self) -> None:
        # After C, B would start at 550, 30 minutes late; between A and C it is on time and C is not late.
        p = problem(
            [visit("A", 10, 0, 480, 490, 20), visit("C", 30, 0, 480, 600, 20), visit("B", 20, 0, 480, 520, 20)],
            [member("P", 0, 1440)],
            max_lateness=SOFT,
        )
        g = greedy(p)
        assert g.insert(task(g, "A")) and g.insert(task(g, "C"))
        assert order(g) == [("A", 480), ("C", 520)]
        assert g.insert(task(g, "B"))
        assert order(g) == [("A", 480), ("B", 510), ("C", 540)]
        assert check_plan(p, Plan(tuple(g.plan_routes()), ())) == []

    def test_hard_windows_never_push(self) -> None:
        p = problem(
            [visit("A", 10, 0, 480, 490, 20), visit("C", 30, 0, 480, 600, 20), visit("B", 20, 0, 480, 600, 20)],
            [member("P", 0, 1440)],
        )
        g = greedy(p)
        assert g.insert(task(g, "A")) and g.insert(task(g, "C")) and g.insert(task(g, "B"))
        assert order(g) == [("A", 480), ("C", 520), ("B", 550)]

    def test_push_stops_at_a_double_staffed_visit(self) -> None:
        p = problem(
            [
                visit("A", 10, 0, 480, 600, 20),
                visit("D", 30, 0, 480, 600, 20, staff_count=2),
                visit("B", 20, 0, 480, 600, 20),
            ],
            [member("P", 0, 1440), member("Q", 0, 1440)],
            max_lateness=SOFT,
        )
        g = greedy(p)
        a = task(g, "A")
        assert g.insert(a) and g.insert(task(g, "D", 0), task(g, "D", 1))
        before = sorted(order(g, 0) + order(g, 1))
        assert g.insert(task(g, "B"))
        after = dict(order(g, 0) + order(g, 1))
        assert after["D"] == dict(before)["D"]  # both people of D keep their start
        assert check_plan(p, Plan(tuple(g.plan_routes()), ())) == []

    def test_the_lateness_of_a_push_is_charged(self) -> None:
        # B between A and C or after C: the same travel, but between it pushes C 40 minutes past its window.
        p = problem(
            [visit("A", 10, 0, 480, 490, 20), visit("C", 30, 0, 480, 520, 20), visit("B", 40, 0, 480, 600, 20)],
            [member("P", 0, 1440)],
            max_lateness=SOFT,
        )
        g = greedy(p)
        assert g.insert(task(g, "A")) and g.insert(task(g, "C")) and g.insert(task(g, "B"))
        assert [vid for vid, _ in order(g)] == ["A", "C", "B"]


def test_push_only_on_big_days_by_default() -> None:
    small = problem([visit("A", 10, 0, 480, 490, 20)], [member("P", 0, 1440)], max_lateness=SOFT)
    tasks, _ = _tasks(small, TravelTable(small))
    assert not Greedy(Network(small, tasks, Weights())).push


def test_soft_day_solved_within_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(construct, "PUSH_MIN_TASKS", 0)
    visits = [
        visit(
            f"V{i}",
            (i * 7) % 23,
            (i * 11) % 19,
            480 + 15 * (i % 6),
            500 + 15 * (i % 6),
            20,
            staff_count=2 if i % 5 == 0 else 1,
        )
        for i in range(24)
    ]
    p = problem(visits, [member(s, 0, 1440) for s in "PQR"], max_lateness=SOFT)
    r = solve(p, SolverOptions(time_limit=2.0, seed=3, strategy="lns", work_limit=30))
    assert check_plan(p, r.plan) == [] and r.plan.unassigned == ()
