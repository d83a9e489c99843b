"""The work-item queue against its peers: the same no-op workload through Kollega, PGQueuer and Procrastinate.

    .venv/bin/python bench/queue_peers.py [--items 2000] [--processes 1,4] [--repeat 3]
        [--systems kollega,kollega_store_claim1,kollega_store_claim10,pgqueuer,pgqueuer_batch100,procrastinate]
        [--out bench/results/queue_peers.json]

Needs the bench extras (``pip install -e '.[bench]'``: PGQueuer and Procrastinate) and the
PostgreSQL at KOLLEGA_TEST_POSTGRES_URL. Each round gets a fresh database (CREATE DATABASE,
dropped afterwards) holding --items pending no-op jobs; worker PROCESSES start together
behind a barrier and drain it; throughput is items / (last worker's end − first worker's
start), the median of --repeat rounds. Every round checks that each job ran exactly once.

Each system is used as its documentation recommends:

- ``kollega``: **the engine**, as a user runs it: a no-op robot through ``Engine.run`` (one
  run per process, the default ``[worker]`` settings: 4 tasks, group claim with prefetch 10
  growing up to 100 while items finish fast, pipelined group commit, a lease heartbeat per item, the run's heartbeat and log, the audit where
  the engine audits). The figure is what a user gets.
- ``kollega_store_claim1`` / ``kollega_store_claim10``: the store calls alone,
  ``WorkQueue.claim(limit=1 or 10)`` then the completion of what was claimed (with
  ``--completion batch`` in one ``complete_many`` statement, the group commit).
- ``pgqueuer``: ``QueueManager.run(mode=drain)`` with its defaults (batch_size 10, status
  log buffered, LISTEN/NOTIFY); ``pgqueuer_batch100`` with batch_size=100.
- ``procrastinate``: ``App.run_worker_async(wait=False)`` with its defaults (one job at a
  time per worker, LISTEN/NOTIFY, jobs kept).

Writes {"kollega": {"1": items_per_s, "4": …}, "pgqueuer": {…}, "procrastinate": {…}, …}
plus the rounds and the conditions of the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROBOT, TENANT, WARM_UP = "bench", "0000", "0001"
SYSTEMS = ("kollega", "kollega_store_claim1", "kollega_store_claim10", "pgqueuer", "pgqueuer_batch100", "procrastinate")


# -- databases ----------------------------------------------------------------------------
def libpq_url(url: str, database: str | None = None) -> str:
    """The SQLAlchemy URL as a plain libpq/asyncpg URL, optionally naming another database."""
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
    path = f"/{database}" if database else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def create_database(admin_url: str) -> str:
    """A fresh, empty database; returns its name."""
    import psycopg

    name = f"peers_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- setting up a round -------------------------------------------------------------------
def prepare(system: str, dsn: str, items: int) -> None:
    """Install the system's schema in the fresh database at ``dsn`` and enqueue ``items`` jobs."""
    if system.startswith("kollega"):
        from core.queue import WorkQueue
        from core.robot import NewItem
        from core.runs import SqlRunStore
        from core.storage.db import Database

        db = Database(dsn.replace("postgresql://", "postgresql+psycopg://"))
        db.upgrade()
        SqlRunStore(db).ensure_tenant(TENANT, "Benchkommun")
        WorkQueue(db).enqueue(ROBOT, TENANT, [NewItem(reference=f"b-{i}") for i in range(items)])
        db.dispose()
    elif system.startswith("pgqueuer"):
        asyncio.run(_prepare_pgqueuer(dsn, items))
    elif system == "procrastinate":
        asyncio.run(_prepare_procrastinate(dsn, items))
    else:
        raise SystemExit(f"unknown system {system!r}")


async def _prepare_pgqueuer(dsn: str, items: int) -> None:
    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    conn = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(conn))
        await queries.install()
        await queries.enqueue(["noop"] * items, [None] * items, [0] * items)
    finally:
        await conn.close()


