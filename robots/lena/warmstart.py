"""A PyVRP warm start for plain VRPTW days (no breaks, double staffing, locks, skills or continuity).

PyVRP's iterated local search is near the best known solutions on plain VRPTW, far ahead
of OR-Tools' default search, but it cannot express breaks or synchronisation. So Lena uses
it only where its model is exact; its routes then seed the OR-Tools search, which keeps
every constraint. PyVRP is optional: without it this stage is skipped.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from robots.lena.routing import Network, RoutingModel

__all__ = ["is_plain", "pyvrp_routes", "run_pyvrp"]


def is_plain(model: RoutingModel | Network) -> bool:
    """True when PyVRP's model of the tasks is exact: one person each, no locks, breaks, lateness or preferences."""
    problem, tasks = model.problem, model.tasks
    staff = problem.staff
    everyone = tuple(range(len(staff)))
    return bool(tasks) and (
        problem.max_lateness == 0
        and len({s.travel_mode for s in staff}) == 1
        and all(s.break_window() is None for s in staff)
        and all(t.visit.staff_count == 1 and t.visit.locked is None and t.vehicles == everyone for t in tasks)
        and (
            model.weights.continuity.is_flat()
            or (not problem.history and not any(t.visit.preferred_staff or t.visit.contact_person for t in tasks))
        )
    )


def pyvrp_routes(
    model: RoutingModel, seconds: float, seed: int, iterations: int | None = None
) -> list[list[int]] | None:
    """Network task indices per vehicle from a PyVRP run, or None (PyVRP missing, or no feasible solution)."""
    try:
        from pyvrp import Client, Depot, Location, ProblemData, VehicleType
    except ImportError:  # optional dependency
        return None
    problem, tasks = model.problem, model.tasks
    staff = problem.staff
    nd = model.num_depots
    mode = staff[0].travel_mode
    matrix = np.ascontiguousarray(model.travel[mode], dtype=np.int64)
    has_load = any(t.visit.load for t in tasks) and any(s.capacity is not None for s in staff)
    big = sum(t.visit.load for t in tasks) + 1
    locations = [Location(x=0, y=0) for _ in range(model.num_nodes)]
    clients = [
        Client(
            location=nd + k,
            delivery=[t.visit.load] if has_load else [],
            service_duration=t.visit.duration,
            tw_early=t.visit.earliest,
            tw_late=t.visit.latest,
        )
        for k, t in enumerate(tasks)
    ]
    depots = [Depot(location=d) for d in range(nd)]
    groups: dict[tuple[int, int, int, int, int], list[int]] = {}
    for v, s in enumerate(staff):
        key = (
            model.depots.index(s.start_location),
            model.depots.index(s.end_location),
            s.shift_start,
            s.shift_end,
            s.capacity if s.capacity is not None else big,
        )
        groups.setdefault(key, []).append(v)
    kinds = list(groups)
    types = [
        VehicleType(
            num_available=len(groups[k]),
            capacity=[k[4]] if has_load else [],
            start_depot=k[0],
            end_depot=k[1],
            tw_early=k[2],
            tw_late=k[3],
        )
        for k in kinds
    ]
    data = ProblemData(
        locations=locations,
        clients=clients,
        depots=depots,
        vehicle_types=types,
        # pyvrp's stub declares the matrices ``ndarray[int]`` (an int *shape*), which no real array has.
        distance_matrices=[matrix],  # type: ignore[list-item]
        duration_matrices=[matrix],  # type: ignore[list-item]
    )
    result = run_pyvrp(data, seconds, seed, iterations)
    if not result.is_feasible():
        return None
    out: list[list[int]] = [[] for _ in staff]
    free = {k: list(groups[k]) for k in kinds}
    for route in result.best.routes():
        vehicle = free[kinds[route.vehicle_type()]].pop(0)
        out[vehicle] = [model.subset[a.idx] for a in route if a.is_client()]
    return out


def run_pyvrp(data: Any, seconds: float, seed: int, iterations: int | None = None, initial: Any = None) -> Any:
    """PyVRP's search on ``data`` (from ``initial`` when given) for ``seconds`` or ``iterations``; its result."""
    from pyvrp import solve
    from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria

    stop: list[Any] = [MaxRuntime(max(0.05, seconds))]
    if iterations is not None:
        stop.append(MaxIterations(iterations))
    with warnings.catch_warnings():
        # PyVRP warns when it struggles to find a feasible solution; the callers fall back then.
        warnings.simplefilter("ignore")
        return solve(
            data, MultipleCriteria(stop), seed=seed, display=False, collect_stats=False, initial_solution=initial
        )
