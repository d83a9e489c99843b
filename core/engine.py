"""The engine runs one robot for one tenant: reap → re-check → decisions → collect → process → finish.

Items are processed with configurable concurrency on one asyncio loop; storage calls run
in worker threads so the loop stays responsive. Each item holds a lease that a heartbeat
renews while the robot works; a per-item timeout bounds every attempt.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import inspect
import os
import socket
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from core.clock import Clock, SystemClock
from core.context import CURRENT_LEASE, LeaseGuard, RunContext, lease_guard
from core.errors import (
    AlreadyDecided,
    ApplicationError,
    BusinessError,
    ConfigError,
    ConnectorError,
    DryRunRefusal,
    ItemTimeout,
    KollegaError,
    LeaseLost,
)
from core.fairness import FairSlots
from core.group_claim import Claimed, GroupClaim
from core.group_commit import GroupCommit
from core.interfaces import (
    AlertSink,
    ArtifactStore,
    AuditSink,
    LockStore,
    ReviewStore,
    RobotStateStore,
    RunStore,
    WorkItemStore,
)
from core.logging import error_text, redact_text
from core.records import IN_PROCESS_OWNER, ReviewKind, RunStatus, WorkItemView
from core.registry import Registry
from core.robot import Carried, Done, NeedsReview, NewItem, Robot
from core.runlog import CURRENT_RUN_LOG, RunLogBuffer, code_hash, ensure_run_log_processor
from core.settings import Settings
from core.transitions import RetryPolicy

if TYPE_CHECKING:
    from core.storage.db import Database

log = structlog.get_logger("kollega.engine")

ProgressCallback = Callable[[str, dict[str, int]], None]


#: Done outcomes one item task of a repeatable robot may have waiting for their commit, at
#: least; while the run's claims grow (fast items), the tasks together may have as many
#: waiting as one claim leases.
COMMIT_DEPTH = 4

#: The error text of a run stopped by SIGTERM or SIGINT (status ``interrupted``).
INTERRUPTED = "stopped by a signal: the current items were finished, the rest wait for the next run"


def _beat_interval(lease_seconds: float) -> float:
    """How often a lease is renewed: every third of it (at least every 50 ms)."""
    return max(lease_seconds / 3, 0.05)


class _Heartbeat:
    """An item's lease heartbeat: a timer that starts the renewing task when the first renewal is due.

    Most items finish long before a third of their lease; for them this costs one timer
    instead of a task started and cancelled. The task, once started, runs in the context
    the timer was set in (the item's log bindings and lease fence).
    """

    __slots__ = ("_start", "_task", "_timer")

    def __init__(self, start: Callable[[], Coroutine[Any, Any, None]], lease_seconds: float) -> None:
        self._start = start
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(_beat_interval(lease_seconds), self._begin)

    def _begin(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._start())

    async def stop(self) -> None:
        """Cancel the timer, or the renewing task and wait for it to end."""
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _count_done(counts: dict[str, int], item_id: int, commit: asyncio.Future[bool]) -> None:
    """Count a Done outcome once its commit returned (a lost lease is logged; a failed write is the task's)."""
    if commit.cancelled() or commit.exception() is not None:
        return
    if commit.result():
        counts["done"] += 1
    else:
        log.warning("result discarded: lease lost", item_id=item_id, error=f"work item {item_id}: lease lost")


@dataclass
class _Halt:
    """Why a run's item loops should stop claiming: its run lease was lost, or a signal came."""

    run_lost: bool = False
    stopped_early: bool = False


async def gather_or_cancel(coros: Iterable[Awaitable[None]]) -> None:
    """Run ``coros`` as tasks; when one fails, cancel the others, wait for them, re-raise.

    ``asyncio.gather`` leaves the siblings of a failed task running: a run recorded as
    failed would go on processing items behind the record's back.
    """
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return
    try:
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:  # cancelled from outside: take every task down with us
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for t in tasks:
        if t in pending:
            continue  # cancelled here, because a sibling failed
        if t.cancelled():
            # A task cancelled from within (the process is going down mid-item): as with
            # asyncio.gather, the cancellation reaches the caller, and the run is not recorded.
            raise asyncio.CancelledError
        if t.exception() is not None:
            raise t.exception()  # type: ignore[misc]


def worker_id() -> str:
    """A unique lease owner for this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class RunSummary:
    """What one run did."""

    run_id: int | None
    robot: str
    tenant: str
    status: RunStatus
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    refused_writes: list[dict[str, str]] = field(default_factory=list)
    dry_run: bool = False

    @property
    def needs_attention(self) -> bool:
        """True when a person should look at the run (failed, or items failed or uncertain)."""
        return self.status in (RunStatus.failed, RunStatus.attention)


def artifact_ids(exc: KollegaError) -> list[int]:
    """Ids of the artifacts (screenshots, page snapshots) saved for a failure: ``details["artifacts"]``."""
    found = exc.details.get("artifacts")
    if not isinstance(found, list | tuple):
        return []
    return [int(a) for a in found if isinstance(a, int) and not isinstance(a, bool)]


def _process_state(clock: Clock) -> RobotStateStore:
    from core.testing.memory.robot_state import MemoryRobotStateStore
    from core.testing.memory.state import MemoryState

    return MemoryRobotStateStore(MemoryState(clock))


def _process_locks(clock: Clock) -> LockStore:
    """Target locks held in this process only (an engine built without a lock store)."""
    from core.testing.memory.locks import MemoryLockStore
    from core.testing.memory.state import MemoryState

    return MemoryLockStore(MemoryState(clock))


#: The counts a run's record keeps (every count but ``rechecked``, which is this run's own).
_RECORDED = ("collected", "done", "needs_review", "failed_business", "failed_application", "uncertain", "retried")


def _new_counts() -> dict[str, int]:
    return {
        "collected": 0,
        "done": 0,
        "needs_review": 0,
        "failed_business": 0,
        "failed_application": 0,
        "uncertain": 0,
        "retried": 0,
        "rechecked": 0,
    }


class Engine:
    """Runs robots against the stores it is given: work items, reviews, runs, audit log, artifacts.

    It depends on the ports of core/interfaces.py only; :meth:`from_database` builds the SQL
    stores on one database (the common case), core.testing.memory the in-memory ones.
    """

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        queue: WorkItemStore,
        reviews: ReviewStore,
        runs: RunStore,
        audit: AuditSink,
        artifacts: ArtifactStore,
        alerts: AlertSink | None = None,
        locks: LockStore | None = None,
        robot_state: RobotStateStore | None = None,
        clock: Clock | None = None,
        owner: str | None = None,
        db: Database | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.clock: Clock = clock or SystemClock()
        self.owner = owner or worker_id()
        self.queue = queue
        self.reviews = reviews
        self.runs = runs
        self.auditor = audit
        self.artifacts = artifacts
        #: Where robots' operations alerts go (None: they are only logged).
        self.alerts = alerts
        #: Target locks shared by every worker (RunContext.exclusive); one process's own when none is given.
        self.locks: LockStore = locks if locks is not None else _process_locks(self.clock)
        #: Robots' own state across runs (RunContext.state_get/state_put); one process's own when none is given.
        self.robot_state: RobotStateStore = robot_state if robot_state is not None else _process_state(self.clock)
        #: Item slots shared fairly by municipality across the runs a worker runs at once (None: unshared).
        self.slots: FairSlots | None = None
        #: The database behind the SQL stores (None on other stores): retention works on it directly.
        self.db = db
        #: Set by :meth:`request_stop` (SIGTERM): finish the current items, claim nothing more.
        self.stop_requested = False
        self._group_commits: dict[str, GroupCommit] = {}
        for t in settings.tenants:
            self.runs.ensure_tenant(t.code, t.name, t.ops_email)
        # Runs keep their own log even where logging was never configured (tests, embedding).
        ensure_run_log_processor()

    @classmethod
    def from_database(
        cls,
        db: Database,
        settings: Settings,
        registry: Registry,
        clock: Clock | None = None,
        owner: str | None = None,
    ) -> Engine:
        """The common case: every store in SQL on one database, artifacts under ``var/artifacts``."""
        # Imported here: the engine itself depends on the ports only, not on SQLAlchemy.
        from core.alert_sink import SqlAlertSink
        from core.artifacts import FileArtifactStore
        from core.audit import Auditor
        from core.locks import SqlLockStore
        from core.queue import WorkQueue
        from core.review import ReviewQueue
        from core.robot_state import SqlRobotStateStore
        from core.runs import SqlRunStore

        clock = clock or SystemClock()
        return cls(
            settings,
            registry,
            queue=WorkQueue(db, clock),
            reviews=ReviewQueue(db, clock),
            runs=SqlRunStore(db, clock),
            audit=Auditor(db.session, clock),
            artifacts=FileArtifactStore(db, settings.var_dir / "artifacts", settings.artifact_retention_days, clock),
            alerts=SqlAlertSink(db, clock),
            locks=SqlLockStore(db, clock),
            robot_state=SqlRobotStateStore(db, clock),
            clock=clock,
            owner=owner,
            db=db,
        )

    def request_stop(self) -> None:
        """Stop gracefully: every item loop finishes its current item and claims no more.

        A collect under way stops after the case it is reading: what it found is queued, the
        next run finds the rest (collecting only reads, and re-collecting a case is a no-op).

        The run then ends ``interrupted``; items not yet started stay pending (those leased
        ahead by the group claim are released, not left leased), so the next run or another
        worker takes them at once. Safe to call from a signal handler.
        """
        if not self.stop_requested:
            log.warning("stop requested: finishing the current items, claiming no more")
        self.stop_requested = True

    # -- helpers -----------------------------------------------------------------------
    def robot_instance(self, name: str, tenant: str | None = None) -> Robot:
        """Instantiate robot ``name`` with its validated settings: the effective ones of ``tenant``.

        One instance per run: a municipality's ``[tenants.robots.<name>]`` keys lie over the
        deployment's ``[robots.<name>]``, and its secrets are its own.
        """
        cls = self.registry.get(name)
        return cls(self.settings.robot_settings(name, cls.settings_model, tenant))

    async def _load_secrets(self, robot: Robot) -> None:
        """Read the robot's secrets now (env, file, Vault): a rotated one is used without a restart."""
        from core.vault import load_secrets

        await asyncio.to_thread(load_secrets, robot.settings, self.settings.vault)

    def _check_tenant(self, tenant: str) -> None:
        known = {t.code for t in self.settings.tenants}
        if tenant not in known:
            raise ConfigError(f"unknown tenant {tenant!r}; configured tenants: {', '.join(sorted(known)) or 'none'}")

    def context(self, robot: Robot, tenant: str, run_id: int | None, dry_run: bool) -> RunContext:
        """The RunContext handed to a robot."""
        return RunContext(
            robot=robot.name,
            tenant=tenant,
            run_id=run_id,
            settings=robot.settings,
            app_settings=self.settings,
            clock=self.clock,
            audit=self.auditor,
            artifacts=self.artifacts,
            alerts=self.alerts,
            locks=self.locks,
            robot_state=self.robot_state,
            owner=self.owner,
            dry_run=dry_run,
            log=structlog.get_logger("kollega.robot").bind(robot=robot.name, tenant=tenant, run_id=run_id),
        )

    def _policy(self, robot: Robot) -> RetryPolicy:
        w = self.settings.worker
        return RetryPolicy(
            max_attempts=robot.max_attempts or w.max_attempts,
            base_seconds=w.backoff_base_seconds,
            cap_seconds=w.backoff_cap_seconds,
        )

    # -- a whole run -------------------------------------------------------------------
    async def run(
        self,
        robot_name: str,
        tenant: str,
        *,
        trigger: str = "manual",
        dry_run: bool = False,
        limit: int | None = None,
        run_id: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> RunSummary:
        """Run ``robot_name`` for ``tenant`` once (creating the run row unless one is given)."""
        if run_id is not None:
            # A queued run (from the scheduler) whose robot or tenant is broken still ends visibly.
            try:
                self._check_tenant(tenant)
                robot = self.robot_instance(robot_name, tenant)
            except KollegaError as exc:
                await asyncio.to_thread(self.runs.finish, run_id, RunStatus.failed, _new_counts(), exc.message)
                return RunSummary(run_id, robot_name, tenant, RunStatus.failed, _new_counts(), exc.message)
        else:
            self._check_tenant(tenant)
            robot = self.robot_instance(robot_name, tenant)
        lease = self.settings.worker.lease_seconds
        owner = self.owner
        if run_id is None:
            # Runs whose runner died are found by the next run's start (or a worker's loop).
            await self.mark_abandoned()
            run_id = await asyncio.to_thread(
                self.runs.create, robot=robot_name, tenant=tenant, trigger=trigger, dry_run=dry_run, item_limit=limit
            )
            owner = IN_PROCESS_OWNER + self.owner  # no worker may resume it: abandoned if we die
        assert run_id is not None
        await asyncio.to_thread(self.runs.start, run_id, owner, lease)
        await self._record_version(run_id, robot)
        # What the run logs is kept with it (redacted, bounded): every task and thread started
        # from here inherits the buffer (core.runlog). A run taken over from a dead worker
        # goes on numbering its log after what that worker stored.
        stored = await asyncio.to_thread(self.runs.run_log, run_id, limit=10**9) if owner == self.owner else []
        # Its counts go on from what that worker stored with its last heartbeat, so that the run's
        # record adds up to the whole night, not only to the part done after the takeover.
        carried = await self._carried_counts(run_id) if owner == self.owner else {}
        buffer = RunLogBuffer(
            self.clock, self.settings.worker.run_log_max_entries, start=stored[-1].seq if stored else 0
        )
        token = CURRENT_RUN_LOG.set(buffer)
        try:
            return await self._run_started(
                robot, robot_name, tenant, run_id, owner, trigger, dry_run, limit, on_progress, carried
            )
        finally:
            CURRENT_RUN_LOG.reset(token)
            await self._flush_log(run_id, buffer)

    async def _carried_counts(self, run_id: int) -> dict[str, int]:
        """The counts a run's record holds already: zero for a new run, a dead worker's for one taken over."""
        record = await asyncio.to_thread(self.runs.get, run_id)
        if record is None:
            return {}
        return {f: int(getattr(record, f) or 0) for f in _RECORDED}

    async def _record_version(self, run_id: int, robot: Robot) -> None:
        """Store the robot's distribution version and code hash on the run; a failure here is only logged."""
        try:
            version = self.registry.versions.get(robot.name)
            digest = await asyncio.to_thread(code_hash, type(robot))
            await asyncio.to_thread(self.runs.record_version, run_id, version, digest)
        except Exception:
            log.warning("recording the robot's version failed", exc_info=True)

    async def _flush_log(self, run_id: int, buffer: RunLogBuffer) -> None:
        """Write the run's pending log entries to the run store (a failure loses only log lines, logged)."""
        entries, dropped = buffer.drain()
        if not entries and not dropped:
            return
        try:
            await asyncio.to_thread(self.runs.append_log, run_id, entries, dropped)
        except Exception:
            log.warning("storing the run's log failed", entries=len(entries), exc_info=True)

    async def _run_started(
        self,
        robot: Robot,
        robot_name: str,
        tenant: str,
        run_id: int,
        owner: str,
        trigger: str,
        dry_run: bool,
        limit: int | None,
        on_progress: ProgressCallback | None,
        carried: dict[str, int] | None = None,
    ) -> RunSummary:
        """The run after its row is started: stages, failure handling, the finish record."""
        counts = _new_counts()
        counts.update(carried or {})
        before = counts["uncertain"]  # a dead worker's uncertain items are its, counted already
        ctx = self.context(robot, tenant, run_id, dry_run)
        progress = on_progress or (lambda _e, _c: None)
        reaped, recheck_left = 0, None
        halt = _Halt()
        with structlog.contextvars.bound_contextvars(robot=robot_name, tenant=tenant, run_id=run_id):
            log.info("run started", trigger=trigger, dry_run=dry_run)
            heart = asyncio.create_task(self._run_heartbeat(run_id, owner, counts, halt, CURRENT_RUN_LOG.get()))
            try:
                # Secrets are read as the run starts; one that cannot be read fails the run, named.
                await self._load_secrets(robot)
                if dry_run:
                    await self._dry_run(robot, ctx, counts, limit, progress, halt)
                else:
                    await self._reap(robot, tenant, counts)
                    reaped = counts["uncertain"] - before
                    recheck_left = await self._recheck(robot, ctx, counts)
                    await self._callbacks(robot, ctx, halt)
                    if not self._halting(halt):
                        await self._collect(robot, ctx, counts, limit, progress, halt)
                    await self._process_all(robot, ctx, counts, progress, limit, halt=halt)
            except Exception as exc:  # the run itself failed: record it, never lose it
                error = error_text(exc)  # database errors: class and SQLSTATE only, never values
                log.error("run failed", error=error, exc_info=not isinstance(exc, KollegaError))
                await self._finish_run(run_id, owner, RunStatus.failed, counts, error)
                return RunSummary(
                    run_id, robot_name, tenant, RunStatus.failed, counts, error, ctx.refused_writes, dry_run
                )
            finally:
                heart.cancel()
                await asyncio.gather(heart, return_exceptions=True)  # gone before the run is recorded
                await self._close_resources(ctx)
            # Uncertain items this run made need a person, unless the re-check right after the
            # reap settled them all (one it left may be an older one: attention errs on the safe side).
            unsettled = counts["uncertain"] > before + reaped or (
                reaped > 0 and (recheck_left is None or recheck_left > 0)
            )
            status = RunStatus.attention if counts["failed_application"] or unsettled else RunStatus.succeeded
            note: str | None = None
            if self.stop_requested and halt.stopped_early:
                status, note = RunStatus.interrupted, INTERRUPTED
            if halt.run_lost or not await self._finish_run(run_id, owner, status, counts, note):
                # Another worker resumed the run: its record is that worker's to write.
                lost = "the run's lease was lost (another worker took the run over); this worker stopped"
                log.warning("run lease lost; finish not recorded", **counts)
                return RunSummary(run_id, robot_name, tenant, RunStatus.failed, counts, lost, ctx.refused_writes)
            log.info("run finished", status=status.value, **counts)
            return RunSummary(run_id, robot_name, tenant, status, counts, note, ctx.refused_writes, dry_run)

    def _halting(self, halt: _Halt | None) -> bool:
        """True when item loops must stop claiming (a signal, or the run's lease lost)."""
        stop = self.stop_requested or (halt is not None and halt.run_lost)
        if stop and halt is not None:
            halt.stopped_early = True
        return stop

    async def _finish_run(
        self, run_id: int, owner: str, status: RunStatus, counts: dict[str, int], error: str | None = None
    ) -> bool:
        """Record the run's end, under its owner only; False when another worker owns the run now."""
        try:
            await asyncio.to_thread(self.runs.finish, run_id, status, counts, error, owner=owner)
        except LeaseLost as exc:
            log.warning("run finish not recorded: another worker owns the run", error=str(exc))
            return False
        return True

    async def mark_abandoned(self) -> None:
        """Mark runs whose in-process runner died as abandoned (a failure here never stops a run)."""
        try:
            found = await asyncio.to_thread(self.runs.mark_abandoned)
        except Exception:
            log.warning("marking abandoned runs failed", exc_info=True)
            return
        if found:
            log.warning("runs abandoned by a runner that died", runs=found)

    async def drain(self, robot_name: str, tenant: str) -> dict[str, int]:
        """Without collecting: carry out decisions and process items that fell due (worker duty)."""
        robot = self.robot_instance(robot_name, tenant)
        ctx = self.context(robot, tenant, None, False)
        counts = _new_counts()
        try:
            await self._load_secrets(robot)
            await self._reap(robot, tenant, counts)
            await self._callbacks(robot, ctx, None)
            await self._process_all(robot, ctx, counts, lambda _e, _c: None, None, wait_for_retries=False)
        finally:
            await self._close_resources(ctx)
        return counts

    async def _run_heartbeat(
        self, run_id: int, owner: str, counts: dict[str, int], halt: _Halt, buffer: RunLogBuffer | None = None
    ) -> None:
        lease = self.settings.worker.lease_seconds
        while True:
            await asyncio.sleep(max(lease / 3, 0.05))
            if buffer is not None:
                await self._flush_log(run_id, buffer)  # a run's page shows its log while it runs
            try:
                await asyncio.to_thread(self.runs.heartbeat, run_id, lease, dict(counts), owner=owner)
            except LeaseLost:  # another worker resumed the run: stop claiming, record nothing
                log.warning("run lease lost; this worker stops the run")
                halt.run_lost = True
                return
            except Exception:  # a missed heartbeat is retried on the next beat
                log.warning("run heartbeat failed", exc_info=True)

    @staticmethod
    async def _close_resources(ctx: RunContext) -> None:
        for name, res in list(ctx.resources.items()):
            closer = getattr(res, "aclose", None) or getattr(res, "close", None)
            if closer is None:
                continue
            try:
                out = closer()
                if inspect.isawaitable(out):
                    await out
            except Exception:
                log.warning("closing a run resource failed", resource=name, exc_info=True)
        ctx.resources.clear()

    # -- stages ------------------------------------------------------------------------
    async def _reap(self, robot: Robot, tenant: str, counts: dict[str, int]) -> None:
        reaped = await asyncio.to_thread(
            self.queue.reap_expired,
            robot.name,
            tenant,
            side_effects_repeatable=robot.side_effects_repeatable,
            max_attempts=self._policy(robot).max_attempts,
            actor=f"robot:{robot.name}",
        )
        counts["uncertain"] += reaped["uncertain"]
        counts["failed_application"] += reaped["failed_application"]

    async def _recheck(self, robot: Robot, ctx: RunContext, counts: dict[str, int]) -> int | None:
        """Let the robot re-check its uncertain items; returns how many it could not settle (None: no re-check).

        Each item is leased first (two runs never re-check one item at once); the lease
        outlasts the item timeout, so no heartbeat is needed. An item is offered once per run.
        """
        if type(robot).recheck is Robot.recheck:
            return None  # the robot does not re-check: its uncertain items wait for a person
        w = self.settings.worker
        lease = max(w.lease_seconds, w.item_timeout_seconds) + 30
        tried: set[int] = set()
        left = [0]
        claiming = asyncio.Lock()  # one claim at a time, so that ``tried`` is always up to date

        async def worker() -> None:
            while True:
                async with claiming:
                    claimed = await asyncio.to_thread(
                        self.queue.claim_uncertain,
                        robot.name,
                        ctx.tenant,
                        self.owner,
                        limit=1,
                        lease_seconds=lease,
                        exclude=set(tried),
                    )
                    if not claimed:
                        return
                    tried.add(claimed[0].id)
                if await self._recheck_one(robot, ctx, claimed[0]):
                    counts["rechecked"] += 1
                else:
                    left[0] += 1

        await gather_or_cancel(worker() for _ in range(w.concurrency))
        return left[0]

    async def _recheck_one(self, robot: Robot, ctx: RunContext, item: WorkItemView) -> bool:
        """Re-check one leased uncertain item; True when it was settled."""
        actor = ctx.actor
        with structlog.contextvars.bound_contextvars(item_id=item.id, stage="recheck"):
            try:
                outcome = await asyncio.wait_for(
                    robot.recheck(ctx, item), timeout=self.settings.worker.item_timeout_seconds
                )
            except Exception as exc:  # the item stays with the person; the run goes on
                code = exc.code if isinstance(exc, KollegaError) else type(exc).__name__
                log.warning("re-checking an uncertain item failed; it stays uncertain for a person", error_code=code)
                await asyncio.to_thread(self.queue.release_uncertain, item, actor=actor, reason=f"error:{code}")
                return False
            if not isinstance(outcome, Done):
                reason = "inconclusive" if outcome is None else "bad_outcome"
                log.info("re-check did not settle an uncertain item; it stays uncertain for a person", reason=reason)
                await asyncio.to_thread(self.queue.release_uncertain, item, actor=actor, reason=reason)
                return False
            settled = Done({**outcome.result, "rechecked": True})
            try:
                await asyncio.to_thread(self.queue.settle_uncertain, item, settled, actor=actor)
            except (LeaseLost, AlreadyDecided) as exc:  # a person (or another worker) got there first
                log.warning("re-check result discarded", error=str(exc))
                return False
            log.info("uncertain item settled by re-check")
            return True

    async def _iter_collected(self, robot: Robot, ctx: RunContext) -> AsyncGenerator[NewItem, None]:
        found: Iterable[NewItem] | AsyncIterator[NewItem] = robot.collect(ctx)
        if inspect.isawaitable(found):
            found = await found
        if hasattr(found, "__aiter__"):
            async for it in found:
                yield it
        else:
            for it in found:
                yield it

    async def _collect(
        self,
        robot: Robot,
        ctx: RunContext,
        counts: dict[str, int],
        limit: int | None,
        progress: ProgressCallback,
        halt: _Halt | None = None,
    ) -> None:
        """Queue what the robot finds, 200 items per statement; a stop ends the collect early.

        Collecting reads only and re-collecting a case is a no-op (DESIGN.md), so a stop (or
        the run's lease lost) after any item is safe: what was found so far is queued, the
        rest is found by the next run.
        """
        batch: list[NewItem] = []
        seen = 0
        async with contextlib.aclosing(self._iter_collected(robot, ctx)) as found:
            async for it in found:
                if not isinstance(it, NewItem):
                    raise ConfigError(f"robot {robot.name}: collect() must yield NewItem, got {type(it).__name__}")
                batch.append(it)
                seen += 1
                if len(batch) >= 200:
                    counts["collected"] += await asyncio.to_thread(
                        self.queue.enqueue, robot.name, ctx.tenant, batch, ctx.run_id
                    )
                    batch = []
                    progress("collected", counts)
                if limit is not None and seen >= limit:
                    break
                if self._halting(halt):
                    log.warning("stop requested: collect ended early; the next run collects the rest", found=seen)
                    break
        counts["collected"] += await asyncio.to_thread(self.queue.enqueue, robot.name, ctx.tenant, batch, ctx.run_id)
        progress("collected", counts)

    async def _process_all(
        self,
        robot: Robot,
        ctx: RunContext,
        counts: dict[str, int],
        progress: ProgressCallback,
        limit: int | None,
        *,
        wait_for_retries: bool = True,
        halt: _Halt | None = None,
    ) -> None:
        w = self.settings.worker
        # Items this run may still take (None = no limit). A slot is reserved before the
        # claim so concurrent tasks cannot overshoot, and a retry of an item this run already
        # took gives its slot back: the limit counts items, not attempts.
        budget = [limit]
        taken: set[int] = set()
        # Tasks asking at the same moment share one claim statement (core/group_claim.py). A
        # run without a limit, of a robot whose side effects are repeatable, also leases a
        # few items ahead (more while its items finish fast): they wait leased and
        # heartbeated, and go back when the run stops.
        ahead = limit is None and robot.side_effects_repeatable and w.prefetch > 0
        claims = GroupClaim(
            functools.partial(self._claim_due, robot, ctx.tenant),
            functools.partial(self.queue.extend, lease_seconds=w.lease_seconds),
            self.queue.release,
            prefetch=w.prefetch if ahead else 0,
            prefetch_max=w.prefetch_max if ahead else 0,
            lease_seconds=w.lease_seconds,
        )

        # A Done outcome of a repeatable robot is committed while its task goes on to its next
        # items (at most COMMIT_DEPTH outcomes of a task wait for their commit, or a claim's worth
        # across the tasks while the claims grow for fast items; the task waits
        # for all of them before it stops, and the run for every task's before its record), so
        # one group commit gathers many tasks' outcomes. Nothing is confirmed before its commit:
        # an item is counted done only then, and a crash leaves it to its lease and a re-run,
        # which a repeatable robot allows. Other robots wait for each commit before going on.
        pipelined = robot.side_effects_repeatable

        async def worker() -> None:
            outstanding: collections.deque[asyncio.Future[bool]] = collections.deque()  # being committed
            try:
                await items(outstanding)
            except BaseException:
                for commit in outstanding:
                    commit.cancel()  # withdrawn unless already in a write (settled below)
                raise
            while outstanding:
                await outstanding.popleft()

        async def items(outstanding: collections.deque[asyncio.Future[bool]]) -> None:
            while True:
                if self._halting(halt):
                    return
                only: set[int] | None = None
                reserved = False
                if budget[0] is not None:
                    if budget[0] > 0:
                        budget[0] -= 1
                        reserved = True
                    elif taken:
                        only = set(taken)  # the limit is reached: only retries of our own items
                    else:
                        return
                async with self._slot(ctx.tenant):
                    if self._halting(halt):  # the stop came while this task waited for its slot
                        if reserved and budget[0] is not None:
                            budget[0] += 1
                        return
                    got = await claims.take() if only is None else await self._claim_own(robot, ctx.tenant, only)
                    if reserved and (got is None or got.item.id in taken) and budget[0] is not None:
                        budget[0] += 1
                    if got is None:
                        return
                    taken.add(got.item.id)
                    guard = lease_guard(f"work item {got.item.id}", got.sent_at, w.lease_seconds)
                    commit = await self._process_one(robot, ctx, got.item, counts, guard, defer=pipelined)
                if commit is not None:
                    outstanding.append(commit)
                depth = max(COMMIT_DEPTH, -(-claims.window // w.concurrency))  # a claim's worth across the tasks
                while len(outstanding) > depth or (outstanding and outstanding[0].done()):
                    await outstanding.popleft()  # the oldest outcome is committed first
                progress("processed", counts)

        while True:
            # One failed task (a database error in a claim or a completion) takes the others
            # down with it before the run is recorded as failed: nothing runs behind the record.
            try:
                await gather_or_cancel(worker() for _ in range(w.concurrency))
            finally:  # no completion still being written behind the run's record, no item left leased
                for group in list(self._group_commits.values()):
                    await group.settle()
                await self._release_prefetched(claims)
            if not wait_for_retries or self._halting(halt):
                return
            # Retries due soon are waited for inside the run; later ones wait for the next run.
            due = await asyncio.to_thread(
                self.queue.next_due, robot.name, ctx.tenant, set(taken) if limit is not None else None
            )
            if due is None:
                return
            wait = (due - self.clock.now()).total_seconds()
            if wait > w.retry_wait_seconds:
                return
            await self.clock.sleep(max(wait, 0) + 0.01)

    def _claim_due(self, robot: Robot, tenant: str, limit: int) -> list[WorkItemView]:
        """Lease up to ``limit`` due items of the run's robot and tenant (the group claim's statement)."""
        return self.queue.claim(
            robot.name,
            tenant,
            self.owner,
            limit=limit,
            lease_seconds=self.settings.worker.lease_seconds,
            reclaim_expired=robot.side_effects_repeatable,
        )

    async def _claim_own(self, robot: Robot, tenant: str, ids: set[int]) -> Claimed | None:
        """Lease one due item among ``ids`` (a limited run's retries of its own items)."""
        sent_at = time.monotonic()  # the lease is counted from before the claim
        claimed = await asyncio.to_thread(
            self.queue.claim,
            robot.name,
            tenant,
            self.owner,
            limit=1,
            lease_seconds=self.settings.worker.lease_seconds,
            reclaim_expired=robot.side_effects_repeatable,
            ids=ids,
        )
        return Claimed(claimed[0], sent_at) if claimed else None

    @staticmethod
    async def _release_prefetched(claims: GroupClaim) -> None:
        """Give the run's prefetched, unstarted items back (a failure leaves them to their leases, logged)."""
        try:
            await claims.close()
        except Exception:
            log.warning("releasing prefetched items failed; they wait for their leases to expire", exc_info=True)

    def _slot(self, tenant: str) -> contextlib.AbstractAsyncContextManager[None]:
        """One of the worker's item slots, shared fairly by municipality (no limit without a worker)."""
        return self.slots.slot(tenant) if self.slots is not None else contextlib.nullcontext()

    async def _process_one(
        self,
        robot: Robot,
        ctx: RunContext,
        item: WorkItemView,
        counts: dict[str, int],
        guard: LeaseGuard | None = None,
        *,
        defer: bool = False,
    ) -> asyncio.Future[bool] | None:
        """Process one leased item; with ``defer`` a Done outcome's commit is returned as a future to await later."""
        lease = self.settings.worker.lease_seconds
        guard = guard or lease_guard(f"work item {item.id}", time.monotonic(), lease)
        token = CURRENT_LEASE.set(guard)  # the write fence of this task (ctx.check_write)
        try:
            return await self._process_leased(robot, ctx, item, counts, guard, defer)
        finally:
            CURRENT_LEASE.reset(token)

    async def _process_leased(
        self,
        robot: Robot,
        ctx: RunContext,
        item: WorkItemView,
        counts: dict[str, int],
        guard: LeaseGuard,
        defer: bool = False,
    ) -> asyncio.Future[bool] | None:
        policy = self._policy(robot)
        actor = ctx.actor
        with structlog.contextvars.bound_contextvars(item_id=item.id, attempt=item.attempts):
            if item.attempts > policy.max_attempts:  # reclaimed after a crash on its last attempt
                await self._fail_application(
                    robot, item, "lease_expired", "the worker stopped on the last attempt", counts, policy
                )
                return None
            # The lease heartbeat starts only when the first renewal is due: most items finish
            # long before, and a timer costs far less than a task started and cancelled per item.
            beat = _Heartbeat(functools.partial(self._item_heartbeat, item, guard), self.settings.worker.lease_seconds)
            try:
                # In this task, not one of its own (asyncio.wait_for's): a task per item cost
                # about a fifth of the engine's CPU per no-op item (bench/engine_costs.py).
                async with asyncio.timeout(self.settings.worker.item_timeout_seconds):
                    outcome = await robot.process(ctx, item)
            except BusinessError as exc:
                await self._finish(
                    self.queue.fail_business,
                    item,
                    code=exc.code,
                    message=redact_text(exc.message),
                    actor=actor,
                    artifacts=artifact_ids(exc),
                )
                counts["failed_business"] += 1
                log.info("item failed (business)", code=exc.code)
                return None
            except TimeoutError:
                if not robot.side_effects_repeatable:
                    await self._uncertain(robot, item, counts)
                    return None
                exc2 = ItemTimeout(f"timed out after {self.settings.worker.item_timeout_seconds:g} s")
                await self._fail_application(robot, item, exc2.code, exc2.message, counts, policy)
                return None
            except (ApplicationError, ConnectorError) as exc:
                # Not retryable (a refused dry-run write, a changed page layout): to a person at once.
                final = RetryPolicy(max_attempts=0) if not exc.retryable else policy
                retry_after = exc.details.get("retry_after")
                await self._fail_application(
                    robot,
                    item,
                    exc.code,
                    redact_text(exc.message),
                    counts,
                    final,
                    min_delay=float(retry_after) if isinstance(retry_after, int | float) else 0.0,
                    artifacts=artifact_ids(exc),
                )
                return None
            except LeaseLost:
                log.warning("lease lost while processing; another worker has the item")
                return None
            except Exception as exc:  # a bug in the robot: treated as transient, retried, then a person
                log.error("robot raised an unexpected error", exc_info=True)
                await self._fail_application(
                    robot, item, "unexpected", redact_text(f"{type(exc).__name__}: {exc}"), counts, policy
                )
                return None
            finally:
                await beat.stop()
            if not isinstance(outcome, Done | NeedsReview):
                await self._fail_application(
                    robot,
                    item,
                    "bad_outcome",
                    f"process() returned {type(outcome).__name__}, not Done or NeedsReview",
                    counts,
                    policy,
                )
                return
            if isinstance(outcome, Done):
                # Counted done only once the commit holding it has returned (the callback).
                commit = self._group_commit(actor).submit(item, outcome)
                commit.add_done_callback(functools.partial(_count_done, counts, item.id))
                if defer:
                    return commit
                await commit
            elif await self._finish(self.queue.complete, item, outcome, actor=actor):
                counts["needs_review"] += 1
        return None

    def _group_commit(self, actor: str) -> GroupCommit:
        """The group commit of Done outcomes for one actor (items finished together commit together)."""
        group = self._group_commits.get(actor)
        if group is None:
            group = GroupCommit(functools.partial(self.queue.complete_many, actor=actor))
            self._group_commits[actor] = group
        return group

    async def _item_heartbeat(self, item: WorkItemView, guard: LeaseGuard) -> None:
        """Renew the item's lease now and then every third of it (started when the first renewal is due)."""
        lease = self.settings.worker.lease_seconds
        while True:
            try:
                sent_at = time.monotonic()
                await asyncio.to_thread(self.queue.extend, item, lease)
                guard.renewed(sent_at, lease)
            except LeaseLost:
                guard.lost = True  # the fence: no further external write for this item
                return
            except Exception:
                log.warning("item heartbeat failed", exc_info=True)
            await asyncio.sleep(_beat_interval(lease))

    async def _finish(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        try:
            await asyncio.to_thread(fn, *args, **kwargs)
            return True
        except LeaseLost as exc:
            log.warning("result discarded: lease lost", error=str(exc))
            return False

    async def _fail_application(
        self,
        robot: Robot,
        item: WorkItemView,
        code: str,
        message: str,
        counts: dict[str, int],
        policy: RetryPolicy,
        *,
        min_delay: float = 0.0,
        artifacts: list[int] | None = None,
    ) -> None:
        try:
            retry = await asyncio.to_thread(
                self.queue.fail_application,
                item,
                code=code,
                message=message,
                actor=f"robot:{robot.name}",
                policy=policy,
                min_delay=min_delay,
                artifacts=artifacts or [],
            )
        except LeaseLost:
            log.warning("failure not recorded: lease lost")
            return
        counts["retried" if retry else "failed_application"] += 1
        log.info("item failed (application)", code=code, will_retry=retry)

    async def _uncertain(self, robot: Robot, item: WorkItemView, counts: dict[str, int]) -> None:
        # Timed out mid-write in a robot whose writes must not be repeated blindly: a person checks.
        try:
            await asyncio.to_thread(
                self.queue.mark_uncertain,
                item,
                actor=f"robot:{robot.name}",
                code="timeout",
                message="the item timed out mid-work; the external write may or may not have happened",
            )
        except LeaseLost:
            log.warning("timed-out item not marked uncertain: lease lost; another worker has it")
            return
        counts["uncertain"] += 1

    async def _callbacks(self, robot: Robot, ctx: RunContext, halt: _Halt | None) -> None:
        """Carry out decided reviews, one claim at a time, each under a lease covering its own work.

        What each did (or why it failed) is kept for the person who decided.

        The lease outlasts the callback's timeout, so it never expires while ``on_decision``
        runs in a live worker. A decision whose earlier lease expired unsettled (its worker
        died mid-callback) is not run blindly again for a robot whose writes must not be
        repeated: it goes to a person, as an uncertain item does.
        """
        w = self.settings.worker
        lease = max(w.lease_seconds, w.item_timeout_seconds) + 30
        while not self._halting(halt):
            sent_at = time.monotonic()
            due = await asyncio.to_thread(
                self.reviews.claim_callbacks, robot.name, ctx.tenant, limit=1, lease_seconds=lease
            )
            if not due:
                return
            for review in due:
                carried: Carried | None = None
                if review.callback_reclaimed and not robot.side_effects_repeatable:
                    log.warning("a decision's earlier callback stopped mid-way; a person checks", review_id=review.id)
                    await self._settle(
                        self.reviews.callback_failed,
                        review,
                        "the worker stopped while carrying out this decision; it may or may not have been "
                        "carried out: check the target system before acting",
                        max_attempts=0,
                        base_seconds=w.backoff_base_seconds,
                        cap_seconds=w.backoff_cap_seconds,
                        actor=ctx.actor,
                        message="Arbetet avbröts medan beslutet verkställdes. Kontrollera i verksamhetssystemet "
                        "om det blev gjort innan du gör något mer.",
                    )
                    continue
                guard = lease_guard(f"decision on review item {review.id}", sent_at, lease)
                token = CURRENT_LEASE.set(guard)
                try:
                    if review.kind == ReviewKind.decision.value:
                        carried = await asyncio.wait_for(robot.on_decision(ctx, review), timeout=w.item_timeout_seconds)
                except Exception as exc:
                    msg = redact_text(f"{type(exc).__name__}: {exc}")
                    log.warning("carrying out a decision failed", review_id=review.id, error=msg)
                    # Bad data will not improve by waiting: a person gets it at once.
                    retryable = not isinstance(exc, KollegaError) or exc.retryable
                    await self._settle(
                        self.reviews.callback_failed,
                        review,
                        msg,
                        max_attempts=w.max_attempts if retryable else 0,
                        base_seconds=w.backoff_base_seconds,
                        cap_seconds=w.backoff_cap_seconds,
                        actor=ctx.actor,
                        message=decider_message(exc),
                    )
                    continue
                finally:
                    CURRENT_LEASE.reset(token)
                summary, reference = (
                    (redact_text(carried.summary), carried.reference) if isinstance(carried, Carried) else (None, None)
                )
                await self._settle(
                    self.reviews.callback_done, review, actor=ctx.actor, summary=summary, reference=reference
                )

    @staticmethod
    async def _settle(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            await asyncio.to_thread(fn, *args, **kwargs)
        except LeaseLost as exc:  # another worker took the decision over; it settles it
            log.warning("decision outcome discarded: lease lost", error=str(exc))

    async def _dry_run(
        self,
        robot: Robot,
        ctx: RunContext,
        counts: dict[str, int],
        limit: int | None,
        progress: ProgressCallback,
        halt: _Halt | None = None,
    ) -> None:
        """Process collected items in memory: nothing is queued, every external write is refused."""
        n = 0
        async with contextlib.aclosing(self._iter_collected(robot, ctx)) as found:
            async for it in found:
                if (limit is not None and n >= limit) or self._halting(halt):
                    break
                await self._dry_run_item(robot, ctx, it, counts)
                n += 1
                progress("processed", counts)

    async def _dry_run_item(self, robot: Robot, ctx: RunContext, it: NewItem, counts: dict[str, int]) -> None:
        """One collected item processed in memory, counted by its outcome."""
        counts["collected"] += 1
        view = WorkItemView(
            id=0,
            robot=robot.name,
            tenant=ctx.tenant,
            reference=it.reference,
            payload=it.payload,
            subject=it.subject,
            attempts=1,
            lease_token=None,
            run_id=ctx.run_id,
        )
        try:
            outcome = await asyncio.wait_for(
                robot.process(ctx, view), timeout=self.settings.worker.item_timeout_seconds
            )
            counts["done" if isinstance(outcome, Done) else "needs_review"] += 1
        except BusinessError:
            counts["failed_business"] += 1
        except DryRunRefusal:
            counts["refused"] = counts.get("refused", 0) + 1  # stopped at its first external write
        except Exception:
            counts["failed_application"] += 1


def decider_message(exc: BaseException) -> str | None:
    """Why carrying out a decision failed, for the person who decided (None = the general words).

    A BusinessError's message is written for a case worker (in Swedish); anything else is a
    technical failure the case worker cannot act on, so its text stays with operations.
    """
    if isinstance(exc, BusinessError):
        return redact_text(str(exc))
    return None
