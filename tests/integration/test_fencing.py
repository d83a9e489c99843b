"""Fencing and dead runs (issue 17, M1/L1/L2): what happens when a worker fails, stalls or is stopped.

- one store error in an item task ends the run failed with no task left running;
- a worker paused past its lease (SIGSTOP) writes nothing more once resumed;
- an in-process run whose process died is marked abandoned; a worker's run is not;
- SIGTERM finishes the current items, leaves the rest pending and records the run interrupted;
- decision callbacks are claimed one at a time under a lease covering their own work, and a
  callback whose worker died mid-way is not run again blindly for an unrepeatable robot.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from core.engine import INTERRUPTED, Engine
from core.queue import WorkQueue
from core.records import IN_PROCESS_OWNER
from core.registry import Registry
from core.review import ReviewQueue
from core.robot import Done, NewItem, Robot
from core.runs import SqlRunStore
from core.storage.db import Database
from core.storage.models import CallbackStatus, ItemStatus, ReviewItem, ReviewKind, Run, RunStatus, WorkItem
from core.testing import TEST_TENANT, ExampleRobot, ExampleWriterRobot, FakeClock, make_settings
from tests.helpers.procs import spawn

TENANT = TEST_TENANT.code


# -- M1: one failed task takes its siblings down -----------------------------------------------
class Counter(Robot):
    """Twenty quick items; remembers which it processed."""

    name = "fence_counter"
    display_name = "Räknaren"
    description = "Test robot."
    processed: list[str] = []

    async def collect(self, ctx: Any) -> AsyncIterator[NewItem]:
        for n in range(20):
            yield NewItem(reference=f"c-{n}", payload={})

    async def process(self, ctx: Any, item: Any) -> Done:
        await asyncio.sleep(0.05)
        type(self).processed.append(item.reference)
        return Done({})


class FailingQueue(WorkQueue):
    """The SQL queue, whose third completion fails as a lost database connection would."""

    completions = 0

    def complete(self, item: Any, outcome: Any, *, actor: str) -> int | None:
        type(self).completions += 1
        if type(self).completions == 3:
            raise OperationalError("UPDATE work_items …", {}, Exception("injected: server closed the connection"))
        return super().complete(item, outcome, actor=actor)

    def complete_many(self, finished: Any, *, actor: str) -> list[bool]:
        type(self).completions += 1  # a group commit is one write, however many outcomes it carries
        if type(self).completions == 3:
            raise OperationalError("UPDATE work_items …", {}, Exception("injected: server closed the connection"))
        return super().complete_many(finished, actor=actor)


async def test_a_store_error_ends_the_run_failed_with_no_task_left(db: Database, tmp_path: Path) -> None:
    Counter.processed, FailingQueue.completions = [], 0
    settings = make_settings(tmp_path)
    base = Engine.from_database(db, settings, Registry(robots={Counter.name: Counter}))
    engine = Engine(
        settings,
        base.registry,
        queue=FailingQueue(db),
        reviews=base.reviews,
        runs=base.runs,
        audit=base.auditor,
        artifacts=base.artifacts,
        db=db,
    )
    summary = await engine.run(Counter.name, TENANT)
    assert summary.status == RunStatus.failed
    # The database error is recorded by its class only: its text may carry personal data (M5).
    assert (summary.error or "").startswith("OperationalError: database error")
    alive = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert alive == []  # no item task runs behind the failed run's record
    seen = len(Counter.processed)
    await asyncio.sleep(0.5)
    assert len(Counter.processed) == seen < 20  # and none is processed afterwards
    with db.session() as s:
        run = s.get(Run, summary.run_id)
        assert run is not None and run.status == RunStatus.failed
        done = len(s.scalars(select(WorkItem).where(WorkItem.status == ItemStatus.done)).all())
    await asyncio.sleep(0.3)
    with db.session() as s:
        assert len(s.scalars(select(WorkItem).where(WorkItem.status == ItemStatus.done)).all()) == done < 20


# -- L2: a paused worker writes nothing after losing its lease ----------------------------------
def _config(tmp_path: Path, log: Path, **over: Any) -> str:
    config: dict[str, Any] = {
        "var_dir": str(tmp_path / "var"),
        "log": str(log),
        "items": 1,
        "steps": 60,
        "step_seconds": 0.1,
        "worker": {"concurrency": 1, "lease_seconds": 1.5, "item_timeout_seconds": 1, "poll_seconds": 0.2},
        "item_timeout_override": 60,
    }
    config.update(over)
    return json.dumps(config)


def _wait(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the worker exited early (rc={proc.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _lines(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


@pytest.mark.slow
def test_a_paused_worker_whose_lease_expired_writes_nothing_more(db: Database, tmp_path: Path) -> None:
    log = tmp_path / "writes.log"
    proc = spawn("fence_worker", ["run", db.url, _config(tmp_path, log)], tmp_path / "worker.out")
    try:
        _wait(lambda: len(_lines(log)) >= 4, 60, "the first writes", proc)
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        written = _lines(log)
        time.sleep(2.5)  # longer than the 1.5 s lease: another worker takes the item
        [taken] = WorkQueue(db).claim("fence_writer", TENANT, "thief", lease_seconds=60)
        proc.send_signal(signal.SIGCONT)
        time.sleep(2.0)  # the resumed worker had 20 steps of time to write more
        assert _lines(log) == written  # it wrote nothing more
        with db.session() as s:
            item = s.get(WorkItem, taken.id)
            assert item is not None
            assert (item.status, item.lease_owner, item.lease_token) == (
                ItemStatus.in_progress,
                "thief",
                taken.lease_token,
            )
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(30)


# -- dead runs: abandoned, never resumed by a worker ---------------------------------------------
@pytest.mark.slow
def test_a_killed_in_process_run_is_marked_abandoned(db: Database, tmp_path: Path) -> None:
    log = tmp_path / "writes.log"
    proc = spawn("fence_worker", ["run", db.url, _config(tmp_path, log)], tmp_path / "run.out")
    try:
        _wait(lambda: len(_lines(log)) >= 2, 60, "the first writes", proc)
    finally:
        proc.kill()
        proc.wait(30)
    runs = SqlRunStore(db)
    [run] = runs.recent()
    assert run.status == RunStatus.running and (run.lease_owner or "").startswith(IN_PROCESS_OWNER)
    assert runs.claim_queued("worker-b", 60) is None  # no worker resumes it, even once its lease ran out
    assert runs.mark_abandoned() == []  # its heartbeat is younger than the lease yet
    time.sleep(1.6)
    assert runs.claim_queued("worker-b", 60) is None
    assert runs.mark_abandoned() == [run.id]
    after = runs.get(run.id)
    assert after is not None and after.status == RunStatus.abandoned and after.lease_owner is None


def test_only_in_process_runs_are_abandoned_and_only_by_their_owner(db: Database) -> None:
    clock = FakeClock()
    runs = SqlRunStore(db, clock)
    runs.ensure_tenant(TENANT, "Test")
    in_process = runs.create(robot="example", tenant=TENANT, trigger="manual")
    queued = runs.create(robot="example", tenant=TENANT, trigger="api")
    assert in_process is not None and queued is not None
    runs.start(in_process, IN_PROCESS_OWNER + "host:1:a", 60)
    claimed = runs.claim_queued("worker-a", 60)
    assert claimed is not None and claimed.id == queued
    runs.start(queued, "worker-a", 60)
    clock.advance(61)
    assert runs.mark_abandoned() == [in_process]
    # The worker's run is resumed by another worker; the first may then neither beat nor finish it.
    resumed = runs.claim_queued("worker-b", 60)
    assert resumed is not None and resumed.id == queued
    from core.errors import LeaseLost

    with pytest.raises(LeaseLost):
        runs.heartbeat(queued, 60, {}, owner="worker-a")
    with pytest.raises(LeaseLost):
        runs.finish(queued, RunStatus.succeeded, {}, owner="worker-a")
    runs.heartbeat(queued, 60, {}, owner="worker-b")
    runs.finish(queued, RunStatus.succeeded, {}, owner="worker-b")
    assert [r.status for r in sorted(runs.recent(), key=lambda r: r.id)] == [RunStatus.abandoned, RunStatus.succeeded]


def test_a_run_taken_over_from_a_dead_worker_counts_the_whole_night(db: Database, tmp_path: Path) -> None:
    """The run's record adds up to every item of the night, not only those done after the takeover."""
    clock = FakeClock()
    Counter.processed = []
    engine = Engine.from_database(db, make_settings(tmp_path), Registry(robots={Counter.name: Counter}), clock=clock)
    runs, queue = SqlRunStore(db, clock), WorkQueue(db, clock)
    runs.ensure_tenant(TENANT, "Test")
    run_id = runs.create(robot=Counter.name, tenant=TENANT, trigger="schedule")
    # Worker A took the run, collected its 20 items, finished 8 and died.
    claimed = runs.claim_queued("worker-a", 60)
    assert claimed is not None and claimed.id == run_id
    runs.start(run_id, "worker-a", 60)
    queue.enqueue(Counter.name, TENANT, [NewItem(reference=f"c-{n}", payload={}) for n in range(20)], run_id=run_id)
    finished = queue.claim(Counter.name, TENANT, "worker-a", limit=8, lease_seconds=60)
    assert queue.complete_many([(item, Done({})) for item in finished], actor="worker-a") == [True] * 8
    runs.heartbeat(run_id, 60, {"collected": 20, "done": 8}, owner="worker-a")
    clock.advance(61)
    resumed = runs.claim_queued(engine.owner, 60)
    assert resumed is not None and resumed.id == run_id

    summary = asyncio.run(engine.run(Counter.name, TENANT, run_id=run_id, trigger="schedule"))

    assert sorted(Counter.processed) == sorted({f"c-{n}" for n in range(20)} - {i.reference for i in finished})
    assert (summary.status, summary.counts["collected"], summary.counts["done"]) == (RunStatus.succeeded, 20, 20)
    record = runs.get(run_id)
    assert record is not None and (record.status, record.collected, record.done) == (RunStatus.succeeded, 20, 20)


