"""The public test kit (core.testing): run_robot from sync code, run_robot_async from async code.

Robot authors test a night of their robot with these; the example robot with its defaults
finds 24 cases (see tests/integration/test_engine.py for what each one does).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.records import RunStatus
from core.testing import ExampleRobot, FakeClock, RobotResult, run_robot, run_robot_async, temporary_database

NIGHT = {
    "collected": 24,
    "done": 14,
    "needs_review": 7,
    "failed_business": 3,
    "failed_application": 0,
    "uncertain": 0,
    "retried": 4,
    "rechecked": 0,
}


def _assert_one_night(result: RobotResult) -> None:
    assert result.summary.status == RunStatus.succeeded
    assert {key: result.summary.counts.get(key) for key in NIGHT} == NIGHT
    actions = [event.action for event in result.audit_events]
    assert (actions[0], actions[-1]) == ("run.queued", "run.succeeded")
    assert actions.count("review.created") == 7 + 3  # the decisions and the business errors


class TestRunRobot:
    """run_robot runs one night synchronously; run_robot_async does the same on the test's own loop."""

    def test_sync_runs_one_night(self, tmp_path: Path) -> None:
        with temporary_database(tmp_path) as db:
            _assert_one_night(run_robot(ExampleRobot, db=db, clock=FakeClock()))

    async def test_async_runs_one_night_on_the_running_loop(self, tmp_path: Path) -> None:
        with temporary_database(tmp_path) as db:
            _assert_one_night(await run_robot_async(ExampleRobot, db=db, clock=FakeClock()))

    async def test_async_rerun_finds_nothing_new(self, tmp_path: Path) -> None:
        with temporary_database(tmp_path) as db:
            await run_robot_async(ExampleRobot, db=db, clock=FakeClock())
            again = await run_robot_async(ExampleRobot, db=db, clock=FakeClock())
        assert again.summary.counts.get("collected", 0) == 0

    async def test_sync_inside_a_running_loop_points_to_the_async_one(self, tmp_path: Path) -> None:
        with temporary_database(tmp_path) as db, pytest.raises(RuntimeError, match="run_robot_async"):
            run_robot(ExampleRobot, db=db)


def test_kit_loads_no_connector_browser_or_sandbox() -> None:
    # Core imports no connector or sandbox when loaded; the browser helper imports the
    # browser connector only when it launches Chromium.
    code = (
        "import sys, core.testing, core.testing.browser, core.testing.server, core.testing.context;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('connectors', 'playwright', 'sandbox', 'robots')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
