"""The work-item queue on SQLite and PostgreSQL: enqueue, leases, retries, reaping.

Time is a FakeClock handed to the queue, so lease expiry and backoff are exact.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from core import audit
from core.errors import LeaseLost
from core.problems import PROBLEM_SUMMARIES
from core.queue import RetryPolicy, WorkQueue
from core.records import WorkItemView
from core.robot import Done, NeedsReview, NewItem
from core.runs import SqlRunStore
from core.storage.db import Database
from core.storage.models import AuditEvent, ItemStatus, ReviewItem, ReviewKind, ReviewState, WorkItem
from core.testing import FakeClock
from tests.helpers.procs import finish, spawn, wait_ready

TENANT, OTHER_TENANT = "0000", "1081"


@pytest.fixture
def queue(db: Database, clock: FakeClock) -> Iterator[WorkQueue]:
    """A queue on the test database with two tenants, driven by the fake clock."""
    runs = SqlRunStore(db, clock)
    runs.ensure_tenant(TENANT, "Testkommun")
    runs.ensure_tenant(OTHER_TENANT, "Ronneby kommun")
    yield WorkQueue(db, clock)


def items(*refs: str) -> list[NewItem]:
    """NewItems with the given references."""
    return [NewItem(reference=r, payload={"ref": r}) for r in refs]


def row(db: Database, item_id: int) -> WorkItem:
    """The stored work item."""
    with db.session() as s:
        found = s.get(WorkItem, item_id)
        assert found is not None
        return found


def rows(db: Database, robot: str = "r") -> list[WorkItem]:
    """Every stored work item of ``robot``, by id."""
    with db.session() as s:
        return list(s.scalars(select(WorkItem).where(WorkItem.robot == robot).order_by(WorkItem.id)).all())


def reviews(db: Database) -> list[ReviewItem]:
    """Every review item, by id."""
    with db.session() as s:
        return list(s.scalars(select(ReviewItem).order_by(ReviewItem.id)).all())


def audit_count(db: Database) -> int:
    """How many audit events exist."""
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def snapshot(db: Database, item_id: int) -> dict[str, Any]:
    """The columns a lost worker must not change."""
    r = row(db, item_id)
    return {
        k: getattr(r, k)
        for k in (
            "status",
            "lease_owner",
            "lease_token",
            "lease_until",
            "attempts",
            "result",
            "error_kind",
            "error_code",
            "error_message",
            "next_attempt_at",
            "finished_at",
        )
    }


def assert_chain_intact(db: Database) -> None:
    """The audit chain verifies."""
    with db.session() as s:
        result = audit.verify(s)
    assert result.ok, result.problem


class TestEnqueue:
    """Enqueue is idempotent on (robot, tenant, reference)."""

    def test_a_known_reference_is_left_alone(self, queue: WorkQueue, db: Database) -> None:
        assert queue.enqueue("r", TENANT, items("a", "b", "c")) == 3
        again = [NewItem(reference="a", payload={"ref": "changed"}), *items("b", "c", "d")]
        assert queue.enqueue("r", TENANT, again) == 1
        stored = rows(db)
        assert [r.reference for r in stored] == ["a", "b", "c", "d"]
        assert stored[0].payload == {"ref": "a"}, "a re-collected item must not overwrite the stored one"
        assert {r.status for r in stored} == {ItemStatus.pending}

    def test_the_same_reference_for_another_robot_or_tenant_is_a_new_item(self, queue: WorkQueue, db: Database) -> None:
        assert queue.enqueue("r", TENANT, items("a")) == 1
        assert queue.enqueue("r2", TENANT, items("a")) == 1
        assert queue.enqueue("r", OTHER_TENANT, items("a")) == 1
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(WorkItem)) == 3

    def test_nothing_to_enqueue(self, queue: WorkQueue) -> None:
        assert queue.enqueue("r", TENANT, []) == 0

    @pytest.mark.parametrize("order", ["same", "shuffled"])
    def test_concurrent_enqueues_of_the_same_references_leave_one_row_each(
        self, queue: WorkQueue, db: Database, order: str
    ) -> None:
        # Two collects racing (the scheduler's run and a manual one) need not find the
        # cases in the same order; five rounds of four threads make an overlap all but certain.
        threads_n, per_round = 4, 3000
        for round_no in range(5):
            refs = [f"case-{round_no}-{i}" for i in range(per_round)]
            barrier = threading.Barrier(threads_n)
            returned: list[int] = []
            errors: list[BaseException] = []

            def enqueue(
                k: int,
                refs: list[str] = refs,
                barrier: threading.Barrier = barrier,
                returned: list[int] = returned,
                errors: list[BaseException] = errors,
            ) -> None:
                mine = list(refs)
                if order == "shuffled":
                    random.Random(k).shuffle(mine)
                new_items = items(*mine)
                barrier.wait()
                try:
                    returned.append(WorkQueue(db, queue.clock).enqueue("r", TENANT, new_items))
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=enqueue, args=(k,)) for k in range(threads_n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert not errors, (
                f"round {round_no}: {len(errors)} of {threads_n} concurrent enqueues failed: {errors[0]!r}"
            )
            with db.session() as s:
                stored = s.scalars(
                    select(WorkItem.reference).where(WorkItem.reference.like(f"case-{round_no}-%"))
                ).all()
            assert sorted(stored) == sorted(refs)
            assert sum(returned) == per_round, f"enqueue() reported {returned} new items, expected {per_round} in total"

    def test_concurrent_enqueues_from_separate_processes_leave_one_row_each(
        self, queue: WorkQueue, db: Database, tmp_path: Path
    ) -> None:
        refs = [f"case-{i}" for i in range(300)]
        (tmp_path / "refs.txt").write_text("\n".join(refs))
        barrier = tmp_path / "barrier"
        barrier.mkdir()
        n = 4
        logs = [tmp_path / f"enqueuer-{i}.log" for i in range(n)]
        procs = [
            spawn(
                "queue_worker",
                [
                    "enqueue",
                    db.url,
                    "r",
                    TENANT,
                    f"e{i}",
                    str(barrier),
                    str(tmp_path / f"count-{i}"),
                    str(tmp_path / "refs.txt"),
                ],
                logs[i],
            )
            for i in range(n)
        ]
        wait_ready(barrier, n, procs)
        finish(procs, logs)
        assert sorted(r.reference for r in rows(db)) == sorted(refs)
        counts = [int((tmp_path / f"count-{i}").read_text()) for i in range(n)]
        assert sum(counts) == len(refs), f"enqueue() reported {counts} new items, expected {len(refs)} in total"


class TestClaim:
    """A claim leases due items to one owner."""

    def test_claim_sets_owner_token_and_lease_until(self, queue: WorkQueue, db: Database, clock: FakeClock) -> None:
        queue.enqueue("r", TENANT, items("a"))
        [item] = queue.claim("r", TENANT, "worker-1", lease_seconds=120)
        stored = row(db, item.id)
        assert stored.status == ItemStatus.in_progress
        assert stored.lease_owner == "worker-1"
        assert stored.lease_token == item.lease_token and len(item.lease_token or "") >= 32
        assert stored.lease_until == clock.now() + timedelta(seconds=120)
        assert stored.attempts == item.attempts == 1
        assert (item.reference, item.payload, item.status) == ("a", {"ref": "a"}, "in_progress")

    def test_a_leased_item_is_not_claimed_again(self, queue: WorkQueue) -> None:
        queue.enqueue("r", TENANT, items("a", "b"))
        first = queue.claim("r", TENANT, "w1", limit=5)
        assert [i.reference for i in first] == ["a", "b"]
        assert queue.claim("r", TENANT, "w2", limit=5) == []

    def test_claim_takes_only_its_robot_and_tenant(self, queue: WorkQueue) -> None:
        queue.enqueue("r", TENANT, items("a"))
        queue.enqueue("r", OTHER_TENANT, items("b"))
        queue.enqueue("r2", TENANT, items("c"))
        assert [i.reference for i in queue.claim("r", OTHER_TENANT, "w", limit=10)] == ["b"]

    def test_each_claim_gets_a_new_token(self, queue: WorkQueue) -> None:
        queue.enqueue("r", TENANT, items("a", "b"))
        [a] = queue.claim("r", TENANT, "w")
        [b] = queue.claim("r", TENANT, "w")
        assert a.lease_token != b.lease_token

    def test_an_item_waiting_for_a_retry_is_not_claimed_before_it_is_due(
        self, queue: WorkQueue, clock: FakeClock, db: Database
    ) -> None:
        queue.enqueue("r", TENANT, items("a"))
        [item] = queue.claim("r", TENANT, "w")
        queue.fail_application(item, code="503", message="unavailable", actor="test", policy=RetryPolicy())
        due = row(db, item.id).next_attempt_at
        clock.set(due - timedelta(seconds=1))
        assert queue.claim("r", TENANT, "w") == []
        clock.set(due)
        assert [i.id for i in queue.claim("r", TENANT, "w")] == [item.id]


class TestLeases:
    """Only the holder of the current lease may finish an item; expired leases are taken over."""

    def test_an_expired_lease_is_reclaimed_by_the_next_claim(
        self, queue: WorkQueue, clock: FakeClock, db: Database
    ) -> None:
        queue.enqueue("r", TENANT, items("a"))
        [first] = queue.claim("r", TENANT, "w1", lease_seconds=60)
        clock.advance(59)
        assert queue.claim("r", TENANT, "w2") == [], "a live lease must not be taken over"
        clock.advance(1.001)
        [second] = queue.claim("r", TENANT, "w2", lease_seconds=60)
        assert second.id == first.id
        assert second.attempts == 2
        assert second.lease_token != first.lease_token
        assert row(db, first.id).lease_owner == "w2"

    def test_an_expired_lease_is_not_reclaimed_when_reclaiming_is_off(self, queue: WorkQueue, clock: FakeClock) -> None:
        queue.enqueue("r", TENANT, items("a"))
        queue.claim("r", TENANT, "w1", lease_seconds=60)
        clock.advance(3600)
        assert queue.claim("r", TENANT, "w2", reclaim_expired=False) == []

    def test_a_worker_that_lost_its_lease_changes_nothing(
        self, queue: WorkQueue, clock: FakeClock, db: Database
    ) -> None:
        queue.enqueue("r", TENANT, items("a"))
        [stale] = queue.claim("r", TENANT, "w1", lease_seconds=60)
        clock.advance(61)
        [current] = queue.claim("r", TENANT, "w2", lease_seconds=60)
        before, events_before = snapshot(db, stale.id), audit_count(db)

        with pytest.raises(LeaseLost):
            queue.complete(stale, Done({"by": "w1"}), actor="w1")
        with pytest.raises(LeaseLost):
            queue.complete(stale, NeedsReview(queue="r.review", title="t"), actor="w1")
        with pytest.raises(LeaseLost):
            queue.fail_business(stale, code="bad", message="bad data", actor="w1")
        with pytest.raises(LeaseLost):
            queue.fail_application(stale, code="503", message="down", actor="w1", policy=RetryPolicy())
        with pytest.raises(LeaseLost):
            queue.extend(stale, 600)

        assert snapshot(db, stale.id) == before
        assert reviews(db) == [], "a lost worker's review item must be rolled back with its update"
        assert audit_count(db) == events_before

        queue.complete(current, Done({"by": "w2"}), actor="w2")
        assert row(db, current.id).status == ItemStatus.done
        assert row(db, current.id).result == {"by": "w2"}

    def test_an_item_can_be_finished_only_once(self, queue: WorkQueue, db: Database) -> None:
        queue.enqueue("r", TENANT, items("a"))
        [item] = queue.claim("r", TENANT, "w")
        queue.complete(item, Done(), actor="w")
        with pytest.raises(LeaseLost):
            queue.complete(item, Done(), actor="w")
        with pytest.raises(LeaseLost):
            queue.fail_business(item, code="x", message="x", actor="w")
        assert row(db, item.id).status == ItemStatus.done
        assert reviews(db) == []

    def test_extend_keeps_a_lease_alive(self, queue: WorkQueue, clock: FakeClock, db: Database) -> None:
        queue.enqueue("r", TENANT, items("a"))
        [item] = queue.claim("r", TENANT, "w1", lease_seconds=60)
        clock.advance(50)
        queue.extend(item, 60)
        assert row(db, item.id).lease_until == clock.now() + timedelta(seconds=60)
        clock.advance(50)
        assert queue.claim("r", TENANT, "w2") == []
        queue.complete(item, Done(), actor="w1")

    def test_finishing_releases_the_lease(self, queue: WorkQueue, db: Database, clock: FakeClock) -> None:
        queue.enqueue("r", TENANT, items("a"))
        [item] = queue.claim("r", TENANT, "w")
        queue.complete(item, Done({"x": 1}), actor="w")
        stored = row(db, item.id)
        assert (stored.lease_owner, stored.lease_token, stored.lease_until) == (None, None, None)
        assert stored.finished_at == clock.now()


class TestOutcomes:
    """Done, NeedsReview and business failures."""

    def test_needs_review_creates_a_decision_review_item(self, queue: WorkQueue, db: Database) -> None:
        queue.enqueue("r", TENANT, [NewItem(reference="a", subject="subject-1")])
        [item] = queue.claim("r", TENANT, "w")
        review_id = queue.complete(item, NeedsReview(queue="r.review", title="Beslut", material={"x": 1}), actor="w")
        assert row(db, item.id).status == ItemStatus.needs_review
        [rv] = reviews(db)
        assert (rv.id, rv.queue, rv.kind, rv.state, rv.work_item_id) == (
            review_id,
            "r.review",
            ReviewKind.decision,
            ReviewState.open,
            item.id,
        )
        assert rv.subject == "subject-1"
        assert_chain_intact(db)

    def test_a_business_error_fails_the_item_and_opens_an_exception_review(
        self, queue: WorkQueue, db: Database
    ) -> None:
        queue.enqueue("r", TENANT, items("a"))
        [item] = queue.claim("r", TENANT, "w")
        queue.fail_business(item, code="missing_amount", message="Belopp saknas", actor="robot:r")
        stored = row(db, item.id)
        assert (stored.status, stored.error_kind, stored.error_code) == (
            ItemStatus.failed_business,
            "business",
            "missing_amount",
        )
        [rv] = reviews(db)
        assert (rv.queue, rv.kind, rv.summary, rv.work_item_id) == (
            "r.exceptions",
            ReviewKind.exception,
            "Belopp saknas",
            item.id,
        )
        assert queue.claim("r", TENANT, "w") == [], "a business failure is never retried"


class TestRetries:
    """Transient failures are retried with exponential backoff, jitter and a cap."""

    def test_next_attempt_follows_exponential_backoff_with_jitter_and_cap(
        self, queue: WorkQueue, db: Database, clock: FakeClock
    ) -> None:
        policy = RetryPolicy(max_attempts=6, base_seconds=10, cap_seconds=60)
        queue.enqueue("r", TENANT, items("a"))
        ceilings = [10, 20, 40, 60, 60]  # base * 2^(n-1), capped at 60
        for attempt, ceiling in enumerate(ceilings, start=1):
            [item] = queue.claim("r", TENANT, "w")
            assert item.attempts == attempt
            will_retry = queue.fail_application(
                item, code="503", message="down", actor="robot:r", policy=policy, rng=random.Random(attempt)
            )
            assert will_retry
            stored = row(db, item.id)
            assert stored.status == ItemStatus.pending
            assert (stored.error_kind, stored.error_code) == ("application", "503")
            delay = (stored.next_attempt_at - clock.now()).total_seconds()
            assert ceiling / 2 <= delay <= ceiling, (
                f"attempt {attempt}: delay {delay} outside [{ceiling / 2}, {ceiling}]"
            )
            assert delay == pytest.approx(policy.delay(attempt, random.Random(attempt)), abs=1e-5)
            clock.set(stored.next_attempt_at)
        assert reviews(db) == []

    def test_delay_is_jittered_and_capped(self) -> None:
        policy = RetryPolicy(max_attempts=10, base_seconds=30, cap_seconds=3600)
        samples = [policy.delay(3) for _ in range(500)]
        assert all(60 <= d <= 120 for d in samples)
        assert max(samples) - min(samples) > 40, "delays must be spread, not one value"
        assert len(set(samples)) > 400
        assert all(1800 <= policy.delay(n) <= 3600 for n in (8, 9, 20, 60))
        assert policy.delay(0) <= 30 and policy.delay(1) <= 30

    def test_after_max_attempts_the_item_fails_and_a_person_gets_an_exception_review(
        self, queue: WorkQueue, db: Database, clock: FakeClock
    ) -> None:
        policy = RetryPolicy(max_attempts=3, base_seconds=1, cap_seconds=5)
        queue.enqueue("r", TENANT, [NewItem(reference="a", subject="subject-1")])
        results = []
        for _ in range(3):
            [item] = queue.claim("r", TENANT, "w")
            results.append(
                queue.fail_application(item, code="503", message="Systemet svarar inte", actor="robot:r", policy=policy)
            )
            clock.advance(10)
        assert results == [True, True, False]
        stored = row(db, item.id)
        assert stored.status == ItemStatus.failed_application
        assert stored.finished_at is not None and stored.lease_token is None
        [rv] = reviews(db)
        assert (rv.queue, rv.kind, rv.state, rv.work_item_id) == (
            "r.exceptions",
            ReviewKind.exception,
            ReviewState.open,
            item.id,
        )
        assert "3" in rv.title and rv.summary == PROBLEM_SUMMARIES["application"]
        assert rv.material["error"] == "Systemet svarar inte" and rv.material["error_kind"] == "application"
        assert rv.material["reference"] == "a" and rv.subject == "subject-1"
        assert queue.claim("r", TENANT, "w") == []
        assert_chain_intact(db)


class TestReaping:
    """Items whose worker died: uncertain for unrepeatable robots, failed when out of attempts."""

    def test_an_unrepeatable_robots_expired_item_becomes_uncertain_with_a_review(
        self, queue: WorkQueue, db: Database, clock: FakeClock
    ) -> None:
        queue.enqueue("writer", TENANT, items("a", "b", "c"))
        dead = queue.claim("writer", TENANT, "w-dead", limit=2, lease_seconds=60)
        clock.advance(50)
        [alive] = queue.claim("writer", TENANT, "w-alive", lease_seconds=60)
        clock.advance(11)  # the dead worker's leases ran out, the live one's did not

        assert queue.claim("writer", TENANT, "w-new", reclaim_expired=False) == []
        counts = queue.reap_expired(
            "writer", TENANT, side_effects_repeatable=False, max_attempts=5, actor="robot:writer"
        )
        assert counts == {"uncertain": 2, "failed_application": 0}
        for item in dead:
            stored = row(db, item.id)
            assert (stored.status, stored.error_code, stored.lease_token) == (
                ItemStatus.uncertain,
                "lease_expired",
                None,
            )
            assert stored.attempts == 1, "an uncertain item is not retried"
        assert row(db, alive.id).status == ItemStatus.in_progress
        found = reviews(db)
        assert sorted(r.work_item_id for r in found) == sorted(i.id for i in dead)
        assert {(r.kind, r.queue, r.state) for r in found} == {
            (ReviewKind.uncertain, "writer.exceptions", ReviewState.open)
        }
        with pytest.raises(LeaseLost):
            queue.complete(dead[0], Done(), actor="w-dead")
        clock.advance(3600)
        assert [i.id for i in queue.claim("writer", TENANT, "w-new", limit=10)] == [alive.id], (
            "uncertain items must never be claimed again"
        )
        with db.session() as s:
            actions = s.scalars(select(AuditEvent.action)).all()
        assert "item.uncertain" in actions
        assert_chain_intact(db)

    def test_a_repeatable_robots_expired_item_is_left_for_the_next_claim(
        self, queue: WorkQueue, db: Database, clock: FakeClock
    ) -> None:
        queue.enqueue("r", TENANT, items("a"))
        [item] = queue.claim("r", TENANT, "w-dead", lease_seconds=60)
        clock.advance(61)
        assert queue.reap_expired("r", TENANT, side_effects_repeatable=True, max_attempts=3, actor="robot:r") == {
            "uncertain": 0,
            "failed_application": 0,
        }
        assert row(db, item.id).status == ItemStatus.in_progress
        [again] = queue.claim("r", TENANT, "w-new")
        assert (again.id, again.attempts) == (item.id, 2)

    def test_a_repeatable_robots_item_that_died_on_its_last_attempt_fails(
        self, queue: WorkQueue, db: Database, clock: FakeClock
    ) -> None:
        queue.enqueue("r", TENANT, items("a"))
        for _ in range(3):
            [item] = queue.claim("r", TENANT, "w-dead", lease_seconds=60)
            clock.advance(61)
        assert item.attempts == 3
        counts = queue.reap_expired("r", TENANT, side_effects_repeatable=True, max_attempts=3, actor="robot:r")
        assert counts == {"uncertain": 0, "failed_application": 1}
        assert row(db, item.id).status == ItemStatus.failed_application
        [rv] = reviews(db)
        assert (rv.kind, rv.queue, rv.work_item_id) == (ReviewKind.exception, "r.exceptions", item.id)


def test_work_item_view_round_trips_a_claimed_row(queue: WorkQueue) -> None:
    """What a robot sees is what was enqueued."""
    queue.enqueue(
        "r",
        TENANT,
        [NewItem(reference="x-1", payload={"amount": 1037, "nested": {"a": [1, 2]}}, subject="19121212-1212")],
    )
    [view] = queue.claim("r", TENANT, "w")
    assert isinstance(view, WorkItemView)
    assert (view.robot, view.tenant, view.reference, view.subject) == ("r", TENANT, "x-1", "19121212-1212")
    assert view.payload == {"amount": 1037, "nested": {"a": [1, 2]}}


@pytest.mark.postgres
def test_a_dropped_connection_in_the_autocommit_pool_is_replaced_after_idling(
    tmp_path: Path, pg_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim's pool pings only idle connections; a dead one is replaced, nothing fails."""
    import core.storage.db as dbmod
    from core.testing import temporary_database

    monkeypatch.setattr(dbmod, "IDLE_PING_SECONDS", 0.0)  # every checkout counts as idle
    with temporary_database(tmp_path, pg_url) as db:
        SqlRunStore(db, clock).ensure_tenant("0000", "Testkommun")
        q = WorkQueue(db, clock)
        q.enqueue("r", "0000", items("a", "b"))
        [first] = q.claim("r", "0000", "w1")
        with db.single_statement() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with db.engine.begin() as admin:  # the server drops the pooled connection (restart, firewall)
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        [second] = q.claim("r", "0000", "w1")  # pinged, found dead, replaced: no error
        assert {first.reference, second.reference} == {"a", "b"}
        q.complete(second, Done(), actor="test")
        assert row(db, second.id).status == ItemStatus.done


