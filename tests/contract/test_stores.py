"""The store contract: every implementation of the ports behaves the same (memory, SQLite, PostgreSQL).

What the engine, the web layer and the CLI rely on from a work-item, review, run, audit
and artifact store, written once against the ports of core/interfaces.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.errors import AlreadyDecided, ConfigError, FourEyesViolation, LeaseLost, ReviewError
from core.interfaces import LockStore, RobotStateStore
from core.problems import PROBLEM_SUMMARIES
from core.records import (
    IN_PROCESS_OWNER,
    CallbackStatus,
    ItemStatus,
    ReviewKind,
    ReviewState,
    RunLogEntry,
    RunStatus,
    WorkItemView,
)
from core.robot import Done, NeedsReview, NewItem
from core.transitions import CANCELLABLE, RETRYABLE, RetryPolicy
from tests.contract.conftest import OTHER, TENANT, Stores

ROBOT = "example"
ACTOR = "robot:example"


def items(*refs: str) -> list[NewItem]:
    return [NewItem(reference=r, payload={"ref": r}, subject=f"subject-{r}") for r in refs]


def claim_one(stores: Stores, owner: str = "w1", **kw: object) -> WorkItemView:
    claimed = stores.queue.claim(ROBOT, TENANT, owner, **kw)  # type: ignore[arg-type]
    assert len(claimed) == 1
    return claimed[0]


def status(stores: Stores, item_id: int) -> ItemStatus:
    row = stores.queue.get(item_id)
    assert row is not None
    return row.status


def needs_review(queue: str = "example.review", *, four_eyes: bool = False) -> NeedsReview:
    return NeedsReview(queue=queue, title="Ärende", summary="Förslag", material={"amount": 1}, four_eyes=four_eyes)


def make_uncertain(stores: Stores) -> WorkItemView:
    stores.queue.enqueue(ROBOT, TENANT, items("u"))
    item = claim_one(stores, lease_seconds=60)
    stores.clock.advance(61)
    assert stores.queue.reap_expired(ROBOT, TENANT, side_effects_repeatable=False, max_attempts=3, actor=ACTOR) == {
        "uncertain": 1,
        "failed_application": 0,
    }
    return item


class TestEnqueueAndClaim:
    """Idempotent enqueue; claims lease due items in order, once."""

    def test_a_known_reference_is_left_alone(self, stores: Stores) -> None:
        assert stores.queue.enqueue(ROBOT, TENANT, items("a", "b", "a")) == 2
        assert stores.queue.enqueue(ROBOT, TENANT, items("b", "c")) == 1
        assert stores.queue.enqueue(ROBOT, OTHER, items("a")) == 1
        assert stores.queue.enqueue("other", TENANT, items("a")) == 1
        assert stores.queue.enqueue(ROBOT, TENANT, []) == 0

    def test_claim_leases_with_owner_token_and_one_more_attempt(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a", "b"))
        first = claim_one(stores, lease_seconds=60)
        assert (first.reference, first.attempts, first.status, first.payload) == ("a", 1, "in_progress", {"ref": "a"})
        row = stores.queue.get(first.id)
        assert row is not None and row.lease_owner == "w1" and row.lease_token == first.lease_token
        assert row.lease_until is not None and (row.lease_until - stores.clock.now()).total_seconds() == 60
        second = claim_one(stores, "w2")
        assert second.reference == "b" and second.lease_token != first.lease_token
        assert stores.queue.claim(ROBOT, TENANT, "w3") == []

    def test_claim_takes_only_its_robot_tenant_and_ids(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, OTHER, items("x"))
        stores.queue.enqueue("other", TENANT, items("y"))
        assert stores.queue.claim(ROBOT, TENANT, "w") == []
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        a = claim_one(stores)
        policy = RetryPolicy(max_attempts=3, base_seconds=1, cap_seconds=1)
        stores.queue.fail_application(a, code="503", message="down", actor=ACTOR, policy=policy)
        stores.clock.advance(2)
        stores.queue.enqueue(ROBOT, TENANT, items("b"))
        claimed = stores.queue.claim(ROBOT, TENANT, "w", limit=5, ids=[a.id])
        assert [c.reference for c in claimed] == ["a"]

    def test_an_expired_lease_is_reclaimed_only_when_asked(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        first = claim_one(stores, lease_seconds=30)
        stores.clock.advance(31)
        assert stores.queue.claim(ROBOT, TENANT, "w2", reclaim_expired=False) == []
        again = claim_one(stores, "w2", reclaim_expired=True)
        assert again.id == first.id and again.attempts == 2

    def test_extend_keeps_the_lease_alive(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores, lease_seconds=30)
        stores.clock.advance(20)
        stores.queue.extend(item, 30)
        stores.clock.advance(20)
        assert stores.queue.claim(ROBOT, TENANT, "w2") == []

    def test_next_due_and_due_robots(self, stores: Stores) -> None:
        assert stores.queue.next_due(ROBOT, TENANT) is None
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        assert stores.queue.next_due(ROBOT, TENANT) == stores.clock.now()
        assert (ROBOT, TENANT) in stores.queue.due_robots()
        claim_one(stores, lease_seconds=30)
        assert stores.queue.due_robots() == set()
        stores.clock.advance(31)
        assert stores.queue.due_robots() == {(ROBOT, TENANT)}


class TestFinishing:
    """Every change after the claim needs the current lease."""

    def test_done_releases_the_lease(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores)
        assert stores.queue.complete(item, Done({"ok": 1}), actor=ACTOR) is None
        row = stores.queue.get(item.id)
        assert row is not None
        assert (row.status, row.result, row.lease_token, row.lease_until) == (ItemStatus.done, {"ok": 1}, None, None)
        assert row.finished_at == stores.clock.now()

    def test_complete_only_under_the_current_lease(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        stale = claim_one(stores, lease_seconds=30)
        stores.clock.advance(31)
        fresh = claim_one(stores, "w2")
        with pytest.raises(LeaseLost):
            stores.queue.complete(stale, Done({}), actor=ACTOR)
        with pytest.raises(LeaseLost):
            stores.queue.extend(stale, 30)
        stores.queue.complete(fresh, Done({}), actor=ACTOR)
        with pytest.raises(LeaseLost):  # finished once only
            stores.queue.complete(fresh, Done({}), actor=ACTOR)

    def test_complete_many_records_each_under_its_own_lease(self, stores: Stores) -> None:
        """A group commit completes every item whose lease holds, and discards the others' outcomes."""
        stores.queue.enqueue(ROBOT, TENANT, items("a", "b", "c"))
        a, b, c = stores.queue.claim(ROBOT, TENANT, "w1", limit=3, lease_seconds=30)
        stores.clock.advance(31)
        (a_again,) = stores.queue.claim(ROBOT, TENANT, "w2", ids=[a.id])  # a's lease expired: w2 has it now
        assert a_again.id == a.id
        recorded = stores.queue.complete_many(
            [(a, Done({"by": "w1"})), (b, Done({"n": 2})), (c, Done(None))], actor=ACTOR
        )
        assert recorded == [False, True, True]
        assert [status(stores, i.id) for i in (a, b, c)] == [ItemStatus.in_progress, ItemStatus.done, ItemStatus.done]
        assert stores.queue.get(b.id).result == {"n": 2}
        assert stores.queue.complete_many([(b, Done({}))], actor=ACTOR) == [False]  # finished once only
        assert stores.queue.complete_many([], actor=ACTOR) == []

    def test_release_gives_unstarted_items_back_under_their_own_lease(self, stores: Stores) -> None:
        """A run's prefetched items go back on stop: pending, due at once, the claim's attempt returned."""
        stores.queue.enqueue(ROBOT, TENANT, items("a", "b", "c"))
        a, b, c = stores.queue.claim(ROBOT, TENANT, "w1", limit=3, lease_seconds=30)
        stores.clock.advance(31)
        (c_again,) = stores.queue.claim(ROBOT, TENANT, "w2", ids=[c.id])  # c's lease expired: w2 has it now
        before = stores.last_seq()
        assert stores.queue.release([a, b, c]) == 2
        assert [status(stores, i.id) for i in (a, b, c)] == [
            ItemStatus.pending,
            ItemStatus.pending,
            ItemStatus.in_progress,
        ]
        assert stores.queue.get(a.id).attempts == 0 and stores.queue.get(c.id).attempts == 2
        assert stores.actions(before) == []  # nothing happened to the items: no audit event
        with pytest.raises(LeaseLost):  # the released lease fences the old holder
            stores.queue.complete(a, Done({}), actor=ACTOR)
        # Due at once for any worker, without waiting for a lease to run out.
        again = stores.queue.claim(ROBOT, TENANT, "w3", limit=3, lease_seconds=30, reclaim_expired=False)
        assert sorted(i.id for i in again) == [a.id, b.id] and all(i.attempts == 1 for i in again)
        stores.queue.complete(c_again, Done({}), actor=ACTOR)
        assert stores.queue.release([c_again]) == 0 and status(stores, c.id) == ItemStatus.done
        assert stores.queue.release([]) == 0

    def test_needs_review_opens_a_decision_review(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores)
        before = stores.last_seq()
        review_id = stores.queue.complete(item, needs_review(), actor=ACTOR)
        assert review_id is not None and status(stores, item.id) == ItemStatus.needs_review
        review = stores.reviews.get(review_id)
        assert (review.kind, review.state, review.queue, review.work_item_id) == (
            ReviewKind.decision,
            ReviewState.open,
            "example.review",
            item.id,
        )
        assert review.subject == "subject-a"
        assert stores.actions(before) == ["review.created"]

    def test_business_failure_is_final_with_an_exception_review(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores)
        review_id = stores.queue.fail_business(
            item, code="missing", message="belopp saknas", actor=ACTOR, artifacts=[7]
        )
        row = stores.queue.get(item.id)
        assert row is not None and (row.status, row.error_kind, row.error_code) == (
            ItemStatus.failed_business,
            "business",
            "missing",
        )
        review = stores.reviews.get(review_id)
        assert (review.kind, review.queue) == (ReviewKind.exception, "example.exceptions")
        assert review.material == {
            "reference": "a",
            "error_code": "missing",
            "error": "belopp saknas",
            "error_kind": "business",
            "artifacts": [7],
        }
        assert (review.title, review.summary) == ("belopp saknas", "belopp saknas")  # the robot's Swedish words

    def test_application_failure_retries_with_backoff_then_fails(self, stores: Stores) -> None:
        policy = RetryPolicy(max_attempts=2, base_seconds=10, cap_seconds=60)
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores)
        assert stores.queue.fail_application(
            item, code="503", message="down", actor=ACTOR, policy=policy, rng=random.Random(1)
        )
        row = stores.queue.get(item.id)
        assert row is not None and row.status == ItemStatus.pending and row.error_code == "503"
        wait = (row.next_attempt_at - stores.clock.now()).total_seconds()
        assert wait == pytest.approx(policy.delay(1, random.Random(1)), abs=1e-3)
        assert stores.queue.claim(ROBOT, TENANT, "w") == []  # not due yet
        stores.clock.advance(wait + 1)
        item = claim_one(stores)
        assert item.attempts == 2
        assert not stores.queue.fail_application(item, code="503", message="down", actor=ACTOR, policy=policy)
        assert status(stores, item.id) == ItemStatus.failed_application
        [review] = stores.reviews.for_item(item.id)
        assert review.kind == ReviewKind.exception and review.title == "Tekniskt fel efter 2 försök"
        # The case worker reads general Swedish words; the English message is kept for IT.
        assert review.summary == PROBLEM_SUMMARIES["application"]
        assert (review.material["error"], review.material["error_kind"]) == ("down", "application")

    def test_min_delay_is_honoured(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores)
        policy = RetryPolicy(max_attempts=3, base_seconds=1, cap_seconds=1)
        stores.queue.fail_application(item, code="429", message="slow", actor=ACTOR, policy=policy, min_delay=120)
        row = stores.queue.get(item.id)
        assert row is not None and (row.next_attempt_at - stores.clock.now()).total_seconds() == pytest.approx(120)


