"""A realistic home-care day from the sandbox: Lena's plan against the home-care system's own plan.

    .venv/bin/python bench/lena_day.py [--seeds 1,2,3] [--visits 300] [--staff 45] [--double 0.1]
        [--time-limit 60] [--max-load L] [--out bench/results/lena_day.json]

For each seed a sandbox (``sandbox.testing.running_sandbox``) serves a day of --visits
visits, --staff staff (shifts, a 30-minute break each, car/bike/walk), --double share of
double-staffed visits, a few locked visits and 14 days of history. Lena solves it over the
same HTTP API the robot uses, within --time-limit seconds; the independent checker counts
hard-rule violations of her plan and of the system's baseline plan (``/homecare/plans/baseline``,
greedy, continuity-blind, fractional travel minutes) under the same rules, and of the system's
plan once more with every trip rounded down (the most its fractional minutes can excuse). Continuity is
Kolada's measure: different staff per client over the 14 days plus the planned day. Memory: the
process's peak resident set (``resource.getrusage``: ru_maxrss) before and after the solve; the
sandbox runs in the same process, so the growth during the solve is what Lena took at most.

A large city's district: ``--visits 1000 --staff 150 --time-limit 120 --seeds 1``.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from lena_common import RESULTS, conditions, record, wait_for_quiet

from robots.lena.check import check_plan
from robots.lena.continuity import plan_assignments, summary
from robots.lena.homecare import assignments_of, to_minutes, to_problem
from robots.lena.model import HaversineTravelTimes, Location, Plan, Problem, Route, Stop, Unassigned
from robots.lena.solver import SolverOptions, solve
from sandbox.testing import running_sandbox


def baseline_plan(problem: Problem, day: date, data: dict[str, Any]) -> Plan:
    """The home-care system's plan as a Plan, to be checked under Lena's rules."""
    stops: dict[str, list[Stop]] = {s.id: [] for s in problem.staff}
    for a in data["assignments"]:
        for role, sid in enumerate(a["staff_ids"]):
            stops[sid].append(Stop(a["visit_id"], to_minutes(day, a["start"]), role))
    breaks = data.get("breaks", {})
    routes = tuple(
        Route(sid, tuple(sorted(st, key=lambda s: s.start)), to_minutes(day, breaks[sid]) if breaks.get(sid) else None)
        for sid, st in stops.items()
    )
    return Plan(routes, tuple(Unassigned(u["visit_id"], "baseline", u["reason"]) for u in data["unassigned"]))


def peak_rss_mb() -> float:
    """The process's peak resident set so far, in MB (ru_maxrss is in kB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class FloorTravelTimes(HaversineTravelTimes):
    """The same travel model with minutes rounded down: what the system's fractional minutes allow at best."""

    def matrix(self, locations: Sequence[Location], mode: str) -> list[list[int]]:
        """Whole minutes, rounded down."""
        return [[math.floor(self.minutes(a, b, mode)) for b in locations] for a in locations]


