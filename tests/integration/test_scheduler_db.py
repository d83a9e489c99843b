"""The scheduler against a real database (SQLite and PostgreSQL): runs, catch-up, leader lock, serve()."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.scheduler import Schedule, Scheduler, ScheduleTrigger, window_end_at
from core.settings import SchedulerSettings, Settings, TenantSettings
from core.storage.db import Database
from core.storage.models import Lock, Run, RunStatus
from core.testing import TEST_TENANT, FakeClock, make_settings


def nightly(**fields: Any) -> Schedule:
    """01:30 every night (calendar all unless asked), window until 06:00."""
    base: dict[str, Any] = {
        "name": "nightly",
        "robot": "example",
        "tenants": ["*"],
        "cron": "30 1 * * *",
        "window_end": "06:00",
        "calendar": "all",
    }
    return Schedule(**{**base, **fields})


def local(*args: int) -> datetime:
    """A Stockholm wall-clock time as an aware UTC instant."""
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("Europe/Stockholm")).astimezone(UTC)  # type: ignore[misc]


def runs(db: Database) -> list[Run]:
    with db.session() as s:
        return list(s.scalars(select(Run).order_by(Run.slot, Run.tenant)).all())


def make(db: Database, settings: Settings, clock: FakeClock, *schedules: Schedule, owner: str = "a") -> Scheduler:
    return Scheduler(db, settings, list(schedules) or [nightly()], clock, owner=owner)


class TestFire:
    """A slot becomes one run per tenant, however many schedulers fire it."""

    def test_two_schedulers_one_run_per_tenant(self, db: Database, clock: FakeClock, tmp_path: Path) -> None:
        settings = make_settings(tmp_path, tenants=[TEST_TENANT, TenantSettings(code="1081", name="Ronneby kommun")])
        clock.set(local(2026, 11, 23, 1, 30))
        first, second = make(db, settings, clock, owner="a"), make(db, settings, clock, owner="b")
        created = first.fire(nightly(), "2026-11-23T01:30")
        assert len(created) == 2
        assert second.fire(nightly(), "2026-11-23T01:30") == []
        assert first.fire(nightly(), "2026-11-23T01:30") == []
        rows = runs(db)
        assert [(r.tenant, r.status, r.trigger, r.schedule, r.slot) for r in rows] == [
            ("0000", RunStatus.queued, "schedule", "nightly", "2026-11-23T01:30"),
            ("1081", RunStatus.queued, "schedule", "nightly", "2026-11-23T01:30"),
        ]
        assert all(r.robot == "example" and r.deadline_at == local(2026, 11, 23, 6) for r in rows)

    def test_concurrent_schedulers_race_for_the_same_slots(
        self, db: Database, clock: FakeClock, settings: Settings
    ) -> None:
        clock.set(local(2026, 11, 30, 12, 0))
        schedulers = [make(db, settings, clock, owner=name) for name in ("a", "b", "c")]
        slots = [f"2026-11-{day:02d}T01:30" for day in range(1, 21)]

        def fire_all(scheduler: Scheduler) -> list[int]:
            return [run_id for slot in slots for run_id in scheduler.fire(nightly(), slot)]

        with ThreadPoolExecutor(max_workers=3) as pool:
            created = [run_id for ids in pool.map(fire_all, schedulers) for run_id in ids]
        assert len(created) == len(set(created)) == len(slots)
        assert sorted(r.slot for r in runs(db) if r.slot) == slots

    def test_explicit_tenants(self, db: Database, clock: FakeClock, tmp_path: Path) -> None:
        settings = make_settings(tmp_path, tenants=[TEST_TENANT, TenantSettings(code="1081", name="Ronneby kommun")])
        s = nightly(tenants=["1081"])
        make(db, settings, clock, s).fire(s, "2026-11-23T01:30")
        assert [r.tenant for r in runs(db)] == ["1081"]

    def test_skipped_day_recorded_with_reason(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        s = nightly(calendar="workdays")
        scheduler = make(db, settings, clock, s)
        clock.set(local(2026, 12, 25, 1, 30))
        assert len(scheduler.fire(s, "2026-12-25T01:30")) == 1
        clock.set(local(2026, 11, 28, 1, 30))
        scheduler.fire(s, "2026-11-28T01:30")
        rows = {r.slot: r for r in runs(db)}
        assert (rows["2026-12-25T01:30"].status, rows["2026-12-25T01:30"].error) == (RunStatus.skipped, "Juldagen")
        assert (rows["2026-11-28T01:30"].status, rows["2026-11-28T01:30"].error) == (RunStatus.skipped, "Lördag")
        assert rows["2026-12-25T01:30"].finished_at is not None

    def test_julafton_follows_settings(self, db: Database, clock: FakeClock, tmp_path: Path) -> None:
        settings = make_settings(tmp_path, scheduler=SchedulerSettings(julafton_is_holiday=False))
        s = nightly(calendar="workdays")
        make(db, settings, clock, s).fire(s, "2026-12-24T01:30")
        [row] = runs(db)
        assert (row.status, row.error) == (RunStatus.queued, None)

    def test_a_municipalitys_own_day_off_skips_its_share_only(
        self, db: Database, clock: FakeClock, tmp_path: Path
    ) -> None:
        """Ronneby's klämdag after Kristi himmelsfärd skips Ronneby's run; Karlshamn's runs."""
        ronneby = TenantSettings(code="1081", name="Ronneby kommun", days_off={"2026-05-15": "Klämdag"})
        karlshamn = TenantSettings(code="1082", name="Karlshamns kommun")
        settings = make_settings(tmp_path, tenants=[ronneby, karlshamn])
        s = nightly(calendar="workdays")
        make(db, settings, clock, s).fire(s, "2026-05-15T01:30")
        make(db, settings, clock, nightly(name="every-day")).fire(nightly(name="every-day"), "2026-05-15T01:30")
        found = {(r.schedule, r.tenant): (r.status, r.error) for r in runs(db)}
        assert found == {
            ("nightly", "1081"): (RunStatus.skipped, "Klämdag"),
            ("nightly", "1082"): (RunStatus.queued, None),
            ("every-day", "1081"): (RunStatus.queued, None),  # calendar "all" runs every day
            ("every-day", "1082"): (RunStatus.queued, None),
        }


