"""The one clock type of Kollega: every store, the engine, the scheduler and the robots take a :class:`Clock`.

:class:`SystemClock` is the real one; core.testing.FakeClock is the test double.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    """Tells the time (UTC-aware) and waits."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(seconds, 0))


def local_today(clock: Clock, zone: str | ZoneInfo) -> date:
    """Today's date in ``zone`` (the tenant's time zone) by ``clock``: the one "today" of Kollega.

    The robots ("tomorrow", "the coming month") and the demo's sandbox (whose data is laid
    out around its day) both take their date from here, from the same clock: between
    midnight and 01:00 (02:00 in summer) Stockholm time the UTC date is still yesterday, and
    two different notions of "today" made Lena plan a day the sandbox held no visits for.
    """
    return clock.now().astimezone(zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)).date()
