"""SQLAlchemy 2 models. Schema changes go through alembic migrations only."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The status enums live with the records (pure data); re-exported here for the models' users.
from core.records import FINAL_ITEM_STATUSES as FINAL_ITEM_STATUSES
from core.records import CallbackStatus as CallbackStatus
from core.records import ItemStatus as ItemStatus
from core.records import ReviewKind as ReviewKind
from core.records import ReviewState as ReviewState
from core.records import RunStatus as RunStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time in UTC (storage default; the engine passes its own clock)."""
    return datetime.now(UTC)


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(
        cls, native_enum=False, length=32, validate_strings=True, values_callable=lambda e: [m.value for m in e]
    )


class Base(DeclarativeBase):
    """Declarative base of all Kollega tables."""

    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType}


class Tenant(Base):
    """A municipality (kommun) served by this deployment, keyed by its kommunkod."""

    __tablename__ = "tenants"
    code: Mapped[str] = mapped_column(String(4), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    ops_email: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One execution of a robot for a tenant."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("schedule", "tenant", "slot", name="uq_runs_schedule_tenant_slot"),
        Index("ix_runs_status_created", "status", "created_at"),
        Index("ix_runs_robot_tenant", "robot", "tenant", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    robot: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.code"))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual | api | catch_up
    schedule: Mapped[str | None] = mapped_column(String(128))
    #: The schedule's local wall-clock slot (e.g. 2026-10-25T02:30), unique per schedule.
    slot: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus), default=RunStatus.queued)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    item_limit: Mapped[int | None] = mapped_column(Integer)
    collected: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    needs_review: Mapped[int] = mapped_column(Integer, default=0)
    failed_business: Mapped[int] = mapped_column(Integer, default=0)
    failed_application: Mapped[int] = mapped_column(Integer, default=0)
    uncertain: Mapped[int] = mapped_column(Integer, default=0)
    retried: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    deadline_at: Mapped[datetime | None] = mapped_column()
    host: Mapped[str | None] = mapped_column(String(200))
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    #: The robot's distribution version and a hash of its code when the run started.
    robot_version: Mapped[str | None] = mapped_column(String(100))
    code_hash: Mapped[str | None] = mapped_column(String(64))
    #: Log entries not kept because the run's log reached its bound.
    log_dropped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RunLog(Base):
    """One entry of a run's structured log (redacted), kept by the retention rules."""

    __tablename__ = "run_logs"
    __table_args__ = (
        UniqueConstraint("run_id", "seq", name="uq_run_logs_run_seq"),
        Index("ix_run_logs_run_level", "run_id", "level"),
        Index("ix_run_logs_run_item", "run_id", "item_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column()
    level: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(500))
    item_id: Mapped[int | None] = mapped_column(Integer)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class WorkItem(Base):
    """One case a robot handles, unique per robot, tenant and business reference."""

    __tablename__ = "work_items"
    __table_args__ = (
        UniqueConstraint("robot", "tenant", "reference", name="uq_work_items_robot_tenant_reference"),
        Index("ix_work_items_claim", "robot", "tenant", "status", "next_attempt_at"),
        Index(
            "ix_work_items_due",
            "robot",
            "tenant",
            "next_attempt_at",
            "id",
            postgresql_where=text("status IN ('pending', 'in_progress')"),
            sqlite_where=text("status IN ('pending', 'in_progress')"),
        ),
        Index("ix_work_items_lease", "status", "lease_until"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    robot: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.code"))
    reference: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    subject: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[ItemStatus] = mapped_column(_enum(ItemStatus), default=ItemStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column()
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    return_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    #: When retention cleared its payload, result and personal identifiers (None = not yet).
    purged_at: Mapped[datetime | None] = mapped_column()


class ReviewItem(Base):
    """Prepared material waiting for (or carrying) a person's decision."""

    __tablename__ = "review_items"
    __table_args__ = (
        Index("ix_review_items_queue", "tenant", "queue", "state", "created_at"),
        Index("ix_review_items_callback", "callback_status", "callback_next_at"),
        Index("ix_review_items_due", "state", "due_at"),
        # The inbox's queue counts (open, overdue, oldest, next deadline) from the index alone.
        Index(
            "ix_review_items_open",
            "tenant",
            "queue",
            "due_at",
            "created_at",
            postgresql_where=text("state = 'open'"),
            sqlite_where=text("state = 'open'"),
        ),
        # "Mina beslut" and a person's recent decisions: without it, every decided item of the tenant is read.
        Index("ix_review_items_decided_by", "decided_by", "decided_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.code"))
    robot: Mapped[str] = mapped_column(String(64))
    work_item_id: Mapped[int | None] = mapped_column(ForeignKey("work_items.id"))
    queue: Mapped[str] = mapped_column(String(128))
    kind: Mapped[ReviewKind] = mapped_column(_enum(ReviewKind), default=ReviewKind.decision)
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")
    material: Mapped[dict[str, Any]] = mapped_column(default=dict)
    subject: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[ReviewState] = mapped_column(_enum(ReviewState), default=ReviewState.open)
    assignee: Mapped[str | None] = mapped_column(String(200))
    due_at: Mapped[datetime | None] = mapped_column()
    #: When its deadline was found passed while it was still open (marked "Försenad"; None = not yet).
    overdue_at: Mapped[datetime | None] = mapped_column()
    #: When its lateness was escalated to the queue's coordinators and operations (once; None = not yet).
    escalated_at: Mapped[datetime | None] = mapped_column()
    four_eyes: Mapped[bool] = mapped_column(Boolean, default=False)
    first_approver: Mapped[str | None] = mapped_column(String(200))
    first_approved_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_comment: Mapped[str | None] = mapped_column(Text)
    #: Robot-specific data given with the decision (form fields ``data.<key>``), for on_decision.
    decision_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    callback_status: Mapped[CallbackStatus] = mapped_column(_enum(CallbackStatus), default=CallbackStatus.none)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_next_at: Mapped[datetime | None] = mapped_column()
    callback_error: Mapped[str | None] = mapped_column(Text)
    #: What carrying the decision out did, in Swedish for the person who decided (Carried.summary).
    callback_summary: Mapped[str | None] = mapped_column(Text)
    #: The target system's reference for the write (a booking or decision id), when it gave one.
    callback_reference: Mapped[str | None] = mapped_column(String(200))
    #: When the decision was carried out, or finally failed.
    callback_finished_at: Mapped[datetime | None] = mapped_column()
    #: Why carrying it out failed, in Swedish a case worker understands (no technical detail).
    callback_message: Mapped[str | None] = mapped_column(Text)
    #: When retention cleared its material, comments and personal identifiers (None = not yet).
    purged_at: Mapped[datetime | None] = mapped_column()
    #: The lease token of the worker carrying the decision out (only it may settle it).
    callback_token: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewComment(Base):
    """A comment on a review item."""

    __tablename__ = "review_comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """One link of the append-only, hash-chained audit and access log."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_subject", "subject"),
        Index("ix_audit_actor_time", "actor", "time"),
    )
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    time: Mapped[datetime] = mapped_column()
    tenant: Mapped[str | None] = mapped_column(String(4))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row that serialises audit appends: the chain's latest seq and hash."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    hash: Mapped[str] = mapped_column(String(64))
    #: The hash this row's last append replaced (the new event's prev_hash; see core.audit.append).
    prev_hash: Mapped[str | None] = mapped_column(String(64))


class Artifact(Base):
    """A file attached to a work item (screenshot, HTML snapshot, trace, document)."""

    __tablename__ = "artifacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.code"))
    work_item_id: Mapped[int | None] = mapped_column(ForeignKey("work_items.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    #: Contains personal data: visible only to roles allowed to see it.
    sensitive: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()


class RobotState(Base):
    """A robot's own state per tenant (core.interfaces.RobotStateStore): a JSON object per key, versioned."""

    __tablename__ = "robot_state"
    robot: Mapped[str] = mapped_column(String(100), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column()


class Lock(Base):
    """A named lease-based lock (the scheduler's leader lock)."""

    __tablename__ = "locks"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    until: Mapped[datetime] = mapped_column()
