"""Nothing leaves the inbox unseen: overdue items stay open, marked and escalated once; robots lapse pointless ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core.api import NeedsReview, NewItem, Outcome, Robot, RunContext, WorkItemView
from core.overdue import SweepResult, SweepTimer, sweep
from core.records import ItemStatus, ReviewKind, ReviewState, ReviewView
from core.registry import Registry
from core.settings import ReviewSettings
from core.testing import FakeClock, make_settings
from core.testing.memory import MemoryStores
from core.worker import Worker
from robots.bosse.material import shift_started
from robots.lena.robot import plan_day_passed

ZONE = ZoneInfo("Europe/Stockholm")
TENANT = "0000"


class Shifty(Robot):
    """Its items lapse once the material's ``lapse`` flag is set."""

    name = "shifty"
    display_name = "Shifty"

    async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]:  # pragma: no cover - not run
        yield NewItem(reference="x")

    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:  # pragma: no cover - not run
        raise NotImplementedError

    def lapse_reason(self, review: ReviewView, now: datetime, zone: ZoneInfo) -> str | None:
        if review.material.get("broken"):
            raise RuntimeError("a robot's bug must not stop the sweep")
        return "Passet har redan börjat." if review.material.get("lapse") else None


def review(stores: MemoryStores, ref: str, material: dict[str, Any], *, due_in: float = 60) -> int:
    stores.queue.enqueue("shifty", TENANT, [NewItem(reference=ref)])
    [item] = stores.queue.claim("shifty", TENANT, "w1")
    due = stores.clock.now() + timedelta(seconds=due_in)
    outcome = NeedsReview(queue="shifty.review", title="t", summary="s", material=material, due=due)
    review_id = stores.queue.complete(item, outcome, actor="robot:shifty")
    assert review_id is not None
    return review_id


def run_sweep(stores: MemoryStores, settings: ReviewSettings | None = None) -> SweepResult:
    robot = Shifty()
    return sweep(
        stores.reviews,
        stores.alerts,
        lambda name: robot if name == "shifty" else None,
        settings or ReviewSettings(),
        stores.clock.now(),
        ZONE,
    )


class TestSweep:
    """One sweep: lapse on the robot's word, otherwise mark overdue and escalate once."""

    def test_an_overdue_item_stays_open_marked_and_escalated_once(self) -> None:
        stores = MemoryStores(FakeClock())
        kept = review(stores, "a", {})
        assert run_sweep(stores) == SweepResult()  # not yet due
        stores.clock.advance(61)
        assert run_sweep(stores) == SweepResult(marked_overdue=1, escalated=1)
        row = stores.reviews.get(kept)
        assert row.state == ReviewState.open and row.overdue_at is not None and row.escalated_at is not None
        [alert] = stores.alerts.alerts
        assert alert["key"] == f"review_overdue:{kept}" and alert["kind"] == "review_overdue"
        assert "försenat" in alert["message"] and "subject" not in alert["message"]
        stores.clock.advance(3600)
        assert run_sweep(stores) == SweepResult()  # once: nothing new
        assert len(stores.alerts.alerts) == 1
        actions = [e.action for e in stores.audit.events()]
        assert actions.count("review.overdue") == 1 and actions.count("review.escalated") == 1
        assert "review.expired" not in actions

    def test_an_item_the_robot_finds_pointless_lapses_with_its_reason(self) -> None:
        stores = MemoryStores(FakeClock())
        gone = review(stores, "a", {"lapse": True})
        broken = review(stores, "b", {"broken": True})
        stores.clock.advance(61)
        assert run_sweep(stores) == SweepResult(lapsed=1, marked_overdue=1, escalated=1)
        row = stores.reviews.get(gone)
        assert (row.state, row.decision_comment, row.decided_by) == (
            ReviewState.lapsed,
            "Passet har redan börjat.",
            "robot:shifty",
        )
        assert row.work_item_id is not None
        item = stores.queue.get(row.work_item_id)
        assert item is not None and item.status == ItemStatus.done
        assert stores.reviews.get(broken).state == ReviewState.open  # the hook's error: kept open, escalated
        [event] = [e for e in stores.audit.events() if e.action == "review.lapsed"]
        assert event.details["reason"] == "Passet har redan börjat." and event.actor == "robot:shifty"

    def test_problem_reports_never_lapse(self) -> None:
        stores = MemoryStores(FakeClock())
        review_id = stores.state.create_review(
            tenant=TENANT,
            robot="shifty",
            work_item_id=None,
            queue="shifty.exceptions",
            kind=ReviewKind.exception,
            title="Fel",
            summary="s",
            material={"lapse": True},
            subject=None,
            actor="robot:shifty",
        )
        stores.state.reviews[review_id].due_at = stores.clock.now()
        stores.clock.advance(1)
        assert run_sweep(stores) == SweepResult(marked_overdue=1, escalated=1)
        assert stores.reviews.get(review_id).state == ReviewState.open

    def test_a_queue_whose_oldest_item_is_too_old_alerts_once_per_oldest_item(self) -> None:
        stores = MemoryStores(FakeClock())
        first = review(stores, "a", {}, due_in=10 * 86400)
        review(stores, "b", {}, due_in=10 * 86400)
        settings = ReviewSettings(oldest_open_alert_hours=48, queue_oldest_open_alert_hours={"shifty.review": 2})
        stores.clock.advance(2 * 3600)
        assert run_sweep(stores, settings).queue_alerts == 0  # exactly at the limit
        stores.clock.advance(1)
        assert run_sweep(stores, settings).queue_alerts == 1
        assert run_sweep(stores, settings).queue_alerts == 0
        [alert] = stores.alerts.alerts
        assert alert["key"] == f"queue_age:{TENANT}:shifty.review:{first}" and "2 timmar" in alert["message"]
        assert run_sweep(stores, ReviewSettings(oldest_open_alert_hours=48)).queue_alerts == 0  # default limit

    def test_the_timer_lets_a_sweep_through_once_per_period(self) -> None:
        timer = SweepTimer(60)
        start = datetime(2026, 12, 1, tzinfo=UTC)
        assert timer.due(start) and not timer.due(start + timedelta(seconds=59))
        assert timer.due(start + timedelta(seconds=60))


