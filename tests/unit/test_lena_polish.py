"""PyVRP's re-routing of a timed plan (robots.lena.polish): the two people of a visit synchronised again, every rule kept."""

from __future__ import annotations

import random

import pytest

import robots.lena.solver as solver_module
from robots.lena.check import TravelTable, check_plan
from robots.lena.construct import Greedy
from robots.lena.lns import perturb
from robots.lena.metrics import Weights
from robots.lena.model import HistoryEntry, Plan, Problem, Sync
from robots.lena.polish import can_polish, polish, timetable
from robots.lena.routing import Network
from robots.lena.samples import member, problem, visit
from robots.lena.solver import SolverOptions, _tasks, solve

pytest.importorskip("pyvrp")


def state(p: Problem) -> Greedy:
    tasks, _ = _tasks(p, TravelTable(p))
    return Greedy(Network(p, tasks, Weights()))


def task(g: Greedy, visit_id: str, role: int = 0) -> int:
    return next(k for k, t in enumerate(g.net.tasks) if t.visit.id == visit_id and t.role == role)


def soft_day(n: int, staff: int, seed: int) -> Problem:
    """A day without breaks or history, lateness allowed: every fourth visit double-staffed, half of them sequential."""
    rng = random.Random(seed)
    visits = []
    for i in range(n):
        start = rng.randrange(420, 840, 10)
        double = i % 4 == 0
        visits.append(
            visit(
                f"V{i:03d}",
                rng.uniform(-25, 25),
                rng.uniform(-25, 25),
                start,
                start + 90,
                rng.choice([15, 20, 30]),
                staff_count=2 if double else 1,
                sync=Sync("sequential", 5, 20) if double and i % 8 == 0 else None,
                competences=["usk"] if i % 5 == 1 else [],
            )
        )
    people = [member(f"S{j}", competences=["usk"] if j % 2 == 0 else []) for j in range(staff)]
    return problem(visits, people, max_lateness=240)


class TestTimetable:
    """Each person's visits as early as they can be, the two people of a visit waiting for each other."""

    def test_simultaneous_visit_waits_for_the_later_person(self) -> None:
        p = problem(
            [visit("X", 20, 0, 480, 540, 30), visit("D", 10, 0, 480, 600, 20, staff_count=2)],
            [member("A"), member("B")],
            max_lateness=60,
        )
        g = state(p)
        times = timetable(g, [[task(g, "X"), task(g, "D", 0)], [task(g, "D", 1)]])
        assert times is not None
        # A: office → X (20 min, waits to 08:00), 30 min there, 10 min on to D; B waits for A.
        assert times[task(g, "X")] == 480 and times[task(g, "D", 0)] == times[task(g, "D", 1)] == 520

    def test_sequential_gap_pulls_the_first_person_later(self) -> None:
        p = problem(
            [
                visit("Y", 10, 0, 560, 600, 30),
                visit("D", 10, 0, 480, 600, 20, staff_count=2, sync=Sync("sequential", 10, 30)),
            ],
            [member("A"), member("B")],
            max_lateness=60,
        )
        g = state(p)
        times = timetable(g, [[task(g, "D", 0)], [task(g, "Y"), task(g, "D", 1)]])
        assert times is not None
        # B is busy at Y until 09:50, so the second start is 09:50 and the first at most 30 min before.
        assert times[task(g, "D", 1)] == 590 and times[task(g, "D", 0)] == 560

    def test_crossed_orders_cannot_be_synchronised(self) -> None:
        p = problem(
            [visit("D", 10, 0, 480, 600, 20, staff_count=2), visit("E", -10, 0, 480, 600, 20, staff_count=2)],
            [member("A"), member("B")],
            max_lateness=60,
        )
        g = state(p)
        assert timetable(g, [[task(g, "D", 0), task(g, "E", 0)], [task(g, "E", 1), task(g, "D", 1)]]) is None

    def test_locked_start_is_kept_or_the_order_refused(self) -> None:
        p = problem([visit("X", 20, 0, 480, 540, 30), visit("L", 10, 0, 480, 600, 20)], [member("A")], max_lateness=60)
        g = state(p)
        order = [[task(g, "X"), task(g, "L")]]
        assert timetable(g, order, {task(g, "L"): 560}) == {task(g, "X"): 480, task(g, "L"): 560}
        assert timetable(g, order, {task(g, "L"): 500}) is None  # A cannot be there by 08:20


