"""HaRry end to end when things go wrong: refusals, a worker dying mid-item, deviations for HR.

Refusals by the payroll system (employee not found, locked period, overlapping rows, unknown
activity code) become business errors in plain Swedish with a screenshot; a worker that dies
between the save and the read-back leaves an uncertain item that the next run re-checks in the
user interface by itself (a person only gets what it cannot confirm), never typing it in again; a read-back that differs goes to
HR's deviation queue with both versions and a screenshot, and HR's decisions are carried out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.artifacts import FileArtifactStore
from core.review import ReviewQueue
from core.storage.db import Database
from core.storage.models import AuditEvent, ItemStatus, ReviewItem, ReviewKind, ReviewState, RunStatus, WorkItem
from core.testing import FakeClock, run_robot, temporary_database
from robots.harry import registration
from robots.harry.robot import Harry
from sandbox.payroll import ScheduleRow
from sandbox.scheduling import CSV_COLUMNS
from tests.helpers.harry import harry_app_settings, payroll_sandbox

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LATENCY = (20.0, 60.0)
PNR = "199001012383"


def items(db: Database) -> dict[str, WorkItem]:
    """HaRry's work items by employee."""
    with db.session() as s:
        rows = s.scalars(select(WorkItem).where(WorkItem.robot == "harry").order_by(WorkItem.id)).all()
        return {r.payload["employee_id"]: r for r in rows}


def reviews(db: Database, queue: str) -> list[ReviewItem]:
    """Review items of one queue."""
    with db.session() as s:
        return list(s.scalars(select(ReviewItem).where(ReviewItem.queue == queue).order_by(ReviewItem.id)).all())


def csv_line(employee: str, day: str, start: str, end: str, pause: int, code: str, period: str = "2026-12") -> str:
    """One export line."""
    return ";".join(
        [
            employee,
            PNR,
            f"SCH-{employee}-{period}-v1",
            "1",
            period,
            day,
            start,
            end,
            str(pause),
            code,
            "2026-11-20T10:00:00+01:00",
        ]
    )


def test_refusals_become_swedish_business_errors_with_screenshots(tmp_path: Path) -> None:
    """Unknown employee, locked period, overlapping rows, an activity code refused by the server or not
    offered by the form, and a broken export line: each a business error a person can act on."""
    drop = tmp_path / "drop"
    drop.mkdir()
    lines = [
        csv_line("E99999", "2026-12-01", "07:00", "16:00", 30, "ARB"),  # not employed
        csv_line("E10001", "2027-01-04", "07:00", "16:00", 30, "ARB", period="2027-01"),  # locked below
        csv_line("E10002", "2026-12-01", "07:00", "12:00", 0, "ARB"),
        csv_line("E10002", "2026-12-01", "11:00", "16:00", 0, "ARB"),  # overlaps the row above
        csv_line("E10003", "2026-12-02", "07:00", "16:00", 30, "KOMP"),  # offered by the form, refused on save
        csv_line("E10004", "2026-12-02", "07:00", "16:00", 30, "XYZ"),  # not even offered by the form
        csv_line("E10005", "2026-12-03", "07:00", "16:00", 30, "ARB"),  # fine
        csv_line("E10006", "2026-12-03", "25:00", "16:00", 30, "ARB"),  # broken line
    ]
    (drop / "schema_export_test.csv").write_text("\n".join([";".join(CSV_COLUMNS), *lines]) + "\n", encoding="utf-8")
    with payroll_sandbox(seed=6, employees=8, payroll_latency_ms=LATENCY) as sb, temporary_database(tmp_path) as db:
        sb.lock(date(2027, 1, 1), date(2027, 1, 31))
        settings = harry_app_settings(
            tmp_path,
            sb.url,
            worker={"concurrency": 3},
            robot={"api_system": None, "drop_folder": {"folder": str(drop), "min_age_seconds": 0}},
        )

        result = run_robot(Harry, db=db, app_settings=settings)
        assert result.summary.counts == {**result.summary.counts, "collected": 7, "done": 1, "failed_business": 6}
        found = items(db)
        expected = {
            "E99999": ("employee_not_found", "Den anställda E99999 finns inte i PersonalLön"),
            "E10001": ("period_locked", "Perioden 2027-01-01–2027-01-31 är låst i PersonalLön"),
            "E10002": ("schedule_refused", "PersonalLön sparade inte schemat: Överlappande rader"),
            "E10003": ("schedule_refused", 'okänd aktivitetskod "KOMP"'),
            "E10004": ("unknown_activity_code", "PersonalLön erbjuder inte aktivitetskoden XYZ"),
            "E10006": ("export_invalid", "rad 9, kolumn start: ogiltigt eller saknat värde"),
        }
        artifacts = FileArtifactStore(db, tmp_path / "var" / "artifacts", 30, FakeClock())
        for employee, (code, text) in expected.items():
            item = found[employee]
            assert item.status == ItemStatus.failed_business, employee
            assert item.error_code == code and text in (item.error_message or ""), (employee, item.error_message)
            kinds = [a.kind for a in artifacts.for_item(item.id)]
            assert kinds == ([] if employee == "E10006" else ["screenshot", "html"]), employee
        assert found["E10005"].status == ItemStatus.done
        exceptions = reviews(db, "harry.exceptions")
        assert len(exceptions) == 6 and all(r.kind == ReviewKind.exception for r in exceptions)
        assert [s.employee_number for s in sb.payroll.saves] == ["E10005"]
        assert sb.registered("E10004") == [] and sb.registered("E10003") == []


