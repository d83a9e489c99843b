"""The ports between the kernel and what it drives, in one place.

The engine, the worker, the web layer's state changes and the CLI depend on these
Protocols, not on SQLAlchemy: the SQL stores (core/queue.py, core/review.py, core/runs.py,
core/audit.py, core/artifacts.py, core/locks.py) and the in-memory ones (core/testing/memory.py) fulfil
them, and one contract suite (tests/contract/) holds every implementation to the same
behaviour. Which work-item transition is allowed from which status is defined once, in
core/transitions.py. Connectors (``connectors/``) see a run through :class:`ConnectorContext`.

Stores return *records*: read-only views (an ORM row or a frozen dataclass) with the
fields below. The clock every store takes is :class:`core.clock.Clock`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import random

    from core.audit import VerifyResult
    from core.records import (
        CallbackStatus,
        ItemStatus,
        QueueBacklog,
        ReviewKind,
        ReviewState,
        ReviewView,
        RunLogEntry,
        RunStatus,
        WaitingDecision,
        WorkItemView,
    )
    from core.robot import Done, NeedsReview, NewItem
    from core.transitions import RetryPolicy


# -- records ----------------------------------------------------------------------------
class ItemRecord(Protocol):
    """A work item as a store holds it (read-only)."""

    @property
    def id(self) -> int: ...
    @property
    def robot(self) -> str: ...
    @property
    def tenant(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def status(self) -> ItemStatus: ...
    @property
    def attempts(self) -> int: ...
    @property
    def next_attempt_at(self) -> datetime: ...
    @property
    def lease_owner(self) -> str | None: ...
    @property
    def lease_token(self) -> str | None: ...
    @property
    def lease_until(self) -> datetime | None: ...
    @property
    def run_id(self) -> int | None: ...
    @property
    def result(self) -> dict[str, Any] | None: ...
    @property
    def error_kind(self) -> str | None: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def return_comment(self) -> str | None: ...
    @property
    def finished_at(self) -> datetime | None: ...


class ReviewRecord(Protocol):
    """A review item as a store holds it (read-only)."""

    @property
    def id(self) -> int: ...
    @property
    def tenant(self) -> str: ...
    @property
    def robot(self) -> str: ...
    @property
    def work_item_id(self) -> int | None: ...
    @property
    def queue(self) -> str: ...
    @property
    def kind(self) -> ReviewKind: ...
    @property
    def title(self) -> str: ...
    @property
    def material(self) -> dict[str, Any]: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def state(self) -> ReviewState: ...
    @property
    def assignee(self) -> str | None: ...
    @property
    def due_at(self) -> datetime | None: ...
    @property
    def overdue_at(self) -> datetime | None: ...
    @property
    def escalated_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def four_eyes(self) -> bool: ...
    @property
    def first_approver(self) -> str | None: ...
    @property
    def decided_by(self) -> str | None: ...
    @property
    def decided_at(self) -> datetime | None: ...
    @property
    def decision_comment(self) -> str | None: ...
    @property
    def decision_data(self) -> dict[str, Any] | None: ...
    @property
    def callback_status(self) -> CallbackStatus: ...
    @property
    def callback_attempts(self) -> int: ...
    @property
    def callback_error(self) -> str | None: ...
    @property
    def callback_summary(self) -> str | None: ...
    @property
    def callback_reference(self) -> str | None: ...
    @property
    def callback_finished_at(self) -> datetime | None: ...
    @property
    def callback_message(self) -> str | None: ...
    @property
    def version(self) -> int: ...


class RunRecord(Protocol):
    """A run as a store holds it (read-only)."""

    @property
    def id(self) -> int: ...
    @property
    def robot(self) -> str: ...
    @property
    def tenant(self) -> str: ...
    @property
    def trigger(self) -> str: ...
    @property
    def schedule(self) -> str | None: ...
    @property
    def slot(self) -> str | None: ...
    @property
    def status(self) -> RunStatus: ...
    @property
    def dry_run(self) -> bool: ...
    @property
    def item_limit(self) -> int | None: ...
    @property
    def collected(self) -> int: ...
    @property
    def done(self) -> int: ...
    @property
    def needs_review(self) -> int: ...
    @property
    def failed_business(self) -> int: ...
    @property
    def failed_application(self) -> int: ...
    @property
    def uncertain(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def deadline_at(self) -> datetime | None: ...
    @property
    def lease_owner(self) -> str | None: ...
    @property
    def lease_until(self) -> datetime | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def robot_version(self) -> str | None: ...
    @property
    def code_hash(self) -> str | None: ...
    @property
    def log_dropped(self) -> int: ...


class AuditRecord(Protocol):
    """One audit event (read-only)."""

    @property
    def seq(self) -> int: ...
    @property
    def time(self) -> datetime: ...
    @property
    def tenant(self) -> str | None: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def details(self) -> dict[str, Any]: ...


class ArtifactRecord(Protocol):
    """A stored file attached to a work item (read-only)."""

    @property
    def id(self) -> int: ...
    @property
    def tenant(self) -> str: ...
    @property
    def work_item_id(self) -> int | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def sensitive(self) -> bool: ...
    @property
    def expires_at(self) -> datetime | None: ...


# -- stores -----------------------------------------------------------------------------
class WorkItemStore(Protocol):
    """Work items: idempotent enqueue, leased claims, lease-checked finishing, operations' retry and cancel.

    After the claim every change by a worker is conditional on its lease token: a worker
    that lost its lease changes nothing and gets :class:`~core.errors.LeaseLost`. Every
    transition is audited; the allowed ones are those of core/transitions.py.
    """

    def enqueue(self, robot: str, tenant: str, items: Sequence[NewItem], run_id: int | None = None) -> int:
        """Insert new items; known (robot, tenant, reference)s are left alone. Returns how many were new."""
        ...

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
        """Lease due items (pending, or in progress with an expired lease when ``reclaim_expired``); attempts + 1."""
        ...

    def extend(self, item: WorkItemView, lease_seconds: float) -> None:
        """Extend the lease of an item still being worked on (LeaseLost when it is not ours any more)."""
        ...

    def release(self, items: Sequence[WorkItemView]) -> int:
        """Give leased items that were never started back: pending and due now, attempt returned; how many were ours."""
        ...

    def complete(self, item: WorkItemView, outcome: Done | NeedsReview, *, actor: str) -> int | None:
        """Record Done or NeedsReview under the current lease; returns the decision review's id for NeedsReview."""
        ...

    def complete_many(self, finished: Sequence[tuple[WorkItemView, Done]], *, actor: str) -> list[bool]:
        """Record several Done outcomes in one commit, each under its own lease; per item, whether it was recorded."""
        ...

    def fail_business(
        self, item: WorkItemView, *, code: str, message: str, actor: str, artifacts: Sequence[int] = ()
    ) -> int:
        """Fail for good and open an exception review (its material names the artifacts). Returns the review id."""
        ...

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
        """Retry after the policy's backoff, or fail for good after max attempts (exception review). True = retry."""
        ...

    def mark_uncertain(self, item: WorkItemView, *, actor: str, code: str, message: str) -> None:
        """The worker stopped mid-item (a timeout) in a robot whose writes must not be repeated: uncertain, for a person."""
        ...

    def reap_expired(
        self, robot: str, tenant: str, *, side_effects_repeatable: bool, max_attempts: int, actor: str
    ) -> dict[str, int]:
        """Settle items whose worker died (uncertain, or failed when out of attempts); counts by new status."""
        ...

    def next_due(self, robot: str, tenant: str, ids: Collection[int] | None = None) -> datetime | None:
        """When the next pending item of robot+tenant (optionally among ``ids``) falls due."""
        ...

    def due_robots(self) -> set[tuple[str, str]]:
        """(robot, tenant) pairs with items due now: pending and due, or in progress with an expired lease."""
        ...

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
        """Lease uncertain items with an open uncertain review, for the robot to re-check (status unchanged)."""
        ...

    def settle_uncertain(self, item: WorkItemView, outcome: Done, *, actor: str) -> list[int]:
        """A re-check found the write done: item done, its uncertain review resolved. Returns closed review ids."""
        ...

    def release_uncertain(self, item: WorkItemView, *, actor: str, reason: str) -> None:
        """A re-check could not settle the item: it stays uncertain for a person (audited)."""
        ...

    def requeue(self, item_id: int, *, actor: str, comment: str | None = None) -> bool:
        """Back to pending from a retryable or returned status only (never done); False when refused."""
        ...

    def retry(self, item_id: int, *, actor: str) -> bool:
        """Operations put a failed, uncertain or cancelled item back, withdrawing its problem reports (one transaction)."""
        ...

    def cancel(self, item_id: int, *, actor: str) -> bool:
        """Operations cancel a pending, failed or uncertain item, withdrawing its problem reports (one transaction)."""
        ...

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
        """Retry or cancel (``action``) every failed item of ``tenants`` matching the filter; the ids changed.

        Failed means :data:`core.transitions.BULK_FAILED` (``status`` narrows it to one of
        them). Each item goes as :meth:`retry` or :meth:`cancel` would take it (its own
        audit events, problem reports withdrawn); then one ``items.bulk_retried`` or
        ``items.bulk_cancelled`` event per tenant names the filter and the items. ValueError
        for an unknown action or a status that is not a failure.
        """
        ...

    def get(self, item_id: int) -> ItemRecord | None:
        """One work item, or None."""
        ...


