"""Page objects for the payroll system ("PersonalLön"), driven as a person would: by label and role.

Every field is found by its label and every button or link by its role and name, never by
id, class or position, so a changed layout (other ids, classes, order) changes nothing; a
label that is missing or ambiguous is a :class:`PageLayoutError` naming it, raised before
anything is typed. Each navigation's answer is checked:

    5xx / 429              ConnectorUnavailable (retried; a GET is first reloaded a few times,
                           unless the server asks for a long wait, e.g. a maintenance page)
    the login page         SessionExpired (LoginHelper logs in again, once, and repeats)
    403 / 404 / other      ConnectorError (retried, then a person)

What the payroll system refuses is a :class:`~core.errors.BusinessError` in plain Swedish:
employee not found, locked period, the form's validation messages (overlapping rows,
unknown activity code …).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, ClassVar, TypeVar

from playwright.async_api import ElementHandle, Locator, Page, Response
from playwright.async_api import Error as PlaywrightError

from connectors.browser import PageLayoutError, PageObject, translate
from core.api import BusinessError, ConnectorAuthError, ConnectorContext, ConnectorError, ConnectorUnavailable
from robots.harry.schedule import FORM_LABELS, Row, changed_fields

SYSTEM = "payroll"
#: A server asking to wait longer than this (Retry-After) is not reloaded at once: the item is retried later.
RELOAD_MAX_RETRY_AFTER = 5

# Text the payroll application shows (Swedish UI, the labels and headings it promises to keep).
SEARCH_LABEL = "Anställningsnummer eller namn"
NO_MATCH = "Ingen anställd matchar sökningen"
FROM_LABEL, TO_LABEL = "Från och med", "Till och med"
REGISTERED_HEADING, FORM_HEADING, SAVED_HEADING = "Registrerat schema", "Registrera schema", "Schemat är sparat"
NOT_SAVED_HEADING = "Schemat kunde inte sparas"
EMPTY_NOTICE = "Inget schema är registrerat för perioden"
LOCKED_NOTICE = "Perioden är låst"
COLUMNS = {
    "Datum": "date",
    "Starttid": "start",
    "Sluttid": "end",
    "Rast (minuter)": "break_minutes",
    "Aktivitetskod": "activity_code",
}

_TABLE_JS = """(table) => ({
  headers: Array.from(table.querySelectorAll('thead th')).map(th => th.textContent.replace(/\\s+/g, ' ').trim()),
  rows: Array.from(table.querySelectorAll('tbody tr')).map(tr =>
    Array.from(tr.querySelectorAll('td, th')).map(td => td.textContent.replace(/\\s+/g, ' ').trim())),
})"""

# Every labelled form control: its label (a <label> or aria-label), value, and a select's options.
_LABELS_JS = """(form) => {
  const out = [];
  const norm = (s) => (s || '').replace(/\\s+/g, ' ').trim();
  const describe = (label, el) => out.push({
    label, value: el ? el.value : null, tag: el ? el.tagName.toLowerCase() : null,
    options: el && el.tagName === 'SELECT' ? Array.from(el.options).map(o => o.value) : null});
  for (const l of form.querySelectorAll('label')) describe(norm(l.textContent), l.control);
  for (const el of form.querySelectorAll('[aria-label]')) describe(norm(el.getAttribute('aria-label')), el);
  return out;
}"""


# Put values into labelled controls (each label already checked to name exactly one control).
_ENTER_JS = """(form, values) => {
  const norm = (s) => (s || '').replace(/\\s+/g, ' ').trim();
  const controls = new Map();
  const add = (label, el) => { if (!el) return; if (!controls.has(label)) controls.set(label, []); controls.get(label).push(el); };
  for (const l of form.querySelectorAll('label')) add(norm(l.textContent), l.control);
  for (const el of form.querySelectorAll('[aria-label]')) add(norm(el.getAttribute('aria-label')), el);
  for (const label of Object.keys(values)) {
    if ((controls.get(label) || []).length !== 1) return label;
  }
  for (const [label, value] of Object.entries(values)) {
    const el = controls.get(label)[0];
    el.value = value;
    el.dispatchEvent(new Event('input', {bubbles: true}));
    el.dispatchEvent(new Event('change', {bubbles: true}));
  }
  return null;
}"""


class SessionExpired(ConnectorError):
    """The payroll system shows its login page: the session has expired."""

    code = "session_expired"


class LoginRefused(ConnectorAuthError):
    """PersonalLön refused HaRry's user name or password."""

    code = "login_refused"
    retryable = False  # the same credentials will be refused again: operations must fix them


