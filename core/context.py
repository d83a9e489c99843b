"""RunContext: what a robot gets while it runs — settings, clock, logger, audit, tenant, run id.

The engine builds one per run (:meth:`core.engine.Engine.context`). Robots see it through
the narrower protocol :class:`core.api.RunContext`, which this class fulfils.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog
from pydantic import BaseModel

from core.clock import Clock
from core.errors import DryRunRefusal, LeaseLost
from core.interfaces import AlertSink, ArtifactStore, AuditSink, LockStore, RobotStateStore
from core.settings import Settings

if TYPE_CHECKING:
    from core.robot import RunContext as RobotRunContext


@dataclass
class LeaseGuard:
    """The lease the current task works under (a work item or a decision): the write fence.

    The engine sets one per item (:data:`CURRENT_LEASE`, task-local) and its heartbeat renews
    it. :meth:`RunContext.check_write` refuses a write once the lease is known lost (the
    heartbeat found another worker's token) or its time ran out on this process's monotonic
    clock — which keeps running while the process is paused (SIGSTOP), so a worker resumed
    after its lease expired writes nothing more. The deadline is measured from *before* the
    claim or renewal was sent, so it never outlasts the database's own lease.
    """

    what: str
    deadline: float
    #: The share of the lease kept as a margin: a write is refused this close to the end.
    margin: float = 0.0
    lost: bool = False

    def renewed(self, sent_at: float, seconds: float) -> None:
        """The lease was renewed by a statement sent at ``sent_at`` (monotonic) for ``seconds``."""
        self.deadline = sent_at + seconds
        self.margin = seconds * 0.1

    def check(self) -> None:
        """Raise :class:`LeaseLost` when this lease is lost or (nearly) expired."""
        if self.lost:
            raise LeaseLost(f"{self.what}: lease lost; another worker owns it now — write refused")
        if time.monotonic() >= self.deadline - self.margin:
            raise LeaseLost(f"{self.what}: lease expired before this write — write refused")


#: The lease of the item (or decision) the current asyncio task works on; None outside one.
CURRENT_LEASE: ContextVar[LeaseGuard | None] = ContextVar("kollega_current_lease", default=None)


def lease_guard(what: str, sent_at: float, seconds: float) -> LeaseGuard:
    """A guard for a lease claimed by a statement sent at ``sent_at`` (monotonic) for ``seconds``."""
    guard = LeaseGuard(what, 0.0)
    guard.renewed(sent_at, seconds)
    return guard


@dataclass
class RunContext:
    """Everything a robot may use during one run for one tenant."""

    robot: str
    tenant: str
    run_id: int | None
    settings: BaseModel
    app_settings: Settings
    clock: Clock
    audit: AuditSink
    artifacts: ArtifactStore
    #: Target locks shared by every worker (see :meth:`exclusive`); None = this context's own.
    locks: LockStore | None = None
    #: The robot's own state across runs (see :meth:`state_get`); None = this context's own, in memory.
    robot_state: RobotStateStore | None = None
    #: The worker holding the run (a lock's owner).
    owner: str = "local"
    dry_run: bool = False
    #: Where :meth:`alert` writes (None: the alert is only logged, e.g. a context built by hand).
    alerts: AlertSink | None = None
    log: Any = field(default_factory=lambda: structlog.get_logger("kollega.robot"))
    #: Connectors and other shared resources a robot opened for this run (closed at the end).
    resources: dict[str, Any] = field(default_factory=dict)
    #: Writes refused because of dry-run, reported in the run summary.
    refused_writes: list[dict[str, str]] = field(default_factory=list)

    @property
    def actor(self) -> str:
        """The audit actor of this robot (``robot:ronney``)."""
        return f"robot:{self.robot}"

    @property
    def tenant_name(self) -> str:
        """The tenant's name from ``[[tenants]]``, or its code when the deployment does not name it."""
        for tenant in self.app_settings.tenants:
            if tenant.code == self.tenant:
                return tenant.name
        return self.tenant

    @property
    def timezone(self) -> ZoneInfo:
        """The tenant's local time zone: the deployment's ``timezone`` (validated when loaded)."""
        return ZoneInfo(self.app_settings.timezone or "Europe/Stockholm")

    def check_write(self, system: str, what: str) -> None:
        """Connectors call this before every external write: refused and reported in a dry run.

        Also the fence: refused with :class:`LeaseLost` when the worker no longer holds (or
        may no longer hold) the lease of the item or decision it works on.
        """
        if self.dry_run:
            self.refused_writes.append({"system": system, "what": what})
            self.log.info("write refused (dry run)", system=system, what=what)
            raise DryRunRefusal(f"dry run: write to {system} refused ({what})")
        guard = CURRENT_LEASE.get()
        if guard is not None:
            try:
                guard.check()
            except LeaseLost:
                self.log.warning("write refused: lease lost", system=system, what=what)
                raise

    @asynccontextmanager
    async def exclusive(self, key: str, *, wait_seconds: float | None = None) -> AsyncIterator[None]:
        """Hold the lock on a write's target (``payroll:<system>:<employee>:<period>``) while the block runs.

        Every worker and every run, of any municipality, shares these locks: around a
        check-before-write, the write and its read-back, they make the write happen once.
        The lease is renewed while the block runs; a holder that died frees the target
        after one lease. A target still busy after ``wait_seconds`` (default: a third of the
        item timeout) raises :class:`core.locks.TargetLocked`, retried with backoff.
        """
        from core.locks import exclusive

        if self.locks is None:
            from core.testing.memory.locks import MemoryLockStore
            from core.testing.memory.state import MemoryState

            self.locks = MemoryLockStore(MemoryState(self.clock))
        w = self.app_settings.worker
        async with exclusive(
            self.locks,
            key,
            owner=self.owner,
            lease_seconds=w.lock_lease_seconds,
            wait_seconds=w.item_timeout_seconds / 3 if wait_seconds is None else wait_seconds,
            log=self.log,
        ):
            yield

    def _state(self) -> RobotStateStore:
        if self.robot_state is None:
            from core.testing.memory.robot_state import MemoryRobotStateStore
            from core.testing.memory.state import MemoryState

            self.robot_state = MemoryRobotStateStore(MemoryState(self.clock))
        return self.robot_state

    def state_get(self, key: str) -> tuple[dict[str, Any], int] | None:
        """This robot's state for this tenant under ``key`` and its version, or None (kept across runs)."""
        return self._state().get(self.robot, self.tenant, key)

    def state_put(self, key: str, value: dict[str, Any], *, expected_version: int | None = None) -> int | None:
        """Keep ``value`` under ``key`` for this robot and tenant; the new version, or None on a conflict.

        ``expected_version`` is the version read with :meth:`state_get` (0: only if nothing is
        kept yet, i.e. write once): a concurrent change makes this return None, so read again.
        A dry run keeps nothing and answers as if it had.
        """
        if self.dry_run:
            self.log.info("state not kept (dry run)", key_length=len(key))
            return (expected_version or 0) + 1
        return self._state().put(self.robot, self.tenant, key, value, expected_version=expected_version)

    def record_access(self, *, subject: str, system: str, purpose: str, details: dict[str, Any] | None = None) -> int:
        """Write a data-access event: this robot read ``subject``'s data from ``system`` for ``purpose``."""
        return self.audit.data_access(
            actor=self.actor,
            tenant=self.tenant,
            subject=subject,
            system=system,
            purpose=purpose,
            details={"run_id": self.run_id, **(details or {})},
        )

    def record(
        self,
        action: str,
        *,
        subject: str | None = None,
        purpose: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Write an audit event as this robot (e.g. an external write)."""
        return self.audit.record(
            actor=self.actor,
            action=action,
            tenant=self.tenant,
            subject=subject,
            purpose=purpose,
            details={"run_id": self.run_id, **(details or {})},
        )

    @property
    def var_dir(self) -> Path:
        """The deployment's data folder (``var_dir``)."""
        return self.app_settings.var_dir

    def alert(self, key: str, message: str) -> bool:
        """Raise an operations alert once per ``key`` (per robot and tenant); True when it is new.

        The alert is shown on the dashboard and mailed to the tenant's ``ops_email``, like a
        failed run. ``message`` is for operations staff (Swedish), never personal data.
        """
        full_key = f"robot:{self.robot}:{self.tenant}:{key}"
        self.log.warning("operations alert", key=key)
        if self.alerts is None:
            return False
        return self.alerts.raise_alert(
            key=full_key, kind="robot", tenant=self.tenant, robot=self.robot, run_id=self.run_id, message=message
        )

    def save_artifact(
        self,
        *,
        work_item_id: int | None,
        kind: str,
        filename: str,
        content_type: str,
        data: bytes,
        sensitive: bool = True,
    ) -> int:
        """Attach a file (screenshot, snapshot, document) to a work item."""
        return self.artifacts.save(
            tenant=self.tenant,
            work_item_id=work_item_id,
            kind=kind,
            filename=filename,
            content_type=content_type,
            data=data,
            sensitive=sensitive,
        )


if TYPE_CHECKING:

    def _fulfils_the_robot_protocol(ctx: RunContext) -> RobotRunContext:
        # mypy checks here that this class offers robots everything core.api.RunContext promises.
        return ctx