class TestCatchUp:
    """Slots that passed while no scheduler ran: one catch-up inside the window, the rest recorded missed."""

    def test_inside_window_runs_once(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        scheduler = make(db, settings, clock)
        clock.set(local(2026, 11, 23, 1, 30))
        scheduler.fire(nightly(), "2026-11-23T01:30")
        # Down from before 01:30 the next night until 03:00: still inside the 06:00 window.
        clock.set(local(2026, 11, 24, 3, 0))
        created = scheduler.catch_up()
        assert len(created) == 1
        row = runs(db)[-1]
        assert (row.slot, row.status, row.trigger) == ("2026-11-24T01:30", RunStatus.queued, "catch_up")
        assert row.deadline_at == local(2026, 11, 24, 6)
        # Restarting again (or a second scheduler catching up) adds nothing.
        assert scheduler.catch_up() == []
        assert make(db, settings, clock, owner="b").catch_up() == []
        assert len(runs(db)) == 2

    def test_outside_window_recorded_missed(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        scheduler = make(db, settings, clock)
        clock.set(local(2026, 11, 23, 1, 30))
        scheduler.fire(nightly(), "2026-11-23T01:30")
        clock.set(local(2026, 11, 24, 6, 0))  # the window has just closed
        assert len(scheduler.catch_up()) == 1
        row = runs(db)[-1]
        assert (row.slot, row.status) == ("2026-11-24T01:30", RunStatus.missed)
        assert row.error and "06:00" in row.error and row.finished_at is not None

    def test_long_downtime(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        s = nightly(calendar="workdays")
        scheduler = make(db, settings, clock, s)
        clock.set(local(2026, 11, 20, 1, 30))  # a Friday
        scheduler.fire(s, "2026-11-20T01:30")
        clock.set(local(2026, 11, 25, 2, 0))  # back on Wednesday night, inside the window
        scheduler.catch_up()
        assert [(r.slot, r.status, r.trigger, r.error) for r in runs(db)][1:] == [
            ("2026-11-21T01:30", RunStatus.skipped, "schedule", "Lördag"),
            ("2026-11-22T01:30", RunStatus.skipped, "schedule", "Söndag"),
            (
                "2026-11-23T01:30",
                RunStatus.missed,
                "schedule",
                "the scheduler was not running; the window ended at 06:00",
            ),
            (
                "2026-11-24T01:30",
                RunStatus.missed,
                "schedule",
                "the scheduler was not running; the window ended at 06:00",
            ),
            ("2026-11-25T01:30", RunStatus.queued, "catch_up", None),
        ]

    def test_first_start_considers_only_the_latest_slot(
        self, db: Database, clock: FakeClock, settings: Settings
    ) -> None:
        clock.set(local(2026, 11, 24, 2, 0))
        assert len(make(db, settings, clock).catch_up()) == 1
        assert [(r.slot, r.status, r.trigger) for r in runs(db)] == [("2026-11-24T01:30", RunStatus.queued, "catch_up")]

    def test_catch_up_off_records_missed(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        s = nightly(catch_up=False)
        clock.set(local(2026, 11, 24, 2, 0))
        make(db, settings, clock, s).catch_up()
        [row] = runs(db)
        assert (row.status, row.error) == (RunStatus.missed, "catch-up is off for this schedule")

    def test_disabled_schedule_is_left_alone(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        clock.set(local(2026, 11, 24, 2, 0))
        assert make(db, settings, clock, nightly(enabled=False)).catch_up() == []
        assert runs(db) == []

    def test_nothing_missed(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        scheduler = make(db, settings, clock)
        clock.set(local(2026, 11, 24, 1, 30))
        scheduler.fire(nightly(), "2026-11-24T01:30")
        clock.set(local(2026, 11, 25, 1, 29))
        assert scheduler.catch_up() == []

    def test_dst_night_catch_up(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        s = nightly(name="dst", cron="30 2 * * *")
        scheduler = make(db, settings, clock, s)
        clock.set(local(2026, 3, 28, 2, 30))
        scheduler.fire(s, "2026-03-28T02:30")
        clock.set(datetime(2026, 3, 29, 1, 45, tzinfo=UTC))  # 03:45 CEST, after the 02:30 slot (01:30 UTC)
        scheduler.catch_up()
        assert [(r.slot, r.trigger) for r in runs(db)] == [
            ("2026-03-28T02:30", "schedule"),
            ("2026-03-29T02:30", "catch_up"),
        ]
        assert runs(db)[-1].deadline_at == window_end_at(s, "2026-03-29T02:30") == local(2026, 3, 29, 6)


class TestLeaderLock:
    """One leader at a time; a standby takes over only when the leader's lease has expired."""

    def test_second_instance_waits_for_the_lease(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        lease = settings.scheduler.leader_lease_seconds
        a, b = make(db, settings, clock, owner="a"), make(db, settings, clock, owner="b")
        assert a.try_lead() and a.is_leader
        assert not b.try_lead() and not b.is_leader
        clock.advance(lease - 1)
        assert a.try_lead()  # renewed
        clock.advance(lease - 1)
        assert not b.try_lead()  # still inside the renewed lease
        clock.advance(2)  # a stopped renewing: its lease has run out
        assert not a.is_leader
        assert b.try_lead() and b.is_leader
        assert not a.try_lead()
        with db.session() as s:
            lock = s.get(Lock, "scheduler")
            assert lock is not None and lock.owner == "b"

    def test_release_hands_over_at_once(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        a, b = make(db, settings, clock, owner="a"), make(db, settings, clock, owner="b")
        assert a.try_lead()
        b.release()  # releasing a lock one does not hold changes nothing
        assert not b.try_lead()
        a.release()
        assert not a.is_leader
        assert b.try_lead()


class TestServe:
    """serve() catches up, registers one in-memory job per schedule with explicit settings, and stops cleanly."""

    async def test_jobs_and_clean_stop(self, db: Database, clock: FakeClock, tmp_path: Path) -> None:
        settings = make_settings(tmp_path, scheduler=SchedulerSettings(misfire_grace_seconds=1800))
        clock.set(local(2026, 11, 24, 2, 0))
        schedules = [nightly(), nightly(name="evening", cron="0 22 * * *"), nightly(name="off", enabled=False)]
        scheduler = Scheduler(db, settings, schedules, clock, owner="a")
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.serve(stop))
        for _ in range(500):
            if scheduler.aps is not None and scheduler.aps.running:
                break
            await asyncio.sleep(0.01)
        aps = scheduler.aps
        assert aps is not None and aps.running
        assert scheduler.is_leader
        jobs = {job.id: job for job in aps.get_jobs()}
        assert set(jobs) == {"nightly", "evening"}
        for job in jobs.values():
            assert (job.misfire_grace_time, job.coalesce, job.max_instances) == (1800, True, 1)
            assert isinstance(job.trigger, ScheduleTrigger)
            assert job.next_run_time is not None and job.next_run_time.tzinfo is not None
        assert type(aps._jobstores["default"]).__name__ == "MemoryJobStore"
        # Catch-up ran before the jobs started: both slots are still inside their 06:00 windows.
        assert [(r.schedule, r.slot, r.trigger) for r in runs(db)] == [
            ("evening", "2026-11-23T22:00", "catch_up"),
            ("nightly", "2026-11-24T01:30", "catch_up"),
        ]
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        assert not aps.running
        with db.session() as s:
            assert s.get(Lock, "scheduler") is None  # released for a standby

    async def test_standby_does_not_fire(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        leader, standby = make(db, settings, clock, owner="a"), make(db, settings, clock, owner="b")
        clock.set(local(2026, 11, 24, 1, 30))
        assert leader.try_lead()
        stop = asyncio.Event()
        task = asyncio.create_task(standby.serve(stop))
        for _ in range(500):
            if standby.aps is not None and standby.aps.running:
                break
            await asyncio.sleep(0.01)
        assert not standby.is_leader
        await standby._fire_due("nightly")  # what APScheduler would call at 01:30
        assert runs(db) == []
        await leader._fire_due("nightly")
        assert [(r.slot, r.trigger) for r in runs(db)] == [("2026-11-24T01:30", "schedule")]
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        with db.session() as s:
            lock = s.get(Lock, "scheduler")
            assert lock is not None and lock.owner == "a"  # the standby did not release the leader's lock

    async def test_late_job_records_the_newest_due_slot(
        self, db: Database, clock: FakeClock, settings: Settings
    ) -> None:
        scheduler = make(db, settings, clock)
        clock.set(local(2026, 11, 24, 1, 30) + timedelta(minutes=20))  # within the misfire grace
        assert scheduler.try_lead()
        await scheduler._fire_due("nightly")
        [row] = runs(db)
        assert (row.slot, row.status) == ("2026-11-24T01:30", RunStatus.queued)