def test_worker_dies_between_save_and_verify_then_recheck_finds_it_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled after "Spara": the next run marks the item uncertain, re-checks it in the UI by itself,
    finds the schedule registered and settles it; nothing is typed again and no person is needed."""
    clock = FakeClock()
    with payroll_sandbox(seed=7, employees=2, payroll_latency_ms=LATENCY) as sb, temporary_database(tmp_path) as db:
        settings = harry_app_settings(tmp_path, sb.url)
        original = registration.Registration.read_back

        async def die(self: Any, saved: Any) -> Any:
            raise asyncio.CancelledError  # the worker is killed right after the save

        monkeypatch.setattr(registration.Registration, "read_back", die)
        with pytest.raises(asyncio.CancelledError):
            run_robot(Harry, db=db, app_settings=settings, clock=clock, limit=1)
        monkeypatch.setattr(registration.Registration, "read_back", original)
        [victim] = [i for i in items(db).values() if i.status == ItemStatus.in_progress]
        employee = victim.payload["employee_id"]
        assert len(sb.payroll.saves) == 1 and sb.payroll.saves[0].employee_number == employee

        clock.advance(120)  # the lease (60 s) has expired
        second = run_robot(Harry, db=db, app_settings=settings, clock=clock)
        counts = second.summary.counts
        assert (counts["uncertain"], counts["rechecked"]) == (1, 1)
        assert second.summary.status == RunStatus.succeeded, "nothing is left for a person"
        item = items(db)[employee]
        assert item.status == ItemStatus.done and item.result is not None
        assert item.result["outcome"] == "already_registered" and item.result["rechecked"] is True
        assert item.result["verified"] is True and item.result["registration"] is None
        [uncertain] = [r for r in reviews(db, "harry.exceptions") if r.kind == ReviewKind.uncertain]
        assert (uncertain.state, uncertain.decided_by) == (ReviewState.resolved, "robot:harry")
        assert [s.employee_number for s in sb.payroll.saves].count(employee) == 1  # re-checked, never typed again
        assert sb.registered(employee) == next(s["rows"] for s in sb.approved() if s["employee_id"] == employee)
        with db.session() as s:
            resolved = s.scalars(select(AuditEvent).where(AuditEvent.action == "review.resolved")).all()
        assert [e.actor for e in resolved] == ["robot:harry"]

        third = run_robot(Harry, db=db, app_settings=settings, clock=clock)
        assert third.summary.counts["rechecked"] == 0 and third.summary.counts["done"] == 0
        assert [s.employee_number for s in sb.payroll.saves].count(employee) == 1


def test_worker_sigkilled_mid_night_then_restarted_leaves_no_duplicate_rows(tmp_path: Path) -> None:
    """A worker process (with its Chromium) is SIGKILLed right after a save; nothing is saved twice."""
    with payroll_sandbox(seed=9, employees=4, payroll_latency_ms=LATENCY) as sb, temporary_database(tmp_path) as db:
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.harry", db.url, sb.url, str(tmp_path)],
            cwd=Path(__file__).resolve().parents[2],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # its own process group: Chromium dies with it
        try:
            deadline = time.monotonic() + 90
            while not sb.payroll.saves and worker.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sb.payroll.saves, "the worker saved nothing before the deadline"
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            log.close()
        assert worker.returncode == -signal.SIGKILL
        # A save the worker sent just before it died may still be inside the sandbox (its page
        # latency): wait until the save log is still, then take it as what happened.
        settled_at, count = time.monotonic(), len(sb.payroll.saves)
        while time.monotonic() - settled_at < 1.0:
            time.sleep(0.05)
            if len(sb.payroll.saves) != count:
                settled_at, count = time.monotonic(), len(sb.payroll.saves)
        saved_at_kill = {s.employee_number for s in sb.payroll.saves}
        in_flight = [i for i in items(db).values() if i.status == ItemStatus.in_progress]
        between = [i for i in in_flight if i.payload["employee_id"] in saved_at_kill]
        assert between, "the kill should land between a save and its read-back"

        # Restarted after the leases ran out: interrupted items are uncertain and re-checked at once:
        # those saved are settled by HaRry; those not saved stay with a person, who sends them back.
        later = FakeClock(datetime.now(UTC) + timedelta(minutes=5))
        settings = harry_app_settings(tmp_path, sb.url)
        second = run_robot(Harry, db=db, app_settings=settings, clock=later)
        assert second.summary.counts["uncertain"] == len(in_flight)
        assert second.summary.counts["rechecked"] == len(between)
        hr = ReviewQueue(db, later)
        open_uncertain = [
            r for r in reviews(db, "harry.exceptions") if r.kind == ReviewKind.uncertain and r.state == ReviewState.open
        ]
        assert len(open_uncertain) == len(in_flight) - len(between)
        for review in open_uncertain:
            hr.decide(review.id, "return", actor="user:hr", comment="Kontrollera i PersonalLön")
        third = run_robot(Harry, db=db, app_settings=settings, clock=later)
        assert third.summary.counts["done"] == len(in_flight) - len(between)
        assert {i.status for i in items(db).values()} == {ItemStatus.done}
        for item in between:
            result = items(db)[item.payload["employee_id"]].result or {}
            assert (result["outcome"], result["rechecked"]) == ("already_registered", True)
        assert set(Counter(s.employee_number for s in sb.payroll.saves).values()) == {1}  # no duplicates
        for s in sb.approved():
            assert sb.registered(s["employee_id"]) == s["rows"]


def test_deviation_goes_to_hr_and_decisions_are_carried_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The payroll system shows something else after saving: HR sees both; "retry" and "by hand" work."""
    clock = FakeClock()
    with payroll_sandbox(seed=8, employees=3, payroll_latency_ms=LATENCY) as sb, temporary_database(tmp_path) as db:
        settings = harry_app_settings(tmp_path, sb.url)
        original = registration.Registration.read_back

        async def tamper(self: Any, saved: Any) -> Any:
            # Someone (or the system) changes the first registered row before HaRry reads it back.
            store = sb.payroll
            key = next(e.key for e in store.employees.values() if e.number == self.schedule.employee_id)
            first = store.registered[key][0]
            store.registered[key][0] = ScheduleRow(first.day, first.start, "23:00", first.break_minutes, first.activity)
            return await original(self, saved)

        monkeypatch.setattr(registration.Registration, "read_back", tamper)
        run_robot(Harry, db=db, app_settings=settings, clock=clock)
        monkeypatch.setattr(registration.Registration, "read_back", original)
        deviations = reviews(db, "harry.deviation")
        with_rows = [s for s in sb.approved() if s["rows"]]
        assert len(deviations) == len(with_rows) >= 2
        material = deviations[0].material
        diff = material["differences"]
        assert len(diff) == 1 and diff[0]["field"] == "end" and diff[0]["shown"] == "23:00"
        assert len(material["expected"]) == len(material["shown"]) and material["screenshot_artifact_id"]
        assert "sluttid" in deviations[0].summary and material["registration"].startswith("R-")

        hr = ReviewQueue(db, clock)
        hr.decide(deviations[0].id, "approve", actor="user:hr")  # registered by hand
        hr.decide(deviations[1].id, "return", actor="user:hr", comment="Försök igen")  # retry
        saves_before = len(sb.payroll.saves)
        run_robot(Harry, db=db, app_settings=settings, clock=clock)
        by_hand = items(db)[deviations[0].material["employee_id"]]
        retried = items(db)[deviations[1].material["employee_id"]]
        assert by_hand.status == ItemStatus.done and by_hand.result is not None
        assert by_hand.result["decision"] == "approved"
        assert retried.status == ItemStatus.done and retried.result is not None
        assert retried.result["outcome"] == "registered"
        assert len(sb.payroll.saves) == saves_before + 1  # only the retried one was typed in again
        assert sb.registered(retried.payload["employee_id"]) == next(
            s["rows"] for s in with_rows if s["employee_id"] == retried.payload["employee_id"]
        )
        with db.session() as s:
            actions = set(s.scalars(select(AuditEvent.action).where(AuditEvent.action.like("harry.%"))).all())
        assert actions == {"harry.registered_by_hand", "harry.retry_requested"}
