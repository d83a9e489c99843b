"""Review items: the human side of every robot.

States::

    open ──approve──> approved        (under four-eyes: two approvals by different people)
      │  ──reject───> rejected
      │  ──return───> returned        (back to the robot with a comment)
      │  ──robot: lost its point──> lapsed   (a shift begun, a day passed; the reason is kept)
      ├──re-check──> resolved        (uncertain items only: the robot found the write done;
      │                               decided_by is the robot, nothing is carried out)
      └──retry/cancel─> withdrawn    (exception and uncertain items only: operations retried
                                      or cancelled the work item; nothing is carried out)

A decision is final, audited, and sets ``callback_status = pending``: a worker then calls
the robot's ``on_decision`` (retried with backoff like any item). Concurrent deciders are
resolved by an optimistic version check: the second gets :class:`AlreadyDecided`.

A passed deadline closes nothing: the item stays open, is marked overdue (``overdue_at``)
and escalated once (``escalated_at``); :mod:`core.overdue` drives that. (``expired`` is a
state only items closed before migration 0012 carry.)
"""

from __future__ import annotations

import builtins
import dataclasses
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Integer, String, Table, bindparam, case, distinct, func, insert, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from core import audit
from core.clock import Clock, SystemClock
from core.errors import AlreadyDecided, FourEyesViolation, LeaseLost, ReviewError
from core.problems import decision_failure_material
from core.records import GENERAL_FAILURE, QueueBacklog, ReviewView, WaitingDecision, failure_summary
from core.storage.db import Database
from core.storage.models import (
    CallbackStatus,
    ItemStatus,
    ReviewComment,
    ReviewItem,
    ReviewKind,
    ReviewState,
    UTCDateTime,
    WorkItem,
)
from core.storage.web_models import ReviewTiming
from core.transitions import (
    DECIDABLE,
    REQUEUEABLE,
    check_confirmations,
    check_decision,
    check_reasons,
    equal_jitter_delay,
)


def create_review(
    s: Session,
    *,
    tenant: str,
    robot: str,
    work_item_id: int | None,
    queue: str,
    kind: ReviewKind,
    title: str,
    summary: str,
    material: dict[str, Any],
    subject: str | None,
    actor: str,
    now: datetime,
    due_at: datetime | None = None,
    four_eyes: bool = False,
) -> ReviewItem:
    """Create an open review item in the caller's transaction, audited."""
    review = ReviewItem(
        tenant=tenant,
        robot=robot,
        work_item_id=work_item_id,
        queue=queue,
        kind=kind,
        title=title,
        summary=summary,
        material=material,
        subject=subject,
        due_at=due_at,
        four_eyes=four_eyes,
        state=ReviewState.open,
        created_at=now,
        updated_at=now,
    )
    s.add(review)
    s.flush()
    audit.append(
        s,
        actor=actor,
        action="review.created",
        tenant=tenant,
        subject=subject,
        details={"review_id": review.id, "queue": queue, "kind": kind.value, "work_item_id": work_item_id},
        now=now,
    )
    return review


def _close_open(
    s: Session,
    work_item_id: int,
    kinds: list[ReviewKind],
    state: ReviewState,
    *,
    action: str,
    actor: str,
    comment: str,
    now: datetime,
) -> list[int]:
    """Close a work item's open review items of ``kinds`` without a person's decision (audited).

    Locks the rows first, as a person's decision does; nothing is left for ``on_decision``.
    Runs in the caller's transaction; returns the ids closed.
    """
    rows = s.scalars(
        select(ReviewItem)
        .where(
            ReviewItem.work_item_id == work_item_id,
            ReviewItem.kind.in_(kinds),
            ReviewItem.state == ReviewState.open,
        )
        .order_by(ReviewItem.id)
        .with_for_update(key_share=True)
    ).all()
    for row in rows:
        row.state, row.decided_by, row.decided_at, row.decision_comment = state, actor, now, comment
        row.callback_status = CallbackStatus.none  # nothing for on_decision to carry out
        row.version += 1
        row.updated_at = now
        audit.append(
            s,
            actor=actor,
            action=action,
            tenant=row.tenant,
            subject=row.subject,
            details={"review_id": row.id, "queue": row.queue, "work_item_id": work_item_id, "reason": comment},
            now=now,
        )
    s.flush()
    return [row.id for row in rows]


