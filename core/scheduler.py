"""The scheduler: turns the schedules in ``schedules/*.toml`` into queued Run rows.

One ``kollega scheduler`` process leads (a lease in the ``locks`` table); a second one
started by mistake stands by and takes over when the leader's lease runs out. Only the
leader fires, and a slot is a run row unique per (schedule, tenant, slot), so even two
leaders give one run. The scheduler only creates rows; ``kollega worker`` executes them.

A *slot* is a schedule's local wall-clock time, ``"YYYY-MM-DDTHH:MM"``. The cron
expression is evaluated on naive wall-clock times, and each wall time is mapped to a real
instant with zoneinfo's ``fold=0``:

- the spring-forward gap (2026-03-29, 02:00 → 03:00 in Europe/Stockholm): a 02:30 slot
  fires once, at 03:30 CEST (the instant 02:30 would have been in winter time);
- the repeated autumn hour (2026-10-25, 02:00–03:00 twice): 02:30 fires once, at the
  first occurrence.

A wall time whose instant an earlier wall time already took (03:30 on the spring night
of an hourly schedule) is dropped, so every real instant fires at most once.

The ``workdays`` calendar skips Saturdays, Sundays and Swedish public holidays (the
``holidays`` package); julafton, midsommarafton and nyårsafton are configurable in
:class:`core.settings.SchedulerSettings`. A skipped slot is still recorded (status
``skipped``, with the day's name as the reason) so that operations staff see why
nothing ran.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays.constants
from apscheduler.jobstores.memory import MemoryJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from holidays.countries.sweden import Sweden
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from core.clock import Clock
from core.errors import ConfigError
from core.logging import get_logger
from core.runs import SqlRunStore
from core.settings import SchedulerSettings, Settings, TenantSettings
from core.storage.db import Database
from core.storage.models import Lock, RunStatus
from core.storage.web_models import schedule_pause

if TYPE_CHECKING:
    from core.clock import Clock
    from core.registry import Registry
    from core.schedule_files import FileProblem, ScheduleFolder

log = get_logger("kollega.scheduler")

#: Name of the leader lock row in the ``locks`` table.
LEADER_LOCK = "scheduler"
#: Slots older than this are not recorded one by one after a long downtime.
CATCH_UP_HORIZON = timedelta(days=7)
#: At most this many missed slots per schedule are recorded after one downtime (the newest).
MAX_MISSED_RECORDED = 200
#: Longer than any DST shift: how far back slot iteration starts so duplicates are seen.
_DST_LOOKBACK = timedelta(hours=3)
_SLOT_FORMAT = "%Y-%m-%dT%H:%M"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,127}")
_HH_MM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: 0 (and 7) = Sunday
_WEEKEND = {5: "Lördag", 6: "Söndag"}
#: The three "eves" Swedish law treats like Sundays; whether they are days off is configurable.
_EVE_SETTINGS = {
    "Julafton": "julafton_is_holiday",
    "Midsommarafton": "midsommarafton_is_holiday",
    "Nyårsafton": "nyarsafton_is_holiday",
}


# -- cron ------------------------------------------------------------------------------
def _weekday(token: str, *, range_end: bool = False) -> int:
    token = token.strip().lower()
    if token.isdigit() and int(token) <= 7:
        number = int(token)
    elif token in _WEEKDAYS:
        number = _WEEKDAYS.index(token)
    else:
        raise ValueError(f"unknown weekday {token!r}: use 0-7 (0 and 7 = Sunday) or sun, mon … sat")
    # "fri-sun" and "5-7" mean Friday to Sunday: Sunday closes a range as 7.
    return 7 if range_end and number == 0 else number


def _crontab_weekdays(field: str) -> str | None:
    """Crontab's day-of-week field as APScheduler weekday names.

    APScheduler 3 numbers weekdays from Monday = 0, crontab from Sunday = 0, so "1-5"
    would silently mean Tuesday to Saturday; we translate to names instead.
    """
    if field == "*":
        return None
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        if step_text and not (step_text.isdigit() and int(step_text) >= 1):
            raise ValueError(f"bad step {step_text!r} in the day-of-week field")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = _weekday(start), _weekday(end, range_end=True)
            if last < first:
                raise ValueError(f"weekday range {span!r} runs backwards")
        elif step_text:
            raise ValueError(f"a step needs a range or '*' in the day-of-week field, not {part!r}")
        else:
            first = last = _weekday(span)
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_WEEKDAYS[d] for d in (1, 2, 3, 4, 5, 6, 0) if d in days)


@lru_cache(maxsize=256)
def _wall_clock_trigger(cron: str) -> CronTrigger:
    """A CronTrigger over naive wall-clock times (UTC stands in for "no zone": it has no DST)."""
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
    minute, hour, day, month, day_of_week = fields
    if day != "*" and day_of_week != "*":
        # crontab would fire when EITHER matches, APScheduler when both do: refuse the ambiguity.
        raise ValueError("restrict the day of month or the day of week, not both")
    try:
        trigger = CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=_crontab_weekdays(day_of_week), timezone=UTC
        )
    except ValueError as exc:
        raise ValueError(f"{cron!r} is not a valid cron expression: {exc}") from None
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise ValueError(f"{cron!r} never fires")
    return trigger


# -- the schedule file -----------------------------------------------------------------
class Schedule(BaseModel):
    """One schedule file in schedules/: which robot runs when, for which tenants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Unique name; defaults to the file name.")
    robot: str = Field(min_length=1, description="The robot's name (its entry-point name).")
    tenants: list[str] = Field(min_length=1, description='Kommunkoder, or ["*"] for every configured tenant.')
    cron: str = Field(description="Crontab expression, 5 fields, in the schedule's local time (0 = Sunday).")
    timezone: str = Field(default="Europe/Stockholm", description="The zone the cron expression is read in.")
    calendar: Literal["workdays", "all"] = Field(default="all", description="workdays = skip weekends and holidays.")
    window_end: str = Field(description="HH:MM local: the run must be done by then.")
    catch_up: bool = Field(default=True, description="Run a slot missed during downtime if still inside its window.")
    enabled: bool = Field(default=True, description="false = the schedule fires nothing.")
    description: str = Field(default="", description="What the schedule is for, for operations staff.")

    @field_validator("name")
    @classmethod
    def _simple_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(f"{value!r}: use 1-128 lower-case letters, digits, '-', '_' or '.'")
        return value

    @field_validator("window_end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not _HH_MM.fullmatch(value):
            raise ValueError(f"{value!r} is not a time of day as HH:MM (00:00-23:59)")
        return value

    @field_validator("tenants")
    @classmethod
    def _tenant_codes(cls, value: list[str]) -> list[str]:
        if "*" in value and len(value) > 1:
            raise ValueError('"*" (every tenant) cannot be combined with other tenants')
        for code in value:
            if code != "*" and not (len(code) == 4 and code.isdigit()):
                raise ValueError(f"{code!r} is not a four-digit kommunkod")
        if len(set(value)) != len(value):
            raise ValueError("a tenant is listed twice")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        _wall_clock_trigger(" ".join(value.split()))
        return " ".join(value.split())

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def window_end_time(self) -> time:
        """window_end as a time of day."""
        hour, minute = self.window_end.split(":")
        return time(int(hour), int(minute))


def load_schedule_file(path: Path, *, robots: set[str] | None, tenants: set[str]) -> Schedule:
    """Read one schedule file; ConfigError naming the file, key and problem."""
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    return parse_schedule(data, path, robots=robots, tenants=tenants)


def parse_schedule(data: dict[str, Any], path: Path, *, robots: set[str] | None, tenants: set[str]) -> Schedule:
    """A schedule file's content as a Schedule (named after ``path`` unless it says); ConfigError naming the key."""
    data = {"name": path.stem, **data}
    try:
        schedule = Schedule.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    if robots is not None and schedule.robot not in robots:
        raise ConfigError(
            f"{path}: robot: unknown robot {schedule.robot!r}; installed: {', '.join(sorted(robots)) or 'none'}"
        )
    for code in schedule.tenants:
        if code != "*" and code not in tenants:
            raise ConfigError(
                f"{path}: tenants: unknown tenant {code!r}; configured: {', '.join(sorted(tenants)) or 'none'}"
            )
    return schedule


def load_schedules(folder: Path, *, robots: set[str] | None, tenants: set[str]) -> list[Schedule]:
    """Read every ``*.toml`` in ``folder``; ConfigError naming the file, key and problem.

    ``robots`` None skips the robot check (e.g. when plugins are not loaded).
    """
    if not folder.is_dir():
        raise ConfigError(f"schedules folder {folder} does not exist")
    schedules: list[Schedule] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.toml")):
        schedule = load_schedule_file(path, robots=robots, tenants=tenants)
        if schedule.name in seen:
            raise ConfigError(f"{path}: name: schedule name {schedule.name!r} is already used by {seen[schedule.name]}")
        seen[schedule.name] = path
        schedules.append(schedule)
    return schedules


# -- slots -----------------------------------------------------------------------------
def parse_slot(slot: str) -> datetime:
    """A slot string as a naive local wall-clock datetime."""
    return datetime.strptime(slot, _SLOT_FORMAT)


def _to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    # fold=0: a wall time inside the spring gap gets the offset from before the gap
    # (02:30 → 03:30 CEST); a repeated autumn wall time its first occurrence.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def slot_instant(schedule: Schedule, slot: str) -> datetime:
    """The real (UTC) instant a slot fires at."""
    return _to_instant(parse_slot(slot), schedule.zone)


def _iter_slots(schedule: Schedule, start: datetime) -> Iterator[tuple[str, datetime]]:
    """(slot, UTC instant) for each slot at or after ``start``, in order, every instant once."""
    zone = schedule.zone
    trigger = _wall_clock_trigger(schedule.cron)
    # Start early enough to see the wall times whose instants a later wall time could repeat.
    cursor = (start.astimezone(zone).replace(tzinfo=None) - _DST_LOOKBACK).replace(tzinfo=UTC)
    latest: datetime | None = None
    while True:
        fire = trigger.get_next_fire_time(None, cursor)
        if fire is None:
            return
        cursor = fire + timedelta(seconds=1)
        wall = fire.replace(tzinfo=None)
        instant = _to_instant(wall, zone)
        if latest is not None and instant <= latest:
            continue  # the instant an earlier wall time took (the hour after the spring gap)
        latest = instant
        if instant >= start:
            yield wall.strftime(_SLOT_FORMAT), instant


def next_slots(schedule: Schedule, after: datetime, count: int) -> list[tuple[str, datetime]]:
    """The next ``count`` slots strictly after ``after``: (local slot string, aware UTC instant)."""
    result: list[tuple[str, datetime]] = []
    if count <= 0:
        return result
    for item in _iter_slots(schedule, after.astimezone(UTC) + timedelta(microseconds=1)):
        result.append(item)
        if len(result) >= count:
            break
    return result


def previous_slot(schedule: Schedule, at: datetime) -> tuple[str, datetime] | None:
    """The newest slot firing at or before ``at`` (looking back at most about a year)."""
    at = at.astimezone(UTC)
    for lookback in (timedelta(hours=1), timedelta(days=1), timedelta(days=8), timedelta(days=32), timedelta(days=367)):
        found = None
        for item in _iter_slots(schedule, at - lookback):
            if item[1] > at:
                break
            found = item
        if found is not None:
            return found
    return None


def window_end_at(schedule: Schedule, slot: str) -> datetime:
    """When a slot's window closes (UTC): the first window_end local time after the slot."""
    wall = parse_slot(slot)
    end = datetime.combine(wall.date(), schedule.window_end_time)
    if end <= wall:
        end += timedelta(days=1)
    return _to_instant(end, schedule.zone)


class ScheduleTrigger(BaseTrigger):  # type: ignore[misc]
    """APScheduler trigger that fires at a schedule's slots, DST handled as described above."""

    __slots__ = ("schedule",)

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The first slot instant after the previous fire time, or at/after ``now`` for the first."""
        start = previous_fire_time + timedelta(microseconds=1) if previous_fire_time else now
        for _slot, instant in _iter_slots(self.schedule, start.astimezone(UTC)):
            return instant
        return None

    def __str__(self) -> str:
        return f"kollega[{self.schedule.cron} {self.schedule.timezone}]"

    def __repr__(self) -> str:
        return f"<ScheduleTrigger {self.schedule.name!r} cron={self.schedule.cron!r} tz={self.schedule.timezone!r}>"


# -- calendar --------------------------------------------------------------------------
@lru_cache(maxsize=32)
def _swedish_holidays(year: int) -> dict[date, tuple[str, ...]]:
    categories = [holidays.constants.PUBLIC]
    # Newer releases of `holidays` list the eves under DE_FACTO (days off by law, not public holidays).
    de_facto = getattr(holidays.constants, "DE_FACTO", None)
    if de_facto is not None and de_facto in Sweden.supported_categories:
        categories.append(de_facto)
    calendar = Sweden(years=year, include_sundays=False, categories=tuple(categories), language="sv")
    return {day: tuple(calendar.get_list(day)) for day in calendar}


def skip_reason(
    schedule: Schedule,
    local_date: date,
    scheduler_settings: SchedulerSettings,
    days_off: Mapping[date, str] | None = None,
) -> str | None:
    """Why the calendar skips ``local_date`` ("Julafton", "Lördag" …), or None when it runs.

    ``days_off`` are a municipality's own non-working days (``[[tenants]] days_off``:
    klämdagar, local closures), skipped like public holidays with their own reason.
    """
    if schedule.calendar == "all":
        return None
    if days_off and local_date in days_off:
        return days_off[local_date]
    for name in _swedish_holidays(local_date.year).get(local_date, ()):
        setting = _EVE_SETTINGS.get(name)
        if setting is None or getattr(scheduler_settings, setting):
            return name
    return _WEEKEND.get(local_date.weekday())


# -- the scheduler ---------------------------------------------------------------------
class Scheduler:
    """Records runs for schedule slots; leads through a lease so only one process fires."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        schedules: list[Schedule],
        clock: Clock,
        owner: str,
        *,
        watch: ScheduleFolder | None = None,
        robots: set[str] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.schedules = {s.name: s for s in schedules}
        #: The folder as last read, when this scheduler follows schedules/ (None: a fixed list).
        self.folder = watch
        self._robots = robots
        self._fingerprint = watch.digests if watch is not None else None
        self._reported: set[FileProblem] = set()
        if watch is not None:
            self._report(watch.problems)
        self.clock = clock
        self.owner = owner
        self.runs = SqlRunStore(db, clock)
        #: The running AsyncIOScheduler while serve() runs (for inspection and tests).
        self.aps: AsyncIOScheduler | None = None
        self._lease_until: datetime | None = None
        self._leading = False
        for tenant in settings.tenants:
            self._ensure_tenant(tenant)

    def _ensure_tenant(self, tenant: TenantSettings) -> None:
        try:
            self.runs.ensure_tenant(tenant.code, tenant.name, tenant.ops_email)
        except IntegrityError:
            # Another process inserted the same tenant at the same moment; now it exists.
            self.runs.ensure_tenant(tenant.code, tenant.name, tenant.ops_email)

    @classmethod
    def from_folder(cls, db: Database, settings: Settings, registry: Registry, clock: Clock, owner: str) -> Scheduler:
        """A scheduler following the schedules folder: a broken file is reported, the others run."""
        from core.schedule_files import scan

        robots = set(registry.robots)
        found = scan(settings.scheduler.schedules_dir, robots=robots, tenants={t.code for t in settings.tenants})
        return cls(db, settings, list(found.schedules.values()), clock, owner, watch=found, robots=robots)

    # -- following the folder ----------------------------------------------------------
    def _report(self, problems: list[FileProblem]) -> None:
        current = set(problems)
        for problem in sorted(current - self._reported, key=lambda p: p.file):
            log.error(
                "scheduler.schedule_file_invalid",
                file=problem.file,
                problem=problem.message,
                kept=problem.kept,
                note="the last good version stays in force" if problem.kept else "this file schedules nothing",
            )
        for problem in sorted(self._reported - current, key=lambda p: p.file):
            if not any(p.file == problem.file for p in current):
                log.info("scheduler.schedule_file_fixed", file=problem.file)
        self._reported = current

    def reload(self) -> dict[str, list[str]] | None:
        """Re-read the folder if a file was edited, added or removed; apply it. What changed, or None.

        Every file is validated on its own: a broken one is logged (and shown on the
        dashboard's schedules page) while the others apply; a schedule whose file broke keeps
        its last good version. A changed schedule takes effect from its next fire time.
        """
        if self.folder is None:
            return None
        from core.schedule_files import fingerprint, scan

        folder = self.settings.scheduler.schedules_dir
        prints = fingerprint(folder)
        if prints == self._fingerprint:
            return None
        self._fingerprint = prints
        tenants = {t.code for t in self.settings.tenants}
        found = scan(folder, robots=self._robots, tenants=tenants, previous=self.folder)
        self.folder = found
        self._report(found.problems)
        old, new = self.schedules, found.schedules
        changes = {
            "added": sorted(set(new) - set(old)),
            "removed": sorted(set(old) - set(new)),
            "changed": sorted(n for n in set(old) & set(new) if old[n] != new[n]),
        }
        self.schedules = dict(new)
        if self.aps is not None:
            self._apply(old, new)
        if any(changes.values()):
            log.info("scheduler.schedules_reloaded", **changes)
        return changes

    def _apply(self, old: dict[str, Schedule], new: dict[str, Schedule]) -> None:
        """Bring the running APScheduler's jobs in line with ``new``: each from its next fire time."""
        aps = self.aps
        assert aps is not None
        for name, schedule in old.items():
            gone = name not in new or not new[name].enabled
            if schedule.enabled and gone and aps.get_job(name) is not None:
                aps.remove_job(name)
        for name, schedule in new.items():
            if not schedule.enabled:
                continue
            if aps.get_job(name) is None:
                self._add_job(aps, schedule)
            elif old.get(name) != schedule:
                aps.reschedule_job(name, trigger=ScheduleTrigger(schedule))

    def enabled_schedules(self) -> list[Schedule]:
        """The schedules that fire."""
        return [s for s in self.schedules.values() if s.enabled]

    def tenant_codes(self, schedule: Schedule) -> list[str]:
        """The schedule's tenants, with "*" expanded to every configured tenant."""
        return schedule_tenants(schedule, self.settings)

    # -- recording runs ----------------------------------------------------------------
    def fire(self, schedule: Schedule, slot: str, trigger: str = "schedule") -> list[int]:
        """Record the slot's run for each tenant (queued, or skipped by the calendar).

        Returns the ids of the rows this call created: a slot another scheduler already
        recorded gives nothing.
        """
        return self._record(schedule, slot, trigger, RunStatus.queued, None)

    def _record(self, schedule: Schedule, slot: str, trigger: str, status: RunStatus, error: str | None) -> list[int]:
        day = parse_slot(slot).date()
        reason = skip_reason(schedule, day, self.settings.scheduler)
        if reason is not None:
            # Nothing was lost on a day the calendar skips, even during downtime.
            status, error = RunStatus.skipped, reason
        tenants = self.tenant_codes(schedule)
        # A municipality's own days off (klämdagar, local closures) skip its share only.
        local_off: dict[str, str] = {}
        if status in (RunStatus.queued, RunStatus.missed):
            for tenant in tenants:
                found = self.settings.tenant(tenant)
                own = skip_reason(schedule, day, self.settings.scheduler, found.days_off if found else None)
                if own is not None:
                    local_off[tenant] = own
        # Operations staff of a municipality can pause its share of a schedule from the
        # dashboard: that tenant's slots are recorded as skipped; the other tenants run on.
        paused: dict[str, str] = {}
        if status == RunStatus.queued:
            with self.db.session() as s:
                for tenant in tenants:
                    pause = schedule_pause(s, schedule.name, tenant)
                    if pause is not None:
                        paused[tenant] = f"paused by {pause.paused_by}" + (f": {pause.reason}" if pause.reason else "")
        deadline = window_end_at(schedule, slot)
        created: list[int] = []
        for tenant in tenants:
            run_id = self.runs.create(
                robot=schedule.robot,
                tenant=tenant,
                trigger=trigger,
                status=RunStatus.skipped if tenant in paused or tenant in local_off else status,
                schedule=schedule.name,
                slot=slot,
                deadline_at=deadline,
                error=local_off.get(tenant, paused.get(tenant, error)),
                actor="system:scheduler",
            )
            if run_id is not None:
                created.append(run_id)
        log.info(
            "scheduler.slot",
            schedule=schedule.name,
            robot=schedule.robot,
            slot=slot,
            status=status.value,
            trigger=trigger,
            reason=error,
            paused=sorted(paused),
            created=len(created),
        )
        return created

    def catch_up(self) -> list[int]:
        """Handle slots that passed while no scheduler led; ids of the runs created.

        Per enabled schedule: the slots after the last recorded one (or, with none
        recorded, only the most recent) up to now. The newest is run once if still inside
        its window and catch_up is on; every other one is recorded as missed.
        """
        now = self.clock.now()
        created: list[int] = []
        for schedule in self.enabled_schedules():
            created += self._catch_up_schedule(schedule, now)
        return created

    def _catch_up_schedule(self, schedule: Schedule, now: datetime) -> list[int]:
        last = self.runs.last_slot(schedule.name)
        if last is None:
            newest = previous_slot(schedule, now)
            passed: deque[tuple[str, datetime]] = deque([newest] if newest else [])
            dropped = 0
        else:
            start = slot_instant(schedule, last) + timedelta(microseconds=1)
            if start < now - CATCH_UP_HORIZON:
                log.warning(
                    "scheduler.catch_up_horizon",
                    schedule=schedule.name,
                    last_slot=last,
                    note=f"slots older than {CATCH_UP_HORIZON.days} days are not recorded",
                )
                start = now - CATCH_UP_HORIZON
            passed = deque(maxlen=MAX_MISSED_RECORDED + 1)
            total = 0
            for item in _iter_slots(schedule, start):
                if item[1] > now:
                    break
                passed.append(item)
                total += 1
            dropped = total - len(passed)
        if dropped:
            log.warning("scheduler.missed_not_recorded", schedule=schedule.name, count=dropped)
        if not passed:
            return []
        created: list[int] = []
        newest_slot, _ = passed.pop()
        for slot, _instant in passed:
            created += self._record(
                schedule,
                slot,
                "schedule",
                RunStatus.missed,
                f"the scheduler was not running; the window ended at {schedule.window_end}",
            )
        if schedule.catch_up and now < window_end_at(schedule, newest_slot):
            created += self._record(schedule, newest_slot, "catch_up", RunStatus.queued, None)
        else:
            why = (
                "catch-up is off for this schedule"
                if not schedule.catch_up
                else f"the scheduler was not running; the window ended at {schedule.window_end}"
            )
            created += self._record(schedule, newest_slot, "schedule", RunStatus.missed, why)
        return created

    # -- leader lock -------------------------------------------------------------------
    def try_lead(self) -> bool:
        """Take or renew the leader lease; True when this instance now leads."""
        now = self.clock.now()
        until = now + timedelta(seconds=self.settings.scheduler.leader_lease_seconds)
        with self.db.session() as s:
            # The lease check is inside the UPDATE itself, so two contenders cannot both win.
            name = s.scalar(
                update(Lock)
                .where(Lock.name == LEADER_LOCK, (Lock.until < now) | (Lock.owner == self.owner))
                .values(owner=self.owner, until=until)
                .returning(Lock.name)
            )
        if name is None:
            insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
            with self.db.session() as s:
                # ON CONFLICT: a standby retrying every few seconds must not log a server error each time.
                name = s.scalar(
                    insert(Lock)
                    .values(name=LEADER_LOCK, owner=self.owner, until=until)
                    .on_conflict_do_nothing(index_elements=["name"])
                    .returning(Lock.name)
                )
        self._lease_until = until if name is not None else None
        return name is not None

    @property
    def is_leader(self) -> bool:
        """True while this instance holds an unexpired leader lease."""
        return self._lease_until is not None and self.clock.now() < self._lease_until

    def release(self) -> None:
        """Give up the leader lease (on a clean stop) so a standby takes over at once."""
        with self.db.session() as s:
            s.execute(delete(Lock).where(Lock.name == LEADER_LOCK, Lock.owner == self.owner))
        self._lease_until = None
        self._leading = False

    async def _contend(self) -> None:
        try:
            leading = await asyncio.to_thread(self.try_lead)
        except Exception:
            # The database may be briefly unreachable; the lease runs out on its own and
            # is_leader turns False, so keep trying instead of dying.
            log.exception("scheduler.lease_failed", owner=self.owner)
            return
        if leading and not self._leading:
            log.info("scheduler.leading", owner=self.owner)
            try:
                await asyncio.to_thread(self.catch_up)
            except Exception:
                log.exception("scheduler.catch_up_failed", owner=self.owner)
                return  # retried on the next renewal: _leading stays False
        elif not leading and self._leading:
            log.warning("scheduler.lost_leadership", owner=self.owner)
        elif not leading:
            log.debug("scheduler.standby", owner=self.owner)
        self._leading = leading

    # -- the long-running process ------------------------------------------------------
    async def _fire_due(self, name: str) -> None:
        schedule = self.schedules.get(name)
        if schedule is None or not schedule.enabled:
            return  # removed or switched off by a reload since the job was due
        if not self.is_leader:
            log.info("scheduler.standby_skip", schedule=name, owner=self.owner)
            return
        # APScheduler calls us at (or, within the misfire grace, after) the slot; with
        # coalesce the newest due slot is the one to record. One second of slack for
        # clocks that disagree slightly about "now".
        due = previous_slot(schedule, self.clock.now() + timedelta(seconds=1))
        if due is None:
            return
        try:
            await asyncio.to_thread(self.fire, schedule, due[0])
        except Exception:
            log.exception("scheduler.fire_failed", schedule=name, slot=due[0])

    def build_aps(self) -> AsyncIOScheduler:
        """An AsyncIOScheduler with one in-memory job per enabled schedule (not started)."""
        # Jobs live in memory only: schedules live in our files, and SQLAlchemyJobStore
        # pickles jobs and deletes any it cannot unpickle.
        aps = AsyncIOScheduler(timezone=UTC, jobstores={"default": MemoryJobStore()})
        for schedule in self.enabled_schedules():
            self._add_job(aps, schedule)
        return aps

    def _add_job(self, aps: AsyncIOScheduler, schedule: Schedule) -> None:
        # APScheduler's default grace is 1 s: a nightly job a little late would be dropped.
        aps.add_job(
            self._fire_due,
            trigger=ScheduleTrigger(schedule),
            args=(schedule.name,),
            id=schedule.name,
            name=f"{schedule.robot}:{schedule.name}",
            jobstore="default",
            misfire_grace_time=self.settings.scheduler.misfire_grace_seconds,
            coalesce=True,
            max_instances=1,
        )

    async def serve(self, stop: asyncio.Event) -> None:
        """Lead or stand by, catch up, and fire every enabled schedule until ``stop`` is set."""
        renew_every = self.settings.scheduler.leader_lease_seconds / 3
        reload_every = self.settings.scheduler.reload_seconds
        await self._contend()  # catches up first when this instance leads
        aps = self.build_aps()
        aps.start()
        self.aps = aps
        log.info("scheduler.started", owner=self.owner, schedules=[j.id for j in aps.get_jobs()])
        loop = asyncio.get_running_loop()
        next_renew = loop.time() + renew_every
        next_reload = loop.time() + reload_every
        try:
            while not stop.is_set():
                wait = max(0.0, min(next_renew, next_reload) - loop.time())
                try:
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                except TimeoutError:
                    if loop.time() >= next_reload and self.folder is not None:
                        next_reload = loop.time() + reload_every
                        try:
                            # On the loop itself: APScheduler's jobs are changed from its own thread (a
                            # few small files; reading them is quicker than a thread hop's bookkeeping).
                            self.reload()
                        except Exception:
                            log.exception("scheduler.reload_failed", owner=self.owner)
                    if loop.time() >= next_renew:
                        next_renew = loop.time() + renew_every
                        await self._contend()
        finally:
            if aps.running:
                aps.shutdown(wait=False)
                # AsyncIOScheduler.shutdown only schedules the work on the loop: let it run.
                await asyncio.sleep(0)
            try:
                await asyncio.to_thread(self.release)
            except Exception:
                log.exception("scheduler.release_failed", owner=self.owner)
            log.info("scheduler.stopped", owner=self.owner)