class ReviewStore(Protocol):
    """Review items: decisions (four-eyes, optimistic versions), deadlines, and carrying decisions out."""

    def get(
        self,
        review_id: int,
        *,
        viewer: str | None = None,
        tenants: set[str] | None = None,
        visible: Callable[[ReviewRecord], bool] | None = None,
        start_review_time: bool = False,
    ) -> ReviewRecord:
        """One review item (ReviewError when unknown); a named viewer's opening is written to the access log.

        ``tenants`` and ``visible`` (a check of the item) limit what the viewer may open: an
        item outside them is answered as unknown, and nothing is written.
        ``start_review_time``: the viewer's review time of an open item starts with this
        opening unless it is already running (review time runs from a person's first opening
        to their decision), written together with the access event: both or neither.
        """
        ...

    def for_item(self, work_item_id: int) -> Sequence[ReviewRecord]:
        """The review items of one work item, oldest first."""
        ...

    def assign(self, review_id: int, assignee: str | None, *, actor: str) -> None:
        """Assign (or unassign with None) an open review item."""
        ...

    def comment(self, review_id: int, text: str, *, actor: str) -> None:
        """Add a comment."""
        ...

    def decide(
        self,
        review_id: int,
        decision: str,
        *,
        actor: str,
        comment: str | None = None,
        expected_version: int | None = None,
        decision_data: dict[str, Any] | None = None,
        allowed: Callable[[ReviewRecord], None] | None = None,
    ) -> ReviewRecord:
        """Approve, reject or return an open item (AlreadyDecided, FourEyesViolation, ReviewError).

        ``decision_data`` (robot-specific, e.g. changed amounts) is kept with the decision and
        handed to on_decision. An approval without a truthy value for every key of the
        material's ``required_on_approve`` is refused (ReviewError, code ``confirmation_required``),
        and so is one that changes a part listed in ``reasons_on_change`` without its reason
        (code ``reason_required``; see core.transitions.check_reasons). A final decision (not
        a first approval) ends the decider's running review time of the item (see ``get``),
        written with the decision.

        ``allowed`` (the caller's check of who may decide) is applied to the item as locked
        for the decision, before anything else is checked or told (its decision and comment,
        whether it is still open); it raises to refuse, and nothing is written.
        """
        ...

    def hand_over(self, review_id: int, assignee: str, *, actor: str, comment: str | None = None) -> None:
        """Give an open item to a named person (a colleague's hand-over or a coordinator's reassignment), audited.

        Whether ``assignee`` may decide in the queue is the caller's check; a comment (why)
        is kept with the item. AlreadyDecided when it is no longer open.
        """
        ...

    def past_due(self, *, limit: int = 500) -> Sequence[ReviewRecord]:
        """Open items whose deadline has passed (still open: nothing expires), earliest deadline first."""
        ...

    def mark_overdue(self, review_id: int, *, actor: str) -> bool:
        """Mark an open item past its deadline as overdue (audited once); True when newly marked."""
        ...

    def mark_escalated(self, review_id: int, *, actor: str, to: str) -> bool:
        """Record that an overdue item's lateness was escalated (``to`` whom; audited once); True when new."""
        ...

    def lapse(self, review_id: int, reason: str, *, actor: str) -> bool:
        """Close an open item its robot found pointless as ``lapsed``, with the (Swedish) reason, audited.

        Nothing is carried out; its work item is settled as done with the outcome ``lapsed``.
        False when it is no longer open (a person decided meanwhile, and that decision stands).
        """
        ...

    def backlog(self, *, tenants: set[str] | None = None) -> list[QueueBacklog]:
        """Each queue with open items: how many, how many overdue, the oldest; by tenant and queue."""
        ...

    def due_robots(self) -> set[tuple[str, str]]:
        """(robot, tenant) pairs with decisions due to be carried out."""
        ...

    def claim_callbacks(
        self, robot: str, tenant: str, *, limit: int = 20, lease_seconds: float = 300
    ) -> list[ReviewView]:
        """Lease decided items whose decision is not yet carried out."""
        ...

    def callback_done(
        self, review: ReviewView, *, actor: str, summary: str | None = None, reference: str | None = None
    ) -> None:
        """The robot carried the decision out: keep what it did (Swedish summary, target reference) and
        settle its work item (LeaseLost when no longer ours)."""
        ...

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
        """Carrying out failed: retry later with backoff, or give up to the person who decided. True = will retry.

        ``error`` is technical (operations); ``message`` the Swedish reason the decider sees.
        """
        ...

    def retry_callback(self, review_id: int, *, actor: str) -> bool:
        """Queue a failed decision to be carried out again (audited); False when it is not failed."""
        ...

    def waiting_callbacks(self, *, tenants: set[str] | None = None) -> list[WaitingDecision]:
        """Decisions not yet carried out, oldest decision first."""
        ...


