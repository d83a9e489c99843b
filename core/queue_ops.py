"""The SQL work-item store's second half: re-checking uncertain items, and operations' requeue, retry and cancel.

Mixed into :class:`core.queue.WorkQueue`. Which status may go where is core/transitions.py's
to say; every UPDATE here checks it in its own WHERE clause, so a decision taken on a
status read earlier cannot act on a status that changed since (a retry never puts back an
item a re-check has just finished).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, and_, bindparam, exists, func, literal_column, or_, select, update
from sqlalchemy.orm import Session

from core import audit
from core.clock import Clock, SystemClock
from core.errors import LeaseLost
from core.records import WorkItemView
from core.review import lock_reviews_of, resolve_uncertain, withdraw_problem_reports
from core.robot import Done
from core.storage.db import Database
from core.storage.models import ItemStatus, ReviewItem, ReviewKind, ReviewState, WorkItem
from core.transitions import CANCELLABLE, REQUEUEABLE, RETRYABLE, bulk_details, bulk_statuses

#: What a claim returns: the columns of a WorkItemView.
RETURNING = (
    WorkItem.id,
    WorkItem.robot,
    WorkItem.tenant,
    WorkItem.reference,
    WorkItem.payload,
    WorkItem.subject,
    WorkItem.attempts,
    WorkItem.lease_token,
    WorkItem.run_id,
    WorkItem.return_comment,
    WorkItem.status,
    WorkItem.result,
)


def uses_db_clock(db: Database, clock: Clock) -> bool:
    """True when leases are timed by the database's clock: PostgreSQL on real time.

    Workers on several machines share one PostgreSQL; their own clocks may disagree, the
    server's is one. Lease times (claim, extend, expiry checks) then come from the server
    (``statement_timestamp()``). A store on a test clock (or SQLite, one machine) keeps the
    clock it was given, so tests can move time.
    """
    return db.dialect == "postgresql" and type(clock) is SystemClock


def lease_now(db: Database, clock: Clock) -> Any:
    """'Now' for lease comparisons: the database's clock where :func:`uses_db_clock`, else ``clock``."""
    return func.statement_timestamp() if uses_db_clock(db, clock) else clock.now()


def lease_end(db: Database, clock: Clock, seconds: float) -> Any:
    """The end of a lease of ``seconds`` starting now (on the same clock as :func:`lease_now`)."""
    if uses_db_clock(db, clock):
        return func.statement_timestamp() + literal_column("interval '1 second'") * float(seconds)
    return clock.now() + timedelta(seconds=seconds)


def db_lease_sql() -> tuple[Any, Any]:
    """The claim's 'now' and lease end on the database's clock, as SQL with a ``p_lease`` bind parameter."""
    now = func.statement_timestamp()
    return now, now + literal_column("interval '1 second'") * bindparam("p_lease", type_=Float)


def _audit_requeued(s: Session, actor: str, tenant: str, item_id: int, comment: str | None, now: datetime) -> None:
    audit.append(
        s,
        actor=actor,
        action="item.requeued",
        tenant=tenant,
        subject=f"work_item:{item_id}",
        details={"comment": bool(comment)},
        now=now,
    )


