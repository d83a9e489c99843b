"""Shared helpers of Lena's benchmarks: solving one instance, the conditions of a run, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from robots.lena.check import check_plan  # noqa: E402
from robots.lena.formats import Instance  # noqa: E402
from robots.lena.solver import SolverOptions, solve  # noqa: E402

#: The shared data folder next to the repository (the default; every script takes --data).
SHARED_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"


def version(dist: str) -> str:
    """The installed version of ``dist`` or 'missing'."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def conditions(**extra: Any) -> dict[str, Any]:
    """Where and how the figures were measured."""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "threads_used": 1,
        "ortools": version("ortools"),
        "pyvrp": version("pyvrp"),
        **extra,
    }


def run(
    instance: Instance,
    *,
    time_limit: float,
    seed: int,
    strategy: str,
    work_limit: int | None = None,
    processes: int = 1,
) -> dict[str, Any]:
    """Solve ``instance`` once; the format's figures plus the independent check's verdict.

    With ``processes`` above 1, the solver's portfolio; its CPU seconds are those of every process.
    """
    opts = SolverOptions(
        time_limit=time_limit,
        seed=seed,
        strategy=strategy,  # type: ignore[arg-type]
        weights=instance.weights,
        work_limit=work_limit,
        processes=processes,
    )
    load = os.getloadavg()[0]
    began, cpu = time.monotonic(), time.process_time()
    result = solve(instance.problem, opts)
    seconds, cpu = time.monotonic() - began, time.process_time() - cpu
    violations = check_plan(instance.problem, result.plan)
    feasible = not violations and not result.plan.unassigned
    out = instance.summary(result.plan, feasible)
    out.pop("routes")
    out["unassigned"] = len(out["unassigned"])
    # cpu_seconds well below seconds means the machine was busy with other work (a shared VM).
    if result.processes > 1:
        cpu = result.cpu_seconds  # this process's and its workers'
        out["workers"] = [
            {"seed": w.seed, "objective": w.objective, "cpu_seconds": w.cpu_seconds, "error": w.error}
            for w in result.workers
        ]
    out.update(
        seconds=round(seconds, 2),
        cpu_seconds=round(cpu, 2),
        processes=result.processes,
        winner_seed=result.seed,
        load_1min=round(load, 2),
        engine=result.engine,
        violations=len(violations),
        repaired=len(result.repaired),
    )
    return out


def wait_for_quiet(max_load: float | None, patience: float = 600.0) -> None:
    """Wait (at most ``patience`` seconds) until the 1-minute load average is below ``max_load``."""
    if max_load is None:
        return
    deadline = time.monotonic() + patience
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        time.sleep(5)


def check_instances(parser: argparse.ArgumentParser, chosen: list[str], known: Iterable[str], data: Path) -> None:
    """Stop before the first solve, naming them, if chosen instances are not in ``data``."""
    there = sorted(known)
    missing = [name for name in chosen if name not in there]
    if missing:
        parser.error(
            f"no such instance in {data}: {', '.join(missing)} (there are {len(there)}, e.g. {', '.join(there[:3])})"
        )


def gap(cost: float, ref: float) -> float:
    """Percent above the reference."""
    return round(100.0 * (cost - ref) / ref, 3)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


#: The combined result of Lena's benchmarks: one key per script (solomon, hhcrsp, day).
LENA_JSON = RESULTS / "lena.json"


def record(key: str, path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` and merge it under ``key`` into ``lena.json`` in the same folder.

    With the default ``--out`` that is ``bench/results/lena.json``; a run written elsewhere
    (a spot check with ``--out /tmp/x.json``) leaves that file alone.
    """
    write_json(path, data)
    combined_path = path.parent / LENA_JSON.name
    if path.resolve() == combined_path.resolve():
        return
    combined: dict[str, Any] = {}
    if combined_path.exists():
        try:
            combined = json.loads(combined_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            combined = {}
    combined[key] = data
    write_json(combined_path, combined)
