"""Work items: idempotent enqueue, claim with a lease, complete, fail, reclaim.

The claim is one statement: on PostgreSQL ``UPDATE … WHERE id IN (SELECT … FOR UPDATE
SKIP LOCKED) RETURNING``, on SQLite the same UPDATE … RETURNING inside a ``BEGIN
IMMEDIATE`` transaction. It checks lease expiry itself, so an item held by a dead worker
is taken over without a separate sweep. Every change after the claim is conditional on
the lease token: a worker that lost its lease changes nothing (:class:`LeaseLost`).
Re-checking uncertain items and operations' requeue, retry and cancel are in
core/queue_ops.py; which status may go where, in core/transitions.py.
"""

from __future__ import annotations

import functools
import json
import random
import secrets
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Table, and_, bindparam, distinct, func, literal_column, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from core import audit
from core.clock import Clock, SystemClock
from core.errors import LeaseLost
from core.problems import ErrorKind, problem_report
from core.queue_ops import RETURNING, ItemOperations, db_lease_sql, lease_end, lease_now, uses_db_clock
from core.records import WorkItemView
from core.review import create_review
from core.robot import Done, NeedsReview, NewItem
from core.storage.db import Database
from core.storage.models import ItemStatus, ReviewKind, WorkItem
from core.transitions import RetryPolicy

__all__ = ["RetryPolicy", "WorkQueue"]