# -- SIGTERM: finish the current item, leave the rest, record interrupted -----------------------
def _assert_interrupted(db: Database, log: Path) -> None:
    with db.session() as s:
        [run] = s.scalars(select(Run)).all()
        items = s.scalars(select(WorkItem)).all()
    assert run.status == RunStatus.interrupted and run.error == INTERRUPTED and run.lease_owner is None
    lines = _lines(log)
    started = {ln.split()[1] for ln in lines if ln.endswith(" start")}
    ended = {ln.split()[1] for ln in lines if ln.endswith(" end")}
    assert started and started == ended  # every item begun was finished
    by_status = {i.reference: i for i in items}
    assert {r for r, i in by_status.items() if i.status == ItemStatus.done} == ended
    rest = [i for i in items if i.reference not in ended]
    assert rest and all(i.status == ItemStatus.pending and i.lease_owner is None for i in rest)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["run", "worker"])
def test_sigterm_finishes_the_current_item_and_records_the_run_interrupted(
    db: Database, tmp_path: Path, mode: str
) -> None:
    log = tmp_path / "writes.log"
    config = _config(tmp_path, log, items=8, steps=10, step_seconds=0.1)
    config = config.replace('"concurrency": 1', '"concurrency": 2').replace(
        '"lease_seconds": 1.5', '"lease_seconds": 30'
    )
    if mode == "worker":
        SqlRunStore(db).ensure_tenant(TENANT, "Test")
        SqlRunStore(db).create(robot="fence_writer", tenant=TENANT, trigger="api")
    out = tmp_path / "proc.out"
    proc = spawn("fence_worker", [mode, db.url, config], out)
    try:
        _wait(lambda: len(_lines(log)) >= 3, 60, "the first writes", proc)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert rc in (0, 1), out.read_text()
    _assert_interrupted(db, log)