class RunStore(Protocol):
    """Runs: created by the scheduler or a person, claimed and heart-beaten by a worker, finished with counts."""

    def ensure_tenant(self, code: str, name: str, ops_email: str | None = None) -> None:
        """Create or update a tenant."""
        ...

    def create(
        self,
        *,
        robot: str,
        tenant: str,
        trigger: str,
        status: RunStatus = ...,
        schedule: str | None = None,
        slot: str | None = None,
        dry_run: bool = False,
        item_limit: int | None = None,
        deadline_at: datetime | None = None,
        error: str | None = None,
        actor: str = "system:kollega",
    ) -> int | None:
        """Insert a run (queued by default); None when its (schedule, tenant, slot) already exists."""
        ...

    def claim_queued(
        self,
        owner: str,
        lease_seconds: float,
        *,
        exclude_tenants: Collection[str] = (),
        resumable_only: bool = False,
    ) -> RunRecord | None:
        """Take the next run: one whose worker died first, then queued ones, fairly by municipality.

        ``exclude_tenants``: municipalities whose runs this worker already runs (it leaves
        their other runs to other workers); ``resumable_only``: only a run whose worker died
        (a busy worker takes those over, and leaves new runs to a free worker).
        """
        ...

    def start(self, run_id: int, owner: str, lease_seconds: float) -> None:
        """Mark a run as running on this host."""
        ...

    def heartbeat(
        self, run_id: int, lease_seconds: float, counts: dict[str, int] | None = None, *, owner: str | None = None
    ) -> None:
        """Renew the run's lease and store the counts so far; with ``owner``, LeaseLost unless it holds the run."""
        ...

    def finish(
        self,
        run_id: int,
        status: RunStatus,
        counts: dict[str, int],
        error: str | None = None,
        actor: str = "system:kollega",
        *,
        owner: str | None = None,
    ) -> None:
        """Record the end of a run with its counts (error text redacted); with ``owner``, LeaseLost unless it holds the run."""
        ...

    def mark_abandoned(self, *, actor: str = "system:kollega") -> list[int]:
        """Mark in-process runs (lease owner IN_PROCESS_OWNER) whose lease ran out as abandoned; their ids."""
        ...

    def get(self, run_id: int) -> RunRecord | None:
        """One run, or None."""
        ...

    def last_slot(self, schedule: str) -> str | None:
        """The latest slot recorded for a schedule."""
        ...

    def record_version(self, run_id: int, version: str | None, code_hash: str | None) -> None:
        """Store the robot's distribution version and code hash on the run (as it starts)."""
        ...

    def append_log(self, run_id: int, entries: Sequence[RunLogEntry], dropped: int = 0) -> None:
        """Add entries (already redacted, in seq order) to the run's log; ``dropped`` more were not kept."""
        ...

    def run_log(
        self, run_id: int, *, level: str | None = None, item_id: int | None = None, limit: int = 2000
    ) -> list[RunLogEntry]:
        """The run's log in order: entries of ``level`` or above, of ``item_id`` only when given."""
        ...


