"""The engine end to end, through core.testing.run_robot, on SQLite and PostgreSQL.

ExampleRobot with its defaults finds 24 cases, demo-1 … demo-24:
  every 5th fails once with a transient error (5, 10, 15, 20 → retried, then fine),
  every 7th has bad data (7, 14, 21 → failed_business),
  every 3rd that is not bad needs a decision (3, 6, 9, 12, 15, 18, 24 → needs_review),
  the other 14 are done.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from core import audit
from core.errors import (
    AlreadyDecided,
    ApplicationError,
    ConnectorUnavailable,
    FourEyesViolation,
    ReviewError,
)
from core.queue import WorkQueue
from core.review import ReviewQueue
from core.robot import Done, NeedsReview, NewItem, Robot
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
    Run,
    RunStatus,
    WorkItem,
)
from core.testing import ExampleRobot, FakeClock, make_settings, run_robot

QUIET = {"review_every": 0, "business_error_every": 0, "flaky_every": 0}


# -- helpers ------------------------------------------------------------------------------
def items_by_ref(db: Database, robot: str = "example") -> dict[str, WorkItem]:
    """Stored work items of ``robot`` keyed by reference."""
    with db.session() as s:
        return {w.reference: w for w in s.scalars(select(WorkItem).where(WorkItem.robot == robot)).all()}


def review_items(db: Database, **where: Any) -> list[ReviewItem]:
    """Review items matching column equalities, by id."""
    stmt = select(ReviewItem).order_by(ReviewItem.id)
    for column, value in where.items():
        stmt = stmt.where(getattr(ReviewItem, column) == value)
    with db.session() as s:
        return list(s.scalars(stmt).all())


def review_for(db: Database, reference: str, robot: str = "example") -> ReviewItem:
    """The one review item of the work item with ``reference``."""
    item = items_by_ref(db, robot)[reference]
    [found] = review_items(db, work_item_id=item.id)
    return found


def audit_actions(db: Database) -> list[str]:
    """Every audit action, in chain order."""
    with db.session() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all())


def assert_chain_intact(db: Database) -> None:
    """The audit chain verifies."""
    with db.session() as s:
        result = audit.verify(s)
    assert result.ok, result.problem


def worker_settings(tmp_path: Path, robots: dict[str, dict[str, Any]], **worker: Any) -> Settings:
    """Test settings with some worker fields overridden."""
    base = {
        "concurrency": 4,
        "lease_seconds": 60,
        "item_timeout_seconds": 30,
        "max_attempts": 3,
        "backoff_base_seconds": 1,
        "backoff_cap_seconds": 10,
        "retry_wait_seconds": 60,
    }
    return make_settings(tmp_path, robots=robots, worker=WorkerSettings(**{**base, **worker}))


def expected_status(n: int) -> ItemStatus:
    """What ExampleRobot's defaults make of case n."""
    if n % 7 == 0:
        return ItemStatus.failed_business
    if n % 3 == 0:
        return ItemStatus.needs_review
    return ItemStatus.done


# -- robots for these tests -----------------------------------------------------------------
class FewCases(Robot):
    """Base for the test robots: finds ``cases`` cases c-1 … c-n."""

    name = "few"
    display_name = "Few"
    cases: ClassVar[int] = 3

    def collect(self, ctx: Any) -> list[NewItem]:
        """c-1 … c-n."""
        return [NewItem(reference=f"c-{n}", payload={"n": n}) for n in range(1, self.cases + 1)]

    async def process(self, ctx: Any, item: Any) -> Done | NeedsReview:
        """Done."""
        return Done()


class AlwaysDown(FewCases):
    """Its target system never answers; ``error`` is what it raises."""

    name = "always_down"
    error: ClassVar[type[Exception]] = ApplicationError

    async def process(self, ctx: Any, item: Any) -> Done:
        """Fail."""
        raise self.error("the target system answered 503")


