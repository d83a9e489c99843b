"""Retention: personal data in finished work is cleared after its period; open work and the audit log stay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from core import audit
from core.artifacts import FileArtifactStore
from core.retention import purge
from core.review import ReviewQueue
from core.settings import RetentionSettings, TenantSettings
from core.storage.db import Database
from core.storage.models import (
    Artifact,
    AuditEvent,
    ItemStatus,
    ReviewComment,
    ReviewItem,
    ReviewState,
    Run,
    RunLog,
    WorkItem,
)
from core.testing import ExampleRobot, FakeClock, make_settings, run_robot


def _night(db: Database, tmp_path: Path, clock: FakeClock, tenant: str) -> None:
    settings = make_settings(
        tmp_path,
        tenants=[TenantSettings(code=tenant, name=f"Kommun {tenant}")],
        robots={"example": {"items": 9, "flaky_every": 0, "batch": f"b{tenant}"}},
    )
    run_robot(ExampleRobot, db=db, app_settings=settings, tenant=tenant, clock=clock)


def _log_count(s: Any, tenant: str) -> int:
    runs = select(Run.id).where(Run.tenant == tenant)
    return int(s.scalar(select(func.count()).select_from(RunLog).where(RunLog.run_id.in_(runs))) or 0)


def test_purge_clears_finished_work_past_each_tenants_period_and_nothing_else(db: Database, tmp_path: Path) -> None:
    clock = FakeClock()
    _night(db, tmp_path, clock, "0000")
    _night(db, tmp_path, clock, "1081")
    reviews = ReviewQueue(db, clock)
    with db.session() as s:
        decision = s.scalars(
            select(ReviewItem.id)
            .where(ReviewItem.tenant == "0000", ReviewItem.kind == "decision")
            .order_by(ReviewItem.id)
        ).first()
    assert decision is not None
    reviews.comment(decision, actor="user:anna", text="Kontrollera hyran")
    reviews.decide(decision, "approve", actor="user:anna")
    store = FileArtifactStore(db, tmp_path / "artifacts", 30, clock)
    shot = store.save(
        tenant="0000", work_item_id=None, kind="screenshot", filename="a.png", content_type="image/png", data=b"png"
    )
    shot_path = Path(store.for_item(None)[0].path)  # type: ignore[arg-type]

    settings = make_settings(
        tmp_path,
        retention=RetentionSettings(work_item_days=90, review_days=90, artifact_days=10),
        tenants=[
            TenantSettings(code="0000", name="Testkommun"),
            TenantSettings(code="1081", name="Ronneby kommun", retention=RetentionSettings(work_item_days=400)),
        ],
    )
    later = clock.now() + timedelta(days=120)

    dry = purge(db, settings, later, dry_run=True)
    assert {r.tenant: (r.work_items, r.review_items, r.artifacts) for r in dry} == {
        "0000": (6, 1, 1),
        "1081": (0, 0, 0),
    }
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.purged_at.is_not(None))) == 0

    with db.session() as s:
        logged = {t: _log_count(s, t) for t in ("0000", "1081")}
    assert logged["0000"] > 0 and logged["1081"] > 0  # each run kept its log
    done = purge(db, settings, later)
    assert [(r.tenant, r.work_items, r.review_items, r.artifacts) for r in done] == [
        ("0000", 6, 1, 1),
        ("1081", 0, 0, 0),
    ]
    # A run's log goes with its items' data (it names them); Ronneby's is kept its 400 days.
    assert [(r.tenant, r.run_log_entries) for r in done] == [("0000", logged["0000"]), ("1081", 0)]
    with db.session() as s:
        assert (_log_count(s, "0000"), _log_count(s, "1081")) == (0, logged["1081"])
        assert s.scalar(select(func.count()).select_from(Run).where(Run.tenant == "0000")) == 1  # the run stays
    with db.session() as s:
        cleared = s.scalars(select(WorkItem).where(WorkItem.tenant == "0000", WorkItem.purged_at.is_not(None))).all()
        assert {i.status for i in cleared} <= {ItemStatus.done, ItemStatus.failed_business}
        assert all(
            i.payload == {} and i.result is None and i.subject is None and i.error_message is None for i in cleared
        )
        # Waiting for a person: untouched, whatever its age.
        waiting = s.scalars(
            select(WorkItem).where(WorkItem.tenant == "0000", WorkItem.status == ItemStatus.needs_review)
        ).all()
        assert waiting and all(i.purged_at is None and i.payload for i in waiting)
        # Ronneby keeps finished work 400 days.
        assert (
            s.scalar(
                select(func.count())
                .select_from(WorkItem)
                .where(WorkItem.tenant == "1081", WorkItem.purged_at.is_not(None))
            )
            == 0
        )
        decided = s.get(ReviewItem, decision)
        assert decided is not None and decided.material == {} and decided.state == ReviewState.approved
        assert s.scalar(select(func.count()).select_from(ReviewComment).where(ReviewComment.review_id == decision)) == 0
        assert (
            s.scalar(
                select(func.count())
                .select_from(ReviewItem)
                .where(ReviewItem.state == ReviewState.open, ReviewItem.purged_at.is_not(None))
            )
            == 0
        )
        assert s.get(Artifact, shot) is None
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "retention.purged")).all()
        assert [(e.tenant, e.details["work_items"]) for e in events] == [("0000", 6)]
        assert audit.verify(s).ok
    assert not shot_path.exists()

    again = purge(db, settings, later + timedelta(days=1))
    assert sum(r.work_items + r.review_items + r.artifacts for r in again) == 0  # once is enough