class EmployeeNotFound(BusinessError):
    """The employee does not exist in PersonalLön."""

    code = "employee_not_found"


class PeriodLocked(BusinessError):
    """The period is locked in PersonalLön (its pay has been calculated)."""

    code = "period_locked"


class ScheduleRefused(BusinessError):
    """PersonalLön refused the schedule (its validation messages say why)."""

    code = "schedule_refused"


P = TypeVar("P", bound="PayrollPage")


class PayrollPage(PageObject):
    """Base of the payroll pages: checked navigation, headings, alerts."""

    system = SYSTEM
    #: The page's main heading (level 1), checked after arriving.
    heading: ClassVar[str] = ""

    def __init__(
        self,
        page: Page,
        *,
        base_url: str,
        ctx: ConnectorContext | None = None,
        find_timeout_seconds: float = 5,
        reload_retries: int = 2,
    ) -> None:
        super().__init__(page, base_url=base_url, ctx=ctx, find_timeout_seconds=find_timeout_seconds)
        self.reload_retries = reload_retries

    def _kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "ctx": self.ctx,
            "find_timeout_seconds": self.find_timeout_ms / 1000,
            "reload_retries": self.reload_retries,
        }

    def then(self, cls: type[P]) -> P:
        """The page object for the page the browser is on now."""
        return cls(self.page, **self._kwargs())

    # -- navigation ----------------------------------------------------------------------
    def on_login_page(self) -> bool:
        """Whether the browser shows the login page (the session is gone)."""
        return "/login" in self.page.url.split("?")[0]

    def _problem(
        self, response: Response | None, doing: str, ok: frozenset[int], login_ok: bool
    ) -> ConnectorError | None:
        if not login_ok and self.on_login_page():
            return SessionExpired(f"payroll: the session had expired ({doing})")
        status = response.status if response is not None else 200
        if status in ok or (200 <= status < 300 and 200 in ok):
            return None
        if status >= 500 or status == 429:
            retry_after = response.headers.get("retry-after") if response is not None else None
            details = {"retry_after": int(retry_after)} if retry_after and retry_after.isdigit() else {}
            return ConnectorUnavailable(f"payroll: {doing} answered {status}", code="payroll_unavailable", **details)
        return ConnectorError(f"payroll: {doing} answered {status}", code=f"payroll_{status}")

    async def _navigate(
        self,
        action: Callable[[], Awaitable[Response | None]],
        doing: str,
        *,
        ok: frozenset[int] = frozenset({200}),
        login_ok: bool = False,
    ) -> Response | None:
        """Run ``action`` (which navigates), check the answer; a failed GET is reloaded a few times."""
        for attempt in range(self.reload_retries + 1):
            try:
                response = await (action() if attempt == 0 else self.page.reload())
            except PlaywrightError as exc:
                raise translate(exc, doing) from exc
            problem = self._problem(response, doing, ok, login_ok)
            if problem is None:
                return response
            retry_after = problem.details.get("retry_after", 0)
            reloadable = (
                isinstance(problem, ConnectorUnavailable)
                and retry_after <= RELOAD_MAX_RETRY_AFTER
                and response is not None
                and response.request.method == "GET"
            )
            if not reloadable or attempt == self.reload_retries:
                raise problem
            await asyncio.sleep(0.25 * 2**attempt)
        raise AssertionError("unreachable")

    async def goto(self, path: str, doing: str, *, login_ok: bool = False) -> None:
        """Open ``path`` below the application's base URL."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        await self._navigate(lambda: self.page.goto(url), doing, login_ok=login_ok)

    async def follow(
        self, locator: Locator, doing: str, *, ok: frozenset[int] = frozenset({200}), login_ok: bool = False
    ) -> Response | None:
        """Click a link or button that loads a new page, and check that page's answer."""

        async def click() -> Response | None:
            async with self.page.expect_navigation() as navigation:
                await locator.click()
            return await navigation.value

        return await self._navigate(click, doing, ok=ok, login_ok=login_ok)

    async def arrived(self) -> None:
        """Check this is the expected page: its level-1 heading is there (else PageLayoutError)."""
        if self.heading:
            await self.require(
                self.page.get_by_role("heading", level=1, name=self.heading, exact=True), f"heading {self.heading!r}"
            )

    async def alert_texts(self) -> list[str]:
        """The texts of the page's alerts (error messages)."""
        return [t for t in await self.texts("alert") if t]

    async def visible_count(self, locator: Locator) -> int:
        """How many elements match, without waiting (the page has loaded)."""
        try:
            return await locator.count()
        except PlaywrightError as exc:
            raise translate(exc, "reading the page") from exc


