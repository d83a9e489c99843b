"""The OR-Tools routing model of a planning day.

Nodes are the distinct start/end places of the staff (depots) followed by one *task* per
person a visit needs (a double-staffed visit is two tasks). Vehicles are staff members.

- Competence, shift reach and locks → the allowed vehicles of each task.
- Time → one dimension whose transit is travel (by the staff member's mode) plus the
  visit's duration; the vehicle starts at the shift start and ends by the shift end.
- Time windows → cumul ranges (and a soft upper bound at ``latest`` when lateness is
  allowed, costing ``Weights.lateness`` per unit).
- Breaks → one *break task* per staff member who needs a break: a stop of the break's length,
  allowed only for them, starting inside the break window, *anchored* at a place: the place
  of the visit before the break in the start solution (:meth:`Network.anchor_break`), so the
  break is taken where the person is, as in reality; moved elsewhere by the search, the
  anchor only makes the day more conservative. (OR-Tools' own break intervals were tried
  first; restoring a start solution with them fails at random on big days.)
- Double staffing → the two tasks are performed together, by different vehicles, with
  tied start times (equal, or a gap range for sequential).
- Continuity → per-vehicle arc costs: arriving at a task costs the person's continuity cost.
- Unassigned → every task is optional with a heavy penalty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from robots.lena.continuity import cost_of, familiar_staff
from robots.lena.metrics import Weights
from robots.lena.model import Location, Problem, Route, Stop, Visit

__all__ = ["COST_SCALE", "Network", "RoutingModel", "Task", "break_task"]

#: OR-Tools costs are integers: weights are multiplied by this before rounding.
COST_SCALE = 10
#: Model the day's largest lateness (``Weights.lateness_max``) in OR-Tools (:meth:`RoutingModel._worst_lateness`);
#: off, only the greedy, the LNS and the choice between the steps' plans see it (for experiments).
WORST_LATENESS_TERM = True


@dataclass(frozen=True)
class Task:
    """One person's part of a visit: the visit, the role (0 or 1) and who may do it; or a break."""

    visit: Visit
    role: int
    vehicles: tuple[int, ...]
    #: True for a staff member's break (``visit`` then describes it: the office, the window, the length).
    is_break: bool = False


def break_task(problem: Problem, vehicle: int) -> Task | None:
    """The break task of staff member ``vehicle`` (None when their shift needs no break)."""
    s = problem.staff[vehicle]
    window = s.break_window()
    if window is None or s.break_rule is None:
        return None
    visit = Visit(
        id=f"break:{s.id}",
        client_id="",
        location=s.start_location,
        earliest=window[0],
        latest=window[1],
        duration=s.break_rule.minutes,
    )
    return Task(visit, 0, (vehicle,), is_break=True)


class Network:
    """Places, travel times and durations of every task of a day (shared by the greedy and OR-Tools)."""

    def __init__(self, problem: Problem, tasks: list[Task], weights: Weights) -> None:
        self.problem = problem
        self.tasks = tasks
        self.weights = weights
        staff = problem.staff
        depots: list[Location] = []
        for s in staff:
            for loc in (s.start_location, s.end_location):
                if loc not in depots:
                    depots.append(loc)
        self.depots = depots
        self.num_depots = len(depots)
        places: list[Location] = list(depots)
        place_index = {loc: i for i, loc in enumerate(places)}
        node_place = list(range(len(depots)))
        for t in tasks:
            loc = t.visit.location
            if loc not in place_index:
                place_index[loc] = len(places)
                places.append(loc)
            node_place.append(place_index[loc])
        idx = np.array(node_place)
        self.travel: dict[str, np.ndarray] = {}
        for mode in sorted({s.travel_mode for s in staff}):
            full = np.array(problem.travel.matrix(places, mode), dtype=np.int64)
            self.travel[mode] = full[np.ix_(idx, idx)]
        self.service = np.array([0] * len(depots) + [t.visit.duration for t in tasks], dtype=np.int64)
        self.num_nodes = len(node_place)

    def node(self, task_index: int) -> int:
        """The node of task ``task_index``."""
        return self.num_depots + task_index

    def same_visit(self, task_index: int) -> list[int]:
        """The tasks of the visit task ``task_index`` belongs to (one, or two for double staffing)."""
        if not hasattr(self, "_by_visit"):
            by_visit: dict[str, list[int]] = {}
            for k, t in enumerate(self.tasks):
                by_visit.setdefault(t.visit.id, []).append(k)
            self._by_visit = by_visit
        return self._by_visit[self.tasks[task_index].visit.id]

    def model_bytes(self) -> int:
        """About how much memory OR-Tools' transit matrices of the whole day take (8 bytes a cell).

        One time matrix per travel mode, and one cost matrix per mode, or per person when the cost of
        arriving depends on the person (continuity, competences: :meth:`RoutingModel._costs`). Measured at
        1,000 visits and 150 staff: about 1.9 GB estimated, 1.9 GB more resident memory per model.
        """
        staff = self.problem.staff
        restricted = any(len(t.vehicles) < len(staff) for t in self.tasks)
        per_person = restricted or not self.weights.continuity.is_flat()
        matrices = len(self.travel) + (len(staff) if per_person else len(self.travel))
        return 8 * self.num_nodes * self.num_nodes * matrices

    def anchor_break(self, task_index: int, node: int) -> None:
        """Put break task ``task_index`` at the place of ``node`` (travel to and from it as from there)."""
        n = self.node(task_index)
        for m in self.travel.values():
            m[n, :] = m[node, :]
            m[:, n] = m[:, node]
            m[n, n] = 0


