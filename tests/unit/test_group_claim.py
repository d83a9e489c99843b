"""Group claim: tasks that ask together share one claim statement, each item handed to one task."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from core.errors import LeaseLost
from core.group_claim import GroupClaim
from core.records import WorkItemView


def item(i: int) -> WorkItemView:
    return WorkItemView(
        id=i, robot="r", tenant="0000", reference=f"ref-{i}", payload={}, subject=None, attempts=1, lease_token="t"
    )


class SlowQueue:
    """A queue whose claim takes a round trip, recording each statement's limit."""

    def __init__(self, items: int, fail: bool = False) -> None:
        self.left = [item(i) for i in range(1, items + 1)]
        self.limits: list[int] = []
        self.extended: list[int] = []
        self.released: list[int] = []
        self.lost: set[int] = set()
        self.fail = fail
        self.lock = threading.Lock()

    def claim(self, limit: int) -> list[WorkItemView]:
        time.sleep(0.05)
        if self.fail:
            raise ConnectionError("database went away")
        with self.lock:
            self.limits.append(limit)
            got, self.left = self.left[:limit], self.left[limit:]
        return got

    def extend(self, it: WorkItemView) -> None:
        if it.id in self.lost:
            raise LeaseLost(f"work item {it.id}: lease lost")
        self.extended.append(it.id)

    def release(self, items: Sequence[WorkItemView]) -> int:
        self.released.extend(i.id for i in items)
        return len(items)


def group(q: SlowQueue, prefetch: int = 0, lease: float = 300) -> GroupClaim:
    return GroupClaim(q.claim, q.extend, q.release, prefetch=prefetch, lease_seconds=lease)


