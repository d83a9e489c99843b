"""Lena's solver on the Mankowska HHCRSP instances (home care with double staffing), against the best published.

    .venv/bin/python bench/lena_hhcrsp.py [--data DIR] [--best FILE] [--time-limit 60] [--cpu-seconds S]
        [--seeds 1] [--all] [--processes 1] [--instances InstanzCPLEX_HCSRP_10_1,...] [--baseline]
        [--out bench/results/lena_hhcrsp.json]

The objective is BEST.md's: total_cost = (distance_traveled + total_tardiness + max_tardiness) / 3,
time windows soft (a late start adds tardiness, per caregiver), double-staffed patients
synchronised (simultaneous, or sequential with a min/max distance between the starts).
Gap = 100 · (ours − best published) / best published. Feasible = every service given and the
independent checker finds nothing. By default a subset of 10 instances (every size) at
--time-limit seconds each, about 10 minutes; --all runs the 70. --baseline adds plain OR-Tools
(its own first solution and guided local search on the same model) in the same run. --processes N
solves each instance with Lena's portfolio (N searches at once, seeds seed … seed + N − 1, the cheapest
plan kept: N CPUs for the time limit); the CPU seconds printed are then those of all N processes.

Other instances of the same family and format, e.g. the 158 the iolab-uniud/hhcrsp repository names
``kummer`` (MIT: ``instances/kummer`` and ``solutions/kummer_best.md``), are read from their own
folder: ``--data hhcrsp/instances/kummer --best hhcrsp/solutions/kummer_best.md`` (instances without a
published best are left out of ``--all``). ``--cpu-seconds S`` budgets S CPU seconds of this process
instead of wall-clock seconds (as bench/lena_ab.py does; OR-Tools' own limit stays wall-clock), for a
machine shared with other work.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path
from typing import Any

from lena_common import RESULTS, SHARED_DATA, check_instances, conditions, gap, record, run, wait_for_quiet

from robots.lena.formats import read_hhcrsp

SUBSET = [f"InstanzCPLEX_HCSRP_{n}.json" for n in ("10_1", "10_2", "25_1", "50_1", "50_2", "75_1")] + [
    f"InstanzVNS_HCSRP_{n}.json" for n in ("100_1", "100_2", "200_1", "300_1")
]


def published(table: Path) -> dict[str, float]:
    """instance file → best published total_cost, from a BEST.md-style table (or a folder's BEST.md)."""
    out = {}
    for line in (table / "BEST.md" if table.is_dir() else table).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0].endswith(".json") and re.fullmatch(r"[\d.]+", cells[4]):
            out[cells[0]] = float(cells[4])
    return out


def size_class(name: str) -> str:
    """The size class an instance is reported under: its patients (Mankowska: ``…_HCSRP_75_1.json`` → 75),
    or its patients and caregivers (Kummer: ``HHCRSP_100_20_10_1.2_R_C.json`` → 100_20)."""
    kummer = re.match(r"HHCRSP_(\d+_\d+)_", name)
    return kummer.group(1) if kummer else name.split("_")[-2]


