"""PyVRP re-routes a timed plan with the double-staffed visits held near their times; then they are synchronised again.

PyVRP's iterated local search is far stronger than Lena's own moves on plain routing, but it
has no synchronisation of two people. So each place of a double-staffed visit becomes a client
whose time window is its start in the plan, widened by ``slack`` on either side; any person with
the competence may take it (a routing profile per person puts the visits the person may not do
out of reach, and the two places of one visit out of reach of each other). Locked visits stay with
their person at their time. Single-staffed visits keep their windows; with soft windows a window
closes at the later of its latest start and the visit's start in the plan, so the plan PyVRP starts
from is feasible for it.

PyVRP's routes are then timed again by :func:`timetable`: each person's visits in PyVRP's order,
as early as possible, the two people of a double-staffed visit waiting for each other (a late start
where the windows are soft). The caller keeps the result only if it is cheaper by Lena's own
objective (:meth:`Greedy.cost`). Used on days without breaks whose continuity cost does not depend on
the person (the PyVRP model cannot express either, :func:`can_polish`). PyVRP is optional: without it
the step is skipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robots.lena.construct import Greedy
from robots.lena.model import Route, Stop
from robots.lena.warmstart import run_pyvrp

__all__ = ["can_polish", "polish"]

#: Travel time standing for "this person cannot go there" in a routing profile.
UNREACHABLE = 10_000_000


def can_polish(g: Greedy) -> bool:
    """True when PyVRP's model of the single-staffed visits is exact: no breaks, continuity the same for everyone."""
    net = g.net
    if any(t.is_break for t in net.tasks):
        return False
    if not any(t.visit.staff_count == 1 and t.visit.locked is None for t in net.tasks):
        return False
    return all(len(set(row)) <= 1 for row in g.continuity)


def polish(g: Greedy, seconds: float, seed: int, iterations: int | None = None, slack: int = 0) -> Greedy | None:
    """``g`` re-routed by PyVRP and synchronised again, or None (PyVRP missing, no plan, nothing cheaper)."""
    try:
        from pyvrp import Client, Depot, Location, ProblemData, Solution, VehicleType
        from pyvrp import Route as PyRoute
    except ImportError:  # optional dependency
        return None
    net = g.net
    tasks, staff = net.tasks, g.staff
    nd = net.num_depots
    placed = sorted(g.placed)
    if not placed:
        return None
    where = {it.node: (v, it.start) for v, row in enumerate(g.items) for it in row[1:-1]}
    # Clients: every placed task; locked ones pinned to their person and start.
    pinned: dict[int, int] = {}  # task → the vehicle it is pinned to
    clients: list[Any] = []
    index = {}  # task → client number
    for k in placed:
        t = tasks[k]
        v, start = where[nd + k]
        if t.visit.locked is not None:
            pinned[k] = v
            lo, hi = start, start
        elif t.visit.staff_count == 2:
            lo, hi = max(t.visit.earliest, start - slack), start + slack
        else:
            lo, hi = t.visit.earliest, max(t.visit.latest, start)
        index[k] = len(clients)
        clients.append(Client(location=nd + k, service_duration=t.visit.duration, tw_early=lo, tw_late=hi))
    # The two places of one double-staffed visit, as node pairs (never the same person: out of reach of each other).
    pairs = np.array(
        [(nd + k, nd + j) for k in placed for j in net.same_visit(k) if k < j and j in g.placed], dtype=np.int64
    ).reshape(-1, 2)
    # One vehicle type and routing profile per person: other people's pinned visits and visits
    # needing a competence the person lacks are out of reach.
    base = {mode: np.ascontiguousarray(m, dtype=np.int64) for mode, m in net.travel.items()}
    profiles = []
    types = []
    for v, s in enumerate(staff):
        matrix = base[s.travel_mode].copy()
        shut = [nd + k for k in placed if (k in pinned and pinned[k] != v) or v not in tasks[k].vehicles]
        if shut:
            matrix[shut, :] = UNREACHABLE
            matrix[:, shut] = UNREACHABLE
            matrix[shut, shut] = 0  # (element-wise: the diagonal of each shut node)
        matrix[pairs[:, 0], pairs[:, 1]] = UNREACHABLE
        matrix[pairs[:, 1], pairs[:, 0]] = UNREACHABLE
        profiles.append(matrix)
        types.append(
            VehicleType(
                num_available=1,
                start_depot=net.depots.index(s.start_location),
                end_depot=net.depots.index(s.end_location),
                tw_early=s.shift_start,
                tw_late=s.shift_end,
                profile=v,
            )
        )
    locations = [Location(x=0, y=0) for _ in range(nd + len(tasks))]
    data = ProblemData(
        locations=locations,
        clients=clients,
        depots=[Depot(location=d) for d in range(nd)],
        vehicle_types=types,
        # pyvrp's stub declares the matrices ``ndarray[int]`` (an int *shape*), which no real array has.
        distance_matrices=profiles,  # type: ignore[arg-type]
        duration_matrices=profiles,  # type: ignore[arg-type]
    )
    initial = Solution(
        data,
        [PyRoute(data, [index[it.node - nd] for it in row[1:-1]], v) for v, row in enumerate(g.items) if len(row) > 2],
    )
    result = run_pyvrp(data, seconds, seed, iterations, initial)
    if not result.is_feasible():
        return None
    task_of = {i: k for k, i in index.items()}
    sequences: list[list[int]] = [[] for _ in staff]
    for route in result.best.routes():
        sequences[route.vehicle_type()] = [task_of[act.idx] for act in route.schedule() if act.is_client()]
    if any(len({tasks[k].visit.id for k in seq}) < len(seq) for seq in sequences):
        return None  # one person took both places of a double-staffed visit: not a plan
    times = timetable(g, sequences, {k: where[nd + k][1] for k in pinned})
    if times is None:
        return None
    routes = [
        Route(s.id, tuple(Stop(tasks[k].visit.id, times[k], tasks[k].role) for k in seq))
        for s, seq in zip(staff, sequences, strict=True)
    ]
    out = Greedy(net, push=g.push)
    out.load(routes)
    out.compact_all()
    return out if out.cost() < g.cost() - 1e-9 else None