# -- what runs tonight -----------------------------------------------------------------
def schedule_tenants(schedule: Schedule, settings: Settings) -> list[str]:
    """The configured tenants a schedule runs for: ``["*"]`` is every one, in configuration order.

    The one tenant filter: the scheduler records runs for these, ``kollega schedules``
    shows them and ``kollega night`` runs them.
    """
    codes = [t.code for t in settings.tenants]
    if schedule.tenants == ["*"]:
        return codes
    return [code for code in schedule.tenants if code in codes]


def installed_schedules(settings: Settings, registry: Registry) -> list[Schedule]:
    """The schedule files of the deployment, checked against the installed robots and configured tenants."""
    return load_schedules(
        settings.scheduler.schedules_dir, robots=set(registry.robots), tenants={t.code for t in settings.tenants}
    )


def night_jobs(
    settings: Settings, registry: Registry, clock: Clock, tenants: list[str] | None = None
) -> list[tuple[str, str]]:
    """(robot, tenant) pairs of the enabled schedules, in the order they fire in the coming 24 h.

    ``tenants`` narrows the night to those kommunkoder (default: every configured tenant).
    Robots without any schedule come last, so that a night run covers every installed
    robot; a robot whose schedules are all disabled is left out.
    """
    chosen = [t.code for t in settings.tenants] if tenants is None else list(tenants)
    now = clock.now()
    firing: list[tuple[datetime, str, str]] = []
    switched_off: set[str] = set()
    for schedule in installed_schedules(settings, registry):
        if not schedule.enabled:
            switched_off.add(schedule.robot)
            continue
        upcoming = next_slots(schedule, now, 1)
        when = upcoming[0][1] if upcoming else now + timedelta(days=365)
        firing += [(when, schedule.robot, t) for t in schedule_tenants(schedule, settings) if t in chosen]
    jobs: list[tuple[str, str]] = []
    for _when, robot, tenant in sorted(firing, key=lambda f: f[0]):
        if robot in registry.robots and (robot, tenant) not in jobs:
            jobs.append((robot, tenant))
    scheduled = {robot for robot, _tenant in jobs} | switched_off
    jobs += [(robot, t) for robot in sorted(registry.robots) if robot not in scheduled for t in chosen]
    return jobs