class TestPolish:
    """The re-routed plan keeps every rule, every visit and is cheaper; only breakless, flat-continuity days qualify."""

    @pytest.mark.parametrize("slack", [0, 5])
    def test_rerouted_plan_keeps_every_rule(self, slack: int) -> None:
        p = soft_day(60, 9, 1)
        g = state(p)
        assert not g.insert_all() and can_polish(g)
        better = polish(g, 2.0, seed=1, slack=slack)
        assert better is not None and better.cost() < g.cost()
        assert better.placed == g.placed
        assert check_plan(p, Plan(tuple(better.plan_routes()), ())) == []

    def test_days_with_breaks_or_continuity_are_left_alone(self) -> None:
        with_breaks = problem([visit("V", 10, 0, 480, 540)], [member("A", brk=(30, 600, 780))])
        assert not can_polish(state(with_breaks))
        people = [member("A"), member("B")]
        familiar = problem(
            [visit("V", 10, 0, 480, 540, client="K")], people, history=[HistoryEntry("2026-11-20", "K", ("A",))]
        )
        assert not can_polish(state(familiar))
        assert can_polish(state(problem([visit("V", 10, 0, 480, 540, client="K")], people)))


class TestSolverPath:
    """Big breakless days go through the LNS, PyVRP and OR-Tools in turn."""

    def test_big_soft_day(self) -> None:
        p = soft_day(130, 12, 2)
        # A work limit fixes the steps (and ample time keeps the clock out of it), so the path
        # does not depend on how busy the machine is.
        r = solve(p, SolverOptions(time_limit=300.0, seed=1, work_limit=20))
        assert "pyvrp" in r.engine
        assert check_plan(p, r.plan) == [] and r.plan.unassigned == () and r.repaired == []

    def test_deterministic_with_a_work_limit(self) -> None:
        p = soft_day(130, 12, 3)
        opts = SolverOptions(time_limit=600.0, seed=4, work_limit=20)  # the work limit binds, not the clock
        assert solve(p, opts).plan == solve(p, opts).plan


class TestKick:
    """The kick out of a local optimum (robots.lena.lns.perturb) and when the solver uses it."""

    def test_kicked_plan_keeps_every_rule_and_visit(self) -> None:
        p = soft_day(60, 9, 4)
        g = state(p)
        assert not g.insert_all()
        kicked = perturb(g, share=0.3, seed=2)
        assert kicked.placed == g.placed
        assert kicked.plan_routes() != g.plan_routes()  # a third of the visits moved somewhere
        assert check_plan(p, Plan(tuple(kicked.plan_routes()), ())) == []
        assert perturb(g, share=0.3, seed=2).plan_routes() == kicked.plan_routes()  # deterministic for a seed

    def test_the_solver_kicks_when_the_steps_stall(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # A small day taken the big days' way: its plan is found at once and no step improves on it, so
        # every step stalls; with the kicks on the solver kicks, and still returns the best plan it saw.
        p = soft_day(12, 3, 5)
        opts = SolverOptions(time_limit=600.0, seed=1, work_limit=5)
        monkeypatch.setattr(solver_module, "POLISH_MIN_TASKS", 0)
        monkeypatch.setattr(solver_module, "KICK_AFTER", 0)
        without = solve(p, opts)
        monkeypatch.setattr(solver_module, "KICK_AFTER", 2)
        kicked = solve(p, opts)
        assert "kicks(" in kicked.engine and "kicks(" not in without.engine
        assert check_plan(p, kicked.plan) == [] and kicked.plan.unassigned == ()
        assert kicked.metrics.objective <= without.metrics.objective