def timetable(
    g: Greedy, sequences: list[list[int]], fixed: dict[int, int] | None = None, passes: int = 200
) -> dict[int, int] | None:
    """The earliest start of every task when each person does ``sequences[v]`` in that order, the two
    people of a double-staffed visit synchronised (soft windows: a start may be late). None when the
    orders cannot be synchronised (they wait on each other) or a hard limit breaks. ``fixed``: tasks that
    start at a given time (locked visits)."""
    fixed = fixed or {}
    net = g.net
    tasks, nd = net.tasks, net.num_depots
    lower: dict[int, int] = {}
    starts: dict[int, int] = {}
    for _ in range(passes):
        for v, seq in enumerate(sequences):
            s = g.staff[v]
            T = g.travel[s.travel_mode]
            here, free = net.depots.index(s.start_location), s.shift_start
            for k in seq:
                t = tasks[k]
                start = max(free + T[here][nd + k], t.visit.earliest, lower.get(k, 0))
                if k in fixed:
                    if start > fixed[k]:
                        return None
                    start = fixed[k]
                if start > g.limit[nd + k]:
                    return None
                starts[k] = start
                here, free = nd + k, start + t.visit.duration
            if seq and free + T[here][net.depots.index(s.end_location)] > s.shift_end:
                return None
        changed = False
        for k, t in enumerate(tasks):
            if t.visit.staff_count != 2 or t.role != 0 or k not in starts:
                continue
            j = next(x for x in net.same_visit(k) if x != k)
            sync = t.visit.sync
            if sync is None or sync.kind == "simultaneous":
                need_k = need_j = max(starts[k], starts[j])
            else:
                need_j = max(starts[j], starts[k] + sync.min_gap)
                need_k = max(starts[k], need_j - sync.max_gap)
            for x, need in ((k, need_k), (j, need_j)):
                if need > starts[x]:
                    lower[x] = need
                    changed = True
        if not changed:
            return starts
    return None
