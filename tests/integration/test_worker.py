"""The worker process: executes runs the scheduler queued, and carries out decisions made during the day."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from core.engine import Engine
from core.registry import Registry
from core.review import ReviewQueue
from core.scheduler import Schedule, Scheduler
from core.settings import Settings
from core.storage.db import Database
from core.storage.models import ItemStatus, ReviewState, Run, RunStatus, WorkItem
from core.testing import ExampleRobot, FakeClock, make_settings
from core.worker import Worker


def _engine(db: Database, tmp_path: Path, clock: FakeClock) -> Engine:
    settings: Settings = make_settings(tmp_path, robots={"example": {"items": 9, "flaky_every": 0}})
    return Engine.from_database(db, settings, Registry(robots={"example": ExampleRobot}), clock=clock)


def _schedule() -> Schedule:
    return Schedule(name="nightly", robot="example", tenants=["*"], cron="30 1 * * *", window_end="06:00")


class TestWorker:
    """Workers pick up what the scheduler queued and what people decided."""

    def test_worker_runs_a_scheduled_slot_once(self, db: Database, tmp_path: Path) -> None:
        clock = FakeClock()
        engine = _engine(db, tmp_path, clock)
        scheduler = Scheduler(db, engine.settings, [_schedule()], clock, "sched-1")
        clock.set(clock.now().replace(hour=0, minute=31))  # 01:31 local time, inside the window
        (run_id,) = scheduler.fire(_schedule(), "2026-11-23T01:30")
        assert scheduler.fire(_schedule(), "2026-11-23T01:30") == []  # a second scheduler gets nothing

        asyncio.run(Worker(engine).serve(asyncio.Event(), once=True))

        run = engine.runs.get(run_id)
        assert run is not None and run.status == RunStatus.succeeded
        assert (run.collected, run.done, run.needs_review, run.failed_business) == (9, 5, 3, 1)

    def test_a_queued_run_whose_window_closed_is_recorded_as_missed(self, db: Database, tmp_path: Path) -> None:
        clock = FakeClock()
        engine = _engine(db, tmp_path, clock)
        scheduler = Scheduler(db, engine.settings, [_schedule()], clock, "sched-1")
        (run_id,) = scheduler.fire(_schedule(), "2026-11-23T01:30")
        clock.advance(timedelta(hours=8).total_seconds())  # nobody worked until after 06:00

        asyncio.run(Worker(engine).serve(asyncio.Event(), once=True))

        run = engine.runs.get(run_id)
        assert run is not None and run.status == RunStatus.missed
        with db.session() as s:
            assert s.scalars(select(WorkItem)).all() == []

    def test_decision_made_in_the_day_is_carried_out_by_the_worker(self, db: Database, tmp_path: Path) -> None:
        clock = FakeClock()
        engine = _engine(db, tmp_path, clock)
        asyncio.run(engine.run("example", "0000"))
        reviews = ReviewQueue(db, clock)
        decision = reviews.list(queue="example.review")[0]
        reviews.decide(decision.id, "approve", actor="user:anna")

        asyncio.run(Worker(engine).serve(asyncio.Event(), once=True))

        with db.session() as s:
            item = s.get(WorkItem, decision.work_item_id)
            assert item is not None and item.status == ItemStatus.done
            assert item.result is not None and item.result["decision"] == ReviewState.approved.value
            runs = s.scalars(select(Run)).all()
        assert len(runs) == 1  # carrying out a decision needs no new run


class TestArtifactRetention:
    """Screenshots hold personal data: they are deleted after artifact_retention_days."""

    def test_worker_deletes_expired_artifacts_and_keeps_fresh_ones(self, db: Database, tmp_path: Path) -> None:
        clock = FakeClock()
        engine = _engine(db, tmp_path, clock)
        old = engine.artifacts.save(
            tenant="0000", work_item_id=None, kind="screenshot", filename="a.png", content_type="image/png", data=b"old"
        )
        clock.advance(timedelta(days=engine.settings.artifact_retention_days, hours=1).total_seconds())
        fresh = engine.artifacts.save(
            tenant="0000",
            work_item_id=None,
            kind="screenshot",
            filename="b.png",
            content_type="image/png",
            data=b"fresh",
        )
        paths = {a.id: Path(a.path) for a in engine.artifacts.for_item(None)}  # type: ignore[arg-type]
        worker = Worker(engine)
        assert asyncio.run(worker.purge_artifacts_if_due()) == 1
        assert not paths[old].exists() and paths[fresh].exists()
        assert [a.id for a in engine.artifacts.for_item(None)] == [fresh]  # type: ignore[arg-type]
        assert asyncio.run(worker.purge_artifacts_if_due()) == 0  # at most once an hour
