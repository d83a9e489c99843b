"""Work-item queue throughput: no-op items claimed and completed per second.

    .venv/bin/python bench/queue_throughput.py [--items 2000] [--processes 1,4] [--batch 1[,10]]
        [--repeat 3] [--backends sqlite,postgresql] [--data DIR] [--out bench/results/queue.json]

For each backend and each number of worker PROCESSES, a fresh database (a SQLite file
under --data, or a fresh schema in the PostgreSQL at KOLLEGA_TEST_POSTGRES_URL) gets
--items pending items; the workers start together behind a barrier and each loops
``WorkQueue.claim(limit=--batch)`` → ``WorkQueue.complete(Done())`` until the queue is
empty. Throughput is items / (last worker's end − first worker's start), the median of
--repeat rounds. Every round checks that each item was completed exactly once.

Writes {"sqlite": {"1": items_per_s, "4": items_per_s}, "postgresql": {...}} plus the
4-to-1 ratio per backend and the conditions of the measurement; with ``--batch 1,10``
the figures for claims of 10 items per statement go under "claim_batch_10".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from core.queue import WorkQueue  # noqa: E402
from core.robot import Done, NewItem  # noqa: E402
from core.runs import SqlRunStore  # noqa: E402
from core.storage.db import Database, redact_url  # noqa: E402
from core.storage.models import ItemStatus, WorkItem  # noqa: E402
from core.testing import temporary_database  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROBOT, TENANT = "bench", "0000"


# -- worker process -------------------------------------------------------------------
def worker(url: str, barrier: Path, name: str, batch: int) -> None:
    """Claim and complete until the queue is empty; write 'start end count' to barrier/result-NAME."""
    db = Database(url, pool_size=2)
    queue = WorkQueue(db)
    queue.pending_count(ROBOT, TENANT)  # connect (and warm up) before the clock starts
    (barrier / f"ready-{name}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.001)
    start, done = time.time(), 0
    while True:
        claimed = queue.claim(ROBOT, TENANT, name, limit=batch, lease_seconds=600)
        if not claimed:
            break
        for item in claimed:
            queue.complete(item, Done(), actor="bench")
            done += 1
    end = time.time()
    (barrier / f"result-{name}").write_text(f"{start} {end} {done}")
    db.dispose()


# -- one round ------------------------------------------------------------------------
def wait_for_quiet(max_load: float | None, timeout: float = 300) -> float:
    """On a shared machine: wait (up to ``timeout`` s) for the 1-minute load to drop below ``max_load``."""
    deadline = time.monotonic() + timeout
    while max_load is not None and os.getloadavg()[0] > max_load and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def one_round(url: str | None, data: Path, processes: int, items: int, batch: int) -> float:
    """Fill a fresh database, let ``processes`` workers drain it; items per second."""
    data.mkdir(parents=True, exist_ok=True)
    with temporary_database(data, url) as db:
        SqlRunStore(db).ensure_tenant(TENANT, "Benchkommun")
        WorkQueue(db).enqueue(ROBOT, TENANT, [NewItem(reference=f"b-{i}") for i in range(items)])
        barrier = Path(tempfile.mkdtemp(prefix="barrier-", dir=data))
        procs = [
            subprocess.Popen([sys.executable, __file__, "--worker", db.url, str(barrier), f"w{i}", str(batch)])
            for i in range(processes)
        ]
        try:
            deadline = time.monotonic() + 120
            while len(list(barrier.glob("ready-*"))) < processes:
                if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                    raise SystemExit("a bench worker failed to start")
                time.sleep(0.01)
            (barrier / "go").touch()
            for p in procs:
                if p.wait(timeout=600) != 0:
                    raise SystemExit(f"a bench worker exited {p.returncode}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        results = [tuple(map(float, f.read_text().split())) for f in barrier.glob("result-*")]
        start, end = min(r[0] for r in results), max(r[1] for r in results)
        completed = sum(int(r[2]) for r in results)
        with db.session() as s:
            done = s.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.status == ItemStatus.done))
        if completed != items or done != items:
            raise SystemExit(f"lost or doubled items: {completed} completions, {done} done, {items} enqueued")
        return items / (end - start)


def main() -> None:
    """Parse arguments, measure, print and write the results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=2000, help="items per round (default 2000)")
    p.add_argument("--processes", default="1,4", help="worker process counts, comma separated (default 1,4)")
    p.add_argument(
        "--batch",
        default="1",
        help="items per claim statement, comma separated; the first gives the headline figures "
        "(default 1, what the engine uses)",
    )
    p.add_argument("--repeat", type=int, default=3, help="rounds per figure; the median is reported (default 3)")
    p.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql or both (default both)")
    p.add_argument("--data", type=Path, default=None, help="folder for SQLite files (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "queue.json", help="result file")
    p.add_argument(
        "--max-load",
        type=float,
        default=None,
        help="before each round wait (up to 5 min) for the 1-minute load average to fall below this",
    )
    p.add_argument("--worker", nargs=4, metavar=("URL", "BARRIER", "NAME", "BATCH"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        url, barrier, name, batch = a.worker
        worker(url, Path(barrier), name, int(batch))
        return

    pg_url = os.environ.get("KOLLEGA_TEST_POSTGRES_URL", DEFAULT_PG)
    counts = [int(n) for n in a.processes.split(",")]
    batches = [int(b) for b in a.batch.split(",")]
    data = a.data or Path(tempfile.mkdtemp(prefix="kollega-bench-"))
    results: dict[str, Any] = {}
    rounds: dict[str, Any] = {}
    loads: dict[str, Any] = {}
    for batch in batches:
        # The first batch size gives the headline figures; others go under "claim_batch_<N>".
        target = results if batch == batches[0] else results.setdefault(f"claim_batch_{batch}", {})
        for backend in a.backends.split(","):
            url = None if backend == "sqlite" else pg_url
            figures: dict[str, float] = {}
            for n in counts:
                runs, load = [], []
                for r in range(a.repeat):
                    load.append(round(wait_for_quiet(a.max_load), 2))
                    runs.append(one_round(url, data / f"{backend}-b{batch}-{n}-{r}", n, a.items, batch))
                loads[f"{backend} batch={batch} processes={n}"] = load
                figures[str(n)] = round(statistics.median(runs), 1)
                rounds[f"{backend} batch={batch} processes={n}"] = [round(x, 1) for x in runs]
                print(
                    f"{backend:<10} claim batch {batch:>3}, {n:>2} process(es): {figures[str(n)]:8.1f} items/s "
                    f"(rounds: {', '.join(f'{x:.0f}' for x in runs)})",
                    flush=True,
                )
            target[backend] = figures
            if "1" in figures and "4" in figures:
                print(f"{backend:<10} claim batch {batch:>3}, 4/1 ratio: {figures['4'] / figures['1']:.2f}", flush=True)
        target["ratio_4_to_1"] = {
            b: round(f["4"] / f["1"], 2)
            for b, f in target.items()
            if b in ("sqlite", "postgresql") and "1" in f and "4" in f
        }
    results["conditions"] = {
        "items": a.items,
        "batch": batches[0],
        "repeat": a.repeat,
        "statistic": "median of the rounds",
        "rounds_items_per_s": rounds,
        "load_average_1min_before_each_round": loads,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "postgresql_url": redact_url(pg_url) if "postgresql" in a.backends else None,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {a.out}")


if __name__ == "__main__":
    main()
