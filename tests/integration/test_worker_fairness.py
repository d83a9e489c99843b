"""A busy worker takes over a dead worker's run at once, and shares its item slots fairly by municipality."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from core.api import Done, NewItem, NoSettings, Outcome, Robot, RunContext, WorkItemView
from core.fairness import FairSlots
from core.records import RunStatus
from core.registry import Registry
from core.settings import TenantSettings, WorkerSettings
from core.testing import FakeClock, make_settings
from core.testing.memory import MemoryStores
from core.worker import Worker

#: (tenant, reference) in the order items were processed.
ORDER: list[tuple[str, str]] = []


class Night(Robot[NoSettings]):
    """A long night: 12 items per municipality, each taking a moment."""

    name = "night"
    display_name = "Night"

    async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]:
        for i in range(12):
            yield NewItem(reference=f"r{i:02d}", payload={})

    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        ORDER.append((ctx.tenant, item.reference))
        await asyncio.sleep(0.01)
        return Done({})


def test_a_dead_workers_run_is_taken_over_first_and_shares_the_slots_fairly(tmp_path: Path) -> None:
    ORDER.clear()
    clock = FakeClock()
    settings = make_settings(
        tmp_path,
        tenants=[TenantSettings(code="1081", name="Ronneby"), TenantSettings(code="1082", name="Karlshamn")],
        worker=WorkerSettings(
            concurrency=2, runs_at_once=2, lease_seconds=30, item_timeout_seconds=10, poll_seconds=0.05
        ),
    )
    stores = MemoryStores(clock)
    engine = stores.engine(settings, Registry(robots={"night": Night}), owner="alive")
    died = stores.runs.create(robot="night", tenant="1082", trigger="schedule")
    queued = stores.runs.create(robot="night", tenant="1081", trigger="schedule")
    later = stores.runs.create(robot="night", tenant="1081", trigger="manual")
    assert queued is not None and died is not None and later is not None
    # Another worker took 1082's run and dies; this one takes 1081's.
    taken = stores.runs.claim_queued("dead", 30)
    assert taken is not None and taken.id == died
    worker = Worker(engine)
    active: dict[asyncio.Task[object], str] = {}

    async def night() -> None:
        engine.slots = FairSlots(settings.worker.concurrency)
        assert await worker.take_runs(active) == 1  # type: ignore[arg-type]
        assert await worker.take_runs(active) == 0  # type: ignore[arg-type]  # busy: nothing new is taken
        clock.advance(31)  # the dead worker's lease runs out
        assert await worker.take_runs(active) == 1  # type: ignore[arg-type]  # busy, but takes the dead one over
        await asyncio.gather(*active)

    asyncio.run(night())
    assert list(active.values()) == ["1081", "1082"]
    assert all(stores.runs.get(r).status == RunStatus.succeeded for r in (queued, died))  # type: ignore[union-attr]
    assert stores.runs.get(later).status == RunStatus.queued  # type: ignore[union-attr]  # left to a free worker
    # Fair: with two slots and two municipalities, neither waits for the other's night.
    first_half = [tenant for tenant, _ in ORDER[:12]]
    assert first_half.count("1081") >= 4 and first_half.count("1082") >= 4, ORDER


class TestFairSlots:
    """A freed slot goes to the municipality holding the fewest."""

    def test_the_municipality_holding_fewer_gets_the_next_slot(self) -> None:
        async def scenario() -> list[str]:
            slots = FairSlots(2)
            granted: list[str] = []
            release = asyncio.Event()

            async def item(tenant: str) -> None:
                async with slots.slot(tenant):
                    granted.append(tenant)
                    await release.wait()

            tasks = [asyncio.create_task(item("1081")) for _ in range(4)]
            await asyncio.sleep(0.01)  # 1081 holds both slots, two more of its items wait
            tasks.append(asyncio.create_task(item("1082")))
            await asyncio.sleep(0.01)
            release.set()
            await asyncio.gather(*tasks)
            return granted

        granted = asyncio.run(scenario())
        # 1082 came last but gets the first freed slot: 1081 already holds two.
        assert granted[:3] == ["1081", "1081", "1082"]

    def test_a_cancelled_waiter_gives_its_slot_back(self) -> None:
        async def scenario() -> int:
            slots = FairSlots(1)
            hold = asyncio.Event()

            async def item(tenant: str) -> None:
                async with slots.slot(tenant):
                    await hold.wait()

            first = asyncio.create_task(item("1081"))
            await asyncio.sleep(0.01)
            waiter = asyncio.create_task(item("1082"))
            await asyncio.sleep(0.01)
            waiter.cancel()
            hold.set()
            await first
            async with slots.slot("1082"):
                return sum(slots.held.values())

        assert asyncio.run(scenario()) == 1