def one_day(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Fetch, solve, check and compare one sandbox day."""
    options = {
        "homecare_visits": args.visits,
        "homecare_staff": args.staff,
        "double_staffing_share": args.double,
        "applications": 0,
        "substitutes": 1,
        "open_shifts": 0,
        "employees": 0,
        "time_scale": 0,
    }
    with running_sandbox(seed=seed, **options) as url, httpx.Client(base_url=f"{url}/homecare", timeout=60) as http:
        groups = http.get("/groups").json()
        group, day = groups["items"][0]["id"], date.fromisoformat(groups["date"])
        params = {"group": group, "date": day.isoformat()}
        problem = to_problem(
            day,
            http.get("/visits", params=params).json()["items"],
            http.get("/staff", params=params).json()["items"],
            http.get("/history", params={"group": group}).json()["items"],
        )
        system = http.get("/plans/baseline", params={"group": group}).json()
    wait_for_quiet(args.max_load)
    rss_before = peak_rss_mb()
    load = os.getloadavg()[0]
    began, cpu = time.monotonic(), time.process_time()
    result = solve(problem, SolverOptions(time_limit=args.time_limit, seed=seed))
    seconds, cpu = time.monotonic() - began, time.process_time() - cpu
    rss_after = peak_rss_mb()
    ours = check_plan(problem, result.plan)
    theirs = check_plan(problem, baseline_plan(problem, day, system))
    lenient = replace(problem, travel=FloorTravelTimes())
    theirs_floor = check_plan(lenient, baseline_plan(lenient, day, system))
    m = result.metrics
    ours_continuity = summary(problem, plan_assignments(result.plan))
    system_continuity = summary(problem, assignments_of(system))
    return {
        "seed": seed,
        "visits": len(problem.visits),
        "staff": len(problem.staff),
        "double_staffed": sum(v.staff_count == 2 for v in problem.visits),
        "staff_with_break": sum(s.break_rule is not None for s in problem.staff),
        "visits_needing_competence": sum(bool(v.competences) for v in problem.visits),
        "locked": sum(v.locked is not None for v in problem.visits),
        "lena": {
            "unassigned": len(result.plan.unassigned),
            "violations": len(ours),
            "unassigned_codes": dict(Counter(u.code for u in result.plan.unassigned)),
            "travel_minutes": m.travel,
            "lateness_minutes": m.lateness_total,
            "staff_used": m.staff_used,
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "load_1min_at_start": round(load, 2),
            "peak_rss_mb_before_solve": rss_before,
            "peak_rss_mb_after_solve": rss_after,
            "engine": result.engine,
            "continuity": ours_continuity,
        },
        "system": {
            "unassigned": len(system["unassigned"]),
            "violations": len(theirs),
            "violation_codes": dict(Counter(v.code for v in theirs)),
            "violations_with_travel_rounded_down": len(theirs_floor),
            "violation_codes_with_travel_rounded_down": dict(Counter(v.code for v in theirs_floor)),
            "travel_minutes_reported": system["totals"]["travel_minutes"],
            "continuity": system_continuity,
        },
        "targets": {
            "zero_hard_violations": not ours,
            "within_time_limit": seconds <= args.time_limit,
            "continuity_better_than_system": ours_continuity["mean_distinct_staff"]
            < system_continuity["mean_distinct_staff"],
        },
    }


def main() -> None:
    """Run the days and write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--visits", type=int, default=300)
    parser.add_argument("--staff", type=int, default=45)
    parser.add_argument("--double", type=float, default=0.1)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--max-load", type=float, help="wait (up to 10 min) for a 1-minute load below this")
    parser.add_argument("--out", type=str, default=str(RESULTS / "lena_day.json"))
    args = parser.parse_args()
    days = []
    for seed in (int(s) for s in args.seeds.split(",")):
        d = one_day(seed, args)
        days.append(d)
        lena, system = d["lena"], d["system"]
        print(
            f"seed {seed}: Lena {lena['unassigned']} unassigned, {lena['violations']} violations, "
            f"travel {lena['travel_minutes']} min, continuity {lena['continuity']['mean_distinct_staff']} "
            f"({lena['seconds']} s, cpu {lena['cpu_seconds']} s, peak memory {lena['peak_rss_mb_after_solve']} MB, "
            f"{lena['peak_rss_mb_before_solve']} MB before the solve) | system {system['unassigned']} unassigned, "
            f"{system['violations']} violations, continuity {system['continuity']['mean_distinct_staff']}",
            flush=True,
        )
        print(f"seed {seed}: targets {d['targets']}", flush=True)
    record(
        "day",
        Path(args.out),
        {
            "benchmark": "sandbox day",
            "days": days,
            "conditions": conditions(
                time_limit=args.time_limit, visits=args.visits, staff=args.staff, double_share=args.double
            ),
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