class Slow(FewCases):
    """Takes 5 s per case; with ``only_first_attempt`` only on the first attempt."""

    name = "slow"
    cases = 1
    only_first_attempt: ClassVar[bool] = False

    async def process(self, ctx: Any, item: Any) -> Done:
        """Sleep longer than the item timeout."""
        if item.attempts == 1 or not self.only_first_attempt:
            await asyncio.sleep(5)
        return Done({"attempt": item.attempts})


class SlowWriter(Slow):
    """A slow robot whose writes must not be repeated blindly."""

    name = "slow_writer"
    side_effects_repeatable = False


class Writer(FewCases):
    """Writes every case to an external system, through the dry-run check."""

    name = "writer"

    async def process(self, ctx: Any, item: Any) -> Done:
        """Write, unless this is a dry run."""
        ctx.check_write("Procapita", f"spara beslut för {item.reference}")
        return Done({"written": True})


class FourEyes(FewCases):
    """Every case needs two people's approval."""

    name = "four_eyes"
    cases = 1

    async def process(self, ctx: Any, item: Any) -> NeedsReview:
        """Propose a payment."""
        return NeedsReview(queue="four_eyes.review", title=f"Utbetalning {item.reference}", four_eyes=True)

    async def on_decision(self, ctx: Any, review: Any) -> None:
        """Record what was carried out."""
        ctx.record("four_eyes.carried_out", details={"review_id": review.id, "state": review.state})


class FlakyDecision(FourEyes):
    """Carrying out a decision fails ``failures`` times before it works."""

    name = "flaky_decision"
    failures: ClassVar[int] = 2
    calls: ClassVar[list[str]] = []

    async def process(self, ctx: Any, item: Any) -> NeedsReview:
        """Propose (one approver is enough)."""
        return NeedsReview(queue="flaky_decision.review", title=f"Ärende {item.reference}")

    async def on_decision(self, ctx: Any, review: Any) -> None:
        """Fail the first ``failures`` times."""
        type(self).calls.append(review.state)
        if len(type(self).calls) <= self.failures:
            raise ConnectorUnavailable("Procapita is down for maintenance")
        ctx.record("flaky_decision.carried_out", details={"review_id": review.id})


# -- a whole run -------------------------------------------------------------------------------
class TestExampleRobotEndToEnd:
    """One night of the example robot: every outcome, counted and stored."""

    def test_counts_statuses_and_review_items(self, db: Database, tmp_path: Path, clock: FakeClock) -> None:
        result = run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock)
        summary = result.summary

        assert summary.status == RunStatus.succeeded
        assert summary.counts == {
            "collected": 24,
            "done": 14,
            "needs_review": 7,
            "failed_business": 3,
            "failed_application": 0,
            "uncertain": 0,
            "retried": 4,
            "rechecked": 0,
        }
        stored = items_by_ref(db)
        assert {ref: w.status for ref, w in stored.items()} == {f"demo-{n}": expected_status(n) for n in range(1, 25)}
        with db.session() as s:
            run = s.get(Run, summary.run_id)
            assert run is not None
            assert (run.status, run.collected, run.done, run.needs_review, run.failed_business, run.retried) == (
                RunStatus.succeeded,
                24,
                14,
                7,
                3,
                4,
            )
            assert run.finished_at is not None

        decisions = review_items(db, kind=ReviewKind.decision)
        assert sorted(r.material["reference"] for r in decisions) == sorted(
            f"demo-{n}" for n in (3, 6, 9, 12, 15, 18, 24)
        )
        assert {(r.queue, r.state) for r in decisions} == {("example.review", ReviewState.open)}
        exceptions = review_items(db, kind=ReviewKind.exception)
        assert {r.queue for r in exceptions} == {"example.exceptions"}
        assert sorted(r.summary for r in exceptions) == sorted(
            f"Ärende demo-{n}: uppgift om belopp saknas" for n in (7, 14, 21)
        )
        assert {r.work_item_id for r in exceptions} == {stored[f"demo-{n}"].id for n in (7, 14, 21)}

        actions = [e.action for e in result.audit_events]
        assert actions[0] == "run.queued" and actions[-1] == "run.succeeded"
        assert actions.count("review.created") == 10
        assert_chain_intact(db)

    def test_a_second_run_finds_nothing_new(self, db: Database, tmp_path: Path, clock: FakeClock) -> None:
        run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock)
        again = run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock)
        assert again.summary.counts == {
            "collected": 0,
            "done": 0,
            "needs_review": 0,
            "failed_business": 0,
            "failed_application": 0,
            "uncertain": 0,
            "retried": 0,
            "rechecked": 0,
        }
        assert len(items_by_ref(db)) == 24
        assert len(review_items(db)) == 10

    def test_transient_failures_are_retried_within_the_run(
        self, db: Database, tmp_path: Path, clock: FakeClock
    ) -> None:
        start = clock.now()
        run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock)
        stored = items_by_ref(db)
        for n in (5, 10, 20):
            assert (stored[f"demo-{n}"].status, stored[f"demo-{n}"].attempts) == (ItemStatus.done, 2)
        assert (stored["demo-15"].status, stored["demo-15"].attempts) == (ItemStatus.needs_review, 2)
        assert all(w.attempts == 1 for ref, w in stored.items() if int(ref.split("-")[1]) % 5)
        waited = (clock.now() - start).total_seconds()
        assert 0.5 <= waited <= 10, f"the run waited {waited} s of fake time for a 0.5–1 s backoff"