class ItemOperations:
    """Uncertain items' re-check and operations' transitions, on the work queue's database."""

    db: Database
    clock: Clock

    def _release(self) -> dict[str, Any]:
        now = self.clock.now()
        return {"lease_owner": None, "lease_token": None, "lease_until": None, "updated_at": now}

    # -- re-checking uncertain items ---------------------------------------------------
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
        """Lease uncertain items whose uncertain review is still open, for the robot to re-check.

        The item stays ``uncertain``; only its lease is taken (so two workers never re-check
        one item at once, and a re-check that dies simply lets the lease run out). Items a
        person has already decided on are the person's and are not offered.
        """
        now = self.clock.now()
        w = WorkItem
        still_open = exists().where(
            ReviewItem.work_item_id == w.id,
            ReviewItem.kind == ReviewKind.uncertain,
            ReviewItem.state == ReviewState.open,
        )
        pick = (
            select(w.id)
            .where(
                w.robot == robot,
                w.tenant == tenant,
                w.status == ItemStatus.uncertain,
                or_(w.lease_until.is_(None), w.lease_until < lease_now(self.db, self.clock)),
                still_open,
            )
            .order_by(w.id)
            .limit(limit)
        )
        if exclude:
            pick = pick.where(w.id.not_in(list(exclude)))
        if self.db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True, of=w)
        statement = (
            update(w)
            .where(w.id.in_(pick.scalar_subquery()))
            .values(
                lease_owner=owner,
                lease_token=secrets.token_hex(16),
                lease_until=now + timedelta(seconds=lease_seconds),
                updated_at=now,
            )
            .returning(*RETURNING)
            .execution_options(synchronize_session=False)
        )
        with self.db.session() as s:
            rows = s.execute(statement).all()
        return sorted((WorkItemView.from_row(r) for r in rows), key=lambda v: v.id)

    def _uncertain_owned(self, item: WorkItemView) -> Any:
        return and_(
            WorkItem.id == item.id, WorkItem.lease_token == item.lease_token, WorkItem.status == ItemStatus.uncertain
        )

    def settle_uncertain(self, item: WorkItemView, outcome: Done, *, actor: str) -> list[int]:
        """The robot's re-check found the write done: the item is done, its uncertain review resolved.

        Returns the ids of the review items closed. Raises :class:`LeaseLost` when the lease
        is gone, and :class:`~core.errors.AlreadyDecided` when a person decided meanwhile;
        either way nothing changes.
        """
        now = self.clock.now()
        with self.db.session() as s:
            # Locks in the order a decision's callback takes them: review rows, the work item,
            # then the audit head (every audit append); any other order could deadlock.
            s.execute(
                select(ReviewItem.id)
                .where(ReviewItem.work_item_id == item.id, ReviewItem.kind == ReviewKind.uncertain)
                .with_for_update(key_share=True)
            ).all()
            res = s.connection().execute(
                update(WorkItem)
                .where(self._uncertain_owned(item))
                .values(
                    status=ItemStatus.done,
                    result=outcome.result,
                    error_kind=None,
                    error_code=None,
                    error_message=None,
                    finished_at=now,
                    **self._release(),
                )
            )
            if res.rowcount != 1:
                raise LeaseLost(f"work item {item.id}: lease lost while re-checking it")
            closed = resolve_uncertain(
                s, item.id, actor=actor, comment="The robot re-checked the target system: the write was done.", now=now
            )
            audit.append(
                s,
                actor=actor,
                action="item.rechecked",
                tenant=item.tenant,
                subject=item.subject,
                details={"work_item_id": item.id, "robot": item.robot, "settled": True, "review_ids": closed},
                now=now,
            )
            return closed

    def release_uncertain(self, item: WorkItemView, *, actor: str, reason: str) -> None:
        """The re-check could not settle the item: it stays uncertain, for a person (audited)."""
        now = self.clock.now()
        with self.db.session() as s:
            s.execute(
                update(WorkItem)
                .where(self._uncertain_owned(item))
                .values(**self._release())
                .execution_options(synchronize_session=False)
            )
            audit.append(
                s,
                actor=actor,
                action="item.rechecked",
                tenant=item.tenant,
                subject=item.subject,
                details={"work_item_id": item.id, "robot": item.robot, "settled": False, "reason": reason},
                now=now,
            )

    # -- operations: requeue, retry, cancel --------------------------------------------
    @staticmethod
    def _to_pending(
        s: Session, item_id: int, comment: str | None, now: datetime, allowed: Collection[ItemStatus] = REQUEUEABLE
    ) -> str | None:
        """Back to pending, only from a status in ``allowed`` (checked in the UPDATE); its tenant, None if refused."""
        row = s.execute(
            update(WorkItem)
            .where(WorkItem.id == item_id, WorkItem.status.in_(allowed))
            .values(
                status=ItemStatus.pending,
                attempts=0,
                next_attempt_at=now,
                return_comment=comment,
                error_kind=None,
                error_code=None,
                error_message=None,
                finished_at=None,
                updated_at=now,
            )
            .returning(WorkItem.tenant)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        return None if row is None else str(row[0])

    def requeue(self, item_id: int, *, actor: str, comment: str | None = None) -> bool:
        """Put an item back in the queue: a retry, or a decision returned to the robot (audited).

        Only from the statuses core.transitions allows (never ``done`` nor ``in_progress``),
        checked in the same statement; False when refused.
        """
        now = self.clock.now()
        with self.db.session() as s:
            tenant = self._to_pending(s, item_id, comment, now)
            if tenant is None:
                return False
            _audit_requeued(s, actor, tenant, item_id, comment, now)
            return True

    def retry(self, item_id: int, *, actor: str) -> bool:
        """Operations put a failed, uncertain or cancelled item back, and withdraw its problem reports.

        One transaction; False when its status does not allow a retry (checked in the UPDATE).
        """
        now = self.clock.now()
        with self.db.session() as s:
            lock_reviews_of(s, item_id)  # review rows before the item, as a re-check locks them
            tenant = self._to_pending(s, item_id, None, now, RETRYABLE)
            if tenant is None:
                return False
            _audit_requeued(s, actor, tenant, item_id, None, now)
            # The problem report is being dealt with: out of the inbox.
            withdraw_problem_reports(s, item_id, actor=actor, reason="item retried by operations", now=now)
            return True

    def cancel(self, item_id: int, *, actor: str) -> bool:
        """Operations cancel a pending, failed or uncertain item, and withdraw its problem reports.

        One transaction; the lease is cleared; False when its status does not allow it.
        """
        now = self.clock.now()
        with self.db.session() as s:
            lock_reviews_of(s, item_id)
            previous = s.scalar(select(WorkItem.status).where(WorkItem.id == item_id))
            changed = s.execute(
                update(WorkItem)
                .where(WorkItem.id == item_id, WorkItem.status.in_(CANCELLABLE))
                .values(
                    status=ItemStatus.cancelled,
                    finished_at=now,
                    updated_at=now,
                    lease_owner=None,
                    lease_token=None,
                    lease_until=None,
                )
                .returning(WorkItem.tenant)
                .execution_options(synchronize_session=False)
            ).one_or_none()
            if changed is None:
                return False
            withdraw_problem_reports(s, item_id, actor=actor, reason="item cancelled by operations", now=now)
            audit.append(
                s,
                actor=actor,
                action="item.cancelled",
                tenant=changed[0],
                subject=f"work_item:{item_id}",
                details={"previous": previous.value if previous is not None else None},
                now=now,
            )
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
        stmt = select(WorkItem.id, WorkItem.tenant).where(
            WorkItem.tenant.in_(list(tenants)), WorkItem.status.in_(statuses)
        )
        if robot:
            stmt = stmt.where(WorkItem.robot == robot)
        if error_code:
            stmt = stmt.where(WorkItem.error_code == error_code)
        if run_id is not None:
            stmt = stmt.where(WorkItem.run_id == run_id)
        with self.db.session() as s:
            found = s.execute(stmt.order_by(WorkItem.id).limit(limit)).all()
        step = self.retry if action == "retry" else self.cancel
        changed: dict[str, list[int]] = {}
        for item_id, tenant in found:
            if step(int(item_id), actor=actor):  # each in its own transaction, as one by one
                changed.setdefault(str(tenant), []).append(int(item_id))
        now = self.clock.now()
        with self.db.session() as s:
            for tenant, ids in sorted(changed.items()):
                audit.append(
                    s,
                    actor=actor,
                    action=f"items.bulk_{'retried' if action == 'retry' else 'cancelled'}",
                    tenant=tenant,
                    details=bulk_details(ids, robot, statuses, error_code, run_id),
                    now=now,
                )
        return sorted(i for ids in changed.values() for i in ids)
