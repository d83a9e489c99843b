"""The records robots, the engine and the stores share: status enums and item snapshots.

Pure data, no storage: the SQLAlchemy models (core/storage/models.py) store these enums,
and the stores hand robots these frozen snapshots. Every enum member says what it means.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ItemStatus(enum.StrEnum):
    """Where a work item stands."""

    pending = "pending"  # waiting to be claimed (new, or a retry after next_attempt_at)
    in_progress = "in_progress"  # claimed by a worker holding a lease
    done = "done"  # handled completely
    needs_review = "needs_review"  # prepared; a person decides in a review queue
    failed_business = "failed_business"  # bad or missing data; a person handles it
    failed_application = "failed_application"  # technical failure after max attempts
    uncertain = "uncertain"  # worker died mid-write; a person checks what happened
    cancelled = "cancelled"  # cancelled by operations staff


FINAL_ITEM_STATUSES = frozenset(
    {
        ItemStatus.done,
        ItemStatus.failed_business,
        ItemStatus.failed_application,
        ItemStatus.uncertain,
        ItemStatus.cancelled,
    }
)


class RunStatus(enum.StrEnum):
    """Where a run stands."""

    queued = "queued"  # created by the scheduler or a person; waits for a worker
    running = "running"  # a worker executes it
    succeeded = "succeeded"  # finished; every item reached a final or review state
    attention = "attention"  # finished, but some items failed or are uncertain
    failed = "failed"  # the run itself could not run (collect failed, robot missing …)
    missed = "missed"  # its slot passed while no scheduler was up, outside the window
    skipped = "skipped"  # the calendar skipped the slot (weekend, public holiday)
    cancelled = "cancelled"  # cancelled by operations staff before it ran
    interrupted = "interrupted"  # stopped by SIGTERM/SIGINT: current items finished, the rest left pending
    abandoned = "abandoned"  # its in-process runner (kollega run/night/demo) died; no worker can resume it


#: The lease-owner prefix of a run executed in-process (``kollega run``, ``night``, ``demo``):
#: no worker can resume it, so when its heartbeat stops it is marked ``abandoned``.
IN_PROCESS_OWNER = "in-process:"


class ReviewState(enum.StrEnum):
    """Where a review item stands."""

    open = "open"  # waiting for a decision
    approved = "approved"  # approved (by two different people under four-eyes)
    rejected = "rejected"  # rejected
    returned = "returned"  # sent back to the robot with a comment
    expired = "expired"  # no longer set: before 0012_review_overdue a passed deadline closed the item unseen
    resolved = "resolved"  # closed by the robot itself (an uncertain item re-checked); no person decided
    withdrawn = "withdrawn"  # a problem report closed because operations retried or cancelled its item
    lapsed = "lapsed"  # closed because its robot found it lost its point (a shift begun, a day passed); reason kept


class ReviewKind(enum.StrEnum):
    """Why a review item exists."""

    decision = "decision"  # a prepared matter waiting for a person's decision
    exception = "exception"  # a business error or a failed item a person must handle
    uncertain = "uncertain"  # a side effect may or may not have happened


class CallbackStatus(enum.StrEnum):
    """Whether the robot has carried out a decision yet."""

    none = "none"  # nothing to carry out (no decision yet)
    pending = "pending"  # decided; on_decision not yet run successfully
    done = "done"  # on_decision ran successfully
    failed = "failed"  # on_decision failed after its attempts; operations must act


@dataclass(frozen=True)
class WorkItemView:
    """A snapshot of a claimed work item, as a robot sees it."""

    id: int
    robot: str
    tenant: str
    reference: str
    payload: dict[str, Any]
    subject: str | None
    attempts: int
    lease_token: str | None
    run_id: int | None = None
    return_comment: str | None = None
    status: str = ItemStatus.in_progress.value
    result: dict[str, Any] | None = field(default=None)

    @classmethod
    def from_row(cls, row: Any) -> WorkItemView:
        """Build from an ORM row or a RETURNING row."""
        status = row.status.value if isinstance(row.status, ItemStatus) else str(row.status)
        return cls(
            id=row.id,
            robot=row.robot,
            tenant=row.tenant,
            reference=row.reference,
            payload=row.payload or {},
            subject=row.subject,
            attempts=row.attempts,
            lease_token=row.lease_token,
            run_id=row.run_id,
            return_comment=row.return_comment,
            status=status,
            result=row.result,
        )


@dataclass(frozen=True)
class ReviewView:
    """A snapshot of a review item, as a robot's on_decision sees it."""

    id: int
    tenant: str
    robot: str
    work_item_id: int | None
    queue: str
    kind: str
    title: str
    material: dict[str, Any]
    subject: str | None
    state: str
    decided_by: str | None
    decision_comment: str | None
    #: The lease token of the worker carrying the decision out (set by claim_callbacks).
    callback_token: str | None = None
    #: Robot-specific data the person gave with the decision (e.g. changed amounts), or None.
    decision_data: dict[str, Any] | None = None
    #: True when an earlier claim's lease expired before its callback was settled: that
    #: worker died (or stalled) mid-callback, so the decision may be half carried out.
    callback_reclaimed: bool = False

    @classmethod
    def from_row(cls, row: Any) -> ReviewView:
        """Build from an ORM row."""
        return cls(
            id=row.id,
            tenant=row.tenant,
            robot=row.robot,
            work_item_id=row.work_item_id,
            queue=row.queue,
            kind=str(row.kind.value if isinstance(row.kind, ReviewKind) else row.kind),
            title=row.title,
            material=row.material or {},
            subject=row.subject,
            state=str(row.state.value if isinstance(row.state, ReviewState) else row.state),
            decided_by=row.decided_by,
            decision_comment=row.decision_comment,
            callback_token=row.callback_token,
            decision_data=getattr(row, "decision_data", None),
        )