class TestGroupClaim:
    """What the engine's item tasks rely on."""

    async def test_tasks_asking_together_share_statements_and_get_distinct_items(self) -> None:
        q = SlowQueue(30)
        claims = group(q)
        got = await asyncio.gather(*(claims.take() for _ in range(20)))
        ids = [g.item.id for g in got if g is not None]
        assert sorted(ids) == list(range(1, 21))  # every task an item, no item twice
        assert len(q.limits) < 20 and sum(q.limits) == 20  # fewer statements than tasks, nothing leased ahead

    async def test_a_lone_task_is_served_at_once_and_none_means_nothing_is_due(self) -> None:
        q = SlowQueue(1)
        claims = group(q)
        first = await claims.take()
        assert first is not None and first.item.id == 1 and q.limits == [1]
        assert await claims.take() is None

    async def test_prefetch_leases_ahead_and_serves_the_next_task_without_a_statement(self) -> None:
        q = SlowQueue(10)
        claims = group(q, prefetch=4)
        assert (await claims.take()) is not None
        assert q.limits == [4] and [i.id for i in claims.buffered] == [2, 3, 4]
        assert [(await claims.take()).item.id for _ in range(3)] == [2, 3, 4]  # type: ignore[union-attr]
        assert q.limits == [4]
        assert await claims.close() == 0 and q.released == []

    async def test_buffered_leases_are_kept_and_a_lost_one_leaves_the_buffer(self) -> None:
        q = SlowQueue(3)
        claims = group(q, prefetch=3, lease=0.3)
        await claims.take()
        q.lost.add(3)
        for _ in range(500):  # heartbeats every lease / 3; a loaded machine may delay them
            if 2 in q.extended and len(claims.buffered) == 1:
                break
            await asyncio.sleep(0.01)
        assert 2 in q.extended and [i.id for i in claims.buffered] == [2]
        assert await claims.close() == 1 and q.released == [2]

    async def test_close_releases_what_no_task_started(self) -> None:
        q = SlowQueue(10)
        claims = group(q, prefetch=5)
        await claims.take()
        assert await claims.close() == 4 and q.released == [2, 3, 4, 5]
        assert claims.buffered == []

    async def test_a_failed_claim_fails_every_task_that_asked(self) -> None:
        q = SlowQueue(5, fail=True)
        claims = group(q)
        results = await asyncio.gather(*(claims.take() for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)
        q.fail = False  # the next task gets a fresh statement
        got = await claims.take()
        assert got is not None

    async def test_an_item_handed_to_a_cancelled_task_goes_to_the_next(self) -> None:
        q = SlowQueue(5)
        claims = group(q)
        waiter = asyncio.create_task(claims.take())
        await asyncio.sleep(0.01)  # its claim is in flight
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.sleep(0.1)  # the statement returns with an item nobody waits for
        got = await claims.take()
        assert got is not None and got.item.id == 1 and q.limits == [1]


class Ticks:
    """A monotonic clock the test moves: the pace the claim sizes itself by."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def drain(claims: GroupClaim, ticks: Ticks, seconds_per_item: float) -> None:
    """One task taking items until none is due, each 'taking' ``seconds_per_item``."""
    while await claims.take() is not None:
        ticks.t += seconds_per_item


class TestAdaptivePrefetch:
    """Claims grow while items finish fast, within prefetch … prefetch_max; slow items stay at prefetch."""

    async def test_fast_items_grow_the_claims_up_to_prefetch_max_and_never_beyond(self) -> None:
        q, ticks = SlowQueue(400), Ticks()
        claims = GroupClaim(q.claim, q.extend, q.release, prefetch=10, prefetch_max=50, lease_seconds=300, now=ticks)
        await drain(claims, ticks, 0.001)  # a thousand items a second: half a second is 500 > 50
        assert q.limits[0] == 10  # the first claim knows no pace yet
        assert max(q.limits) == 50 and q.limits[1:] == [50] * (len(q.limits) - 1)
        assert len(q.limits) < 400 / 10  # fewer statements than at a fixed prefetch of 10
        assert claims.window == 50

    async def test_slow_items_stay_at_prefetch(self) -> None:
        q, ticks = SlowQueue(60), Ticks()
        claims = GroupClaim(q.claim, q.extend, q.release, prefetch=10, prefetch_max=100, lease_seconds=300, now=ticks)
        await drain(claims, ticks, 1.0)  # one item a second: half a second's worth is one item
        assert q.limits == [10] * 7 and claims.window == 10  # the seventh found none

    async def test_the_claims_shrink_again_when_the_items_slow_down(self) -> None:
        q, ticks = SlowQueue(1000), Ticks()
        claims = GroupClaim(q.claim, q.extend, q.release, prefetch=5, prefetch_max=100, lease_seconds=300, now=ticks)
        for _ in range(30):  # fast: 200 items a second, so a claim grows to 100
            assert await claims.take() is not None
            ticks.t += 0.005
        assert claims.window == 100
        while len(q.limits) < 8:  # then each item takes 20 ms: 25 items in half a second
            assert await claims.take() is not None
            ticks.t += 0.02
        assert q.limits[-1] == 25 and claims.window == 25

    async def test_without_prefetch_nothing_is_leased_ahead_however_fast(self) -> None:
        q, ticks = SlowQueue(30), Ticks()
        claims = GroupClaim(q.claim, q.extend, q.release, prefetch=0, prefetch_max=0, lease_seconds=300, now=ticks)
        await drain(claims, ticks, 0.0001)
        assert q.limits == [1] * 31 and claims.buffered == []  # one per task that asked, the last found none

    async def test_a_grown_buffer_is_released_whole_on_close(self) -> None:
        q, ticks = SlowQueue(500), Ticks()
        claims = GroupClaim(q.claim, q.extend, q.release, prefetch=10, prefetch_max=80, lease_seconds=300, now=ticks)
        for _ in range(12):  # the second claim, sized by a fast pace, leases 80
            assert await claims.take() is not None
            ticks.t += 0.001
        assert q.limits == [10, 80] and len(claims.buffered) == 78
        assert await claims.close() == 78 and sorted(q.released) == list(range(13, 91))
        assert claims.buffered == []
