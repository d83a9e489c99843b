"""The memory stores' shared state: records, ids, the lock, the audit chain and review helpers."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.audit import GENESIS_HASH, event_hash
from core.clock import Clock
from core.records import CallbackStatus, ItemStatus, ReviewKind, ReviewState, RunStatus

if TYPE_CHECKING:
    pass

COUNT_FIELDS = ("collected", "done", "needs_review", "failed_business", "failed_application", "uncertain", "retried")
DECISIONS = {"approve": ReviewState.approved, "reject": ReviewState.rejected, "return": ReviewState.returned}


@dataclass
class MemoryItem:
    """A work item (fields as core.interfaces.ItemRecord)."""

    id: int
    robot: str
    tenant: str
    reference: str
    payload: dict[str, Any]
    subject: str | None
    next_attempt_at: datetime
    run_id: int | None
    created_at: datetime
    status: ItemStatus = ItemStatus.pending
    attempts: int = 0
    lease_owner: str | None = None
    lease_token: str | None = None
    lease_until: datetime | None = None
    result: dict[str, Any] | None = None
    error_kind: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    return_comment: str | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class MemoryReview:
    """A review item (fields as core.interfaces.ReviewRecord)."""

    id: int
    tenant: str
    robot: str
    work_item_id: int | None
    queue: str
    kind: ReviewKind
    title: str
    summary: str
    material: dict[str, Any]
    subject: str | None
    created_at: datetime
    due_at: datetime | None = None
    overdue_at: datetime | None = None
    escalated_at: datetime | None = None
    four_eyes: bool = False
    state: ReviewState = ReviewState.open
    assignee: str | None = None
    first_approver: str | None = None
    first_approved_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_comment: str | None = None
    decision_data: dict[str, Any] | None = None
    callback_status: CallbackStatus = CallbackStatus.none
    callback_attempts: int = 0
    callback_next_at: datetime | None = None
    callback_error: str | None = None
    callback_summary: str | None = None
    callback_reference: str | None = None
    callback_finished_at: datetime | None = None
    callback_message: str | None = None
    callback_token: str | None = None
    version: int = 1
    comments: list[tuple[str, str, datetime]] = field(default_factory=list)


@dataclass
class MemoryReviewTiming:
    """A person's review time of an item: from their first opening to their decision (as web_review_timings)."""

    review_id: int
    robot: str
    tenant: str
    actor: str
    opened_at: datetime
    decided_at: datetime | None = None
    seconds: int | None = None


@dataclass
class MemoryRun:
    """A run (fields as core.interfaces.RunRecord)."""

    id: int
    robot: str
    tenant: str
    trigger: str
    schedule: str | None
    slot: str | None
    status: RunStatus
    dry_run: bool
    item_limit: int | None
    created_at: datetime
    deadline_at: datetime | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    host: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    collected: int = 0
    done: int = 0
    needs_review: int = 0
    failed_business: int = 0
    failed_application: int = 0
    uncertain: int = 0
    retried: int = 0
    robot_version: str | None = None
    code_hash: str | None = None
    log_dropped: int = 0
    #: The run's log (core.records.RunLogEntry), in seq order.
    log: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class MemoryEvent:
    """An audit event (fields as core.interfaces.AuditRecord, with its chain hashes)."""

    seq: int
    time: datetime
    tenant: str | None
    actor: str
    action: str
    subject: str | None
    purpose: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass
class MemoryArtifact:
    """A stored file (fields as core.interfaces.ArtifactRecord); its bytes stay in memory."""

    id: int
    tenant: str
    work_item_id: int | None
    kind: str
    filename: str
    content_type: str
    data: bytes
    sensitive: bool
    created_at: datetime
    expires_at: datetime

    @property
    def path(self) -> str:
        """A pseudo path (there is no file)."""
        return f"memory://artifacts/{self.id}/{self.filename}"


class MemoryState:
    """Everything the memory stores hold, behind one lock (the stores' "transaction")."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.items: dict[int, MemoryItem] = {}
        self.reviews: dict[int, MemoryReview] = {}
        self.runs: dict[int, MemoryRun] = {}
        self.tenants: dict[str, tuple[str, str | None]] = {}
        self.events: list[MemoryEvent] = []
        self.review_timings: list[MemoryReviewTiming] = []
        self.artifacts: dict[int, MemoryArtifact] = {}
        self._ids: dict[str, int] = {}

    def next_id(self, kind: str) -> int:
        """The next id of ``kind`` (ids start at 1, like the database's)."""
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def audit(
        self,
        *,
        actor: str,
        action: str,
        tenant: str | None = None,
        subject: str | None = None,
        purpose: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Append one hash-chained event; returns its seq."""
        seq = len(self.events) + 1
        prev = self.events[-1].hash if self.events else GENESIS_HASH
        clean: dict[str, Any] = json.loads(json.dumps(details or {}, sort_keys=True, default=str))
        time = self.clock.now()
        fields: dict[str, Any] = {
            "seq": seq,
            "time": time,
            "tenant": tenant,
            "actor": actor,
            "action": action,
            "subject": subject,
            "purpose": purpose,
            "details": clean,
            "prev_hash": prev,
        }
        self.events.append(MemoryEvent(**fields, hash=event_hash(**fields)))
        return seq

    def create_review(
        self,
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
        due_at: datetime | None = None,
        four_eyes: bool = False,
    ) -> int:
        """An open review item, audited (as core.review.create_review)."""
        review = MemoryReview(
            self.next_id("review"),
            tenant,
            robot,
            work_item_id,
            queue,
            kind,
            title,
            summary,
            copy.deepcopy(material),
            subject,
            self.clock.now(),
            due_at=due_at,
            four_eyes=four_eyes,
        )
        self.reviews[review.id] = review
        self.audit(
            actor=actor,
            action="review.created",
            tenant=tenant,
            subject=subject,
            details={"review_id": review.id, "queue": queue, "kind": kind.value, "work_item_id": work_item_id},
        )
        return review.id

    def close_open(
        self,
        work_item_id: int,
        kinds: Collection[ReviewKind],
        state: ReviewState,
        *,
        action: str,
        actor: str,
        comment: str,
    ) -> list[int]:
        """Close a work item's open reviews of ``kinds`` without a person (as core.review._close_open)."""
        now = self.clock.now()
        closed = []
        for row in sorted(self.reviews.values(), key=lambda r: r.id):
            if row.work_item_id != work_item_id or row.kind not in kinds or row.state != ReviewState.open:
                continue
            row.state, row.decided_by, row.decided_at, row.decision_comment = state, actor, now, comment
            row.callback_status = CallbackStatus.none
            row.version += 1
            self.audit(
                actor=actor,
                action=action,
                tenant=row.tenant,
                subject=row.subject,
                details={"review_id": row.id, "queue": row.queue, "work_item_id": work_item_id, "reason": comment},
            )
            closed.append(row.id)
        return closed