class LoginPage(PayrollPage):
    """``/login``: user name, password, "Logga in"."""

    path = "/login"
    heading = "Logga in"

    async def log_in(self, username: str, password: str) -> None:
        """Log in; LoginRefused when the application says the credentials are wrong.

        Logging in twice does no harm, so a failed answer is tried again (twice) first.
        """
        for attempt in range(self.reload_retries + 1):
            try:
                await self._log_in_once(username, password)
                return
            except ConnectorUnavailable as exc:
                if attempt == self.reload_retries or exc.details.get("retry_after", 0) > RELOAD_MAX_RETRY_AFTER:
                    raise
                await asyncio.sleep(0.25 * 2**attempt)

    async def _log_in_once(self, username: str, password: str) -> None:
        await self.goto(self.path, "opening the login page", login_ok=True)
        await self.arrived()
        await self.fill("Användarnamn", username)
        await self.fill("Lösenord", password)
        await self.follow(await self.button("Logga in"), "logging in", login_ok=True)
        if self.on_login_page():
            said = " ".join(await self.alert_texts()) or "ingen förklaring"
            raise LoginRefused(f"PersonalLön nekade inloggningen för {username}: {said}")


class SearchPage(PayrollPage):
    """``/search``: "Sök anställd" by employee number; results as a table with a link on the name."""

    path = "/search"
    heading = "Sök anställd"

    async def open(self) -> None:
        """Open the search page (as from the menu)."""
        await self.goto(self.path, "opening the search page")
        await self.arrived()

    async def find(self, employee_id: str) -> EmployeePage:
        """Search for the employee number and open that employee; EmployeeNotFound when there is none.

        The search is a read: a failed answer is searched again (twice) before giving up.
        """
        for attempt in range(self.reload_retries + 1):
            try:
                return await self._find_once(employee_id)
            except ConnectorUnavailable as exc:
                if attempt == self.reload_retries or exc.details.get("retry_after", 0) > RELOAD_MAX_RETRY_AFTER:
                    raise
                await asyncio.sleep(0.25 * 2**attempt)
                await self.open()
        raise AssertionError("unreachable")

    async def _find_once(self, employee_id: str) -> EmployeePage:
        await self.fill(SEARCH_LABEL, employee_id)
        await self.follow(await self.button("Sök"), "searching for the employee")
        await self.arrived()
        if await self.visible_count(self.page.get_by_role("status").filter(has_text=NO_MATCH)):
            raise EmployeeNotFound(f"Den anställda {employee_id} finns inte i PersonalLön (sökningen gav ingen träff).")
        table = await self.require(
            self.page.get_by_role("table", name=re.compile(r"^Sökresultat")), "the search results table"
        )
        rows = table.get_by_role("row").filter(has=self.page.get_by_role("cell", name=employee_id, exact=True))
        count = await self.visible_count(rows)
        if count == 0:
            raise EmployeeNotFound(
                f"Den anställda {employee_id} finns inte i PersonalLön "
                "(inget sökresultat har exakt det anställningsnumret)."
            )
        if count > 1:
            raise BusinessError(
                f"PersonalLön har {count} anställda med anställningsnummer {employee_id}; "
                "HaRry kan inte veta vem schemat gäller.",
                code="employee_ambiguous",
            )
        link = await self.require(rows.get_by_role("link"), "the link to the employee")
        await self.follow(link, "opening the employee")
        employee = self.then(EmployeePage)
        await employee.arrived()
        return employee


class EmployeePage(PayrollPage):
    """The employee's page: "Från och med", "Till och med", "Registrera schema", "Visa registrerat"."""

    async def arrived(self) -> None:
        """The period form is there."""
        await self.field(FROM_LABEL)

    async def name(self) -> str:
        """The employee's name (the page's heading)."""
        heading = await self.require(self.page.get_by_role("heading", level=1), "the employee's name")
        try:
            return (await heading.inner_text()).strip()
        except PlaywrightError as exc:
            raise translate(exc, "reading the employee's name") from exc

    async def _choose_period(self, first: date, last: date, button: str, doing: str) -> None:
        await self.fill(FROM_LABEL, first.isoformat())
        await self.fill(TO_LABEL, last.isoformat())
        response = await self.follow(await self.button(button), doing, ok=frozenset({200, 422}))
        if response is not None and response.status == 422:
            said = " ".join(await self.alert_texts()) or "okänt fel"
            raise BusinessError(f"PersonalLön godtog inte perioden {first}–{last}: {said}", code="period_refused")

    async def open_registered(self, first: date, last: date) -> RegisteredPage:
        """ "Visa registrerat" for the period."""
        await self._choose_period(first, last, "Visa registrerat", "opening what is registered")
        page = self.then(RegisteredPage)
        await page.arrived()
        return page


