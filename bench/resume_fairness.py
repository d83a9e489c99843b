"""Benchmark: a killed worker's night is resumed promptly and fairly (two municipalities, two workers).

Two municipalities (1081 and 1082), each with its own sandbox (its own scheduling and
payroll systems, each declared in its own [[tenants]] entry), get a queued HaRry run each.
Two ``Worker`` processes share one database: worker A takes 1081's run, worker B 1082's.
In the "kill" scenario worker B is killed (SIGKILL, with its browser) ``--kill-after``
seconds after it took its run; worker A, busy with 1081's night, takes 1082's run over once
its lease runs out, and the two nights share A's item slots fairly. The "baseline" scenario
is the same night without the kill. The bench reports each municipality's finish time (from
the moment the runs were queued) in both scenarios, and checks the sandboxes' save logs:
every schedule saved at most once.

    python bench/resume_fairness.py                          # 100 schedules per municipality
    python bench/resume_fairness.py --employees 800 --kill-after 60
    python bench/resume_fairness.py --employees 800 --concurrent-nights

With ``--concurrent-nights`` the two nights run at the same time, each with its own database,
its own two sandboxes (ports) and its own two workers, so that a shared machine's changing
load falls on both alike (on a quiet machine they compete for its cores instead: compare
them with each other, not with nights run alone). Both nights' progress (schedules done per
municipality) is sampled every ``--sample-seconds`` from their databases; a night that does
not finish within ``--timeout`` is reported with its progress instead of a finish time.

Writes bench/results/resume.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harry_night import free_port  # noqa: E402
from core.settings import Settings, TenantSettings  # noqa: E402
from tests.helpers.harry import harry_app_settings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "resume.json"
TENANTS = ("1081", "1082")
#: Alembic keeps its context in module globals: two nights starting at once upgrade one at a time.
UPGRADE_LOCK = threading.Lock()


def bench_settings(var_dir: Path, urls: dict[str, str], lease: float, concurrency: int) -> Settings:
    """Two municipalities, each with its own scheduling and payroll system; a short lease so a death shows."""
    settings = harry_app_settings(
        var_dir,
        urls[TENANTS[0]],
        worker={
            "concurrency": concurrency,
            "lease_seconds": lease,
            "item_timeout_seconds": lease * 0.8,
            "poll_seconds": 1.0,
            "max_attempts": 5,
            "runs_at_once": 2,
        },
        robot={"contexts": concurrency, "items_per_context": 40},
        browser={"navigation_timeout_seconds": 60, "timeout_seconds": 30},
    )
    settings.connectors = {"browser": settings.connectors["browser"]}
    settings.tenants = [
        TenantSettings(
            code=code,
            name=f"Kommun {code}",
            connectors={
                "scheduling": {"base_url": f"{url}/scheduling"},
                "payroll": {"base_url": f"{url}/payroll"},
            },
        )
        for code, url in urls.items()
    ]
    return settings


# -- a worker process ----------------------------------------------------------------------------
def worker_main(db_url: str, urls_json: str, var_dir: str, lease: str, concurrency: str, name: str) -> None:
    """A ``kollega worker`` for the bench: serves until both runs have finished."""
    from core.engine import Engine
    from core.logging import configure_logging
    from core.registry import Registry
    from core.storage.db import Database
    from core.storage.models import Run, RunStatus
    from core.worker import Worker
    from robots.harry.robot import Harry

    configure_logging(level="WARNING", fmt="console")
    db = Database(db_url)
    settings = bench_settings(Path(var_dir), json.loads(urls_json), float(lease), int(concurrency))
    engine = Engine.from_database(db, settings, Registry(robots={"harry": Harry}), owner=name)

    async def serve() -> None:
        stop = asyncio.Event()

        async def watch() -> None:
            while True:
                await asyncio.sleep(1)
                with db.session() as s:
                    left = s.query(Run).filter(Run.status.in_([RunStatus.queued, RunStatus.running])).count()
                if left == 0:
                    stop.set()
                    return

        watcher = asyncio.create_task(watch())
        await Worker(engine).serve(stop)
        watcher.cancel()

    asyncio.run(serve())
    db.dispose()


# -- the bench -----------------------------------------------------------------------------------
def start_sandbox(employees: int, seed: int, tenant: str) -> tuple[subprocess.Popen[bytes], str]:
    """Serve one municipality's sandbox in a child process; returns it and its URL once it answers."""
    port = free_port()
    code = (
        f"from sandbox.server import serve; serve(seed={seed}, port={port}, employees={employees}, tenant={tenant!r})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/admin/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the sandbox did not start")


