"""HaRry end to end: a night of schedules registered through real Chromium in the sandbox payroll system.

Every approved schedule is registered exactly once and verified (the sandbox's own save log
counts), a rerun writes nothing, a changed schedule is registered again as a new version,
and faults (session expiry, changed layout, server errors, maintenance) lose nothing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.storage.db import Database
from core.storage.models import AuditEvent, ItemStatus, WorkItem
from core.testing import FakeClock, run_robot, temporary_database
from robots.harry.robot import Harry
from sandbox.scheduling import write_csv_export
from sandbox.state import FaultSettings
from tests.helpers.harry import PayrollSandbox, harry_app_settings, payroll_sandbox

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LATENCY = (20.0, 60.0)  # payroll page times in ms (the default 100–300 ms is for the bench)


def items(db: Database) -> list[WorkItem]:
    """HaRry's work items."""
    with db.session() as s:
        return list(s.scalars(select(WorkItem).where(WorkItem.robot == "harry").order_by(WorkItem.id)).all())


def writes(db: Database) -> list[AuditEvent]:
    """The external writes HaRry audited."""
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "external.write")).all())


def period_key(schedule: dict[str, Any]) -> str:
    """The payroll save log's key of a schedule's period."""
    return f"{schedule['employee_id']}:{schedule['period_from']}:{schedule['period_to']}"


def assert_all_registered(sb: PayrollSandbox) -> None:
    """The payroll system shows exactly the approved rows of every approved schedule."""
    for s in sb.approved():
        assert sb.registered(s["employee_id"]) == s["rows"], s["schedule_id"]


def test_night_registers_each_schedule_once_verified_and_rerun_writes_nothing(tmp_path: Path) -> None:
    """API and CSV export of the same night: one item per schedule, one save per period, all verified."""
    drop = tmp_path / "drop"
    with payroll_sandbox(seed=3, employees=20, payroll_latency_ms=LATENCY) as sb, temporary_database(tmp_path) as db:
        write_csv_export(sb.state, drop)  # the same schedules again, as the CSV export
        settings = harry_app_settings(
            tmp_path,
            sb.url,
            worker={"concurrency": 3},
            robot={"drop_folder": {"folder": str(drop), "min_age_seconds": 0}},
        )
        approved = sb.approved()
        with_rows = [s for s in approved if s["rows"]]

        first = run_robot(Harry, db=db, app_settings=settings)
        assert first.summary.counts["collected"] == len(approved)
        assert first.summary.counts["done"] == len(approved), first.summary.counts
        assert sb.saves_per_period() == Counter({period_key(s): 1 for s in with_rows})
        assert_all_registered(sb)
        results = [i.result or {} for i in items(db)]
        assert all(r["verified"] for r in results)
        assert Counter(r["outcome"] for r in results) == Counter(
            {
                "registered": len(with_rows),
                **({"already_registered": len(approved) - len(with_rows)} if len(approved) > len(with_rows) else {}),
            }
        )
        assert len(writes(db)) == len(with_rows)
        assert list((drop / "processed").iterdir())  # the export was taken, and its schedules were no new items
        personnummer = {i.subject for i in items(db)} - {None}
        assert personnummer and not any(p in str(e.details) for e in writes(db) for p in personnummer)

        second = run_robot(Harry, db=db, app_settings=settings)
        assert second.summary.counts["collected"] == 0 and second.summary.counts["done"] == 0
        assert sum(sb.saves_per_period().values()) == len(with_rows)

        changed = sb.approve_new_version(with_rows[0]["employee_id"], {"end": "17:45"})
        third = run_robot(Harry, db=db, app_settings=settings)
        assert third.summary.counts["collected"] == 1 and third.summary.counts["done"] == 1
        assert sb.saves_per_period()[period_key(changed)] == 2
        assert sum(sb.saves_per_period().values()) == len(with_rows) + 1
        assert sb.registered(changed["employee_id"]) == changed["rows"]
        newest = items(db)[-1]
        assert newest.reference.startswith(f"{changed['employee_id']}/{changed['period']}/v{changed['version']}/")
        assert newest.result is not None and newest.result["outcome"] == "registered"


def test_session_expiry_changed_layout_and_server_errors_lose_nothing(tmp_path: Path) -> None:
    """Session expiry every 14 pages, the alternative layout and 10 % server errors at once."""
    with payroll_sandbox(seed=4, employees=6, payroll_latency_ms=LATENCY) as sb, temporary_database(tmp_path) as db:
        sb.state.set_faults("payroll", FaultSettings(session_expiry_after=14, alt_layout=True, error_rate=0.1))
        settings = harry_app_settings(tmp_path, sb.url, worker={"concurrency": 3, "max_attempts": 5})
        with_rows = [s for s in sb.approved() if s["rows"]]

        result = run_robot(Harry, db=db, app_settings=settings)
        assert result.summary.counts["done"] == len(sb.approved()), result.summary.counts
        assert sb.saves_per_period() == Counter({period_key(s): 1 for s in with_rows})
        assert_all_registered(sb)
        relogins = [(i.result or {}).get("relogins", 0) for i in items(db)]
        assert sum(relogins) >= 1 and max(relogins) <= 1  # logged in again, once per item at most
        stats = sb.state.faults["payroll"].stats
        assert stats["error"] > 0  # the server errors did happen


def test_maintenance_page_is_retried_later_and_nothing_is_lost(tmp_path: Path) -> None:
    """During maintenance every item is put back with the server's Retry-After; afterwards all register."""
    clock = FakeClock()
    with payroll_sandbox(seed=5, employees=3, payroll_latency_ms=LATENCY) as sb, temporary_database(tmp_path) as db:
        sb.state.set_faults("payroll", FaultSettings(maintenance=True, retry_after_seconds=300))
        settings = harry_app_settings(tmp_path, sb.url, worker={"retry_wait_seconds": 0})
        count = len(sb.approved())

        during = run_robot(Harry, db=db, app_settings=settings, clock=clock)
        assert during.summary.counts["retried"] == count and during.summary.counts["done"] == 0
        assert {i.status for i in items(db)} == {ItemStatus.pending}
        assert all(i.error_code == "payroll_unavailable" for i in items(db))
        assert sb.payroll.saves == []

        sb.state.set_faults("payroll", FaultSettings())
        clock.advance(400)
        after = run_robot(Harry, db=db, app_settings=settings, clock=clock)
        assert after.summary.counts["done"] == count, after.summary.counts
        assert_all_registered(sb)
