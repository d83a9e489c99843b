"""Group claim of work items: tasks of one run that want an item at the same moment share one claim.

The mirror of :mod:`core.group_commit`. Each of a run's item tasks (``worker.concurrency``)
holds its fair slot (core/fairness.py) and its share of the item budget, then asks one
:class:`GroupClaim` for an item. The tasks that ask while a claim statement is in flight
are served by the next one: one statement leases an item for each of them. Nothing waits
for company: a lone task's claim is sent at once.

With ``prefetch`` (only where it is safe: a run without an item limit, of a robot whose
side effects are repeatable) a claim leases at least ``prefetch`` items even when fewer
tasks wait; the rest wait in the run's buffer for the next task that asks. While items
finish fast the claims grow, up to ``prefetch_max``: a claim leases what the run starts
in about :data:`PREFETCH_HORIZON` seconds at its pace since the previous claim, so a run
of no-op-fast items sends one claim per hundred items, and a run of slow items (a browser
robot's seconds per item) stays at ``prefetch``. How many requests the external systems get
at once is the tasks' number (``worker.concurrency``), which this never changes.

A buffered item

- keeps its lease: a heartbeat extends it, and an item whose lease was lost leaves the
  buffer (another worker owns it);
- is started by exactly one task (the buffer is popped on the event loop);
- is released back to ``pending`` by :meth:`close` when the run stops (``request_stop``,
  the end of the items, a failure), its attempt given back, so it is due at once for
  another worker instead of staying leased until its lease runs out.

If the process dies with items in the buffer, their leases expire and they are claimed
again (reclaim is allowed for these robots): a buffered item was never started.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from core.errors import LeaseLost
from core.records import WorkItemView

log = structlog.get_logger("kollega.engine")

#: Lease ``limit`` items in one statement (the run's robot, tenant, owner and lease are bound).
Claimer = Callable[[int], list[WorkItemView]]
#: Extend one item's lease (LeaseLost when it is not ours any more).
Extender = Callable[[WorkItemView], None]
#: Give leased, never-started items back; returns how many were released.
Releaser = Callable[[Sequence[WorkItemView]], int]

#: A claim leases ahead no more than the run starts in this many seconds at its recent pace
#: (and never more than ``prefetch_max``): the longest an item waits leased in the buffer.
PREFETCH_HORIZON = 0.5


@dataclass
class Claimed:
    """An item handed to a task, with the moment its lease was last sent (for the task's LeaseGuard)."""

    item: WorkItemView
    sent_at: float


class GroupClaim:
    """Coalesces the concurrent claims of one run into one statement per round trip."""

    def __init__(
        self,
        claim: Claimer,
        extend: Extender,
        release: Releaser,
        *,
        prefetch: int = 0,
        prefetch_max: int | None = None,
        lease_seconds: float = 300,
        max_batch: int = 100,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._claim = claim
        self._extend = extend
        self._release = release
        self._prefetch = prefetch
        self._prefetch_max = max(prefetch, prefetch if prefetch_max is None else prefetch_max)
        self._lease = lease_seconds
        self._max_batch = max(max_batch, self._prefetch_max)
        self._now = now
        #: Items the next claim leases when fewer tasks ask (``prefetch`` … ``prefetch_max``, by the pace).
        self.window = prefetch
        self._handed = 0  # items handed to tasks since the last claim was sent
        self._last_claim: float | None = None
        self._waiting: list[asyncio.Future[Claimed | None]] = []
        self._buffer: collections.deque[Claimed] = collections.deque()
        self._claimer: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.statements = 0  # claim statements sent (for benchmarks and tests)

    @property
    def buffered(self) -> list[WorkItemView]:
        """The leased items waiting in the buffer, not yet started."""
        return [c.item for c in self._buffer]

    async def take(self) -> Claimed | None:
        """The next item for the calling task, leased to this worker; None when none is due."""
        if self._buffer:
            self._handed += 1
            return self._buffer.popleft()
        future: asyncio.Future[Claimed | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if self._claimer is None or self._claimer.done():
            self._claimer = asyncio.create_task(self._drain())
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future in self._waiting:
                self._waiting.remove(future)
            elif future.done() and not future.cancelled() and future.exception() is None:
                got = future.result()
                if got is not None:  # handed over just as the task was cancelled: not started, back in
                    self._buffer.appendleft(got)
                    self._keep()
            raise

    async def _drain(self) -> None:
        while self._waiting:
            asking = self._waiting[: self._max_batch]
            self._adapt()
            want = max(len(asking), min(self.window, self._max_batch))
            sent_at = time.monotonic()  # a lease is counted from before the claim
            try:
                items = await asyncio.to_thread(self._claim, want)
                self.statements += 1
            except BaseException as exc:  # each waiter's task decides what a failed claim means
                for future in asyncio_pending(asking):
                    future.set_exception(exc)
                self._waiting = [f for f in self._waiting if f not in asking]
                if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                    for future in asyncio_pending(self._waiting):
                        future.set_exception(exc)
                    self._waiting = []
                    raise
                continue
            got = collections.deque(Claimed(item, sent_at) for item in items)
            # Those who asked for this statement first, then any who came while it was in flight
            # (a task cancelled meanwhile has left the list: its item goes on to the next one).
            still = [f for f in asking if f in self._waiting]
            for future in [*still, *(f for f in self._waiting if f not in asking)]:
                if not got:
                    break
                self._waiting.remove(future)
                future.set_result(got.popleft())
                self._handed += 1
            # Those it was sent for and that got nothing: nothing more is due for them now.
            for future in asking:
                if future in self._waiting:
                    self._waiting.remove(future)
                    if not future.done():
                        future.set_result(None)
            if got:
                self._buffer.extend(got)
                self._keep()

    def _adapt(self) -> None:
        """Size the next claim: what the run starts in PREFETCH_HORIZON at its pace since the last claim."""
        now = self._now()
        if self._last_claim is not None and self._prefetch_max > self._prefetch:
            elapsed = now - self._last_claim
            ahead = round(self._handed * PREFETCH_HORIZON / elapsed) if elapsed > 0 else self._prefetch_max
            self.window = min(self._prefetch_max, max(self._prefetch, ahead))
        self._last_claim, self._handed = now, 0

    def _keep(self) -> None:
        """Make sure the buffer's leases are being kept."""
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep_leases())

    async def _keep_leases(self) -> None:
        """Extend the leases of buffered items while they wait (drop those whose lease was lost)."""
        while self._buffer:
            await asyncio.sleep(max(self._lease / 3, 0.05))
            for entry in list(self._buffer):
                sent_at = time.monotonic()
                try:
                    await asyncio.to_thread(self._extend, entry.item)
                    entry.sent_at = sent_at
                except LeaseLost:
                    log.warning("a prefetched item's lease was lost; another worker has it", item_id=entry.item.id)
                    if entry in self._buffer:
                        self._buffer.remove(entry)
                except Exception:
                    log.warning("extending a prefetched item's lease failed", exc_info=True)

    async def close(self) -> int:
        """Stop keeping leases and release every buffered item back to pending; returns how many were released.

        The engine calls it when the run's item tasks have stopped (a stop request, the end
        of the items, a failure), so that no item stays leased to a worker that will not start it.
        """
        if self._claimer is not None and not self._claimer.done():
            await asyncio.gather(asyncio.shield(self._claimer), return_exceptions=True)
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
            self._keeper = None
        if not self._buffer:
            return 0
        left = [c.item for c in self._buffer]
        self._buffer.clear()
        released = await asyncio.to_thread(self._release, left)
        log.info("prefetched items released", released=released, buffered=len(left))
        return released


def asyncio_pending(futures: list[asyncio.Future[Claimed | None]]) -> list[asyncio.Future[Claimed | None]]:
    """The futures not yet answered."""
    return [f for f in futures if not f.done()]