class TestFailures:
    """Items that fail every attempt, or take too long."""

    @pytest.mark.parametrize("error", [ApplicationError, ConnectorUnavailable, RuntimeError])
    def test_an_item_failing_every_attempt_ends_failed_with_an_exception_review(
        self, db: Database, tmp_path: Path, clock: FakeClock, error: type[Exception], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(AlwaysDown, "error", error)
        summary = run_robot(AlwaysDown, db=db, tmp_path=tmp_path, clock=clock).summary
        assert summary.status == RunStatus.attention
        assert summary.counts["failed_application"] == 3
        assert summary.counts["retried"] == 6
        for w in items_by_ref(db, "always_down").values():
            assert (w.status, w.attempts, w.error_kind) == (ItemStatus.failed_application, 3, "application")
            assert "503" in (w.error_message or "")
        exceptions = review_items(db, kind=ReviewKind.exception)
        assert len(exceptions) == 3
        assert {r.queue for r in exceptions} == {"always_down.exceptions"}

    def test_an_item_over_its_timeout_is_retried_then_failed(
        self, db: Database, tmp_path: Path, clock: FakeClock
    ) -> None:
        settings = worker_settings(tmp_path, {}, item_timeout_seconds=0.2, lease_seconds=5)
        summary = run_robot(Slow, db=db, clock=clock, app_settings=settings).summary
        [item] = items_by_ref(db, "slow").values()
        assert (item.status, item.attempts, item.error_code) == (ItemStatus.failed_application, 3, "timeout")
        assert summary.counts["failed_application"] == 1 and summary.counts["retried"] == 2
        assert len(review_items(db, kind=ReviewKind.exception)) == 1

    def test_an_item_over_its_timeout_once_is_done_on_the_retry(
        self, db: Database, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(Slow, "only_first_attempt", True)
        settings = worker_settings(tmp_path, {}, item_timeout_seconds=0.2, lease_seconds=5)
        summary = run_robot(Slow, db=db, clock=clock, app_settings=settings).summary
        [item] = items_by_ref(db, "slow").values()
        assert (item.status, item.attempts, item.result) == (ItemStatus.done, 2, {"attempt": 2})
        assert summary.counts["done"] == 1 and summary.counts["retried"] == 1

    def test_a_timeout_in_an_unrepeatable_robot_makes_the_item_uncertain(
        self, db: Database, tmp_path: Path, clock: FakeClock
    ) -> None:
        settings = worker_settings(tmp_path, {}, item_timeout_seconds=0.2, lease_seconds=5)
        summary = run_robot(SlowWriter, db=db, clock=clock, app_settings=settings).summary
        [item] = items_by_ref(db, "slow_writer").values()
        assert (item.status, item.attempts) == (ItemStatus.uncertain, 1)
        assert summary.counts["uncertain"] == 1 and summary.status == RunStatus.attention
        [rv] = review_items(db)
        assert (rv.kind, rv.queue, rv.work_item_id) == (ReviewKind.uncertain, "slow_writer.exceptions", item.id)


class TestDryRunAndLimit:
    """--dry-run queues nothing and refuses every write; --limit bounds the items."""

    def test_dry_run_refuses_writes_and_reports_them(self, db: Database, tmp_path: Path, clock: FakeClock) -> None:
        summary = run_robot(Writer, db=db, tmp_path=tmp_path, clock=clock, dry_run=True).summary
        assert summary.dry_run
        assert summary.refused_writes == [{"system": "Procapita", "what": f"spara beslut för c-{n}"} for n in (1, 2, 3)]
        assert summary.counts["collected"] == 3 and summary.counts.get("refused") == 3
        assert items_by_ref(db, "writer") == {}
        assert review_items(db) == []
        with db.session() as s:
            run = s.get(Run, summary.run_id)
            assert run is not None and run.dry_run

    def test_dry_run_of_the_example_robot_queues_nothing(self, db: Database, tmp_path: Path, clock: FakeClock) -> None:
        summary = run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock, dry_run=True).summary
        assert summary.counts["collected"] == 24
        assert summary.refused_writes == []
        assert items_by_ref(db) == {} and review_items(db) == []
        # The real run afterwards still finds every case.
        assert run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock).summary.counts["collected"] == 24

    def test_limit_bounds_collected_and_processed_items(self, db: Database, tmp_path: Path, clock: FakeClock) -> None:
        summary = run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock, settings=QUIET, limit=5).summary
        assert summary.counts["collected"] == 5 and summary.counts["done"] == 5
        assert sorted(items_by_ref(db)) == sorted(f"demo-{n}" for n in range(1, 6))
        rest = run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock, settings=QUIET).summary
        assert rest.counts["collected"] == 19 and rest.counts["done"] == 19

    def test_limit_holds_with_a_backlog_and_concurrent_tasks(
        self, db: Database, tmp_path: Path, clock: FakeClock
    ) -> None:
        # 20 cases left pending by an earlier night, and 4 tasks claiming at once.
        SqlRunStore(db, clock).ensure_tenant("0000", "Testkommun")
        backlog = [NewItem(reference=f"old-{i}", payload={"n": 1, "amount": 1037}) for i in range(20)]
        WorkQueue(db, clock).enqueue("example", "0000", backlog)
        summary = run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock, settings=QUIET, limit=5).summary
        touched = [ref for ref, w in items_by_ref(db).items() if w.status != ItemStatus.pending]
        assert summary.counts["done"] == 5, f"--limit 5 processed {summary.counts['done']} items"
        assert len(touched) == 5

    def test_a_limited_run_still_retries_its_items(self, db: Database, tmp_path: Path, clock: FakeClock) -> None:
        # demo-5 fails once (flaky_every=5): the retry is due within retry_wait_seconds,
        # so a `--limit 5` trial run should end with all five cases settled.
        summary = run_robot(
            ExampleRobot, db=db, tmp_path=tmp_path, clock=clock, settings={**QUIET, "flaky_every": 5}, limit=5
        ).summary
        stored = items_by_ref(db)
        assert {ref: w.status.value for ref, w in stored.items()} == {f"demo-{n}": "done" for n in range(1, 6)}
        assert summary.counts["done"] == 5 and summary.counts["retried"] == 1


