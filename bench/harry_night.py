"""Benchmark: HaRry registering a night of schedules through real Chromium, with 1 and 3 browser contexts.

The sandbox runs in its own process (the payroll system is an external system), with its
default page times of 100–300 ms. For each number of contexts the sandbox is reset, a fresh
database is used, and HaRry registers every approved schedule; the bench reports schedules
per minute, the ratio between the context counts, the CPU time of HaRry's process tree per
schedule (sampled process by process: Chromium's renderers are not children that
``os.times()`` would see) next to the whole machine's busy time, and the memory of HaRry's process tree
(this process, Playwright's driver and Chromium: proportional set size where the kernel
offers it, else resident set size), sampled over the run to show whether it stays flat.
It also checks that every schedule was saved exactly once (the sandbox's save log).

    python bench/harry_night.py                      # 200 schedules, contexts 1 and 3
    python bench/harry_night.py --employees 800 --contexts 3

Writes bench/results/harry.json (merged with earlier runs of other sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.engine import Engine  # noqa: E402
from core.logging import configure_logging  # noqa: E402
from core.registry import Registry  # noqa: E402
from core.storage.db import Database  # noqa: E402
from core.testing import TEST_TENANT  # noqa: E402
from robots.harry.robot import Harry  # noqa: E402
from tests.helpers.harry import harry_app_settings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "harry.json"


# -- memory of the process tree ------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _memory_kb(pid: int, metric: str) -> int:
    # Pss shares a page among the processes using it (the honest sum for Chromium's processes) but
    # reading smaps_rollup walks their huge address spaces and costs CPU: sample it seldom.
    sources = [(f"/proc/{pid}/smaps_rollup", "Pss:")] if metric == "pss" else []
    for path, key in [*sources, (f"/proc/{pid}/status", "VmRSS:")]:
        try:
            with open(path) as fh:
                for line in fh:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            continue
    return 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of one process (its own, not its children's)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_memory_mb(root: int, exclude: set[int], metric: str = "pss") -> float:
    """Memory (``pss`` or ``rss``) of ``root`` and its descendants (minus the ``exclude`` subtrees), in MB."""
    tree, total, stack = _children(), 0, [root]
    while stack:
        pid = stack.pop()
        if pid in exclude:
            continue
        total += _memory_kb(pid, metric)
        stack.extend(tree.get(pid, []))
    return total / 1024


def machine_busy_seconds() -> float:
    """CPU seconds all the machine's cores have spent not idle since boot (from /proc/stat)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """CPU seconds of every process in this process's tree (minus the ``exclude`` subtrees), sampled.

    Chromium's renderer, GPU and utility processes are not this process's children (they are
    reaped by Chromium, if at all, after the measurement), so ``os.times()`` does not see them.
    Each process's own user+system time is read every ``every`` seconds and its last reading
    counted; a process that lives less than ``every`` seconds is missed, so the figure is a
    slight underestimate. ``machine`` is the whole machine's busy CPU time over the same span,
    as a cross-check (it includes the sandbox and anything else running).
    """

    def __init__(self, exclude: set[int], every: float = 0.5) -> None:
        self.exclude = exclude
        self.every = every
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.machine = 0.0

    def _sample(self) -> None:
        tree, stack = _children(), [os.getpid()]
        while stack:
            pid = stack.pop()
            if pid in self.exclude:
                continue
            seconds = cpu_seconds(pid)
            self._first.setdefault(pid, 0.0)  # born during the measurement: all of its time counts
            self._last[pid] = seconds
            stack.extend(tree.get(pid, []))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    @property
    def seconds(self) -> float:
        """CPU seconds the tree used while sampled (processes already running count from the start)."""
        return sum(self._last[pid] - self._first[pid] for pid in self._last)

    def __enter__(self) -> CpuSampler:
        self._sample()
        # Processes alive at the start (a browser from an earlier run) count only what they use from now.
        self._first = dict(self._last)
        self._machine_start = machine_busy_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.machine = machine_busy_seconds() - self._machine_start


class MemorySampler:
    """Samples the tree's memory every ``every`` seconds in a thread, with the items done so far."""

    def __init__(self, exclude: set[int], every: float = 1.0, metric: str = "pss") -> None:
        self.exclude = exclude
        self.every = every
        self.metric = metric
        self.samples: list[tuple[float, int, float]] = []
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            memory = tree_memory_mb(os.getpid(), self.exclude, self.metric)
            self.samples.append((time.monotonic() - self._start, self.done, memory))
            self._stop.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- the sandbox in its own process ------------------------------------------------------------