def main() -> None:
    """Run the benchmark and write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "mankowska", help="folder of the JSON instances")
    parser.add_argument("--best", type=Path, help="table of the best published solutions (default: DATA/BEST.md)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per instance and solver")
    parser.add_argument(
        "--cpu-seconds", type=float, help="budget CPU seconds of this process instead of --time-limit's wall clock"
    )
    parser.add_argument("--seeds", default="1", help="comma-separated seeds")
    parser.add_argument("--all", action="store_true", help="all 70 instances (default: a subset of 10)")
    parser.add_argument("--instances", help="comma-separated instance file names")
    parser.add_argument("--baseline", action="store_true", help="also run plain OR-Tools")
    parser.add_argument("--processes", type=int, default=1, help="Lena's searches at once (her portfolio)")
    parser.add_argument(
        "--max-load", type=float, help="before each solve, wait (up to 10 min) for a 1-minute load average below this"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "lena_hhcrsp.json")
    args = parser.parse_args()
    best = published(args.best or args.data)
    limit = args.time_limit
    if args.cpu_seconds:
        time.monotonic = time.process_time  # the solver (and PyVRP) budget CPU seconds of this process
        time.perf_counter = time.process_time
        limit = args.cpu_seconds
    todo = args.instances.split(",") if args.instances else (sorted(best) if args.all else SUBSET)
    check_instances(parser, todo, (name for name in best if (args.data / name).exists()), args.data)
    seeds = [int(s) for s in args.seeds.split(",")]
    solvers = ["auto"] + (["ortools"] if args.baseline else [])
    rows: dict[str, Any] = {}
    print(
        f"{'instance':30}{'seed':>5}  {'solver':8}{'feas':>5}{'objective':>12}{'best':>10}{'gap %':>10}{'s':>6}"
        f"{'CPU s':>7}{'load':>6}"
    )
    for name in todo:
        inst = read_hhcrsp((args.data / name).read_text(), name)
        rows[name] = {"best": best[name], "runs": {}}
        for solver in solvers:
            for seed in seeds:
                wait_for_quiet(args.max_load)
                processes = args.processes if solver == "auto" else 1
                r = run(inst, time_limit=limit, seed=seed, strategy=solver, processes=processes)
                r["gap"] = gap(r["objective"], best[name]) if r["feasible"] else None
                rows[name]["runs"].setdefault(solver, []).append({"seed": seed, **r})
                shown = f"{r['gap']:10.2f}" if r["gap"] is not None else f"{'-':>10}"
                print(
                    f"{name:30}{seed:>5}  {solver:8}{'yes' if r['feasible'] else 'NO':>5}{r['objective']:>12.2f}"
                    f"{best[name]:>10.2f}{shown}{r['seconds']:>6.0f}{r['cpu_seconds']:>7.1f}{r['load_1min']:>6.1f}",
                    flush=True,
                )
    summary: dict[str, Any] = {"instances": len(rows), "solvers": {}}
    for solver in solvers:
        runs = [r for row in rows.values() for r in row["runs"].get(solver, [])]
        gaps = [r["gap"] for r in runs if r["gap"] is not None]
        by_size: dict[str, list[float]] = {}
        for name, row in rows.items():
            size = size_class(name)
            by_size.setdefault(size, []).extend(r["gap"] for r in row["runs"].get(solver, []) if r["gap"] is not None)
        summary["solvers"][solver] = {
            "runs": len(runs),
            "feasible": sum(r["feasible"] for r in runs),
            "mean_gap": round(statistics.mean(gaps), 3) if gaps else None,
            "median_gap": round(statistics.median(gaps), 3) if gaps else None,
            "max_gap": round(max(gaps), 3) if gaps else None,
            "mean_gap_by_patients": {
                k: round(statistics.mean(v), 2)
                for k, v in sorted(by_size.items(), key=lambda kv: int(kv[0].split("_")[0]))
                if v
            },
        }
        s = summary["solvers"][solver]
        print(
            f"{solver:8} feasible {s['feasible']}/{s['runs']}  mean gap {s['mean_gap']} %  "
            f"median {s['median_gap']} %  by patients {s['mean_gap_by_patients']}"
        )
    family = "" if args.data.name == "mankowska" else f"{args.data.name}_"  # e.g. hhcrsp_kummer_60s
    record(
        f"hhcrsp_{family}{limit:g}s",
        args.out,
        {
            "benchmark": args.data.name,
            "summary": summary,
            "instances": rows,
            "conditions": conditions(
                time_limit=args.time_limit,
                cpu_seconds=args.cpu_seconds,
                seeds=seeds,
                processes=args.processes,
                subset=not args.all,
                objective="(distance + total tardiness + max tardiness) / 3",
                reference=f"{(args.best or args.data / 'BEST.md').name} (best published)",
            ),
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
