"""Re-checking uncertain items: the robot's ``recheck`` settles what it finds done, without a person.

An item whose worker died mid-write is ``uncertain`` with an open review of kind uncertain.
At the start of each run the engine leases such items and asks the robot to re-check them
(reading only): Done settles the item and closes the review as the robot (state
``resolved``, audited); None or an error leaves both to the person. Runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from core import audit
from core.errors import AlreadyDecided, ApplicationError, LeaseLost
from core.queue import WorkQueue
from core.review import ReviewQueue
from core.robot import Done, NewItem, Robot
from core.runs import SqlRunStore
from core.settings import Settings, WorkerSettings
from core.storage.db import Database
from core.storage.models import (
    AuditEvent,
    CallbackStatus,
    ItemStatus,
    ReviewItem,
    ReviewKind,
    ReviewState,
    RunStatus,
    WorkItem,
)
from core.testing import FakeClock, make_settings, run_robot

TENANT = "0000"


class Ledger(Robot):
    """Writes each case into an external 'ledger' and may die between the write and its check.

    ``recheck`` reads the ledger: written → Done; ``unsure`` references → None; ``broken``
    references → an error.
    """

    name = "ledger"
    display_name = "Ledger"
    side_effects_repeatable = False
    cases: ClassVar[int] = 2
    written: ClassVar[set[str]] = set()
    die_after_write: ClassVar[bool] = True
    unsure: ClassVar[set[str]] = set()
    broken: ClassVar[set[str]] = set()
    processed: ClassVar[list[str]] = []
    rechecked: ClassVar[list[str]] = []

    def collect(self, ctx: Any) -> list[NewItem]:
        """c-1 … c-n."""
        return [NewItem(reference=f"c-{n}", payload={"n": n}) for n in range(1, self.cases + 1)]

    async def process(self, ctx: Any, item: Any) -> Done:
        """Write, then (when told to) hang past the item timeout, like a worker dying mid-item."""
        type(self).processed.append(item.reference)
        type(self).written.add(item.reference)
        if self.die_after_write:
            await asyncio.sleep(5)
        return Done({"written": True})

    async def recheck(self, ctx: Any, item: Any) -> Done | None:
        """Read the ledger."""
        type(self).rechecked.append(item.reference)
        if item.reference in self.broken:
            raise ApplicationError("the ledger does not answer")
        if item.reference in self.unsure or item.reference not in self.written:
            return None
        return Done({"outcome": "already_written"})


class NoRecheck(Ledger):
    """The same writer without a re-check (the base class's default)."""

    name = "no_recheck"
    recheck = Robot.recheck  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def _fresh_ledger() -> None:
    for cls in (Ledger, NoRecheck):
        cls.written, cls.unsure, cls.broken, cls.processed, cls.rechecked = set(), set(), set(), [], []
        cls.die_after_write = True


def settings(tmp_path: Path) -> Settings:
    """Short item timeout (the 'death'), short lease."""
    worker = WorkerSettings(
        concurrency=2,
        lease_seconds=5,
        item_timeout_seconds=0.2,
        max_attempts=3,
        backoff_base_seconds=1,
        backoff_cap_seconds=10,
        retry_wait_seconds=0,
    )
    return make_settings(tmp_path, worker=worker)


def items(db: Database, robot: str = "ledger") -> dict[str, WorkItem]:
    """Work items by reference."""
    with db.session() as s:
        return {w.reference: w for w in s.scalars(select(WorkItem).where(WorkItem.robot == robot)).all()}


def uncertain_reviews(db: Database) -> dict[int, ReviewItem]:
    """Uncertain review items by work item id."""
    with db.session() as s:
        rows = s.scalars(select(ReviewItem).where(ReviewItem.kind == ReviewKind.uncertain)).all()
        return {r.work_item_id: r for r in rows if r.work_item_id is not None}


def events(db: Database, action: str) -> list[AuditEvent]:
    """Audit events of one action, in chain order."""
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).all())


