"""The long-running worker: claims queued runs, then keeps retries and decisions moving.

Several workers (on several machines, against one PostgreSQL) share the work: runs and
items are claimed with leases, so each is handled by exactly one worker at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import structlog

from core.engine import Engine, RunSummary
from core.records import RunStatus
from core.retention import purge

log = structlog.get_logger("kollega.worker")


class Worker:
    """Runs queued runs and drains due items and decision callbacks until stopped."""

    #: How often a worker deletes artifacts past their retention (they hold personal data).
    PURGE_EVERY_SECONDS = 3600.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._purged_at: float | None = None

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

    async def run_queued_once(self) -> RunSummary | None:
        """Claim and execute one queued run; None when there is none."""
        lease = self.engine.settings.worker.lease_seconds
        run = await asyncio.to_thread(self.engine.runs.claim_queued, self.engine.owner, lease)
        if run is None:
            return None
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
        poll = self.engine.settings.worker.poll_seconds
        log.info("worker started", owner=self.engine.owner)
        # SIGTERM sets ``stop``: the engine then finishes the current items, claims no more
        # and records its run as interrupted; the loop below ends after that.
        relay = asyncio.create_task(self._relay_stop(stop))
        try:
            await self._loop(stop, poll, once=once)
        finally:
            relay.cancel()
        log.info("worker stopped", at=datetime.now(UTC).isoformat())

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.engine.request_stop()

    async def _loop(self, stop: asyncio.Event, poll: float, *, once: bool) -> None:
        rounds = 0
        while not stop.is_set():
            rounds += 1
            if once and rounds > 1000:  # a robot failing on every drain must not spin forever
                log.warning("worker --once gave up after 1000 rounds")
                return
            await self.engine.mark_abandoned()  # in-process runs whose runner died (no worker resumes them)
            summary = await self.run_queued_once()
            if summary is not None:
                continue  # more queued runs may be waiting
            handled = await self.drain_once()
            await asyncio.to_thread(self.engine.reviews.expire_overdue)
            await self.purge_artifacts_if_due()
            if once and handled == 0:
                return
            if not once:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll)