@dataclass(frozen=True)
class WaitingDecision:
    """A decision a person made that no robot has carried out yet (callback pending)."""

    id: int
    robot: str
    tenant: str
    queue: str
    decided_by: str | None
    decided_at: datetime | None
    #: Attempts so far to carry it out (0 = not tried yet).
    attempts: int
    #: The Swedish reason of the latest failed attempt, if any (it will be tried again).
    message: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> WaitingDecision:
        """Build from an ORM row or a memory record."""
        return cls(
            id=row.id,
            robot=row.robot,
            tenant=row.tenant,
            queue=row.queue,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            attempts=row.callback_attempts,
            message=row.callback_message,
        )


@dataclass(frozen=True)
class QueueBacklog:
    """One review queue's open items: how many, how many past their deadline, and the oldest."""

    tenant: str
    queue: str
    #: Open items (waiting for a decision).
    open: int
    #: Open items whose deadline has passed.
    overdue: int
    #: When the oldest open item was created (None when the queue is empty).
    oldest_created_at: datetime | None
    #: The id of the oldest open item (None when the queue is empty).
    oldest_id: int | None


#: Shown to the person who decided when carrying it out failed for a technical reason.
GENERAL_FAILURE = (
    "Roboten kunde inte genomföra beslutet i verksamhetssystemet (systemet svarade inte eller svarade fel)."
)


def failure_summary(review_id: int, title: str, message: str | None) -> str:
    """The exception item's text when a decision could not be carried out (Swedish, nothing technical)."""
    return (
        f"Beslutet i ärende {review_id} ({title}) kunde inte verkställas: {message or GENERAL_FAILURE} "
        "Du kan försöka igen från ärendet, eller genomföra beslutet för hand i verksamhetssystemet."
    )


#: Log levels a run's log keeps, lowest first (DEBUG is never kept: it is for a developer's terminal).
RUN_LOG_LEVELS = ("info", "warning", "error", "critical")


@dataclass(frozen=True)
class RunLogEntry:
    """One entry of a run's structured log, as stored: redacted, bounded, in order (``seq``)."""

    seq: int
    at: datetime
    level: str
    event: str
    item_id: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def levels_from(level: str) -> tuple[str, ...]:
    """The kept levels at or above ``level`` (``"warning"`` → warning, error, critical); ValueError if unknown."""
    level = level.lower()
    if level not in RUN_LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; one of {', '.join(RUN_LOG_LEVELS)}")
    return RUN_LOG_LEVELS[RUN_LOG_LEVELS.index(level) :]