@pytest.mark.postgres
def test_a_dropped_connection_in_the_session_pool_is_replaced_after_idling(
    tmp_path: Path, pg_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions' pool (the web app's pages) pings only idle connections too; a dead one is replaced."""
    import core.storage.db as dbmod
    from core.testing import temporary_database

    monkeypatch.setattr(dbmod, "IDLE_PING_SECONDS", 0.0)  # every checkout counts as idle
    with temporary_database(tmp_path, pg_url) as db:
        SqlRunStore(db, clock).ensure_tenant("0000", "Testkommun")
        with db.session() as s:
            pid = s.execute(text("SELECT pg_backend_pid()")).scalar()
        with db.single_statement() as admin:  # the server drops the pooled connection (restart, firewall)
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        with db.session() as s:  # pinged, found dead, replaced: no error
            assert s.execute(text("SELECT pg_backend_pid()")).scalar() != pid


@pytest.mark.postgres
@pytest.mark.parametrize("reclaim_expired", [True, False])
def test_the_claims_cached_plan_reads_the_due_index_in_order(
    tmp_path: Path, pg_url: str, clock: FakeClock, reclaim_expired: bool
) -> None:
    """A claim prepared once and reused (psycopg prepares it after a few calls) must not sort the backlog.

    PostgreSQL switches a prepared statement to a generic plan, made without the parameter
    values. Were the statuses parameters, that plan could not use the partial index on due
    items and would sort every pending item on each claim.
    """
    import re

    from psycopg.sql import Literal

    from core.queue import _claim_statement
    from core.testing import temporary_database

    with temporary_database(tmp_path, pg_url) as db:
        SqlRunStore(db, clock).ensure_tenant("0000", "Testkommun")
        WorkQueue(db, clock).enqueue("r", "0000", items(*(f"i-{n}" for n in range(500))))
        compiled = _claim_statement("postgresql", reclaim_expired, False).compile(
            dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True}
        )
        names: list[str] = []

        def number(m: re.Match[str]) -> str:
            if m.group(1) not in names:
                names.append(m.group(1))
            return f"${names.index(m.group(1)) + 1}"

        sql = re.sub(r"%\((\w+)\)s", number, compiled.string)
        now = clock.now()
        values = {
            **compiled.params,
            "p_robot": "r",
            "p_tenant": "0000",
            "p_now": now,
            "p_limit": 1,
            "p_owner": "w",
            "p_token": "t",
            "p_until": now + timedelta(minutes=5),
        }
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE work_items")
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            conn.exec_driver_sql(f"PREPARE claim AS {sql}")
            raw = conn.connection.driver_connection
            args = ", ".join(Literal(getattr(values[n], "value", values[n])).as_string(raw) for n in names)
            plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN EXECUTE claim({args})"))
            conn.rollback()
    assert "ix_work_items_due" in plan, plan
    assert "Sort" not in plan, plan


class TestOperationsRacingARecheck:
    """Operations' retry and a robot's re-check of the same uncertain item, at the same moment."""

    def test_the_item_ends_done_or_pending_never_a_done_item_back_in_the_queue(
        self, queue: WorkQueue, db: Database, clock: FakeClock
    ) -> None:
        n = 12
        queue.enqueue("r", TENANT, items(*(f"race-{i}" for i in range(n))))
        queue.claim("r", TENANT, "w1", limit=n, lease_seconds=10)
        clock.advance(11)
        assert (
            queue.reap_expired("r", TENANT, side_effects_repeatable=False, max_attempts=3, actor="t")["uncertain"] == n
        )
        leased = queue.claim_uncertain("r", TENANT, "w2", limit=n)
        assert len(leased) == n
        for item in leased:
            barrier = threading.Barrier(2)
            outcome: dict[str, Any] = {}

            def settle(
                item: WorkItemView = item, barrier: threading.Barrier = barrier, out: dict[str, Any] = outcome
            ) -> None:
                barrier.wait()
                try:
                    queue.settle_uncertain(item, Done({"found": True}), actor="robot:r")
                    out["settled"] = True
                except Exception as exc:  # LeaseLost or AlreadyDecided: the retry got there first
                    out["settled"] = type(exc).__name__

            def retry(
                item: WorkItemView = item, barrier: threading.Barrier = barrier, out: dict[str, Any] = outcome
            ) -> None:
                barrier.wait()
                out["retried"] = queue.retry(item.id, actor="user:drift")

            threads = [threading.Thread(target=settle), threading.Thread(target=retry)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            stored = row(db, item.id)
            if outcome["settled"] is True:
                assert outcome["retried"] is False and stored.status == ItemStatus.done, outcome
                assert stored.result == {"found": True}
            else:
                assert outcome["retried"] is True and stored.status == ItemStatus.pending, outcome
