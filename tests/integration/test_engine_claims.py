"""The engine's group claim: tasks share claim statements, prefetched items stay leased and go back on stop.

On the in-memory stores (the contract suite checks ``release`` on SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar, cast

from core.api import Done, NewItem, NoSettings, Outcome, Robot, RunContext, WorkItemView
from core.engine import Engine
from core.fairness import FairSlots
from core.records import ItemStatus, RunStatus
from core.registry import Registry
from core.settings import TenantSettings, WorkerSettings
from core.testing import FakeClock, make_settings
from core.testing.memory import MemoryStores

TENANTS = [TenantSettings(code="1081", name="Ronneby"), TenantSettings(code="1082", name="Karlshamn")]


class Batch(Robot[NoSettings]):
    """Collects ``count`` items; each takes ``pause`` seconds; the hook runs inside process()."""

    name = "batch"
    display_name = "Batch"
    count: ClassVar[int] = 12
    pause: ClassVar[float] = 0.0
    order: ClassVar[list[tuple[str, str]]] = []
    hook: ClassVar[object] = None

    async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]:
        for i in range(type(self).count):
            yield NewItem(reference=f"r{i:02d}", payload={})

    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        type(self).order.append((ctx.tenant, item.reference))
        hook = type(self).hook
        if callable(hook):
            await hook(ctx, item)
        await asyncio.sleep(type(self).pause)
        return Done({})


def robot(count: int = 12, pause: float = 0.0, hook: object = None) -> type[Batch]:
    """A fresh Batch subclass (class state is per test)."""
    return type("TestBatch", (Batch,), {"count": count, "pause": pause, "order": [], "hook": hook})


def engine_for(tmp_path: Path, stores: MemoryStores, cls: type[Batch], **worker: float) -> tuple[Engine, MemoryStores]:
    values: dict[str, float] = {
        "concurrency": 2,
        "lease_seconds": 60,
        "item_timeout_seconds": 30,
        "prefetch": 10,
        "prefetch_max": 10,
    }
    values.update(worker)
    settings = make_settings(tmp_path, tenants=TENANTS, worker=WorkerSettings(**values))  # type: ignore[arg-type]
    return stores.engine(settings, Registry(robots={"batch": cls})), stores


def rows(stores: MemoryStores, tenant: str = "1081") -> list[tuple[str, ItemStatus, int, str | None]]:
    """(reference, status, attempts, lease owner) of the tenant's items, by reference."""
    found = [i for i in stores.state.items.values() if i.tenant == tenant]
    return sorted((i.reference, i.status, i.attempts, i.lease_owner) for i in found)


def counting_claims(stores: MemoryStores) -> list[int]:
    """The size of every claim statement the run sends (appended as they return)."""
    sizes: list[int] = []
    claim = stores.queue.claim

    def counted(*args: object, **kwargs: object) -> list[WorkItemView]:
        found = claim(*args, **kwargs)  # type: ignore[arg-type]
        sizes.append(len(found))
        return found

    stores.queue.claim = counted  # type: ignore[method-assign]
    return sizes


