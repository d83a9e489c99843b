"""Figures a page shows that are costly to compute and may be a few minutes old, kept per key.

The dashboard's time saved reads a month of work items and reviews per robot and
municipality through the effects ledger (seconds on a big municipality's year); the overdue
sweep and the alert checks behind it need not run on every view either. Each value is kept
for ``seconds`` on the app's clock, with the time it was computed so the page can say how
old it is. Only one request computes a missing value; the others wait for it. The number
of keys is bounded (the least recently computed goes first).

Off the request path: a view that finds its value older than the period, but not older
than twice the period, is answered with the kept value at once, and the value is computed
again by the cache's one background thread (each key queued at most once); the next views
get the new one. Only a value that is missing, or older than twice the period (nobody looked
for a while), is computed while the request waits. So under steady use no view waits for the recomputation
(it took 6–10 s for the unlucky view under the morning's load), and no page shows figures
older than twice the period; the page says when they were computed.

Each ``kollega serve`` worker process keeps its own: at most one computation per key, worker
and period. The dashboard's figures hold nothing personal (counts and minutes); the inbox
keeps its lapsed items in one too, a few seconds per set of grants (``[web] inbox_cache_seconds``).

:class:`MyDecisionsCache` keeps each person's "Mina beslut" as long, checked against their
newest decisions on every view.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from core.logging import get_logger

log = get_logger("kollega.web.pagecache")


@dataclass(frozen=True)
class Kept:
    """A value and when it was computed."""

    value: Any
    computed_at: datetime


class FiguresCache:
    """Values by key, recomputed when older than ``seconds`` (0: every time).

    ``background``: a value past its period (but within twice it) is served while a thread
    computes it again; False computes it on the request, as a value past twice its period is.
    """

    def __init__(
        self, seconds: float, clock: Callable[[], datetime], maxsize: int = 64, *, background: bool = True
    ) -> None:
        self.max_age = timedelta(seconds=seconds)
        self.clock = clock
        self.maxsize = maxsize
        self.background = background
        self._kept: OrderedDict[Hashable, Kept] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}
        self._refreshing: dict[Hashable, Future[None]] = {}
        # One long-lived thread computes in the background (figure after figure): not a new
        # thread per computation, whose memory arena glibc would keep for each.
        self._executor: ThreadPoolExecutor | None = None

    def _fresh(self, key: Hashable, now: datetime) -> Kept | None:
        kept = self._kept.get(key)
        if kept is not None and self.max_age > timedelta(0) and now - kept.computed_at < self.max_age:
            return kept
        return None

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Kept:
        """The kept value of ``key`` while fresh; a stale one (refreshed behind it); otherwise ``compute()``'s."""
        with self._lock:
            now = self.clock()
            kept = self._fresh(key, now)
            if kept is not None:
                return kept
            stale = self._kept.get(key)
            if (
                self.background
                and stale is not None
                and self.max_age > timedelta(0)
                and now - stale.computed_at < 2 * self.max_age
            ):
                if key not in self._refreshing:
                    if self._executor is None:
                        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kollega-figures")
                    self._refreshing[key] = self._executor.submit(self._refresh, key, compute)
                return stale
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                kept = self._fresh(key, self.clock())  # computed by another request meanwhile
            if kept is not None:
                return kept
            return self._compute(key, compute)

    def _compute(self, key: Hashable, compute: Callable[[], Any]) -> Kept:
        computed_at = self.clock()
        kept = Kept(compute(), computed_at)
        with self._lock:
            self._kept[key] = kept
            self._kept.move_to_end(key)
            while len(self._kept) > self.maxsize:
                self._kept.popitem(last=False)
            self._computing.pop(key, None)
        return kept

    def _refresh(self, key: Hashable, compute: Callable[[], Any]) -> None:
        try:
            gate = self._computing.setdefault(key, threading.Lock())
            with gate:
                self._compute(key, compute)
        except Exception as exc:  # the kept value stays; a view past twice the period computes (and reports) it
            log.warning("web.figures_refresh_failed", error=type(exc).__name__)
        finally:
            with self._lock:
                self._refreshing.pop(key, None)

    def warm(self, key: Hashable, compute: Callable[[], Any]) -> None:
        """Compute ``key`` on the background thread unless kept or under way (a worker's start).

        A view that asks for it meanwhile waits for this computation instead of starting its own.
        """
        if self.max_age <= timedelta(0):
            return
        with self._lock:
            if key in self._kept or key in self._refreshing:
                return
            self._computing.setdefault(key, threading.Lock())
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kollega-figures")
            self._refreshing[key] = self._executor.submit(self._warm, key, compute)

    def _warm(self, key: Hashable, compute: Callable[[], Any]) -> None:
        try:
            with self._lock:
                gate = self._computing.setdefault(key, threading.Lock())
            with gate:
                with self._lock:
                    kept = self._fresh(key, self.clock())  # a view computed it first
                if kept is None:
                    self._compute(key, compute)
        except Exception as exc:  # a view computes (and reports) it
            log.warning("web.figures_warm_failed", error=type(exc).__name__)
        finally:
            with self._lock:
                self._refreshing.pop(key, None)

    def settle(self, timeout: float | None = None) -> None:
        """Wait for the background computations under way (tests, and shutting down cleanly)."""
        with self._lock:
            running = list(self._refreshing.values())
        if running:
            wait(running, timeout)

    def clear(self) -> None:
        """Forget every value (the next view computes afresh)."""
        self.settle()
        with self._lock:
            self._kept.clear()


