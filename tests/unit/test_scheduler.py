"""Schedules without a database: slots across the DST nights, calendars, schedule files."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.scheduler import (
    Schedule,
    ScheduleTrigger,
    load_schedules,
    next_slots,
    previous_slot,
    skip_reason,
    slot_instant,
    window_end_at,
)
from core.settings import PROJECT_ROOT, SchedulerSettings


def schedule(**fields: Any) -> Schedule:
    """A schedule with sensible defaults for the fields a test does not care about."""
    base: dict[str, Any] = {
        "name": "night",
        "robot": "example",
        "tenants": ["*"],
        "cron": "30 2 * * *",
        "window_end": "06:00",
    }
    return Schedule(**{**base, **fields})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def slots_on(s: Schedule, day: str, after: datetime, count: int = 60) -> list[tuple[str, datetime]]:
    return [item for item in next_slots(s, after, count) if item[0].startswith(day)]


class TestDaylightSavingNights:
    """A 02:30 schedule fires exactly once on both DST nights, at the instants we define."""

    def test_spring_forward_fires_once_after_the_gap(self) -> None:
        s = schedule()
        found = slots_on(s, "2026-03-29", utc(2026, 3, 27), count=5)
        assert found == [("2026-03-29T02:30", utc(2026, 3, 29, 1, 30))]
        # 01:30 UTC is 03:30 summer time: the first real instant the 02:30 slot can have.
        assert found[0][1].astimezone(s.zone).strftime("%H:%M %Z") == "03:30 CEST"

    def test_fall_back_fires_once_at_the_first_occurrence(self) -> None:
        s = schedule()
        found = slots_on(s, "2026-10-25", utc(2026, 10, 23), count=5)
        assert found == [("2026-10-25T02:30", utc(2026, 10, 25, 0, 30))]
        assert found[0][1].astimezone(s.zone).strftime("%H:%M %Z") == "02:30 CEST"

    def test_the_nights_around_the_changes(self) -> None:
        s = schedule()
        assert next_slots(s, utc(2026, 3, 27, 12), 3) == [
            ("2026-03-28T02:30", utc(2026, 3, 28, 1, 30)),  # winter time, UTC+1
            ("2026-03-29T02:30", utc(2026, 3, 29, 1, 30)),
            ("2026-03-30T02:30", utc(2026, 3, 30, 0, 30)),  # summer time, UTC+2
        ]
        assert next_slots(s, utc(2026, 10, 24, 12), 2) == [
            ("2026-10-25T02:30", utc(2026, 10, 25, 0, 30)),
            ("2026-10-26T02:30", utc(2026, 10, 26, 1, 30)),
        ]

    def test_apscheduler_trigger_walks_the_same_instants(self) -> None:
        trigger = ScheduleTrigger(schedule())
        fired, previous = [], None
        now = utc(2026, 3, 28, 12)
        for _ in range(3):
            previous = trigger.get_next_fire_time(previous, now)
            fired.append(previous)
        assert fired == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30)]
        previous = None
        fired = []
        for _ in range(2):
            previous = trigger.get_next_fire_time(previous, utc(2026, 10, 24, 12))
            fired.append(previous)
        assert fired == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]

    def test_trigger_first_fire_time_is_at_or_after_now(self) -> None:
        trigger = ScheduleTrigger(schedule())
        assert trigger.get_next_fire_time(None, utc(2026, 3, 29, 1, 30)) == utc(2026, 3, 29, 1, 30)
        assert trigger.get_next_fire_time(None, utc(2026, 3, 29, 1, 31)) == utc(2026, 3, 30, 0, 30)

    def test_hourly_schedule_fires_each_real_instant_once(self) -> None:
        hourly = schedule(cron="30 * * * *")
        spring = [slot for slot, _ in slots_on(hourly, "2026-03-29", utc(2026, 3, 28, 12), count=40)]
        # 02:30 takes 03:30 CEST, so the wall time 03:30 (the same instant) is not fired again.
        assert spring[:5] == [
            "2026-03-29T00:30",
            "2026-03-29T01:30",
            "2026-03-29T02:30",
            "2026-03-29T04:30",
            "2026-03-29T05:30",
        ]
        assert len(spring) == 23
        autumn = slots_on(hourly, "2026-10-25", utc(2026, 10, 24, 12), count=40)
        instants = [instant for _, instant in autumn]
        assert len(autumn) == 24 and len(set(instants)) == 24 and instants == sorted(instants)
        assert ("2026-10-25T02:30", utc(2026, 10, 25, 0, 30)) in autumn
        assert utc(2026, 10, 25, 1, 30) not in instants  # the second 02:30

    def test_every_instant_strictly_increases_across_a_year(self) -> None:
        instants = [i for _, i in next_slots(schedule(cron="*/30 * * * *"), utc(2026, 1, 1), 2 * 24 * 366)]
        assert all(b > a for a, b in itertools.pairwise(instants))


class TestOrdinaryNights:
    """Outside the DST nights a slot is simply its local time."""

    def test_winter_and_summer_offsets(self) -> None:
        s = schedule(cron="30 1 * * *")
        assert next_slots(s, utc(2026, 11, 22, 12), 1) == [("2026-11-23T01:30", utc(2026, 11, 23, 0, 30))]
        assert next_slots(s, utc(2026, 6, 9, 12), 1) == [("2026-06-10T01:30", utc(2026, 6, 9, 23, 30))]
        assert slot_instant(s, "2026-06-10T01:30") == utc(2026, 6, 9, 23, 30)

    def test_next_slots_is_strictly_after(self) -> None:
        s = schedule(cron="30 1 * * *")
        assert next_slots(s, utc(2026, 11, 23, 0, 30), 1)[0][0] == "2026-11-24T01:30"
        assert next_slots(s, utc(2026, 11, 23, 0, 30), 0) == []

    def test_crontab_weekday_numbers_start_on_sunday(self) -> None:
        weekdays = schedule(cron="30 1 * * 1-5")
        # Friday 2026-11-27 noon → Monday, Tuesday (APScheduler alone would read 1-5 as Tue-Sat).
        assert [slot for slot, _ in next_slots(weekdays, utc(2026, 11, 27, 12), 2)] == [
            "2026-11-30T01:30",
            "2026-12-01T01:30",
        ]
        weekend = schedule(cron="0 9 * * 6-7")
        assert [slot for slot, _ in next_slots(weekend, utc(2026, 11, 23), 3)] == [
            "2026-11-28T09:00",
            "2026-11-29T09:00",
            "2026-12-05T09:00",
        ]
        sunday = schedule(cron="0 9 * * 0")
        assert next_slots(sunday, utc(2026, 11, 23), 1)[0][0] == "2026-11-29T09:00"
        assert next_slots(schedule(cron="0 9 * * mon-fri/2"), utc(2026, 11, 22), 3)[2][0] == "2026-11-27T09:00"

    def test_previous_slot(self) -> None:
        s = schedule(cron="30 1 * * 1-5")
        assert previous_slot(s, utc(2026, 11, 29, 12)) == ("2026-11-27T01:30", utc(2026, 11, 27, 0, 30))
        assert previous_slot(s, utc(2026, 11, 27, 0, 30)) == ("2026-11-27T01:30", utc(2026, 11, 27, 0, 30))

    def test_window_end(self) -> None:
        night = schedule(cron="30 1 * * *", window_end="06:00")
        assert window_end_at(night, "2026-11-23T01:30") == utc(2026, 11, 23, 5)
        evening = schedule(cron="0 22 * * *", window_end="06:00")
        assert window_end_at(evening, "2026-11-23T22:00") == utc(2026, 11, 24, 5)
        same = schedule(cron="0 6 * * *", window_end="06:00")
        assert window_end_at(same, "2026-11-23T06:00") == utc(2026, 11, 24, 5)
        # A window spanning the autumn change is one hour longer in real time.
        late = schedule(cron="0 22 * * *", window_end="06:00")
        assert window_end_at(late, "2026-10-24T22:00") - slot_instant(late, "2026-10-24T22:00") == timedelta(hours=9)


class TestCalendar:
    """workdays skips weekends and Swedish public holidays; the eves are configurable."""

    workdays = schedule(calendar="workdays")
    defaults = SchedulerSettings()

    @pytest.mark.parametrize(
        ("day", "reason"),
        [
            (date(2026, 11, 23), None),  # an ordinary Monday
            (date(2026, 11, 28), "Lördag"),
            (date(2026, 11, 29), "Söndag"),
            (date(2026, 12, 25), "Juldagen"),
            (date(2026, 12, 26), "Annandag jul"),
            (date(2026, 12, 24), "Julafton"),
            (date(2026, 6, 19), "Midsommarafton"),
            (date(2026, 6, 6), "Nationaldagen"),  # a Saturday: the holiday's name says more
            (date(2026, 12, 31), "Nyårsafton"),
            (date(2027, 1, 1), "Nyårsdagen"),
            (date(2026, 4, 3), "Långfredagen"),
            (date(2026, 4, 6), "Annandag påsk"),
            (date(2026, 5, 14), "Kristi himmelsfärdsdag"),
        ],
    )
    def test_default_reasons(self, day: date, reason: str | None) -> None:
        assert skip_reason(self.workdays, day, self.defaults) == reason

    def test_julafton_configurable(self) -> None:
        working = SchedulerSettings(julafton_is_holiday=False)
        assert skip_reason(self.workdays, date(2026, 12, 24), working) is None
        assert skip_reason(self.workdays, date(2026, 12, 25), working) == "Juldagen"

    def test_midsommarafton_2026_is_19_june_and_configurable(self) -> None:
        assert skip_reason(self.workdays, date(2026, 6, 19), self.defaults) == "Midsommarafton"
        assert skip_reason(self.workdays, date(2026, 6, 18), self.defaults) is None
        working = SchedulerSettings(midsommarafton_is_holiday=False)
        assert skip_reason(self.workdays, date(2026, 6, 19), working) is None

    def test_nyarsafton_configurable(self) -> None:
        working = SchedulerSettings(nyarsafton_is_holiday=False)
        assert skip_reason(self.workdays, date(2026, 12, 31), working) is None
        # On a weekend the weekday itself is still a reason.
        assert skip_reason(self.workdays, date(2027, 12, 31), working) is None  # a Friday
        assert skip_reason(self.workdays, date(2022, 12, 31), working) == "Lördag"

    def test_all_days_calendar_skips_nothing(self) -> None:
        every_day = schedule(calendar="all")
        for day in (date(2026, 11, 28), date(2026, 12, 24), date(2026, 12, 25)):
            assert skip_reason(every_day, day, self.defaults) is None


class TestScheduleFiles:
    """Schedule files load, and a bad one is a ConfigError naming the file, the key and the problem."""

    def write(self, folder: Path, name: str, text: str) -> Path:
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_text(text, encoding="utf-8")
        return path

    good = 'robot = "example"\ntenants = ["0000"]\ncron = "30 1 * * *"\nwindow_end = "06:00"\n'

    def load(self, folder: Path) -> list[Schedule]:
        return load_schedules(folder, robots={"example"}, tenants={"0000", "1081"})

    def test_shipped_example_schedule_loads(self) -> None:
        shipped = {s.name: s for s in load_schedules(PROJECT_ROOT / "schedules", robots=None, tenants={"0000"})}
        example = shipped["example"]
        assert (example.name, example.robot, example.tenants) == ("example", "example", ["*"])
        assert (example.cron, example.calendar, example.window_end) == ("30 1 * * *", "workdays", "06:00")
        assert example.catch_up and not example.enabled and example.description  # a teaching aid: off by default

    def test_defaults_and_name_from_file(self, tmp_path: Path) -> None:
        self.write(tmp_path, "nightly.toml", self.good)
        [s] = self.load(tmp_path)
        assert s.name == "nightly"
        assert (s.timezone, s.calendar, s.catch_up, s.enabled) == ("Europe/Stockholm", "all", True, True)

    def test_several_files_sorted(self, tmp_path: Path) -> None:
        self.write(tmp_path, "b.toml", self.good)
        self.write(tmp_path, "a.toml", self.good.replace('["0000"]', '["*"]'))
        self.write(tmp_path, "notes.txt", "not a schedule")
        assert [s.name for s in self.load(tmp_path)] == ["a", "b"]

    @pytest.mark.parametrize(
        ("text", "key", "problem"),
        [
            ('robot = "nobody"\ntenants = ["0000"]\ncron = "30 1 * * *"\nwindow_end = "06:00"\n', "robot", "nobody"),
            ('robot = "example"\ntenants = ["9999"]\ncron = "30 1 * * *"\nwindow_end = "06:00"\n', "tenants", "9999"),
            (
                'robot = "example"\ntenants = ["abc"]\ncron = "30 1 * * *"\nwindow_end = "06:00"\n',
                "tenants",
                "kommunkod",
            ),
            ('robot = "example"\ntenants = ["*", "0000"]\ncron = "30 1 * * *"\nwindow_end = "06:00"\n', "tenants", "*"),
            ('robot = "example"\ntenants = ["0000"]\ncron = "30 1 * *"\nwindow_end = "06:00"\n', "cron", "5 fields"),
            ('robot = "example"\ntenants = ["0000"]\ncron = "61 1 * * *"\nwindow_end = "06:00"\n', "cron", "61"),
            ('robot = "example"\ntenants = ["0000"]\ncron = "0 0 30 2 *"\nwindow_end = "06:00"\n', "cron", "never"),
            ('robot = "example"\ntenants = ["0000"]\ncron = "0 1 1 * 1"\nwindow_end = "06:00"\n', "cron", "not both"),
            ('robot = "example"\ntenants = ["0000"]\ncron = "0 1 * * 9"\nwindow_end = "06:00"\n', "cron", "weekday"),
            ('robot = "example"\ntenants = ["0000"]\ncron = "30 1 * * *"\nwindow_end = "6"\n', "window_end", "HH:MM"),
            ('robot = "example"\ntenants = ["0000"]\ncron = "30 1 * * *"\n', "window_end", "required"),
            (
                'robot = "example"\ntenants = ["0000"]\ncron = "30 1 * * *"\nwindow_end = "06:00"\ntimezone = "Mars/Olympus"\n',
                "timezone",
                "Mars/Olympus",
            ),
            (
                'robot = "example"\ntenants = ["0000"]\ncron = "30 1 * * *"\nwindow_end = "06:00"\ncalendar = "holidays"\n',
                "calendar",
                "workdays",
            ),
            (
                'robot = "example"\ntenants = ["0000"]\ncron = "30 1 * * *"\nwindow_end = "06:00"\ncatchup = false\n',
                "catchup",
                "Extra inputs",
            ),
            (
                'robot = "example"\ntenants = ["0000"]\ncron = "30 1 * * *"\nwindow_end = "06:00"\nname = "Bad Name"\n',
                "name",
                "lower-case",
            ),
        ],
    )
    def test_bad_file_names_file_key_and_problem(self, tmp_path: Path, text: str, key: str, problem: str) -> None:
        self.write(tmp_path, "ok.toml", self.good)
        path = self.write(tmp_path, "broken.toml", text)
        with pytest.raises(ConfigError) as info:
            self.load(tmp_path)
        message = str(info.value)
        assert str(path) in message
        assert f"{key}:" in message
        assert problem in message

    def test_duplicate_name(self, tmp_path: Path) -> None:
        self.write(tmp_path, "a.toml", self.good + 'name = "night"\n')
        path = self.write(tmp_path, "b.toml", self.good + 'name = "night"\n')
        with pytest.raises(ConfigError, match="already used") as info:
            self.load(tmp_path)
        assert str(path) in str(info.value) and "name:" in str(info.value)

    def test_invalid_toml(self, tmp_path: Path) -> None:
        path = self.write(tmp_path, "bad.toml", 'robot = "example\n')
        with pytest.raises(ConfigError, match="not valid TOML") as info:
            self.load(tmp_path)
        assert str(path) in str(info.value)

    def test_missing_folder(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            self.load(tmp_path / "nowhere")

    def test_unknown_robot_not_checked_without_registry(self, tmp_path: Path) -> None:
        self.write(tmp_path, "x.toml", self.good.replace('"example"', '"future"'))
        assert load_schedules(tmp_path, robots=None, tenants={"0000"})[0].robot == "future"


class TestNightJobs:
    """``kollega night`` / ``kollega demo`` run what the schedules say, in firing order."""

    def test_every_robot_with_an_enabled_schedule_and_none_switched_off(self, tmp_path: Path) -> None:
        from core.registry import load_robots
        from core.scheduler import night_jobs
        from core.testing import FakeClock, make_settings

        settings = make_settings(tmp_path, scheduler=SchedulerSettings(schedules_dir=PROJECT_ROOT / "schedules"))
        robots = [robot for robot, _tenant in night_jobs(settings, load_robots(), FakeClock())]
        assert {"ronney", "bosse", "lena", "harry"} <= set(robots)
        assert "example" not in robots  # its shipped schedule is switched off
        assert len(robots) == len(set(robots))  # bosse has two schedules but runs once a night

    def test_in_the_order_the_schedules_fire_after_the_clock(self, tmp_path: Path) -> None:
        from core.registry import load_robots
        from core.scheduler import night_jobs
        from core.testing import FakeClock, make_settings

        settings = make_settings(tmp_path, scheduler=SchedulerSettings(schedules_dir=PROJECT_ROOT / "schedules"))
        # 23:00 in Stockholm: Bosse's night at 00:15, Ronney 00:30, HaRry 00:40, Lena at 19:30.
        evening = FakeClock(utc(2026, 11, 23, 22, 0))
        assert [robot for robot, _tenant in night_jobs(settings, load_robots(), evening)] == [
            "bosse",
            "ronney",
            "harry",
            "lena",
        ]
        # 18:00: Bosse answers replies every five minutes in the day, Lena plans at 19:30.
        afternoon = FakeClock(utc(2026, 11, 23, 17, 0))
        assert [robot for robot, _tenant in night_jobs(settings, load_robots(), afternoon)][:2] == ["bosse", "lena"]

    def test_a_robot_without_any_schedule_still_runs(self, tmp_path: Path) -> None:
        from core.registry import load_robots
        from core.scheduler import night_jobs
        from core.testing import FakeClock, make_settings

        empty = tmp_path / "schedules"
        empty.mkdir()
        settings = make_settings(tmp_path, scheduler=SchedulerSettings(schedules_dir=empty))
        assert "example" in [robot for robot, _tenant in night_jobs(settings, load_robots(), FakeClock())]

    def test_only_the_chosen_and_configured_tenants(self, tmp_path: Path) -> None:
        from core.registry import load_robots
        from core.scheduler import night_jobs, schedule_tenants
        from core.settings import TenantSettings
        from core.testing import FakeClock, make_settings

        tenants = [TenantSettings(code="1081", name="Ronneby"), TenantSettings(code="1082", name="Karlshamn")]
        settings = make_settings(
            tmp_path, tenants=tenants, scheduler=SchedulerSettings(schedules_dir=PROJECT_ROOT / "schedules")
        )
        jobs = night_jobs(settings, load_robots(), FakeClock(), ["1082"])
        assert jobs and {tenant for _robot, tenant in jobs} == {"1082"}
        assert schedule_tenants(schedule(tenants=["*"]), settings) == ["1081", "1082"]
        assert schedule_tenants(schedule(tenants=["1082", "2080"]), settings) == ["1082"]