def _procrastinate_app(dsn: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    return app


async def _prepare_procrastinate(dsn: str, items: int) -> None:
    app = _procrastinate_app(dsn)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        await app.tasks["noop"].batch_defer_async(*([{}] * items))


def count_done(system: str, dsn: str) -> int:
    """How many jobs the system itself records as finished (for the exactly-once check)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        if system.startswith("kollega"):
            row = conn.execute("SELECT count(*) FROM work_items WHERE status = 'done'").fetchone()
        elif system.startswith("pgqueuer"):
            # Finished jobs leave the queue table; their log rows say how they ended.
            left = conn.execute("SELECT count(*) FROM pgqueuer").fetchone()
            if left and left[0]:
                return -int(left[0])
            row = conn.execute("SELECT count(DISTINCT job_id) FROM pgqueuer_log WHERE status = 'successful'").fetchone()
        else:
            row = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'").fetchone()
    return int(row[0]) if row else 0


# -- worker processes ---------------------------------------------------------------------
def worker(system: str, dsn: str, barrier: Path, name: str, completion: str) -> None:
    """Drain the queue; write 'start end count' to barrier/result-NAME."""
    if system == "kollega":
        start, end, done = asyncio.run(_engine_worker(dsn, barrier, name))
    elif system.startswith("kollega_store"):
        start, end, done = _kollega_worker(dsn, barrier, name, 10 if system.endswith("claim10") else 1, completion)
    else:
        start, end, done = asyncio.run(_async_worker(system, dsn, barrier, name))
    (barrier / f"result-{name}").write_text(f"{start} {end} {done}")


def _wait_for_go(barrier: Path, name: str) -> None:
    (barrier / f"ready-{name}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.001)


def _kollega_worker(dsn: str, barrier: Path, name: str, claim: int, completion: str) -> tuple[float, float, int]:
    from core.queue import WorkQueue
    from core.robot import Done
    from core.storage.db import Database

    db = Database(dsn.replace("postgresql://", "postgresql+psycopg://"), pool_size=2)
    queue = WorkQueue(db)
    queue.pending_count(ROBOT, TENANT)  # connect (and warm up) before the clock starts
    _wait_for_go(barrier, name)
    start, done = time.time(), 0
    while True:
        claimed = queue.claim(ROBOT, TENANT, name, limit=claim, lease_seconds=600)
        if not claimed:
            break
        if completion == "batch":
            finished = queue.complete_many([(item, Done()) for item in claimed], actor="bench")
            done += sum(1 for ok in finished if ok)
        else:
            for item in claimed:
                queue.complete(item, Done(), actor="bench")
                done += 1
    end = time.time()
    db.dispose()
    return start, end, done


async def _engine_worker(dsn: str, barrier: Path, name: str) -> tuple[float, float, int]:
    """One ``Engine.run`` of a no-op robot over the queued items, with the default worker settings."""
    from core.api import Done, NoSettings, Outcome, Robot, RunContext, WorkItemView
    from core.engine import Engine
    from core.logging import configure_logging
    from core.registry import Registry
    from core.settings import TenantSettings, WorkerSettings
    from core.storage.db import Database
    from core.testing import make_settings

    class Noop(Robot[NoSettings]):
        """Collects nothing (the items are queued); each item is done at once."""

        name = ROBOT
        display_name = "Bench"

        async def collect(self, ctx: RunContext) -> list[Any]:
            return []

        async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
            return Done()

    folder = Path(tempfile.mkdtemp(prefix="peers-engine-"))
    tenants = [TenantSettings(code=TENANT, name="Benchkommun"), TenantSettings(code=WARM_UP, name="Uppvärmning")]
    settings = make_settings(folder, tenants=tenants, worker=WorkerSettings())
    configure_logging("WARNING")
    db = Database(dsn.replace("postgresql://", "postgresql+psycopg://"))
    engine = Engine.from_database(db, settings, Registry(robots={ROBOT: Noop}))
    # Before the clock starts: one run of a municipality without items, as a long-running
    # `kollega worker` has made before (imports, connections, statement caches are warm).
    await engine.run(ROBOT, WARM_UP)
    _wait_for_go(barrier, name)
    start = time.time()
    summary = await engine.run(ROBOT, TENANT)
    end = time.time()
    db.dispose()
    if summary.status.value != "succeeded":
        raise SystemExit(f"the bench run ended {summary.status.value}: {summary.error}")
    return start, end, summary.counts["done"]


async def _async_worker(system: str, dsn: str, barrier: Path, name: str) -> tuple[float, float, int]:
    done = 0
    if system.startswith("pgqueuer"):
        import asyncpg
        from pgqueuer import QueueManager
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries
        from pgqueuer.types import QueueExecutionMode

        conn = await asyncpg.connect(dsn)
        qm = QueueManager(Queries(AsyncpgDriver(conn)))

        @qm.entrypoint("noop")
        async def noop(job: Any) -> None:
            nonlocal done
            done += 1

        batch = 100 if system == "pgqueuer_batch100" else 10
        await qm.verify_structure()  # connect and warm up before the clock starts, as the others do
        _wait_for_go(barrier, name)
        start = time.time()
        await qm.run(mode=QueueExecutionMode.drain, batch_size=batch)
        end = time.time()
        await conn.close()
        return start, end, done
    app = _procrastinate_app(dsn)
    original = app.tasks["noop"].func

    async def counted() -> None:
        nonlocal done
        await original()
        done += 1

    app.tasks["noop"].func = counted
    async with app.open_async():
        _wait_for_go(barrier, name)
        start = time.time()
        await app.run_worker_async(wait=False, install_signal_handlers=False)
        end = time.time()
    return start, end, done


# -- one round ------------------------------------------------------------------------
def one_round(system: str, admin_url: str, processes: int, items: int, completion: str) -> float:
    """Fill a fresh database, let ``processes`` workers drain it; items per second."""
    name = create_database(admin_url)
    dsn = libpq_url(admin_url, name)
    try:
        prepare(system, dsn, items)
        barrier = Path(tempfile.mkdtemp(prefix="peers-barrier-"))
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", system, dsn, str(barrier), f"w{i}", completion],
            )
            for i in range(processes)
        ]
        try:
            deadline = time.monotonic() + 120
            while len(list(barrier.glob("ready-*"))) < processes:
                if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                    raise SystemExit(f"a {system} bench worker failed to start")
                time.sleep(0.01)
            (barrier / "go").touch()
            for p in procs:
                if p.wait(timeout=900) != 0:
                    raise SystemExit(f"a {system} bench worker exited {p.returncode}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        results = [tuple(map(float, f.read_text().split())) for f in barrier.glob("result-*")]
        start, end = min(r[0] for r in results), max(r[1] for r in results)
        ran = sum(int(r[2]) for r in results)
        done = count_done(system, dsn)
        if ran != items or done != items:
            raise SystemExit(f"{system}: lost or doubled jobs: {ran} ran, {done} recorded done, {items} enqueued")
        return items / (end - start)
    finally:
        drop_database(admin_url, name)


def main() -> None:
    """Parse arguments, measure, print and write the results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=2000, help="jobs per round (default 2000)")
    p.add_argument("--processes", default="1,4", help="worker process counts, comma separated (default 1,4)")
    p.add_argument("--repeat", type=int, default=3, help="rounds per figure; the median is reported (default 3)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma separated, of {', '.join(SYSTEMS)}")
    p.add_argument(
        "--completion",
        choices=("each", "batch"),
        default="batch",
        help="Kollega: complete each item in its own statement, or the claimed batch in one (default batch)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "queue_peers.json", help="result file")
    p.add_argument(
        "--worker", nargs=5, metavar=("SYSTEM", "DSN", "BARRIER", "NAME", "COMPLETION"), help=argparse.SUPPRESS
    )
    a = p.parse_args()
    if a.worker:
        system, dsn, barrier, name, completion = a.worker
        worker(system, dsn, Path(barrier), name, completion)
        return

    admin_url = os.environ.get("KOLLEGA_TEST_POSTGRES_URL", DEFAULT_PG)
    counts = [int(n) for n in a.processes.split(",")]
    systems = [s for s in a.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"unknown system(s): {', '.join(sorted(unknown))}; choose from {', '.join(SYSTEMS)}")
    results: dict[str, Any] = {}
    rounds: dict[str, Any] = {}
    loads: dict[str, Any] = {}
    # Rounds interleave the systems (r0 of each, then r1 of each …) so that a noisy moment on
    # this shared machine does not fall on one system only.
    for n in counts:
        per: dict[str, list[float]] = {s: [] for s in systems}
        for _r in range(a.repeat):
            for system in systems:
                loads.setdefault(f"{system} processes={n}", []).append(round(os.getloadavg()[0], 2))
                per[system].append(one_round(system, admin_url, n, a.items, a.completion))
        for system in systems:
            figure = round(statistics.median(per[system]), 1)
            results.setdefault(system, {})[str(n)] = figure
            rounds[f"{system} processes={n}"] = [round(x, 1) for x in per[system]]
            print(
                f"{system:<18} {n:>2} process(es): {figure:8.1f} items/s "
                f"(rounds: {', '.join(f'{x:.0f}' for x in per[system])})",
                flush=True,
            )
    if "pgqueuer" in results:
        base = results["pgqueuer"]
        results["ratio_to_pgqueuer"] = {
            s: {n: round(f[n] / base[n], 2) for n in f if n in base} for s, f in results.items() if s in SYSTEMS
        }
    results["conditions"] = {
        "items": a.items,
        "repeat": a.repeat,
        "kollega_completion": a.completion,
        "statistic": "median of the rounds; systems interleaved round by round",
        "rounds_items_per_s": rounds,
        "load_average_1min_before_each_round": loads,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "versions": _versions(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {a.out}")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("kollega", "pgqueuer", "procrastinate", "psycopg", "asyncpg"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "not installed"
    return found


if __name__ == "__main__":
    main()
