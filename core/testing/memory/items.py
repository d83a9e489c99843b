"""Work items in memory."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.errors import AlreadyDecided, LeaseLost
from core.records import ItemStatus, ReviewKind, ReviewState, WorkItemView
from core.robot import Done, NeedsReview, NewItem
from core.transitions import CANCELLABLE, REQUEUEABLE, RETRYABLE, RetryPolicy, bulk_details, bulk_statuses

if TYPE_CHECKING:
    import random


from core.problems import ErrorKind, problem_report
from core.testing.memory.state import MemoryItem, MemoryState


class MemoryWorkItemStore:
    """Work items in memory (the :class:`core.interfaces.WorkItemStore` port)."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state

    @property
    def _now(self) -> datetime:
        return self.state.clock.now()

    def enqueue(self, robot: str, tenant: str, items: Sequence[NewItem], run_id: int | None = None) -> int:
        """Insert new items; a known (robot, tenant, reference) is left alone. Returns how many were new."""
        with self.state.lock:
            known = {(i.robot, i.tenant, i.reference) for i in self.state.items.values()}
            new = 0
            for it in sorted({it.reference: it for it in items}.values(), key=lambda it: it.reference):
                if (robot, tenant, it.reference) in known:
                    continue
                now = self._now
                item = MemoryItem(
                    self.state.next_id("item"),
                    robot,
                    tenant,
                    it.reference,
                    copy.deepcopy(it.payload),
                    it.subject,
                    now,
                    run_id,
                    now,
                )
                self.state.items[item.id] = item
                new += 1
            return new

    def claim(
        self,
        robot: str,
        tenant: str,
        owner: str,
        *,
        limit: int = 1,
        lease_seconds: float = 300,
        reclaim_expired: bool = True,
        ids: Collection[int] | None = None,
    ) -> list[WorkItemView]:
        """Lease up to ``limit`` due items (pending, or in progress with an expired lease)."""
        with self.state.lock:
            now = self._now
            statuses = {ItemStatus.pending, ItemStatus.in_progress} if reclaim_expired else {ItemStatus.pending}
            due = sorted(
                (
                    i
                    for i in self.state.items.values()
                    if i.robot == robot
                    and i.tenant == tenant
                    and i.status in statuses
                    and i.next_attempt_at <= now
                    and (ids is None or i.id in ids)
                ),
                key=lambda i: (i.next_attempt_at, i.id),
            )[:limit]
            token, until = secrets.token_hex(16), now + timedelta(seconds=lease_seconds)
            for i in due:
                i.status, i.lease_owner, i.lease_token, i.lease_until = ItemStatus.in_progress, owner, token, until
                i.next_attempt_at, i.attempts, i.updated_at = until, i.attempts + 1, now
            return sorted((WorkItemView.from_row(i) for i in due), key=lambda v: v.id)

    def _owned(self, item: WorkItemView, status: ItemStatus = ItemStatus.in_progress) -> MemoryItem:
        row = self.state.items.get(item.id)
        if row is None or row.lease_token != item.lease_token or row.status != status:
            raise LeaseLost(f"work item {item.id}: lease lost; another worker owns it now or it was finished")
        return row

    def _finish(self, row: MemoryItem, status: ItemStatus, kind: str | None, code: str | None, msg: str | None) -> None:
        now = self._now
        row.status, row.error_kind, row.error_code, row.error_message = status, kind, code, msg
        row.lease_owner = row.lease_token = row.lease_until = None
        row.updated_at = now
        if status not in (ItemStatus.needs_review, ItemStatus.pending):
            row.finished_at = now

    def extend(self, item: WorkItemView, lease_seconds: float) -> None:
        """Extend the lease of an item still being worked on."""
        with self.state.lock:
            row = self._owned(item)
            row.lease_until = row.next_attempt_at = self._now + timedelta(seconds=lease_seconds)

    def release(self, items: Sequence[WorkItemView]) -> int:
        """Give leased, never-started items back: pending, due now, the claim's attempt returned."""
        released = 0
        with self.state.lock:
            for item in items:
                try:
                    row = self._owned(item)
                except LeaseLost:
                    continue
                now = self._now
                row.status, row.next_attempt_at, row.attempts = ItemStatus.pending, now, max(row.attempts - 1, 0)
                row.lease_owner = row.lease_token = row.lease_until = None
                row.updated_at = now
                released += 1
        return released

    def complete(self, item: WorkItemView, outcome: Done | NeedsReview, *, actor: str) -> int | None:
        """Record Done or NeedsReview; returns the review item id for NeedsReview."""
        with self.state.lock:
            row = self._owned(item)
            if isinstance(outcome, Done):
                row.result = copy.deepcopy(outcome.result)
                self._finish(row, ItemStatus.done, None, None, None)
                return None
            self._finish(row, ItemStatus.needs_review, None, None, None)
            return self.state.create_review(
                tenant=item.tenant,
                robot=item.robot,
                work_item_id=item.id,
                queue=outcome.queue,
                kind=ReviewKind.decision,
                title=outcome.title,
                summary=outcome.summary,
                material=outcome.material,
                subject=outcome.subject or item.subject,
                actor=actor,
                due_at=outcome.due,
                four_eyes=outcome.four_eyes,
            )

    def complete_many(self, finished: Sequence[tuple[WorkItemView, Done]], *, actor: str) -> list[bool]:
        """Record several Done outcomes at once; per item, whether its lease still held."""
        recorded = []
        with self.state.lock:
            for item, outcome in finished:
                try:
                    row = self._owned(item)
                except LeaseLost:
                    recorded.append(False)
                    continue
                row.result = copy.deepcopy(outcome.result)
                self._finish(row, ItemStatus.done, None, None, None)
                recorded.append(True)
        return recorded

    def _exception(
        self,
        row: MemoryItem,
        error_kind: ErrorKind,
        attempts: int,
        code: str,
        message: str,
        actor: str,
        artifacts: Sequence[int] = (),
    ) -> int:
        return self.state.create_review(
            tenant=row.tenant,
            robot=row.robot,
            work_item_id=row.id,
            queue=f"{row.robot}.exceptions",
            **problem_report(error_kind, row.reference, code, message, attempts, artifacts),
            subject=row.subject,
            actor=actor,
        )

    def fail_business(
        self, item: WorkItemView, *, code: str, message: str, actor: str, artifacts: Sequence[int] = ()
    ) -> int:
        """Bad or missing data: failed for good, and an exception review for a person."""
        with self.state.lock:
            row = self._owned(item)
            self._finish(row, ItemStatus.failed_business, "business", code, message)
            return self._exception(row, "business", item.attempts, code, message, actor, artifacts=artifacts)

    def fail_application(
        self,
        item: WorkItemView,
        *,
        code: str,
        message: str,
        actor: str,
        policy: RetryPolicy,
        rng: random.Random | None = None,
        min_delay: float = 0.0,
        artifacts: Sequence[int] = (),
    ) -> bool:
        """A transient failure: retry after the backoff, or fail for good after max attempts."""
        with self.state.lock:
            row = self._owned(item)
            if item.attempts < policy.max_attempts:
                delay = max(policy.delay(item.attempts, rng), min_delay)
                self._finish(row, ItemStatus.pending, "application", code, message)
                row.next_attempt_at = self._now + timedelta(seconds=delay)
                return True
            self._finish(row, ItemStatus.failed_application, "application", code, message)
            self._exception(row, "application", item.attempts, code, message, actor, artifacts=artifacts)
            return False

    def mark_uncertain(self, item: WorkItemView, *, actor: str, code: str, message: str) -> None:
        """Timed out mid-write in an unrepeatable robot: uncertain, with an uncertain review."""
        with self.state.lock:
            row = self._owned(item)
            self._finish(row, ItemStatus.uncertain, "uncertain", code, message)
            self._exception(row, "uncertain", item.attempts, code, message, actor)
            self.state.audit(
                actor=actor,
                action="item.uncertain",
                tenant=row.tenant,
                subject=row.subject,
                details={"robot": row.robot, "count": 1, "reason": code, "work_item_id": row.id},
            )

    def reap_expired(
        self, robot: str, tenant: str, *, side_effects_repeatable: bool, max_attempts: int, actor: str
    ) -> dict[str, int]:
        """Settle items whose worker died: uncertain (unsafe robots) or failed (out of attempts)."""
        counts = {"uncertain": 0, "failed_application": 0}
        with self.state.lock:
            now = self._now
            expired = [
                i
                for i in sorted(self.state.items.values(), key=lambda i: i.id)
                if i.robot == robot
                and i.tenant == tenant
                and i.status == ItemStatus.in_progress
                and i.lease_until is not None
                and i.lease_until < now
            ]
            for row in expired:
                if not side_effects_repeatable:
                    msg = "the worker stopped while processing; the external write may or may not have happened"
                    self._finish(row, ItemStatus.uncertain, "uncertain", "lease_expired", msg)
                    review_msg = "The worker stopped mid-item; check the target system before acting."
                    self._exception(row, "uncertain", 0, "lease_expired", review_msg, actor)
                    counts["uncertain"] += 1
                elif row.attempts >= max_attempts:
                    msg = f"the worker stopped while processing, {max_attempts} times"
                    self._finish(row, ItemStatus.failed_application, "application", "lease_expired", msg)
                    review_msg = "The worker stopped while processing this item on every attempt."
                    self._exception(row, "application", row.attempts, "lease_expired", review_msg, actor)
                    counts["failed_application"] += 1
            for kind, n in counts.items():
                if n:
                    details = {"robot": robot, "count": n, "reason": "lease_expired"}
                    self.state.audit(actor=actor, action=f"item.{kind}", tenant=tenant, details=details)
        return counts

    def next_due(self, robot: str, tenant: str, ids: Collection[int] | None = None) -> datetime | None:
        """When the next pending item of robot+tenant (optionally among ``ids``) falls due."""
        with self.state.lock:
            due = [
                i.next_attempt_at
                for i in self.state.items.values()
                if i.robot == robot and i.tenant == tenant and i.status == ItemStatus.pending
                if ids is None or i.id in ids
            ]
            return min(due, default=None)

    def due_robots(self) -> set[tuple[str, str]]:
        """(robot, tenant) pairs with items due now."""
        with self.state.lock:
            now = self._now
            return {
                (i.robot, i.tenant)
                for i in self.state.items.values()
                if (i.status == ItemStatus.pending and i.next_attempt_at <= now)
                or (i.status == ItemStatus.in_progress and i.lease_until is not None and i.lease_until < now)
            }

    def _open_uncertain(self, item_id: int) -> bool:
        return any(
            r.work_item_id == item_id and r.kind == ReviewKind.uncertain and r.state == ReviewState.open
            for r in self.state.reviews.values()
        )

    def claim_uncertain(
        self,
        robot: str,
        tenant: str,
        owner: str,
        *,
        limit: int = 1,
        lease_seconds: float = 300,
        exclude: Collection[int] = (),
    ) -> list[WorkItemView]:
        """Lease uncertain items whose uncertain review is still open (status unchanged)."""
        with self.state.lock:
            now = self._now
            picked = [
                i
                for i in sorted(self.state.items.values(), key=lambda i: i.id)
                if i.robot == robot
                and i.tenant == tenant
                and i.status == ItemStatus.uncertain
                and (i.lease_until is None or i.lease_until < now)
                and i.id not in exclude
                and self._open_uncertain(i.id)
            ][:limit]
            for i in picked:
                i.lease_owner, i.lease_token = owner, secrets.token_hex(16)
                i.lease_until, i.updated_at = now + timedelta(seconds=lease_seconds), now
            return [WorkItemView.from_row(i) for i in picked]

    def settle_uncertain(self, item: WorkItemView, outcome: Done, *, actor: str) -> list[int]:
        """The re-check found the write done: item done, its uncertain review resolved."""
        with self.state.lock:
            try:
                row = self._owned(item, ItemStatus.uncertain)
            except LeaseLost:
                raise LeaseLost(f"work item {item.id}: lease lost while re-checking it") from None
            if not self._open_uncertain(item.id):
                raise AlreadyDecided(f"work item {item.id} has no open uncertain review item any more")
            row.result = copy.deepcopy(outcome.result)
            self._finish(row, ItemStatus.done, None, None, None)
            comment = "The robot re-checked the target system: the write was done."
            closed = self.state.close_open(
                item.id,
                [ReviewKind.uncertain],
                ReviewState.resolved,
                action="review.resolved",
                actor=actor,
                comment=comment,
            )
            details = {"work_item_id": item.id, "robot": item.robot, "settled": True, "review_ids": closed}
            self.state.audit(
                actor=actor, action="item.rechecked", tenant=item.tenant, subject=item.subject, details=details
            )
            return closed

    def release_uncertain(self, item: WorkItemView, *, actor: str, reason: str) -> None:
        """The re-check could not settle the item: it stays uncertain, for a person (audited)."""
        with self.state.lock:
            row = self.state.items.get(item.id)
            if row is not None and row.lease_token == item.lease_token and row.status == ItemStatus.uncertain:
                row.lease_owner = row.lease_token = row.lease_until = None
            details = {"work_item_id": item.id, "robot": item.robot, "settled": False, "reason": reason}
            self.state.audit(
                actor=actor, action="item.rechecked", tenant=item.tenant, subject=item.subject, details=details
            )

    def _to_pending(self, item_id: int, allowed: Collection[ItemStatus], comment: str | None) -> MemoryItem | None:
        row = self.state.items.get(item_id)
        if row is None or row.status not in allowed:
            return None
        row.status, row.attempts, row.next_attempt_at, row.return_comment = ItemStatus.pending, 0, self._now, comment
        row.error_kind = row.error_code = row.error_message = None
        row.finished_at, row.updated_at = None, self._now
        return row

    def _audit_requeued(self, row: MemoryItem, actor: str, comment: str | None) -> None:
        subject = f"work_item:{row.id}"
        details = {"comment": bool(comment)}
        self.state.audit(actor=actor, action="item.requeued", tenant=row.tenant, subject=subject, details=details)

    def requeue(self, item_id: int, *, actor: str, comment: str | None = None) -> bool:
        """Back to pending from a retryable or returned status only; False when refused."""
        with self.state.lock:
            row = self._to_pending(item_id, REQUEUEABLE, comment)
            if row is not None:
                self._audit_requeued(row, actor, comment)
            return row is not None

    def retry(self, item_id: int, *, actor: str) -> bool:
        """Operations retry a failed, uncertain or cancelled item; its problem reports are withdrawn."""
        with self.state.lock:
            row = self._to_pending(item_id, RETRYABLE, None)
            if row is None:
                return False
            self._audit_requeued(row, actor, None)
            self._withdraw(item_id, actor, "item retried by operations")
            return True

    def _withdraw(self, item_id: int, actor: str, reason: str) -> None:
        kinds = [ReviewKind.exception, ReviewKind.uncertain]
        self.state.close_open(
            item_id, kinds, ReviewState.withdrawn, action="review.withdrawn", actor=actor, comment=reason
        )

    def cancel(self, item_id: int, *, actor: str) -> bool:
        """Operations cancel a pending, failed or uncertain item; its problem reports are withdrawn."""
        with self.state.lock:
            row = self.state.items.get(item_id)
            if row is None or row.status not in CANCELLABLE:
                return False
            previous = row.status.value
            row.status, row.finished_at, row.updated_at = ItemStatus.cancelled, self._now, self._now
            row.lease_owner = row.lease_token = row.lease_until = None
            self._withdraw(item_id, actor, "item cancelled by operations")
            details = {"previous": previous}
            subject = f"work_item:{item_id}"
            self.state.audit(actor=actor, action="item.cancelled", tenant=row.tenant, subject=subject, details=details)
            return True

    def bulk_failed(
        self,
        action: str,
        tenants: Collection[str],
        *,
        actor: str,
        robot: str | None = None,
        status: ItemStatus | None = None,
        error_code: str | None = None,
        run_id: int | None = None,
        limit: int = 1000,
    ) -> list[int]:
        """Retry or cancel every failed item of ``tenants`` matching the filter (see the port); the ids changed."""
        statuses = bulk_statuses(action, status)
        with self.state.lock:
            found = [
                (row.id, row.tenant)
                for row in sorted(self.state.items.values(), key=lambda r: r.id)
                if row.tenant in tenants
                and row.status in statuses
                and (not robot or row.robot == robot)
                and (not error_code or row.error_code == error_code)
                and (run_id is None or row.run_id == run_id)
            ][:limit]
        step = self.retry if action == "retry" else self.cancel
        changed: dict[str, list[int]] = {}
        for item_id, tenant in found:
            if step(item_id, actor=actor):
                changed.setdefault(tenant, []).append(item_id)
        with self.state.lock:
            for tenant, ids in sorted(changed.items()):
                self.state.audit(
                    actor=actor,
                    action=f"items.bulk_{'retried' if action == 'retry' else 'cancelled'}",
                    tenant=tenant,
                    details=bulk_details(ids, robot, statuses, error_code, run_id),
                )
        return sorted(i for ids in changed.values() for i in ids)

    def get(self, item_id: int) -> MemoryItem | None:
        """A copy of one work item, or None."""
        with self.state.lock:
            row = self.state.items.get(item_id)
            return copy.deepcopy(row) if row is not None else None