class TestDecisions:
    """A person decides; the robot carries the decision out on its next run."""

    def test_approve_reject_and_return_are_carried_out_on_the_next_run(
        self, db: Database, tmp_path: Path, clock: FakeClock
    ) -> None:
        settings = {**QUIET, "items": 9, "review_every": 3}
        first = run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock, settings=settings).summary
        assert first.counts["needs_review"] == 3
        reviews = ReviewQueue(db, clock)
        r3, r6, r9 = (review_for(db, f"demo-{n}") for n in (3, 6, 9))

        with pytest.raises(ReviewError):
            reviews.decide(r6.id, "reject", actor="anna")  # a rejection needs a reason
        reviews.decide(r3.id, "approve", actor="anna")
        reviews.decide(r6.id, "reject", actor="anna", comment="Inkomst saknas i underlaget")
        reviews.decide(r9.id, "return", actor="bertil", comment="Räkna om med rätt hyra")
        with pytest.raises(AlreadyDecided):
            reviews.decide(r3.id, "reject", actor="bertil", comment="nej")
        with pytest.raises(AlreadyDecided):
            reviews.decide(r9.id, "approve", actor="anna")
        assert items_by_ref(db)["demo-3"].status == ItemStatus.needs_review, "nothing happens before the robot runs"

        second = run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock, settings=settings)

        carried = [e.details for e in second.audit_events if e.action == "example.decision_carried_out"]
        assert len(carried) == 3, "each decision is carried out once"
        assert {d["review_id"]: d["state"] for d in carried} == {
            r3.id: "approved",
            r6.id: "rejected",
            r9.id: "returned",
        }
        assert {r.callback_status for r in review_items(db, kind=ReviewKind.decision)} == {CallbackStatus.done}
        stored = items_by_ref(db)
        assert stored["demo-3"].status == ItemStatus.done
        assert stored["demo-3"].result is not None
        assert (stored["demo-3"].result["decision"], stored["demo-3"].result["decided_by"]) == ("approved", "anna")
        assert stored["demo-6"].status == ItemStatus.done
        assert stored["demo-6"].result is not None and stored["demo-6"].result["decision"] == "rejected"
        # Returned: processed again in the same run, with the comment available to the robot.
        assert stored["demo-9"].status == ItemStatus.done
        assert stored["demo-9"].return_comment == "Räkna om med rätt hyra"
        assert stored["demo-9"].result == {"handled": "demo-9"}
        assert second.summary.counts["done"] == 1 and second.summary.counts["collected"] == 0
        assert_chain_intact(db)

    def test_four_eyes_needs_two_different_people(self, db: Database, tmp_path: Path, clock: FakeClock) -> None:
        run_robot(FourEyes, db=db, tmp_path=tmp_path, clock=clock)
        reviews = ReviewQueue(db, clock)
        rv = review_for(db, "c-1", "four_eyes")
        assert rv.four_eyes

        reviews.decide(rv.id, "approve", actor="anna")
        after_first = review_for(db, "c-1", "four_eyes")
        assert (after_first.state, after_first.first_approver) == (ReviewState.open, "anna")
        with pytest.raises(FourEyesViolation):
            reviews.decide(rv.id, "approve", actor="anna")
        assert review_for(db, "c-1", "four_eyes").state == ReviewState.open
        # Nothing is carried out on a single approval.
        between = run_robot(FourEyes, db=db, tmp_path=tmp_path, clock=clock)
        assert "four_eyes.carried_out" not in [e.action for e in between.audit_events]

        reviews.decide(rv.id, "approve", actor="bertil")
        with pytest.raises(AlreadyDecided):
            reviews.decide(rv.id, "approve", actor="cecilia")
        decided = review_for(db, "c-1", "four_eyes")
        assert (decided.state, decided.first_approver, decided.decided_by) == (ReviewState.approved, "anna", "bertil")

        after = run_robot(FourEyes, db=db, tmp_path=tmp_path, clock=clock)
        assert [e.details["state"] for e in after.audit_events if e.action == "four_eyes.carried_out"] == ["approved"]
        assert items_by_ref(db, "four_eyes")["c-1"].status == ItemStatus.done
        assert "review.first_approval" in audit_actions(db)

    def test_a_stale_page_cannot_override_a_change(self, db: Database, tmp_path: Path, clock: FakeClock) -> None:
        run_robot(FourEyes, db=db, tmp_path=tmp_path, clock=clock)
        reviews = ReviewQueue(db, clock)
        rv = review_for(db, "c-1", "four_eyes")
        reviews.assign(rv.id, "anna", actor="lead")
        with pytest.raises(AlreadyDecided):
            reviews.decide(rv.id, "approve", actor="bertil", expected_version=rv.version)

    def test_a_failing_on_decision_is_retried_with_backoff(
        self, db: Database, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(FlakyDecision, "calls", [])
        run_robot(FlakyDecision, db=db, tmp_path=tmp_path, clock=clock)
        rv = review_for(db, "c-1", "flaky_decision")
        ReviewQueue(db, clock).decide(rv.id, "approve", actor="anna")

        run_robot(FlakyDecision, db=db, tmp_path=tmp_path, clock=clock)
        failed_once = review_for(db, "c-1", "flaky_decision")
        assert (failed_once.callback_status, failed_once.callback_attempts) == (CallbackStatus.pending, 1)
        assert "Procapita is down" in (failed_once.callback_error or "")
        assert failed_once.callback_next_at is not None and failed_once.callback_next_at > clock.now()
        assert items_by_ref(db, "flaky_decision")["c-1"].status == ItemStatus.needs_review

        run_robot(FlakyDecision, db=db, tmp_path=tmp_path, clock=clock)
        assert len(FlakyDecision.calls) == 1, "a retry must wait for its backoff"

        clock.set(failed_once.callback_next_at)
        run_robot(FlakyDecision, db=db, tmp_path=tmp_path, clock=clock)
        assert len(FlakyDecision.calls) == 2
        clock.advance(10)  # past the longest possible second backoff (cap 10 s)
        last = run_robot(FlakyDecision, db=db, tmp_path=tmp_path, clock=clock)

        assert FlakyDecision.calls == ["approved"] * 3
        assert "flaky_decision.carried_out" in [e.action for e in last.audit_events]
        done = review_for(db, "c-1", "flaky_decision")
        assert (done.callback_status, done.callback_error) == (CallbackStatus.done, None)
        assert items_by_ref(db, "flaky_decision")["c-1"].status == ItemStatus.done
        assert audit_actions(db).count("review.carry_out_failed") == 2

    def test_an_on_decision_failing_every_attempt_gives_up(
        self, db: Database, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(FlakyDecision, "calls", [])
        monkeypatch.setattr(FlakyDecision, "failures", 100)
        run_robot(FlakyDecision, db=db, tmp_path=tmp_path, clock=clock)
        rv = review_for(db, "c-1", "flaky_decision")
        ReviewQueue(db, clock).decide(rv.id, "approve", actor="anna")
        for _ in range(5):
            run_robot(FlakyDecision, db=db, tmp_path=tmp_path, clock=clock)
            clock.advance(11)
        assert len(FlakyDecision.calls) == 3, "max_attempts is 3"
        item = items_by_ref(db, "flaky_decision")["c-1"]
        [gave_up] = review_items(db, work_item_id=item.id, kind=ReviewKind.decision)
        assert gave_up.callback_status == CallbackStatus.failed
        assert item.status == ItemStatus.needs_review
        # Giving up is not only an audit event: a person gets an exception item.
        [escalated] = review_items(db, work_item_id=item.id, kind=ReviewKind.exception)
        assert escalated.queue == "flaky_decision.exceptions"
        assert escalated.state == ReviewState.open


def test_the_run_heartbeat_renews_the_lease_whatever_counts_the_summary_carries(db: Database) -> None:
    """A run's lease must be renewed during a long night: counts without a column must not break it."""
    from core.runs import SqlRunStore
    from core.testing import FakeClock

    clock = FakeClock()
    runs = SqlRunStore(db, clock)
    runs.ensure_tenant("0000", "Testkommun")
    run_id = runs.create(robot="example", tenant="0000", trigger="manual")
    assert run_id is not None
    runs.start(run_id, "w1", 60)
    clock.advance(50)
    runs.heartbeat(run_id, 60, {"done": 3, "collected": 5, "rechecked": 1})
    run = runs.get(run_id)
    assert run is not None and (run.done, run.collected) == (3, 5)
    assert run.lease_until is not None and run.lease_until.replace(tzinfo=clock.now().tzinfo) > clock.now()