def lock_reviews_of(s: Session, work_item_id: int) -> None:
    """Lock a work item's review rows in the caller's transaction.

    Every transaction that changes both a work item and its reviews takes the review rows
    first, then the item, then the audit head (as a decision's callback does): any other
    order could deadlock against it on PostgreSQL.
    """
    s.execute(
        select(ReviewItem.id).where(ReviewItem.work_item_id == work_item_id).with_for_update(key_share=True)
    ).all()


def resolve_uncertain(s: Session, work_item_id: int, *, actor: str, comment: str, now: datetime) -> list[int]:
    """Close the open uncertain review items of a work item the robot settled itself (audited).

    Raises :class:`AlreadyDecided` when there is none left open: a person decided
    meanwhile, and the person's decision wins.
    """
    closed = _close_open(
        s,
        work_item_id,
        [ReviewKind.uncertain],
        ReviewState.resolved,
        action="review.resolved",
        actor=actor,
        comment=comment,
        now=now,
    )
    if not closed:
        raise AlreadyDecided(f"work item {work_item_id} has no open uncertain review item any more")
    return closed


def withdraw_problem_reports(s: Session, work_item_id: int, *, actor: str, reason: str, now: datetime) -> list[int]:
    """Close the open exception and uncertain review items of a work item operations retried or cancelled.

    They reported a problem that is now being dealt with: left open, they would wait in an
    inbox for a decision nobody needs (and a retry that fails again opens a new one).
    Decision items are left alone.
    """
    return _close_open(
        s,
        work_item_id,
        [ReviewKind.exception, ReviewKind.uncertain],
        ReviewState.withdrawn,
        action="review.withdrawn",
        actor=actor,
        comment=reason,
        now=now,
    )


#: One review item by its id, built once (``Session.get`` builds its statement on every call:
#: 0.48 against 0.34 ms of CPU per read on PostgreSQL); locked for a change.
#:
#: Every lock of a review row is FOR NO KEY UPDATE (``key_share=True``), what PostgreSQL's own
#: UPDATE of non-key columns takes: it still serialises the row's writers, but not the
#: KEY SHARE lock a new review timing's foreign key takes on its item. An opening writes its
#: timing in the audit append's statement, holding the audit head; against FOR UPDATE it would
#: wait there for a decider who waits for the head (a deadlock, found under the load).
_BY_ID = select(ReviewItem).where(ReviewItem.id == bindparam("review_id"))
_BY_ID_LOCKED = _BY_ID.with_for_update(key_share=True)


@lru_cache(maxsize=1)
def _start_review_time_statement() -> Any:
    """A person's review time of an item starts (their opening time kept) unless it is running; built once."""
    running = select(ReviewTiming.id).where(
        ReviewTiming.review_id == bindparam("b_review_id"),
        ReviewTiming.actor == bindparam("b_actor"),
        ReviewTiming.decided_at.is_(None),
    )
    values = select(
        bindparam("b_review_id", type_=Integer()),
        bindparam("b_robot", type_=String()),
        bindparam("b_tenant", type_=String()),
        bindparam("b_actor", type_=String()),
        bindparam("b_now", type_=UTCDateTime()),
    ).where(~running.exists())
    timings = cast(Table, ReviewTiming.__table__)
    return insert(timings).from_select(["review_id", "robot", "tenant", "actor", "opened_at"], values)


class _WholeSecondsSince(ColumnElement[int]):
    """Whole seconds from a stored UTC time to a later one, never below 0, computed in the database."""

    type = Integer()
    inherit_cache = True
    _traverse_internals = [("start", InternalTraversal.dp_clauseelement), ("end", InternalTraversal.dp_clauseelement)]

    def __init__(self, start: Any, end: Any) -> None:
        self.start, self.end = start, end


@compiles(_WholeSecondsSince, "postgresql")
def _seconds_postgresql(element: _WholeSecondsSince, compiler: Any, **kw: Any) -> str:
    start, end = compiler.process(element.start, **kw), compiler.process(element.end, **kw)
    return f"GREATEST(0, FLOOR(EXTRACT(EPOCH FROM ({end} - {start}))))::integer"


