"""Large-neighbourhood search on timed schedules: ruin a part of the plan, recreate it by cheapest insertion.

OR-Tools' local search checks the synchronisation of double-staffed visits only by constraint
propagation after its filters, so on days with many of them it accepts few moves. Here a move
removes a handful of related visits (close in place and time to a random one, or a random
few, or one person's whole day), starts the rest of the day of the people affected as early
as it can, and puts the removed visits back with the greedy's insertion, which places the two
people of a double-staffed visit together. A new plan is kept when it is better, or, early in
the search, not much worse (simulated annealing on the objective); the best one is returned.

Deterministic for a seed when ``iterations`` rather than the time limit ends it.
"""

from __future__ import annotations

import math
import random
import time

from robots.lena.construct import Greedy

__all__ = ["improve", "perturb"]

#: Cumulative chances of the removals: related (Shaw), worst, random, a whole day. Worst removal is
#: off: on Mankowska 100_1 it cost 25 points of gap; it stays for experiments.
MIX = (0.6, 0.6, 0.9)
#: How many visits a move removes at least and at most (at most an eighth of them).
MIN_REMOVE, MAX_REMOVE = 4, 40
#: Simulated annealing with soft time windows: the starting temperature as a share of the mean cost
#: per visit (penalties for visits left out not counted), and the share of it left at the end of the
#: budget. Tuned on Mankowska 200_1 (three seeds, 15 s: 1511-1575 against 1560-1582 with the old
#: schedule below).
START_TEMPERATURE, END_TEMPERATURE = 0.1, 0.01
#: With hard windows (Solomon, a real day) the earlier schedule stays: 0.002 of the mean cost per
#: visit, cooled by this factor each move.
HARD_START_TEMPERATURE, HARD_COOLING = 0.002, 0.999


def _related(g: Greedy, rng: random.Random, count: int) -> set[int]:
    """``count`` placed visit tasks near a random one in place and time (Shaw removal)."""
    net = g.net
    placed = [k for k in g.placed if not net.tasks[k].is_break]
    if not placed:
        return set()
    seed = rng.choice(placed)
    sv = net.tasks[seed].visit
    travel = next(iter(net.travel.values()))
    x = net.node(seed)
    scored = sorted(
        placed,
        key=lambda k: int(travel[x, net.node(k)]) + abs(net.tasks[k].visit.earliest - sv.earliest) * 0.5 + rng.random(),
    )
    return set(scored[:count])


def _random(g: Greedy, rng: random.Random, count: int) -> set[int]:
    placed = sorted(k for k in g.placed if not g.net.tasks[k].is_break)
    return set(rng.sample(placed, min(count, len(placed))))


def _worst(g: Greedy, rng: random.Random, count: int) -> set[int]:
    """``count`` visit tasks that cost most where they are (detour, lateness, continuity), with some chance."""
    net, w = g.net, g.weights
    nd = net.num_depots
    scored: list[tuple[float, int]] = []
    for v, row in enumerate(g.items):
        T = g.travel[g.staff[v].travel_mode]
        real = [it for it in row if not g.brk[it.node]]
        for i in range(1, len(real) - 1):
            a, x, b = real[i - 1].node, real[i].node, real[i + 1].node
            k = x - nd
            late = max(0, real[i].start - net.tasks[k].visit.latest)
            worth = w.travel * (T[a][x] + T[x][b] - T[a][b]) + w.lateness * late + g.continuity[k][v]
            scored.append((worth * rng.random() ** 3, k))
    scored.sort(reverse=True)
    return {k for _, k in scored[:count]}


def _route(g: Greedy, rng: random.Random, count: int) -> set[int]:
    nd = g.net.num_depots
    busy = [v for v, row in enumerate(g.items) if len(row) > 2]
    if not busy:
        return set()
    v = rng.choice(busy)
    return {it.node - nd for it in g.items[v] if it.node >= nd and not g.net.tasks[it.node - nd].is_break}


