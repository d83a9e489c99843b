"""Lena's solver with and without a change, on Mankowska instances, interleaved, on a CPU-seconds budget.

    .venv/bin/python bench/lena_ab.py --set robots.lena.solver.KICK_AFTER=0 --seeds 2 --cpu-seconds 40 \
        --instances 75_1,75_2 [--both module.NAME=literal] [--work-limit N] [--data DIR] [--out bench/results/lena_ab.jsonl]

For each instance and seed the solver runs twice, one solve right after the other: as the code stands
(``new``) and with the module constants of ``--set`` changed (``old``; ``module.NAME=python literal``,
repeatable). On a shared machine a 60 s solve gets anything from 2 to 59 CPU seconds, so the budget is
CPU seconds of this process: the solver's own clock (``time.monotonic``, and PyVRP's) is replaced by the
process's CPU time. OR-Tools' time limit stays wall-clock, so under load its steps get less than their
share. Prints one JSON line per solve (gap to the best published) and appends it to ``--out``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import time
from pathlib import Path

from lena_common import RESULTS, SHARED_DATA, gap, run
from lena_hhcrsp import published

from robots.lena.formats import read_hhcrsp


def _name(short: str) -> str:
    """75_1 → InstanzCPLEX_HCSRP_75_1.json (up to 75 patients), 100_1 → InstanzVNS_HCSRP_100_1.json."""
    if short.endswith(".json"):
        return short
    family = "CPLEX" if int(short.split("_")[0]) <= 75 else "VNS"
    return f"Instanz{family}_HCSRP_{short}.json"


def _literals(items: list[str]) -> dict[str, object]:
    """``module.NAME=python literal`` options as {``module.NAME``: value}."""
    return {key: ast.literal_eval(literal) for key, _, literal in (item.partition("=") for item in items)}


def _apply(settings: dict[str, object]) -> None:
    for key, value in settings.items():
        module, attr = key.rsplit(".", 1)
        setattr(importlib.import_module(module), attr, value)


def main() -> None:
    """Run the pairs."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "mankowska", help="folder of the JSON instances")
    parser.add_argument("--set", action="append", default=[], help="module.NAME=literal for the old run")
    parser.add_argument("--both", action="append", default=[], help="module.NAME=literal for both runs")
    parser.add_argument(
        "--work-limit",
        type=int,
        help="the solver's work limit (LNS moves, PyVRP iterations and OR-Tools solutions per step, and a fixed "
        "number of steps): the two runs are then the same search up to the change, whatever the load",
    )
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--cpu-seconds", type=float, default=40.0)
    parser.add_argument("--instances", required=True, help="comma-separated, e.g. 75_1,75_2,100_1")
    parser.add_argument("--out", type=Path, default=RESULTS / "lena_ab.jsonl")
    args = parser.parse_args()
    old, both = _literals(args.set), _literals(args.both)
    _apply(both)
    new = {key: getattr(importlib.import_module(key.rsplit(".", 1)[0]), key.rsplit(".", 1)[1]) for key in old}
    best = published(args.data)
    time.monotonic = time.process_time  # the solver (and PyVRP) budget CPU seconds of this process
    time.perf_counter = time.process_time
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a", encoding="utf-8") as out:
        for short in args.instances.split(","):
            name = _name(short)
            instance = read_hhcrsp((args.data / name).read_text(), name)
            for seed in (int(s) for s in args.seeds.split(",")):
                for label, settings in (("old", old), ("new", new)):
                    _apply(settings)
                    r = run(
                        instance, time_limit=args.cpu_seconds, seed=seed, strategy="auto", work_limit=args.work_limit
                    )
                    row = {
                        "instance": name,
                        "seed": seed,
                        "code": label,
                        "set": {k: repr(v) for k, v in {**both, **settings}.items()},
                        "work_limit": args.work_limit,
                        "gap": gap(r["objective"], best[name]) if r["feasible"] else None,
                        **{k: r[k] for k in ("objective", "distance", "total_tardiness", "max_tardiness", "engine")},
                        "cpu_seconds": r["cpu_seconds"],
                        "load_1min": r["load_1min"],
                        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                    print(json.dumps(row), flush=True)
                    out.write(json.dumps(row) + "\n")
    _apply(new)


if __name__ == "__main__":
    main()
