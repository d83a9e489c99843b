"""A real crash: a worker process is SIGKILLed mid-item, then a fresh worker runs.

The worker is ``python -m tests.helpers.engine_worker`` running Engine.run on the real
clock against a SQLite file or a PostgreSQL schema. Leases are short (2 s, item timeout
1.5 s) and each case takes 0.4 s inside process(), so the kill lands while items are
being processed. Nothing may be lost: a repeatable robot's interrupted items are retried;
an unrepeatable robot's interrupted items become ``uncertain`` and go to a person.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core import audit
from core.storage.db import Database
from core.storage.models import ItemStatus, ReviewItem, ReviewKind, ReviewState, WorkItem
from core.testing import ExampleRobot, ExampleWriterRobot
from tests.helpers.procs import finish, spawn

pytestmark = pytest.mark.slow

CASES = 10
LEASE_SECONDS = 2.0


def worker_config(tmp_path: Path) -> str:
    """Engine settings for the worker processes, as JSON."""
    return json.dumps(
        {
            "var_dir": str(tmp_path / "var"),
            "worker": {
                "concurrency": 2,
                "lease_seconds": LEASE_SECONDS,
                "item_timeout_seconds": 1.5,
                "max_attempts": 3,
                "backoff_base_seconds": 0.2,
                "backoff_cap_seconds": 1,
                "retry_wait_seconds": 30,
            },
            "robot": {"items": CASES, "delay_seconds": 0.4},
        }
    )


def statuses(db: Database, robot: str) -> dict[str, WorkItem]:
    """Stored items by reference."""
    with db.session() as s:
        return {w.reference: w for w in s.scalars(select(WorkItem).where(WorkItem.robot == robot)).all()}


def expected_status(n: int) -> ItemStatus:
    """What ExampleRobot's defaults make of case n (every 7th bad, every 3rd a decision)."""
    if n % 7 == 0:
        return ItemStatus.failed_business
    if n % 3 == 0:
        return ItemStatus.needs_review
    return ItemStatus.done


def crash_mid_item(db: Database, tmp_path: Path, robot: str) -> set[str]:
    """Start a worker, SIGKILL it while it is inside process(); the references it was processing."""
    log = tmp_path / "crashed-worker.log"
    proc = spawn("engine_worker", [db.url, robot, worker_config(tmp_path)], log)
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, f"the worker ended before it was killed:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the worker never got going"
            with db.session() as s:
                counts = dict(
                    s.execute(
                        select(WorkItem.status, func.count()).where(WorkItem.robot == robot).group_by(WorkItem.status)
                    ).all()
                )
            finished = sum(n for st, n in counts.items() if st not in (ItemStatus.pending, ItemStatus.in_progress))
            if finished >= 2 and counts.get(ItemStatus.in_progress, 0) >= 1:
                break
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    interrupted = {ref for ref, w in statuses(db, robot).items() if w.status == ItemStatus.in_progress}
    assert interrupted, "the kill must land while an item is being processed"
    assert len(interrupted) < CASES
    return interrupted


def wait_for_leases_to_expire(db: Database, robot: str) -> None:
    """Leases protect a worker that may still be alive; a take-over waits for them to run out."""
    with db.session() as s:
        until = s.scalar(
            select(func.max(WorkItem.lease_until)).where(
                WorkItem.robot == robot, WorkItem.status == ItemStatus.in_progress
            )
        )
    assert until is not None
    remaining = (until - datetime.now(UTC)).total_seconds()
    assert remaining <= LEASE_SECONDS + 0.5
    time.sleep(max(remaining, 0) + 0.2)


def run_fresh_worker(db: Database, tmp_path: Path, robot: str) -> dict[str, Any]:
    """Run a new worker to the end; its run summary."""
    log = tmp_path / "fresh-worker.log"
    proc = spawn("engine_worker", [db.url, robot, worker_config(tmp_path)], log)
    finish([proc], [log], timeout=120)
    [line] = [ln for ln in log.read_text().splitlines() if ln.startswith("SUMMARY ")]
    summary: dict[str, Any] = json.loads(line.removeprefix("SUMMARY "))
    return summary


def assert_chain_intact(db: Database) -> None:
    """A kill in the middle of a transaction must not break the audit chain."""
    with db.session() as s:
        result = audit.verify(s)
    assert result.ok, result.problem


def test_a_repeatable_robots_interrupted_items_are_retried(db: Database, tmp_path: Path) -> None:
    robot = ExampleRobot.name
    interrupted = crash_mid_item(db, tmp_path, robot)
    wait_for_leases_to_expire(db, robot)

    summary = run_fresh_worker(db, tmp_path, robot)

    stored = statuses(db, robot)
    assert {ref: w.status for ref, w in stored.items()} == {
        f"demo-{n}": expected_status(n) for n in range(1, CASES + 1)
    }, "every case must end where it belongs"
    for ref in interrupted:
        assert stored[ref].attempts >= 2, f"{ref} was interrupted and must have been tried again"
    assert summary["counts"]["uncertain"] == 0 and summary["counts"]["failed_application"] == 0
    with db.session() as s:
        kinds = s.scalars(select(ReviewItem.kind)).all()
    assert ReviewKind.uncertain not in kinds
    assert_chain_intact(db)


def test_an_unrepeatable_robots_interrupted_items_become_uncertain(db: Database, tmp_path: Path) -> None:
    robot = ExampleWriterRobot.name
    interrupted = crash_mid_item(db, tmp_path, robot)
    wait_for_leases_to_expire(db, robot)

    summary = run_fresh_worker(db, tmp_path, robot)

    stored = statuses(db, robot)
    for n in range(1, CASES + 1):
        ref, item = f"demo-{n}", stored[f"demo-{n}"]
        if ref in interrupted:
            assert (item.status, item.attempts) == (ItemStatus.uncertain, 1), f"{ref} must not be repeated blindly"
        else:
            assert item.status == expected_status(n), ref
    assert summary["counts"]["uncertain"] == len(interrupted)
    assert summary["status"] == "attention"
    with db.session() as s:
        uncertain = s.scalars(select(ReviewItem).where(ReviewItem.kind == ReviewKind.uncertain)).all()
    assert sorted(r.work_item_id for r in uncertain) == sorted(stored[ref].id for ref in interrupted)
    assert {(r.queue, r.state) for r in uncertain} == {(f"{robot}.exceptions", ReviewState.open)}
    assert_chain_intact(db)
