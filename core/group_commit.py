"""Group commit of work-item completions: outcomes finished together are written together.

The engine runs several items at once (``worker.concurrency``). Each task that finishes an
item with :class:`~core.robot.Done` hands its outcome to one :class:`GroupCommit`
(``submit``: a future answered once the outcome is committed); the outcomes that arrive
while one write is in flight are written by the next, in one statement and one commit
(``WorkItemStore.complete_many``). Nothing waits for company: at low load every completion
is written at once, alone; under load the batches grow by themselves. This is
PostgreSQL's own group commit, one level up.

What it keeps:

- **Durable before confirmed.** ``complete`` returns, and ``submit``'s future is answered,
  only after the commit that holds the outcome: nothing is counted or confirmed on an
  outcome a crash could still lose (the engine lets a repeatable robot's task start its
  next items meanwhile, never a task whose writes must not be repeated). A crash before
  the commit leaves the item to its lease, as it would without batching.
- **Exactly once.** Each item is completed under its own lease token, in the statement;
  an item whose lease was lost is reported back (``False``) and its outcome discarded.
- **Errors reach every waiter.** A failed write fails each outcome it carried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from core.records import WorkItemView
from core.robot import Done

Writer = Callable[[Sequence[tuple[WorkItemView, Done]]], list[bool]]


class GroupCommit:
    """Coalesces concurrent Done completions into one write per round trip."""

    def __init__(self, write: Writer, *, max_batch: int = 100) -> None:
        self._write = write
        self._max_batch = max_batch
        self._waiting: list[tuple[WorkItemView, Done, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0  # statements written (for benchmarks and tests)

    def submit(self, item: WorkItemView, outcome: Done) -> asyncio.Future[bool]:
        """Queue the outcome for the next write; the future is True once it is committed, False when the lease was lost.

        Cancelling the future before its write begins withdraws the outcome (the item stays
        leased, as if its task had stopped just before completing); once in a write in
        flight it is committed or not with that write, and :meth:`settle` waits for it.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, outcome, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return future

    async def complete(self, item: WorkItemView, outcome: Done) -> bool:
        """Record the outcome and wait for it: True once it is committed, False when the item's lease was lost."""
        return await self.submit(item, outcome)

    async def settle(self) -> None:
        """Wait until no write is in flight or waiting (the engine calls it before recording a run)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.gather(asyncio.shield(self._writer), return_exceptions=True)

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            batch = [entry for entry in batch if not entry[2].done()]  # withdrawn (cancelled) outcomes
            if not batch:
                continue
            try:
                recorded = await asyncio.to_thread(self._write, [(item, outcome) for item, outcome, _ in batch])
                self.writes += 1
            except BaseException as exc:  # the waiters decide what a failed write means
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                    self._fail_rest(exc)
                    raise
                continue
            for (_, _, future), ok in zip(batch, recorded, strict=True):
                if not future.done():
                    future.set_result(ok)

    def _fail_rest(self, exc: BaseException) -> None:
        for _, _, future in self._waiting:
            if not future.done():
                future.set_exception(exc)
        self._waiting = []
