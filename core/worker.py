"""The long-running worker: claims queued runs, then keeps retries and decisions moving.

Several workers (on several machines, against one PostgreSQL) share the work: runs and
items are claimed with leases, so each is handled by exactly one worker at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog

from core.engine import Engine, RunSummary
from core.fairness import FairSlots
from core.interfaces import RunRecord
from core.overdue import SweepResult, SweepTimer, sweep
from core.records import RunStatus
from core.retention import purge
from core.robot import Robot

log = structlog.get_logger("kollega.worker")


class Worker:
    """Runs queued runs and drains due items and decision callbacks until stopped."""

    #: How often a worker deletes artifacts past their retention (they hold personal data).
    PURGE_EVERY_SECONDS = 3600.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._purged_at: float | None = None
        self._sweeps: SweepTimer | None = None

    async def purge_artifacts_if_due(self) -> int:
        """Delete artifacts past their retention and clear finished work past its period, at most once an hour."""
        now = time.monotonic()
        if self._purged_at is not None and now - self._purged_at < self.PURGE_EVERY_SECONDS:
            return 0
        self._purged_at = now
        try:
            purged = await asyncio.to_thread(self.engine.artifacts.purge_expired)
        except Exception:
            log.error("purging expired artifacts failed", exc_info=True)
            return 0
        if purged:
            log.info("expired artifacts deleted", count=purged)
        if self.engine.db is None:  # retention works on the SQL tables; other stores keep nothing for long
            return purged
        try:  # and personal data in finished work past each tenant's retention periods
            done = await asyncio.to_thread(
                purge, self.engine.db, self.engine.settings, self.engine.clock.now(), actor="system:worker"
            )
        except Exception:
            log.error("retention purge failed", exc_info=True)
            return purged
        cleared = sum(p.work_items + p.review_items + p.artifacts for p in done)
        if cleared:
            log.info("retention purge", **{p.tenant: p.as_dict() for p in done})
        return purged + sum(p.artifacts for p in done)

    async def sweep_overdue_if_due(self) -> SweepResult | None:
        """Lapse, mark and escalate review items past their deadline, at most every ``[review] check_every_seconds``.

        Nothing expires unseen any more: see :mod:`core.overdue`.
        """
        e = self.engine
        if self._sweeps is None:
            self._sweeps = SweepTimer(e.settings.review.check_every_seconds)
        if not self._sweeps.due(e.clock.now()):
            return None

        def robot_for(name: str) -> Robot | None:
            return e.robot_instance(name) if name in e.registry.robots else None

        try:
            result = await asyncio.to_thread(
                sweep, e.reviews, e.alerts, robot_for, e.settings.review, e.clock.now(), ZoneInfo(e.settings.timezone)
            )
        except Exception:
            log.error("sweeping overdue review items failed", exc_info=True)
            return None
        if result != SweepResult():
            log.info("overdue review items", **dataclasses.asdict(result))
        return result

    async def run_queued_once(self) -> RunSummary | None:
        """Claim and execute one queued run; None when there is none."""
        lease = self.engine.settings.worker.lease_seconds
        run = await asyncio.to_thread(self.engine.runs.claim_queued, self.engine.owner, lease)
        if run is None:
            return None
        return await self._execute(run)

    async def _execute(self, run: RunRecord) -> RunSummary:
        """Execute a claimed run (a queued one, or one whose worker died: the engine resumes it)."""
        log.info("claimed run", run_id=run.id, robot=run.robot, tenant=run.tenant, trigger=run.trigger)
        if run.deadline_at is not None and run.started_at is None and run.deadline_at <= self.engine.clock.now():
            # Its window closed while it waited (no worker was up): record it, do not start late.
            await asyncio.to_thread(
                self.engine.runs.finish, run.id, RunStatus.missed, {}, "the run's window ended before a worker took it"
            )
            return RunSummary(run.id, run.robot, run.tenant, RunStatus.missed, {}, "window ended")
        return await self.engine.run(
            run.robot, run.tenant, run_id=run.id, dry_run=run.dry_run, limit=run.item_limit, trigger=run.trigger
        )

    async def take_runs(self, active: dict[asyncio.Task[RunSummary], str]) -> int:
        """Claim runs while this worker has room; returns how many it took.

        A free worker takes the next run (a dead worker's first). A busy one takes only a
        run whose worker died, of another municipality than its own runs, up to
        ``[worker] runs_at_once``: that night goes on at once beside the one in hand, their
        items sharing this worker's slots fairly, and new runs are left to a free worker.
        """
        w = self.engine.settings.worker
        taken = 0
        while len(active) < w.runs_at_once:
            run = await asyncio.to_thread(
                self.engine.runs.claim_queued,
                self.engine.owner,
                w.lease_seconds,
                exclude_tenants=set(active.values()),
                resumable_only=bool(active),
            )
            if run is None:
                break
            active[asyncio.create_task(self._execute(run))] = run.tenant
            taken += 1
        return taken

    def _due_pairs(self) -> list[tuple[str, str]]:
        return sorted(self.engine.queue.due_robots() | self.engine.reviews.due_robots())

    async def drain_once(self) -> int:
        """Process due retries and carry out decisions for every robot and tenant; returns pairs handled."""
        pairs = await asyncio.to_thread(self._due_pairs)
        handled = 0
        for robot, tenant in pairs:
            if robot not in self.engine.registry.robots:
                log.warning("items of an unavailable robot are waiting", robot=robot, tenant=tenant)
                continue
            handled += 1
            try:
                await self.engine.drain(robot, tenant)
            except Exception:
                log.error("draining failed", robot=robot, tenant=tenant, exc_info=True)
        return handled

    async def serve(self, stop: asyncio.Event, *, once: bool = False) -> None:
        """Loop until ``stop`` is set (or, with ``once``, until there is nothing left to do)."""
        w = self.engine.settings.worker
        # The runs this worker runs at once share its item slots, fairly by municipality.
        self.engine.slots = FairSlots(w.concurrency)
        log.info("worker started", owner=self.engine.owner)
        # SIGTERM sets ``stop``: the engine then finishes the current items, claims no more
        # and records its runs as interrupted; the loop below ends after that.
        relay = asyncio.create_task(self._relay_stop(stop))
        try:
            await self._loop(stop, w.poll_seconds, once=once)
        finally:
            relay.cancel()
        log.info("worker stopped", at=datetime.now(UTC).isoformat())

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.engine.request_stop()

    async def _loop(self, stop: asyncio.Event, poll: float, *, once: bool) -> None:
        rounds = 0
        active: dict[asyncio.Task[RunSummary], str] = {}
        try:
            while not stop.is_set():
                rounds += 1
                if once and rounds > 1000:  # a robot failing on every drain must not spin forever
                    log.warning("worker --once gave up after 1000 rounds")
                    return
                await self.engine.mark_abandoned()  # in-process runs whose runner died (no worker resumes them)
                await self.take_runs(active)
                if active:
                    # Busy: look again for runs (a dead worker's) every poll, and when a run ends.
                    stopping = asyncio.ensure_future(stop.wait())
                    done, _ = await asyncio.wait({*active, stopping}, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                    for task in [t for t in active if t in done]:
                        del active[task]
                        if task.exception() is not None:
                            log.error("a run ended with an error", exc_info=task.exception())
                    continue
                handled = await self.drain_once()
                await self.sweep_overdue_if_due()
                await self.purge_artifacts_if_due()
                if once and handled == 0:
                    return
                if not once:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=poll)
        finally:
            if active:  # a stop lets the runs in hand finish their current items (the engine stops them)
                await asyncio.gather(*active, return_exceptions=True)