# -- L1: decision callbacks ----------------------------------------------------------------------
def _decided(db: Database, tmp_path: Path, robot: type[Robot], clock: FakeClock, n: int) -> Engine:
    settings = make_settings(
        tmp_path,
        robots={robot.name: {"items": n * 3, "review_every": 3, "business_error_every": 0, "flaky_every": 0}},
    )
    engine = Engine.from_database(db, settings, Registry(robots={robot.name: robot}), clock=clock)
    asyncio.run(engine.run(robot.name, TENANT))
    reviews = ReviewQueue(db, clock)
    with db.session() as s:
        ids = s.scalars(select(ReviewItem.id).where(ReviewItem.kind == ReviewKind.decision)).all()
    for rid in ids:
        reviews.decide(rid, "approve", actor="user:anna")
    return engine


def test_callbacks_are_claimed_one_at_a_time_under_a_lease_covering_their_work(db: Database, tmp_path: Path) -> None:
    clock = FakeClock()
    seen: list[tuple[int, int, float]] = []

    class Watching(ExampleRobot):
        name = "fence_watch"

        async def on_decision(self, ctx: Any, review: Any) -> None:
            with db.session() as s:
                rows = s.scalars(select(ReviewItem).where(ReviewItem.callback_status == CallbackStatus.pending)).all()
                claimed = [r for r in rows if r.callback_token is not None]
                mine = next(r for r in rows if r.id == review.id)
            lease_left = (mine.callback_next_at - clock.now()).total_seconds()
            seen.append((review.id, len(claimed), lease_left))

    engine = _decided(db, tmp_path, Watching, clock, 3)
    asyncio.run(engine.run(Watching.name, TENANT))
    assert len(seen) == 3
    timeout = engine.settings.worker.item_timeout_seconds
    for _rid, claimed, lease_left in seen:
        assert claimed == 1  # only the callback being carried out is leased
        assert lease_left > timeout  # its lease outlasts the time it is allowed


