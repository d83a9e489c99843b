"""Public test kit for robot authors: a temporary database, a fake clock, run_robot().

Used by Kollega's own tests and by third-party robot packages::

    from core.testing import run_robot, temporary_database

    def test_my_robot(tmp_path):
        with temporary_database(tmp_path) as db:
            result = run_robot(MyRobot, db=db, settings={"batch": 3})
            assert result.summary.counts["needs_review"] == 3

    async def test_my_robot_async(tmp_path):  # inside a running event loop
        with temporary_database(tmp_path) as db:
            result = await run_robot_async(MyRobot, db=db)

It also ships :class:`ExampleRobot`, a small robot that exercises every outcome; the demo
runs it until the real robots exist. The rest of the kit, one module per concern:

- :mod:`core.testing.context`: :class:`RecordingContext` (a run context that records what a
  robot or connector did) and :func:`run_context` (a real one on a test database); both are
  importable from here too.
- :mod:`core.testing.server`: :func:`~core.testing.server.serve_app`, any ASGI app over real
  HTTP on a free port.
- :mod:`core.testing.web`: the web app with test users, a logged-in client, CSRF tokens.
- :mod:`core.testing.browser`: Chromium launched as the browser connector launches it.

The sandbox's own kit is :mod:`sandbox.testing` (core does not import the sandbox).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, text

from core.effects import EffectFacts, EffectsDeclaration, Measure, Measured, OutcomeKind, share
from core.engine import Engine, RunSummary
from core.errors import ApplicationError, BusinessError
from core.registry import Registry
from core.robot import Done, NeedsReview, NewItem, Robot
from core.settings import Settings, TenantSettings, WorkerSettings
from core.storage.db import Database
from core.storage.models import AuditEvent
from core.testing.context import RecordingContext, run_context

__all__ = [
    "TEST_TENANT",
    "ExampleRobot",
    "ExampleSettings",
    "ExampleWriterRobot",
    "FakeClock",
    "RecordingContext",
    "RobotResult",
    "make_settings",
    "postgres_url",
    "run_context",
    "run_robot",
    "run_robot_async",
    "temporary_database",
]

TEST_TENANT = TenantSettings(code="0000", name="Testkommun", ops_email="drift@test.example")


class FakeClock:
    """A clock that only moves when told to (sleep() advances it instantly)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 23, 1, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The fake current time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (timezone-aware)."""
        self._now = when

    async def sleep(self, seconds: float) -> None:
        """Advance instead of waiting, yielding to the loop once."""
        self.advance(max(seconds, 0))
        await asyncio.sleep(0)


def postgres_url() -> str | None:
    """The PostgreSQL URL for tests (KOLLEGA_TEST_POSTGRES_URL), or None when not configured."""
    return os.environ.get("KOLLEGA_TEST_POSTGRES_URL") or None


@contextmanager
def temporary_database(tmp_path: Path, url: str | None = None) -> Iterator[Database]:
    """A migrated, empty database: a SQLite file under ``tmp_path``, or a fresh schema in PostgreSQL."""
    schema = None
    if url is None:
        db = Database(f"sqlite:///{tmp_path / 'kollega-test.db'}")
    else:
        schema = f"kt_{uuid.uuid4().hex[:12]}"
        admin = Database(url)
        with admin.engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        sep = "&" if "?" in url else "?"
        db = Database(f"{url}{sep}options=-csearch_path%3D{schema}")
    try:
        db.upgrade()
        yield db
    finally:
        db.dispose()
        if schema is not None:
            admin = Database(url)  # type: ignore[arg-type]
            with admin.engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for tests: one test tenant, fast retries, files under ``tmp_path``."""
    base: dict[str, Any] = {
        "var_dir": tmp_path / "var",
        "tenants": [TEST_TENANT],
        "worker": WorkerSettings(
            concurrency=4,
            lease_seconds=60,
            item_timeout_seconds=30,
            max_attempts=3,
            backoff_base_seconds=1,
            backoff_cap_seconds=10,
            retry_wait_seconds=60,
        ),
    }
    base.update(overrides)
    return Settings(**base)


@dataclass
class RobotResult:
    """What run_robot() observed."""

    summary: RunSummary
    audit_events: list[AuditEvent] = field(default_factory=list)


async def run_robot_async(
    robot: type[Robot],
    *,
    db: Database,
    tmp_path: Path | None = None,
    settings: dict[str, Any] | None = None,
    tenant: str = TEST_TENANT.code,
    clock: Any = None,
    dry_run: bool = False,
    limit: int | None = None,
    app_settings: Settings | None = None,
) -> RobotResult:
    """Run one robot once against ``db`` on the running event loop; returns the summary and the audit events written.

    ``settings`` are the robot's own (``[robots.<name>]``); ``app_settings`` replaces the
    whole test configuration instead. Files go under ``tmp_path`` (default: beside a SQLite
    database).
    """
    root = tmp_path or Path(db.url.removeprefix("sqlite:///")).parent
    app = app_settings or make_settings(root, robots={robot.name: settings or {}})
    engine = Engine.from_database(db, app, Registry(robots={robot.name: robot}), clock=clock or FakeClock())
    with db.session() as s:
        before = s.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) or 0
    summary = await engine.run(robot.name, tenant, dry_run=dry_run, limit=limit)
    with db.session() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.seq > before).order_by(AuditEvent.seq)).all())
    return RobotResult(summary, events)