class RegisteredPage(PayrollPage):
    """ "Registrerat schema": a table (Datum, Starttid, Sluttid, Rast (minuter), Aktivitetskod …) or a notice."""

    heading = REGISTERED_HEADING

    async def rows(self, first: date, last: date) -> list[Row]:
        """What is registered for the period (empty list when nothing is)."""
        name = re.compile(rf"^{REGISTERED_HEADING} {first.isoformat()}\s*–\s*{last.isoformat()}$")
        table = self.page.get_by_role("table", name=name)
        found = await self.visible_count(table)
        if found == 0:
            empty = self.page.get_by_role("status").filter(has_text=EMPTY_NOTICE)
            if await self.visible_count(empty) == 1:
                return []
            raise PageLayoutError(
                f"payroll: neither a table {REGISTERED_HEADING!r} for {first}–{last} nor the "
                f"notice {EMPTY_NOTICE!r} on {self.where()}",
                what="registered table",
            )
        if found > 1:
            raise PageLayoutError(
                f"payroll: {found} tables {REGISTERED_HEADING!r} on {self.where()}", what="registered table"
            )
        try:
            data = await table.evaluate(_TABLE_JS)
        except PlaywrightError as exc:
            raise translate(exc, "reading the registered schedule") from exc
        return parse_table(data["headers"], data["rows"], where=self.where())

    async def open_form(self, first: date, last: date) -> ScheduleForm:
        """Follow "Registrera schema för perioden" to the registration form."""
        await self.follow(await self.link("Registrera schema för perioden"), "opening the registration form")
        form = self.then(ScheduleForm)
        await form.arrived()
        await form.check_period(first, last)
        return form


def parse_table(headers: list[str], cells: list[list[str]], *, where: str = "") -> list[Row]:
    """Registered rows from the table's header texts and cell texts; PageLayoutError if a column is missing."""
    index = {}
    for title, name in COLUMNS.items():
        if headers.count(title) != 1:
            raise PageLayoutError(
                f"payroll: the registered table has {headers.count(title)} columns {title!r} on {where}",
                what=f"column {title!r}",
            )
        index[name] = headers.index(title)
    rows = []
    for line in cells:
        try:
            rows.append(
                Row(
                    date.fromisoformat(line[index["date"]]),
                    line[index["start"]],
                    line[index["end"]],
                    int(line[index["break_minutes"]]),
                    line[index["activity_code"]],
                )
            )
        except (IndexError, ValueError) as exc:
            raise PageLayoutError(
                f"payroll: a registered row cannot be read on {where}", what="registered row"
            ) from exc
    return rows