class TestUncertain:
    """A dead or timed-out worker of an unrepeatable robot leaves the item to a person or a re-check."""

    def test_reap_makes_an_unrepeatable_item_uncertain(self, stores: Stores) -> None:
        before = stores.last_seq()
        item = make_uncertain(stores)
        row = stores.queue.get(item.id)
        assert row is not None and (row.status, row.error_code, row.lease_token) == (
            ItemStatus.uncertain,
            "lease_expired",
            None,
        )
        [review] = stores.reviews.for_item(item.id)
        assert (review.kind, review.state) == (ReviewKind.uncertain, ReviewState.open)
        assert stores.actions(before) == ["review.created", "item.uncertain"]

    def test_reap_fails_a_repeatable_item_only_when_out_of_attempts(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores, lease_seconds=10)
        stores.clock.advance(11)
        reap = {"side_effects_repeatable": True, "max_attempts": 2, "actor": ACTOR}
        assert stores.queue.reap_expired(ROBOT, TENANT, **reap) == {"uncertain": 0, "failed_application": 0}  # type: ignore[arg-type]
        assert status(stores, item.id) == ItemStatus.in_progress  # the next claim takes it over
        claim_one(stores, lease_seconds=10)
        stores.clock.advance(11)
        assert stores.queue.reap_expired(ROBOT, TENANT, **reap) == {"uncertain": 0, "failed_application": 1}  # type: ignore[arg-type]
        assert status(stores, item.id) == ItemStatus.failed_application

    def test_mark_uncertain_needs_the_lease(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores)
        stores.queue.mark_uncertain(item, actor=ACTOR, code="timeout", message="timed out")
        row = stores.queue.get(item.id)
        assert row is not None and (row.status, row.error_code) == (ItemStatus.uncertain, "timeout")
        assert [r.kind for r in stores.reviews.for_item(item.id)] == [ReviewKind.uncertain]
        with pytest.raises(LeaseLost):
            stores.queue.mark_uncertain(item, actor=ACTOR, code="timeout", message="again")

    def test_a_recheck_settles_the_item_and_resolves_its_review(self, stores: Stores) -> None:
        item = make_uncertain(stores)
        [leased] = stores.queue.claim_uncertain(ROBOT, TENANT, "w2")
        assert leased.id == item.id and leased.status == "uncertain"
        assert stores.queue.claim_uncertain(ROBOT, TENANT, "w3") == []  # leased: not offered twice
        closed = stores.queue.settle_uncertain(leased, Done({"found": True}), actor=ACTOR)
        row = stores.queue.get(item.id)
        assert row is not None and (row.status, row.result) == (ItemStatus.done, {"found": True})
        [review] = stores.reviews.for_item(item.id)
        assert closed == [review.id] and review.state == ReviewState.resolved
        assert review.callback_status == CallbackStatus.none

    def test_a_person_decided_first(self, stores: Stores) -> None:
        item = make_uncertain(stores)
        [leased] = stores.queue.claim_uncertain(ROBOT, TENANT, "w2")
        [review] = stores.reviews.for_item(item.id)
        stores.reviews.decide(review.id, "approve", actor="user:anna")
        with pytest.raises(AlreadyDecided):
            stores.queue.settle_uncertain(leased, Done({}), actor=ACTOR)
        assert status(stores, item.id) == ItemStatus.uncertain
        assert stores.queue.claim_uncertain(ROBOT, TENANT, "w3") == []  # the person's now

    def test_release_leaves_it_uncertain_and_offers_it_again(self, stores: Stores) -> None:
        item = make_uncertain(stores)
        [leased] = stores.queue.claim_uncertain(ROBOT, TENANT, "w2")
        before = stores.last_seq()
        stores.queue.release_uncertain(leased, actor=ACTOR, reason="inconclusive")
        assert status(stores, item.id) == ItemStatus.uncertain
        assert stores.actions(before) == ["item.rechecked"]
        assert [v.id for v in stores.queue.claim_uncertain(ROBOT, TENANT, "w3")] == [item.id]
        assert stores.queue.claim_uncertain(ROBOT, TENANT, "w4", exclude={item.id}) == []


