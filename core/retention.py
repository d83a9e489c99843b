"""Retention: personal data in finished work is cleared after each category's period.

Three categories, each with a period per tenant (``[retention]`` for the deployment,
``retention`` in a ``[[tenants]]`` entry to differ):

- **work items** that finished (done, failed, cancelled) more than ``work_item_days`` ago:
  payload, result, error text, the person's comment and the personnummer are cleared;
- **review items** decided (or expired, resolved, withdrawn) more than ``review_days``
  ago: material, summary, decision comment, comments and the personnummer are cleared;
- **artifacts** (screenshots, page snapshots) older than ``artifact_days`` are deleted;
- **run logs** of runs that finished more than ``work_item_days`` ago are deleted (they
  name the items they worked on); the run rows, with the robot's version, stay.

Rows stay, with their status, times and counts, so the dashboard's statistics still add
up; the audit and access log is not touched (it holds no payloads) and still verifies.

**The access log outlives every tenant's retention.** Socialstyrelsen's rules for social
services' records (docs/operations.md, "Åtkomstloggen") ask that access logs be kept at
least five years. The access events (:data:`ACCESS_ACTIONS`) are never removed here, and
:func:`access_log_cutoff` is the one answer to "what may go": nothing younger than
:data:`ACCESS_LOG_YEARS` years, however short a tenant's periods are. Anything that ever
archives or thins the audit table must ask it.
Each purge is itself an audit event per tenant and category. Open work — pending, in
progress, waiting for review, uncertain, open review items — is never purged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update

from core import audit
from core.settings import Settings, TenantSettings
from core.storage.db import Database
from core.storage.models import Artifact, ItemStatus, ReviewComment, ReviewItem, ReviewState, Run, RunLog, WorkItem

#: Audit actions that are reads of personal data: the access log that must be kept and checked.
ACCESS_ACTIONS = ("data.read", "review.opened", "artifact.opened", "audit.searched", "audit.exported")
#: The shortest time access events are kept (Socialstyrelsen: at least five years).
ACCESS_LOG_YEARS = 5

FINISHED = (ItemStatus.done, ItemStatus.failed_business, ItemStatus.failed_application, ItemStatus.cancelled)
CLOSED = (
    ReviewState.approved,
    ReviewState.rejected,
    ReviewState.returned,
    ReviewState.expired,
    ReviewState.resolved,
    ReviewState.withdrawn,
    ReviewState.lapsed,
)


@dataclass
class TenantPurge:
    """What one purge did (or, dry run, would do) for one tenant."""

    tenant: str
    work_item_days: int | None
    review_days: int | None
    artifact_days: int
    work_items: int = 0
    review_items: int = 0
    artifacts: int = 0
    #: Run log entries deleted (a run's log follows the work-item period: it names items).
    run_log_entries: int = 0
    files: list[str] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, without the file paths."""
        return {k: v for k, v in self.__dict__.items() if k != "files"}


def periods(settings: Settings, tenant: TenantSettings) -> tuple[int | None, int | None, int]:
    """(work_item_days, review_days, artifact_days) for a tenant: its own where set, else the default."""
    own, default = tenant.retention, settings.retention

    def pick(name: str) -> int | None:
        value: int | None = getattr(own, name)
        fallback: int | None = getattr(default, name)
        return value if value is not None else fallback

    artifact = pick("artifact_days") or settings.artifact_retention_days
    return pick("work_item_days"), pick("review_days"), artifact


def access_log_cutoff(settings: Settings, tenant: TenantSettings, now: datetime) -> datetime:
    """The newest time an access event of ``tenant`` may be removed at: five years back, at the least.

    A tenant's own retention periods shorten the work-item and review periods only; the
    access log's floor is the same for every tenant whatever they say.
    """
    work_days, review_days, artifact_days = periods(settings, tenant)
    longest = max(d for d in (work_days, review_days, artifact_days, 0) if d is not None)
    try:
        floor = now.replace(year=now.year - ACCESS_LOG_YEARS)
    except ValueError:  # 29 February
        floor = now.replace(year=now.year - ACCESS_LOG_YEARS, day=28)
    return min(floor, now - timedelta(days=longest))