class Candidate(NamedTuple):
    """One of a person's decisions as "Mina beslut" orders them (failed and late first, then the newest)."""

    id: int
    callback_status: Any
    decided_at: datetime | None


#: Decisions put in front of a kept "Mina beslut" before it is read afresh (each is one more
#: time the check compares).
KNOWN_AT_MOST = 20


@dataclass(frozen=True)
class MyDecisions:
    """One person's recent decisions as read for "Mina beslut", and what they were checked against.

    ``known``: the person's newest decision (time, id) when read, with the ones decided here
    since put in front (newest first): the database's newest as many must be the same for the
    entry to be used. ``candidates``: (id, callback status, decided_at) of
    their decisions, newest first; ``rows``: the listed columns of those shown, by id.
    """

    read_at: datetime
    known: tuple[tuple[datetime, int], ...]
    candidates: tuple[Candidate, ...]
    rows: dict[int, Any]


class MyDecisionsCache:
    """ "Mina beslut" per person (and set of grants), kept ``seconds`` on the app's clock in one process.

    A view runs one small statement instead of reading the person's recent decisions: their
    newest decisions' times and ids, compared with the ones kept. A decision made in this process is put
    in the kept ones at once (:meth:`decided`); one made anywhere else (the other worker
    process, the API on another server, another session) changes the newest times, so the
    kept ones are not used and the view reads afresh. What a robot did with a decision (the
    status) can be up to ``seconds`` old; the page's script polls it anyway. Expired entries
    are dropped as new ones are put, so the cache holds about the people active in the period.
    """

    def __init__(self, seconds: float, clock: Callable[[], datetime]) -> None:
        self.max_age = timedelta(seconds=seconds)
        self.clock = clock
        self._kept: dict[Hashable, MyDecisions] = {}
        self._lock = threading.Lock()
        self._pruned: datetime | None = None

    def peek(self, key: Hashable) -> MyDecisions | None:
        """The kept entry of ``key`` while within its period (not yet checked against the database)."""
        kept = self._kept.get(key)
        if kept is not None and self.clock() - kept.read_at < self.max_age:
            return kept
        return None

    def put(self, key: Hashable, entry: MyDecisions) -> None:
        """Keep ``entry``; entries past their period are dropped once a period."""
        with self._lock:
            self._kept[key] = entry
            now = entry.read_at
            if self._pruned is None or now - self._pruned >= self.max_age:
                self._pruned = now
                for stale in [k for k, v in self._kept.items() if now - v.read_at >= self.max_age]:
                    del self._kept[stale]

    def decided(
        self, key: Hashable, decided: tuple[datetime, int], candidate: Candidate | None, row: Any | None
    ) -> None:
        """A decision (time, id) by the person of ``key`` in this process: put in front of their kept entry.

        ``candidate`` and ``row`` are None for a decision "Mina beslut" does not list (it is
        still known, so the next check finds the database's newest decisions as kept).
        """
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return
            if (kept.known and decided <= kept.known[0]) or len(kept.known) >= KNOWN_AT_MOST:
                del self._kept[key]  # not the newest, or many since the read: read afresh
                return
            candidates, rows = kept.candidates, kept.rows
            if candidate is not None and row is not None:
                candidates = (candidate, *(c for c in candidates if c.id != candidate.id))
                rows = {**rows, row.id: row}
            self._kept[key] = MyDecisions(kept.read_at, (decided, *kept.known), candidates, rows)

    def forget(self, actor: str) -> None:
        """Drop the person's entries (keys whose first part is ``actor``): e.g. after they retry a decision."""
        with self._lock:
            for key in [k for k in self._kept if isinstance(k, tuple) and k and k[0] == actor]:
                del self._kept[key]