class TestOperations:
    """Retry, cancel and requeue: only from the statuses core.transitions allows, each in one step."""

    def test_retry_puts_a_failed_item_back_and_withdraws_its_report(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores)
        stores.queue.fail_business(item, code="bad", message="bad data", actor=ACTOR)
        before = stores.last_seq()
        assert stores.queue.retry(item.id, actor="user:drift")
        row = stores.queue.get(item.id)
        assert row is not None and (row.status, row.attempts, row.error_code) == (ItemStatus.pending, 0, None)
        [review] = stores.reviews.for_item(item.id)
        assert review.state == ReviewState.withdrawn
        assert stores.actions(before) == ["item.requeued", "review.withdrawn"]

    def test_cancel_clears_the_lease_and_withdraws_reports(self, stores: Stores) -> None:
        item = make_uncertain(stores)
        before = stores.last_seq()
        assert stores.queue.cancel(item.id, actor="user:drift")
        row = stores.queue.get(item.id)
        assert row is not None and (row.status, row.lease_token) == (ItemStatus.cancelled, None)
        assert [r.state for r in stores.reviews.for_item(item.id)] == [ReviewState.withdrawn]
        assert stores.actions(before) == ["review.withdrawn", "item.cancelled"]
        assert stores.audit.events(before)[-1].details == {"previous": "uncertain"}
        assert stores.queue.retry(item.id, actor="user:drift")  # a cancelled item may be retried

    @pytest.mark.parametrize("final", [ItemStatus.done, ItemStatus.needs_review, ItemStatus.in_progress])
    def test_refused_transitions(self, stores: Stores, final: ItemStatus) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores)
        if final == ItemStatus.done:
            stores.queue.complete(item, Done({}), actor=ACTOR)
        elif final == ItemStatus.needs_review:
            stores.queue.complete(item, needs_review(), actor=ACTOR)
        before = stores.last_seq()
        assert final not in RETRYABLE and final not in CANCELLABLE
        assert not stores.queue.retry(item.id, actor="user:drift")
        assert not stores.queue.cancel(item.id, actor="user:drift")
        if final != ItemStatus.needs_review:  # a returned decision may requeue needs_review
            assert not stores.queue.requeue(item.id, actor="user:drift")
        assert status(stores, item.id) == final
        assert stores.actions(before) == []

    def test_a_done_item_never_goes_back_to_pending(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores)
        stores.queue.complete(item, Done({}), actor=ACTOR)
        assert not stores.queue.requeue(item.id, actor="user:drift", comment="igen")
        assert not stores.queue.retry(item.id, actor="user:drift")
        assert status(stores, item.id) == ItemStatus.done

    def test_a_retry_racing_a_recheck_cannot_undo_the_settled_item(self, stores: Stores) -> None:
        # Operations saw the item uncertain (retryable) and pressed retry; meanwhile a
        # re-check found the write done. The retry must not put the done item back.
        item = make_uncertain(stores)
        assert stores.queue.get(item.id).status in RETRYABLE  # type: ignore[union-attr]
        [leased] = stores.queue.claim_uncertain(ROBOT, TENANT, "w2")
        stores.queue.settle_uncertain(leased, Done({"found": True}), actor=ACTOR)
        assert not stores.queue.retry(item.id, actor="user:drift")
        assert not stores.queue.requeue(item.id, actor="user:drift")
        row = stores.queue.get(item.id)
        assert row is not None and (row.status, row.result) == (ItemStatus.done, {"found": True})

    def test_a_recheck_racing_a_retry_finds_its_lease_gone(self, stores: Stores) -> None:
        item = make_uncertain(stores)
        [leased] = stores.queue.claim_uncertain(ROBOT, TENANT, "w2")
        assert stores.queue.retry(item.id, actor="user:drift")
        with pytest.raises((LeaseLost, AlreadyDecided)):
            stores.queue.settle_uncertain(leased, Done({}), actor=ACTOR)
        assert status(stores, item.id) == ItemStatus.pending


class TestBulkOnFailedItems:
    """Retry or cancel every failed item matching a filter at once: each as one by one, plus one summary event."""

    def _failed(self, stores: Stores, tenant: str, ref: str, code: str, business: bool = True) -> int:
        stores.queue.enqueue(ROBOT, tenant, items(ref))
        [item] = stores.queue.claim(ROBOT, tenant, "w1", limit=1, lease_seconds=60)
        if business:
            stores.queue.fail_business(item, code=code, message="bad data", actor=ACTOR)
        else:
            policy = RetryPolicy(max_attempts=1, base_seconds=1, cap_seconds=1)
            stores.queue.fail_application(item, code=code, message="down", policy=policy, actor=ACTOR)
        return item.id

    def test_retry_every_failed_item_matching_the_filter(self, stores: Stores) -> None:
        a = self._failed(stores, TENANT, "a", "missing_income")
        b = self._failed(stores, TENANT, "b", "missing_income")
        c = self._failed(stores, TENANT, "c", "other_code")
        d = self._failed(stores, OTHER, "d", "missing_income")  # another municipality: out of reach
        e = self._failed(stores, TENANT, "e", "missing_income", business=False)
        uncertain = make_uncertain(stores)
        before = stores.last_seq()
        changed = stores.queue.bulk_failed(
            "retry", [TENANT], actor="user:drift", robot=ROBOT, error_code="missing_income"
        )
        assert changed == [a, b, e]
        assert [status(stores, i) for i in (a, b, c, d, e)] == [
            ItemStatus.pending,
            ItemStatus.pending,
            ItemStatus.failed_business,
            ItemStatus.failed_business,
            ItemStatus.pending,
        ]
        assert status(stores, uncertain.id) == ItemStatus.uncertain  # never in a bulk action
        events = stores.audit.events(before)
        assert [ev.action for ev in events].count("item.requeued") == 3
        summary = events[-1]
        assert (summary.action, summary.tenant, summary.actor) == ("items.bulk_retried", TENANT, "user:drift")
        assert summary.details["items"] == [a, b, e] and summary.details["filter"]["error_code"] == "missing_income"

    def test_cancel_narrowed_by_status_and_refusals(self, stores: Stores) -> None:
        a = self._failed(stores, TENANT, "a", "x")
        b = self._failed(stores, TENANT, "b", "x", business=False)
        assert stores.queue.bulk_failed("cancel", [TENANT], actor="user:drift", status=ItemStatus.failed_business) == [
            a
        ]
        assert (status(stores, a), status(stores, b)) == (ItemStatus.cancelled, ItemStatus.failed_application)
        assert stores.actions(stores.last_seq() - 1) == ["items.bulk_cancelled"]
        before = stores.last_seq()
        assert stores.queue.bulk_failed("cancel", [TENANT], actor="user:drift", robot="nobody") == []
        assert stores.last_seq() == before  # nothing matched: nothing audited
        with pytest.raises(ValueError, match="failed items only"):
            stores.queue.bulk_failed("retry", [TENANT], actor="user:drift", status=ItemStatus.done)
        with pytest.raises(ValueError, match="unknown bulk action"):
            stores.queue.bulk_failed("delete", [TENANT], actor="user:drift")


