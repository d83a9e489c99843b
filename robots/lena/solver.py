"""Lena's solver: a planning day in, a checked plan out.

1. Validate the model; give each role of each visit its candidates (competence, shift,
   locks); visits nobody can do are unassigned at once with the reason.
2. Plain VRPTW days (no breaks, double staffing, locks, skills or preferences) are first
   solved by PyVRP, whose routes seed step 3 (:mod:`robots.lena.warmstart`).
3. OR-Tools routing (:mod:`robots.lena.routing`) with guided local search, in the remaining
   time, models every constraint and the objective: travel + lateness + continuity +
   heavily penalised unassigned visits.
4. The plan is checked by :func:`robots.lena.check.check_plan`; should anything break a
   rule (a bug, or a travel source without the triangle inequality), the visits involved
   are taken out with the reason, so a plan that leaves here never breaks a hard rule.

With ``processes`` above 1 the day is solved that many times at once in processes of their own,
seeds ``seed``, ``seed + 1``, …, and the cheapest plan is kept (:mod:`robots.lena.portfolio`).

Deterministic for a seed when the work limit, not the time limit, ends the search: the
time limit is then only a safety net. The seed permutes the order tasks and staff are
given to the search (seed 0 keeps the input order).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from core.api import RobotError
from robots.lena import portfolio
from robots.lena.check import TravelTable, Violation, check_plan
from robots.lena.construct import Greedy
from robots.lena.doubles import relocate
from robots.lena.lns import improve, perturb
from robots.lena.metrics import PlanMetrics, Weights, evaluate
from robots.lena.model import Plan, Problem, Route, Unassigned
from robots.lena.polish import can_polish, polish
from robots.lena.portfolio import WorkerRun
from robots.lena.reasons import candidates, left_out
from robots.lena.routing import Network, RoutingModel, Task, break_task
from robots.lena.warmstart import is_plain, pyvrp_routes

__all__ = ["SolveResult", "SolverError", "SolverOptions", "Weights", "place_break", "solve"]


#: Seconds kept back from the time limit for checking and reporting.
RESERVE = 1.0
#: Share of the time the large-neighbourhood search gets before OR-Tools, for big and small days.
LNS_SHARE_BIG, LNS_SHARE_SMALL = 0.5, 0.2
#: OR-Tools rounds after the LNS: the share of the time left each takes (breaks are re-anchored between rounds).
ROUNDS = (0.5, 0.6, 1.0)
#: Days without breaks whose continuity cost is the same for everyone, of more than this many tasks, are
#: improved by the LNS, PyVRP and OR-Tools in turn (:mod:`robots.lena.polish`). Measured on all 70 Mankowska
#: instances at 60 s, one seed (docs/benchmarks.md): 75 patients (98 tasks) 5.13 % above the best published
#: with the OR-Tools rounds, 2.45 % this way; 200/300 patients 13.6 → 3.8 % on four instances. Was 90 until
#: the 25- and 50-patient days (33 and 65 tasks) were measured with today's steps, kicks and doubles included
#: (58 CPU seconds, seed 1, docs/benchmarks.md "Other instances of the same family"): Kummer's 25- and
#: 50-patient days 3.29 → 0.85 % on 14 (8 better, 6 worse; their tardiness-heavy days 14.75 → −0.41 % at most),
#: Mankowska's 0.67 → 0.39 % on 10 (5 better, 1 worse). The 10-patient days (13 tasks) keep the OR-Tools rounds,
#: which solve them to the best published or within the max-tardiness term's reach.
POLISH_MIN_TASKS = 20
#: How far PyVRP may move a double-staffed visit (each person's start, as a share of the median visit
#: duration) before the two are synchronised again: 0.4 (about 5 minutes on Mankowska) gave 4.2 % on the
#: big days against 5.0 % with the visits pinned and 15 % with 1.25 (the synchronised result was worse).
POLISH_SLACK = 0.4
#: Their steps and shares of the time: a start, then the rest in turn until the time is up.
POLISH_START: tuple[tuple[str, float], ...] = (("lns", 0.1),)
#: OR-Tools is the step that moves the double-staffed visits' times with their synchronisation exact, and in traces
#: of 75-patient days (docs/benchmarks.md, "where the 75-patient days' descent stalls") it gained 1.5-2.0 objective
#: units per CPU second after the start, PyVRP 0.2-0.9 and the LNS none (it converges within 3 s and from a polished
#: plan finds nothing cheaper; after a kick it puts the plan back together): so OR-Tools gets 15 % and the LNS 5 %
#: (was 10 % and 10 %). After each PyVRP step, 5 % for :func:`robots.lena.doubles.relocate`, which moves a
#: double-staffed visit in both people's days at once with the synchronisation exact: on the ten 75-patient days,
#: seeds 1 and 2, 58 CPU seconds, 3.85 % above the best published without it and 3.39 % with it (docs/benchmarks.md,
#: "moving a double-staffed visit in both people's days at once").
POLISH_REPEAT: tuple[tuple[str, float], ...] = (
    ("pyvrp", 0.05),
    ("doubles", 0.05),
    ("ortools", 0.15),
    ("pyvrp", 0.05),
    ("doubles", 0.05),
    ("lns", 0.05),
)
#: The ``doubles`` steps are taken on days of at most this many tasks (on bigger ones the turns are as without them):
#: measured at 58 CPU seconds, seed 1, they took 100_1 and 100_5 (130 tasks) from 1.43 / 5.21 % to 0.93 / 5.03 %
#: above the best published, but 200_1 (260 tasks) from 1.82 to 3.72 % and 300_1 (400) from 1.87 to 5.58 %: each
#: exact timing walks the whole day, so the step gets fewer moves for its share of the time as the day grows.
DOUBLES_MAX_TASKS = 150
#: With a work limit, this many steps after the start.
POLISH_WORK_STEPS = 2 * len(POLISH_REPEAT)
#: After this many steps in a row without a cheaper plan, the best plan is kicked (:func:`robots.lena.lns.perturb`:
#: some of its visits taken out and put back, kept whatever it costs) and the steps go on from there (0: never).
#: On a 75-patient Mankowska day the steps settle in one plan within about 15 of the 60 seconds and then gain
#: nothing; at a fixed work limit (the same search up to the first kick) kicks took 75_5 from 12.2 to 1.3 % above
#: the best published and left the other days measured as they were (docs/benchmarks.md, 2026-12-07; at 60 s
#: not shown). A kick is only made before an LNS step: about once every 40 % of the time.
KICK_AFTER = 3
#: The share of the visits a kick moves: 0.1 raised a 75-patient plan's cost by 10-30 %, which the next steps win
#: back into another plan; restarting from the greedy's start plan instead found the same plan again (75_1).
KICK_SHARE = 0.1
#: Other days (breaks, continuity per person) skip OR-Tools' rounds, the LNS getting all the time, when
#: OR-Tools' transit matrices would take more than this (:meth:`Network.model_bytes`): at 1,000 visits
#: and 150 staff, each with their own continuity costs, one model took 1.9 GB and 11-12 CPU seconds to
#: build (a tenth of a 120 s budget) for one round, and the LNS alone planned as well (docs/benchmarks.md).
ORTOOLS_MAX_BYTES = 512 * 2**20


class SolverError(RobotError):
    """The solver could not produce a plan that passes the check."""

    code = "lena_solver"


@dataclass(frozen=True)
class SolverOptions:
    """How hard and how long to search."""

    #: Wall-clock seconds for the whole solve (model building included).
    time_limit: float = 30.0
    seed: int = 0
    weights: Weights = field(default_factory=Weights)
    #: ``auto``: a start from PyVRP (plain VRPTW days) or the greedy (:mod:`robots.lena.construct`),
    #: then OR-Tools, then the greedy puts back what it can; ``ortools``: OR-Tools alone from its own
    #: first solution (the plain baseline); ``pyvrp``/``greedy``: that start as it is.
    strategy: Literal["auto", "ortools", "pyvrp", "greedy", "lns", "greedy+ortools"] = "auto"
    #: Share of the time limit PyVRP gets when it runs.
    warm_start_share: float = 0.8
    #: Deterministic work limit: OR-Tools solutions and PyVRP iterations (None = time only).
    work_limit: int | None = None
    #: OR-Tools first-solution strategy when it starts on its own; ``auto``: parallel cheapest insertion
    #: up to 150 tasks, local cheapest insertion above (much faster on big days).
    first_solution: str = "auto"
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    log: bool = False
    #: Independent searches at once, each in a process of its own with seed ``seed + i``, the cheapest plan
    #: kept (:mod:`robots.lena.portfolio`); the time limit stays wall-clock, so N processes use N CPUs for it.
    #: 1, or a time limit below :data:`robots.lena.portfolio.MIN_SECONDS`: one search in this process.
    processes: int = 1

    def __post_init__(self) -> None:
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1, not {self.processes}")


@dataclass
class SolveResult:
    """The plan, its figures, and how it was found."""

    plan: Plan
    metrics: PlanMetrics
    engine: str
    seconds: float
    #: ``solved``, or ``no_solution`` when the search found no plan in time (all visits unassigned).
    status: str = "solved"
    #: Visits taken out after the check (should stay empty).
    repaired: list[Violation] = field(default_factory=list)
    #: CPU seconds of the solve (with a portfolio: of every process together).
    cpu_seconds: float = 0.0
    #: The seed of the search whose plan this is.
    seed: int = 0
    #: Processes that searched (1: this one alone) and, with more, what each did.
    processes: int = 1
    workers: tuple[WorkerRun, ...] = ()


def _tasks(problem: Problem, table: TravelTable) -> tuple[list[Task], list[Unassigned]]:
    tasks: list[Task] = []
    unassigned: list[Unassigned] = []
    for v in problem.visits:
        c = candidates(problem, table, v)
        if c.unassigned is not None:
            unassigned.append(c.unassigned)
            continue
        for role, vehicles in enumerate(c.roles):
            tasks.append(Task(v, role, vehicles))
    for vehicle in range(len(problem.staff)):
        brk = break_task(problem, vehicle)
        if brk is not None:
            tasks.append(brk)
    return tasks, unassigned


def solve(problem: Problem, options: SolverOptions | None = None) -> SolveResult:
    """Plan ``problem`` within ``options.time_limit``; every visit ends planned or unassigned with a reason."""
    opts = options or SolverOptions()
    if opts.processes > 1 and opts.time_limit >= portfolio.MIN_SECONDS:
        return portfolio.solve_portfolio(problem, opts)
    began, cpu = time.monotonic(), time.process_time()
    problem.validate()
    table = TravelTable(problem)
    tasks, unassigned = _tasks(problem, table)
    if opts.seed:
        random.Random(opts.seed).shuffle(tasks)
    engine: str = opts.strategy
    status = "solved"
    routes = [Route(s.id) for s in problem.staff]
    if any(not t.is_break for t in tasks):
        routes, left, engine, status = _search(problem, tasks, opts, began)
        seen: set[str] = set()
        for k in left:
            v = tasks[k].visit
            if v.id not in seen and not tasks[k].is_break:
                seen.add(v.id)
                unassigned.append(left_out(problem, v))
    plan = Plan(tuple(routes), tuple(sorted(unassigned, key=lambda u: u.visit_id)))
    plan, repaired = _guard(problem, plan, table)
    metrics = evaluate(problem, plan, opts.weights, table)
    seconds, cpu = round(time.monotonic() - began, 3), round(time.process_time() - cpu, 2)
    return SolveResult(plan, metrics, engine, seconds, status, repaired, cpu_seconds=cpu, seed=opts.seed)


def _search(
    problem: Problem, tasks: list[Task], opts: SolverOptions, began: float
) -> tuple[list[Route], list[int], str, str]:
    """Routes, the tasks left out, the engine used and the status."""
    net = Network(problem, tasks, opts.weights)

    reserve = min(RESERVE, 0.1 * opts.time_limit)

    def remaining() -> float:
        return opts.time_limit - (time.monotonic() - began)

    first = opts.first_solution
    if first == "auto":
        first = "PARALLEL_CHEAPEST_INSERTION" if len(tasks) <= 150 else "LOCAL_CHEAPEST_INSERTION"

    def params(model: RoutingModel, seconds: float) -> object:
        return model.parameters(
            seconds=max(0.2, seconds),
            first_solution=first,
            metaheuristic=opts.metaheuristic,
            solution_limit=opts.work_limit,
            log=opts.log,
        )

    everyone = list(range(len(tasks)))
    if opts.strategy == "ortools":  # the plain baseline: OR-Tools from its own first solution
        model = RoutingModel(net)
        solution = model.solve(params(model, remaining() - reserve))
        if solution is None:
            return [Route(s.id) for s in problem.staff], everyone, "ortools", "no_solution"
        routes, left = model.routes(solution)
        return routes, left, "ortools", "solved"
    if is_plain(net):
        model = RoutingModel(net)
        share = 1.0 if opts.strategy == "pyvrp" else opts.warm_start_share
        initial = pyvrp_routes(
            model, max(0.05, opts.time_limit * share - (time.monotonic() - began)), opts.seed, opts.work_limit
        )
        if initial is not None:
            if opts.strategy == "pyvrp":
                start = model.read(params(model, 1.0), initial)
                if start is not None:
                    routes, left = model.routes(start)
                    return routes, left, "pyvrp", "solved"
            else:
                solution = model.solve(params(model, remaining() - reserve), initial)
                if solution is not None:
                    routes, left = model.routes(solution)
                    return routes, left, "pyvrp+ortools", "solved"
    # The greedy start, with breaks anchored where it placed them; OR-Tools improves it (and fits in
    # single visits it can); the greedy puts back what it can on the result; repeat while time lasts.
    greedy = Greedy(net)
    greedy.insert_all()
    routes = greedy.plan_routes()
    left = [k for k in everyone if k not in greedy.placed]
    if opts.strategy in ("greedy", "pyvrp"):
        return routes, left, "greedy", "solved"

    def ortools_round(state: Greedy, seconds: float) -> Greedy | None:
        """OR-Tools from ``state`` (breaks anchored as they are), then the greedy puts back what is left out."""
        model = RoutingModel(net)
        solution = model.solve(params(model, seconds), state.plan_routes())
        if solution is None:
            return None
        found, dropped = model.routes(solution)
        again = Greedy(net, push=state.push)
        again.load(found)
        again.insert_all(sorted(set(dropped) | {k for k in everyone if k not in state.placed}))
        return again

    if opts.strategy == "auto" and len(tasks) > POLISH_MIN_TASKS and can_polish(greedy):
        state, engine = _lns_and_polish(greedy, opts, lambda: remaining() - reserve, ortools_round)
        return state.plan_routes(), [k for k in everyone if k not in state.placed], engine, "solved"
    # Too big for OR-Tools' matrices (a large district's day): the LNS gets all the time.
    lns_only = opts.strategy == "lns" or (opts.strategy == "auto" and net.model_bytes() > ORTOOLS_MAX_BYTES)
    if opts.strategy in ("auto", "lns"):
        # Ruin and recreate first (it moves double-staffed visits well); OR-Tools then polishes.
        share = 1.0 if lns_only else (LNS_SHARE_BIG if len(tasks) > 150 else LNS_SHARE_SMALL)
        greedy, moves = improve(
            greedy, seconds=(remaining() - reserve) * share, seed=opts.seed, iterations=opts.work_limit
        )
        routes, left = greedy.plan_routes(), [k for k in everyone if k not in greedy.placed]
        if lns_only:
            return routes, left, f"greedy+lns({moves})", "solved"
    engine = "greedy+lns" if opts.strategy == "auto" else "greedy"
    state = greedy
    anchors = state.anchors()
    best = (state.cost(), routes, left)
    for round_no, share in enumerate(ROUNDS):
        budget = (remaining() - reserve) * share
        if budget < 0.3:
            break
        for k, node in anchors.items():
            net.anchor_break(k, node)
        seconds = min(budget, remaining() - reserve)
        if seconds < 0.2:
            break
        again = ortools_round(state, seconds)
        if again is None:
            # OR-Tools could not restore the start (it happens on big, busy days): search on with the LNS.
            state, _ = improve(
                state,
                seconds=max(0.0, min(budget, remaining() - reserve)),
                seed=opts.seed + round_no + 1,
                iterations=opts.work_limit,
            )
            engine = engine if engine.endswith("+lns") else engine + "+lns"
        else:
            engine = engine + "+ortools" if "ortools" not in engine else engine
            state = again
        routes, left, anchors = state.plan_routes(), [k for k in everyone if k not in state.placed], state.anchors()
        if state.cost() < best[0]:
            best = (state.cost(), routes, left)
    return best[1], best[2], engine, "solved"


def _lns_and_polish(
    greedy: Greedy, opts: SolverOptions, left: Callable[[], float], ortools: Callable[[Greedy, float], Greedy | None]
) -> tuple[Greedy, str]:
    """The steps of :data:`POLISH_START`, then of :data:`POLISH_REPEAT` in turn until the time is up.

    Each step's result is kept only when it is cheaper (the LNS returns the best plan it saw). When
    :data:`KICK_AFTER` steps in a row gained nothing, the best plan is kicked (:func:`perturb`) and the
    steps go on from there; the best plan seen is returned.
    """
    state, total = greedy, max(0.0, left())
    best = state
    durations = sorted(t.visit.duration for t in greedy.net.tasks)
    slack = round(POLISH_SLACK * durations[len(durations) // 2])
    used: list[str] = ["greedy"]
    repeat = POLISH_REPEAT
    if len(greedy.net.tasks) > DOUBLES_MAX_TASKS:
        repeat = tuple(step for step in POLISH_REPEAT if step[0] != "doubles")
    plan = itertools.chain(POLISH_START, itertools.cycle(repeat))
    stale = kicks = 0
    for step, (kind, share) in enumerate(plan):
        seconds = total * share
        if left() - seconds < 0.5 * seconds:  # too little would be left for another step: take it all
            seconds = left()
        if seconds < 0.2 or (opts.work_limit is not None and step >= len(POLISH_START) + POLISH_WORK_STEPS):
            break  # (with a work limit a fixed number of steps, so that the plan does not depend on the machine)
        if KICK_AFTER and stale >= KICK_AFTER and kind == "lns":
            kicks += 1
            state, stale = perturb(best, share=KICK_SHARE, seed=opts.seed * 7919 + step), 0
        better: Greedy | None
        if kind == "lns":
            better, _ = improve(state, seconds=seconds, seed=opts.seed + step, iterations=opts.work_limit)
        elif kind == "pyvrp":
            better = polish(state, seconds, opts.seed + step, opts.work_limit, slack)
        elif kind == "doubles":
            better, _ = relocate(state, seconds, opts.seed + step, None if opts.work_limit is None else 3)
        else:
            better = ortools(state, seconds)
        if better is not None and better.cost() <= state.cost():
            state = better
            if kind not in used:
                used.append(kind)
        if state.cost() < best.cost() - 1e-9:
            best, stale = state, 0
        else:
            stale += 1
    if kicks:
        used.append(f"kicks({kicks})")
    return best, "+".join(used)


def _guard(problem: Problem, plan: Plan, table: TravelTable) -> tuple[Plan, list[Violation]]:
    """Check the plan; take out whatever breaks a rule until nothing does."""
    repaired: list[Violation] = []
    for _ in range(20):
        violations = check_plan(problem, plan, table)
        if not violations:
            return plan, repaired
        repaired += violations
        plan = _take_out(problem, plan, violations, table)
    violations = check_plan(problem, plan, table)
    if violations:
        raise SolverError("the plan still breaks rules after repair: " + "; ".join(map(str, violations[:5])))
    return plan, repaired


def _take_out(problem: Problem, plan: Plan, violations: list[Violation], table: TravelTable) -> Plan:
    drop: dict[str, str] = {}
    rebreak: set[str] = set()
    for v in violations:
        if v.code.startswith("break"):
            rebreak.add(v.staff_id or "")
        if v.visit_id is not None and v.code != "break_missing":
            drop.setdefault(v.visit_id, v.message)
        elif v.staff_id is not None and v.code in ("shift_end", "capacity"):
            route = plan.route(v.staff_id)
            if route is not None and route.stops:
                last = max(route.stops, key=lambda s: s.start)
                drop.setdefault(last.visit_id, v.message)
    routes = []
    for r in plan.routes:
        stops = tuple(s for s in r.stops if s.visit_id not in drop)
        route = Route(r.staff_id, stops, r.break_start)
        if r.staff_id in rebreak:
            start = place_break(problem, table, route)
            if start is None and stops:
                # No room for the break: give up the visit nearest the break window.
                member = problem.member(r.staff_id)
                window = member.break_window() or (member.shift_start, member.shift_end)
                worst = min(stops, key=lambda s: abs(s.start - window[0]))
                drop.setdefault(worst.visit_id, f"{r.staff_id} får inte plats med rasten")
                stops = tuple(s for s in stops if s.visit_id != worst.visit_id)
                start = place_break(problem, table, Route(r.staff_id, stops))
            route = Route(r.staff_id, stops, start)
        routes.append(route)
    # Both people of a double-staffed visit go together.
    routes = [Route(r.staff_id, tuple(s for s in r.stops if s.visit_id not in drop), r.break_start) for r in routes]
    extra = tuple(
        Unassigned(vid, "check_failed", f"Togs bort vid kontrollen: {why}")
        for vid, why in drop.items()
        if not any(u.visit_id == vid for u in plan.unassigned)
    )
    return Plan(tuple(routes), tuple(sorted(plan.unassigned + extra, key=lambda u: u.visit_id)))


def place_break(problem: Problem, table: TravelTable, route: Route) -> int | None:
    """The earliest break start that fits the staff member's day as it stands (None if none fits)."""
    member = problem.member(route.staff_id)
    window = member.break_window()
    if window is None or member.break_rule is None:
        return None
    minutes = member.break_rule.minutes
    lo, hi = window
    here, free = member.start_location, member.shift_start
    mode = member.travel_mode
    legs = []
    for st in sorted(route.stops, key=lambda s: s.start):
        v = problem.visit(st.visit_id)
        legs.append((free, st.start, table.time(here, v.location, mode)))
        here, free = v.location, st.start + v.duration
    legs.append((free, member.shift_end, table.time(here, member.end_location, mode)))
    for gap_start, gap_end, travel in legs:
        start = max(lo, gap_start)
        if start <= hi and start + minutes <= gap_end and gap_end - gap_start >= travel + minutes:
            return start
    return None