class ScheduleForm(PayrollPage):
    """ "Registrera schema": per day and row the fields "Starttid D rad N" … and the button "Spara"."""

    heading = FORM_HEADING
    _form: ElementHandle | None = None

    async def check_period(self, first: date, last: date) -> None:
        """The form is for this period ("Schemarader <from> – <to>"); refused when the period is locked."""
        name = re.compile(rf"^Schemarader {first.isoformat()}\s*–\s*{last.isoformat()}$")
        await self.require(self.page.get_by_role("table", name=name), f"the form's rows for {first}–{last}")
        locked = [t for t in await self.alert_texts() if LOCKED_NOTICE in t]
        if locked:
            raise PeriodLocked(f"Perioden {first}–{last} är låst i PersonalLön och kan inte ändras: {locked[0]}")

    async def form(self) -> ElementHandle:
        """The one form with the button "Spara" (found once per page: role queries on a big form cost time)."""
        if self._form is None:
            save = await self.button("Spara")
            form = await self.require(save.locator("xpath=ancestor::form[1]"), "the registration form")
            try:
                self._form = await form.element_handle()
            except PlaywrightError as exc:
                raise translate(exc, "finding the registration form") from exc
        return self._form

    async def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every labelled control of the form by label (a list: more than one means ambiguous)."""
        form = await self.form()
        try:
            found = await form.evaluate(_LABELS_JS)
        except PlaywrightError as exc:
            raise translate(exc, "reading the registration form") from exc
        by_label: dict[str, list[dict[str, Any]]] = {}
        for entry in found:
            by_label.setdefault(entry["label"], []).append(entry)
        return by_label

    async def fill_schedule(self, values: dict[str, str], *, typed: bool = False) -> int:
        """Put ``values`` (by label) into the form; returns how many fields changed.

        Every label is checked first, with the activity codes offered: a missing or ambiguous
        label is a PageLayoutError and an activity code the form does not offer a BusinessError,
        both before a single field is touched. ``typed`` enters each field through Playwright
        (focus, type, events: for forms with scripts that react to typing); otherwise all
        changed fields are set in one step by their labels, and then read back and checked.
        """
        snapshot = await self.snapshot()
        missing = [label for label in values if not any(e["tag"] for e in snapshot.get(label, []))]
        ambiguous = [label for label in values if len(snapshot.get(label, [])) > 1]
        if missing or ambiguous:
            bad = missing or ambiguous
            what = "no field" if missing else "several fields"
            raise PageLayoutError(
                f"payroll: {what} labelled {bad[0]!r} on {self.where()} ({len(bad)} such labels); nothing was typed",
                what=bad[0],
            )
        current = {label: snapshot[label][0]["value"] or "" for label in values}
        unknown = Counter(
            value
            for label, value in values.items()
            if value
            and label.startswith(FORM_LABELS["activity_code"])
            and value not in (snapshot[label][0]["options"] or [])
        )
        if unknown:
            codes = ", ".join(sorted(unknown))
            raise ScheduleRefused(
                f"PersonalLön erbjuder inte aktivitetskoden {codes}; schemat kan inte registreras "
                "som det är. Inget har skrivits in.",
                code="unknown_activity_code",
            )
        changes = changed_fields(values, current)
        if typed:
            for label, value in changes.items():
                field = self.page.get_by_label(label, exact=True)
                is_select = snapshot[label][0]["tag"] == "select"
                # Playwright's strict mode refuses to act when a label matches more than one element.
                action = field.select_option(value) if is_select else field.fill(value)
                await self._act(f"filling {label!r}", action)
        elif changes:
            form = await self.form()
            try:
                refused = await form.evaluate(_ENTER_JS, changes)
            except PlaywrightError as exc:
                raise translate(exc, "filling the registration form") from exc
            if refused:
                raise PageLayoutError(
                    f"payroll: the label {refused!r} changed while filling the form on {self.where()}", what=refused
                )
        after = await self.snapshot()
        wrong = [label for label, value in values.items() if (after[label][0]["value"] or "").strip() != value]
        if wrong:
            raise ConnectorError(
                f"payroll: the form did not take the value of {wrong[0]!r} ({len(wrong)} fields) on {self.where()}",
                code="payroll_form_refused_value",
            )
        return len(changes)

    async def save(self, what: str) -> SavedPage:
        """Click "Spara" (a write: refused in a dry run); ScheduleRefused with the page's messages."""
        button = await self.button("Spara")
        if self.ctx is not None:
            self.ctx.check_write(self.system, what)
        await self.follow(button, "saving the schedule", ok=frozenset({200, 422}))
        if await self.visible_count(self.page.get_by_role("heading", level=1, name=SAVED_HEADING, exact=True)):
            return self.then(SavedPage)
        errors = self.page.get_by_role("alert").filter(has=self.page.get_by_role("heading", name=NOT_SAVED_HEADING))
        if await self.visible_count(errors):
            try:
                messages = [m.strip() for m in await errors.get_by_role("listitem").all_inner_texts() if m.strip()]
            except PlaywrightError as exc:
                raise translate(exc, "reading the validation messages") from exc
            locked = [m for m in messages if m.startswith(LOCKED_NOTICE)]
            if locked:
                raise PeriodLocked(f"PersonalLön sparade inte schemat: {locked[0]}")
            raise ScheduleRefused("PersonalLön sparade inte schemat: " + " ".join(messages or ["okänt fel"]))
        raise ConnectorError(
            f"payroll: after saving, neither {SAVED_HEADING!r} nor {NOT_SAVED_HEADING!r} on {self.where()}",
            code="payroll_unknown_answer",
        )


class SavedPage(PayrollPage):
    """ "Schemat är sparat": the registration number and a link to what is registered."""

    heading = SAVED_HEADING

    async def registration(self) -> str | None:
        """The registration number the system gave the save (``R-000123``), if shown."""
        try:
            texts = await self.page.get_by_role("status").all_inner_texts()
        except PlaywrightError as exc:
            raise translate(exc, "reading the confirmation") from exc
        found = next((m.group(0) for t in texts if (m := re.search(r"\bR-\d+\b", t))), None)
        return found

    async def open_registered(self) -> RegisteredPage:
        """Follow "Visa registrerat schema" (the read-back)."""
        await self.follow(await self.link("Visa registrerat schema"), "opening what was registered")
        page = self.then(RegisteredPage)
        await page.arrived()
        return page