def make_uncertain(db: Database, tmp_path: Path, clock: FakeClock, robot: type[Ledger] = Ledger) -> None:
    """A first run whose items all time out after their write: both become uncertain."""
    first = run_robot(robot, db=db, clock=clock, app_settings=settings(tmp_path)).summary
    assert first.counts["uncertain"] == robot.cases and first.status == RunStatus.attention
    assert {i.status for i in items(db, robot.name).values()} == {ItemStatus.uncertain}
    robot.die_after_write = False


class TestTheNextRunSettlesWhatItFindsDone:
    """Done from recheck: item done (rechecked), review resolved by the robot, nothing written again."""

    def test_found_written_settles_item_and_closes_review(self, db: Database, tmp_path: Path, clock: FakeClock) -> None:
        make_uncertain(db, tmp_path, clock)
        processed_before = list(Ledger.processed)

        second = run_robot(Ledger, db=db, clock=clock, app_settings=settings(tmp_path)).summary
        assert second.counts["rechecked"] == 2 and second.counts["done"] == 0
        assert second.status == RunStatus.succeeded
        assert Ledger.processed == processed_before, "a re-check never processes (writes) again"
        assert sorted(Ledger.rechecked) == ["c-1", "c-2"]
        found = items(db)
        reviews = uncertain_reviews(db)
        for item in found.values():
            assert item.status == ItemStatus.done and item.lease_token is None
            assert item.result == {"outcome": "already_written", "rechecked": True}
            rv = reviews[item.id]
            assert (rv.state, rv.decided_by, rv.callback_status) == (
                ReviewState.resolved,
                "robot:ledger",
                CallbackStatus.none,
            )
            assert rv.decided_at is not None
        resolved = events(db, "review.resolved")
        assert [e.actor for e in resolved] == ["robot:ledger"] * 2
        assert {e.details["review_id"] for e in resolved} == {r.id for r in reviews.values()}
        settled = events(db, "item.rechecked")
        assert all(e.details["settled"] is True for e in settled) and len(settled) == 2
        with db.session() as s:
            assert audit.verify(s).ok

        third = run_robot(Ledger, db=db, clock=clock, app_settings=settings(tmp_path)).summary
        assert third.counts["rechecked"] == 0 and len(Ledger.rechecked) == 2, "settled items are not offered again"

    def test_the_run_that_reaps_a_dead_workers_item_rechecks_it_at_once(
        self, db: Database, tmp_path: Path, clock: FakeClock
    ) -> None:
        SqlRunStore(db, clock).ensure_tenant(TENANT, "Testkommun")
        queue = WorkQueue(db, clock)
        queue.enqueue("ledger", TENANT, [NewItem("c-1"), NewItem("c-2")])
        queue.claim("ledger", TENANT, "dead-worker", limit=1, lease_seconds=5)  # c-1: the worker dies
        Ledger.written.add("c-1")
        Ledger.die_after_write = False
        clock.advance(10)

        summary = run_robot(Ledger, db=db, clock=clock, app_settings=settings(tmp_path)).summary
        assert (summary.counts["uncertain"], summary.counts["rechecked"], summary.counts["done"]) == (1, 1, 1)
        assert summary.status == RunStatus.succeeded, "nothing is left for a person"
        assert {r: i.status for r, i in items(db).items()} == {"c-1": ItemStatus.done, "c-2": ItemStatus.done}
        assert Ledger.processed == ["c-2"]