def spawn_worker(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A worker process in its own process group (so killing it takes its browser along)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "worker", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def runs(db_url: str) -> dict[str, dict[str, Any]]:
    """The bench's runs by tenant."""
    from core.storage.db import Database
    from core.storage.models import Run

    db = Database(db_url)
    try:
        with db.session() as s:
            return {
                r.tenant: {
                    "id": r.id,
                    "status": r.status.value,
                    "owner": r.lease_owner,
                    "finished_at": r.finished_at,
                    "done": r.done,
                    "collected": r.collected,
                    "uncertain": r.uncertain,
                }
                for r in s.query(Run).all()
            }
    finally:
        db.dispose()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` every second until true; RuntimeError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(1)


def night(
    urls: dict[str, str],
    *,
    kill_after: float | None,
    lease: float,
    concurrency: int,
    timeout: float,
    sample_seconds: float = 30.0,
    label: str = "",
) -> dict[str, Any]:
    """One night of both municipalities on two workers; worker B killed ``kill_after`` s after it took 1082's run.

    A night that does not finish within ``timeout`` is returned with ``"finished": False`` and
    its progress (the samples) rather than raising, so a long measurement still reports.
    """
    from core.runs import SqlRunStore
    from core.storage.db import Database

    for url in urls.values():
        httpx.post(f"{url}/admin/reset", json={}, timeout=60).raise_for_status()
    progress: list[dict[str, Any]] = []
    finished: dict[str, float] = {}
    complete = True
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        db_url = f"sqlite:///{tmp_path / 'bench.db'}"
        db = Database(db_url)
        with UPGRADE_LOCK:
            db.upgrade()
        store = SqlRunStore(db)
        for code in TENANTS:
            store.ensure_tenant(code, f"Kommun {code}")
        queued_at = time.monotonic()
        for code in TENANTS:
            store.create(robot="harry", tenant=code, trigger="schedule")
        db.dispose()
        common = [db_url, json.dumps(urls), str(tmp_path), str(lease), str(concurrency)]
        a = spawn_worker([*common, "worker-a"], tmp_path / "a.log")
        wait_for(lambda: runs(db_url)["1081"]["owner"] == "worker-a", 120, "worker A to take 1081's run")
        b = spawn_worker([*common, "worker-b"], tmp_path / "b.log")
        wait_for(lambda: runs(db_url)["1082"]["owner"] == "worker-b", 120, "worker B to take 1082's run")
        killed_at = None
        next_sample = 0.0
        try:
            if kill_after is not None:
                time.sleep(kill_after)
                os.killpg(b.pid, signal.SIGKILL)  # the worker and its browser, as a crashed machine would
                b.wait()
                killed_at = time.monotonic() - queued_at
                print(f"{label}: worker B killed at {killed_at:.1f} s", flush=True)

            def both_done() -> bool:
                nonlocal next_sample
                state = runs(db_url)
                now = time.monotonic() - queued_at
                for code, r in state.items():
                    if r["finished_at"] is not None and code not in finished:
                        finished[code] = round(now, 1)
                        print(f"{label}: {code} finished at {finished[code]} s", flush=True)
                if now >= next_sample:
                    next_sample = now + sample_seconds
                    progress.append(
                        {
                            "seconds": round(now),
                            "load_average": [round(x, 1) for x in os.getloadavg()],
                            **{
                                code: {"done": r["done"], "collected": r["collected"], "uncertain": r["uncertain"]}
                                for code, r in state.items()
                            },
                        }
                    )
                return len(finished) == len(TENANTS)

            try:
                wait_for(both_done, timeout, "both runs to finish")
            except RuntimeError:
                complete = False
        finally:
            for p in (a, b):
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        final = runs(db_url)
        log_a = (tmp_path / "a.log").read_text(errors="replace")[-2000:]
    saves = {}
    for code, url in urls.items():
        state = httpx.get(f"{url}/admin/state/payroll", timeout=30).json()
        saves[code] = state.get("write_counts", {}).get("schedule.saved", {})
    return {
        "finished": complete,
        "killed_worker_b_at_seconds": None if killed_at is None else round(killed_at, 1),
        "finished_seconds": finished,
        "runs": {
            code: {k: v for k, v in r.items() if k not in ("finished_at", "owner", "id")} for code, r in final.items()
        },
        "saved_at_most_once": all(set(s.values()) <= {1} for s in saves.values()),
        "saved_more_than_once": {code: sum(1 for n in s.values() if n > 1) for code, s in saves.items()},
        "saves": {code: sum(s.values()) for code, s in saves.items()},
        "progress": progress,
        "worker_a_log_tail": log_a if any(r["status"] == "failed" for r in final.values()) else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--employees", type=int, default=100, help="Employees (≈ schedules) per municipality.")
    parser.add_argument("--kill-after", type=float, default=60.0, help="Seconds after worker B took its run.")
    parser.add_argument("--lease", type=float, default=60.0, help="[worker] lease_seconds of both workers.")
    parser.add_argument("--concurrency", type=int, default=3, help="Items (browser contexts) per worker.")
    parser.add_argument("--timeout", type=float, default=3600.0, help="Seconds a night may take before it is cut.")
    parser.add_argument(
        "--concurrent-nights",
        action="store_true",
        help="Run the baseline and the kill night at the same time (own sandboxes, databases and workers each).",
    )
    parser.add_argument("--sample-seconds", type=float, default=30.0, help="Seconds between progress samples.")
    args = parser.parse_args()
    nights = 2 if args.concurrent_nights else 1
    # Each night needs its own sandboxes when they run at once (a reset would wipe the other's).
    sandboxes = [
        [start_sandbox(args.employees, seed, code) for seed, code in enumerate(TENANTS, start=1)] for _ in range(nights)
    ]
    urls = [{code: url for code, (_p, url) in zip(TENANTS, group, strict=True)} for group in sandboxes]
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    common = {
        "lease": args.lease,
        "concurrency": args.concurrency,
        "timeout": args.timeout,
        "sample_seconds": args.sample_seconds,
    }
    try:
        if args.concurrent_nights:
            with ThreadPoolExecutor(max_workers=2) as pool:
                base_future = pool.submit(night, urls[0], kill_after=None, label="baseline", **common)
                kill_future = pool.submit(night, urls[1], kill_after=args.kill_after, label="kill", **common)
                baseline, killed = base_future.result(), kill_future.result()
        else:
            baseline = night(urls[0], kill_after=None, label="baseline", **common)
            print("baseline", json.dumps({k: v for k, v in baseline.items() if k != "progress"}), flush=True)
            killed = night(urls[0], kill_after=args.kill_after, label="kill", **common)
    finally:
        for group in sandboxes:
            for proc, _url in group:
                proc.kill()
                proc.wait()
    for name, result in (("baseline", baseline), ("kill", killed)):
        print(name, json.dumps({k: v for k, v in result.items() if k != "progress"}, default=str), flush=True)
    result = {
        "employees_per_municipality": args.employees,
        "workers": 2,
        "concurrency_per_worker": args.concurrency,
        "lease_seconds": args.lease,
        "kill_after_seconds": args.kill_after,
        "concurrent_nights": args.concurrent_nights,
        "started_at": started,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "baseline": baseline,
        "kill": killed,
        "cpu_count": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("baseline", "kill")}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main(*sys.argv[2:8])
    else:
        main()