def run_robot(
    robot: type[Robot],
    *,
    db: Database,
    tmp_path: Path | None = None,
    settings: dict[str, Any] | None = None,
    tenant: str = TEST_TENANT.code,
    clock: Any = None,
    dry_run: bool = False,
    limit: int | None = None,
    app_settings: Settings | None = None,
) -> RobotResult:
    """:func:`run_robot_async` from synchronous code, on an event loop of its own.

    Inside a running event loop (an ``async def`` test) await :func:`run_robot_async` instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop running: the usual case
    else:
        raise RuntimeError("run_robot() cannot start a loop inside a running one: await run_robot_async() instead")
    return asyncio.run(
        run_robot_async(
            robot,
            db=db,
            tmp_path=tmp_path,
            settings=settings,
            tenant=tenant,
            clock=clock,
            dry_run=dry_run,
            limit=limit,
            app_settings=app_settings,
        )
    )


class ExampleSettings(BaseModel):
    """Settings of the example robot."""

    model_config = ConfigDict(extra="forbid")

    items: int = Field(default=24, ge=0, description="How many cases the example robot finds each night.")
    batch: str = Field(
        default="demo", description="Batch name; references are '<batch>-<n>' so a rerun finds nothing new."
    )
    review_every: int = Field(default=3, ge=0, description="Every n-th case needs a person's decision (0 = none).")
    business_error_every: int = Field(default=7, ge=0, description="Every n-th case has bad data (0 = none).")
    flaky_every: int = Field(
        default=5, ge=0, description="Every n-th case fails once with a transient error (0 = none)."
    )
    delay_seconds: float = Field(default=0.0, ge=0, description="Simulated work per case.")


class ExampleRobot(Robot):
    """A small robot exercising every outcome: done, review, business error, transient error."""

    name = "example"
    display_name = "Exempelroboten"
    description = "Prepares made-up cases to show how Kollega works (replaced by the real robots)."
    settings_model = ExampleSettings
    effects = EffectsDeclaration(
        why="Visa hur en robot redovisar sin effekt.",
        value="Påhittade ärenden blir klara utan att någon behöver röra dem.",
        when="Från första natten.",
        how_measured="Antal ärenden roboten gjorde klara själv och andelen som behövde en person.",
        measures=(
            Measure("handled", "Klara utan handläggare", "st", "Antal ärenden roboten gjorde klara själv.", decimals=0),
            Measure(
                "review_share",
                "Andel som behövde en person",
                "%",
                "Andel av månadens ärenden som lämnades till en person att besluta om.",
                better="lower",
            ),
        ),
        outcomes=(OutcomeKind("case_handled", "Ärende klart utan handläggare", 6.0, "exempelvärde"),),
    )

    @classmethod
    def measure_effects(cls, facts: EffectFacts) -> Measured:
        """Items done by the robot alone, and the share handed to a person."""
        handled = sum(1 for i in facts.items if i.status == "done" and (i.result or {}).get("handled"))
        reviewed = sum(1 for r in facts.reviews if r.queue == "example.review" and r.created_in_month)
        return Measured(
            values={"handled": float(handled), "review_share": share(reviewed, len(facts.items))},
            outcomes={"case_handled": handled},
            bases={"handled": handled, "review_share": len(facts.items)},
        )

    async def collect(self, ctx: Any) -> AsyncIterator[NewItem]:
        """Yield ``items`` made-up cases."""
        s: ExampleSettings = self.settings  # type: ignore[assignment]
        for n in range(1, s.items + 1):
            yield NewItem(reference=f"{s.batch}-{n}", payload={"n": n, "amount": 1000 + 37 * n})

    async def process(self, ctx: Any, item: Any) -> Done | NeedsReview:
        """Decide the outcome from the case number."""
        s: ExampleSettings = self.settings  # type: ignore[assignment]
        n = int(item.payload["n"])
        if s.delay_seconds:
            await asyncio.sleep(s.delay_seconds)
        if s.flaky_every and n % s.flaky_every == 0 and item.attempts == 1:
            raise ApplicationError("the example system answered 503; trying again later")
        if s.business_error_every and n % s.business_error_every == 0:
            raise BusinessError(f"Ärende {item.reference}: uppgift om belopp saknas")
        if s.review_every and n % s.review_every == 0 and item.return_comment is None:
            return NeedsReview(
                queue="example.review",
                title=f"Ärende {item.reference}",
                summary=f"Föreslaget belopp {item.payload['amount']} kr",
                material={"amount": item.payload["amount"], "reference": item.reference},
            )
        return Done({"handled": item.reference})

    async def on_decision(self, ctx: Any, review: Any) -> None:
        """Record that the decision was carried out."""
        ctx.record("example.decision_carried_out", details={"review_id": review.id, "state": review.state})


class ExampleWriterRobot(ExampleRobot):
    """The example robot declaring writes that must not be repeated blindly."""

    name = "example_writer"
    display_name = "Exempelskrivaren"
    side_effects_repeatable = False
