"""The interfaces between the kernel and what it drives, in one place.

The engine depends on these Protocols, not on SQLAlchemy or a particular library;
connectors in ``connectors/`` fulfil the outward-facing ones (SMS, mail, browser).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from core.audit import VerifyResult
    from core.queue import RetryPolicy
    from core.records import ReviewView, WorkItemView
    from core.robot import Done, NeedsReview, NewItem


class WorkItemStore(Protocol):
    """Work items: idempotent enqueue, leased claims, lease-checked completion."""

    def enqueue(self, robot: str, tenant: str, items: Sequence[NewItem], run_id: int | None = None) -> int:
        """Insert new items; known references are left alone. Returns how many were new."""
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
        """Lease due items in one statement."""
        ...

    def complete(self, item: WorkItemView, outcome: Done | NeedsReview, *, actor: str) -> int | None:
        """Record Done or NeedsReview (only under the current lease)."""
        ...

    def fail_business(
        self, item: WorkItemView, *, code: str, message: str, actor: str, artifacts: Sequence[int] = ()
    ) -> int:
        """Fail for good and open an exception review (its material names the failure's artifacts)."""
        ...

    def fail_application(
        self,
        item: WorkItemView,
        *,
        code: str,
        message: str,
        actor: str,
        policy: RetryPolicy,
        min_delay: float = 0.0,
        artifacts: Sequence[int] = (),
    ) -> bool:
        """Retry later, or fail for good after max attempts (exception review with the artifacts). True = retry."""
        ...

    def extend(self, item: WorkItemView, lease_seconds: float) -> None:
        """Extend the lease of an item still being worked on."""
        ...

    def reap_expired(
        self, robot: str, tenant: str, *, side_effects_repeatable: bool, max_attempts: int, actor: str
    ) -> dict[str, int]:
        """Settle items whose worker died (uncertain, or failed when out of attempts)."""
        ...

    def next_due(self, robot: str, tenant: str, ids: Collection[int] | None = None) -> datetime | None:
        """When the next pending item falls due."""
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
        """A re-check could not settle the item: it stays uncertain for a person."""
        ...


class ReviewStore(Protocol):
    """Review items and the carrying-out of decisions."""

    def decide(
        self,
        review_id: int,
        decision: str,
        *,
        actor: str,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> Any:
        """Approve, reject or return an open item."""
        ...

    def claim_callbacks(
        self, robot: str, tenant: str, *, limit: int = 20, lease_seconds: float = 300
    ) -> list[ReviewView]:
        """Lease decided items whose decision is not yet carried out."""
        ...

    def callback_done(self, review: ReviewView, *, actor: str) -> None:
        """The robot carried the decision out."""
        ...

    def callback_failed(
        self, review: ReviewView, error: str, *, max_attempts: int, base_seconds: float, cap_seconds: float, actor: str
    ) -> bool:
        """Carrying out failed: retry later or give up. True = will retry."""
        ...

    def expire_overdue(self, *, actor: str = "system:kollega") -> int:
        """Expire open items past their deadline."""
        ...


class AuditSink(Protocol):
    """The append-only audit and access log."""

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

    def verify(self, checkpoint: tuple[int, str] | None = None) -> VerifyResult:
        """Walk the chain."""
        ...


@runtime_checkable
class WriteGuard(Protocol):
    """What a connector asks before every external write (RunContext fulfils it)."""

    dry_run: bool

    def check_write(self, system: str, what: str) -> None:
        """Raise DryRunRefusal in a dry run; otherwise return."""
        ...


class SmsSender(Protocol):
    """Sends text messages and reads replies."""

    async def send(self, to: str, text: str, *, reference: str) -> str:
        """Send one message; returns the gateway's message id."""
        ...


class Mailer(Protocol):
    """Sends mail."""

    async def send(self, to: Sequence[str], subject: str, body: str) -> None:
        """Send one message."""
        ...


class ConnectorContext(Protocol):
    """The part of :class:`core.context.RunContext` that connectors use."""

    tenant: str
    dry_run: bool
    resources: dict[str, Any]

    def check_write(self, system: str, what: str) -> None:
        """Raise DryRunRefusal in a dry run (and report the refused write)."""
        ...

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