class TestRobotHooks:
    """Bosse's shifts lapse when they start; Lena's plans when their day has passed (local time)."""

    def test_bosse_a_started_shift(self) -> None:
        material = {"shift": {"start": "2026-12-07T07:00+01:00", "label": "Solgården, mån 7/12 07:00–16:00"}}
        before = datetime(2026, 12, 7, 5, 59, tzinfo=UTC)
        assert shift_started(material, before, ZONE) is None
        reason = shift_started(material, before + timedelta(minutes=1), ZONE)
        assert reason is not None and reason.startswith(
            "Passet (Solgården, mån 7/12 07:00–16:00) började 2026-12-07 07:00"
        )
        assert (
            shift_started({}, before, ZONE) is None and shift_started({"shift": {"start": "x"}}, before, ZONE) is None
        )

    def test_lena_a_day_that_has_passed_in_stockholm(self) -> None:
        material = {"date": "2026-12-07", "group": "g1", "group_name": "Norr"}
        # 23:30 UTC on the 7th is 00:30 on the 8th in Stockholm: the day has passed there.
        assert plan_day_passed(material, datetime(2026, 12, 7, 22, 59, tzinfo=UTC), ZONE) is None
        reason = plan_day_passed(material, datetime(2026, 12, 7, 23, 30, tzinfo=UTC), ZONE)
        assert reason is not None and "Norr" in reason and "2026-12-07" in reason
        assert plan_day_passed({"date": "?"}, datetime(2027, 1, 1, tzinfo=UTC), ZONE) is None


class TestWorker:
    """Every worker sweeps, at most every ``[review] check_every_seconds``, on the engine's stores."""

    def test_the_worker_lapses_marks_and_escalates(self, tmp_path: Path) -> None:
        stores = MemoryStores(FakeClock())
        engine = stores.engine(
            make_settings(tmp_path, review={"check_every_seconds": 60}), Registry(robots={"shifty": Shifty})
        )
        worker = Worker(engine)
        kept = review(stores, "a", {})
        gone = review(stores, "b", {"lapse": True})
        stores.clock.advance(61)
        assert asyncio.run(worker.sweep_overdue_if_due()) == SweepResult(lapsed=1, marked_overdue=1, escalated=1)
        assert stores.reviews.get(gone).state == ReviewState.lapsed
        assert stores.reviews.get(kept).state == ReviewState.open
        assert stores.alerts.alert_keys() == [f"review_overdue:{kept}"]
        assert asyncio.run(worker.sweep_overdue_if_due()) is None  # not again within the minute
        stores.clock.advance(60)
        assert asyncio.run(worker.sweep_overdue_if_due()) == SweepResult()