class TestWhatTheRobotCannotConfirmStaysWithThePerson:
    """None, an error, a decided review, or no recheck at all: item uncertain, review untouched."""

    def test_none_or_an_error_leaves_item_uncertain_and_review_open(
        self, db: Database, tmp_path: Path, clock: FakeClock
    ) -> None:
        make_uncertain(db, tmp_path, clock)
        Ledger.unsure, Ledger.broken = {"c-1"}, {"c-2"}

        summary = run_robot(Ledger, db=db, clock=clock, app_settings=settings(tmp_path)).summary
        assert summary.counts["rechecked"] == 0
        found = items(db)
        reviews = uncertain_reviews(db)
        for item in found.values():
            assert item.status == ItemStatus.uncertain and item.lease_token is None
            assert reviews[item.id].state == ReviewState.open and reviews[item.id].decided_by is None
        reasons = sorted(e.details["reason"] for e in events(db, "item.rechecked"))
        assert reasons == ["error:application", "inconclusive"]
        assert not events(db, "review.resolved")

        Ledger.unsure, Ledger.broken = set(), set()  # offered again on the next run, and now settled
        again = run_robot(Ledger, db=db, clock=clock, app_settings=settings(tmp_path)).summary
        assert again.counts["rechecked"] == 2
        assert {i.status for i in items(db).values()} == {ItemStatus.done}

    def test_an_item_a_person_decided_on_is_not_rechecked(self, db: Database, tmp_path: Path, clock: FakeClock) -> None:
        make_uncertain(db, tmp_path, clock)
        c1 = items(db)["c-1"]
        ReviewQueue(db, clock).decide(
            uncertain_reviews(db)[c1.id].id, "reject", actor="user:anna", comment="Jag kontrollerar själv"
        )

        run_robot(Ledger, db=db, clock=clock, app_settings=settings(tmp_path))
        assert Ledger.rechecked == ["c-2"]
        assert items(db)["c-1"].status == ItemStatus.uncertain
        rv = uncertain_reviews(db)[c1.id]
        assert (rv.state, rv.decided_by) == (ReviewState.rejected, "user:anna")

    def test_a_robot_without_recheck_leaves_its_items_alone(
        self, db: Database, tmp_path: Path, clock: FakeClock
    ) -> None:
        make_uncertain(db, tmp_path, clock, NoRecheck)
        summary = run_robot(NoRecheck, db=db, clock=clock, app_settings=settings(tmp_path)).summary
        assert summary.counts["rechecked"] == 0
        assert {i.status for i in items(db, "no_recheck").values()} == {ItemStatus.uncertain}
        assert not events(db, "item.rechecked")
        assert {r.state for r in uncertain_reviews(db).values()} == {ReviewState.open}


class TestLeases:
    """Two workers never re-check one item at once; a person's decision wins over a late re-check."""

    def test_claims_are_exclusive_until_the_lease_runs_out(
        self, db: Database, tmp_path: Path, clock: FakeClock
    ) -> None:
        make_uncertain(db, tmp_path, clock)
        queue = WorkQueue(db, clock)
        first = queue.claim_uncertain("ledger", TENANT, "w1", limit=10, lease_seconds=60)
        assert len(first) == 2 and all(v.status == "uncertain" and v.lease_token for v in first)
        assert queue.claim_uncertain("ledger", TENANT, "w2", limit=10) == []
        assert queue.claim("ledger", TENANT, "w2", limit=10) == [], "never claimed for processing"
        clock.advance(61)
        second = queue.claim_uncertain("ledger", TENANT, "w2", limit=10, exclude={first[1].id})
        assert [v.id for v in second] == [first[0].id]

        with pytest.raises(LeaseLost):  # w1's lease is gone
            queue.settle_uncertain(first[0], Done({"x": 1}), actor="robot:ledger")
        stale = items(db)["c-1"]
        assert stale.status == ItemStatus.uncertain
        assert uncertain_reviews(db)[stale.id].state == ReviewState.open, "the failed settle changed nothing"

        ReviewQueue(db, clock).decide(
            uncertain_reviews(db)[second[0].id].id, "return", actor="user:anna", comment="Kör om"
        )
        with pytest.raises(AlreadyDecided):  # the person decided while the robot was re-checking
            queue.settle_uncertain(second[0], Done({"x": 1}), actor="robot:ledger")
        item = items(db)[second[0].reference]
        assert item.status == ItemStatus.uncertain and item.result is None
        assert not events(db, "review.resolved")
