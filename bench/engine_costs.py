"""What one no-op item costs the engine: CPU, claim and completion statements, on PostgreSQL.

    .venv/bin/python bench/engine_costs.py [--items 4000] [--rounds 3]
        [--concurrency 4] [--prefetch 10] [--prefetch-max 100] [--item-ms 0] [--pgqueuer]
        [--out bench/results/engine_costs.json]

One process, one ``Engine.run`` of a no-op robot over --items queued items (after a warm-up
run of a municipality without items, as in bench/queue_peers.py), on a fresh database per
round at KOLLEGA_TEST_POSTGRES_URL. It reports, per round: items/s, the process's CPU time
per item (every thread: the event loop and the statements' worker threads), the claim and
completion statements the run sent and how many items each carried, and the time spent
inside them. CPU per item and statements per item vary far less with the machine's load
than items/s, so they compare two versions of the engine on a busy machine. With
--pgqueuer, each round also drains the same items with PGQueuer's defaults (the worker of
bench/queue_peers.py, in this process) and reports its CPU per item the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import bench.queue_peers as peers  # noqa: E402 (after the path is set)
from bench.queue_peers import (  # noqa: E402
    DEFAULT_PG,
    ROBOT,
    TENANT,
    WARM_UP,
    create_database,
    drop_database,
    libpq_url,
    prepare,
)


def one_round(admin_url: str, items: int, worker: dict[str, int], item_ms: float = 0.0) -> dict[str, float]:
    """Queue ``items`` items in a fresh database and run the engine over them once (each waits ``item_ms``)."""
    from core.api import Done, NewItem, NoSettings, Outcome, Robot, RunContext, WorkItemView
    from core.engine import Engine
    from core.logging import configure_logging
    from core.records import WorkItemView as View
    from core.registry import Registry
    from core.settings import TenantSettings, WorkerSettings
    from core.storage.db import Database
    from core.testing import make_settings

    class Noop(Robot[NoSettings]):
        """Collects nothing (the items are queued); each item is done at once."""

        name = ROBOT
        display_name = "Bench"

        async def collect(self, ctx: RunContext) -> list[NewItem]:
            return []

        async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
            if item_ms:
                await asyncio.sleep(item_ms / 1000)  # a robot waiting for another system
            return Done()

    name = create_database(admin_url)
    dsn = libpq_url(admin_url, name)
    try:
        prepare("kollega", dsn, items)
        tenants = [TenantSettings(code=TENANT, name="Benchkommun"), TenantSettings(code=WARM_UP, name="Uppvärmning")]
        settings = make_settings(
            Path(tempfile.mkdtemp(prefix="engine-costs-")), tenants=tenants, worker=WorkerSettings(**worker)
        )
        configure_logging("WARNING")
        db = Database(dsn.replace("postgresql://", "postgresql+psycopg://"))
        engine = Engine.from_database(db, settings, Registry(robots={ROBOT: Noop}))
        asyncio.run(engine.run(ROBOT, WARM_UP))  # imports, connections, statement caches warm

        claims: list[int] = []
        commits: list[int] = []
        spent = {"claims": 0.0, "commits": 0.0}
        claim, complete_many = engine.queue.claim, engine.queue.complete_many

        def counted_claim(*args: Any, **kwargs: Any) -> list[View]:
            t = time.perf_counter()
            found = claim(*args, **kwargs)
            spent["claims"] += time.perf_counter() - t
            claims.append(len(found))
            return found

        def counted_commit(finished: Sequence[tuple[View, Done]], **kwargs: Any) -> list[bool]:
            t = time.perf_counter()
            answer = complete_many(finished, **kwargs)
            spent["commits"] += time.perf_counter() - t
            commits.append(len(finished))
            return answer

        engine.queue.claim = counted_claim  # type: ignore[method-assign]
        engine.queue.complete_many = counted_commit  # type: ignore[method-assign]
        cpu, wall = time.process_time(), time.perf_counter()
        summary = asyncio.run(engine.run(ROBOT, TENANT))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        db.dispose()
        if summary.counts["done"] != items:
            raise SystemExit(f"the run did {summary.counts['done']} of {items} items ({summary.status.value})")
        claimed = [n for n in claims if n]
        return {
            "items_per_s": round(items / wall, 1),
            "cpu_us_per_item": round(cpu / items * 1e6, 1),
            "claim_statements": len(claims),
            "items_per_claim": round(sum(claimed) / max(len(claimed), 1), 1),
            "completion_statements": len(commits),
            "items_per_completion": round(sum(commits) / max(len(commits), 1), 1),
            "share_of_wall_in_claims": round(spent["claims"] / wall, 2),
            "share_of_wall_in_completions": round(spent["commits"] / wall, 2),
        }
    finally:
        drop_database(admin_url, name)


def pgqueuer_round(admin_url: str, items: int) -> dict[str, float]:
    """PGQueuer's defaults draining ``items`` jobs in this process: items/s and CPU per item from the start."""
    name = create_database(admin_url)
    dsn = libpq_url(admin_url, name)
    try:
        prepare("pgqueuer", dsn, items)
        barrier = Path(tempfile.mkdtemp(prefix="engine-costs-"))
        (barrier / "go").touch()
        started: dict[str, float] = {}
        wait = peers._wait_for_go

        def go(folder: Path, who: str) -> None:  # the clock starts where the bench's does
            wait(folder, who)
            started.update(cpu=time.process_time(), wall=time.perf_counter())

        peers._wait_for_go = go
        try:
            _start, _end, done = asyncio.run(peers._async_worker("pgqueuer", dsn, barrier, "w0"))
        finally:
            peers._wait_for_go = wait
        cpu, wall = time.process_time() - started["cpu"], time.perf_counter() - started["wall"]
        if done != items:
            raise SystemExit(f"PGQueuer ran {done} of {items} jobs")
        return {"items_per_s": round(items / wall, 1), "cpu_us_per_item": round(cpu / items * 1e6, 1)}
    finally:
        drop_database(admin_url, name)