class AuditSink(Protocol):
    """The append-only, hash-chained audit and access log."""

    def record(
        self,
        *,
        actor: str,
        action: str,
        tenant: str | None = None,
        subject: str | None = None,
        purpose: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Append one event; returns its seq."""
        ...

    def data_access(
        self,
        *,
        actor: str,
        tenant: str | None,
        subject: str,
        system: str,
        purpose: str,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Record a read of personal data."""
        ...

    def events(self, after_seq: int = 0) -> Sequence[AuditRecord]:
        """The events after ``after_seq``, in order."""
        ...

    def verify(self, checkpoint: tuple[int, str] | None = None) -> VerifyResult:
        """Walk the chain and name the first bad seq."""
        ...


class AlertSink(Protocol):
    """Operations alerts a robot raises (shown on the dashboard, mailed to the tenant's ops_email)."""

    def raise_alert(self, *, key: str, kind: str, tenant: str, robot: str, run_id: int | None, message: str) -> bool:
        """Insert the alert unless one with ``key`` exists; True when it is new (raised once per key)."""
        ...

    def alert_keys(self, tenant: str | None = None) -> Sequence[str]:
        """The keys of the alerts raised so far (of one tenant, or all), oldest first."""
        ...


class ArtifactStore(Protocol):
    """Files attached to work items (screenshots, snapshots, documents): saved, found, expired."""

    def save(
        self,
        *,
        tenant: str,
        work_item_id: int | None,
        kind: str,
        filename: str,
        content_type: str,
        data: bytes,
        sensitive: bool = True,
    ) -> int:
        """Store one file; returns its id."""
        ...

    def for_item(self, work_item_id: int) -> Sequence[ArtifactRecord]:
        """The artifacts of one work item."""
        ...

    def purge_expired(self) -> int:
        """Delete files past their retention; returns how many."""
        ...


class LockStore(Protocol):
    """Named locks with a lease, shared by every worker: one holder per key at a time.

    A holder that dies stops renewing, so its lease runs out and the next may take the
    key: a dead holder never blocks a target for longer than one lease.
    """

    def acquire(self, key: str, owner: str, lease_seconds: float) -> bool:
        """Take ``key`` for ``owner`` until now + lease (or renew it, when ``owner`` holds it); False when held by another."""
        ...

    def release(self, key: str, owner: str) -> bool:
        """Give ``key`` up if ``owner`` still holds it; False when it did not (its lease ran out and was taken)."""
        ...

    def holder(self, key: str) -> str | None:
        """The owner holding ``key`` with an unexpired lease, or None."""
        ...


class RobotStateStore(Protocol):
    """A robot's own small state per tenant, kept across runs (JSON objects under a robot's keys).

    Each value has a version that every write raises by one; a write may demand the version
    it read (optimistic concurrency), so two workers updating one key never lose a change:
    the second is refused and reads again. ``expected_version=0`` creates only (write once).
    """

    def get(self, robot: str, tenant: str, key: str) -> tuple[dict[str, Any], int] | None:
        """The value under ``key`` and its version, or None when nothing is kept there."""
        ...

    def put(
        self, robot: str, tenant: str, key: str, value: dict[str, Any], *, expected_version: int | None = None
    ) -> int | None:
        """Keep ``value`` under ``key``; the new version, or None when ``expected_version`` is not the current one."""
        ...


# -- what connectors see -------------------------------------------------------------------
@runtime_checkable
class WriteGuard(Protocol):
    """What a connector asks before every external write (RunContext fulfils it)."""

    dry_run: bool

    def check_write(self, system: str, what: str) -> None:
        """Raise DryRunRefusal in a dry run (and report the refused write); otherwise return."""
        ...


class ConnectorContext(WriteGuard, Protocol):
    """The part of :class:`core.context.RunContext` that connectors use: the write guard, audit, artifacts."""

    tenant: str
    resources: dict[str, Any]

    def record_access(self, *, subject: str, system: str, purpose: str, details: dict[str, Any] | None = None) -> int:
        """Write a data-access audit event."""
        ...

    def record(
        self,
        action: str,
        *,
        subject: str | None = None,
        purpose: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Write an audit event as the running robot."""
        ...

    def save_artifact(
        self,
        *,
        work_item_id: int | None,
        kind: str,
        filename: str,
        content_type: str,
        data: bytes,
        sensitive: bool = True,
    ) -> int:
        """Attach a file to a work item."""
        ...
