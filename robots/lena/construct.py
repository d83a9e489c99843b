"""A constructive start for the search: cheapest feasible insertion on fixed schedules.

OR-Tools' own first-solution heuristics insert one node at a time, so they cannot place
the two tasks of a double-staffed visit (both or neither must be performed), and they slow
down badly on a 300-visit day. This greedy keeps every staff member's day as a timed
schedule: each task goes in at the earliest feasible start of the cheapest gap (travel,
continuity, waiting and lateness), and a double-staffed visit goes into two different
people's gaps at tied start times. A break is a block taken where the person is (at the
place of the stop before it), placed right after the locked visits; where locked visits
leave no room for it, the visit nearest the break window is taken out again, because the
break is a hard rule. :meth:`Greedy.anchors` tells OR-Tools where each break was taken.

On big days with soft time windows (lateness allowed) a visit may also go in where it pushes the visits
after it later, as long as no double-staffed or locked visit, break or hard limit moves: the
lateness the push adds is part of the insertion's cost. Without that, fixed schedules only take
a visit into a gap with waiting time, and on a 300-patient day of soft windows the start and the
large-neighbourhood search stay 30 % above the best known plans.

Its routes seed OR-Tools; the same insertion then puts back what the search left out.
Order: locked visits, breaks, double-staffed visits, then by latest start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from robots.lena.continuity import cost_of, familiar_staff
from robots.lena.model import Route, Stop
from robots.lena.routing import Network

__all__ = ["Greedy"]

#: Cost of a minute of waiting created by an insertion, relative to a minute of travel.
WAIT_WEIGHT = 0.5
#: Insert double-staffed visits before the others (they are the hardest to fit).
DOUBLES_FIRST = True
#: Above this many slot combinations for a double-staffed visit, only the PAIR_KEEP cheapest of each are tried.
PAIR_LIMIT, PAIR_KEEP = 2500, 50
#: Pushing later visits is used on days of more than this many tasks. On smaller Mankowska days
#: (75_1, 100_2) OR-Tools, which polishes the LNS's result, got stuck 10 points higher from a
#: pushed plan; on the 300-patient days the push took 5-8 points off the gap.
PUSH_MIN_TASKS = 150
#: Charge an insertion for what it adds to the day's largest lateness (``Weights.lateness_max``). Off: the term
#: stays in :meth:`Greedy.cost` (the LNS's acceptance, the choice between the steps' plans) and in OR-Tools, but
#: a greedy insertion that shuns any start later than the day's present maximum takes detours. Measured on
#: Mankowska 75_1-75_4, seed 3, work limit 20 (docs/benchmarks.md), mean gap to the best published: 15.4 %
#: without the term, 13.6 % with it in the insertion too, 10.8 % with it in the cost only.
INSERTION_MAX_TERM = False


@dataclass
class _Item:
    node: int
    start: int
    end: int


class _Slot(NamedTuple):
    vehicle: int
    position: int
    lo: int
    hi: int
    travel_delta: int
    fixed_cost: float
    #: When the person could be there at the earliest (before any wait for the window).
    ready: int
    #: Start → arrival at the next stop (None where the next stop cannot be pushed: before a break).
    tail: int | None = None


class Greedy:
    """Timed schedules per staff member, filled by cheapest feasible insertion."""

    def __init__(self, net: Network, push: bool | None = None) -> None:
        self.net = net
        p = net.problem
        self.staff = p.staff
        self.weights = net.weights
        self.items: list[list[_Item]] = []
        for s in self.staff:
            start = net.depots.index(s.start_location)
            end = net.depots.index(s.end_location)
            self.items.append([_Item(start, s.shift_start, s.shift_start), _Item(end, s.shift_end, s.shift_end)])
        familiar = familiar_staff(p)
        self.continuity = [
            [
                0.0
                if t.is_break
                else cost_of(t.visit, s.id, familiar.get(t.visit.client_id, set()), self.weights.continuity)
                for s in self.staff
            ]
            for t in net.tasks
        ]
        self.breaks = {t.vehicles[0]: k for k, t in enumerate(net.tasks) if t.is_break}
        #: Per node: is it a break? Per mode: the travel matrix as lists (faster to index than numpy).
        self.brk = [False] * net.num_depots + [t.is_break for t in net.tasks]
        self.travel = {mode: m.tolist() for mode, m in net.travel.items()}
        self.placed: set[int] = set()
        #: Tasks taken out again to make room for a break.
        self.evicted: list[int] = []
        self.breaks_placed = False
        self.hard_windows = p.max_lateness == 0
        #: Insertion may push later visits (soft windows only, by default on big days; see the module docstring).
        self.push = (not self.hard_windows and len(net.tasks) > PUSH_MIN_TASKS) if push is None else push
        if self.hard_windows and self.push:
            raise ValueError("pushing later visits needs soft time windows")
        nd = net.num_depots
        #: Per node: does it stay put when a visit goes in before it (depot, break, double-staffed, locked)?
        self.fixed = [True] * nd + [
            t.is_break or t.visit.staff_count == 2 or t.visit.locked is not None for t in net.tasks
        ]
        #: Per node: the latest start without lateness, and the hard limit.
        self.latest = [0] * nd + [t.visit.latest for t in net.tasks]
        self.limit = [0] * nd + [t.visit.latest + (0 if t.is_break else p.max_lateness) for t in net.tasks]
        #: Vehicle → :meth:`_room` of its row as it stands (dropped whenever the row changes).
        self._rooms: dict[int, list[int]] = {}
        #: The day's largest lateness (:meth:`worst_lateness`), kept up by insertions; None when it must be
        #: counted again (a removal or an earlier start can lower it).
        self._worst: int | None = None

    # -- loading an existing plan ----------------------------------------------------------
    def load(self, routes: list[Route]) -> None:
        """Start from ``routes`` (times and breaks as they are)."""
        self.breaks_placed = True
        net = self.net
        where = {(t.visit.id, t.role): k for k, t in enumerate(net.tasks) if not t.is_break}
        for v, r in enumerate(routes):
            row = self.items[v]
            middle: list[_Item] = []
            for st in r.stops:
                k = where[(st.visit_id, st.role)]
                middle.append(_Item(net.node(k), st.start, st.start + net.tasks[k].visit.duration))
                self.placed.add(k)
            middle.sort(key=lambda it: (it.start, it.end))
            row[:] = [row[0], *middle, row[-1]]
            self._rooms.pop(v, None)
            self._worst = None
        # The search's break may sit at another place than where the person is; place it afresh.
        self.place_breaks(prefer={v: r.break_start for v, r in enumerate(routes) if r.break_start is not None})

    # -- breaks ----------------------------------------------------------------------------
    def _is_break(self, item: _Item) -> bool:
        return self.brk[item.node]

    def _loc(self, v: int, i: int) -> int:
        """The node whose place position ``i`` of vehicle ``v`` is at (a break is where the stop before it was)."""
        row = self.items[v]
        while self.brk[row[i].node]:
            i -= 1
        return row[i].node

    def place_breaks(self, prefer: dict[int, int] | None = None) -> None:
        """Place every break near ``prefer`` (else the window's middle); make room by taking out a visit if needed."""
        net = self.net
        for v, k in sorted(self.breaks.items()):
            if k in self.placed:
                continue
            window = net.tasks[k].visit
            minutes = window.duration
            target = (prefer or {}).get(v, (window.earliest + window.latest) // 2)
            T = self.travel[self.staff[v].travel_mode]
            row = self.items[v]
            while True:
                best: tuple[int, int, int] | None = None
                for i in range(len(row) - 1):
                    prev, nxt = row[i], row[i + 1]
                    lo = max(window.earliest, prev.end)
                    hi = min(window.latest, nxt.start - minutes - T[self._loc(v, i)][nxt.node])
                    if lo > hi:
                        continue
                    b = min(max(target, lo), hi)
                    if best is None or abs(b - target) < best[0]:
                        best = (abs(b - target), i, b)
                if best is not None:
                    row.insert(best[1] + 1, _Item(net.node(k), best[2], best[2] + minutes))
                    self._rooms.pop(v, None)
                    self.placed.add(k)
                    break
                visits = [it for it in row[1:-1] if not self._is_break(it)]
                if not visits:
                    break  # cannot happen for a valid model: an empty day always has room
                victim = min(visits, key=lambda it: abs(it.start - target))
                self.remove(victim.node - net.num_depots)
        self.breaks_placed = True

    def anchors(self) -> dict[int, int]:
        """Break task → the node whose place the break is taken at."""
        out = {}
        for v, k in self.breaks.items():
            row = self.items[v]
            at = next((i for i, it in enumerate(row) if it.node == self.net.node(k)), None)
            if at is not None:
                out[k] = self._loc(v, at - 1)
        return out

    def remove(self, k: int) -> set[int]:
        """Take task ``k`` (and the other task of its visit) out of the schedules; the vehicles touched."""
        net = self.net
        vid = net.tasks[k].visit.id
        touched: set[int] = set()
        for j in net.same_visit(k):
            if j in self.placed:
                node = net.node(j)
                for v in net.tasks[j].vehicles:
                    row = self.items[v]
                    for i, it in enumerate(row):
                        if it.node == node:
                            del row[i]
                            self._rooms.pop(v, None)
                            touched.add(v)
                            break
                self.placed.discard(j)
                self.evicted.append(j)
                self._worst = None
        assert vid
        return touched

    # -- insertion -------------------------------------------------------------------------
    def _slots(self, k: int) -> list[_Slot]:
        net = self.net
        t = net.tasks[k]
        x, d = net.node(k), t.visit.duration
        earliest = t.visit.earliest
        limit = t.visit.latest + (0 if t.is_break else net.problem.max_lateness)
        locked_start = None
        if t.visit.locked is not None and t.visit.locked.start is not None and len(t.vehicles) == 1:
            locked_start = t.visit.locked.start
        brk = self.brk
        cont = self.continuity[k]
        out: list[_Slot] = []
        push = self.push
        for v in t.vehicles:
            T = self.travel[self.staff[v].travel_mode]
            row = self.items[v]
            a = row[0].node
            n = len(row)
            room: list[int] = []  # only read when push is set
            if push:
                cached = self._rooms.get(v)
                room = cached if cached is not None else self._rooms.setdefault(v, self._room(v))
            for i in range(n - 1):
                prev, nxt = row[i], row[i + 1]
                if not brk[prev.node]:
                    a = prev.node  # where the person is: a break is taken where the stop before it was
                ta = T[a]
                ready = prev.end + ta[x]
                lo = earliest if earliest > ready else ready
                if brk[nxt.node]:
                    # The break then happens here, after this visit: the trip to the stop after it follows.
                    after = row[i + 2]
                    b = after.node
                    hi = nxt.start - d
                    if nxt.end + T[x][b] > after.start:
                        continue
                    tail = None
                else:
                    b = nxt.node
                    tail = d + T[x][b]
                    hi = nxt.start - tail
                    if push:
                        hi += room[i + 1]
                if hi > limit:
                    hi = limit
                if locked_start is not None:
                    if not lo <= locked_start <= hi:
                        continue
                    lo = hi = locked_start
                if lo > hi:
                    continue
                out.append(_Slot(v, i, lo, hi, ta[x] + T[x][b] - ta[b], cont[v], ready, tail))
        return out

    def _room(self, v: int) -> list[int]:
        """Per position of vehicle ``v``: how much later that stop could start without moving a fixed one."""
        row = self.items[v]
        T = self.travel[self.staff[v].travel_mode]
        fixed, brk, limit = self.fixed, self.brk, self.limit
        n = len(row)
        room = [0] * n
        for j in range(n - 2, 0, -1):
            it = row[j]
            if fixed[it.node]:
                continue
            nxt = row[j + 1]
            wait = nxt.start - it.end - (0 if brk[nxt.node] else T[it.node][nxt.node])
            r = wait + room[j + 1]
            cap = limit[it.node] - it.start
            room[j] = r if r < cap else cap
        return room

    def _pushed(self, v: int, i: int, arrive: int) -> tuple[int, int]:
        """Lateness added when the stop after position ``i`` of vehicle ``v`` can be reached at ``arrive`` at the
        earliest, and the largest lateness of a stop so pushed (0 if none ends late)."""
        row = self.items[v]
        T = self.travel[self.staff[v].travel_mode]
        brk, latest = self.brk, self.latest
        extra = peak = 0
        n = len(row)
        j = i + 1
        t = arrive
        while j < n - 1:
            it = row[j]
            if t <= it.start:
                break
            lat = latest[it.node]
            if t > lat:
                extra += t - (it.start if it.start > lat else lat)
                if t - lat > peak:
                    peak = t - lat
            nxt = row[j + 1]
            t += it.end - it.start + (0 if brk[nxt.node] else T[it.node][nxt.node])
            j += 1
        return extra, peak

    def worst_lateness(self) -> int:
        """The largest lateness of any placed task (0 with hard windows)."""
        if self.hard_windows:
            return 0
        latest = self.latest
        worst = 0
        for row in self.items:
            for it in row[1:-1]:
                late = it.start - latest[it.node]
                if late > worst and not self.brk[it.node]:
                    worst = late
        return worst

    def _cost(self, k: int, slot: _Slot, start: int) -> float:
        w = self.weights
        late = max(0, start - self.net.tasks[k].visit.latest)
        # With hard windows waiting is charged too: a person idling at a door is capacity lost at the
        # busy hours. With soft windows that would only buy lateness.
        wait = WAIT_WEIGHT * max(0, start - slot.ready) if self.hard_windows else 0.0
        peak = late
        if slot.tail is not None and self.push:
            extra, pushed_peak = self._pushed(slot.vehicle, slot.position, start + slot.tail)
            late += extra
            peak = max(peak, pushed_peak)
        # The day's largest lateness grows only by what this insertion adds above it.
        worst = self._worst or 0
        above = w.lateness_max * (peak - worst) if INSERTION_MAX_TERM and peak > worst else 0.0
        return (
            w.travel * slot.travel_delta
            + slot.fixed_cost
            + w.lateness * late
            + above
            + wait
            + 0.001 * (start - slot.lo)
        )

    def _put(self, k: int, slot: _Slot, start: int) -> None:
        net = self.net
        row = self.items[slot.vehicle]
        self._rooms.pop(slot.vehicle, None)
        row.insert(slot.position + 1, _Item(net.node(k), start, start + net.tasks[k].visit.duration))
        self.placed.add(k)
        latest = self.latest
        if self._worst is not None and start - latest[net.node(k)] > self._worst:
            self._worst = start - latest[net.node(k)]
        if slot.tail is None or not self.push:
            return
        # Push the stops after it as far as needed (the slot's range keeps fixed stops where they are).
        T = self.travel[self.staff[slot.vehicle].travel_mode]
        brk = self.brk
        t = start + slot.tail
        for j in range(slot.position + 2, len(row) - 1):
            it = row[j]
            if t <= it.start:
                break
            assert not self.fixed[it.node], "a push reached a fixed stop"
            it.end += t - it.start
            it.start = t
            if self._worst is not None and t - latest[it.node] > self._worst:
                self._worst = t - latest[it.node]
            nxt = row[j + 1]
            t = it.end + (0 if brk[nxt.node] else T[it.node][nxt.node])

    def insert(self, k: int, partner: int | None = None) -> bool:
        """Insert task ``k`` (with its ``partner`` task of a double-staffed visit); False if it does not fit."""
        if self._worst is None:
            self._worst = self.worst_lateness() if INSERTION_MAX_TERM else 0
        if partner is None:
            best = None
            wt = self.weights.travel
            for slot in self._slots(k):
                if best is not None and wt * slot.travel_delta + slot.fixed_cost >= best[0]:
                    continue  # the rest of the cost (lateness, waiting) is never negative
                c = self._cost(k, slot, slot.lo)
                if best is None or c < best[0]:
                    best = (c, slot)
            if best is None:
                return False
            self._put(k, best[1], best[1].lo)
            return True
        sync = self.net.tasks[k].visit.sync
        first, second = self._slots(k), self._slots(partner)
        if len(first) * len(second) > PAIR_LIMIT:
            first = sorted(first, key=lambda sl: self._cost(k, sl, sl.lo))[:PAIR_KEEP]
            second = sorted(second, key=lambda sl: self._cost(partner, sl, sl.lo))[:PAIR_KEEP]
        w = self.weights
        wait_w = WAIT_WEIGHT if self.hard_windows else 0.0
        late1, late2 = self.net.tasks[k].visit.latest, self.net.tasks[partner].visit.latest
        base2 = [(s2, w.travel * s2.travel_delta + s2.fixed_cost) for s2 in second]
        simultaneous = sync is None or sync.kind == "simultaneous"
        push = self.push
        worst = self._worst or 0
        choice = None
        bound = math.inf
        for s1 in first:
            base1 = w.travel * s1.travel_delta + s1.fixed_cost
            if base1 >= bound:
                continue
            for s2, b2 in base2:
                if s1.vehicle == s2.vehicle or base1 + b2 >= bound:
                    continue
                if simultaneous:
                    t1 = t2 = s1.lo if s1.lo > s2.lo else s2.lo
                    if t1 > s1.hi or t1 > s2.hi:
                        continue
                else:
                    assert sync is not None
                    t1 = max(s1.lo, s2.lo - sync.max_gap)
                    t2 = max(s2.lo, t1 + sync.min_gap)
                    if t1 > s1.hi or t2 > min(s2.hi, t1 + sync.max_gap):
                        continue
                c = (
                    base1
                    + b2
                    + w.lateness * (max(0, t1 - late1) + max(0, t2 - late2))
                    + wait_w * (t1 - s1.ready + t2 - s2.ready)
                    + 0.001 * (t1 - s1.lo + t2 - s2.lo)
                )
                peak = max(t1 - late1, t2 - late2)
                if push and c < bound:
                    if s1.tail is not None:
                        extra, p1 = self._pushed(s1.vehicle, s1.position, t1 + s1.tail)
                        c, peak = c + w.lateness * extra, max(peak, p1)
                    if s2.tail is not None and c < bound:
                        extra, p2 = self._pushed(s2.vehicle, s2.position, t2 + s2.tail)
                        c, peak = c + w.lateness * extra, max(peak, p2)
                if INSERTION_MAX_TERM and peak > worst:
                    c += w.lateness_max * (peak - worst)
                if c < bound:
                    bound, choice = c, (c, s1, t1, s2, t2)
        if choice is None:
            return False
        _, s1, t1, s2, t2 = choice
        self._put(k, s1, t1)
        self._put(partner, s2, t2)
        return True

    def insert_all(self, order: list[int] | None = None) -> list[int]:
        """Insert every visit task not yet placed (breaks first where needed); the tasks that did not fit."""
        tasks = self.net.tasks
        pairs: dict[str, list[int]] = {}
        for k, t in enumerate(tasks):
            pairs.setdefault(t.visit.id, []).append(k)
        todo = (
            order
            if order is not None
            else sorted(
                (k for k in range(len(tasks)) if k not in self.placed and not tasks[k].is_break),
                key=lambda k: (
                    tasks[k].visit.locked is None,
                    DOUBLES_FIRST and tasks[k].visit.staff_count != 2,
                    tasks[k].visit.latest,
                    tasks[k].visit.earliest,
                    tasks[k].visit.id,
                    tasks[k].role,
                ),
            )
        )
        left: list[int] = []
        for k in todo:
            if not self.breaks_placed and tasks[k].visit.locked is None:
                self.place_breaks()
            if k in self.placed or k in left or tasks[k].is_break:
                continue
            group = sorted(pairs[tasks[k].visit.id], key=lambda j: tasks[j].role)
            if len(group) == 2:
                if not self.insert(group[0], group[1]):
                    left += group
            elif not self.insert(k):
                left.append(k)
        if not self.breaks_placed:
            self.place_breaks()
        left += [k for k in self.evicted if k not in self.placed and k not in left]
        return left

    # -- for the large-neighbourhood search ----------------------------------------------------
    def clone(self) -> Greedy:
        """An independent copy of the schedules."""
        other = object.__new__(Greedy)
        other.__dict__.update(self.__dict__)
        other.items = [[_Item(it.node, it.start, it.end) for it in row] for row in self.items]
        other.placed = set(self.placed)
        other.evicted = list(self.evicted)
        other._rooms = dict(self._rooms)
        return other

    def compact(self, v: int) -> None:
        """Start every visit of vehicle ``v`` as early as it can; double-staffed and locked visits and breaks stay put."""
        net = self.net
        row = self.items[v]
        self._rooms.pop(v, None)
        self._worst = None
        T = self.travel[self.staff[v].travel_mode]
        for i in range(1, len(row) - 1):
            it = row[i]
            t = net.tasks[it.node - net.num_depots]
            if t.is_break or t.visit.staff_count == 2 or t.visit.locked is not None:
                continue
            ready = row[i - 1].end + T[self._loc(v, i - 1)][it.node]
            start = max(t.visit.earliest, ready)
            if start < it.start:
                it.start, it.end = start, start + t.visit.duration

    def _ready(self, v: int, i: int) -> int:
        """When the person of vehicle ``v`` could start the item at position ``i``, given the one before."""
        row = self.items[v]
        trip: int = self.travel[self.staff[v].travel_mode][self._loc(v, i - 1)][row[i].node]
        return row[i - 1].end + trip

    def compact_all(self, passes: int = 4, vehicles: set[int] | None = None) -> None:
        """Start visits as early as they can, double-staffed ones too (both people moved together).

        Locked visits and breaks stay put. Repeated, because moving one person's visit earlier
        can let the partner of a double-staffed visit move, and so on. With ``vehicles``, only
        their days (and the days of those whose double-staffed visits move with them) are looked
        at: the rest is taken to be compact already.
        """
        net = self.net
        nd = net.num_depots
        dirty = set(range(len(self.items))) if vehicles is None else set(vehicles)
        for _ in range(passes):
            for v in sorted(dirty):
                self.compact(v)
            where = {it.node: (v, i) for v, row in enumerate(self.items) for i, it in enumerate(row)}
            moved = False
            again: set[int] = set()
            for k, t in enumerate(net.tasks):
                if t.visit.staff_count != 2 or t.role != 0 or k not in self.placed or t.visit.locked is not None:
                    continue
                other = next(j for j in net.same_visit(k) if j != k)
                if other not in self.placed:
                    continue
                (va, ia), (vb, ib) = where[nd + k], where[nd + other]
                if va not in dirty and vb not in dirty:
                    continue
                a, b = self.items[va][ia], self.items[vb][ib]
                ra, rb = self._ready(va, ia), self._ready(vb, ib)
                sync = t.visit.sync
                if sync is None or sync.kind == "simultaneous":
                    ta = tb = max(t.visit.earliest, ra, rb)
                else:
                    ta = max(t.visit.earliest, ra, rb - sync.max_gap)
                    tb = max(t.visit.earliest, rb, ta + sync.min_gap)
                if (ta, tb) != (a.start, b.start) and ta <= a.start and tb <= b.start:
                    a.start, a.end = ta, ta + t.visit.duration
                    b.start, b.end = tb, tb + t.visit.duration
                    self._worst = None
                    self._rooms.pop(va, None)
                    self._rooms.pop(vb, None)
                    again |= {va, vb}
                    moved = True
            if not moved:
                break
            dirty = again

    def cost(self) -> float:
        """The objective of the schedules: travel, lateness, continuity, and the tasks left out."""
        net = self.net
        w = self.weights
        nd = net.num_depots
        total = 0.0
        worst = 0
        brk = self.brk
        for v, row in enumerate(self.items):
            T = self.travel[self.staff[v].travel_mode]
            here = row[0].node
            travel = 0
            for it in row[1:]:
                if brk[it.node]:
                    continue
                k = it.node - nd
                travel += T[here][it.node]
                here = it.node
                if k >= 0:
                    t = net.tasks[k]
                    late = max(0, it.start - t.visit.latest)
                    worst = max(worst, late)
                    total += self.continuity[k][v] + w.lateness * late
            if len(row) > 2:
                total += w.travel * travel
        return total + w.lateness_max * worst + self.penalty()

    def penalty(self) -> float:
        """The part of :meth:`cost` for the tasks left out."""
        w = self.weights
        total = 0.0
        for k, t in enumerate(self.net.tasks):
            if k not in self.placed:
                total += (
                    10 * w.locked_unassigned
                    if t.is_break
                    else (w.locked_unassigned if t.visit.locked is not None else w.unassigned)
                )
        return total

    # -- results ---------------------------------------------------------------------------
    def routes(self) -> list[list[int]]:
        """Network task indices per vehicle, in order (breaks included)."""
        nd = self.net.num_depots
        return [[it.node - nd for it in row if it.node >= nd] for row in self.items]

    def plan_routes(self) -> list[Route]:
        """The schedules as routes with times and break starts."""
        nd = self.net.num_depots
        tasks = self.net.tasks
        out = []
        for v, row in enumerate(self.items):
            stops = tuple(
                Stop(tasks[it.node - nd].visit.id, it.start, tasks[it.node - nd].role)
                for it in row
                if it.node >= nd and not tasks[it.node - nd].is_break
            )
            brk = next((it.start for it in row if it.node >= nd and tasks[it.node - nd].is_break), None)
            out.append(Route(self.staff[v].id, stops, brk))
        return out