def purge(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    dry_run: bool = False,
    actor: str = "system:retention",
    tenants: list[TenantSettings] | None = None,
) -> list[TenantPurge]:
    """Clear what is past its period, tenant by tenant; returns the counts."""
    out = []
    for tenant in tenants if tenants is not None else settings.tenants:
        work_days, review_days, artifact_days = periods(settings, tenant)
        result = TenantPurge(tenant.code, work_days, review_days, artifact_days)
        with db.session() as s:
            if work_days is not None:
                result.work_items = _purge_items(s, tenant.code, now - timedelta(days=work_days), now, dry_run)
                result.run_log_entries = _purge_run_logs(s, tenant.code, now - timedelta(days=work_days), dry_run)
            if review_days is not None:
                result.review_items = _purge_reviews(s, tenant.code, now - timedelta(days=review_days), now, dry_run)
            result.artifacts, result.files = _purge_artifacts(
                s, tenant.code, now - timedelta(days=artifact_days), now, dry_run
            )
            if not dry_run and (result.work_items or result.review_items or result.artifacts or result.run_log_entries):
                audit.append(
                    s, actor=actor, action="retention.purged", tenant=tenant.code, details=result.as_dict(), now=now
                )
        if not dry_run:  # files only after their rows are gone for good
            for path in result.files:
                Path(path).unlink(missing_ok=True)
        out.append(result)
    return out


def _ids(s: Any, stmt: Any) -> list[int]:
    return [int(i) for i in s.scalars(stmt).all()]


def _purge_items(s: Any, tenant: str, cutoff: datetime, now: datetime, dry_run: bool) -> int:
    ids = _ids(
        s,
        select(WorkItem.id).where(
            WorkItem.tenant == tenant,
            WorkItem.status.in_(FINISHED),
            WorkItem.finished_at < cutoff,
            WorkItem.purged_at.is_(None),
        ),
    )
    if ids and not dry_run:
        for chunk in _chunks(ids):
            s.execute(
                update(WorkItem)
                .where(WorkItem.id.in_(chunk))
                .values(payload={}, result=None, subject=None, error_message=None, return_comment=None, purged_at=now)
                .execution_options(synchronize_session=False)
            )
    return len(ids)


def _purge_run_logs(s: Any, tenant: str, cutoff: datetime, dry_run: bool) -> int:
    """The logs of ``tenant``'s runs that finished before ``cutoff``: deleted (the run rows stay)."""
    runs = select(Run.id).where(Run.tenant == tenant, Run.finished_at < cutoff)
    found = int(s.scalar(select(func.count()).select_from(RunLog).where(RunLog.run_id.in_(runs))) or 0)
    if found and not dry_run:
        s.execute(delete(RunLog).where(RunLog.run_id.in_(runs)).execution_options(synchronize_session=False))
    return found


def _purge_reviews(s: Any, tenant: str, cutoff: datetime, now: datetime, dry_run: bool) -> int:
    ids = _ids(
        s,
        select(ReviewItem.id).where(
            ReviewItem.tenant == tenant,
            ReviewItem.state.in_(CLOSED),
            ReviewItem.decided_at < cutoff,
            ReviewItem.purged_at.is_(None),
        ),
    )
    if ids and not dry_run:
        for chunk in _chunks(ids):
            s.execute(
                update(ReviewItem)
                .where(ReviewItem.id.in_(chunk))
                .values(
                    material={}, summary="", subject=None, decision_comment=None, callback_error=None, purged_at=now
                )
                .execution_options(synchronize_session=False)
            )
            s.execute(delete(ReviewComment).where(ReviewComment.review_id.in_(chunk)))
    return len(ids)


def _purge_artifacts(s: Any, tenant: str, cutoff: datetime, now: datetime, dry_run: bool) -> tuple[int, list[str]]:
    rows = s.execute(
        select(Artifact.id, Artifact.path).where(
            Artifact.tenant == tenant, (Artifact.created_at < cutoff) | (Artifact.expires_at < now)
        )
    ).all()
    if rows and not dry_run:
        for chunk in _chunks([r.id for r in rows]):
            s.execute(delete(Artifact).where(Artifact.id.in_(chunk)))
    return len(rows), [r.path for r in rows]


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