class TestGroupClaim:
    """What a user relies on when a run's tasks claim together and lease a few items ahead."""

    def test_the_run_claims_in_shared_statements_and_finishes_each_item_once(self, tmp_path: Path) -> None:
        cls = robot(count=40)
        engine, stores = engine_for(tmp_path, MemoryStores(FakeClock()), cls, concurrency=4, prefetch=10)
        claims = counting_claims(stores)
        summary = asyncio.run(engine.run("batch", "1081"))
        assert summary.status == RunStatus.succeeded and summary.counts["done"] == 40
        assert sorted(ref for _, ref in cls.order) == [f"r{i:02d}" for i in range(40)]  # each processed once
        assert all(status == ItemStatus.done and attempts == 1 for _, status, attempts, _ in rows(stores))
        # Ten items per statement, not one: the statements the run sent were far fewer than its items.
        assert max(claims) == 10 and len(claims) <= 6, claims

    def test_a_stop_releases_the_prefetched_items_it_never_started(self, tmp_path: Path) -> None:
        engine: Engine | None = None

        async def stop_at_the_first(ctx: RunContext, item: WorkItemView) -> None:
            assert engine is not None
            engine.request_stop()  # SIGTERM while the first item is being worked on

        cls = robot(count=12, hook=stop_at_the_first)
        engine, stores = engine_for(tmp_path, MemoryStores(FakeClock()), cls, concurrency=1, prefetch=5)
        summary = asyncio.run(engine.run("batch", "1081"))
        assert summary.status == RunStatus.interrupted and summary.counts["done"] == 1
        found = rows(stores)
        assert [r for r in found if r[1] == ItemStatus.done] == [("r00", ItemStatus.done, 1, None)]
        # The four items leased ahead went back: pending, no lease, their attempt given back,
        # due at once for the next run or another worker (no wait for a lease to run out).
        rest = [r for r in found if r[1] != ItemStatus.done]
        assert rest == [(f"r{i:02d}", ItemStatus.pending, 0, None) for i in range(1, 12)]
        due = stores.queue.claim("batch", "1081", "another-worker", limit=20, reclaim_expired=False)
        assert len(due) == 11

    def test_prefetched_items_keep_their_leases_while_they_wait(self, tmp_path: Path) -> None:
        """On the real clock: the last item waits longer than its lease, yet no rival may take it."""
        rival: list[int] = []
        stores = MemoryStores()  # the system clock: leases run out in real time

        async def a_rival_claims(ctx: RunContext, item: WorkItemView) -> None:
            if item.reference == "r03":  # waited three items' time in the buffer, past its first lease
                taken = stores.queue.claim("batch", "1081", "rival", limit=10, lease_seconds=60)
                rival.extend(i.id for i in taken)

        # Heartbeats every lease / 3 = 1 s: a loaded machine may delay one by up to 2 s.
        cls = robot(count=4, pause=1.2, hook=a_rival_claims)
        engine, _ = engine_for(
            tmp_path, stores, cls, concurrency=1, prefetch=4, lease_seconds=3.0, item_timeout_seconds=2.5
        )
        summary = asyncio.run(engine.run("batch", "1081"))
        assert rival == []  # every buffered item's lease was extended while it waited
        assert summary.counts["done"] == 4 and [r[2] for r in rows(stores)] == [1, 1, 1, 1]

    def test_two_municipalities_share_the_slots_fairly_with_prefetch(self, tmp_path: Path) -> None:
        cls = robot(count=12, pause=0.01)
        engine, stores = engine_for(tmp_path, MemoryStores(FakeClock()), cls, concurrency=2, prefetch=10)

        async def night() -> list[RunStatus]:
            engine.slots = FairSlots(2)
            done = await asyncio.gather(engine.run("batch", "1081"), engine.run("batch", "1082"))
            return [s.status for s in done]

        assert asyncio.run(night()) == [RunStatus.succeeded, RunStatus.succeeded]
        first_half = [tenant for tenant, _ in cls.order[:12]]
        assert first_half.count("1081") >= 4 and first_half.count("1082") >= 4, cls.order
        for tenant in ("1081", "1082"):
            assert all(r[1] == ItemStatus.done and r[2] == 1 for r in rows(stores, tenant))

    def test_a_limited_run_leases_no_item_beyond_its_budget(self, tmp_path: Path) -> None:
        cls = robot(count=20)
        engine, stores = engine_for(tmp_path, MemoryStores(FakeClock()), cls, concurrency=4, prefetch=10)
        summary = asyncio.run(engine.run("batch", "1081", limit=5))
        assert summary.counts["done"] == 5
        stores.queue.enqueue("batch", "1081", [NewItem(reference=f"old-{i}") for i in range(20)])
        again = asyncio.run(engine.run("batch", "1081", limit=3))
        assert again.counts["done"] == 3
        untouched = [r for r in rows(stores) if r[1] != ItemStatus.done]
        # Nothing beyond the budget was leased, not even ahead: every other item never had an attempt.
        assert len(untouched) == 17 and all(
            r[1] == ItemStatus.pending and r[2] == 0 and r[3] is None for r in untouched
        )


