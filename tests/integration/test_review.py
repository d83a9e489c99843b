"""The review queue on SQLite and PostgreSQL: decisions, four-eyes, races, deadlines, the access log."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from core import audit
from core import review as review_module
from core.errors import AlreadyDecided, ConfigError, FourEyesViolation, ReviewError
from core.review import ReviewQueue, create_review
from core.runs import SqlRunStore
from core.storage.db import Database
from core.storage.models import AuditEvent, AuditHead, CallbackStatus, ReviewItem, ReviewKind, ReviewState
from core.storage.web_models import ReviewTiming
from core.testing import FakeClock

TENANT = "0000"
SUBJECT = "191212121212"  # Skatteverket's test personnummer


@pytest.fixture
def queue(db: Database, clock: FakeClock) -> ReviewQueue:
    SqlRunStore(db, clock).ensure_tenant(TENANT, "Testkommun")
    SqlRunStore(db, clock).ensure_tenant("9999", "Annan kommun")
    return ReviewQueue(db, clock)


def new_review(
    db: Database, clock: FakeClock, *, four_eyes: bool = False, due_in: float | None = None, tenant: str = TENANT
) -> int:
    with db.session() as s:
        review = create_review(
            s,
            tenant=tenant,
            robot="example",
            work_item_id=None,
            queue="example.review",
            kind=ReviewKind.decision,
            title="Ärende demo-1",
            summary="Föreslaget belopp 1037 kr",
            material={"amount": 1037},
            subject=SUBJECT,
            actor="robot:example",
            now=clock.now(),
            due_at=clock.now() + timedelta(seconds=due_in) if due_in is not None else None,
            four_eyes=four_eyes,
        )
        return review.id


def events(db: Database) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def actions(db: Database) -> list[str]:
    return [e.action for e in events(db)]


def row(db: Database, review_id: int) -> ReviewItem:
    with db.session() as s:
        item = s.get(ReviewItem, review_id)
        assert item is not None
        return item


class TestDecisions:
    """open → approved / rejected / returned; final and audited."""

    def test_created_open_and_audited(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        item = row(db, rid)
        assert item.state == ReviewState.open
        assert item.callback_status == CallbackStatus.none
        assert item.version == 1
        (created,) = events(db)
        assert (created.action, created.actor, created.subject) == ("review.created", "robot:example", SUBJECT)
        assert created.details["review_id"] == rid
        assert [r.id for r in queue.list()] == [rid]

    def test_approve(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        clock.advance(60)
        decided = queue.decide(rid, "approve", actor="user:anna")
        assert decided.state == ReviewState.approved
        item = row(db, rid)
        assert (item.state, item.decided_by, item.decided_at) == (ReviewState.approved, "user:anna", clock.now())
        assert item.callback_status == CallbackStatus.pending  # the robot carries it out next
        assert item.version == 2
        last = events(db)[-1]
        assert (last.action, last.actor, last.subject, last.tenant) == ("review.approved", "user:anna", SUBJECT, TENANT)
        assert last.details["review_id"] == rid
        assert queue.list() == []  # no longer open
        assert [r.id for r in queue.list(state=ReviewState.approved)] == [rid]

    @pytest.mark.parametrize(
        ("decision", "state"), [("reject", ReviewState.rejected), ("return", ReviewState.returned)]
    )
    def test_reject_and_return_with_comment(
        self, db: Database, clock: FakeClock, queue: ReviewQueue, decision: str, state: ReviewState
    ) -> None:
        rid = new_review(db, clock)
        queue.decide(rid, decision, actor="user:anna", comment="Beloppet stämmer inte")
        item = row(db, rid)
        assert (item.state, item.decision_comment, item.decided_by) == (state, "Beloppet stämmer inte", "user:anna")
        assert [(c.author, c.text) for c in queue.comments(rid)] == [("user:anna", "Beloppet stämmer inte")]
        assert actions(db)[-1] == f"review.{state.value}"

    @pytest.mark.parametrize("decision", ["reject", "return"])
    @pytest.mark.parametrize("comment", [None, "", "   "])
    def test_reject_and_return_need_a_comment(
        self, db: Database, clock: FakeClock, queue: ReviewQueue, decision: str, comment: str | None
    ) -> None:
        rid = new_review(db, clock)
        with pytest.raises(ReviewError, match="comment is required"):
            queue.decide(rid, decision, actor="user:anna", comment=comment)
        assert row(db, rid).state == ReviewState.open
        assert actions(db) == ["review.created"]

    def test_unknown_decision(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        with pytest.raises(ReviewError, match="unknown decision"):
            queue.decide(rid, "maybe", actor="user:anna")

    def test_unknown_review_item(self, queue: ReviewQueue) -> None:
        with pytest.raises(ReviewError, match="does not exist"):
            queue.decide(4711, "approve", actor="user:anna")

    def test_every_transition_is_audited_and_the_chain_verifies(
        self, db: Database, clock: FakeClock, queue: ReviewQueue
    ) -> None:
        a, b, c = new_review(db, clock), new_review(db, clock, four_eyes=True), new_review(db, clock, due_in=60)
        queue.assign(a, "user:anna", actor="user:chef")
        queue.comment(a, "Tittar på det", actor="user:anna")
        queue.decide(a, "return", actor="user:anna", comment="Komplettera")
        queue.decide(b, "approve", actor="user:anna")
        queue.decide(b, "approve", actor="user:bertil")
        clock.advance(120)
        assert queue.mark_overdue(c, actor="system:kollega")
        assert queue.mark_escalated(c, actor="system:kollega", to="coordinators,operations")
        queue.hand_over(c, "user:bertil", actor="user:chef", comment="Anna är sjuk")
        assert actions(db) == [
            "review.created",
            "review.created",
            "review.created",
            "review.assigned",
            "review.commented",
            "review.returned",
            "review.first_approval",
            "review.approved",
            "review.overdue",
            "review.escalated",
            "review.handed_over",
        ]
        assert row(db, c).state == ReviewState.open and row(db, c).assignee == "user:bertil"
        with db.session() as s:
            assert audit.verify(s).ok


class TestFourEyes:
    """Under four-eyes, two different people must approve."""

    def test_two_different_people(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock, four_eyes=True)
        first = queue.decide(rid, "approve", actor="user:anna")
        assert first.state == ReviewState.open  # still waiting for the second person
        assert first.first_approver == "user:anna"
        assert row(db, rid).callback_status == CallbackStatus.none  # nothing carried out yet
        clock.advance(30)
        second = queue.decide(rid, "approve", actor="user:bertil")
        assert second.state == ReviewState.approved
        item = row(db, rid)
        assert (item.first_approver, item.decided_by) == ("user:anna", "user:bertil")
        assert item.callback_status == CallbackStatus.pending
        approved = events(db)[-1]
        assert approved.action == "review.approved"
        assert approved.details["first_approver"] == "user:anna"
        assert approved.details["four_eyes"] is True

    def test_same_person_twice_is_refused(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock, four_eyes=True)
        queue.decide(rid, "approve", actor="user:anna")
        with pytest.raises(FourEyesViolation):
            queue.decide(rid, "approve", actor="user:anna")
        item = row(db, rid)
        assert item.state == ReviewState.open
        assert item.decided_by is None
        assert actions(db) == ["review.created", "review.first_approval"]

    def test_second_person_may_reject(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock, four_eyes=True)
        queue.decide(rid, "approve", actor="user:anna")
        queue.decide(rid, "reject", actor="user:bertil", comment="Fel underlag")
        assert row(db, rid).state == ReviewState.rejected

    def test_without_four_eyes_one_approval_decides(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        assert queue.decide(rid, "approve", actor="user:anna").state == ReviewState.approved


class TestAlreadyDecided:
    """The second decider, or one who saw a stale version, gets AlreadyDecided."""

    @pytest.mark.parametrize("second", ["approve", "reject", "return"])
    def test_second_decider(self, db: Database, clock: FakeClock, queue: ReviewQueue, second: str) -> None:
        rid = new_review(db, clock)
        queue.decide(rid, "approve", actor="user:anna")
        with pytest.raises(AlreadyDecided, match="approved by user:anna"):
            queue.decide(rid, second, actor="user:bertil", comment="x")
        item = row(db, rid)
        assert (item.state, item.decided_by) == (ReviewState.approved, "user:anna")
        assert actions(db).count("review.approved") == 1

    def test_stale_expected_version(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        seen = queue.get(rid).version  # the page the person looked at
        queue.assign(rid, "user:bertil", actor="user:chef")  # changed meanwhile
        with pytest.raises(AlreadyDecided, match="changed while you were looking"):
            queue.decide(rid, "approve", actor="user:anna", expected_version=seen)
        assert row(db, rid).state == ReviewState.open
        queue.decide(rid, "approve", actor="user:anna", expected_version=row(db, rid).version)
        assert row(db, rid).state == ReviewState.approved

    def test_stale_version_after_first_approval(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock, four_eyes=True)
        seen = row(db, rid).version
        queue.decide(rid, "approve", actor="user:anna", expected_version=seen)
        with pytest.raises(AlreadyDecided):
            queue.decide(rid, "approve", actor="user:bertil", expected_version=seen)

    def test_concurrent_deciders_one_wins(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        people = [f"user:p{i}" for i in range(6)]
        start = threading.Barrier(len(people))
        outcomes: dict[str, Any] = {}

        def decide(actor: str) -> None:
            start.wait()
            try:
                queue.decide(rid, "approve", actor=actor)
                outcomes[actor] = "won"
            except BaseException as exc:  # recorded and checked in the test's thread
                outcomes[actor] = exc

        threads = [threading.Thread(target=decide, args=(p,)) for p in people]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        winners = [p for p, o in outcomes.items() if o == "won"]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, AlreadyDecided) for p, o in outcomes.items() if p not in winners), outcomes
        assert row(db, rid).decided_by == winners[0]
        assert actions(db).count("review.approved") == 1


class TestDeadlines:
    """Open items past their deadline stay open: marked overdue once (audited); decided or undated ones never."""

    def test_overdue_items_are_marked_not_closed(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        soon = new_review(db, clock, due_in=3600)
        later = new_review(db, clock, due_in=7200)
        undated = new_review(db, clock)
        decided = new_review(db, clock, due_in=60)
        queue.decide(decided, "approve", actor="user:anna")
        assert queue.past_due() == []
        clock.advance(3600)
        assert queue.past_due() == []  # exactly at the deadline is not yet past it
        clock.advance(1)
        assert [r.id for r in queue.past_due()] == [soon]
        assert queue.mark_overdue(soon, actor="system:kollega")
        assert not queue.mark_overdue(later, actor="system:kollega")  # not past its deadline
        assert (row(db, soon).state, row(db, soon).overdue_at) == (ReviewState.open, clock.now())
        marked = events(db)[-1]
        assert (marked.action, marked.actor, marked.subject) == ("review.overdue", "system:kollega", SUBJECT)
        assert marked.details["review_id"] == soon
        clock.advance(86400)
        assert [r.id for r in queue.past_due()] == [soon, later]
        assert row(db, undated).state == ReviewState.open and row(db, decided).state == ReviewState.approved

    def test_an_overdue_item_can_still_be_decided(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock, due_in=60)
        clock.advance(61)
        queue.mark_overdue(rid, actor="system:kollega")
        assert queue.decide(rid, "approve", actor="user:anna").state == ReviewState.approved

    def test_list_orders_by_deadline(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        undated = new_review(db, clock)
        late = new_review(db, clock, due_in=7200)
        early = new_review(db, clock, due_in=60)
        assert [r.id for r in queue.list()] == [early, late, undated]


class TestAssignmentAndComments:
    """Assignment of open items; comments by anyone; both audited."""

    def test_assign_and_unassign(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        queue.assign(rid, "user:anna", actor="user:chef")
        item = row(db, rid)
        assert (item.assignee, item.version) == ("user:anna", 2)
        queue.assign(rid, None, actor="user:chef")
        assert row(db, rid).assignee is None
        assigned = [e for e in events(db) if e.action == "review.assigned"]
        assert [(e.actor, e.details["assignee"]) for e in assigned] == [("user:chef", "user:anna"), ("user:chef", None)]

    def test_decided_item_cannot_be_assigned(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        queue.decide(rid, "approve", actor="user:anna")
        with pytest.raises(AlreadyDecided):
            queue.assign(rid, "user:bertil", actor="user:chef")

    def test_comments(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        queue.comment(rid, "Ringde sökande", actor="user:anna")
        clock.advance(10)
        queue.comment(rid, "Underlag inkommet", actor="user:bertil")
        comments = queue.comments(rid)
        assert [(c.author, c.text) for c in comments] == [
            ("user:anna", "Ringde sökande"),
            ("user:bertil", "Underlag inkommet"),
        ]
        assert comments[1].created_at == clock.now()
        assert actions(db).count("review.commented") == 2

    def test_empty_comment_refused(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        with pytest.raises(ReviewError, match="empty"):
            queue.comment(rid, "  ", actor="user:anna")
        assert queue.comments(rid) == []

    def test_comment_on_unknown_item(self, queue: ReviewQueue) -> None:
        with pytest.raises(ReviewError, match="does not exist"):
            queue.comment(4711, "hej", actor="user:anna")


class TestAccessLog:
    """Opening a review item with a named viewer writes 'review.opened' to the access log."""

    def test_get_with_viewer_is_audited(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        clock.advance(5)
        item = queue.get(rid, viewer="user:anna")
        assert item.id == rid
        opened = events(db)[-1]
        assert opened.action == "review.opened"
        assert opened.actor == "user:anna"
        assert opened.subject == SUBJECT
        assert opened.tenant == TENANT
        assert opened.purpose
        assert opened.details["review_id"] == rid
        assert opened.time == clock.now()

    def test_every_opening_is_logged(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        queue.get(rid, viewer="user:anna")
        queue.get(rid, viewer="user:bertil")
        queue.get(rid, viewer="user:anna")
        assert [e.actor for e in events(db) if e.action == "review.opened"] == ["user:anna", "user:bertil", "user:anna"]

    def test_an_opening_whose_access_event_fails_starts_no_review_time(
        self, db: Database, clock: FakeClock, queue: ReviewQueue
    ) -> None:
        """The access event and the review time's start are written together or not at all."""
        rid = new_review(db, clock)
        with db.session() as s:
            s.execute(delete(AuditHead))  # an append now fails: the chain has no head to advance
        with pytest.raises(ConfigError, match="no head row"):
            queue.get(rid, viewer="user:anna", start_review_time=True)
        with db.session() as s:
            assert s.scalars(select(ReviewTiming)).all() == []
        assert actions(db) == ["review.created"]

    def test_an_opening_never_waits_for_a_deciders_lock_on_the_item(
        self, db: Database, clock: FakeClock, queue: ReviewQueue
    ) -> None:
        """A decider locks the item, then the audit head; an opening holds the head while it writes
        its review time, so it must not wait for the decider's lock (or the two deadlock)."""
        if db.dialect != "postgresql":
            pytest.skip("SQLite writes one transaction at a time")
        rid = new_review(db, clock)
        failures: list[BaseException] = []

        def open_it() -> None:
            try:
                queue.get(rid, viewer="user:anna", start_review_time=True)
            except BaseException as exc:
                failures.append(exc)

        with db.session() as s:  # the decider's transaction, as ReviewQueue.decide locks the item
            s.execute(review_module._BY_ID_LOCKED, {"review_id": rid}).scalar_one()
            opening = threading.Thread(target=open_it)
            opening.start()
            opening.join(timeout=60)
            assert not opening.is_alive(), "the opening waited for the decider's lock on the item"
            audit.append(s, actor="user:bo", action="review.approved", tenant=TENANT, now=clock.now())
        assert failures == []
        assert actions(db)[-2:] == ["review.opened", "review.approved"]
        with db.session() as s:
            assert [t.actor for t in s.scalars(select(ReviewTiming))] == ["user:anna"]

    def test_get_without_viewer_is_not_an_access(self, db: Database, clock: FakeClock, queue: ReviewQueue) -> None:
        rid = new_review(db, clock)
        queue.get(rid)
        assert actions(db) == ["review.created"]

    def test_other_tenants_items_are_invisible_and_not_logged(
        self, db: Database, clock: FakeClock, queue: ReviewQueue
    ) -> None:
        rid = new_review(db, clock, tenant="9999")
        with pytest.raises(ReviewError, match="does not exist"):
            queue.get(rid, viewer="user:anna", tenants={TENANT})
        assert actions(db) == ["review.created"]
        assert queue.list(tenants={TENANT}) == []
        assert [r.id for r in queue.list(tenants={"9999"})] == [rid]
