"""Group commit: completions that arrive together are written together, each answered on its own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

from core.group_commit import GroupCommit
from core.records import WorkItemView
from core.robot import Done


def item(i: int) -> WorkItemView:
    return WorkItemView(
        id=i, robot="r", tenant="0000", reference=f"ref-{i}", payload={}, subject=None, attempts=1, lease_token="t"
    )


class SlowStore:
    """A store whose write takes a while (a round trip), recording each batch it got."""

    def __init__(self, lost: set[int] | None = None, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.lost = lost or set()
        self.fail = fail
        self.lock = threading.Lock()

    def complete_many(self, finished: Sequence[tuple[WorkItemView, Done]]) -> list[bool]:
        time.sleep(0.05)
        with self.lock:
            self.batches.append([i.id for i, _ in finished])
        if self.fail:
            raise ConnectionError("database went away")
        return [i.id not in self.lost for i, _ in finished]


class TestGroupCommit:
    """What the engine relies on when it hands Done outcomes to the group commit."""

    async def test_a_lone_completion_is_written_at_once(self) -> None:
        store = SlowStore()
        group = GroupCommit(store.complete_many)
        started = time.monotonic()
        assert await group.complete(item(1), Done()) is True
        assert store.batches == [[1]]
        assert time.monotonic() - started < 1.0

    async def test_completions_arriving_during_a_write_share_the_next_one(self) -> None:
        store = SlowStore()
        group = GroupCommit(store.complete_many)
        results = await asyncio.gather(*(group.complete(item(i), Done()) for i in range(1, 21)))
        assert results == [True] * 20
        assert sorted(i for b in store.batches for i in b) == list(range(1, 21))  # each exactly once
        assert len(store.batches) < 20 and group.writes == len(store.batches)

    async def test_max_batch_bounds_a_statement(self) -> None:
        store = SlowStore()
        group = GroupCommit(store.complete_many, max_batch=3)
        await asyncio.gather(*(group.complete(item(i), Done()) for i in range(1, 11)))
        assert all(len(b) <= 3 for b in store.batches)
        assert sorted(i for b in store.batches for i in b) == list(range(1, 11))

    async def test_a_lost_lease_is_answered_to_that_item_only(self) -> None:
        store = SlowStore(lost={2})
        group = GroupCommit(store.complete_many)
        assert await asyncio.gather(*(group.complete(item(i), Done()) for i in (1, 2, 3))) == [True, False, True]

    async def test_a_failed_write_fails_every_outcome_it_carried(self) -> None:
        store = SlowStore(fail=True)
        group = GroupCommit(store.complete_many)
        results = await asyncio.gather(*(group.complete(item(i), Done()) for i in (1, 2, 3)), return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)
        store.fail = False  # the next completion gets a fresh write
        assert await group.complete(item(4), Done()) is True

    async def test_a_submitted_outcome_cancelled_before_its_write_is_withdrawn(self) -> None:
        store = SlowStore()
        group = GroupCommit(store.complete_many)
        first = group.submit(item(1), Done())  # its write begins at once
        await asyncio.sleep(0)
        second, third = group.submit(item(2), Done()), group.submit(item(3), Done())
        second.cancel()  # the engine withdraws it (its task failed) before the next write
        assert await first is True and await third is True
        assert store.batches == [[1], [3]]  # item 2 was never written: it stays leased
        await group.settle()