@pytest.mark.parametrize("repeatable", [True, False])
def test_a_callback_whose_worker_died_is_not_rerun_blindly_for_an_unrepeatable_robot(
    db: Database, tmp_path: Path, repeatable: bool
) -> None:
    clock = FakeClock()
    calls: list[int] = []
    base = ExampleRobot if repeatable else ExampleWriterRobot

    class Deciding(base):  # type: ignore[valid-type, misc]
        name = "fence_decide"

        async def on_decision(self, ctx: Any, review: Any) -> None:
            calls.append(review.id)

    engine = _decided(db, tmp_path, Deciding, clock, 1)
    reviews = ReviewQueue(db, clock)
    [dead] = reviews.claim_callbacks(Deciding.name, TENANT, limit=1, lease_seconds=60)  # a worker that then died
    assert dead.callback_reclaimed is False
    clock.advance(61)
    asyncio.run(engine.run(Deciding.name, TENANT))
    with db.session() as s:
        row = s.get(ReviewItem, dead.id)
        problems = s.scalars(select(ReviewItem).where(ReviewItem.kind == ReviewKind.exception)).all()
    assert row is not None
    if repeatable:
        assert calls == [dead.id] and row.callback_status == CallbackStatus.done and problems == []
    else:
        assert calls == []  # not carried out a second time behind a person's back
        assert row.callback_status == CallbackStatus.failed
        assert [p.title for p in problems] == ["Beslutet kunde inte verkställas"]