@compiles(_WholeSecondsSince, "sqlite")
def _seconds_sqlite(element: _WholeSecondsSince, compiler: Any, **kw: Any) -> str:
    # julianday's days as a double, rounded to whole milliseconds before the whole seconds are taken.
    start, end = compiler.process(element.start, **kw), compiler.process(element.end, **kw)
    return f"MAX(0, CAST(ROUND((julianday({end}) - julianday({start})) * 86400000.0) / 1000 AS INTEGER))"


@lru_cache(maxsize=1)
def _end_review_time_statement() -> Any:
    """The person's running review time of the item ends: the seconds computed by the database; built once.

    The oldest running timing of this person and item (there is at most one) is closed; none
    running (the item was decided without being opened for review time) writes nothing.
    """
    now = bindparam("b_now", type_=UTCDateTime())
    running = (
        select(ReviewTiming.id)
        .where(
            ReviewTiming.review_id == bindparam("b_review_id"),
            ReviewTiming.actor == bindparam("b_actor"),
            ReviewTiming.decided_at.is_(None),
        )
        .order_by(ReviewTiming.opened_at)
        .limit(1)
        .scalar_subquery()
    )
    timings = cast(Table, ReviewTiming.__table__)
    return (
        update(timings)
        .where(timings.c.id == running, timings.c.decided_at.is_(None))
        .values(decided_at=now, seconds=_WholeSecondsSince(timings.c.opened_at, now))
    )


