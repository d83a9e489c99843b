"""Figures a page shows that are costly to compute and may be a few minutes old, kept per key.

The dashboard's time saved reads a month of work items and reviews per robot and
municipality through the effects ledger (seconds on a big municipality's year); the overdue
sweep and the alert checks behind it need not run on every view either. Each value is kept
for ``seconds`` on the app's clock, with the time it was computed so the page can say how
old it is. Only one request computes a missing value; the others wait for it. The number
of keys is bounded (the least recently computed goes first).

Each ``kollega serve`` worker process keeps its own: at most one computation per key, worker
and period. Nothing personal is kept (the figures are counts and minutes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Kept:
    """A value and when it was computed."""

    value: Any
    computed_at: datetime


class FiguresCache:
    """Values by key, recomputed when older than ``seconds`` (0: every time)."""

    def __init__(self, seconds: float, clock: Callable[[], datetime], maxsize: int = 64) -> None:
        self.max_age = timedelta(seconds=seconds)
        self.clock = clock
        self.maxsize = maxsize
        self._kept: OrderedDict[Hashable, Kept] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    def _fresh(self, key: Hashable, now: datetime) -> Kept | None:
        kept = self._kept.get(key)
        if kept is not None and self.max_age > timedelta(0) and now - kept.computed_at < self.max_age:
            return kept
        return None

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Kept:
        """The kept value of ``key`` while fresh; otherwise ``compute()``'s, kept from now."""
        with self._lock:
            kept = self._fresh(key, self.clock())
            if kept is not None:
                return kept
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                kept = self._fresh(key, self.clock())  # computed by another request meanwhile
            if kept is not None:
                return kept
            computed_at = self.clock()
            kept = Kept(compute(), computed_at)
            with self._lock:
                self._kept[key] = kept
                self._kept.move_to_end(key)
                while len(self._kept) > self.maxsize:
                    self._kept.popitem(last=False)
                self._computing.pop(key, None)
            return kept

    def clear(self) -> None:
        """Forget every value (the next view computes afresh)."""
        with self._lock:
            self._kept.clear()
