"""What a plan costs and how it looks in figures (pure): travel, idle time, lateness, continuity, objective."""

from __future__ import annotations

from dataclasses import dataclass, field

from robots.lena.check import TravelTable
from robots.lena.continuity import ContinuityWeights, cost_of, familiar_staff
from robots.lena.model import Plan, Problem

__all__ = ["PlanMetrics", "StaffDay", "Weights", "evaluate"]


@dataclass(frozen=True)
class Weights:
    """The objective's weights, in cost per unit of the problem's time (minutes for Lena)."""

    #: Per unit of travel time.
    travel: float = 1.0
    #: Per unit of lateness (a start after the window, where lateness is allowed).
    lateness: float = 1.0
    #: Per unit of the day's *largest* lateness (the latest start of any one visit against its window):
    #: on top of the sum, so that the lateness is spread instead of falling on one client. Mankowska's
    #: benchmark scores it with the same weight as the sum.
    lateness_max: float = 0.0
    #: Per person-visit left unassigned (a double-staffed visit counts twice).
    unassigned: float = 10_000.0
    #: Per person-visit of a locked visit left unassigned.
    locked_unassigned: float = 100_000.0
    continuity: ContinuityWeights = field(default_factory=ContinuityWeights)


@dataclass
class StaffDay:
    """One staff member's figures."""

    staff_id: str
    visits: int = 0
    travel: int = 0
    work: int = 0
    idle: int = 0
    lateness: int = 0
    back_at: int = 0


@dataclass
class PlanMetrics:
    """A plan's figures and its weighted objective."""

    travel: int = 0
    lateness_total: int = 0
    lateness_max: int = 0
    continuity_cost: float = 0.0
    assigned: int = 0
    unassigned: int = 0
    staff_used: int = 0
    objective: float = 0.0
    days: dict[str, StaffDay] = field(default_factory=dict)


def evaluate(
    problem: Problem, plan: Plan, weights: Weights | None = None, table: TravelTable | None = None
) -> PlanMetrics:
    """Figures of ``plan`` (assumed checked); travel is counted from office to office."""
    w = weights or Weights()
    table = table or TravelTable(problem)
    visits = {v.id: v for v in problem.visits}
    familiar = familiar_staff(problem)
    m = PlanMetrics()
    continuity: ContinuityWeights = w.continuity
    for r in plan.routes:
        member = problem.member(r.staff_id)
        day = StaffDay(r.staff_id, visits=len(r.stops))
        here, free = member.start_location, member.shift_start
        for st in sorted(r.stops, key=lambda s: s.start):
            v = visits[st.visit_id]
            leg = table.time(here, v.location, member.travel_mode)
            day.travel += leg
            late = max(0, st.start - v.latest)
            day.lateness += late
            m.lateness_max = max(m.lateness_max, late)
            day.work += v.duration
            m.continuity_cost += cost_of(v, member.id, familiar.get(v.client_id, set()), continuity)
            here, free = v.location, st.start + v.duration
        if r.stops:
            day.travel += table.time(here, member.end_location, member.travel_mode)
            m.staff_used += 1
        day.back_at = free + (table.time(here, member.end_location, member.travel_mode) if r.stops else 0)
        rest = member.break_rule.minutes if (member.break_rule and r.break_start is not None) else 0
        day.idle = max(0, day.back_at - member.shift_start - day.travel - day.work - rest) if r.stops else 0
        m.travel += day.travel
        m.lateness_total += day.lateness
        m.days[r.staff_id] = day
    assigned = plan.assignments()
    m.assigned = len(assigned)
    m.unassigned = len(plan.unassigned)
    penalty = 0.0
    for u in plan.unassigned:
        left = visits.get(u.visit_id)
        if left is not None:
            penalty += left.staff_count * (w.locked_unassigned if left.locked else w.unassigned)
    m.objective = (
        w.travel * m.travel
        + w.lateness * m.lateness_total
        + w.lateness_max * m.lateness_max
        + m.continuity_cost
        + penalty
    )
    return m