class ReviewQueue:
    """Decisions, assignment, comments, deadlines and decision callbacks."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()

    def get(
        self,
        review_id: int,
        *,
        viewer: str | None = None,
        tenants: set[str] | None = None,
        visible: Callable[[ReviewItem], bool] | None = None,
        start_review_time: bool = False,
    ) -> ReviewItem:
        """One review item; a named viewer's opening is written to the access log.

        ``tenants`` and ``visible`` limit what the viewer may open: an item outside them is
        answered as unknown (ReviewError) and its opening is not written.
        ``start_review_time``: the viewer's review time of an open item starts now unless it
        is running (it runs from the first opening to the decision), written with the access
        event: both or neither.
        """
        if start_review_time and viewer is None:
            raise ValueError("review time is a named viewer's")
        # Two statements that stand alone (the read, then the append with the review time's
        # start): on PostgreSQL the audit head is locked only while the append's one statement runs.
        with self.db.statement_session() as s:
            row = s.execute(_BY_ID, {"review_id": review_id}).scalar_one_or_none()
            if (
                row is None
                or (tenants is not None and row.tenant not in tenants)
                or (visible is not None and not visible(row))
            ):
                raise ReviewError(f"review item {review_id} does not exist")
            if viewer is not None:
                now = self.clock.now()
                timed = start_review_time and row.state == ReviewState.open
                audit.append(
                    s,
                    actor=viewer,
                    action="review.opened",
                    tenant=row.tenant,
                    subject=row.subject,
                    purpose="handläggning",
                    details={"review_id": row.id, "queue": row.queue},
                    now=now,
                    alongside=_start_review_time_statement() if timed else None,
                    alongside_values={
                        "b_review_id": row.id,
                        "b_robot": row.robot,
                        "b_tenant": row.tenant,
                        "b_actor": viewer,
                        "b_now": now,
                    }
                    if timed
                    else None,
                )
            return row

    def list(
        self,
        *,
        tenants: set[str] | None = None,
        queue: str | None = None,
        state: ReviewState | None = ReviewState.open,
        limit: int = 500,
    ) -> builtins.list[ReviewItem]:
        """Review items in the order a case worker works through them: overdue first, by deadline, oldest."""
        now = self.clock.now()
        overdue_first = case((ReviewItem.overdue_at.is_not(None) | (ReviewItem.due_at < now), 0), else_=1)
        stmt = (
            select(ReviewItem)
            .order_by(
                overdue_first, ReviewItem.due_at.is_(None), ReviewItem.due_at, ReviewItem.created_at, ReviewItem.id
            )
            .limit(limit)
        )
        if tenants is not None:
            stmt = stmt.where(ReviewItem.tenant.in_(tenants))
        if queue:
            stmt = stmt.where(ReviewItem.queue == queue)
        if state is not None:
            stmt = stmt.where(ReviewItem.state == state)
        with self.db.session() as s:
            return list(s.scalars(stmt).all())

    def for_item(self, work_item_id: int) -> builtins.list[ReviewItem]:
        """The review items of one work item, oldest first."""
        with self.db.session() as s:
            return list(
                s.scalars(select(ReviewItem).where(ReviewItem.work_item_id == work_item_id).order_by(ReviewItem.id))
            )

    def due_robots(self) -> set[tuple[str, str]]:
        """(robot, tenant) pairs with decisions due to be carried out."""
        now = self.clock.now()
        with self.db.session() as s:
            rows = s.execute(
                select(distinct(ReviewItem.robot), ReviewItem.tenant).where(
                    ReviewItem.callback_status == CallbackStatus.pending, ReviewItem.callback_next_at <= now
                )
            ).all()
        return {(r[0], r[1]) for r in rows}

    def comments(self, review_id: int) -> builtins.list[ReviewComment]:
        """Comments on a review item, oldest first."""
        with self.db.read_session() as s:
            return list(
                s.scalars(
                    select(ReviewComment).where(ReviewComment.review_id == review_id).order_by(ReviewComment.id)
                ).all()
            )

    def _locked_open(
        self, s: Session, review_id: int, allowed: Callable[[ReviewItem], None] | None = None
    ) -> ReviewItem:
        row = s.execute(_BY_ID_LOCKED, {"review_id": review_id}).scalar_one_or_none()
        if row is None:
            raise ReviewError(f"review item {review_id} does not exist")
        if allowed is not None:
            allowed(row)  # raises to refuse: before anything about the item is told
        if row.state != ReviewState.open:
            raise AlreadyDecided(
                f"review item {review_id} was already {row.state.value} by {row.decided_by or 'the system'}"
            )
        return row

    def assign(self, review_id: int, assignee: str | None, *, actor: str) -> None:
        """Assign (or unassign with None) an open review item."""
        now = self.clock.now()
        with self.db.session() as s:
            row = self._locked_open(s, review_id)
            row.assignee, row.updated_at, row.version = assignee, now, row.version + 1
            audit.append(
                s,
                actor=actor,
                action="review.assigned",
                tenant=row.tenant,
                subject=row.subject,
                details={"review_id": review_id, "assignee": assignee},
                now=now,
            )

    def comment(self, review_id: int, text: str, *, actor: str) -> None:
        """Add a comment."""
        if not text.strip():
            raise ReviewError("a comment cannot be empty")
        now = self.clock.now()
        with self.db.session() as s:
            row = s.get(ReviewItem, review_id)
            if row is None:
                raise ReviewError(f"review item {review_id} does not exist")
            s.add(ReviewComment(review_id=review_id, author=actor, text=text, created_at=now))
            audit.append(
                s,
                actor=actor,
                action="review.commented",
                tenant=row.tenant,
                subject=row.subject,
                details={"review_id": review_id},
                now=now,
            )

    def decide(
        self,
        review_id: int,
        decision: str,
        *,
        actor: str,
        comment: str | None = None,
        expected_version: int | None = None,
        decision_data: dict[str, Any] | None = None,
        allowed: Callable[[ReviewItem], None] | None = None,
    ) -> ReviewItem:
        """Approve, reject or return an open item. Final; the robot carries it out afterwards.

        ``decision_data`` (robot-specific) is kept with the decision and handed to on_decision;
        see :func:`check_confirmations` for what an approval must confirm.

        ``expected_version`` (from the page the person saw) turns a concurrent change into
        :class:`AlreadyDecided` instead of silently overriding it. A final decision ends the
        decider's running review time of the item (see :meth:`get`), in its transaction.

        ``allowed``: the caller's check of the item, applied to the locked row before anything
        else (before the decision and comment are checked and before its state is told); it
        raises to refuse, and nothing is written.
        """
        checked: Callable[[ReviewItem], None] | None = None
        if allowed is None:
            check_decision(decision, comment)
        else:

            def check(row: ReviewItem) -> None:
                allowed(row)
                check_decision(decision, comment)

            checked = check
        now = self.clock.now()
        with self.db.session() as s:
            row = self._locked_open(s, review_id, checked)
            if expected_version is not None and row.version != expected_version:
                raise AlreadyDecided(f"review item {review_id} changed while you were looking at it")
            if decision == "approve":
                check_confirmations(row.material, decision_data)
                check_reasons(row.material, decision_data)
            row.decision_data = decision_data or None
            if decision == "approve" and row.four_eyes and row.first_approver is None:
                row.first_approver, row.first_approved_at = actor, now
                row.version += 1
                row.updated_at = now
                audit.append(
                    s,
                    actor=actor,
                    action="review.first_approval",
                    tenant=row.tenant,
                    subject=row.subject,
                    details={"review_id": review_id},
                    now=now,
                )
                self._update_versioned(s, row)
                return row
            if decision == "approve" and row.four_eyes and row.first_approver == actor:
                raise FourEyesViolation("this queue requires a second approval by a different person")
            row.state = {
                "approve": ReviewState.approved,
                "reject": ReviewState.rejected,
                "return": ReviewState.returned,
            }[decision]
            row.decided_by, row.decided_at, row.decision_comment = actor, now, comment
            row.callback_status, row.callback_next_at, row.callback_attempts = CallbackStatus.pending, now, 0
            row.version += 1
            row.updated_at = now
            if comment:
                s.add(ReviewComment(review_id=review_id, author=actor, text=comment, created_at=now))
            audit.append(
                s,
                actor=actor,
                action=f"review.{row.state.value}",
                tenant=row.tenant,
                subject=row.subject,
                details={
                    "review_id": review_id,
                    "queue": row.queue,
                    "four_eyes": row.four_eyes,
                    "first_approver": row.first_approver,
                    **({"decision_data": decision_data} if decision_data else {}),
                },
                now=now,
                # The decider's review time ends with the decision (on PostgreSQL in the append's statement).
                alongside=_end_review_time_statement(),
                alongside_values={"b_now": now, "b_review_id": review_id, "b_actor": actor},
            )
            self._update_versioned(s, row)
            return row

    @staticmethod
    def _update_versioned(s: Session, row: ReviewItem) -> None:
        # SELECT … FOR NO KEY UPDATE (PostgreSQL) and BEGIN IMMEDIATE (SQLite) already serialise
        # deciders; the flush makes a lost race surface here, inside the transaction.
        s.flush()

    def hand_over(self, review_id: int, assignee: str, *, actor: str, comment: str | None = None) -> None:
        """Give an open item to a named person (hand-over or reassignment), audited; the comment is kept."""
        if not assignee.strip():
            raise ReviewError("a hand-over needs the person to hand the item to")
        now = self.clock.now()
        with self.db.session() as s:
            row = self._locked_open(s, review_id)
            before = row.assignee
            row.assignee, row.updated_at, row.version = assignee, now, row.version + 1
            text = (comment or "").strip()
            if text:
                s.add(ReviewComment(review_id=review_id, author=actor, text=text, created_at=now))
            audit.append(
                s,
                actor=actor,
                action="review.handed_over",
                tenant=row.tenant,
                subject=row.subject,
                details={"review_id": review_id, "queue": row.queue, "from": before, "to": assignee},
                now=now,
            )

    def past_due(self, *, limit: int = 500) -> builtins.list[ReviewItem]:
        """Open items whose deadline has passed, earliest deadline first."""
        now = self.clock.now()
        stmt = (
            select(ReviewItem)
            .where(ReviewItem.state == ReviewState.open, ReviewItem.due_at < now)
            .order_by(ReviewItem.due_at, ReviewItem.id)
            .limit(limit)
        )
        with self.db.session() as s:
            return list(s.scalars(stmt).all())

    def _mark_once(self, review_id: int, column: str, action: str, actor: str, details: dict[str, Any]) -> bool:
        now = self.clock.now()
        with self.db.session() as s:
            row = s.execute(
                update(ReviewItem)
                .where(
                    ReviewItem.id == review_id,
                    ReviewItem.state == ReviewState.open,
                    ReviewItem.due_at < now,
                    getattr(ReviewItem, column).is_(None),
                )
                .values({column: now, "updated_at": now})
                .returning(ReviewItem.tenant, ReviewItem.subject, ReviewItem.queue, ReviewItem.due_at)
                .execution_options(synchronize_session=False)
            ).one_or_none()
            if row is None:
                return False
            audit.append(
                s,
                actor=actor,
                action=action,
                tenant=row[0],
                subject=row[1],
                details={"review_id": review_id, "queue": row[2], "due_at": row[3].isoformat(), **details},
                now=now,
            )
            return True

    def mark_overdue(self, review_id: int, *, actor: str) -> bool:
        """Mark an open item past its deadline as overdue (audited once); True when newly marked."""
        return self._mark_once(review_id, "overdue_at", "review.overdue", actor, {})

    def mark_escalated(self, review_id: int, *, actor: str, to: str) -> bool:
        """Record the escalation of an overdue item (audited once); True when new."""
        return self._mark_once(review_id, "escalated_at", "review.escalated", actor, {"to": to})

    def lapse(self, review_id: int, reason: str, *, actor: str) -> bool:
        """Close an open item as ``lapsed`` with the robot's reason (audited); False when no longer open."""
        if not reason.strip():
            raise ReviewError("a lapsed item needs the reason it lost its point")
        now = self.clock.now()
        with self.db.session() as s:
            row = s.get(ReviewItem, review_id, with_for_update={"key_share": True})
            if row is None:
                raise ReviewError(f"review item {review_id} does not exist")
            if row.state != ReviewState.open:
                return False
            row.state, row.decided_by, row.decided_at, row.decision_comment = ReviewState.lapsed, actor, now, reason
            row.callback_status = CallbackStatus.none  # nothing for on_decision to carry out
            row.version += 1
            row.updated_at = now
            if row.work_item_id is not None:
                item = s.get(WorkItem, row.work_item_id, with_for_update=True)
                if item is not None and row.kind == ReviewKind.decision and item.status in DECIDABLE:
                    item.status, item.finished_at, item.updated_at = ItemStatus.done, now, now
                    item.result = {**(item.result or {}), "decision": ReviewState.lapsed.value, "lapsed_reason": reason}
            audit.append(
                s,
                actor=actor,
                action="review.lapsed",
                tenant=row.tenant,
                subject=row.subject,
                details={"review_id": review_id, "queue": row.queue, "reason": reason},
                now=now,
            )
            return True

    def backlog(self, *, tenants: set[str] | None = None) -> builtins.list[QueueBacklog]:
        """Each queue with open items: how many, how many overdue, the oldest; by tenant and queue."""
        now = self.clock.now()
        # The oldest item's id per queue in the same statement (a correlated subquery the
        # queue index answers), instead of one more query per queue.
        first = aliased(ReviewItem)
        oldest_id = (
            select(first.id)
            .where(first.state == ReviewState.open, first.tenant == ReviewItem.tenant, first.queue == ReviewItem.queue)
            .order_by(first.created_at, first.id)
            .limit(1)
            .scalar_subquery()
        )
        stmt = (
            select(
                ReviewItem.tenant,
                ReviewItem.queue,
                func.count(),
                func.sum(case((ReviewItem.due_at < now, 1), else_=0)),
                func.min(ReviewItem.created_at),
                oldest_id,
            )
            .where(ReviewItem.state == ReviewState.open)
            .group_by(ReviewItem.tenant, ReviewItem.queue)
            .order_by(ReviewItem.tenant, ReviewItem.queue)
        )
        if tenants is not None:
            stmt = stmt.where(ReviewItem.tenant.in_(tenants))
        with self.db.read_session() as s:
            return [
                QueueBacklog(tenant, queue, int(count), int(overdue or 0), oldest, first_id)
                for tenant, queue, count, overdue, oldest, first_id in s.execute(stmt).all()
            ]

    # -- decision callbacks ------------------------------------------------------------
    def claim_callbacks(
        self, robot: str, tenant: str, *, limit: int = 20, lease_seconds: float = 300
    ) -> builtins.list[ReviewView]:
        """Lease decided items whose decision the robot has not carried out yet.

        A row still holding a token was claimed before and never settled (its lease ran
        out: the worker died mid-callback); its view says so (``callback_reclaimed``). Each
        row is taken with a compare-and-set on that token, so two workers never both take it.
        """
        now = self.clock.now()
        pick = (
            select(ReviewItem.id, ReviewItem.callback_token)
            .where(
                ReviewItem.robot == robot,
                ReviewItem.tenant == tenant,
                ReviewItem.callback_status == CallbackStatus.pending,
                ReviewItem.callback_next_at <= now,
            )
            .order_by(ReviewItem.callback_next_at, ReviewItem.id)
            .limit(limit)
        )
        if self.db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True, key_share=True)
        with self.db.session() as s:
            reclaimed: dict[int, bool] = {}
            for review_id, old_token in s.execute(pick).all():
                same_token = (
                    ReviewItem.callback_token.is_(None) if old_token is None else ReviewItem.callback_token == old_token
                )
                got = s.scalar(
                    update(ReviewItem)
                    .where(
                        ReviewItem.id == review_id,
                        ReviewItem.callback_status == CallbackStatus.pending,
                        ReviewItem.callback_next_at <= now,
                        same_token,
                    )
                    .values(
                        callback_next_at=now + timedelta(seconds=lease_seconds),
                        callback_attempts=ReviewItem.callback_attempts + 1,
                        callback_token=secrets.token_hex(16),
                    )
                    .returning(ReviewItem.id)
                    .execution_options(synchronize_session=False)
                )
                if got is not None:
                    reclaimed[got] = old_token is not None
            rows = s.scalars(select(ReviewItem).where(ReviewItem.id.in_(list(reclaimed))).order_by(ReviewItem.id)).all()
            return [dataclasses.replace(ReviewView.from_row(r), callback_reclaimed=reclaimed[r.id]) for r in rows]

    @staticmethod
    def _owned_callback(s: Session, review: ReviewView) -> ReviewItem:
        row = s.get(ReviewItem, review.id, with_for_update={"key_share": True})
        if row is None or row.callback_status != CallbackStatus.pending or row.callback_token != review.callback_token:
            raise LeaseLost(f"review item {review.id}: another worker is carrying out this decision now")
        return row

    def callback_done(
        self, review: ReviewView, *, actor: str, summary: str | None = None, reference: str | None = None
    ) -> None:
        """The robot carried the decision out: keep what it did, settle the work item accordingly.

        ``summary`` (Swedish, for the person who decided) and ``reference`` (the target
        system's id) come from the robot's :class:`core.robot.Carried`; both may be None.
        """
        now = self.clock.now()
        with self.db.session() as s:
            row = self._owned_callback(s, review)
            row.callback_status, row.callback_error, row.updated_at = CallbackStatus.done, None, now
            row.callback_summary, row.callback_reference = summary, reference
            row.callback_finished_at, row.callback_message = now, None
            if row.work_item_id is not None:
                item = s.get(WorkItem, row.work_item_id)
                if item is not None:
                    if row.state == ReviewState.returned and item.status in REQUEUEABLE:
                        # Back to the robot: processed again, with the comment available.
                        item.status, item.attempts, item.next_attempt_at = ItemStatus.pending, 0, now
                        item.return_comment, item.finished_at = row.decision_comment, None
                        item.updated_at = now
                    elif (
                        row.state != ReviewState.returned
                        and row.kind == ReviewKind.decision
                        and item.status in DECIDABLE
                    ):
                        item.status, item.finished_at = ItemStatus.done, now
                        item.result = {**(item.result or {}), "decision": row.state.value, "decided_by": row.decided_by}
                        item.updated_at = now
            audit.append(
                s,
                actor=actor,
                action="review.carried_out",
                tenant=row.tenant,
                subject=row.subject,
                details={"review_id": row.id, "decision": row.state.value, "reference": reference},
                now=now,
            )

    def callback_failed(
        self,
        review: ReviewView,
        error: str,
        *,
        max_attempts: int,
        base_seconds: float,
        cap_seconds: float,
        actor: str,
        message: str | None = None,
    ) -> bool:
        """on_decision failed: retry with backoff, or give up after max attempts. True = will retry.

        ``error`` is the technical text (for operations); ``message`` the Swedish reason shown
        to the person who decided. Given up, the decision goes back to that person: an
        exception item assigned to them.
        """
        now = self.clock.now()
        with self.db.session() as s:
            row = self._owned_callback(s, review)
            row.callback_error, row.updated_at = error, now
            row.callback_message = message or GENERAL_FAILURE
            retry = row.callback_attempts < max_attempts
            if retry:
                delay = equal_jitter_delay(row.callback_attempts, base_seconds, cap_seconds)
                row.callback_next_at = now + timedelta(seconds=delay)
                row.callback_token = None  # settled: the next claim is a retry, not a take-over
            else:
                row.callback_status, row.callback_finished_at = CallbackStatus.failed, now
                # Nobody would notice an audit event alone: the person who decided gets it back.
                exception = create_review(
                    s,
                    tenant=row.tenant,
                    robot=row.robot,
                    work_item_id=row.work_item_id,
                    queue=f"{row.robot}.exceptions",
                    kind=ReviewKind.exception,
                    title="Beslutet kunde inte verkställas",
                    summary=failure_summary(row.id, row.title, row.callback_message),
                    material=decision_failure_material(row.id, row.state.value, error),
                    subject=row.subject,
                    actor=actor,
                    now=now,
                )
                exception.assignee = row.decided_by
            audit.append(
                s,
                actor=actor,
                action="review.carry_out_failed",
                tenant=row.tenant,
                subject=row.subject,
                details={"review_id": row.id, "attempt": row.callback_attempts, "will_retry": retry, "error": error},
                now=now,
            )
            return retry

    def retry_callback(self, review_id: int, *, actor: str) -> bool:
        """Carry out a decision whose execution failed once more ("Försök igen"; audited).

        Only a failed one: False when it is not failed (already done, or still being tried).
        The exception item reporting the failure is withdrawn: the failure is being dealt with.
        """
        now = self.clock.now()
        with self.db.session() as s:
            row = s.get(ReviewItem, review_id, with_for_update={"key_share": True})
            if row is None:
                raise ReviewError(f"review item {review_id} does not exist")
            if row.callback_status != CallbackStatus.failed:
                return False
            row.callback_status, row.callback_next_at, row.callback_attempts = CallbackStatus.pending, now, 0
            row.callback_finished_at, row.callback_message, row.callback_error = None, None, None
            row.callback_token, row.updated_at = None, now
            for report in s.scalars(
                select(ReviewItem)
                .where(ReviewItem.kind == ReviewKind.exception, ReviewItem.state == ReviewState.open)
                .where(ReviewItem.robot == row.robot, ReviewItem.tenant == row.tenant)
                .where(ReviewItem.work_item_id == row.work_item_id)
                .with_for_update(key_share=True)
            ).all():
                if (report.material or {}).get("review_id") == row.id:
                    report.state, report.decided_by, report.decided_at = ReviewState.withdrawn, actor, now
                    report.decision_comment, report.version = "Nytt försök att verkställa beslutet", report.version + 1
                    report.updated_at = now
            audit.append(
                s,
                actor=actor,
                action="review.carry_out_retried",
                tenant=row.tenant,
                subject=row.subject,
                details={"review_id": row.id, "queue": row.queue},
                now=now,
            )
            return True

    def waiting_callbacks(self, *, tenants: set[str] | None = None) -> builtins.list[WaitingDecision]:
        """Decisions not yet carried out (pending), oldest decision first: what the dashboard and alerts watch."""
        stmt = (
            select(ReviewItem)
            .where(ReviewItem.callback_status == CallbackStatus.pending)
            .order_by(ReviewItem.decided_at, ReviewItem.id)
        )
        if tenants is not None:
            stmt = stmt.where(ReviewItem.tenant.in_(tenants))
        with self.db.session() as s:
            return [WaitingDecision.from_row(r) for r in s.scalars(stmt).all()]
