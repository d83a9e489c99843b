"""Item slots shared fairly by municipality among the runs one worker is running.

A worker may hold runs of several municipalities at once (a run whose worker died is
taken over by a busy worker). Their items then share the worker's ``concurrency``: each
free slot goes to the waiting municipality that holds the fewest, so one municipality's
long night does not hold another's back.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairSlots:
    """At most ``size`` items at once; a freed slot goes to the municipality holding the fewest."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.held: Counter[str] = Counter()
        self._waiting: list[tuple[str, asyncio.Future[None]]] = []

    def _in_use(self) -> int:
        return sum(self.held.values())

    def _grant(self) -> None:
        while self._waiting and self._in_use() < self.size:
            # The municipality holding the fewest slots first; among equals, the longest waiting.
            i = min(range(len(self._waiting)), key=lambda k: (self.held[self._waiting[k][0]], k))
            tenant, fut = self._waiting.pop(i)
            if fut.done():  # its waiter was cancelled
                continue
            self.held[tenant] += 1
            fut.set_result(None)

    @asynccontextmanager
    async def slot(self, tenant: str) -> AsyncIterator[None]:
        """Hold one slot for an item of ``tenant`` while the block runs."""
        if not self._waiting and self._in_use() < self.size:
            self.held[tenant] += 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append((tenant, fut))
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():  # granted just as it was cancelled: give it back
                    self._release(tenant)
                raise
        try:
            yield
        finally:
            self._release(tenant)

    def _release(self, tenant: str) -> None:
        self.held[tenant] -= 1
        if self.held[tenant] <= 0:
            del self.held[tenant]
        self._grant()
