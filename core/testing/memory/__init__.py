"""In-memory stores: every port of core/interfaces.py without a database, for fast tests.

They keep the SQL stores' contract (tests/contract/ runs one suite over both): the same
transitions (core/transitions.py), lease checks, review states and audit events, with a
hash-chained audit log. One lock serialises every change, as a transaction would::

    from core.testing.memory import MemoryStores

    stores = MemoryStores(FakeClock())
    engine = stores.engine(settings, Registry(robots={"mine": MyRobot}))
    summary = asyncio.run(engine.run("mine", "0000"))

Not for production: nothing survives the process, and one process is all it serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.clock import Clock, SystemClock
from core.testing.memory.items import MemoryWorkItemStore
from core.testing.memory.locks import MemoryLockStore
from core.testing.memory.others import MemoryAlertSink, MemoryArtifactStore, MemoryAuditSink, MemoryRunStore
from core.testing.memory.reviews import MemoryReviewStore
from core.testing.memory.robot_state import MemoryRobotStateStore
from core.testing.memory.state import MemoryState

if TYPE_CHECKING:
    from core.engine import Engine
    from core.registry import Registry
    from core.settings import Settings

__all__ = [
    "MemoryAlertSink",
    "MemoryArtifactStore",
    "MemoryAuditSink",
    "MemoryLockStore",
    "MemoryReviewStore",
    "MemoryRobotStateStore",
    "MemoryRunStore",
    "MemoryState",
    "MemoryStores",
    "MemoryWorkItemStore",
]


class MemoryStores:
    """Every store in memory on one shared state, and an engine over them."""

    def __init__(self, clock: Clock | None = None, *, artifact_retention_days: int = 30) -> None:
        self.clock: Clock = clock or SystemClock()
        self.state = MemoryState(self.clock)
        self.queue = MemoryWorkItemStore(self.state)
        self.reviews = MemoryReviewStore(self.state)
        self.runs = MemoryRunStore(self.state)
        self.audit = MemoryAuditSink(self.state)
        self.artifacts = MemoryArtifactStore(self.state, artifact_retention_days)
        self.alerts = MemoryAlertSink(self.state)
        self.locks = MemoryLockStore(self.state)
        self.robot_state = MemoryRobotStateStore(self.state)

    def engine(self, settings: Settings, registry: Registry, *, owner: str | None = None) -> Engine:
        """An :class:`~core.engine.Engine` over these stores."""
        from core.engine import Engine

        return Engine(
            settings,
            registry,
            queue=self.queue,
            reviews=self.reviews,
            runs=self.runs,
            audit=self.audit,
            artifacts=self.artifacts,
            alerts=self.alerts,
            locks=self.locks,
            robot_state=self.robot_state,
            clock=self.clock,
            owner=owner,
        )
