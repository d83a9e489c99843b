"""HaRry: registers every approved schedule in the payroll system through its user interface.

Every night HaRry collects the schedules managers approved (scheduling API and/or CSV
exports in a drop folder) and registers each, day by day, in the payroll system
("PersonalLön"), which has no write API: in a real browser, by label and role, reading
what is registered first and reading it back after saving. What the payroll system
refuses goes to HR as an exception in plain Swedish with a screenshot; what it shows
differently from the approved schedule goes to HR's queue ``harry.deviation``.

Exactly once: HaRry declares its writes unsafe to repeat blindly
(``side_effects_repeatable = False``); a retried item first reads what is registered, and
an item whose worker died mid-write becomes ``uncertain``: at the start of the next run
:meth:`Harry.recheck` reads what PersonalLön shows and settles it when the approved schedule
is registered; otherwise it stays with a person (see docs/robots/harry.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import connector_section, one_municipality_setting, require_section, validate_settings
from connectors.browser import BrowserConnector, BrowserSettings, LoginHelper, url_contains
from connectors.files import DropFolderSettings
from connectors.http import HttpConnector
from core.api import (
    BusinessError,
    Carried,
    ConfigError,
    Done,
    EffectFacts,
    Measured,
    NewItem,
    Outcome,
    ReviewView,
    Robot,
    RunContext,
    SecretRef,
    WorkItemView,
)
from robots.harry.effects import EFFECTS, measure
from robots.harry.lanes import BrowserLanes
from robots.harry.pages import LoginPage
from robots.harry.registration import DEVIATION_QUEUE, PURPOSE, Registration
from robots.harry.schedule import Schedule, content_hash, problems
from robots.harry.sources import from_api, from_drop_folder_async

if TYPE_CHECKING:
    import typer

LANES_KEY = "harry:lanes"


class HarrySettings(BaseModel):
    """The section ``[robots.harry]``."""

    model_config = ConfigDict(extra="forbid")

    api_system: str | None = Field(
        default="scheduling",
        description="The scheduling system's API: the connector section [connectors.<name>] to use; "
        "empty = do not read the API (exports only).",
    )
    periods: list[str] = Field(
        default_factory=list, description="Periods (YYYY-MM) to collect from the API; empty = every period."
    )
    lookback_days: int | None = Field(
        default=None, ge=1, description="Only schedules approved in the last N days (API); empty = all approved."
    )
    drop_folder: DropFolderSettings | None = Field(
        default=None, description="Drop folder of the scheduling system's CSV exports; empty = no exports."
    )
    payroll_url: str | None = Field(
        default=None,
        description="Base URL of the payroll application, for a deployment of one municipality; "
        "empty = the base_url of the municipality's connectors.payroll.",
    )
    username: str = Field(default="robot.harry", description="HaRry's user name in the payroll system.")
    password: SecretRef = Field(description='HaRry\'s password, by reference: {env = "NAME"} or {file = "/path"}.')
    contexts: int = Field(
        default=3, ge=1, le=16, description="Browser contexts working in parallel (each its own session)."
    )
    items_per_context: int = Field(
        default=40, ge=1, description="Items a browser context serves before it is replaced (memory)."
    )
    typed_entry: bool = Field(
        default=False,
        description="Type each form field through the browser one by one (slower; for forms "
        "whose scripts react to typing) instead of setting them by label at once.",
    )
    browser_system: str = Field(
        default="browser", description="The [connectors.<name>] section with the browser settings."
    )


class Harry(Robot[HarrySettings]):
    """Registers approved schedules in the payroll system, verified, exactly once."""

    name = "harry"
    display_name = "HaRry"
    description = (
        "Registers every approved schedule in the payroll system through its web pages, day by day, "
        "and verifies it by reading it back."
    )
    effects = EFFECTS

    @classmethod
    def measure_effects(cls, facts: EffectFacts) -> Measured:
        """HaRry's figures for one month (robots/harry/effects.py)."""
        return measure(facts)

    review_template = "robots.harry:templates/review.html"
    # The template says what happened and what to do when a step failed or may have happened.
    review_template_kinds = frozenset({"decision", "exception", "uncertain"})
    queue_labels = {DEVIATION_QUEUE: "avvikelser i lönesystemet"}
    messages = {"en": {"avvikelser i lönesystemet": "differences in the payroll system"}}
    side_effects_repeatable = False

    def __init__(self, settings: HarrySettings | None = None) -> None:
        super().__init__(settings)
        # Two versions of one employee's period must never be typed into the payroll system at
        # once: in this process by these locks, across workers and runs by ctx.exclusive.
        self._period_locks: dict[str, asyncio.Lock] = {}

    @property
    def config(self) -> HarrySettings:
        """The validated settings."""
        return self.settings

    # -- collect -------------------------------------------------------------------------
    async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]:
        """Approved schedules from the API and the drop folder, each version once."""
        s = self.config
        if s.api_system is None and s.drop_folder is None:
            raise ConfigError("robots.harry: neither api_system nor drop_folder is set: HaRry has nowhere to look")
        # The municipality's payroll system must be declared before anything is collected:
        # a missing section fails the run at once, naming it, instead of every item later.
        self._payroll_url(ctx)
        seen: set[str] = set()
        if s.api_system:
            async for item in from_api(ctx, s.api_system, s.periods, s.lookback_days):
                if item.reference not in seen:
                    seen.add(item.reference)
                    yield item
        if s.drop_folder is not None:
            async for item in from_drop_folder_async(s.drop_folder, dry_run=ctx.dry_run):
                if item.reference not in seen:
                    seen.add(item.reference)
                    yield item

    # -- process -------------------------------------------------------------------------
    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        """Register one schedule version (see robots/harry/registration.py for the steps)."""
        kind = item.payload.get("kind")
        if kind in ("invalid", "invalid_file"):
            raise BusinessError(invalid_message(item.payload), code="export_invalid")
        schedule = await self._schedule(ctx, item)
        if schedule is None:
            return Done(
                {
                    "outcome": "superseded",
                    "verified": False,
                    "employee_id": item.payload.get("employee_id"),
                    "period": item.payload.get("period"),
                    "version": item.payload.get("version"),
                }
            )
        found = problems(schedule)
        if found:
            what = schedule.what()
            raise BusinessError(
                f"{what[0].upper()}{what[1:]} kan inte registreras i PersonalLön: " + " ".join(found[:5]),
                code="schedule_unfit",
            )
        lock = self._period_locks.setdefault(f"{schedule.employee_id}/{schedule.period}", asyncio.Lock())
        async with lock, ctx.exclusive(self._target(ctx, schedule)):
            lanes = BrowserLanes.for_run(ctx, LANES_KEY, lambda: self._lanes(ctx))
            async with lanes.page(item.id or None) as (lane, page):
                registration = Registration(
                    ctx,
                    item,
                    schedule,
                    self._payroll_url(ctx),
                    find_timeout_seconds=lanes.browser.settings.find_timeout_seconds,
                    typed_entry=self.config.typed_entry,
                )
                return await registration.run(lane, page)

    async def recheck(self, ctx: RunContext, item: WorkItemView) -> Done | None:
        """Re-check an uncertain item in the browser, reading only: the approved schedule shown → Done.

        Anything else (nothing or something different registered, a superseded version, a
        schedule HaRry would refuse) is None: the item stays with a person, nothing is typed.
        """
        if item.payload.get("kind") in ("invalid", "invalid_file"):
            return None
        schedule = await self._schedule(ctx, item)
        if schedule is None or problems(schedule):
            return None
        lock = self._period_locks.setdefault(f"{schedule.employee_id}/{schedule.period}", asyncio.Lock())
        async with lock, ctx.exclusive(self._target(ctx, schedule)):
            lanes = BrowserLanes.for_run(ctx, LANES_KEY, lambda: self._lanes(ctx))
            async with lanes.page(item.id or None) as (lane, page):
                registration = Registration(
                    ctx,
                    item,
                    schedule,
                    self._payroll_url(ctx),
                    find_timeout_seconds=lanes.browser.settings.find_timeout_seconds,
                )
                return await registration.check(lane, page)

    async def _schedule(self, ctx: RunContext, item: WorkItemView) -> Schedule | None:
        """The schedule with its rows: from the payload (exports) or fetched from the API; None if superseded."""
        payload = item.payload
        if payload.get("rows") is not None:
            return Schedule.from_payload(payload)
        system = self.config.api_system
        if not system:
            raise ConfigError("robots.harry.api_system is empty, but this item must be fetched from the API")
        api = HttpConnector.for_run(ctx, system)
        kwargs: dict[str, Any] = {"subject": item.subject, "purpose": PURPOSE} if item.subject else {}
        data = await api.get_json(f"schedules/{payload['schedule_id']}", **kwargs)
        if data.get("status") != "approved":
            return None  # a newer version replaced it: that version is its own item
        if data.get("content_hash") != payload.get("content_hash"):
            return None  # changed since it was listed: the changed content is collected as its own item
        schedule = Schedule.from_payload({**data, "source": "api"})
        if content_hash(schedule.rows) != schedule.digest:
            ctx.log.warning(
                "the scheduling system's content hash differs from HaRry's; "
                "the same schedule from a CSV export would be a second (harmless) item"
            )
        return schedule

    def _target(self, ctx: RunContext, schedule: Schedule) -> str:
        """The lock key of one employee's period in the payroll system, by the system's address.

        Keyed by the address, not the municipality: two municipalities sharing one payroll
        system (or configured, by mistake, onto the same one) meet the same lock.
        """
        return f"payroll:{self._payroll_url(ctx)}:{schedule.employee_id}:{schedule.period}"

    def _payroll_url(self, ctx: RunContext) -> str:
        if self.config.payroll_url:
            one_municipality_setting(ctx, "robots.harry.payroll_url")
            url: Any = self.config.payroll_url
        else:  # the municipality's own payroll system, or one declared shared with it
            url = require_section(ctx, "payroll").get("base_url")
        if not url:
            raise ConfigError("robots.harry.payroll_url is empty and connectors.payroll has no base_url")
        return str(url).rstrip("/")

    def _lanes(self, ctx: RunContext) -> BrowserLanes:
        s = self.config
        section = connector_section(ctx, s.browser_system) or {}
        browser = BrowserConnector(ctx, validate_settings(BrowserSettings, section, s.browser_system))
        base_url = self._payroll_url(ctx)
        login_path = urlparse(base_url).path.rstrip("/") + "/login"

        def make_login() -> LoginHelper:
            async def log_in(page: Any) -> None:
                await LoginPage(
                    page, base_url=base_url, ctx=ctx, find_timeout_seconds=browser.settings.find_timeout_seconds
                ).log_in(s.username, s.password.resolve())

            return LoginHelper(log_in, url_contains(login_path), system="payroll")

        return BrowserLanes(ctx, browser, size=s.contexts, items_per_lane=s.items_per_context, make_login=make_login)

    # -- decisions -----------------------------------------------------------------------
    async def on_decision(self, ctx: RunContext, review: ReviewView) -> Carried | None:
        """Carry out HR's decision on a deviation: registered by hand, rejected, or try again.

        approve = "registrerat för hand": HR has registered or corrected the schedule by hand;
        reject = the schedule is not to be registered by HaRry; return = "försök igen": the
        kernel puts the item back in the queue and HaRry checks and registers it again.
        """
        if review.queue != DEVIATION_QUEUE:
            return None
        action = {
            "approved": "harry.registered_by_hand",
            "rejected": "harry.registration_rejected",
            "returned": "harry.retry_requested",
        }.get(review.state)
        if action is None:
            return None
        material = review.material
        await asyncio.to_thread(
            ctx.record,
            action,
            subject=review.subject,
            purpose=PURPOSE,
            details={
                "review_id": review.id,
                "work_item_id": review.work_item_id,
                "decided_by": review.decided_by,
                "reference": material.get("reference"),
                "employee_id": material.get("employee_id"),
                "period": material.get("period"),
                "version": material.get("version"),
            },
        )
        what = f"Schemat för {material.get('employee_id')}, period {material.get('period')}"
        return Carried(
            {
                "approved": f"{what} är noterat som registrerat för hand i lönesystemet.",
                "rejected": f"{what} registreras inte, enligt ditt beslut.",
                "returned": f"{what} är tillbaka i HaRrys kö och registreras på nytt vid nästa körning.",
            }[review.state]
        )

    def cli(self) -> typer.Typer | None:
        """``kollega harry check-export FILE``: what HaRry would make of an export file."""
        from robots.harry.commands import build_cli

        return build_cli()


def invalid_message(payload: dict[str, Any]) -> str:
    """The Swedish message for a schedule (or file) from an export that cannot be registered."""
    shown = "; ".join(payload.get("problems", [])[:8])
    more = len(payload.get("problems", [])) - 8
    tail = f" (och {more} fel till)" if more > 0 else ""
    if payload.get("kind") == "invalid_file":
        return (
            f"Exportfilen {payload.get('file')} kunde inte läsas: {shown}{tail}. Ta en ny export från schemasystemet."
        )
    return (
        f"Schemat för {payload.get('employee_id')}, period {payload.get('period')} (version "
        f"{payload.get('version')}) i exportfilen {payload.get('file')} har fel och registreras inte: "
        f"{shown}{tail}. Rätta schemat i schemasystemet och exportera det igen."
    )