class TestReviews:
    """Decisions are final and audited; four-eyes; concurrent deciders; carrying decisions out."""

    def decision(self, stores: Stores, *, four_eyes: bool = False) -> tuple[int, int]:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores)
        review_id = stores.queue.complete(item, needs_review(four_eyes=four_eyes), actor=ACTOR)
        assert review_id is not None
        return item.id, review_id

    def test_approve_is_final_and_audited(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        before = stores.last_seq()
        decided = stores.reviews.decide(review_id, "approve", actor="user:anna")
        assert (decided.state, decided.decided_by) == (ReviewState.approved, "user:anna")
        assert decided.callback_status == CallbackStatus.pending
        assert stores.actions(before) == ["review.approved"]
        for second in ("approve", "reject"):
            with pytest.raises(AlreadyDecided):
                stores.reviews.decide(review_id, second, actor="user:bo", comment="nej")

    def test_bad_decisions(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        with pytest.raises(ReviewError):
            stores.reviews.decide(review_id, "maybe", actor="user:anna")
        with pytest.raises(ReviewError):
            stores.reviews.decide(review_id, "reject", actor="user:anna")  # a comment is required
        with pytest.raises(ReviewError):
            stores.reviews.get(review_id + 1000)

    def test_four_eyes_needs_two_different_people(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores, four_eyes=True)
        first = stores.reviews.decide(review_id, "approve", actor="user:anna")
        assert (first.state, first.first_approver) == (ReviewState.open, "user:anna")
        with pytest.raises(FourEyesViolation):
            stores.reviews.decide(review_id, "approve", actor="user:anna")
        assert stores.reviews.decide(review_id, "approve", actor="user:bo").state == ReviewState.approved

    def test_a_stale_version_is_refused(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        seen = stores.reviews.get(review_id).version
        stores.reviews.assign(review_id, "user:bo", actor="user:bo")
        with pytest.raises(AlreadyDecided):
            stores.reviews.decide(review_id, "approve", actor="user:anna", expected_version=seen)

    def test_the_callers_check_of_who_may_decide_comes_first_and_refuses_with_nothing_written(
        self, stores: Stores
    ) -> None:
        class Refused(Exception):
            pass

        def refuse(row: object) -> None:
            raise Refused()

        _item_id, review_id = self.decision(stores)
        before = stores.last_seq()
        with pytest.raises(Refused):
            stores.reviews.decide(review_id, "approve", actor="user:karin", allowed=refuse)
        # Before the decision and its comment are checked, and before a stale version is told.
        with pytest.raises(Refused):
            stores.reviews.decide(review_id, "reject", actor="user:karin", allowed=refuse)
        with pytest.raises(Refused):
            stores.reviews.decide(review_id, "approve", actor="user:karin", expected_version=-1, allowed=refuse)
        assert stores.actions(before) == []
        assert stores.reviews.get(review_id).state == ReviewState.open
        seen: list[tuple[str, str]] = []
        # Allowed: the check saw the item's place; the decision's own checks follow, then the decision.
        with pytest.raises(ReviewError):
            stores.reviews.decide(
                review_id, "reject", actor="user:anna", allowed=lambda row: seen.append((row.tenant, row.queue))
            )
        decided = stores.reviews.decide(
            review_id, "approve", actor="user:anna", allowed=lambda row: seen.append((row.tenant, row.queue))
        )
        assert decided.state == ReviewState.approved
        assert seen == [(TENANT, "example.review")] * 2
        # A decided item: the refusal, not that it was decided.
        with pytest.raises(Refused):
            stores.reviews.decide(review_id, "approve", actor="user:karin", allowed=refuse)
        with pytest.raises(AlreadyDecided):
            stores.reviews.decide(review_id, "approve", actor="user:anna", allowed=lambda row: None)
        with pytest.raises(ReviewError):
            stores.reviews.decide(review_id + 1000, "approve", actor="user:anna", allowed=lambda row: None)

    def test_opening_with_a_viewer_is_an_access(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        before = stores.last_seq()
        stores.reviews.get(review_id)
        assert stores.actions(before) == []
        stores.reviews.get(review_id, viewer="user:anna")
        [event] = stores.audit.events(before)
        assert (event.action, event.actor, event.purpose) == ("review.opened", "user:anna", "handläggning")
        with pytest.raises(ReviewError):
            stores.reviews.get(review_id, tenants={OTHER})

    def test_an_item_the_viewer_may_not_see_is_unknown_and_its_opening_not_logged(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        before = stores.last_seq()
        with pytest.raises(ReviewError):
            stores.reviews.get(review_id, viewer="user:karin", visible=lambda row: row.queue != "example.review")
        assert stores.actions(before) == []
        row = stores.reviews.get(review_id, viewer="user:anna", visible=lambda row: row.queue == "example.review")
        assert row.id == review_id
        [event] = stores.audit.events(before)
        assert (event.action, event.actor, event.tenant) == ("review.opened", "user:anna", TENANT)

    def test_an_opening_starts_the_viewers_review_time_with_its_access_event(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        before = stores.last_seq()
        first = stores.clock.now()
        stores.reviews.get(review_id, viewer="user:anna", start_review_time=True)
        stores.clock.advance(60)
        # Reopened: review time runs from the first opening; another person's runs from theirs.
        stores.reviews.get(review_id, viewer="user:anna", start_review_time=True)
        stores.reviews.get(review_id, viewer="user:bo", start_review_time=True)
        stores.reviews.get(review_id, viewer="user:karin")
        events = stores.audit.events(before)
        assert [(e.action, e.actor) for e in events] == [
            ("review.opened", "user:anna"),
            ("review.opened", "user:anna"),
            ("review.opened", "user:bo"),
            ("review.opened", "user:karin"),
        ]
        assert stores.review_times() == [
            (review_id, "user:anna", first, None),
            (review_id, "user:bo", first + timedelta(seconds=60), None),
        ]
        assert events[0].time == first

    def test_an_item_the_viewer_may_not_see_starts_no_review_time(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        before = stores.last_seq()
        with pytest.raises(ReviewError):
            stores.reviews.get(review_id, viewer="user:karin", visible=lambda row: False, start_review_time=True)
        with pytest.raises(ReviewError):
            stores.reviews.get(review_id, viewer="user:karin", tenants={OTHER}, start_review_time=True)
        assert stores.actions(before) == []
        assert stores.review_times() == []

    def test_a_final_decision_ends_the_deciders_review_time(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores, four_eyes=True)
        start = stores.clock.now()
        for person in ("user:anna", "user:bo", "user:karin"):
            stores.reviews.get(review_id, viewer=person, start_review_time=True)
        stores.clock.advance(90)
        stores.reviews.decide(review_id, "approve", actor="user:anna")  # the first approval: still open
        assert [t[3] for t in stores.review_times()] == [None, None, None]
        stores.clock.advance(30)
        stores.reviews.decide(review_id, "approve", actor="user:bo")
        end = start + timedelta(seconds=120)
        assert stores.review_times() == [
            (review_id, "user:anna", start, None),
            (review_id, "user:bo", start, end),
            (review_id, "user:karin", start, None),
        ]

    def test_a_decided_item_is_opened_without_starting_review_time(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        stores.reviews.decide(review_id, "approve", actor="user:bo")
        before = stores.last_seq()
        stores.reviews.get(review_id, viewer="user:anna", start_review_time=True)
        assert stores.actions(before) == ["review.opened"]
        assert stores.review_times() == []
        with pytest.raises(ValueError):
            stores.reviews.get(review_id, start_review_time=True)

    def test_carrying_out_an_approval_finishes_the_item(self, stores: Stores) -> None:
        item_id, review_id = self.decision(stores)
        assert stores.reviews.claim_callbacks(ROBOT, TENANT) == []
        stores.reviews.decide(review_id, "approve", actor="user:anna")
        assert stores.reviews.due_robots() == {(ROBOT, TENANT)}
        [view] = stores.reviews.claim_callbacks(ROBOT, TENANT, lease_seconds=60)
        assert stores.reviews.claim_callbacks(ROBOT, TENANT) == []  # leased
        stores.reviews.callback_done(view, actor=ACTOR)
        row = stores.queue.get(item_id)
        assert row is not None and row.status == ItemStatus.done
        assert row.result == {"decision": "approved", "decided_by": "user:anna"}
        with pytest.raises(LeaseLost):
            stores.reviews.callback_done(view, actor=ACTOR)

    def test_a_returned_decision_puts_the_item_back_with_the_comment(self, stores: Stores) -> None:
        item_id, review_id = self.decision(stores)
        stores.reviews.decide(review_id, "return", actor="user:anna", comment="Kontrollera hyran")
        [view] = stores.reviews.claim_callbacks(ROBOT, TENANT)
        stores.reviews.callback_done(view, actor=ACTOR)
        again = claim_one(stores)
        assert (again.id, again.return_comment, again.attempts) == (item_id, "Kontrollera hyran", 1)

    def test_a_callback_claimed_again_after_its_lease_ran_out_says_so(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        stores.reviews.decide(review_id, "approve", actor="user:anna")
        [first] = stores.reviews.claim_callbacks(ROBOT, TENANT, limit=1, lease_seconds=60)
        assert not first.callback_reclaimed
        stores.clock.advance(61)  # its worker died mid-callback
        [again] = stores.reviews.claim_callbacks(ROBOT, TENANT, limit=1, lease_seconds=60)
        assert again.callback_reclaimed and again.callback_token != first.callback_token
        with pytest.raises(LeaseLost):
            stores.reviews.callback_done(first, actor=ACTOR)
        backoff = {"max_attempts": 3, "base_seconds": 10, "cap_seconds": 10, "actor": ACTOR}
        assert stores.reviews.callback_failed(again, "boom", **backoff)  # type: ignore[arg-type]
        stores.clock.advance(11)
        [retry] = stores.reviews.claim_callbacks(ROBOT, TENANT, limit=1, lease_seconds=60)
        assert not retry.callback_reclaimed  # a retry after a recorded failure is not a take-over

    def test_a_failing_callback_retries_then_goes_to_a_person(self, stores: Stores) -> None:
        item_id, review_id = self.decision(stores)
        stores.reviews.decide(review_id, "approve", actor="user:anna")
        [view] = stores.reviews.claim_callbacks(ROBOT, TENANT)
        backoff = {"max_attempts": 2, "base_seconds": 10, "cap_seconds": 10, "actor": ACTOR}
        assert stores.reviews.callback_failed(view, "boom", **backoff)  # type: ignore[arg-type]
        assert stores.reviews.claim_callbacks(ROBOT, TENANT) == []
        stores.clock.advance(11)
        [view] = stores.reviews.claim_callbacks(ROBOT, TENANT)
        assert not stores.reviews.callback_failed(view, "boom", **backoff)  # type: ignore[arg-type]
        decision, exception = stores.reviews.for_item(item_id)
        assert decision.callback_status == CallbackStatus.failed and decision.callback_error == "boom"
        assert (exception.kind, exception.state) == (ReviewKind.exception, ReviewState.open)

    def test_what_carrying_out_did_is_kept_for_the_decider(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        stores.reviews.decide(review_id, "approve", actor="user:anna")
        [waiting] = stores.reviews.waiting_callbacks(tenants={TENANT})
        assert (waiting.id, waiting.robot, waiting.decided_by, waiting.attempts) == (review_id, ROBOT, "user:anna", 0)
        assert stores.reviews.waiting_callbacks(tenants={OTHER}) == []
        [view] = stores.reviews.claim_callbacks(ROBOT, TENANT)
        before = stores.last_seq()
        stores.reviews.callback_done(view, actor=ACTOR, summary="Bokad i bemanningssystemet", reference="B-7")
        row = stores.reviews.get(review_id)
        assert (row.callback_status, row.callback_summary, row.callback_reference) == (
            CallbackStatus.done,
            "Bokad i bemanningssystemet",
            "B-7",
        )
        assert row.callback_finished_at == stores.clock.now() and row.callback_message is None
        assert stores.actions(before) == ["review.carried_out"]
        assert stores.reviews.waiting_callbacks() == []
        assert not stores.reviews.retry_callback(review_id, actor="user:anna")  # done is final

    def test_a_failed_decision_goes_back_to_the_decider_and_can_be_tried_again(self, stores: Stores) -> None:
        item_id, review_id = self.decision(stores)
        stores.reviews.decide(review_id, "approve", actor="user:anna")
        [view] = stores.reviews.claim_callbacks(ROBOT, TENANT)
        backoff = {"max_attempts": 0, "base_seconds": 10, "cap_seconds": 10, "actor": ACTOR}
        assert not stores.reviews.callback_failed(
            view,
            "ApplicationError: HTTP 503 from /api/bookings",
            message="Vikarien är redan bokad på ett annat pass.",
            **backoff,  # type: ignore[arg-type]
        )
        decision, exception = stores.reviews.for_item(item_id)
        assert decision.callback_status == CallbackStatus.failed
        assert decision.callback_message == "Vikarien är redan bokad på ett annat pass."
        assert decision.callback_finished_at == stores.clock.now()
        assert exception.assignee == "user:anna"  # back to the person who decided
        assert "Vikarien är redan bokad" in exception.summary and "/api/" not in exception.summary
        before = stores.last_seq()
        assert stores.reviews.retry_callback(review_id, actor="user:anna")
        assert stores.actions(before) == ["review.carry_out_retried"]
        decision, exception = stores.reviews.for_item(item_id)
        assert (decision.callback_status, decision.callback_message, decision.callback_attempts) == (
            CallbackStatus.pending,
            None,
            0,
        )
        assert exception.state == ReviewState.withdrawn  # the failure report is dealt with
        [again] = stores.reviews.claim_callbacks(ROBOT, TENANT)
        assert again.id == review_id
        assert not stores.reviews.retry_callback(review_id, actor="user:anna")  # pending, not failed

    def test_a_technical_failure_gets_general_swedish_words(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        stores.reviews.decide(review_id, "approve", actor="user:anna")
        [view] = stores.reviews.claim_callbacks(ROBOT, TENANT)
        backoff = {"max_attempts": 3, "base_seconds": 10, "cap_seconds": 10, "actor": ACTOR}
        assert stores.reviews.callback_failed(view, "ConnectorUnavailable: timeout", **backoff)  # type: ignore[arg-type]
        row = stores.reviews.get(review_id)
        assert row.callback_status == CallbackStatus.pending
        assert row.callback_message is not None and "Roboten kunde inte" in row.callback_message
        [waiting] = stores.reviews.waiting_callbacks()
        assert waiting.attempts == 1 and waiting.message == row.callback_message

    def due_review(self, stores: Stores, ref: str, *, queue: str = "q", seconds: float = 0) -> int:
        stores.queue.enqueue(ROBOT, TENANT, items(ref))
        item = claim_one(stores)
        due = stores.clock.now() + timedelta(seconds=seconds)
        review_id = stores.queue.complete(
            item, NeedsReview(queue=queue, title="t", summary="s", material={}, due=due), actor=ACTOR
        )
        assert review_id is not None
        return review_id

    def test_an_overdue_item_stays_open_and_is_marked_and_escalated_once(self, stores: Stores) -> None:
        review_id = self.due_review(stores, "a")
        assert stores.reviews.past_due() == []  # exactly at the deadline is not yet past it
        assert not stores.reviews.mark_overdue(review_id, actor="system:kollega")
        stores.clock.advance(1)
        [row] = stores.reviews.past_due()
        assert row.id == review_id and row.state == ReviewState.open and row.overdue_at is None
        before = stores.last_seq()
        assert stores.reviews.mark_overdue(review_id, actor="system:kollega")
        assert not stores.reviews.mark_overdue(review_id, actor="system:kollega")  # once
        assert stores.reviews.mark_escalated(review_id, actor="system:kollega", to="coordinators")
        assert not stores.reviews.mark_escalated(review_id, actor="system:kollega", to="coordinators")
        assert stores.actions(before) == ["review.overdue", "review.escalated"]
        row = stores.reviews.get(review_id)
        assert (row.state, row.overdue_at, row.escalated_at) == (
            ReviewState.open,
            stores.clock.now(),
            stores.clock.now(),
        )
        assert stores.audit.events(before)[-1].details["to"] == "coordinators"
        stores.reviews.decide(review_id, "approve", actor="user:anna")  # still decidable
        assert stores.reviews.past_due() == []

    def test_a_lapsed_item_is_closed_with_its_reason_and_its_work_item_settled(self, stores: Stores) -> None:
        review_id = self.due_review(stores, "a")
        before = stores.last_seq()
        assert stores.reviews.lapse(review_id, "Passet har redan börjat.", actor=ACTOR)
        assert stores.actions(before) == ["review.lapsed"]
        assert stores.audit.events(before)[-1].details["reason"] == "Passet har redan börjat."
        row = stores.reviews.get(review_id)
        assert (row.state, row.decision_comment, row.decided_by) == (
            ReviewState.lapsed,
            "Passet har redan börjat.",
            ACTOR,
        )
        assert row.callback_status == CallbackStatus.none  # nothing to carry out
        assert row.work_item_id is not None
        item = stores.queue.get(row.work_item_id)
        assert item is not None and item.status == ItemStatus.done
        assert item.result is not None and item.result["decision"] == "lapsed"
        assert not stores.reviews.lapse(review_id, "igen", actor=ACTOR)  # closed already
        with pytest.raises(AlreadyDecided):
            stores.reviews.decide(review_id, "approve", actor="user:anna")
        with pytest.raises(ReviewError):
            stores.reviews.lapse(review_id, " ", actor=ACTOR)

    def test_a_decided_item_does_not_lapse(self, stores: Stores) -> None:
        review_id = self.due_review(stores, "a")
        stores.reviews.decide(review_id, "approve", actor="user:anna")
        assert not stores.reviews.lapse(review_id, "För sent.", actor=ACTOR)
        assert stores.reviews.get(review_id).state == ReviewState.approved

    def test_hand_over_is_audited_and_keeps_the_comment(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        stores.reviews.assign(review_id, "user:anna", actor="user:anna")
        before = stores.last_seq()
        stores.reviews.hand_over(review_id, "user:bert", actor="user:anna", comment="Jag är ledig i morgon")
        assert stores.reviews.get(review_id).assignee == "user:bert"
        assert stores.actions(before) == ["review.handed_over"]
        details = stores.audit.events(before)[-1].details
        assert (details["from"], details["to"]) == ("user:anna", "user:bert")
        with pytest.raises(ReviewError):
            stores.reviews.hand_over(review_id, " ", actor="user:anna")
        stores.reviews.decide(review_id, "approve", actor="user:bert")
        with pytest.raises(AlreadyDecided):
            stores.reviews.hand_over(review_id, "user:anna", actor="user:carl")

    def test_backlog_counts_open_and_overdue_and_names_the_oldest(self, stores: Stores) -> None:
        assert stores.reviews.backlog() == []
        first = self.due_review(stores, "a", queue="q1", seconds=10)
        stores.clock.advance(5)
        self.due_review(stores, "b", queue="q1", seconds=3600)
        other = self.due_review(stores, "c", queue="q2", seconds=3600)
        stores.clock.advance(6)
        q1, q2 = stores.reviews.backlog()
        assert (q1.tenant, q1.queue, q1.open, q1.overdue, q1.oldest_id) == (TENANT, "q1", 2, 1, first)
        assert q1.oldest_created_at == stores.clock.now() - timedelta(seconds=11)
        assert (q2.queue, q2.open, q2.overdue, q2.oldest_id) == ("q2", 1, 0, other)
        assert stores.reviews.backlog(tenants={OTHER}) == []
        stores.reviews.decide(first, "approve", actor="user:anna")
        [q1, _q2] = stores.reviews.backlog(tenants={TENANT})
        assert (q1.open, q1.overdue) == (1, 0)

    def test_comments_and_assignment(self, stores: Stores) -> None:
        _item_id, review_id = self.decision(stores)
        before = stores.last_seq()
        stores.reviews.comment(review_id, "Ser bra ut", actor="user:anna")
        with pytest.raises(ReviewError):
            stores.reviews.comment(review_id, "  ", actor="user:anna")
        stores.reviews.assign(review_id, "user:anna", actor="user:anna")
        assert stores.reviews.get(review_id).assignee == "user:anna"
        assert stores.actions(before) == ["review.commented", "review.assigned"]


class TestRuns:
    """Runs: created once per slot, claimed, heart-beaten, finished with counts."""

    def test_lifecycle(self, stores: Stores) -> None:
        run_id = stores.runs.create(robot=ROBOT, tenant=TENANT, trigger="manual")
        assert run_id is not None
        claimed = stores.runs.claim_queued("w1", 60)
        assert claimed is not None and claimed.id == run_id and claimed.status == RunStatus.running
        assert stores.runs.claim_queued("w2", 60) is None
        stores.runs.start(run_id, "w1", 60)
        stores.runs.heartbeat(run_id, 60, {"collected": 3, "rechecked": 1})
        run = stores.runs.get(run_id)
        assert run is not None and run.collected == 3 and run.started_at == stores.clock.now()
        before = stores.last_seq()
        stores.runs.finish(run_id, RunStatus.succeeded, {"collected": 3, "done": 2})
        run = stores.runs.get(run_id)
        assert run is not None and (run.status, run.done, run.lease_owner) == (RunStatus.succeeded, 2, None)
        assert stores.actions(before) == ["run.succeeded"]

    def test_a_dead_workers_run_is_claimed_again(self, stores: Stores) -> None:
        run_id = stores.runs.create(robot=ROBOT, tenant=TENANT, trigger="manual")
        assert stores.runs.claim_queued("w1", 30) is not None
        stores.clock.advance(31)
        again = stores.runs.claim_queued("w2", 30)
        assert again is not None and again.id == run_id and again.lease_owner == "w2"

    def test_a_dead_workers_run_is_resumed_before_any_new_run(self, stores: Stores) -> None:
        dead = stores.runs.create(robot=ROBOT, tenant=OTHER, trigger="manual")
        assert dead is not None and stores.runs.claim_queued("w1", 30) is not None
        stores.clock.advance(5)
        waiting = stores.runs.create(robot=ROBOT, tenant=TENANT, trigger="manual")  # queued before the lease ran out
        stores.clock.advance(31)
        resumed = stores.runs.claim_queued("w2", 30)
        assert resumed is not None and resumed.id == dead and resumed.lease_owner == "w2"
        nxt = stores.runs.claim_queued("w2", 30)
        assert nxt is not None and nxt.id == waiting

    def test_a_busy_worker_takes_only_dead_workers_runs_of_other_municipalities(self, stores: Stores) -> None:
        mine = stores.runs.create(robot=ROBOT, tenant=TENANT, trigger="manual")
        dead = stores.runs.create(robot=ROBOT, tenant=OTHER, trigger="manual")
        assert stores.runs.claim_queued("w1", 30) is not None  # w1 runs TENANT's
        assert stores.runs.claim_queued("dead", 30) is not None  # the other's, by a worker that dies
        queued = stores.runs.create(robot="other", tenant=OTHER, trigger="manual")
        assert stores.runs.claim_queued("w1", 30, exclude_tenants={TENANT}, resumable_only=True) is None
        stores.clock.advance(31)
        got = stores.runs.claim_queued("w1", 30, exclude_tenants={TENANT}, resumable_only=True)
        assert got is not None and got.id == dead  # not TENANT's own (its lease looks expired too), not the new one
        assert stores.runs.claim_queued("w1", 30, exclude_tenants={TENANT, OTHER}, resumable_only=True) is None
        nxt = stores.runs.claim_queued("w2", 30)
        assert nxt is not None and nxt.id in (mine, queued)

    def test_queued_runs_are_shared_fairly_by_municipality(self, stores: Stores) -> None:
        first = stores.runs.create(robot=ROBOT, tenant=TENANT, trigger="manual")
        stores.clock.advance(1)
        second = stores.runs.create(robot="other", tenant=TENANT, trigger="manual")
        stores.clock.advance(1)
        other = stores.runs.create(robot=ROBOT, tenant=OTHER, trigger="manual")  # the newest
        got = [stores.runs.claim_queued(w, 60) for w in ("w1", "w2", "w3")]
        # TENANT has a run going once the first is claimed: the other municipality's comes next.
        assert [r.id if r else None for r in got] == [first, other, second]

    def test_heartbeat_and_finish_only_for_the_runs_owner(self, stores: Stores) -> None:
        run_id = stores.runs.create(robot=ROBOT, tenant=TENANT, trigger="api")
        assert run_id is not None and stores.runs.claim_queued("w1", 30) is not None
        stores.runs.heartbeat(run_id, 30, {}, owner="w1")
        stores.clock.advance(31)
        assert stores.runs.claim_queued("w2", 30) is not None  # w1 stalled; w2 resumes the run
        with pytest.raises(LeaseLost):
            stores.runs.heartbeat(run_id, 30, {"done": 9}, owner="w1")
        with pytest.raises(LeaseLost):
            stores.runs.finish(run_id, RunStatus.succeeded, {"done": 9}, owner="w1")
        stores.runs.finish(run_id, RunStatus.succeeded, {"done": 2}, owner="w2")
        run = stores.runs.get(run_id)
        assert run is not None and (run.status, run.done) == (RunStatus.succeeded, 2)

    def test_a_dead_in_process_run_is_abandoned_not_resumed(self, stores: Stores) -> None:
        mine = stores.runs.create(robot=ROBOT, tenant=TENANT, trigger="manual")
        workers = stores.runs.create(robot=ROBOT, tenant=TENANT, trigger="api")
        assert mine is not None and workers is not None
        stores.runs.start(mine, IN_PROCESS_OWNER + "host:1:abc", 30)
        assert stores.runs.claim_queued("w1", 30) is not None  # the worker's run
        assert stores.runs.mark_abandoned() == []  # heartbeats still fresh
        stores.clock.advance(31)
        before = stores.last_seq()
        assert stores.runs.mark_abandoned() == [mine]
        assert stores.actions(before) == ["run.abandoned"]
        run = stores.runs.get(mine)
        assert run is not None and (run.status, run.lease_owner) == (RunStatus.abandoned, None)
        resumed = stores.runs.claim_queued("w2", 30)
        assert resumed is not None and resumed.id == workers  # resumed, not abandoned
        assert stores.runs.claim_queued("w3", 30) is None  # and the abandoned one is never resumed

    def test_a_slot_runs_once(self, stores: Stores) -> None:
        slot = {
            "robot": ROBOT,
            "tenant": TENANT,
            "trigger": "schedule",
            "schedule": "nightly",
            "slot": "2026-11-23T01:00",
        }
        assert stores.runs.create(**slot) is not None  # type: ignore[arg-type]
        assert stores.runs.create(**slot) is None  # type: ignore[arg-type]
        assert stores.runs.create(**{**slot, "tenant": OTHER}) is not None  # type: ignore[arg-type]
        assert stores.runs.last_slot("nightly") == "2026-11-23T01:00"

    def test_errors_are_redacted(self, stores: Stores) -> None:
        run_id = stores.runs.create(robot=ROBOT, tenant=TENANT, trigger="manual")
        assert run_id is not None
        stores.runs.finish(run_id, RunStatus.failed, {}, "lookup of 19121212-1212 failed")
        run = stores.runs.get(run_id)
        assert run is not None and run.error is not None and "1212-1212" not in run.error


class TestRunRecords:
    """A run keeps its robot's version and its log, filtered by level and item, in order."""

    def test_version_and_log(self, stores: Stores) -> None:
        run_id = stores.runs.create(robot=ROBOT, tenant=TENANT, trigger="manual")
        assert run_id is not None
        stores.runs.record_version(run_id, "1.4.2", "ab" * 32)
        now = stores.clock.now()
        entries = [
            RunLogEntry(1, now, "info", "run started", None, {"trigger": "manual"}),
            RunLogEntry(2, now, "warning", "retrying", 7, {"attempt": 2}),
            RunLogEntry(3, now, "error", "item failed", 8, {"error": "ConnectorError: down"}),
        ]
        stores.runs.append_log(run_id, entries[:2])
        stores.runs.append_log(run_id, entries[2:], dropped=4)
        run = stores.runs.get(run_id)
        assert run is not None and (run.robot_version, run.code_hash, run.log_dropped) == ("1.4.2", "ab" * 32, 4)
        assert [e.seq for e in stores.runs.run_log(run_id)] == [1, 2, 3]
        assert stores.runs.run_log(run_id)[1] == entries[1]
        assert [e.event for e in stores.runs.run_log(run_id, level="warning")] == ["retrying", "item failed"]
        assert [e.seq for e in stores.runs.run_log(run_id, item_id=8)] == [3]
        assert [e.seq for e in stores.runs.run_log(run_id, limit=1)] == [1]
        assert stores.runs.run_log(run_id, level="error", item_id=7) == []
        with pytest.raises(ValueError, match="unknown log level"):
            stores.runs.run_log(run_id, level="verbose")


class TestAuditAndArtifacts:
    """The audit chain verifies; artifacts are found per item and expire."""

    def test_audit_chain(self, stores: Stores) -> None:
        seq = stores.audit.record(actor="user:anna", action="test", tenant=TENANT, details={"n": 1})
        access = stores.audit.data_access(
            actor=ACTOR, tenant=TENANT, subject="191212121212", system="register", purpose="test"
        )
        assert access == seq + 1
        event = stores.audit.events(seq)[0]
        assert (event.action, event.details) == ("data.read", {"system": "register"})
        result = stores.audit.verify()
        assert result.ok and result.last_seq == access

    def test_artifacts(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("a"))
        item = claim_one(stores)
        art = stores.artifacts.save(
            tenant=TENANT,
            work_item_id=item.id,
            kind="screenshot",
            filename="s.png",
            content_type="image/png",
            data=b"x",
        )
        assert [a.id for a in stores.artifacts.for_item(item.id)] == [art]
        assert stores.artifacts.for_item(item.id)[0].sensitive
        assert stores.artifacts.purge_expired() == 0
        stores.clock.advance(31 * 86400)
        assert stores.artifacts.purge_expired() == 1
        assert list(stores.artifacts.for_item(item.id)) == []


class TestAlerts:
    """A robot's operations alert: raised once per key, kept per tenant (RunContext.alert's port)."""

    def test_raised_once_per_key(self, stores: Stores) -> None:
        kwargs = {"kind": "robot", "robot": "ronney", "run_id": None, "message": "Riksnormen för 2027 saknas"}
        assert stores.alerts.raise_alert(key="robot:ronney:0000:norm-missing-2027", tenant=TENANT, **kwargs)
        assert not stores.alerts.raise_alert(key="robot:ronney:0000:norm-missing-2027", tenant=TENANT, **kwargs)
        assert stores.alerts.raise_alert(key="robot:ronney:9999:norm-missing-2027", tenant=OTHER, **kwargs)
        assert list(stores.alerts.alert_keys(TENANT)) == ["robot:ronney:0000:norm-missing-2027"]
        assert len(stores.alerts.alert_keys()) == 2


class TestDecisionData:
    """A robot's own decision data (changed amounts) is kept, audited and handed to on_decision."""

    def test_kept_with_the_decision_and_handed_over(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("d"))
        item = claim_one(stores)
        review_id = stores.queue.complete(item, needs_review(), actor=ACTOR)
        assert review_id is not None
        data = {"line.0.decision": "delvis", "line.0.amount": "4000", "line.0.reason": "Hyran är för hög"}
        before = stores.last_seq()
        decided = stores.reviews.decide(review_id, "approve", actor="user:anna", decision_data=data)
        assert decided.decision_data == data
        [event] = stores.audit.events(before)
        assert event.action == "review.approved" and event.details["decision_data"] == data
        [view] = stores.reviews.claim_callbacks(ROBOT, TENANT, lease_seconds=60)
        assert view.decision_data == data

    def test_an_approval_without_a_required_confirmation_is_refused(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("c"))
        item = claim_one(stores)
        material = {"required_on_approve": {"confirm_table": "Jag har kontrollerat beloppen"}}
        outcome = NeedsReview(queue="example.review", title="Ärende", summary="Förslag", material=material)
        review_id = stores.queue.complete(item, outcome, actor=ACTOR)
        assert review_id is not None
        with pytest.raises(ReviewError) as info:
            stores.reviews.decide(review_id, "approve", actor="user:anna")
        assert info.value.code == "confirmation_required" and "kontrollerat" in info.value.message
        assert stores.reviews.get(review_id).state == ReviewState.open
        # Rejecting needs no confirmation; approving with it ticked is allowed.
        decided = stores.reviews.decide(review_id, "approve", actor="user:anna", decision_data={"confirm_table": "1"})
        assert decided.state == ReviewState.approved

    def test_a_changed_part_without_its_reason_is_refused(self, stores: Stores) -> None:
        stores.queue.enqueue(ROBOT, TENANT, items("r"))
        item = claim_one(stores)
        part = {
            "label": "Hyra",
            "reason": "line.0.reason",
            "unchanged": {"line.0.decision": ["", "bifall"], "line.0.amount": ["", "6500"]},
        }
        outcome = NeedsReview(
            queue="example.review", title="Ärende", summary="Förslag", material={"reasons_on_change": [part]}
        )
        review_id = stores.queue.complete(item, outcome, actor=ACTOR)
        assert review_id is not None
        for change in ({"line.0.decision": "avslag"}, {"line.0.amount": "5 000"}, {"line.0.reason": " "}):
            if "line.0.reason" in change:
                change = {"line.0.decision": "delvis", "line.0.amount": "5000", **change}
            with pytest.raises(ReviewError) as info:
                stores.reviews.decide(review_id, "approve", actor="user:anna", decision_data=change)
            assert info.value.code == "reason_required" and info.value.details["missing"] == ["Hyra"]
        assert stores.reviews.get(review_id).state == ReviewState.open
        # No change (the proposed amount written out, with spaces) needs no reason; a change with one is kept.
        unchanged = {"line.0.decision": "bifall", "line.0.amount": "6 500", "line.0.reason": ""}
        stores.reviews.decide(review_id, "reject", actor="user:anna", comment="Fel", decision_data=unchanged)
        stores.queue.enqueue(ROBOT, TENANT, items("r2"))
        review_id = stores.queue.complete(claim_one(stores), outcome, actor=ACTOR)
        assert review_id is not None
        stores.reviews.decide(review_id, "approve", actor="user:anna", decision_data=unchanged)


class TestLockStore:
    """Target locks: one holder per key, a lease that a dead holder loses, release by the holder only."""

    @pytest.fixture
    def locks(self, stores: Stores, tmp_path: Path) -> Iterator[LockStore]:
        if stores.backend == "memory":
            from core.testing.memory import MemoryLockStore, MemoryState

            yield MemoryLockStore(MemoryState(stores.clock))
            return
        from core.locks import SqlLockStore

        db = stores.queue.db  # type: ignore[attr-defined]
        yield SqlLockStore(db, stores.clock)

    def test_one_holder_at_a_time(self, locks: LockStore) -> None:
        assert locks.acquire("payroll:x:E1:2026-12", "a", 60)
        assert not locks.acquire("payroll:x:E1:2026-12", "b", 60)
        assert locks.acquire("payroll:x:E2:2026-12", "b", 60)  # another target is free
        assert locks.holder("payroll:x:E1:2026-12") == "a"

    def test_the_holder_renews_and_releases(self, locks: LockStore, stores: Stores) -> None:
        assert locks.acquire("k", "a", 60)
        stores.clock.advance(50)
        assert locks.acquire("k", "a", 60)  # renewed: 60 s from now
        stores.clock.advance(50)
        assert not locks.acquire("k", "b", 60)
        assert not locks.release("k", "b")  # only the holder releases
        assert locks.release("k", "a")
        assert locks.holder("k") is None
        assert locks.acquire("k", "b", 60)

    def test_a_dead_holder_frees_the_target_after_its_lease(self, locks: LockStore, stores: Stores) -> None:
        assert locks.acquire("k", "dead", 30)
        stores.clock.advance(29)
        assert not locks.acquire("k", "b", 30)
        stores.clock.advance(2)
        assert locks.holder("k") is None
        assert locks.acquire("k", "b", 30)
        assert not locks.release("k", "dead")  # too late: it is b's now
        assert locks.holder("k") == "b"

    def test_long_keys_stay_distinct(self, locks: LockStore) -> None:
        base = "payroll:https://personal.example.se/a/very/long/path/to/the/payroll/application/" + "x" * 80
        assert locks.acquire(base + ":E1:2026-12", "a", 60)
        assert locks.acquire(base + ":E2:2026-12", "b", 60)
        assert not locks.acquire(base + ":E1:2026-12", "b", 60)

    def test_concurrent_contenders_one_wins(self, locks: LockStore) -> None:
        import threading

        wins: list[str] = []
        barrier = threading.Barrier(6)

        def contend(owner: str) -> None:
            barrier.wait()
            if locks.acquire("shift:S1", owner, 60):
                wins.append(owner)

        threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1


class TestRobotStateStore:
    """A robot's own state: versioned per robot, tenant and key; a stale write is refused; write once."""

    @pytest.fixture
    def state(self, stores: Stores) -> RobotStateStore:
        if stores.backend == "memory":
            from core.testing.memory import MemoryRobotStateStore, MemoryState

            return MemoryRobotStateStore(MemoryState(stores.clock))
        from core.robot_state import SqlRobotStateStore

        return SqlRobotStateStore(stores.queue.db, stores.clock)  # type: ignore[attr-defined]

    def test_kept_per_robot_tenant_and_key(self, state: RobotStateStore) -> None:
        assert state.get("ronney", TENANT, "warnings:A1") is None
        assert state.put("ronney", TENANT, "warnings:A1", {"open": ["x"]}) == 1
        assert state.get("ronney", TENANT, "warnings:A1") == ({"open": ["x"]}, 1)
        assert state.get("ronney", OTHER, "warnings:A1") is None
        assert state.get("bosse", TENANT, "warnings:A1") is None
        assert state.put("ronney", TENANT, "warnings:A1", {"open": []}) == 2
        assert state.get("ronney", TENANT, "warnings:A1") == ({"open": []}, 2)

    def test_a_stale_version_is_refused_and_nothing_is_lost(self, state: RobotStateStore) -> None:
        state.put("ronney", TENANT, "k", {"n": 1})
        assert state.put("ronney", TENANT, "k", {"n": 2}, expected_version=1) == 2
        # A second writer that read version 1 is refused: it must read again.
        assert state.put("ronney", TENANT, "k", {"n": 99}, expected_version=1) is None
        assert state.get("ronney", TENANT, "k") == ({"n": 2}, 2)

    def test_version_zero_writes_once(self, state: RobotStateStore) -> None:
        assert state.put("ronney", TENANT, "snapshot:A1", {"v": "first"}, expected_version=0) == 1
        assert state.put("ronney", TENANT, "snapshot:A1", {"v": "second"}, expected_version=0) is None
        assert state.get("ronney", TENANT, "snapshot:A1") == ({"v": "first"}, 1)
        assert state.put("ronney", TENANT, "other", {"v": 1}, expected_version=3) is None
        assert state.get("ronney", TENANT, "other") is None

    def test_a_bad_key_is_refused(self, state: RobotStateStore) -> None:
        with pytest.raises(ConfigError):
            state.put("ronney", TENANT, "x" * 201, {})