def main() -> None:
    """Parse arguments, measure, print and write the results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=4000, help="items per round (default 4000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; the medians are reported (default 3)")
    p.add_argument("--concurrency", type=int, default=None, help="[worker] concurrency (default: the default)")
    p.add_argument("--prefetch", type=int, default=None, help="[worker] prefetch (default: the default)")
    p.add_argument("--prefetch-max", type=int, default=None, help="[worker] prefetch_max (default: the default)")
    p.add_argument("--item-ms", type=float, default=0.0, help="each item waits this long (default 0: no-op)")
    p.add_argument("--pgqueuer", action="store_true", help="also measure PGQueuer's defaults, round by round")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "engine_costs.json", help="result file")
    a = p.parse_args()
    worker = {
        k: v
        for k, v in (("concurrency", a.concurrency), ("prefetch", a.prefetch), ("prefetch_max", a.prefetch_max))
        if v is not None
    }
    admin_url = os.environ.get("KOLLEGA_TEST_POSTGRES_URL", DEFAULT_PG)
    rounds = []
    for r in range(a.rounds):
        load = round(os.getloadavg()[0], 2)
        found = one_round(admin_url, a.items, worker, a.item_ms) | {"load_average_1min_before": load}
        if a.pgqueuer:
            found |= {f"pgqueuer_{k}": v for k, v in pgqueuer_round(admin_url, a.items).items()}
        rounds.append(found)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v}" for k, v in found.items()), flush=True)
    medians = {k: round(statistics.median(r[k] for r in rounds), 2) for k in rounds[0]}
    print("median: " + ", ".join(f"{k} {v}" for k, v in medians.items()))
    result = {
        "median": medians,
        "rounds": rounds,
        "worker_settings": worker or "defaults",
        "item_ms": a.item_ms,
        "items": a.items,
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {a.out}")


if __name__ == "__main__":
    main()
