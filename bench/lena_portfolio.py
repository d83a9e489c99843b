"""Lena's portfolio (N searches in N processes, the cheapest plan kept) on Mankowska instances, on a CPU budget.

    .venv/bin/python bench/lena_portfolio.py --instances 75_1,75_2 --seeds 1 --processes 2 --cpu-seconds 58 \
        [--single-cpu-seconds 116] [--data DIR] [--out bench/results/lena/portfolio/runs.jsonl]

For each instance and seed: :func:`robots.lena.portfolio.solve_portfolio` with ``--processes`` workers
(seeds ``seed``, ``seed + 1``, …), each worker's clock the CPU time of its own process
(``time.monotonic`` replaced by ``time.process_time`` in the worker, as in ``bench/lena_ab.py``), so each
search gets ``--cpu-seconds`` of CPU whatever the machine's load: the figures are those of N searches on
N free cores. Each worker scores its own plan with the benchmark's objective and the independent checker,
so one run gives every seed's single-process result and the portfolio's. ``--single-cpu-seconds`` adds one
single-process search of ``seed`` with that budget (N × the budget: the same CPU as the portfolio) for
comparison. OR-Tools' own time limit stays wall-clock, so under load its steps get less than their share.
Appends one JSON line per solve to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from lena_ab import _name
from lena_common import RESULTS, SHARED_DATA, gap
from lena_hhcrsp import published

from robots.lena.check import check_plan
from robots.lena.formats import read_hhcrsp
from robots.lena.model import Problem
from robots.lena.portfolio import solve_portfolio
from robots.lena.solver import SolveResult, SolverOptions, solve


def cpu_search(problem: Problem, options: SolverOptions, *, cpu_seconds: float, path: str, out: str) -> SolveResult:
    """A worker whose clock is its process's CPU time; it scores and checks its own plan and appends a line to ``out``."""
    time.monotonic = time.process_time  # the solver (and PyVRP) budget CPU seconds of this process
    time.perf_counter = time.process_time
    began = time.process_time()
    result = solve(problem, replace(options, time_limit=cpu_seconds))
    instance = read_hhcrsp(Path(path).read_text(), Path(path).name)
    violations = check_plan(problem, result.plan)
    row = instance.summary(result.plan, not violations and not result.plan.unassigned)
    with open(out, "a", encoding="utf-8") as f:
        f.write(
            json.dumps(
                {
                    "seed": options.seed,
                    "objective": row["objective"],
                    "feasible": row["feasible"],
                    "violations": len(violations),
                    "lena_objective": result.metrics.objective,
                    "cpu_seconds": round(time.process_time() - began, 2),
                }
            )
            + "\n"
        )
    return result


def main() -> None:
    """Run the portfolios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "mankowska", help="folder of the JSON instances")
    parser.add_argument("--instances", required=True, help="comma-separated, e.g. 75_1,75_2,100_1")
    parser.add_argument("--seeds", default="1", help="comma-separated base seeds")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--cpu-seconds", type=float, default=58.0, help="CPU seconds per worker")
    parser.add_argument("--single-cpu-seconds", type=float, help="also one single-process search with this budget")
    parser.add_argument("--out", type=Path, default=RESULTS / "lena" / "portfolio" / "runs.jsonl")
    args = parser.parse_args()
    best = published(args.data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for short in args.instances.split(","):
        name = _name(short)
        path = args.data / name
        instance = read_hhcrsp(path.read_text(), name)
        for seed in (int(s) for s in args.seeds.split(",")):
            runs: list[tuple[str, int, float]] = [("portfolio", args.processes, args.cpu_seconds)]
            if args.single_cpu_seconds:
                runs.append(("single", 1, args.single_cpu_seconds))
            for label, processes, budget in runs:
                scratch = args.out.with_suffix(f".{os.getpid()}.workers")
                scratch.unlink(missing_ok=True)
                worker = partial(cpu_search, cpu_seconds=budget, path=str(path), out=str(scratch))
                # The wall-clock limit only bounds how long the portfolio waits for its workers under load.
                opts = SolverOptions(time_limit=30 * budget, seed=seed, weights=instance.weights, processes=processes)
                load, began = os.getloadavg()[0], time.monotonic()
                result = solve_portfolio(instance.problem, opts, worker=worker)
                workers = [json.loads(line) for line in scratch.read_text().splitlines()] if scratch.exists() else []
                scratch.unlink(missing_ok=True)
                violations = check_plan(instance.problem, result.plan)
                summary = instance.summary(result.plan, not violations and not result.plan.unassigned)
                row: dict[str, Any] = {
                    "instance": name,
                    "kind": label,
                    "seed": seed,
                    "processes": processes,
                    "cpu_seconds_each": budget,
                    "gap": gap(summary["objective"], best[name]) if summary["feasible"] else None,
                    "objective": summary["objective"],
                    "feasible": summary["feasible"],
                    "violations": len(violations),
                    "winner_seed": result.seed,
                    "workers": [
                        {**w, "gap": gap(w["objective"], best[name]) if w["feasible"] else None}
                        for w in sorted(workers, key=lambda w: w["seed"])
                    ],
                    "failed": [w.error for w in result.workers if w.error],
                    "cpu_seconds": result.cpu_seconds,
                    "wall_seconds": round(time.monotonic() - began, 1),
                    "load_1min": round(load, 2),
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                print(json.dumps(row), flush=True)
                with args.out.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
