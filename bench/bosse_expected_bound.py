"""The most shifts a policy that does not see the replies in advance can book *on average*.

    .venv/bin/python bench/bosse_expected_bound.py [--seed 1] [--days 7] [--out bench/results/bosse_expected.json]

``bench/bosse_bound.py`` bounds what any policy could book knowing every answer beforehand
(clairvoyant). A real policy learns each answer only when it comes. Here the simulation's
reply model (``bosse_bound.reply``) is taken as what it is – every offer an independent
draw: a yes with the person's behaviour's chance *q* (eager 0.85, selective 0.45,
reluctant 0.10, late 0.70, silent 0) – and the bound is on the **expected** number of
bookings of any non-anticipating policy, even one that knows every person's behaviour.

Let ``x[i, s]`` be the probability that the policy books person *i* on shift *s*. Whatever
the policy does, these hold (each on every run, or in expectation):

1. *Each shift is booked at most once*: ``sum_i x[i, s] <= 1``.
2. *Each person's bookings break no rule together*: for every pair of shifts the rules
   forbid together for *i* (checked against their bookings at the start, within 7 days,
   as in ``bosse_bound``), ``x[i, a] + x[i, b] <= 1``; and the month's booked hours
   within the monthly cap, ``sum_s hours_s x[i, s] <= room``.
3. *A shift gets a yes only from those asked, each once* (an offer is made once per
   person and shift): for every set *T* of the shift's eligible people the shift is booked
   by one of them only if one of them answers yes to it, and the answers are independent
   draws, so ``sum_{i in T} x[i, s] <= 1 - prod_{i in T} (1 - q_i)``.
4. *A person who can work only one of a set of shifts* (a clique of shifts the rules
   forbid pairwise – in this simulation all shifts of one day, since under AB from
   2023-10-01 any two of the sandbox's templates on one day exclude each other) is booked
   on one of them only if they answer yes to an offer for one of them; they get at most one
   offer per shift, so for every subset *T* of the clique
   ``sum_{s in T} x[i, s] <= 1 - (1 - q_i)^|T|``.

(3) and (4) are polymatroid constraints (the right-hand sides are submodular); the
expected bookings ``sum x`` of any policy is at most the linear programme's maximum
under them. They are added lazily: (4) is separated exactly (the right-hand side depends
only on |T|, so the worst *T* of each size is the |T| largest values), (3) by the
prefixes of the people ordered by ``x / -log(1 - q)``; a cut not found only makes the
bound looser, never wrong. Everything else is relaxed in the policy's favour: replies
always in time, no limit on how fast a person can be asked again, the weekly rest and the
overtime counters left out.

The maximum is an upper bound on the **expected** bookings of a policy without foresight;
one run's bookings scatter around their expectation (for a few hundred shifts by a
percentage point or so), so compare it with a policy's mean over seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

from ortools.linear_solver import pywraplp

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "bench"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bosse_bound import _PAIR_HORIZON, _broken  # noqa: E402

from robots.bosse.records import ShiftInfo, SubstituteInfo  # noqa: E402
from robots.bosse.rules import check_eligibility  # noqa: E402
from robots.bosse.settings import BosseSettings  # noqa: E402
from sandbox.staffing import BEHAVIOURS  # noqa: E402

__all__ = ["ExpectedBound", "expected_bound"]

_EPS = 1e-5


@dataclass(frozen=True)
class ExpectedBound:
    """The bound on expected bookings and how it was reached."""

    shifts: int
    bound: float
    rounds: int
    cuts: int
    seconds: float
    by_behaviour: dict[str, float]  # expected bookings per reply behaviour in the optimum

    def as_json(self) -> dict[str, Any]:
        return {
            "shifts": self.shifts,
            "expected_bound": round(self.bound, 2),
            "fill_rate_bound": round(self.bound / max(self.shifts, 1), 4),
            "rounds": self.rounds,
            "cuts": self.cuts,
            "seconds": round(self.seconds, 1),
            "expected_bookings_by_behaviour": {k: round(v, 2) for k, v in sorted(self.by_behaviour.items())},
        }


def expected_bound(
    nights: Sequence[tuple[date, Sequence[ShiftInfo]]],
    pool: Mapping[str, SubstituteInfo],
    candidates: Mapping[str, Sequence[str]],
    behaviour: Mapping[str, str],
    settings: BosseSettings,
    *,
    max_rounds: int = 200,
    stall_rounds: int = 5,
    stall_gain: float = 0.05,
) -> ExpectedBound:
    """Solve the linear programme of the module docstring (GLOP), adding violated cuts until none is left."""
    started = time.monotonic()
    shifts = {s.id: s for _, day in nights for s in day}
    q = {p: BEHAVIOURS[behaviour.get(p, "selective")][1] for p in pool}
    eligible: dict[str, list[str]] = {}
    for sid, people in candidates.items():
        s = shifts[sid]
        eligible[sid] = [
            p for p in people if q[p] > 0 and not check_eligibility(s.to_rules(), pool[p].to_rules(s), settings.rules)
        ]
    per_person: dict[str, list[str]] = {}
    for sid in sorted(shifts, key=lambda k: (shifts[k].start, k)):
        for p in eligible[sid]:
            per_person.setdefault(p, []).append(sid)

    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:  # pragma: no cover - OR-Tools always has GLOP
        raise RuntimeError("GLOP is not available")
    x = {(p, sid): solver.NumVar(0.0, q[p], "") for sid in shifts for p in eligible[sid]}
    for sid in shifts:
        row = [x[(p, sid)] for p in eligible[sid]]
        if row:
            solver.Add(sum(row) <= min(1.0, 1.0 - math.prod(1.0 - q[p] for p in eligible[sid])))
    cliques: list[tuple[str, list[str]]] = []
    for p, sids in per_person.items():
        person = pool[p]
        # Pairs the rules forbid together (once per pair of times, as in bosse_bound).
        spans: dict[tuple[Any, Any], list[str]] = {}
        for sid in sids:
            spans.setdefault((shifts[sid].start, shifts[sid].end), []).append(sid)
        times = sorted(spans)
        clash: set[tuple[Any, Any]] = set()
        for i, a in enumerate(times):
            for b in times[i + 1 :]:
                if b[0] - a[1] >= _PAIR_HORIZON:
                    break
                if _broken(person, [shifts[spans[a][0]], shifts[spans[b][0]]], settings) is not None:
                    clash.add((a, b))
                    solver.Add(sum(x[(p, sid)] for sid in spans[a] + spans[b]) <= 1)
        # Cliques: one day's shifts when the rules forbid every pair of them for this person.
        by_day: dict[date, list[tuple[Any, Any]]] = {}
        for t in times:
            by_day.setdefault(shifts[spans[t][0]].local_start.date(), []).append(t)
        for ts in by_day.values():
            if all((a, b) in clash for i, a in enumerate(ts) for b in ts[i + 1 :]):
                members = [sid for t in ts for sid in spans[t]]
                cliques.append((p, members))
                solver.Add(sum(x[(p, sid)] for sid in members) <= 1.0 - (1.0 - q[p]) ** len(members))
        # The monthly cap (the local rule), per month, in hours.
        cap = person.max_hours_month if person.max_hours_month is not None else settings.rules.default_max_hours_month
        if cap is not None:
            by_month: dict[str, list[str]] = {}
            for sid in sids:
                by_month.setdefault(shifts[sid].month, []).append(sid)
            for month, items in by_month.items():
                booked = person.hours_in(month)
                room = float(Fraction(str(cap)) - Fraction(str(booked)))
                solver.Add(sum(shifts[sid].hours * x[(p, sid)] for sid in items) <= room)
    solver.Maximize(sum(x.values()))

    rounds = cuts = 0
    value = float(len(shifts))
    seen: set[tuple[str, frozenset[str]]] = set()  # cuts already in (the solver's tolerance may show them again)
    val: dict[tuple[str, str], float] = {}
    history: list[float] = []
    while rounds < max_rounds:
        rounds += 1
        if solver.Solve() != pywraplp.Solver.OPTIMAL:
            raise RuntimeError("the linear programme did not solve")
        value = solver.Objective().Value()
        val = {k: v.solution_value() for k, v in x.items()}
        added = 0
        # (4) per person and clique: the j largest values at most 1 - (1 - q)^j.
        for p, members in cliques:
            ordered = sorted(members, key=lambda sid: -val[(p, sid)])
            total = 0.0
            for j, sid in enumerate(ordered, 1):
                total += val[(p, sid)]
                if total > 1.0 - (1.0 - q[p]) ** j + _EPS:
                    key = (p, frozenset(ordered[:j]))
                    if key in seen:
                        continue
                    seen.add(key)
                    solver.Add(sum(x[(p, s)] for s in ordered[:j]) <= 1.0 - (1.0 - q[p]) ** j)
                    added += 1
                    break
        # (3) per shift: prefixes by value per unit of -log(1 - q).
        for sid in shifts:
            people = [p for p in eligible[sid] if val[(p, sid)] > _EPS]
            people.sort(key=lambda p: -val[(p, sid)] / -math.log(1.0 - min(q[p], 0.999999)))
            total, miss = 0.0, 1.0
            worst, cut = _EPS, 0
            for j, p in enumerate(people, 1):
                total += val[(p, sid)]
                miss *= 1.0 - q[p]
                if total - (1.0 - miss) > worst:
                    worst, cut = total - (1.0 - miss), j
            if cut and (sid, frozenset(people[:cut])) not in seen:
                chosen = people[:cut]
                seen.add((sid, frozenset(chosen)))
                solver.Add(sum(x[(p, sid)] for p in chosen) <= 1.0 - math.prod(1.0 - q[p] for p in chosen))
                added += 1
        cuts += added
        history.append(value)
        # Every round's maximum is a valid bound (it has only valid cuts); stop once they stall.
        if not added or (len(history) > stall_rounds and history[-1 - stall_rounds] - value < stall_gain):
            break
    by_behaviour: dict[str, float] = {}
    for (p, _), v in val.items():
        kind = behaviour.get(p, "selective")
        by_behaviour[kind] = by_behaviour.get(kind, 0.0) + v
    return ExpectedBound(len(shifts), value, rounds, cuts, time.monotonic() - started, by_behaviour)


def main(argv: list[str] | None = None) -> int:
    """Build the bench's month and print the bound."""
    from bosse_month import _static_ok, make_month

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 11, 30))
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--substitutes", type=int, default=120)
    parser.add_argument("--shifts", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    month = make_month(args.seed, args.start, args.days, args.substitutes, args.shifts)
    candidates = {s.id: [p.id for p in month.pool.values() if _static_ok(s, p)] for _, day in month.nights for s in day}
    result = expected_bound(month.nights, month.pool, candidates, month.behaviour, BosseSettings()).as_json()
    result["conditions"] = {"seed": args.seed, "start": args.start.isoformat(), "days": args.days}
    print(json.dumps(result, ensure_ascii=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