class Slow(Robot[NoSettings]):
    """Collects 50 items one by one; SIGTERM arrives while the fifth is being read."""

    name = "batch"
    display_name = "Slow collect"
    engine: ClassVar[Engine | None] = None
    closed: ClassVar[list[bool]] = []
    processed: ClassVar[list[str]] = []

    async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]:
        try:
            for i in range(50):
                engine = type(self).engine
                if i == 4 and engine is not None:
                    engine.request_stop()
                yield NewItem(reference=f"r{i:02d}", payload={})
        finally:
            type(self).closed.append(True)  # the source's cursor, a browser page … is let go at once

    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        type(self).processed.append(item.reference)
        return Done({})


def slow() -> type[Slow]:
    """A fresh Slow subclass (class state is per test)."""
    return cast("type[Slow]", type("SlowCollect", (Slow,), {"closed": [], "processed": []}))


class TestStopDuringCollect:
    """Operations stop a run while it is still reading its source: it stops there, nothing lost."""

    def test_a_stop_ends_the_collect_and_the_next_run_finds_the_rest(self, tmp_path: Path) -> None:
        cls = slow()
        engine, stores = engine_for(tmp_path, MemoryStores(FakeClock()), cls)  # type: ignore[arg-type]
        cls.engine = engine
        summary = asyncio.run(engine.run("batch", "1081"))
        assert summary.status == RunStatus.interrupted
        assert summary.counts["collected"] == 5 and summary.counts["done"] == 0
        assert cls.closed == [True] and cls.processed == []
        # What was found before the stop is queued, not lost.
        assert [r[:2] for r in rows(stores)] == [(f"r{i:02d}", ItemStatus.pending) for i in range(5)]

        engine.stop_requested, cls.engine = False, None  # the next night: no stop
        summary = asyncio.run(engine.run("batch", "1081"))
        assert summary.status == RunStatus.succeeded and summary.counts["done"] == 50
        assert sorted(cls.processed) == [f"r{i:02d}" for i in range(50)]  # each item once
        assert all(status == ItemStatus.done and attempts == 1 for _, status, attempts, _ in rows(stores))

    def test_a_stop_ends_a_dry_run_too(self, tmp_path: Path) -> None:
        cls = slow()
        engine, stores = engine_for(tmp_path, MemoryStores(FakeClock()), cls)  # type: ignore[arg-type]
        cls.engine = engine
        summary = asyncio.run(engine.run("batch", "1081", dry_run=True))
        assert summary.status == RunStatus.interrupted and cls.closed == [True]
        assert summary.counts["collected"] == 4 and cls.processed == [f"r{i:02d}" for i in range(4)]
        assert rows(stores) == []  # a dry run queues nothing