def improve(start: Greedy, *, seconds: float, seed: int, iterations: int | None = None) -> tuple[Greedy, int]:
    """The best schedules found from ``start`` within ``seconds`` (or ``iterations`` moves), and the moves made."""
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    net = start.net
    tasks = net.tasks
    soft = start.push
    current = start.clone()
    if soft:  # with soft windows moves compact only the days they touch, so the start is made compact once here
        current.compact_all()
    current_cost = current.cost()
    best, best_cost = (current.clone(), current_cost) if current_cost <= start.cost() else (start.clone(), start.cost())
    n_visits = sum(1 for t in tasks if not t.is_break)
    if n_visits == 0:
        return best, 0
    if soft:  # on the cost per visit without the penalties for visits left out (they would make it huge)
        start_temperature = max(1.0, START_TEMPERATURE * (current_cost - start.penalty()) / max(1, n_visits))
    else:
        start_temperature = max(1.0, HARD_START_TEMPERATURE * current_cost / max(1, n_visits))
    temperature = start_temperature
    began = time.monotonic()
    moves = 0
    while time.monotonic() < deadline and (iterations is None or moves < iterations):
        moves += 1
        trial = current.clone()
        count = rng.randint(MIN_REMOVE, max(MIN_REMOVE + 1, min(MAX_REMOVE, n_visits // 8)))
        pick = rng.random()
        chosen = (
            _related(trial, rng, count)
            if pick < MIX[0]
            else _worst(trial, rng, count)
            if pick < MIX[1]
            else _random(trial, rng, count)
            if pick < MIX[2]
            else _route(trial, rng, count)
        )
        touched: set[int] = set()
        for k in chosen:
            touched |= trial.remove(k)
        # (With hard windows every day is compacted: on the sandbox day that plans one visit more.)
        trial.compact_all(vehicles=touched if soft else None)
        trial.evicted = []
        missing = [k for k in range(len(tasks)) if k not in trial.placed and not tasks[k].is_break]
        rng.shuffle(missing)
        order = sorted(
            missing,
            key=lambda k: (
                tasks[k].visit.locked is None,
                tasks[k].visit.staff_count != 2,
                tasks[k].visit.latest + rng.randint(0, 30),
            ),
        )
        trial.insert_all(order)
        cost = trial.cost()
        if cost < current_cost - 1e-9 or rng.random() < math.exp(-(cost - current_cost) / temperature):
            current, current_cost = trial, cost
            if cost < best_cost - 1e-9:
                best, best_cost = trial.clone(), cost
        # Cooling by the share of the budget used: by moves when a move limit is given (deterministic), else by time.
        done = moves / iterations if iterations else (time.monotonic() - began) / max(seconds, 1e-9)
        temperature = start_temperature * END_TEMPERATURE ** min(1.0, done) if soft else temperature * HARD_COOLING
    return best, moves


def perturb(start: Greedy, *, share: float, seed: int) -> Greedy:
    """``start`` with about ``share`` of its visits taken out (several related groups, now and then a whole
    day) and put back by the greedy (double-staffed visits first, then by latest start), whatever that costs:
    a kick out of a local optimum that the search's own moves (a few visits at a time) and OR-Tools' and
    PyVRP's polishing no longer leave. Deterministic for a seed; a visit that no longer fits stays out
    (the next step of the search puts it back, or pays for it).
    """
    rng = random.Random(seed)
    g = start.clone()
    tasks = g.net.tasks
    n_visits = sum(1 for t in tasks if not t.is_break)
    target = max(MIN_REMOVE, round(share * n_visits))
    chosen: set[int] = set()
    touched: set[int] = set()
    while len(chosen) < target:
        size = min(target - len(chosen), rng.randint(MIN_REMOVE, max(MIN_REMOVE + 1, target // 3)))
        group = _route(g, rng, size) if rng.random() < 0.3 else _related(g, rng, size)
        group -= chosen
        if not group:
            break
        for k in group:
            touched |= g.remove(k)
        chosen |= group
    g.compact_all(vehicles=touched if g.push else None)
    g.evicted = []
    missing = [k for k in range(len(tasks)) if k not in g.placed and not tasks[k].is_break]
    rng.shuffle(missing)
    missing.sort(key=lambda k: (tasks[k].visit.locked is None, tasks[k].visit.staff_count != 2, tasks[k].visit.latest))
    g.insert_all(missing)
    return g
