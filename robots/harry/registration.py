"""Registering one approved schedule in the payroll system: check, write, read back, compare.

One pass (repeated once from the start by :class:`~connectors.browser.LoginHelper` when the
session turns out to have expired)::

    search the employee → open the period → read what is registered
        identical            → Done (nothing written)
        different or empty   → fill the form, "Spara", read back, compare field by field
                                   identical → Done (verified)
                                   different → NeedsReview("harry.deviation") with both and a screenshot

:meth:`Registration.check` is the same pass without the write (re-checking an uncertain
item): identical → Done, anything else → None, nothing typed.

A save is never repeated within an item: when a pass after a save finds a difference, that
is a deviation for HR, not a reason to type again. Across attempts the check-before-write
makes a retried item safe: what is already registered is never entered again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from connectors.base import record_access, record_write
from core.api import Done, NeedsReview, Outcome, RunContext, WorkItemView
from robots.harry.lanes import Lane
from robots.harry.pages import RegisteredPage, SearchPage
from robots.harry.schedule import Difference, Row, Schedule, compare, form_values, side_by_side, summary_of

#: The review queue for schedules the payroll system shows differently from how they were approved.
DEVIATION_QUEUE = "harry.deviation"
#: Why HaRry reads an employee's schedule (the access log's purpose).
PURPOSE = "registrering av godkänt schema i lönesystemet"


@dataclass
class Registration:
    """The registration of one schedule version, for one work item."""

    ctx: RunContext
    item: WorkItemView
    schedule: Schedule
    base_url: str
    find_timeout_seconds: float = 5
    typed_entry: bool = False
    #: The payroll system's number for our save, once saved (never saved twice in one item).
    saved_as: str | None = None
    fields_changed: int = 0
    passes: int = 0
    employee_name: str = ""
    _access_recorded: bool = False

    async def run(self, lane: Lane, page: Page) -> Outcome:
        """Log the lane in if needed, then register, logging in again (once) if the session expires."""
        if not lane.logged_in:
            await lane.login.log_in(page)
            lane.logged_in = True
        before = lane.login.logins
        outcome = await lane.login.run(page, self._pass)
        if isinstance(outcome, Done):
            outcome.result["relogins"] = lane.login.logins - before
        return outcome

    async def check(self, lane: Lane, page: Page) -> Done | None:
        """Read only: Done when the payroll system shows exactly the approved schedule, else None."""
        if not lane.logged_in:
            await lane.login.log_in(page)
            lane.logged_in = True
        return await lane.login.run(page, self._check_pass)

    # -- one pass ------------------------------------------------------------------------
    async def _read_registered(self, page: Page) -> tuple[RegisteredPage, list[Row]]:
        """Search the employee, open the period and read what is registered (audited as an access)."""
        s = self.schedule
        options: dict[str, Any] = {
            "base_url": self.base_url,
            "ctx": self.ctx,
            "find_timeout_seconds": self.find_timeout_seconds,
        }
        search = SearchPage(page, **options)
        await search.open()
        employee = await search.find(s.employee_id)
        self.employee_name = await employee.name()
        registered = await employee.open_registered(s.first, s.last)
        shown = await registered.rows(s.first, s.last)
        await self._record_access()
        return registered, shown

    async def _check_pass(self, page: Page) -> Done | None:
        self.passes += 1
        _registered, shown = await self._read_registered(page)
        if compare(self.schedule.rows, shown):
            return None  # missing or different: a person decides (or sends it back to be registered)
        return self._done("already_registered", rechecked=True)

    async def _pass(self, page: Page) -> Outcome:
        self.passes += 1
        s = self.schedule
        registered, shown = await self._read_registered(page)
        differences = compare(s.rows, shown)
        if not differences:
            return self._done("registered" if self.saved_as else "already_registered")
        if self.saved_as is not None:
            # Saved in an earlier pass (the session expired before the read-back): a person decides.
            return await self._deviation(page, shown, differences)
        form = await registered.open_form(s.first, s.last)
        self.fields_changed = await form.fill_schedule(form_values(s), typed=self.typed_entry)
        saved = await form.save(what=f"schema {s.employee_id} {s.period} version {s.version}")
        self.saved_as = await saved.registration() or "okänt registreringsnummer"
        await record_write(
            self.ctx,
            system="payroll",
            what=f"schema {s.employee_id} {s.period} version {s.version}",
            subject=self.item.subject,
            purpose=PURPOSE,
            details={
                "reference": self.item.reference,
                "registration": self.saved_as,
                "rows": len(s.rows),
                "fields_changed": self.fields_changed,
            },
        )
        readback = await self.read_back(saved)
        shown = await readback.rows(s.first, s.last)
        differences = compare(s.rows, shown)
        if not differences:
            return self._done("registered")
        return await self._deviation(page, shown, differences)

    async def read_back(self, saved: Any) -> RegisteredPage:
        """Open what was registered after the save (the verification step)."""
        page: RegisteredPage = await saved.open_registered()
        return page

    async def _record_access(self) -> None:
        if self._access_recorded or not self.item.subject or self.item.id == 0:
            return
        self._access_recorded = True
        await record_access(
            self.ctx,
            subject=self.item.subject,
            system="payroll",
            purpose=PURPOSE,
            details={"reference": self.item.reference},
        )

    # -- outcomes ------------------------------------------------------------------------
    def _done(self, outcome: str, *, rechecked: bool = False) -> Done:
        s = self.schedule
        return Done(
            {
                "outcome": outcome,
                "verified": True,
                "employee_id": s.employee_id,
                "period": s.period,
                "version": s.version,
                "rows": len(s.rows),
                "registration": self.saved_as,
                "fields_changed": self.fields_changed,
                "source": s.source,
                "rechecked": rechecked or self.item.return_comment is not None,
            }
        )

    async def _deviation(self, page: Page, shown: list[Row], differences: list[Difference]) -> NeedsReview:
        s = self.schedule
        artifact = await self._screenshot(page)
        material = {
            "reference": self.item.reference,
            "employee_id": s.employee_id,
            "employee_name": self.employee_name,
            "period": s.period,
            "period_from": s.first.isoformat(),
            "period_to": s.last.isoformat(),
            "version": s.version,
            "schedule_id": s.schedule_id,
            "source": s.source,
            "approved_at": s.approved_at,
            "registration": self.saved_as,
            "expected": [r.as_dict() for r in s.rows],
            "shown": [r.as_dict() for r in shown],
            "differences": [d.as_dict() for d in differences],
            "lines": side_by_side(s.rows, shown),
            "screenshot_artifact_id": artifact,
        }
        return NeedsReview(
            queue=DEVIATION_QUEUE,
            title=f"Schemat för {s.employee_id} ({s.period}, version {s.version}) stämmer inte i PersonalLön",
            summary=summary_of(differences),
            material=material,
            subject=self.item.subject,
        )

    async def _screenshot(self, page: Page) -> int | None:
        try:
            data = await page.screenshot(full_page=True)
        except PlaywrightError:
            return None
        return await asyncio.to_thread(
            self.ctx.save_artifact,
            work_item_id=self.item.id or None,
            kind="screenshot",
            filename="avvikelse.png",
            content_type="image/png",
            data=data,
            sensitive=True,
        )