class TestAdaptivePrefetch:
    """While items finish fast a run's claims grow up to ``prefetch_max``, its guarantees unchanged."""

    def test_fast_items_grow_the_claims_and_each_item_is_done_once(self, tmp_path: Path) -> None:
        cls = robot(count=300)
        engine, stores = engine_for(
            tmp_path, MemoryStores(FakeClock()), cls, concurrency=4, prefetch=10, prefetch_max=100
        )
        claims = counting_claims(stores)
        summary = asyncio.run(engine.run("batch", "1081"))
        assert summary.status == RunStatus.succeeded and summary.counts["done"] == 300
        assert sorted(ref for _, ref in cls.order) == sorted(f"r{i:02d}" for i in range(300))  # each once
        assert all(status == ItemStatus.done and attempts == 1 for _, status, attempts, _ in rows(stores))
        assert claims[0] == 10 and 10 < max(claims) <= 100, claims  # grown, never beyond prefetch_max
        assert len(claims) < 300 / 10, claims

    def test_a_stop_releases_a_grown_buffer_whole(self, tmp_path: Path) -> None:
        engine: Engine | None = None
        seen = [0]

        async def stop_at_the_thirtieth(ctx: RunContext, item: WorkItemView) -> None:
            seen[0] += 1
            if seen[0] == 30:
                assert engine is not None
                engine.request_stop()

        cls = robot(count=200, hook=stop_at_the_thirtieth)
        engine, stores = engine_for(
            tmp_path, MemoryStores(FakeClock()), cls, concurrency=4, prefetch=10, prefetch_max=100
        )
        claims = counting_claims(stores)
        summary = asyncio.run(engine.run("batch", "1081"))
        assert summary.status == RunStatus.interrupted
        assert max(claims) > 30, claims  # the buffer had grown past what the run started
        found = rows(stores)
        done = [r for r in found if r[1] == ItemStatus.done]
        assert len(done) == summary.counts["done"] == len(cls.order) and all(r[2] == 1 for r in done)
        # Everything else is pending, unleased, its claim's attempt given back: due at once elsewhere.
        rest = [r for r in found if r[1] != ItemStatus.done]
        assert len(rest) == 200 - len(done) and all(
            r[1] == ItemStatus.pending and r[2] == 0 and r[3] is None for r in rest
        )

    def test_outcomes_waiting_for_their_commit_stay_within_a_claims_worth(self, tmp_path: Path) -> None:
        cls = robot(count=400)
        engine, stores = engine_for(
            tmp_path, MemoryStores(FakeClock()), cls, concurrency=4, prefetch=10, prefetch_max=40
        )
        batches: list[int] = []
        complete_many = stores.queue.complete_many

        def slow_commit(finished: Any, *, actor: str) -> list[bool]:
            time.sleep(0.02)  # a commit's round trip: outcomes gather meanwhile
            batches.append(len(finished))
            return complete_many(finished, actor=actor)

        stores.queue.complete_many = slow_commit  # type: ignore[method-assign]
        summary = asyncio.run(engine.run("batch", "1081"))
        assert summary.counts["done"] == 400 and sum(batches) == 400
        # Each of the 4 tasks may have a claim's worth / 4 = 10 outcomes waiting, and one more
        # it is waiting for: never more than 44 in one commit; more than the fixed 4 per task gave.
        assert 4 * 5 < max(batches) <= 4 * 11, batches


class TestItemHeartbeat:
    """The lease heartbeat of an item being processed starts when its first renewal is due."""

    def test_a_long_item_may_still_write_near_the_end_of_its_first_lease(self, tmp_path: Path) -> None:
        """On the real clock: without renewals the fence would refuse a write 2.8 s into a 3 s lease."""
        stores = MemoryStores()
        wrote: list[str] = []

        async def write_late(ctx: RunContext, item: WorkItemView) -> None:
            await asyncio.sleep(2.8)  # renewals are due every lease / 3 = 1 s
            ctx.check_write("register", f"update {item.reference}")  # LeaseLost if not renewed
            wrote.append(item.reference)

        cls = robot(count=1, hook=write_late)
        engine, _ = engine_for(tmp_path, stores, cls, concurrency=1, lease_seconds=3.0, item_timeout_seconds=2.9)
        summary = asyncio.run(engine.run("batch", "1081"))
        assert wrote == ["r00"] and summary.counts["done"] == 1
        [(_, status, attempts, owner)] = rows(stores)
        assert (status, attempts, owner) == (ItemStatus.done, 1, None)

    def test_a_fast_item_renews_nothing(self, tmp_path: Path) -> None:
        stores = MemoryStores()
        extended: list[int] = []
        extend = stores.queue.extend

        def counted(item: WorkItemView, lease_seconds: float) -> None:
            extended.append(item.id)
            extend(item, lease_seconds)

        stores.queue.extend = counted  # type: ignore[method-assign]
        engine, _ = engine_for(tmp_path, stores, robot(count=20), concurrency=2)
        assert asyncio.run(engine.run("batch", "1081")).counts["done"] == 20
        assert extended == []  # no renewal was due: the items finished within a third of their lease
