"""Review items in memory."""

from __future__ import annotations

import builtins
import copy
import dataclasses
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.errors import AlreadyDecided, FourEyesViolation, LeaseLost, ReviewError
from core.problems import decision_failure_material
from core.records import (
    GENERAL_FAILURE,
    CallbackStatus,
    ItemStatus,
    QueueBacklog,
    ReviewKind,
    ReviewState,
    ReviewView,
    WaitingDecision,
    failure_summary,
)
from core.transitions import (
    DECIDABLE,
    REQUEUEABLE,
    check_confirmations,
    check_decision,
    check_reasons,
    equal_jitter_delay,
)

if TYPE_CHECKING:
    pass

from core.testing.memory.state import DECISIONS, MemoryReview, MemoryReviewTiming, MemoryState


class MemoryReviewStore:
    """Review items in memory (the :class:`core.interfaces.ReviewStore` port)."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state

    def _row(self, review_id: int) -> MemoryReview:
        row = self.state.reviews.get(review_id)
        if row is None:
            raise ReviewError(f"review item {review_id} does not exist")
        return row

    def _open(self, review_id: int) -> MemoryReview:
        row = self._row(review_id)
        if row.state != ReviewState.open:
            raise AlreadyDecided(
                f"review item {review_id} was already {row.state.value} by {row.decided_by or 'the system'}"
            )
        return row

    def get(
        self,
        review_id: int,
        *,
        viewer: str | None = None,
        tenants: set[str] | None = None,
        visible: Callable[[MemoryReview], bool] | None = None,
        start_review_time: bool = False,
    ) -> MemoryReview:
        """A copy of one review item; a named viewer's opening is written to the access log.

        ``start_review_time``: the viewer's review time of an open item starts unless it is running.
        """
        if start_review_time and viewer is None:
            raise ValueError("review time is a named viewer's")
        with self.state.lock:
            row = self.state.reviews.get(review_id)
            if (
                row is None
                or (tenants is not None and row.tenant not in tenants)
                or (visible is not None and not visible(row))
            ):
                raise ReviewError(f"review item {review_id} does not exist")
            if viewer is not None:
                details = {"review_id": row.id, "queue": row.queue}
                self.state.audit(
                    actor=viewer,
                    action="review.opened",
                    tenant=row.tenant,
                    subject=row.subject,
                    purpose="handläggning",
                    details=details,
                )
                running = any(
                    t.review_id == row.id and t.actor == viewer and t.decided_at is None
                    for t in self.state.review_timings
                )
                if start_review_time and row.state == ReviewState.open and not running:
                    self.state.review_timings.append(
                        MemoryReviewTiming(row.id, row.robot, row.tenant, viewer, self.state.clock.now())
                    )
            return copy.deepcopy(row)

    def for_item(self, work_item_id: int) -> builtins.list[MemoryReview]:
        """Copies of the review items of one work item, oldest first."""
        with self.state.lock:
            rows = [r for r in self.state.reviews.values() if r.work_item_id == work_item_id]
            return [copy.deepcopy(r) for r in sorted(rows, key=lambda r: r.id)]

    def assign(self, review_id: int, assignee: str | None, *, actor: str) -> None:
        """Assign (or unassign with None) an open review item."""
        with self.state.lock:
            row = self._open(review_id)
            row.assignee, row.version = assignee, row.version + 1
            details = {"review_id": review_id, "assignee": assignee}
            self.state.audit(
                actor=actor, action="review.assigned", tenant=row.tenant, subject=row.subject, details=details
            )

    def comment(self, review_id: int, text: str, *, actor: str) -> None:
        """Add a comment."""
        if not text.strip():
            raise ReviewError("a comment cannot be empty")
        with self.state.lock:
            row = self._row(review_id)
            row.comments.append((actor, text, self.state.clock.now()))
            details = {"review_id": review_id}
            self.state.audit(
                actor=actor, action="review.commented", tenant=row.tenant, subject=row.subject, details=details
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
        allowed: Callable[[MemoryReview], None] | None = None,
    ) -> MemoryReview:
        """Approve, reject or return an open item (as core.review.ReviewQueue.decide)."""
        if allowed is None:
            check_decision(decision, comment)
        with self.state.lock:
            now = self.state.clock.now()
            if allowed is not None:
                allowed(self._row(review_id))  # raises to refuse, before anything else
                check_decision(decision, comment)
            row = self._open(review_id)
            if expected_version is not None and row.version != expected_version:
                raise AlreadyDecided(f"review item {review_id} changed while you were looking at it")
            if decision == "approve":
                check_confirmations(row.material, decision_data)
                check_reasons(row.material, decision_data)
            row.decision_data = copy.deepcopy(decision_data) or None
            if decision == "approve" and row.four_eyes and row.first_approver is None:
                row.first_approver, row.first_approved_at, row.version = actor, now, row.version + 1
                self.state.audit(
                    actor=actor,
                    action="review.first_approval",
                    tenant=row.tenant,
                    subject=row.subject,
                    details={"review_id": review_id},
                )
                return copy.deepcopy(row)
            if decision == "approve" and row.four_eyes and row.first_approver == actor:
                raise FourEyesViolation("this queue requires a second approval by a different person")
            row.state = DECISIONS[decision]
            row.decided_by, row.decided_at, row.decision_comment = actor, now, comment
            row.callback_status, row.callback_next_at, row.callback_attempts = CallbackStatus.pending, now, 0
            row.version += 1
            if comment:
                row.comments.append((actor, comment, now))
            details = {
                "review_id": review_id,
                "queue": row.queue,
                "four_eyes": row.four_eyes,
                "first_approver": row.first_approver,
                **({"decision_data": decision_data} if decision_data else {}),
            }
            action = f"review.{row.state.value}"
            self.state.audit(actor=actor, action=action, tenant=row.tenant, subject=row.subject, details=details)
            running = [t for t in self.state.review_timings if t.review_id == review_id and t.actor == actor]
            for timing in sorted((t for t in running if t.decided_at is None), key=lambda t: t.opened_at)[:1]:
                timing.decided_at = now
                timing.seconds = max(0, int((now - timing.opened_at).total_seconds()))
            return copy.deepcopy(row)

    def hand_over(self, review_id: int, assignee: str, *, actor: str, comment: str | None = None) -> None:
        """Give an open item to a named person (hand-over or reassignment), audited; the comment is kept."""
        if not assignee.strip():
            raise ReviewError("a hand-over needs the person to hand the item to")
        with self.state.lock:
            row = self._open(review_id)
            before = row.assignee
            row.assignee, row.version = assignee, row.version + 1
            text = (comment or "").strip()
            if text:
                row.comments.append((actor, text, self.state.clock.now()))
            details = {"review_id": review_id, "queue": row.queue, "from": before, "to": assignee}
            self.state.audit(
                actor=actor, action="review.handed_over", tenant=row.tenant, subject=row.subject, details=details
            )

    def past_due(self, *, limit: int = 500) -> builtins.list[MemoryReview]:
        """Copies of the open items whose deadline has passed, earliest deadline first."""
        with self.state.lock:
            now = self.state.clock.now()
            rows = [r for r in self.state.reviews.values() if self._past_due(r, now)]
            rows.sort(key=lambda r: (r.due_at or now, r.id))
            return [copy.deepcopy(r) for r in rows[:limit]]

    @staticmethod
    def _past_due(r: MemoryReview, now: datetime) -> bool:
        return r.state == ReviewState.open and r.due_at is not None and r.due_at < now

    def _mark_once(self, review_id: int, field_name: str, action: str, actor: str, details: dict[str, Any]) -> bool:
        with self.state.lock:
            now = self.state.clock.now()
            r = self.state.reviews.get(review_id)
            if r is None or not self._past_due(r, now) or getattr(r, field_name) is not None:
                return False
            setattr(r, field_name, now)
            assert r.due_at is not None
            details = {"review_id": review_id, "queue": r.queue, "due_at": r.due_at.isoformat(), **details}
            self.state.audit(actor=actor, action=action, tenant=r.tenant, subject=r.subject, details=details)
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
        with self.state.lock:
            now = self.state.clock.now()
            row = self._row(review_id)
            if row.state != ReviewState.open:
                return False
            row.state, row.decided_by, row.decided_at, row.decision_comment = ReviewState.lapsed, actor, now, reason
            row.callback_status, row.version = CallbackStatus.none, row.version + 1
            item = self.state.items.get(row.work_item_id) if row.work_item_id is not None else None
            if item is not None and row.kind == ReviewKind.decision and item.status in DECIDABLE:
                item.status, item.finished_at, item.updated_at = ItemStatus.done, now, now
                item.result = {**(item.result or {}), "decision": ReviewState.lapsed.value, "lapsed_reason": reason}
            details = {"review_id": review_id, "queue": row.queue, "reason": reason}
            self.state.audit(
                actor=actor, action="review.lapsed", tenant=row.tenant, subject=row.subject, details=details
            )
            return True

    def backlog(self, *, tenants: set[str] | None = None) -> builtins.list[QueueBacklog]:
        """Each queue with open items: how many, how many overdue, the oldest; by tenant and queue."""
        with self.state.lock:
            now = self.state.clock.now()
            groups: dict[tuple[str, str], list[MemoryReview]] = {}
            for r in self.state.reviews.values():
                if r.state == ReviewState.open and (tenants is None or r.tenant in tenants):
                    groups.setdefault((r.tenant, r.queue), []).append(r)
            out = []
            for (tenant, queue), rows in sorted(groups.items()):
                oldest = min(rows, key=lambda r: (r.created_at, r.id))
                overdue = sum(1 for r in rows if self._past_due(r, now))
                out.append(QueueBacklog(tenant, queue, len(rows), overdue, oldest.created_at, oldest.id))
            return out

    def _due(self, r: MemoryReview, now: datetime) -> bool:
        return (
            r.callback_status == CallbackStatus.pending and r.callback_next_at is not None and r.callback_next_at <= now
        )

    def due_robots(self) -> set[tuple[str, str]]:
        """(robot, tenant) pairs with decisions due to be carried out."""
        with self.state.lock:
            now = self.state.clock.now()
            return {(r.robot, r.tenant) for r in self.state.reviews.values() if self._due(r, now)}

    def claim_callbacks(
        self, robot: str, tenant: str, *, limit: int = 20, lease_seconds: float = 300
    ) -> builtins.list[ReviewView]:
        """Lease decided items whose decision the robot has not carried out yet."""
        with self.state.lock:
            now = self.state.clock.now()
            due = sorted(
                (
                    r
                    for r in self.state.reviews.values()
                    if r.robot == robot and r.tenant == tenant and self._due(r, now)
                ),
                key=lambda r: (r.callback_next_at or now, r.id),
            )[:limit]
            reclaimed = {r.id: r.callback_token is not None for r in due}  # claimed before, never settled
            for r in due:
                r.callback_next_at = now + timedelta(seconds=lease_seconds)
                r.callback_attempts, r.callback_token = r.callback_attempts + 1, secrets.token_hex(16)
            return [
                dataclasses.replace(ReviewView.from_row(r), callback_reclaimed=reclaimed[r.id])
                for r in sorted(due, key=lambda r: r.id)
            ]

    def _owned_callback(self, review: ReviewView) -> MemoryReview:
        row = self.state.reviews.get(review.id)
        if row is None or row.callback_status != CallbackStatus.pending or row.callback_token != review.callback_token:
            raise LeaseLost(f"review item {review.id}: another worker is carrying out this decision now")
        return row

    def callback_done(
        self, review: ReviewView, *, actor: str, summary: str | None = None, reference: str | None = None
    ) -> None:
        """The robot carried the decision out: keep what it did, settle the work item accordingly."""
        with self.state.lock:
            now = self.state.clock.now()
            row = self._owned_callback(review)
            row.callback_status, row.callback_error = CallbackStatus.done, None
            row.callback_summary, row.callback_reference = summary, reference
            row.callback_finished_at, row.callback_message = now, None
            item = self.state.items.get(row.work_item_id) if row.work_item_id is not None else None
            if item is not None:
                if row.state == ReviewState.returned and item.status in REQUEUEABLE:
                    item.status, item.attempts, item.next_attempt_at = ItemStatus.pending, 0, now
                    item.return_comment, item.finished_at, item.updated_at = row.decision_comment, None, now
                elif row.state != ReviewState.returned and row.kind == ReviewKind.decision and item.status in DECIDABLE:
                    item.status, item.finished_at, item.updated_at = ItemStatus.done, now, now
                    item.result = {**(item.result or {}), "decision": row.state.value, "decided_by": row.decided_by}
            details = {"review_id": row.id, "decision": row.state.value, "reference": reference}
            self.state.audit(
                actor=actor, action="review.carried_out", tenant=row.tenant, subject=row.subject, details=details
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
        """on_decision failed: retry with backoff, or give up to the person who decided after max attempts."""
        with self.state.lock:
            now = self.state.clock.now()
            row = self._owned_callback(review)
            row.callback_error, row.callback_message = error, message or GENERAL_FAILURE
            retry = row.callback_attempts < max_attempts
            if retry:
                delay = equal_jitter_delay(row.callback_attempts, base_seconds, cap_seconds)
                row.callback_next_at = now + timedelta(seconds=delay)
                row.callback_token = None  # settled: the next claim is a retry, not a take-over
            else:
                row.callback_status, row.callback_finished_at = CallbackStatus.failed, now
                exception_id = self.state.create_review(
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
                )
                self.state.reviews[exception_id].assignee = row.decided_by
            details = {"review_id": row.id, "attempt": row.callback_attempts, "will_retry": retry, "error": error}
            action = "review.carry_out_failed"
            self.state.audit(actor=actor, action=action, tenant=row.tenant, subject=row.subject, details=details)
            return retry

    def retry_callback(self, review_id: int, *, actor: str) -> bool:
        """Queue a failed decision to be carried out again (audited), withdrawing its failure report."""
        with self.state.lock:
            now = self.state.clock.now()
            row = self.state.reviews.get(review_id)
            if row is None:
                raise ReviewError(f"review item {review_id} does not exist")
            if row.callback_status != CallbackStatus.failed:
                return False
            row.callback_status, row.callback_next_at, row.callback_attempts = CallbackStatus.pending, now, 0
            row.callback_finished_at, row.callback_message, row.callback_error, row.callback_token = (
                None,
                None,
                None,
                None,
            )
            for report in self.state.reviews.values():
                if (
                    report.kind == ReviewKind.exception
                    and report.state == ReviewState.open
                    and report.work_item_id == row.work_item_id
                    and (report.material or {}).get("review_id") == row.id
                ):
                    report.state, report.decided_by, report.decided_at = ReviewState.withdrawn, actor, now
                    report.decision_comment, report.version = "Nytt försök att verkställa beslutet", report.version + 1
            details = {"review_id": row.id, "queue": row.queue}
            self.state.audit(
                actor=actor, action="review.carry_out_retried", tenant=row.tenant, subject=row.subject, details=details
            )
            return True

    def waiting_callbacks(self, *, tenants: set[str] | None = None) -> list[WaitingDecision]:
        """Decisions not yet carried out, oldest decision first."""
        with self.state.lock:
            rows = [
                r
                for r in self.state.reviews.values()
                if r.callback_status == CallbackStatus.pending and (tenants is None or r.tenant in tenants)
            ]
            rows.sort(key=lambda r: (r.decided_at or self.state.clock.now(), r.id))
            return [WaitingDecision.from_row(r) for r in rows]
