"""Schedules change without a restart: the running scheduler follows schedules/ (real APScheduler, FakeClock)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from core.errors import ConfigError
from core.registry import Registry
from core.schedule_files import scan, write_schedule
from core.scheduler import Scheduler, ScheduleTrigger
from core.settings import SchedulerSettings, Settings
from core.storage.db import Database
from core.testing import ExampleRobot, FakeClock, make_settings

NIGHTLY = """# Ronneby's night run: keep this comment
robot = "example"
tenants = ["*"]
cron = "30 1 * * *"   # half past one
window_end = "06:00"
"""
EVENING = NIGHTLY.replace('cron = "30 1 * * *"   # half past one', 'cron = "0 22 * * *"')


def folder_with(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "schedules"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.toml").write_text(text, encoding="utf-8")
    return folder


def settings_for(tmp_path: Path, folder: Path, reload_seconds: float = 10) -> Settings:
    return make_settings(tmp_path, scheduler=SchedulerSettings(schedules_dir=folder, reload_seconds=reload_seconds))


REGISTRY = Registry(robots={"example": ExampleRobot})


class TestReload:
    """Each file on its own: edits, additions and removals apply; a broken file keeps its last good version."""

    def test_edit_add_remove_and_a_broken_file(self, db: Database, clock: FakeClock, tmp_path: Path) -> None:
        folder = folder_with(tmp_path, nightly=NIGHTLY, evening=EVENING)
        scheduler = Scheduler.from_folder(db, settings_for(tmp_path, folder), REGISTRY, clock, "a")
        assert set(scheduler.schedules) == {"nightly", "evening"}
        assert scheduler.reload() is None  # nothing changed: nothing re-read

        (folder / "nightly.toml").write_text(NIGHTLY.replace("30 1", "45 2"), encoding="utf-8")
        (folder / "morning.toml").write_text(NIGHTLY.replace("30 1", "0 7"), encoding="utf-8")
        (folder / "evening.toml").unlink()
        assert scheduler.reload() == {"added": ["morning"], "removed": ["evening"], "changed": ["nightly"]}
        assert scheduler.schedules["nightly"].cron == "45 2 * * *"

        with capture_logs() as logs:
            (folder / "nightly.toml").write_text(NIGHTLY.replace("30 1", "99 1"), encoding="utf-8")
            (folder / "typo.toml").write_text(NIGHTLY + "windw_end = 1\n", encoding="utf-8")
            assert scheduler.reload() == {"added": [], "removed": [], "changed": []}
        # The broken edit keeps the last good version in force; the new broken file schedules nothing.
        assert scheduler.schedules["nightly"].cron == "45 2 * * *" and "morning" in scheduler.schedules
        errors = {e["file"]: e for e in logs if e["event"] == "scheduler.schedule_file_invalid"}
        assert set(errors) == {"nightly.toml", "typo.toml"}
        assert "cron" in errors["nightly.toml"]["problem"] and errors["nightly.toml"]["kept"] == "nightly"
        assert "windw_end" in errors["typo.toml"]["problem"] and errors["typo.toml"]["kept"] is None
        assert scheduler.folder is not None and len(scheduler.folder.problems) == 2

        with capture_logs() as logs:
            (folder / "typo.toml").unlink()
            (folder / "nightly.toml").write_text(NIGHTLY, encoding="utf-8")
            assert scheduler.reload() == {"added": [], "removed": [], "changed": ["nightly"]}
        assert {e["file"] for e in logs if e["event"] == "scheduler.schedule_file_fixed"} == {
            "nightly.toml",
            "typo.toml",
        }
        assert not any(e["event"] == "scheduler.schedule_file_invalid" for e in logs)  # each problem once

    def test_a_name_taken_twice_is_a_problem_of_the_second_file(self, tmp_path: Path) -> None:
        folder = folder_with(tmp_path, a=NIGHTLY + 'name = "shared"\n', b=EVENING + 'name = "shared"\n')
        found = scan(folder, robots={"example"}, tenants={"0000"})
        assert list(found.schedules) == ["shared"] and found.files == {"shared": "a.toml"}
        [problem] = found.problems
        assert problem.file == "b.toml" and "already used" in problem.message


class TestServeFollowsTheFolder:
    """The running APScheduler gets new jobs, loses removed ones and re-times changed ones."""

    async def test_jobs_follow_the_files(self, db: Database, clock: FakeClock, tmp_path: Path) -> None:
        folder = folder_with(tmp_path, nightly=NIGHTLY, evening=EVENING)
        scheduler = Scheduler.from_folder(db, settings_for(tmp_path, folder, 0.05), REGISTRY, clock, "a")
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.serve(stop))

        async def jobs_become(expected: dict[str, str]) -> None:
            for _ in range(400):
                aps = scheduler.aps
                if aps is not None and aps.running:
                    found = {j.id: j.trigger.schedule.cron for j in aps.get_jobs()}
                    if found == expected:
                        return
                await asyncio.sleep(0.01)
            raise AssertionError(f"jobs never became {expected}")

        try:
            await jobs_become({"nightly": "30 1 * * *", "evening": "0 22 * * *"})
            (folder / "nightly.toml").write_text(NIGHTLY.replace("30 1", "15 3"), encoding="utf-8")
            (folder / "evening.toml").write_text(EVENING + "enabled = false\n", encoding="utf-8")
            (folder / "broken.toml").write_text("robot = [", encoding="utf-8")
            (folder / "added.toml").write_text(NIGHTLY.replace("30 1", "0 12"), encoding="utf-8")
            await jobs_become({"nightly": "15 3 * * *", "added": "0 12 * * *"})
            assert scheduler.aps is not None
            job = scheduler.aps.get_job("nightly")
            assert isinstance(job.trigger, ScheduleTrigger)
            # Re-timed from now to the next 03:15 local time (the FakeClock does not drive APScheduler).
            assert job.next_run_time.astimezone(scheduler.schedules["nightly"].zone).strftime("%H:%M") == "03:15"
            (folder / "added.toml").unlink()
            await jobs_become({"nightly": "15 3 * * *"})
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)


class TestWriteBack:
    """A dashboard change is validated and written back as TOML, comments kept, atomically."""

    def test_changes_keep_comments_and_are_checked(self, tmp_path: Path) -> None:
        folder = folder_with(tmp_path, nightly=NIGHTLY)
        before, after = write_schedule(
            folder, "nightly.toml", {"cron": "0 2 * * 1-5", "enabled": False}, robots={"example"}, tenants={"0000"}
        )
        assert (before.cron, after.cron, after.enabled, after.name) == ("30 1 * * *", "0 2 * * 1-5", False, "nightly")
        text = (folder / "nightly.toml").read_text(encoding="utf-8")
        assert "# Ronneby's night run: keep this comment" in text and 'cron = "0 2 * * 1-5"' in text
        assert scan(folder, robots={"example"}, tenants={"0000"}).schedules["nightly"] == after

    @pytest.mark.parametrize(
        ("changes", "named"),
        [({"cron": "61 1 * * *"}, "cron"), ({"window_end": "25:00"}, "window_end"), ({"robot": "other"}, "robot")],
    )
    def test_a_bad_change_leaves_the_file_as_it_was(self, tmp_path: Path, changes: dict[str, str], named: str) -> None:
        folder = folder_with(tmp_path, nightly=NIGHTLY)
        with pytest.raises(ConfigError, match=named):
            write_schedule(folder, "nightly.toml", changes, robots={"example"}, tenants={"0000"})
        assert (folder / "nightly.toml").read_text(encoding="utf-8") == NIGHTLY
        assert sorted(p.name for p in folder.iterdir()) == ["nightly.toml"]  # no temporary file left

    def test_only_files_of_the_folder(self, tmp_path: Path) -> None:
        folder = folder_with(tmp_path, nightly=NIGHTLY)
        with pytest.raises(ConfigError, match="no such schedule file"):
            write_schedule(folder, "../kollega.toml", {"enabled": False}, robots=None, tenants={"0000"})
