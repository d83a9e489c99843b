"""HaRry's shipped configuration: the schedule file and the documentation of every setting."""

from __future__ import annotations

import shutil
from pathlib import Path

from apscheduler.triggers.cron import CronTrigger

from core.scheduler import load_schedules
from robots.harry.robot import HarrySettings

ROOT = Path(__file__).resolve().parents[2]


def test_schedule_file_loads_and_runs_after_midnight_outside_the_dst_hour(tmp_path: Path) -> None:
    shutil.copy(ROOT / "schedules" / "harry.toml", tmp_path)
    [schedule] = load_schedules(tmp_path, robots={"harry"}, tenants={"1081"})
    assert schedule.robot == "harry" and schedule.enabled and schedule.catch_up
    trigger = CronTrigger.from_crontab(schedule.cron, timezone=schedule.timezone)
    hours = {int(h) for h in str(trigger.fields[5]).split(",")}
    assert hours and all(0 <= h < 6 and h != 2 for h in hours)


def test_every_setting_is_documented() -> None:
    """docs/robots/harry.md names every field of [robots.harry]."""
    text = (ROOT / "docs" / "robots" / "harry.md").read_text(encoding="utf-8")
    missing = [name for name in HarrySettings.model_fields if f"`{name}`" not in text]
    assert missing == []