class WorkQueue(ItemOperations):
    """The work-item queue on one database (the :class:`core.interfaces.WorkItemStore` port in SQL)."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()

    # -- enqueue ---------------------------------------------------------------------
    def enqueue(self, robot: str, tenant: str, items: Sequence[NewItem], run_id: int | None = None) -> int:
        """Insert new items; a known (robot, tenant, reference) is left alone. Returns how many were new."""
        if not items:
            return 0
        now = self.clock.now()
        # Sorted and de-duplicated so that concurrent enqueues take row locks in the same
        # order: PostgreSQL would otherwise deadlock two collectors of the same references.
        items = sorted({it.reference: it for it in items}.values(), key=lambda it: it.reference)
        rows = [
            {
                "robot": robot,
                "tenant": tenant,
                "reference": it.reference,
                "payload": it.payload,
                "subject": it.subject,
                "status": ItemStatus.pending.value,
                "attempts": 0,
                "next_attempt_at": now,
                "run_id": run_id,
                "created_at": now,
                "updated_at": now,
            }
            for it in items
        ]
        dialect_insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        stmt = (
            dialect_insert(WorkItem)
            .on_conflict_do_nothing(index_elements=["robot", "tenant", "reference"])
            .returning(WorkItem.id)
        )
        with self.db.session() as s:
            # One multi-row INSERT; RETURNING yields only the rows really inserted.
            return len(s.execute(stmt, rows).all())

    # -- claim -------------------------------------------------------------------------
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
        """Lease up to ``limit`` due items (pending, or in progress with an expired lease) in one statement."""
        now = self.clock.now()
        db_clock = uses_db_clock(self.db, self.clock)
        statement = _claim_statement(self.db.dialect, reclaim_expired, ids is not None, db_clock)
        params: dict[str, Any] = {
            "p_robot": robot,
            "p_tenant": tenant,
            "p_limit": limit,
            "p_owner": owner,
            "p_token": secrets.token_hex(16),
        }
        if db_clock:  # lease times from the server's clock: workers' clocks may disagree
            params["p_lease"] = float(lease_seconds)
        else:
            params["p_now"], params["p_until"] = now, now + timedelta(seconds=lease_seconds)
        if ids is not None:
            params["p_ids"] = list(ids)
        with self.db.single_statement() as conn:
            rows = conn.execute(statement, params).all()
        return sorted((WorkItemView.from_row(r) for r in rows), key=lambda v: v.id)

    def extend(self, item: WorkItemView, lease_seconds: float) -> None:
        """Extend the lease of an item still being worked on."""
        now = self.clock.now()
        if uses_db_clock(self.db, self.clock):
            # On the server's clock, as the claim: one statement setting both to the same end.
            until = lease_end(self.db, self.clock, lease_seconds)
            c = _ITEMS.c
            with self.db.single_statement() as conn:
                res = conn.execute(
                    update(_ITEMS)
                    .where(
                        c.id == item.id,
                        c.lease_token == item.lease_token,
                        c.status == ItemStatus.in_progress,
                    )
                    .values(lease_until=until, next_attempt_at=until, updated_at=now)
                )
            if res.rowcount != 1:
                raise LeaseLost(f"work item {item.id}: lease lost; another worker owns it now or it was finished")
            return
        with self.db.session() as s:
            until = now + timedelta(seconds=lease_seconds)
            self._owned_update(s, item, lease_until=until, next_attempt_at=until, updated_at=now)

    def release(self, items: Sequence[WorkItemView]) -> int:
        """Give leased items that were never started back (a run's prefetched items when it stops).

        Each item only under its own lease: pending again, due now, its lease cleared and
        the attempt its claim counted given back (it was never made). Returns how many were
        released; an item whose lease was lost is left to its new owner.
        """
        if not items:
            return 0
        now = self.clock.now()
        params = {"ids": [i.id for i in items], "tokens": [i.lease_token for i in items], "now": now}
        if self.db.dialect == "postgresql":
            with self.db.single_statement() as conn:
                return len(conn.execute(_RELEASE_PG, params).all())
        released = 0
        with self.db.session() as s:
            conn = s.connection()
            for item in items:
                res = conn.execute(_RELEASE_ONE, {"item_id": item.id, "item_token": item.lease_token, "now": now})
                released += res.rowcount
        return released

    # -- finish ------------------------------------------------------------------------
    def _owned_update(self, s: Session | Connection, item: WorkItemView, **values: Any) -> None:
        statement = _owned_statement(tuple(sorted(values)))
        conn = s.connection() if isinstance(s, Session) else s
        res = conn.execute(
            statement, {**{f"v_{k}": v for k, v in values.items()}, "item_id": item.id, "item_token": item.lease_token}
        )
        if res.rowcount != 1:
            raise LeaseLost(f"work item {item.id}: lease lost; another worker owns it now or it was finished")

    def complete(self, item: WorkItemView, outcome: Done | NeedsReview, *, actor: str) -> int | None:
        """Record a Done or NeedsReview outcome; returns the review item id for NeedsReview."""
        now = self.clock.now()
        if isinstance(outcome, Done):
            with self.db.single_statement() as conn:
                self._owned_update(
                    conn,
                    item,
                    status=ItemStatus.done,
                    result=outcome.result,
                    error_kind=None,
                    error_code=None,
                    error_message=None,
                    finished_at=now,
                    **self._release(),
                )
            return None
        with self.db.session() as s:
            self._owned_update(
                s,
                item,
                status=ItemStatus.needs_review,
                error_kind=None,
                error_code=None,
                error_message=None,
                **self._release(),
            )
            review = create_review(
                s,
                tenant=item.tenant,
                robot=item.robot,
                work_item_id=item.id,
                queue=outcome.queue,
                kind=ReviewKind.decision,
                title=outcome.title,
                summary=outcome.summary,
                material=outcome.material,
                subject=outcome.subject or item.subject,
                due_at=outcome.due,
                four_eyes=outcome.four_eyes,
                actor=actor,
                now=now,
            )
            return review.id

    def complete_many(self, finished: Sequence[tuple[WorkItemView, Done]], *, actor: str) -> list[bool]:
        """Record several Done outcomes at once: one statement and one commit (a group commit).

        Each item is completed only under its own lease, exactly as :meth:`complete` does;
        the answer says, item by item, whether it was (False: the lease was lost, another
        worker owns the item or it was finished, and this outcome was discarded). Nothing is
        buffered here: the outcomes are durable when this returns, so a caller confirms no
        side effect before it, and a crash before it leaves the items to their leases.
        """
        if not finished:
            return []
        now = self.clock.now()
        if self.db.dialect == "postgresql":
            params = {
                "ids": [item.id for item, _ in finished],
                "tokens": [item.lease_token for item, _ in finished],
                "results": [None if o.result is None else json.dumps(o.result) for _, o in finished],
                "now": now,
            }
            with self.db.single_statement() as conn:
                ok = set(conn.execute(_COMPLETE_MANY_PG, params).scalars())
        else:
            # SQLite is in-process: statements cost no round trip, the commit is what counts.
            ok = set()
            statement = _owned_statement(_DONE_KEYS)
            with self.db.session() as s:
                conn = s.connection()
                for item, outcome in finished:
                    values = {"status": ItemStatus.done, "result": outcome.result, "finished_at": now}
                    values |= {"error_kind": None, "error_code": None, "error_message": None, **self._release()}
                    res = conn.execute(
                        statement,
                        {
                            **{f"v_{k}": v for k, v in values.items()},
                            "item_id": item.id,
                            "item_token": item.lease_token,
                        },
                    )
                    if res.rowcount == 1:
                        ok.add(item.id)
        return [item.id in ok for item, _ in finished]

    def fail_business(
        self, item: WorkItemView, *, code: str, message: str, actor: str, artifacts: Sequence[int] = ()
    ) -> int:
        """Bad or missing data: the item fails for good and a person gets an exception review.

        ``artifacts`` (ids of screenshots and the like, saved for this failure) go into the
        review's material, so the review page can show them to those allowed to see them.
        """
        now = self.clock.now()
        with self.db.session() as s:
            self._owned_update(
                s,
                item,
                status=ItemStatus.failed_business,
                error_kind="business",
                error_code=code,
                error_message=message,
                finished_at=now,
                **self._release(),
            )
            review = create_review(
                s,
                tenant=item.tenant,
                robot=item.robot,
                work_item_id=item.id,
                queue=f"{item.robot}.exceptions",
                **problem_report("business", item.reference, code, message, item.attempts, artifacts),
                subject=item.subject,
                actor=actor,
                now=now,
            )
            return review.id

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
        """A transient failure: retry after a backoff, or fail for good after max attempts.

        Returns True when the item will be retried.
        """
        now = self.clock.now()
        with self.db.session() as s:
            if item.attempts < policy.max_attempts:
                delay = max(policy.delay(item.attempts, rng), min_delay)
                self._owned_update(
                    s,
                    item,
                    status=ItemStatus.pending,
                    error_kind="application",
                    error_code=code,
                    error_message=message,
                    next_attempt_at=now + timedelta(seconds=delay),
                    **self._release(),
                )
                return True
            self._owned_update(
                s,
                item,
                status=ItemStatus.failed_application,
                error_kind="application",
                error_code=code,
                error_message=message,
                finished_at=now,
                **self._release(),
            )
            self._exception_review(
                s,
                item.tenant,
                item.robot,
                item.id,
                item.reference,
                item.subject,
                "application",
                item.attempts,
                code,
                message,
                actor,
                now,
                artifacts=artifacts,
            )
            return False

    @staticmethod
    def _exception_review(
        s: Session,
        tenant: str,
        robot: str,
        item_id: int,
        reference: str,
        subject: str | None,
        error_kind: ErrorKind,
        attempts: int,
        code: str,
        message: str,
        actor: str,
        now: datetime,
        artifacts: Sequence[int] = (),
    ) -> None:
        create_review(
            s,
            tenant=tenant,
            robot=robot,
            work_item_id=item_id,
            queue=f"{robot}.exceptions",
            **problem_report(error_kind, reference, code, message, attempts, artifacts),
            subject=subject,
            actor=actor,
            now=now,
        )

    def mark_uncertain(self, item: WorkItemView, *, actor: str, code: str, message: str) -> None:
        """The worker stopped mid-item (a timeout) in a robot whose writes must not be repeated blindly.

        Under the current lease only (:class:`LeaseLost` otherwise): the item becomes
        ``uncertain`` and a person gets an uncertain review, as when the reaper finds a dead
        worker's item.
        """
        now = self.clock.now()
        with self.db.session() as s:
            self._owned_update(
                s,
                item,
                status=ItemStatus.uncertain,
                error_kind="uncertain",
                error_code=code,
                error_message=message,
                finished_at=now,
                **self._release(),
            )
            self._exception_review(
                s,
                item.tenant,
                item.robot,
                item.id,
                item.reference,
                item.subject,
                "uncertain",
                item.attempts,
                code,
                message,
                actor,
                now,
            )
            audit.append(
                s,
                actor=actor,
                action="item.uncertain",
                tenant=item.tenant,
                subject=item.subject,
                details={"robot": item.robot, "count": 1, "reason": code, "work_item_id": item.id},
                now=now,
            )

    # -- expired leases ----------------------------------------------------------------
    def reap_expired(
        self, robot: str, tenant: str, *, side_effects_repeatable: bool, max_attempts: int, actor: str
    ) -> dict[str, int]:
        """Settle items whose worker died: uncertain (unsafe robots) or failed (out of attempts).

        Items of a repeatable robot with attempts left are not touched here: the next claim
        takes them over.
        """
        now = self.clock.now()
        expired = and_(
            WorkItem.robot == robot,
            WorkItem.tenant == tenant,
            WorkItem.status == ItemStatus.in_progress,
            WorkItem.lease_until < lease_now(self.db, self.clock),
        )
        counts = {"uncertain": 0, "failed_application": 0}
        with self.db.session() as s:
            if not side_effects_repeatable:
                rows = s.execute(
                    update(WorkItem)
                    .where(expired)
                    .values(
                        status=ItemStatus.uncertain,
                        error_kind="uncertain",
                        error_code="lease_expired",
                        error_message="the worker stopped while processing; the external write may or may not have happened",
                        finished_at=now,
                        **self._release(),
                    )
                    .returning(WorkItem.id, WorkItem.reference, WorkItem.subject)
                    .execution_options(synchronize_session=False)
                ).all()
                for r in rows:
                    self._exception_review(
                        s,
                        tenant,
                        robot,
                        r.id,
                        r.reference,
                        r.subject,
                        "uncertain",
                        0,
                        "lease_expired",
                        "The worker stopped mid-item; check the target system before acting.",
                        actor,
                        now,
                    )
                counts["uncertain"] = len(rows)
            else:
                failed = s.execute(
                    update(WorkItem)
                    .where(expired, WorkItem.attempts >= max_attempts)
                    .values(
                        status=ItemStatus.failed_application,
                        error_kind="application",
                        error_code="lease_expired",
                        error_message=f"the worker stopped while processing, {max_attempts} times",
                        finished_at=now,
                        **self._release(),
                    )
                    .returning(WorkItem.id, WorkItem.reference, WorkItem.subject, WorkItem.attempts)
                    .execution_options(synchronize_session=False)
                ).all()
                for f in failed:
                    self._exception_review(
                        s,
                        tenant,
                        robot,
                        f.id,
                        f.reference,
                        f.subject,
                        "application",
                        f.attempts,
                        "lease_expired",
                        "The worker stopped while processing this item on every attempt.",
                        actor,
                        now,
                    )
                counts["failed_application"] = len(failed)
            for kind, n in counts.items():
                if n:
                    audit.append(
                        s,
                        actor=actor,
                        action=f"item.{kind}",
                        tenant=tenant,
                        details={"robot": robot, "count": n, "reason": "lease_expired"},
                        now=now,
                    )
        return counts

    # -- queries -----------------------------------------------------------------------
    def pending_count(self, robot: str, tenant: str) -> int:
        """Items not yet in a final or review state (pending or in progress)."""
        with self.db.session() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(WorkItem)
                    .where(
                        WorkItem.robot == robot,
                        WorkItem.tenant == tenant,
                        WorkItem.status.in_([ItemStatus.pending, ItemStatus.in_progress]),
                    )
                )
                or 0
            )

    def next_due(self, robot: str, tenant: str, ids: Collection[int] | None = None) -> datetime | None:
        """When the next pending item of robot+tenant (optionally among ``ids``) falls due."""
        stmt = select(func.min(WorkItem.next_attempt_at)).where(
            WorkItem.robot == robot, WorkItem.tenant == tenant, WorkItem.status == ItemStatus.pending
        )
        if ids is not None:
            stmt = stmt.where(WorkItem.id.in_(list(ids)))
        with self.db.session() as s:
            return s.scalar(stmt)

    def get(self, item_id: int) -> WorkItem | None:
        """One work item row (detached)."""
        with self.db.session() as s:
            return s.get(WorkItem, item_id)

    def due_robots(self) -> set[tuple[str, str]]:
        """(robot, tenant) pairs with items due now: pending and due, or in progress with an expired lease."""
        now = lease_now(self.db, self.clock)
        with self.db.session() as s:
            rows = s.execute(
                select(distinct(WorkItem.robot), WorkItem.tenant).where(
                    ((WorkItem.status == ItemStatus.pending) & (WorkItem.next_attempt_at <= now))
                    | ((WorkItem.status == ItemStatus.in_progress) & (WorkItem.lease_until < now))
                )
            ).all()
        return {(r[0], r[1]) for r in rows}


# -- prepared statements ---------------------------------------------------------------
# The claim and the lease-checked updates run once or twice per item: they are built once
# with bind parameters (Core, not ORM-enabled DML), so that each call only binds values
# instead of building, and computing a cache key for, a new statement.
_ITEMS: Table = WorkItem.__table__  # type: ignore[assignment]


@functools.lru_cache(maxsize=16)
def _claim_statement(dialect: str, reclaim_expired: bool, by_ids: bool, db_clock: bool = False) -> Any:
    # An in-progress item's next_attempt_at is its lease expiry (set here and by extend()),
    # so "due" is one range condition served by the partial index ix_work_items_due.
    # With db_clock, 'now' is the server's statement_timestamp() (stable within the
    # statement, so the index range condition stays as cheap as with a bound value).
    if db_clock:
        p_now, p_until = db_lease_sql()
    else:
        p_now, p_until = bindparam("p_now"), bindparam("p_until")
    statuses = [ItemStatus.pending, ItemStatus.in_progress] if reclaim_expired else [ItemStatus.pending]
    c = _ITEMS.c
    # The statuses are SQL literals, not parameters: a prepared statement's generic plan
    # can then prove the partial index's predicate and use it.
    due = and_(c.status.in_([literal_column(f"'{s.value}'") for s in statuses]), c.next_attempt_at <= p_now)
    if by_ids:
        due = and_(due, c.id.in_(bindparam("p_ids", expanding=True)))
    pick = (
        select(c.id)
        .where(c.robot == bindparam("p_robot"), c.tenant == bindparam("p_tenant"), due)
        .order_by(c.next_attempt_at, c.id)
        .limit(bindparam("p_limit", type_=Integer))
    )
    if dialect == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    return (
        update(_ITEMS)
        .where(c.id.in_(pick.scalar_subquery()))
        .values(
            status=ItemStatus.in_progress,
            lease_owner=bindparam("p_owner"),
            lease_token=bindparam("p_token"),
            lease_until=p_until,
            next_attempt_at=p_until,
            attempts=c.attempts + 1,
            updated_at=p_now,
        )
        .returning(*(_ITEMS.c[col.key] for col in RETURNING))
    )


@functools.lru_cache(maxsize=64)
def _owned_statement(keys: tuple[str, ...]) -> Any:
    """UPDATE of the given columns, only while the item is in progress under the given lease token."""
    c = _ITEMS.c
    return (
        update(_ITEMS)
        .where(
            c.id == bindparam("item_id"),
            c.lease_token == bindparam("item_token"),
            c.status == ItemStatus.in_progress,
        )
        .values({k: bindparam(f"v_{k}", type_=c[k].type) for k in keys})
    )


_DONE_KEYS = tuple(
    sorted(
        (
            "status",
            "result",
            "finished_at",
            "error_kind",
            "error_code",
            "error_message",
            "lease_owner",
            "lease_token",
            "lease_until",
            "updated_at",
        )
    )
)

# Several completions in one statement on PostgreSQL: the outcomes arrive as parallel arrays
# (one bind each, whatever the batch size) and each row is updated only under its own lease.
_COMPLETE_MANY_PG = text(
    """
    UPDATE work_items AS w
    SET status = 'done', result = v.result, error_kind = NULL, error_code = NULL, error_message = NULL,
        finished_at = :now, lease_owner = NULL, lease_token = NULL, lease_until = NULL, updated_at = :now
    FROM unnest(CAST(:ids AS bigint[]), CAST(:tokens AS varchar[]), CAST(:results AS jsonb[]))
        AS v(id, token, result)
    WHERE w.id = v.id AND w.lease_token = v.token AND w.status = 'in_progress'
    RETURNING w.id
    """
)

# Leased, never-started items back to pending (GroupClaim.close): under each one's own lease.
_RELEASE_SET = """
    SET status = 'pending', next_attempt_at = :now, attempts = GREATEST(w.attempts - 1, 0),
        lease_owner = NULL, lease_token = NULL, lease_until = NULL, updated_at = :now
"""
_RELEASE_PG = text(
    "UPDATE work_items AS w"
    + _RELEASE_SET
    + """
    FROM unnest(CAST(:ids AS bigint[]), CAST(:tokens AS varchar[])) AS v(id, token)
    WHERE w.id = v.id AND w.lease_token = v.token AND w.status = 'in_progress'
    RETURNING w.id
    """
)
_RELEASE_ONE = (
    update(_ITEMS)
    .where(
        _ITEMS.c.id == bindparam("item_id"),
        _ITEMS.c.lease_token == bindparam("item_token"),
        _ITEMS.c.status == ItemStatus.in_progress,
    )
    .values(
        status=ItemStatus.pending,
        next_attempt_at=bindparam("now", type_=_ITEMS.c.updated_at.type),
        attempts=func.max(_ITEMS.c.attempts - 1, 0),
        lease_owner=None,
        lease_token=None,
        lease_until=None,
        updated_at=bindparam("now", type_=_ITEMS.c.updated_at.type),
    )
)