class RoutingModel:
    """The OR-Tools model of some of the network's tasks (all by default); solves from initial routes."""

    def __init__(self, net: Network, subset: list[int] | None = None) -> None:
        self.net = net
        self.problem = net.problem
        self.weights = net.weights
        self.subset = list(range(len(net.tasks))) if subset is None else list(subset)
        self.local = {k: i for i, k in enumerate(self.subset)}
        self.tasks = [net.tasks[k] for k in self.subset]
        self.depots = net.depots
        self.num_depots = net.num_depots
        sel = np.array(list(range(net.num_depots)) + [net.node(k) for k in self.subset])
        self.travel = {mode: m[np.ix_(sel, sel)] for mode, m in net.travel.items()}
        self.service = net.service[sel]
        self.num_nodes = len(sel)
        staff = self.problem.staff
        starts = [net.depots.index(s.start_location) for s in staff]
        ends = [net.depots.index(s.end_location) for s in staff]
        self.manager = pywrapcp.RoutingIndexManager(self.num_nodes, len(staff), starts, ends)
        self.routing = pywrapcp.RoutingModel(self.manager)
        self._build()

    # -- building ------------------------------------------------------------------------
    def node(self, local: int) -> int:
        """The node of the model's task number ``local``."""
        return self.num_depots + local

    def index(self, local: int) -> int:
        """The OR-Tools variable index of the model's task number ``local``."""
        return int(self.manager.NodeToIndex(self.node(local)))

    def _build(self) -> None:
        problem, routing, w = self.problem, self.routing, self.weights
        staff = problem.staff
        horizon = (
            max(
                [s.shift_end for s in staff]
                + [t.visit.latest + problem.max_lateness + t.visit.duration for t in self.tasks]
            )
            + 1
        )
        time_cb = {
            mode: routing.RegisterTransitMatrix((m + self.service[:, None]).tolist()) for mode, m in self.travel.items()
        }
        routing.AddDimensionWithVehicleTransits(
            [time_cb[s.travel_mode] for s in staff], horizon, horizon, False, "time"
        )
        self.time = routing.GetDimensionOrDie("time")
        self._costs()
        solver = routing.solver()
        for v, s in enumerate(staff):
            self.time.CumulVar(routing.Start(v)).SetRange(s.shift_start, s.shift_start)
            self.time.CumulVar(routing.End(v)).SetRange(s.shift_start, s.shift_end)
        late_cost = round(COST_SCALE * w.lateness)
        for k, t in enumerate(self.tasks):
            i = self.index(k)
            vis = t.visit
            cumul = self.time.CumulVar(i)
            locked_here = (
                vis.locked is not None
                and vis.locked.start is not None
                and any(staff[x].id == vis.locked.staff_id for x in t.vehicles)
                and len(t.vehicles) == 1
            )
            if locked_here:
                assert vis.locked is not None and vis.locked.start is not None
                cumul.SetRange(vis.locked.start, vis.locked.start)
            else:
                cumul.SetRange(vis.earliest, vis.latest + problem.max_lateness)
                if problem.max_lateness > 0 and late_cost > 0:
                    self.time.SetCumulVarSoftUpperBound(i, vis.latest, late_cost)
            if len(t.vehicles) < len(staff):
                # SetAllowedVehiclesForIndex's Python binding is broken in OR-Tools 9.15 (it accepts
                # no sequence): restrict the vehicle variable instead; _costs() makes the other
                # vehicles prohibitively expensive so that local search does not even try them.
                routing.VehicleVar(i).SetValues([-1, *t.vehicles])
            penalty = w.locked_unassigned if vis.locked is not None else w.unassigned
            if t.is_break:
                cumul.SetRange(vis.earliest, vis.latest)
                penalty = 10 * w.locked_unassigned
            routing.AddDisjunction([i], max(1, round(COST_SCALE * penalty)))
        self._pairs(solver)
        self._loads()
        self._worst_lateness(solver)

    def _worst_lateness(self, solver: Any) -> None:
        """The day's largest lateness as the global span of a *tardiness* dimension, costing ``Weights.lateness_max``.

        OR-Tools has no max term in its objective; a dimension's global span cost is one:
        coefficient × (the largest end cumul − the smallest start cumul). The tardiness dimension has
        no transit and free slack, so its cumul never falls along a route; its starts are fixed at 0 and
        each visit's cumul is at least its lateness (time cumul − latest start), so the largest end
        cumul is at least the day's largest lateness and the search pays for it.
        """
        problem, routing = self.problem, self.routing
        cost = round(COST_SCALE * self.weights.lateness_max)
        if not WORST_LATENESS_TERM or problem.max_lateness <= 0 or cost <= 0 or not self.tasks:
            return
        bound = problem.max_lateness
        zero = routing.RegisterUnaryTransitVector([0] * self.num_nodes)
        routing.AddDimension(zero, bound, bound, True, "tardiness")
        tardiness = routing.GetDimensionOrDie("tardiness")
        tardiness.SetGlobalSpanCostCoefficient(cost)
        self.tardiness = tardiness
        for k, t in enumerate(self.tasks):
            if t.is_break:
                continue
            i = self.index(k)
            solver.Add(tardiness.CumulVar(i) >= self.time.CumulVar(i) - t.visit.latest)

    def _costs(self) -> None:
        problem, routing, w = self.problem, self.routing, self.weights
        staff = problem.staff
        travel_cost = {mode: np.rint(m * (COST_SCALE * w.travel)).astype(np.int64) for mode, m in self.travel.items()}
        restricted = any(len(t.vehicles) < len(staff) for t in self.tasks)
        if (w.continuity.is_flat() and not restricted) or not self.tasks:
            flat = round(COST_SCALE * w.continuity.new_face)
            shared: dict[str, int] = {}
            for mode, m in travel_cost.items():
                arrive = np.array([0] * self.num_depots + [flat] * len(self.tasks), dtype=np.int64)
                shared[mode] = routing.RegisterTransitMatrix((m + arrive[None, :]).tolist())
            for v, s in enumerate(staff):
                routing.SetArcCostEvaluatorOfVehicle(shared[s.travel_mode], v)
            return
        familiar = familiar_staff(problem)
        forbidden = 4 * round(COST_SCALE * max(w.unassigned, w.locked_unassigned)) + 1
        registered: dict[tuple[str, bytes], int] = {}
        for v, s in enumerate(staff):
            arrive = np.array(
                [0] * self.num_depots
                + [
                    0
                    if t.is_break and v in t.vehicles
                    else round(
                        COST_SCALE * cost_of(t.visit, s.id, familiar.get(t.visit.client_id, set()), w.continuity)
                    )
                    if v in t.vehicles
                    else forbidden
                    for t in self.tasks
                ],
                dtype=np.int64,
            )
            key = (s.travel_mode, arrive.tobytes())
            if key not in registered:
                registered[key] = routing.RegisterTransitMatrix((travel_cost[s.travel_mode] + arrive[None, :]).tolist())
            routing.SetArcCostEvaluatorOfVehicle(registered[key], v)

    def _pairs(self, solver: Any) -> None:
        routing = self.routing
        first: dict[str, int] = {}
        for k, t in enumerate(self.tasks):
            if t.visit.staff_count == 2:
                if t.visit.id not in first:
                    first[t.visit.id] = k
                    continue
                a_task, b_task = first[t.visit.id], k
                if self.tasks[a_task].role == 1:
                    a_task, b_task = b_task, a_task
                a, b = self.index(a_task), self.index(b_task)
                solver.Add(routing.ActiveVar(a) == routing.ActiveVar(b))
                # Different people when performed; when both are left out both vehicles are -1.
                solver.Add(routing.VehicleVar(a) != routing.VehicleVar(b) + routing.ActiveVar(b) - 1)
                ca, cb = self.time.CumulVar(a), self.time.CumulVar(b)
                sync = t.visit.sync
                if sync is None or sync.kind == "simultaneous":
                    solver.Add(ca == cb)
                else:
                    solver.Add(cb >= ca + sync.min_gap)
                    solver.Add(cb <= ca + sync.max_gap)

    def _loads(self) -> None:
        staff = self.problem.staff
        if not any(t.visit.load for t in self.tasks) or all(s.capacity is None for s in staff):
            return
        loads = [0] * self.num_depots + [t.visit.load for t in self.tasks]
        cb = self.routing.RegisterUnaryTransitVector(loads)
        big = sum(loads) + 1
        self.routing.AddDimensionWithVehicleCapacity(
            cb, 0, [s.capacity if s.capacity is not None else big for s in staff], True, "load"
        )

    # -- solving -------------------------------------------------------------------------
    def parameters(
        self,
        *,
        seconds: float,
        first_solution: str,
        metaheuristic: str,
        solution_limit: int | None = None,
        log: bool = False,
    ) -> Any:
        """Search parameters: a first-solution strategy, a metaheuristic, a time and work limit."""
        params = pywrapcp.DefaultRoutingSearchParameters()
        params.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, first_solution)
        params.local_search_metaheuristic = getattr(routing_enums_pb2.LocalSearchMetaheuristic, metaheuristic)
        params.time_limit.FromMilliseconds(max(1, int(seconds * 1000)))
        if solution_limit is not None:
            params.solution_limit = solution_limit
        params.log_search = log
        return params

    def solve(self, params: Any, initial: list[list[int]] | list[Route] | None = None) -> Any:
        """Solve from ``initial`` routes (network task indices, or timed routes); an assignment or None."""
        routing = self.routing
        if initial:
            # The list is one kind or the other; the comprehensions only tell mypy which.
            if isinstance(initial[0], Route):
                start = self.timed(params, [r for r in initial if isinstance(r, Route)])
            else:
                start = self.read(params, [r for r in initial if not isinstance(r, Route)])
            if start is not None:
                return routing.SolveFromAssignmentWithParameters(start, params)
            return None
        return routing.SolveWithParameters(params)

    def read(self, params: Any, initial: list[list[int]]) -> Any:
        """The assignment of ``initial`` routes (network task indices) as they are, or None."""
        self.routing.CloseModelWithParameters(params)
        routes = [[self.index(self.local[k]) for k in r if k in self.local] for r in initial]
        return self.routing.ReadAssignmentFromRoutes(routes, True)

    def timed(self, params: Any, routes: list[Route]) -> Any:
        """A start assignment from timed ``routes`` (order, starts and break starts) with the times given."""
        routing, time = self.routing, self.time
        routing.CloseModelWithParameters(params)
        where = {(t.visit.id, t.role): k for k, t in enumerate(self.tasks)}
        a = routing.solver().Assignment()
        active: set[int] = set()
        for v, r in enumerate(routes):
            prev = routing.Start(v)
            stops = list(r.stops)
            if r.break_start is not None:
                stops.append(Stop(f"break:{r.staff_id}", r.break_start))
            for st in sorted(stops, key=lambda s: s.start):
                k = where.get((st.visit_id, st.role))
                if k is None:
                    continue
                i = self.index(k)
                a.Add(routing.NextVar(prev))
                a.SetValue(routing.NextVar(prev), i)
                a.Add(time.CumulVar(i))
                a.SetValue(time.CumulVar(i), st.start)
                prev = i
                active.add(k)
            a.Add(routing.NextVar(prev))
            a.SetValue(routing.NextVar(prev), routing.End(v))
        for k in range(len(self.tasks)):
            if k not in active:
                i = self.index(k)
                a.Add(routing.NextVar(i))
                a.SetValue(routing.NextVar(i), i)
        return a

    def routes(self, solution: Any) -> tuple[list[Route], list[int]]:
        """The routes of ``solution`` and the network indices of the model's tasks it left out."""
        routing, manager = self.routing, self.manager
        done: set[int] = set()
        routes: list[Route] = []
        for s in self.problem.staff:
            v = len(routes)
            stops: list[Stop] = []
            brk: int | None = None
            i = solution.Value(routing.NextVar(routing.Start(v)))
            while not routing.IsEnd(i):
                k = manager.IndexToNode(i) - self.num_depots
                done.add(k)
                t = self.tasks[k]
                at = int(solution.Value(self.time.CumulVar(i)))
                if t.is_break:
                    brk = at
                else:
                    stops.append(Stop(t.visit.id, at, t.role))
                i = solution.Value(routing.NextVar(i))
            routes.append(Route(s.id, tuple(stops), brk))
        left = [self.subset[k] for k in range(len(self.tasks)) if k not in done]
        return routes, left
