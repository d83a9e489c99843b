"""Run contexts for tests: a recording stand-in for unit tests, a real RunContext for integration tests.

Used by Kollega's connector tests and by robot authors who test their own use of a
connector::

    ctx = RecordingContext()            # unit tests: records writes, accesses, artifacts
    ctx = run_context(db, tmp_path)     # integration tests: a real RunContext (audit, artifacts)

Both are importable from :mod:`core.testing` too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.context import RunContext
from core.errors import DryRunRefusal


@dataclass
class RecordingContext:
    """A stand-in for RunContext in unit tests: records refused writes, accesses, audit events and artifacts."""

    tenant: str = "0000"
    dry_run: bool = False
    robot: str = "test"
    run_id: int | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    refused_writes: list[dict[str, str]] = field(default_factory=list)
    writes_checked: list[dict[str, str]] = field(default_factory=list)
    accesses: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    app_settings: Any = None
    #: The target keys locked with :meth:`exclusive`, in order.
    locked: list[str] = field(default_factory=list)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict, repr=False)

    @asynccontextmanager
    async def exclusive(self, key: str, *, wait_seconds: float | None = None) -> AsyncIterator[None]:
        """Hold ``key`` within this context (one holder at a time) and record it."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            self.locked.append(key)
            yield

    def check_write(self, system: str, what: str) -> None:
        """Record the write; refuse it in a dry run like RunContext does."""
        self.writes_checked.append({"system": system, "what": what})
        if self.dry_run:
            self.refused_writes.append({"system": system, "what": what})
            raise DryRunRefusal(f"dry run: write to {system} refused ({what})")

    def record_access(self, *, subject: str, system: str, purpose: str, details: dict[str, Any] | None = None) -> int:
        """Record a data access; returns its position."""
        self.accesses.append({"subject": subject, "system": system, "purpose": purpose, "details": details or {}})
        return len(self.accesses)

    def record(
        self,
        action: str,
        *,
        subject: str | None = None,
        purpose: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Record an audit event; returns its position."""
        self.events.append({"action": action, "subject": subject, "purpose": purpose, "details": details or {}})
        return len(self.events)

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
        """Keep the artifact in memory; returns its position."""
        self.artifacts.append(
            {
                "work_item_id": work_item_id,
                "kind": kind,
                "filename": filename,
                "content_type": content_type,
                "data": data,
                "sensitive": sensitive,
            }
        )
        return len(self.artifacts)


def run_context(
    db: Any,
    tmp_path: Path,
    *,
    dry_run: bool = False,
    connectors: dict[str, dict[str, Any]] | None = None,
    clock: Any = None,
    tenant: str | None = None,
) -> RunContext:
    """A real RunContext (audit log, artifact store) on ``db`` for the test tenant, as the engine builds it."""
    # Imported here: core.testing imports this module while it is itself being loaded.
    from core.engine import Engine
    from core.registry import Registry
    from core.testing import TEST_TENANT, ExampleRobot, FakeClock, make_settings

    settings = make_settings(tmp_path, connectors=connectors or {})
    engine = Engine.from_database(
        db, settings, Registry(robots={ExampleRobot.name: ExampleRobot}), clock=clock or FakeClock()
    )
    return engine.context(ExampleRobot(), tenant or TEST_TENANT.code, None, dry_run)