def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(employees: int, seed: int) -> tuple[subprocess.Popen[bytes], str]:
    """Serve the sandbox in a child process; returns it and its URL once it answers."""
    port = free_port()
    code = f"from sandbox.server import serve; serve(seed={seed}, port={port}, employees={employees})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/admin/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the sandbox did not start")


# -- one measured night ------------------------------------------------------------------------
def night(
    url: str,
    contexts: int,
    items_per_context: int,
    sandbox_pid: int,
    *,
    memory: str = "pss",
    sample_seconds: float = 10.0,
    executable: str | None = None,
) -> dict[str, Any]:
    """Reset the sandbox, register every approved schedule with ``contexts`` contexts, and measure."""
    httpx.post(f"{url}/admin/reset", json={}, timeout=60).raise_for_status()
    summaries = httpx.get(f"{url}/scheduling/schedules", params={"limit": 1000}, timeout=30).json()
    with_rows = sum(1 for s in summaries["items"] if s["row_count"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        db = Database(f"sqlite:///{tmp_path / 'bench.db'}")
        db.upgrade()
        settings = harry_app_settings(
            tmp_path,
            url,
            worker={"concurrency": contexts, "item_timeout_seconds": 200, "lease_seconds": 600, "max_attempts": 5},
            robot={"contexts": contexts, "items_per_context": items_per_context},
            browser={
                "navigation_timeout_seconds": 60,
                "timeout_seconds": 30,
                **({"executable_path": executable} if executable else {}),
            },
        )
        engine = Engine.from_database(db, settings, Registry(robots={"harry": Harry}))
        sandbox_before = cpu_seconds(sandbox_pid)
        with (
            CpuSampler({sandbox_pid}) as cpu,
            MemorySampler({sandbox_pid}, every=sample_seconds, metric=memory) as sampler,
        ):
            started = time.monotonic()

            def progress(_event: str, counts: dict[str, int]) -> None:
                sampler.done = counts["done"]

            summary = asyncio.run(engine.run("harry", TEST_TENANT.code, on_progress=progress))
            seconds = time.monotonic() - started
        sandbox_after = cpu_seconds(sandbox_pid)
        db.dispose()
    state = httpx.get(f"{url}/admin/state/payroll", timeout=30).json()
    per_period: dict[str, int] = state.get("write_counts", {}).get("schedule.saved", {})
    done = max(summary.counts["done"], 1)
    samples = sampler.samples
    # The memory sampled last before a quarter, half, three quarters and all of the items were done.
    quarter = [
        next((m for _t, d, m in reversed(samples) if d <= summary.counts["done"] * q / 4), 0.0) for q in (1, 2, 3, 4)
    ]
    return {
        "contexts": contexts,
        "items_per_context": items_per_context,
        "schedules": summary.counts["collected"],
        "done": summary.counts["done"],
        "other_outcomes": {k: v for k, v in summary.counts.items() if k not in ("collected", "done") and v},
        "seconds": round(seconds, 1),
        "schedules_per_minute": round(summary.counts["done"] / seconds * 60, 1),
        "memory_metric": "sum of Pss" if memory == "pss" else "sum of VmRSS (counts shared pages repeatedly)",
        "peak_memory_mb": round(max((m for _t, _d, m in samples), default=0.0), 1),
        "memory_mb_at_quarters_of_items": [round(m, 1) for m in quarter],
        # HaRry's whole tree: this process, Playwright's driver and every Chromium process.
        "cpu_seconds_per_schedule": round(cpu.seconds / done, 2),
        "machine_busy_cpu_seconds_per_schedule": round(cpu.machine / done, 2),
        "cores_busy_on_average": round(cpu.machine / seconds, 2),
        "sandbox_cpu_seconds_per_schedule": round((sandbox_after - sandbox_before) / done, 2),
        "saved_at_most_once": set(per_period.values()) <= {1},
        "saves": sum(per_period.values()),
        "schedules_with_rows": with_rows,
        "refused_by_payroll": summary.counts["failed_business"],
        "every_registered_schedule_saved_once": (
            set(per_period.values()) <= {1} and len(per_period) == with_rows - summary.counts["failed_business"]
        ),
    }


def main() -> None:
    """Run the benchmark and write bench/results/harry.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--employees", type=int, default=200, help="Employees (≈ schedules) in the sandbox.")
    parser.add_argument("--contexts", type=int, nargs="+", default=[1, 3], help="Context counts to measure.")
    parser.add_argument("--items-per-context", type=int, default=40, help="Items before a context is replaced.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--memory",
        choices=("pss", "rss"),
        default="pss",
        help="pss: proportional set size (honest, costlier to read); rss: resident set size.",
    )
    parser.add_argument(
        "--executable", default=None, help="The Chromium to launch (default: the connector's own choice)."
    )
    parser.add_argument("--sample-seconds", type=float, default=10.0, help="Seconds between memory samples.")
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    proc, url = start_sandbox(args.employees, args.seed)
    load_before = os.getloadavg()
    try:
        runs = []
        for contexts in args.contexts:
            result = night(
                url,
                contexts,
                args.items_per_context,
                proc.pid,
                memory=args.memory,
                sample_seconds=args.sample_seconds,
                executable=args.executable,
            )
            runs.append(result)
            print(
                f"{args.employees} employees, {contexts} context(s): {result['done']} schedules in "
                f"{result['seconds']} s = {result['schedules_per_minute']}/min, peak memory "
                f"{result['peak_memory_mb']} MB (at each quarter of the items: {result['memory_mb_at_quarters_of_items']}), "
                f"CPU {result['cpu_seconds_per_schedule']} s per schedule (+ sandbox "
                f"{result['sandbox_cpu_seconds_per_schedule']} s; the machine: "
                f"{result['machine_busy_cpu_seconds_per_schedule']} s, {result['cores_busy_on_average']} cores busy "
                f"on average), saved at most once: "
                f"{result['saved_at_most_once']}, refused by the payroll system: {result['refused_by_payroll']}",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    by_contexts = {r["contexts"]: r for r in runs}
    entry: dict[str, Any] = {
        "employees": args.employees,
        "runs": runs,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load_before],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if 1 in by_contexts and 3 in by_contexts:
        entry["ratio_3_vs_1"] = round(
            by_contexts[3]["schedules_per_minute"] / by_contexts[1]["schedules_per_minute"], 2
        )
    best = max(runs, key=lambda r: r["schedules_per_minute"])
    entry["projected_minutes_for_800"] = round(800 / best["schedules_per_minute"], 1)
    for r in runs:
        print(f"  projected 800 schedules with {r['contexts']} context(s): {800 / r['schedules_per_minute']:.1f} min")
    if "ratio_3_vs_1" in entry:
        print(f"  ratio 3 contexts vs 1: {entry['ratio_3_vs_1']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous.setdefault("nights", {})[str(args.employees)] = entry
    previous["description"] = (
        "HaRry registering schedules in the sandbox payroll system through Chromium; see bench/harry_night.py"
    )
    RESULTS.write_text(json.dumps(previous, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
