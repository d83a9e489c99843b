"""Moving a double-staffed visit in both people's days at once, timed with the synchronisation exact.

PyVRP holds a double-staffed visit's two places near their times, the large-neighbourhood search
re-inserts it only where both people wait, and OR-Tools moves it only where its propagation lets a
move through: once the first steps have fixed these visits' times, nothing moves them far (docs/
benchmarks.md, "where the 75-patient days' descent stalls"). This step takes one double-staffed
visit out of both people's orders and puts it back at the best pair of positions in two different
people's orders (the same people or others), every visit after it allowed to move later: each pair
is timed by :func:`schedule` (every person's visits in order, as early as they can, the two people
of a double-staffed visit synchronised), which for fixed orders is the least feasible schedule and
so the cheapest for the objective's lateness terms. A pair is timed only while a lower bound of its
cost (the base plan's cost, the two detours, the lateness the visit itself cannot avoid) is below
the best pair found; at most :data:`MAX_EXACT` pairs a visit. The move is made when the plan gets
cheaper. On days of at most :data:`PERMUTE_MAX_TASKS` tasks each sweep then tries, in every person's
day, every order of every run of :data:`PERMUTE_WINDOW` consecutive visits, the whole plan timed
again for each: on a day where one
person alone has a competence that many visits need, that person's order decides the lateness, and
neither PyVRP (which never lets a visit start later than it does) nor a move of one visit changes it
much. Each sweep also reorders the whole day of a person with a late visit (at most :data:`DAY_EXACT_MAX`
visits), the other parts of its double-staffed visits put back into the other people's days. Sweeps over the
visits in random order go on while one finds a cheaper plan. From a plan PyVRP
has just polished they seldom do, so then, until the time is up, a ruin-and-recreate move around a
random double-staffed visit: it and 2 to :data:`CHAIN_MAX` single-staffed visits near it (in both
people's days, or in place and time) taken out, the double-staffed one put back first, each insertion
timed exactly; kept when the plan is cheaper (and the sweeps start again). With ``sweeps`` (a work
limit) only the sweeps run.

Used where :func:`robots.lena.polish.can_polish` holds (no breaks, continuity the same for
everyone) and no visit is locked.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import deque

from robots.lena.construct import Greedy
from robots.lena.model import Route, Stop

__all__ = ["MAX_EXACT", "TOP_PLACES", "can_move", "plan_cost", "relocate", "schedule"]

#: Per role, the places (person, position) with the cheapest bound that are paired.
TOP_PLACES = 30
#: At most this many pairs of places are timed exactly per visit and sweep.
MAX_EXACT = 40
#: At most this many places are timed exactly for a single-staffed visit put back.
MAX_EXACT_SINGLE = 12
#: The ruin-and-recreate move: single-staffed visits this many positions either side of the double-staffed
#: one in both days, and twice as many near it in place and time, are the candidates; 2 to CHAIN_MAX go out.
CHAIN_REACH, CHAIN_MAX = 2, 6
#: Each sweep also tries every order of every run of this many consecutive visits in a person's day (0 or 1: none).
#: 4: 23 orders a run, about 0.1 ms each to time on a 98-task day; 5 (119 orders) found nothing more on 75_1 in a
#: throwaway test (docs/benchmarks.md, "reordering a person's day").
PERMUTE_WINDOW = 4
#: ... on days of at most this many tasks: at 58 CPU seconds it took the ten 75-patient Mankowska days (98 tasks),
#: seeds 1 and 2, from 3.83 to 3.04 % above the best published (measured together with the incremental timing), but
#: made five of six 100-patient pairs (130 tasks) worse, 1.97 -> 5.07 % (100_1 seed 2: 1.68 -> 18.32 %): on a bigger
#: day a sweep of every run takes more of the step's time (docs/benchmarks.md, "reordering a person's day").
PERMUTE_MAX_TASKS = 120
#: Each sweep also reorders the whole day of every person whose day has a late visit and at most this many visits
#: (0: none): a branch and bound over the orders of that day, by an estimate of its cost (its travel, its own
#: lateness, and the lateness its order forces on the other parts of its double-staffed visits, each partner's
#: start taken from the present plan), gives the :data:`DAY_KEEP` cheapest orders; for each, the other tasks of
#: its double-staffed visits are taken out of the other people's days and put back at their cheapest places, and
#: the whole plan is timed exactly. On a day where one person alone holds a competence (75_1: one caregiver, 14
#: visits, six of them the first part of a sequential visit) the cheapest order of that day is far from the present
#: one, and neither a run of four nor a move of one visit reaches it while the partners' days hold the second parts
#: where they are. On the ten 75-patient Mankowska days, seeds 1 and 2, 58 CPU seconds: 3.78 % above the best
#: published without it, 1.99 % with it (75_1 6.19 / 10.06 -> 0.53 / -0.04 %; docs/benchmarks.md, "a whole day
#: reordered").
DAY_EXACT_MAX = 16
#: The branch and bound's nodes per day, and the orders of its estimate timed exactly.
DAY_NODES, DAY_KEEP = 30_000, 8


def can_move(g: Greedy) -> bool:
    """True when the move applies: double-staffed visits, no breaks, no locked visits."""
    tasks = g.net.tasks
    return (
        any(t.visit.staff_count == 2 for t in tasks)
        and not any(t.is_break for t in tasks)
        and all(t.visit.locked is None for t in tasks)
    )


def _partners(g: Greedy) -> list[int]:
    """Per task: the other task of its visit (itself for a single-staffed visit)."""
    net = g.net
    return [next((j for j in net.same_visit(k) if j != k), k) for k in range(len(net.tasks))]


def _simultaneous(g: Greedy, k: int, j: int) -> bool:
    sync = g.net.tasks[k].visit.sync
    return j != k and (sync is None or sync.kind == "simultaneous")


def schedule(g: Greedy, sequences: list[list[int]], partner: list[int] | None = None) -> list[int] | None:
    """The earliest start of every task (indexed by task; -1 where not placed) when person ``v`` does
    ``sequences[v]`` in that order and the two people of a double-staffed visit are synchronised; None
    when the orders wait on each other (a cycle) or a hard limit (window plus the lateness allowed,
    shift end) breaks.

    The least feasible schedule of these orders, as :func:`robots.lena.polish.timetable` computes it,
    but in one pass: the tasks are taken in a topological order of "comes after in someone's day" (the
    two tasks of a simultaneous visit together; a sequential visit's second task after its first), each
    starting as early as its predecessor, its window and its partner allow. Where that breaks a
    sequential visit's largest gap, its first task is raised to the second's start less the gap and
    the rise is carried on to what follows it (:func:`_raise`): only the tasks after a raised one are
    timed again (``timetable``'s fixed point sweeps the whole day until nothing moves, up to 200 times;
    as the fallback here it took 10 ms a call on a 98-task day, against 0.1-0.4 ms a pass).
    """
    net = g.net
    tasks = net.tasks
    partner = partner if partner is not None else _partners(g)
    n = len(tasks)
    where_v = [-1] * n
    where_i = [-1] * n
    for v, seq in enumerate(sequences):
        for i, k in enumerate(seq):
            where_v[k], where_i[k] = v, i
    # A node: a task, or the two tasks of a simultaneous visit (headed by the lower). Its in-degree: its
    # tasks that follow another task in a day, and for the second task of a sequential visit the first.
    together = [False] * n
    need = [0] * n
    sources: list[int] = []
    sequential: list[tuple[int, int]] = []
    for k in range(n):
        if where_v[k] < 0:
            continue
        j = partner[k]
        if _simultaneous(g, k, j):
            if j < k:
                continue
            together[k] = True
            count = (where_i[k] > 0) + (where_i[j] > 0)
        else:
            count = int(where_i[k] > 0)
            if j != k and tasks[k].role == 1 and where_v[j] >= 0:
                count += 1
            elif j != k and tasks[k].role == 0 and where_v[j] >= 0:
                sequential.append((k, j))
        need[k] = count
        if count == 0:
            sources.append(k)
    start = _one_pass(
        g, sequences, partner, where_v, where_i, together, need, sources, [t.visit.earliest for t in tasks]
    )
    if start is None:
        return None
    late = [k for k, j in sequential if start[j] - start[k] > _max_gap(g, k)]
    return start if not late else _raise(g, sequences, partner, where_v, where_i, start, late)


def _max_gap(g: Greedy, k: int) -> int:
    sync = g.net.tasks[k].visit.sync
    return sync.max_gap if sync is not None else 0


def _raise(
    g: Greedy,
    sequences: list[list[int]],
    partner: list[int],
    where_v: list[int],
    where_i: list[int],
    start: list[int],
    late: list[int],
) -> list[int] | None:
    """``start`` raised until every rule holds, beginning with the first tasks of sequential visits in
    ``late``, whose largest gap is broken: each raised task raises what comes after it in its day and its
    partner, and nothing else moves. The starts are lower bounds of the least schedule throughout, so
    where this ends is the least schedule; None when a hard limit breaks on the way, or when the rules
    raise each other in a circle (a task raised, through its successors, its own partner and that
    partner's largest gap, by something it raised itself: such orders have no schedule, and without this
    test the circle would go round until the lateness limit, hours of small steps later)."""
    net = g.net
    tasks, nd = net.tasks, net.num_depots
    limit = g.limit
    n = len(tasks)
    queued = [False] * n
    parent = [-1] * n
    queue: deque[int] = deque()

    def lift(y: int, t: int, by: int) -> bool:
        if t <= start[y]:
            return True
        if t > limit[nd + y]:
            return False
        if by >= 0 and tasks[y].role == 0 and partner[y] == by:  # a largest gap: is y among its causes?
            x, steps = by, 0
            while x >= 0 and steps <= n:
                if x == y:
                    return False
                x, steps = parent[x], steps + 1
        start[y] = t
        parent[y] = by
        if not queued[y]:
            queued[y] = True
            queue.append(y)
        return True

    for k in late:
        if not lift(k, start[partner[k]] - _max_gap(g, k), -1):
            return None
    while queue:
        x = queue.popleft()
        queued[x] = False
        v, i = where_v[x], where_i[x]
        seq = sequences[v]
        if i + 1 < len(seq):
            y = seq[i + 1]
            if not lift(y, start[x] + tasks[x].visit.duration + g.travel[g.staff[v].travel_mode][nd + x][nd + y], x):
                return None
        j = partner[x]
        if j == x or where_v[j] < 0:
            continue
        sync = tasks[x].visit.sync
        if sync is None or sync.kind == "simultaneous":
            t = start[x]
        elif tasks[x].role == 0:
            t = start[x] + sync.min_gap
        else:
            t = start[x] - sync.max_gap
        if not lift(j, t, x):
            return None
    for v, seq in enumerate(sequences):
        if seq:
            s, x = g.staff[v], seq[-1]
            back = g.travel[s.travel_mode][nd + x][net.depots.index(s.end_location)]
            if start[x] + tasks[x].visit.duration + back > s.shift_end:
                return None
    return start


def _one_pass(
    g: Greedy,
    sequences: list[list[int]],
    partner: list[int],
    where_v: list[int],
    where_i: list[int],
    together: list[bool],
    waiting: list[int],
    queue: list[int],
    lower: list[int],
) -> list[int] | None:
    """The topological pass of :func:`schedule` without the largest-gap rule: the starts, or None.

    ``waiting``, ``queue`` and ``lower`` are used up."""
    net = g.net
    tasks, nd = net.tasks, net.num_depots
    n = len(tasks)
    ready = [-1] * n
    start = [-1] * n
    staff = g.staff
    travel = g.travel
    limit = g.limit
    depots = net.depots
    for v, seq in enumerate(sequences):
        if seq:
            s = staff[v]
            ready[seq[0]] = s.shift_start + travel[s.travel_mode][depots.index(s.start_location)][nd + seq[0]]
    done = 0
    while queue:
        k = queue.pop()
        j = partner[k]
        t = ready[k] if ready[k] > lower[k] else lower[k]
        if together[k]:
            group: tuple[int, ...] = (k, j)
            t = max(t, ready[j], lower[j])
            start[j] = t
        else:
            group = (k,)
        start[k] = t
        if j != k and not together[k] and tasks[k].role == 0 and where_v[j] >= 0:
            sync = tasks[k].visit.sync
            gap = sync.min_gap if sync is not None else 0
            if t + gap > lower[j]:
                lower[j] = t + gap
            waiting[j] -= 1
            if waiting[j] == 0:
                queue.append(j)
        for x in group:
            if start[x] > limit[nd + x]:
                return None
            done += 1
            v, i = where_v[x], where_i[x]
            seq = sequences[v]
            T = travel[staff[v].travel_mode]
            free = start[x] + tasks[x].visit.duration
            if i + 1 < len(seq):
                y = seq[i + 1]
                ready[y] = free + T[nd + x][nd + y]
                head = partner[y] if together[partner[y]] else y
                waiting[head] -= 1
                if waiting[head] == 0:
                    queue.append(head)
            else:
                s = staff[v]
                if free + T[nd + x][depots.index(s.end_location)] > s.shift_end:
                    return None
    if done != sum(len(seq) for seq in sequences):
        return None  # the orders wait on each other
    return start


def plan_cost(g: Greedy, sequences: list[list[int]], start: list[int]) -> float:
    """:meth:`Greedy.cost` of these orders and starts, without the penalty for the tasks left out."""
    net = g.net
    tasks, nd = net.tasks, net.num_depots
    w = g.weights
    total = 0.0
    worst = 0
    for v, seq in enumerate(sequences):
        if not seq:
            continue
        s = g.staff[v]
        T = g.travel[s.travel_mode]
        here = net.depots.index(s.start_location)
        travel = 0
        for k in seq:
            travel += T[here][nd + k]
            here = nd + k
            late = start[k] - tasks[k].visit.latest
            if late > 0:
                total += w.lateness * late
                if late > worst:
                    worst = late
            total += g.continuity[k][v]
        travel += T[here][net.depots.index(s.end_location)]
        total += w.travel * travel
    return total + w.lateness_max * worst


def _worst_late(g: Greedy, sequences: list[list[int]], start: list[int]) -> int:
    """The largest lateness (0 when none) of the tasks in ``sequences`` at these starts."""
    tasks = g.net.tasks
    return max(0, max((start[x] - tasks[x].visit.latest for seq in sequences for x in seq), default=0))


def _sequences(g: Greedy) -> list[list[int]]:
    nd = g.net.num_depots
    return [[it.node - nd for it in row[1:-1]] for row in g.items]


def _greedy(g: Greedy, sequences: list[list[int]], start: list[int]) -> Greedy:
    tasks = g.net.tasks
    routes = [
        Route(s.id, tuple(Stop(tasks[k].visit.id, start[k], tasks[k].role) for k in seq))
        for s, seq in zip(g.staff, sequences, strict=True)
    ]
    out = Greedy(g.net, push=g.push)
    out.load(routes)
    return out


def relocate(g: Greedy, seconds: float, seed: int, sweeps: int | None = None) -> tuple[Greedy | None, int]:
    """``g`` with double-staffed visits moved to cheaper pairs of positions (see the module docstring),
    or None when no move made it cheaper; and the moves made. ``sweeps`` bounds the sweeps (a work limit)."""
    if not can_move(g):
        return None, 0
    deadline = time.monotonic() + seconds
    rng = random.Random(seed)
    net = g.net
    tasks = net.tasks
    partner = _partners(g)
    seqs = _sequences(g)
    start = schedule(g, seqs, partner)
    if start is None:
        return None, 0
    cost = plan_cost(g, seqs, start)
    first = [k for k, t in enumerate(tasks) if t.visit.staff_count == 2 and partner[k] > k and k in g.placed]
    moves = sweep = 0
    tried: set[tuple[int, ...]] = set()  # days whose reordering found nothing cheaper, as they were then
    while time.monotonic() < deadline and (sweeps is None or sweep < sweeps):
        sweep += 1
        improved = False
        rng.shuffle(first)
        for k in first:
            if time.monotonic() >= deadline:
                break
            j = partner[k]
            if j not in g.placed:
                continue
            base = [[x for x in seq if x != k and x != j] for seq in seqs]
            base_start = schedule(g, base, partner)
            if base_start is None:
                continue
            base_cost = plan_cost(g, base, base_start)
            base_worst = _worst_late(g, base, base_start)
            found = _best_pair(g, base, base_start, base_cost, base_worst, k, j, partner, cost)
            if found is not None and found[0] < cost - 1e-6:
                cost, seqs, start = found
                moves += 1
                improved = True
        if PERMUTE_WINDOW > 1 and len(tasks) <= PERMUTE_MAX_TASKS:
            reordered = _permute(g, seqs, cost, partner, deadline)
            if reordered is not None:
                cost, seqs, start, made = reordered
                moves += made
                improved = True
        if DAY_EXACT_MAX:
            day = _reorder_days(g, seqs, cost, partner, deadline, tried)
            if day is not None:
                cost, seqs, start = day
                moves += 1
                improved = True
        if improved:
            continue
        # A local optimum for single moves: remove a double-staffed visit with some single-staffed visits
        # around it and put them back (the double-staffed one first), every insertion timed exactly.
        while time.monotonic() < deadline and sweeps is None:
            found = _chain(g, seqs, cost, partner, rng, first)
            if found is not None:
                cost, seqs, start = found
                moves += 1
                break
        else:
            break
    if moves == 0:
        return None, 0
    out = _greedy(g, seqs, start)
    return (out, moves) if out.cost() < g.cost() - 1e-9 else (None, moves)


def _permute(
    g: Greedy, seqs: list[list[int]], cost: float, partner: list[int], deadline: float
) -> tuple[float, list[list[int]], list[int], int] | None:
    """Every order of every run of :data:`PERMUTE_WINDOW` visits in each person's day, the whole plan timed
    exactly for each (a double-staffed visit's partner waits or is waited for); each cheaper order is taken
    at once. The result and the orders taken, or None when none was cheaper."""
    found: tuple[float, list[list[int]], list[int], int] | None = None
    made = 0
    for v in range(len(seqs)):
        i = 0
        while i + PERMUTE_WINDOW <= len(seqs[v]):
            if time.monotonic() >= deadline:
                return found
            run = seqs[v][i : i + PERMUTE_WINDOW]
            for order in itertools.permutations(run):
                if list(order) == run:
                    continue
                trial = list(seqs)
                trial[v] = [*seqs[v][:i], *order, *seqs[v][i + PERMUTE_WINDOW :]]
                start = schedule(g, trial, partner)
                if start is None:
                    continue
                c = plan_cost(g, trial, start)
                if c < cost - 1e-6:
                    made += 1
                    cost, seqs = c, trial
                    found = (cost, seqs, start, made)
                    break
            else:
                i += 1
    return found


def _reorder_days(
    g: Greedy,
    seqs: list[list[int]],
    cost: float,
    partner: list[int],
    deadline: float,
    tried: set[tuple[int, ...]],
) -> tuple[float, list[list[int]], list[int]] | None:
    """Each day with a late visit and at most :data:`DAY_EXACT_MAX` visits reordered (see there); the cheapest
    plan found, when cheaper than ``cost``, else None. ``tried`` holds the days already tried to no gain."""
    tasks = g.net.tasks
    start = schedule(g, seqs, partner)
    if start is None:
        return None
    found: tuple[float, list[list[int]], list[int]] | None = None
    for v, seq in enumerate(seqs):
        if not 4 < len(seq) <= DAY_EXACT_MAX or time.monotonic() >= deadline:
            continue
        linked = [partner[x] for x in seq if partner[x] != x and partner[x] not in seq]
        if all(start[x] <= tasks[x].visit.latest for x in [*seq, *linked]) or (v, *seq) in tried:
            continue
        tried.add((v, *seq))
        for order in _day_orders(g, seqs, start, v, partner, deadline):
            if order == seq:
                continue
            trial = [[x for x in q if x not in linked] for q in seqs]
            trial[v] = order
            trial_start = schedule(g, trial, partner)
            if trial_start is None:
                continue
            for x in sorted(linked, key=lambda x: tasks[x].visit.latest):
                placed = _single_into(g, trial, trial_start, x, partner)
                if placed is None:
                    break
                trial, trial_start = placed
            else:
                c = plan_cost(g, trial, trial_start)
                if c < (cost if found is None else found[0]) - 1e-6:
                    found = (c, trial, trial_start)
        if found is not None:
            return found
    return None


def _day_orders(
    g: Greedy, seqs: list[list[int]], start: list[int], v: int, partner: list[int], deadline: float
) -> list[list[int]]:
    """The :data:`DAY_KEEP` cheapest orders of person ``v``'s day by the estimate of :data:`DAY_EXACT_MAX`, found by
    a depth-first branch and bound of at most :data:`DAY_NODES` nodes (the nearest-ready visit first)."""
    net = g.net
    tasks, nd = net.tasks, net.num_depots
    w = g.weights
    seq = seqs[v]
    s = g.staff[v]
    T = g.travel[s.travel_mode]
    home, end = net.depots.index(s.start_location), net.depots.index(s.end_location)
    inside = set(seq)
    worst_else = max(
        (start[x] - tasks[x].visit.latest for q in seqs for x in q if x not in inside and partner[x] not in inside),
        default=0,
    )
    worst_else = max(0, worst_else)
    n = len(seq)
    # Per visit: node, earliest, latest, duration, the lower bound its partner sets, and for a first part the
    # partner's least gap and latest start (the lateness the order forces on it).
    rows = []
    for x in seq:
        vis = tasks[x].visit
        j = partner[x]
        floor, gap, latest = vis.earliest, -1, 0
        if j != x and j not in inside:
            sync = vis.sync
            if sync is None or sync.kind == "simultaneous":
                floor = max(floor, start[j])
            elif tasks[x].role == 1:
                floor = max(floor, start[j] + sync.min_gap)
            else:
                gap, latest = sync.min_gap, tasks[j].visit.latest
        rows.append((nd + x, floor, vis.latest, vis.duration, gap, latest))
    cheapest_in = [min([T[home][a]] + [T[b][a] for b, *_ in rows if b != a]) for a, *_ in rows]
    kept: list[tuple[float, list[int]]] = []
    cutoff = float("inf")
    nodes = 0
    order: list[int] = []
    left = set(range(n))

    def dive(here: int, ready: int, cost: float, worst: int) -> None:
        nonlocal nodes, cutoff
        nodes += 1
        if nodes > DAY_NODES or (nodes % 1024 == 0 and time.monotonic() >= deadline):
            return
        if not left:
            total = cost + w.travel * T[here][end] + w.lateness_max * max(worst, worst_else)
            kept.append((total, [seq[i] for i in order]))
            kept.sort(key=lambda row: row[0])
            del kept[DAY_KEEP:]
            if len(kept) == DAY_KEEP:
                cutoff = kept[-1][0]
            return
        bound = cost + w.lateness_max * max(worst, worst_else)
        options = []
        for i in left:
            a, floor, latest, _, gap, partner_latest = rows[i]
            t = max(ready + T[here][a], floor)
            late = max(0, t - latest)
            forced = max(0, t + gap - partner_latest) if gap >= 0 else 0
            bound += w.travel * cheapest_in[i] + w.lateness * (late + forced)
            options.append((t, i, late + forced, max(late, forced)))
        if bound >= cutoff:
            return
        options.sort()
        for t, i, late, most in options:
            a = rows[i][0]
            order.append(i)
            left.discard(i)
            dive(a, t + rows[i][3], cost + w.travel * T[here][a] + w.lateness * late, max(worst, most))
            left.add(i)
            order.pop()

    dive(home, s.shift_start, 0.0, 0)
    return [o for _, o in kept]


def _chain(
    g: Greedy, seqs: list[list[int]], cost: float, partner: list[int], rng: random.Random, doubles: list[int]
) -> tuple[float, list[list[int]], list[int]] | None:
    """One ruin-and-recreate move around a random double-staffed visit; the result if it is cheaper."""
    net = g.net
    tasks, nd = net.tasks, net.num_depots
    k = rng.choice(doubles)
    j = partner[k]
    near: set[int] = set()
    for seq in seqs:
        for i, x in enumerate(seq):
            if x in (k, j):
                near.update(y for y in seq[max(0, i - CHAIN_REACH) : i + CHAIN_REACH + 1] if partner[y] == y)
    travel = next(iter(g.travel.values()))  # nearness only ranks candidates: any one travel mode will do
    vis = tasks[k].visit
    singles = [x for seq in seqs for x in seq if partner[x] == x]
    singles.sort(
        key=lambda x: travel[nd + k][nd + x] + 0.5 * abs(tasks[x].visit.earliest - vis.earliest) + rng.random()
    )
    near.update(singles[: CHAIN_REACH * 2])
    out = set(rng.sample(sorted(near), min(len(near), rng.randint(2, CHAIN_MAX))))
    base = [[x for x in seq if x not in out and x != k and x != j] for seq in seqs]
    base_start = schedule(g, base, partner)
    if base_start is None:
        return None
    found = _pair_into(g, base, base_start, k, j, partner)
    if found is None:
        return None
    now_seqs, now_start = found
    order = sorted(out, key=lambda x: tasks[x].visit.latest + rng.randint(0, 30))
    for x in order:
        placed = _single_into(g, now_seqs, now_start, x, partner)
        if placed is None:
            return None
        now_seqs, now_start = placed
    c = plan_cost(g, now_seqs, now_start)
    return (c, now_seqs, now_start) if c < cost - 1e-6 else None


def _pair_into(
    g: Greedy, base: list[list[int]], base_start: list[int], k: int, j: int, partner: list[int]
) -> tuple[list[list[int]], list[int]] | None:
    """``base`` with ``k`` and ``j`` at their cheapest pair of places (of those timed), or None."""
    cost, worst = plan_cost(g, base, base_start), _worst_late(g, base, base_start)
    found = _best_pair(g, base, base_start, cost, worst, k, j, partner, float("inf"))
    return None if found is None else (found[1], found[2])


def _single_into(
    g: Greedy, base: list[list[int]], base_start: list[int], x: int, partner: list[int]
) -> tuple[list[list[int]], list[int]] | None:
    """``base`` with task ``x`` at its cheapest place (of those timed), or None. ``x`` is a single-staffed task, or
    one of a double-staffed visit whose other task is placed (then never in that task's day)."""
    tasks = g.net.tasks
    w = g.weights
    cost, worst = plan_cost(g, base, base_start), _worst_late(g, base, base_start)
    best: tuple[float, list[list[int]], list[int]] | None = None
    other = partner[x]
    places = [row for row in _places(g, base, base_start, x) if other == x or other not in base[row[1]]]
    for tried, (part, v, p, _, lo) in enumerate(places):
        late = max(0, lo - tasks[x].visit.latest)
        bound = cost + part + w.lateness_max * max(0, late - worst)
        if tried >= MAX_EXACT_SINGLE or (best is not None and bound >= best[0] - 1e-6):
            break
        seqs = list(base)
        seqs[v] = [*base[v][:p], x, *base[v][p:]]
        start = schedule(g, seqs, partner)
        if start is None:
            continue
        c = plan_cost(g, seqs, start)
        if best is None or c < best[0]:
            best = (c, seqs, start)
    return None if best is None else (best[1], best[2])


def _places(g: Greedy, base: list[list[int]], base_start: list[int], k: int) -> list[tuple[float, int, int, int, int]]:
    """Every (bound part, person, position, detour, earliest start) for task ``k`` in ``base``, cheapest first."""
    net = g.net
    tasks, nd = net.tasks, net.num_depots
    vis = tasks[k].visit
    x = nd + k
    out = []
    for v in tasks[k].vehicles:
        s = g.staff[v]
        T = g.travel[s.travel_mode]
        seq = base[v]
        home, end = net.depots.index(s.start_location), net.depots.index(s.end_location)
        for p in range(len(seq) + 1):
            if p == 0:
                a, free = home, s.shift_start
            else:
                y = seq[p - 1]
                a, free = nd + y, base_start[y] + tasks[y].visit.duration
            b = end if p == len(seq) else nd + seq[p]
            detour = T[a][x] + T[x][b] - (T[a][b] if seq else 0)
            lo = max(vis.earliest, free + T[a][x])
            out.append((g.weights.travel * detour + g.weights.lateness * max(0, lo - vis.latest), v, p, detour, lo))
    out.sort()
    return out[:TOP_PLACES]


def _best_pair(
    g: Greedy,
    base: list[list[int]],
    base_start: list[int],
    base_cost: float,
    base_worst: int,
    k: int,
    j: int,
    partner: list[int],
    best_cost: float,
) -> tuple[float, list[list[int]], list[int]] | None:
    """The cheapest of the pairs of places for ``k`` and ``j`` timed exactly, if any is below ``best_cost``."""
    tasks = g.net.tasks
    weights = g.weights
    vis = tasks[k].visit
    sync = vis.sync
    a, b = (k, j) if tasks[k].role == 0 else (j, k)
    first, second = _places(g, base, base_start, a), _places(g, base, base_start, b)
    pairs: list[tuple[float, int, int, int, int]] = []
    for _, v1, p1, d1, lo1 in first:
        for _, v2, p2, d2, lo2 in second:
            if v1 == v2:
                continue
            if sync is None or sync.kind == "simultaneous":
                t1 = t2 = lo1 if lo1 > lo2 else lo2
            else:
                t1 = max(lo1, lo2 - sync.max_gap)
                t2 = max(lo2, t1 + sync.min_gap)
            late = max(0, t1 - vis.latest), max(0, t2 - tasks[b].visit.latest)
            bound = (
                base_cost
                + weights.travel * (d1 + d2)
                + weights.lateness * (late[0] + late[1])
                + weights.lateness_max * max(0, max(late) - base_worst)
            )
            pairs.append((bound, v1, p1, v2, p2))
    pairs.sort()
    found: tuple[float, list[list[int]], list[int]] | None = None
    for bound, v1, p1, v2, p2 in pairs[:MAX_EXACT]:
        if bound >= best_cost - 1e-6:
            break
        seqs = list(base)
        seqs[v1] = [*base[v1][:p1], a, *base[v1][p1:]]
        seqs[v2] = [*base[v2][:p2], b, *base[v2][p2:]]
        start = schedule(g, seqs, partner)
        if start is None:
            continue
        c = plan_cost(g, seqs, start)
        if c < best_cost - 1e-6:
            best_cost, found = c, (c, seqs, start)
    return found
