"""Personalkontinuitet: who is a familiar face for whom, what a new face costs, and the Kolada count (pure).

The national measure counts the *different* staff a client meets over 14 days; Lena counts
the history's 14 days plus the planned day. The solver's continuity cost is per visit and
person: the client's contact person costs least, then a preferred person, then anyone who
visited the client in the history, and a new face most.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import mean

from robots.lena.model import Plan, Problem, Visit

__all__ = ["ContinuityWeights", "continuity_costs", "distinct_staff", "familiar_staff", "summary"]


@dataclass(frozen=True)
class ContinuityWeights:
    """Cost of sending a person to a client's visit, in the units of travel time (minutes for Lena)."""

    #: The client's contact person (fast omsorgskontakt).
    contact: float = 0.0
    #: A person on the client's list of preferred staff.
    preferred: float = 2.0
    #: Someone who visited the client in the last 14 days.
    familiar: float = 5.0
    #: Someone the client has not met in the last 14 days.
    new_face: float = 20.0

    def is_flat(self) -> bool:
        """True when every person costs the same (continuity then plays no part)."""
        return self.contact == self.preferred == self.familiar == self.new_face


def familiar_staff(problem: Problem) -> dict[str, set[str]]:
    """client id → staff seen in the history."""
    out: dict[str, set[str]] = {}
    for h in problem.history:
        out.setdefault(h.client_id, set()).update(h.staff_ids)
    return out


def continuity_costs(problem: Problem, weights: ContinuityWeights) -> dict[str, dict[str, float]]:
    """visit id → staff id → continuity cost of that person doing that visit."""
    known = familiar_staff(problem)
    out: dict[str, dict[str, float]] = {}
    for v in problem.visits:
        out[v.id] = {s.id: cost_of(v, s.id, known.get(v.client_id, set()), weights) for s in problem.staff}
    return out


def cost_of(visit: Visit, staff_id: str, familiar: set[str], weights: ContinuityWeights) -> float:
    """The continuity cost of ``staff_id`` at ``visit``."""
    if visit.contact_person == staff_id:
        return weights.contact
    if staff_id in visit.preferred_staff:
        return weights.preferred
    if staff_id in familiar:
        return weights.familiar
    return weights.new_face


def distinct_staff(problem: Problem, assignments: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """client id → number of different staff over the history plus the planned day.

    ``assignments`` maps visit id → staff ids of the planned day (a plan's or another planner's).
    """
    seen = {c: set(s) for c, s in familiar_staff(problem).items()}
    for v in problem.visits:
        seen.setdefault(v.client_id, set()).update(assignments.get(v.id, ()))
    return {c: len(s) for c, s in sorted(seen.items())}


def plan_assignments(plan: Plan) -> dict[str, list[str]]:
    """visit id → staff ids, from a plan."""
    return {vid: [row[0] for row in rows] for vid, rows in plan.assignments().items()}


def summary(problem: Problem, assignments: Mapping[str, Iterable[str]]) -> dict[str, float]:
    """Mean and maximum distinct staff per client, and new faces on the planned day."""
    counts = distinct_staff(problem, assignments)
    known = familiar_staff(problem)
    clients_today = {v.client_id for v in problem.visits}
    new_faces = 0
    for v in problem.visits:
        for s in assignments.get(v.id, ()):
            if s not in known.get(v.client_id, set()):
                new_faces += 1
    today = [counts[c] for c in clients_today if c in counts]
    return {
        "mean_distinct_staff": round(mean(today), 2) if today else 0.0,
        "max_distinct_staff": float(max(today, default=0)),
        "new_face_visits": float(new_faces),
    }
