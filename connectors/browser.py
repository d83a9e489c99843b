"""Browser connector: Playwright (async API) driving Chromium, for systems without an API.

One browser per run (:meth:`BrowserConnector.for_run`), a fresh browser context per work
item or per ``items_per_context`` items, every page and context closed in ``finally``. When
an item fails inside :meth:`BrowserConnector.page`, a screenshot, the page's HTML and
optionally a Playwright trace are saved as sensitive artifacts of the work item (they show
personal data: restricted access, deleted after the retention period).

Pages are driven through :class:`PageObject`: fields are found by their label and buttons
by their role and name, never by brittle CSS. A label that is missing or matches several
fields is a :class:`PageLayoutError` naming the label: we never type into a guessed field.
:class:`LoginHelper` detects an expired session and logs in again, once.

Which browser: ``executable_path`` when configured; else Playwright's own Chromium when it
is installed; else, headless, a system Chromium headless shell (Debian's package
``chromium-headless-shell``: the lighter build Playwright itself runs headless, about 40 %
less CPU per page than the full browser in headless mode), and otherwise a system Chromium or
Chrome (``/usr/bin/chromium`` …). Launch flags work headless as root in CI
(``--no-sandbox`` and friends).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from playwright.async_api import Browser, BrowserContext, Locator, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from pydantic import BaseModel, ConfigDict, Field

from connectors.base import connector_section, validate_settings
from core.errors import ConfigError, ConnectorAuthError, ConnectorError, ConnectorUnavailable, KollegaError
from core.interfaces import ConnectorContext
from core.logging import get_logger, redact_text
from core.settings import SecretRef

log = get_logger("kollega.connectors.browser")
T = TypeVar("T")
#: What Playwright's error says when a locator in strict mode matched more than one element.
STRICT_VIOLATION = "strict mode violation"

#: Flags that make headless Chromium work as root in a container and keep it quiet.
CI_LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
)
#: Where a system Chromium headless shell is looked for first when running headless (the
#: binary itself before Debian's wrapper script, which would stay alive as the parent).
SYSTEM_HEADLESS_SHELLS = ("/usr/lib/chromium/chromium-headless-shell", "/usr/bin/chromium-headless-shell")
#: Where a system Chromium or Chrome is looked for, in this order.
SYSTEM_BROWSERS = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
    "/snap/bin/chromium",
)


class BrowserSettings(BaseModel):
    """The section ``[connectors.browser]``: how the browser is found, launched and used."""

    model_config = ConfigDict(extra="forbid")

    executable_path: Path | None = Field(default=None, description="Chromium/Chrome to use; empty = find one.")
    headless: bool = Field(default=True, description="Run without a window (always, except when debugging).")
    extra_args: list[str] = Field(default_factory=list, description="More Chromium command-line flags.")
    items_per_context: int = Field(default=1, ge=1, description="Work items sharing one browser context.")
    timeout_seconds: float = Field(default=15, gt=0, description="Default timeout of a page action.")
    navigation_timeout_seconds: float = Field(default=30, gt=0, description="Timeout of a page load.")
    find_timeout_seconds: float = Field(default=5, gt=0, description="How long to wait for a labelled field.")
    screenshot_on_failure: bool = Field(default=True, description="Save a screenshot when an item fails.")
    html_on_failure: bool = Field(default=True, description="Save the page's HTML when an item fails.")
    trace_on_failure: bool = Field(
        default=False,
        description="Save a Playwright trace when an item fails (it records typed values, passwords included).",
    )
    locale: str = Field(default="sv-SE", description="Browser locale.")
    timezone_id: str = Field(default="Europe/Stockholm", description="Browser time zone.")
    viewport_width: int = Field(default=1280, ge=320)
    viewport_height: int = Field(default=900, ge=240)
    ignore_https_errors: bool = Field(default=False, description="Accept invalid certificates (a lab only).")


class PageLayoutError(ConnectorError):
    """The page does not look as expected: a required field or button is missing or ambiguous."""

    code = "page_layout"
    retryable = False  # the same page will look the same on the next try: a person must look


def find_browser(configured: Path | None, bundled: str | None, *, headless: bool = True) -> str | None:
    """The Chromium to launch: None means Playwright's own (installed at ``bundled``); ConfigError if none."""
    if configured is not None:
        if not configured.exists():
            raise ConfigError(f"connectors.browser.executable_path: {configured} does not exist")
        return str(configured)
    if bundled and Path(bundled).exists():
        return None
    return system_browser(headless=headless)


def system_browser(*, headless: bool = True) -> str:
    """A system Chromium (its headless shell first when headless); ConfigError naming what to do when none."""
    candidates = (*SYSTEM_HEADLESS_SHELLS, *SYSTEM_BROWSERS) if headless else SYSTEM_BROWSERS
    for candidate in candidates:
        if Path(candidate).exists():
            return candidate
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    for name in ("chromium-headless-shell", *names) if headless else names:
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError(
        "no Chromium found: run `playwright install chromium`, install the chromium package, "
        "or set connectors.browser.executable_path"
    )


def translate(exc: PlaywrightError, doing: str) -> ConnectorError:
    """A Playwright error as a ConnectorError (timeouts as ConnectorUnavailable), message redacted."""
    text = str(exc).strip()
    first = redact_text(text.splitlines()[0]) if text else type(exc).__name__
    if isinstance(exc, PlaywrightTimeoutError):
        return ConnectorUnavailable(f"browser: {doing} timed out: {first}", code="browser_timeout")
    return ConnectorError(f"browser: {doing} failed: {first}", code="browser")


@dataclass
class _ContextSlot:
    context: BrowserContext
    uses: int = 0
    active: int = 0
    retired: bool = False
    tracing: bool = False


class BrowserConnector:
    """One browser for one run; hands out pages in fresh contexts and collects evidence on failure."""

    def __init__(self, ctx: ConnectorContext | None, settings: BrowserSettings | None = None) -> None:
        self.ctx = ctx
        self.settings = settings or BrowserSettings()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._slot: _ContextSlot | None = None
        self._start_lock = asyncio.Lock()
        self._slot_lock = asyncio.Lock()
        self.executable: str | None = None

    @classmethod
    def for_run(cls, ctx: ConnectorContext, system: str = "browser") -> BrowserConnector:
        """The run's browser (from ``[connectors.browser]``, defaults if absent), closed with the run."""
        key = f"browser:{system}"
        existing = ctx.resources.get(key)
        if isinstance(existing, BrowserConnector):
            return existing
        connector = cls(ctx, validate_settings(BrowserSettings, connector_section(ctx, system) or {}, system))
        ctx.resources[key] = connector
        return connector

    async def start(self) -> Browser:
        """Launch the browser (once); later calls return the running one."""
        async with self._start_lock:
            if self._browser is not None:
                return self._browser
            self._playwright = await async_playwright().start()
            try:
                self._browser = await self._launch(self._playwright)
            except BaseException:
                await self._playwright.stop()
                self._playwright = None
                raise
            log.info("browser started", executable=self.executable or "playwright", version=self._browser.version)
            return self._browser

    async def _launch(self, pw: Playwright) -> Browser:
        s = self.settings
        self.executable = find_browser(s.executable_path, pw.chromium.executable_path, headless=s.headless)
        args = [*CI_LAUNCH_ARGS, *s.extra_args]
        try:
            return await pw.chromium.launch(executable_path=self.executable, headless=s.headless, args=args)
        except PlaywrightError as exc:
            if self.executable is None and "Executable doesn't exist" in str(exc):
                # Playwright's full Chromium is there but not its headless shell: use the system one.
                self.executable = system_browser(headless=s.headless)
                try:
                    return await pw.chromium.launch(executable_path=self.executable, headless=s.headless, args=args)
                except PlaywrightError as exc2:
                    raise translate(exc2, "launching Chromium") from exc2
            raise translate(exc, "launching Chromium") from exc

    async def aclose(self) -> None:
        """Close the context, the browser and Playwright."""
        slot, self._slot = self._slot, None
        try:
            if slot is not None:
                await self._close_slot(slot)
            if self._browser is not None:
                await self._browser.close()
        except PlaywrightError:
            log.warning("closing the browser failed", exc_info=True)
        finally:
            self._browser = None
            if self._playwright is not None:
                await self._playwright.stop()
                self._playwright = None

    async def __aenter__(self) -> BrowserConnector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _take_slot(self) -> _ContextSlot:
        browser = await self.start()
        async with self._slot_lock:  # concurrent items on one loop must not both open a context
            return await self._take_slot_locked(browser)

    async def _take_slot_locked(self, browser: Browser) -> _ContextSlot:
        slot = self._slot
        if slot is None or slot.retired or slot.uses >= self.settings.items_per_context:
            s = self.settings
            context = await browser.new_context(
                locale=s.locale,
                timezone_id=s.timezone_id,
                ignore_https_errors=s.ignore_https_errors,
                viewport={"width": s.viewport_width, "height": s.viewport_height},
            )
            context.set_default_timeout(s.timeout_seconds * 1000)
            context.set_default_navigation_timeout(s.navigation_timeout_seconds * 1000)
            slot = _ContextSlot(context)
            if s.trace_on_failure:
                await context.tracing.start(screenshots=True, snapshots=True)
                await context.tracing.start_chunk()
                slot.tracing = True
            self._slot = slot
        slot.uses += 1
        slot.active += 1
        return slot

    async def _release_slot(self, slot: _ContextSlot) -> None:
        slot.active -= 1
        done = slot.retired or slot.uses >= self.settings.items_per_context or slot is not self._slot
        if done and slot.active == 0:
            if self._slot is slot:
                self._slot = None
            await self._close_slot(slot)

    @staticmethod
    async def _close_slot(slot: _ContextSlot) -> None:
        try:
            if slot.tracing:
                await slot.context.tracing.stop()
            await slot.context.close()
        except PlaywrightError:
            log.warning("closing a browser context failed", exc_info=True)

    @asynccontextmanager
    async def page(self, work_item_id: int | None = None) -> AsyncIterator[Page]:
        """A new page for one work item; on failure evidence is saved and Playwright errors translated."""
        slot = await self._take_slot()
        page: Page | None = None
        try:
            page = await slot.context.new_page()
            yield page
        except Exception as exc:
            slot.retired = True  # never reuse a context that saw a failure
            ids = await self.capture_failure(page, slot, work_item_id) if page is not None else []
            if isinstance(exc, KollegaError):
                exc.details.setdefault("artifacts", ids)
                raise
            if isinstance(exc, PlaywrightError):
                error = translate(exc, "page action")
                error.details["artifacts"] = ids
                raise error from exc
            raise
        finally:
            if page is not None:
                try:
                    await page.close()
                except PlaywrightError:
                    log.warning("closing a page failed", exc_info=True)
            await self._release_slot(slot)

    async def capture_failure(self, page: Page, slot: _ContextSlot | None, work_item_id: int | None) -> list[int]:
        """Save screenshot, HTML and (optionally) trace as sensitive artifacts; never raises, returns their ids."""
        if self.ctx is None:
            return []
        s = self.settings
        files: list[tuple[str, str, str, bytes]] = []
        try:
            if s.screenshot_on_failure:
                files.append(("screenshot", "failure.png", "image/png", await page.screenshot(full_page=True)))
            if s.html_on_failure:
                files.append(("html", "failure.html", "text/html", (await page.content()).encode("utf-8")))
            if slot is not None and slot.tracing:
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "trace.zip"
                    await slot.context.tracing.stop_chunk(path=str(path))
                    files.append(("trace", "trace.zip", "application/zip", path.read_bytes()))
                    await slot.context.tracing.start_chunk()
        except PlaywrightError as exc:  # a crashed page cannot be captured: keep what we have
            log.warning("capturing the failed page failed", error=redact_text(str(exc).splitlines()[0]))
        ids = []
        for kind, filename, content_type, data in files:
            try:
                ids.append(
                    await asyncio.to_thread(
                        self.ctx.save_artifact,
                        work_item_id=work_item_id,
                        kind=kind,
                        filename=filename,
                        content_type=content_type,
                        data=data,
                        sensitive=True,
                    )
                )
            except Exception:  # evidence is best effort: the item's own error must not be masked
                log.warning("saving a failure artifact failed", kind=kind, exc_info=True)
        if ids:
            log.info("failure evidence saved", work_item_id=work_item_id, artifacts=ids)
        return ids


class PageObject:
    """Base class of a page object: one page or form of a web application, driven by labels and roles."""

    #: Path of the page below the application's base URL (used by :meth:`open`).
    path: ClassVar[str] = ""
    #: The external system, as named in dry-run reports and audit events.
    system: str = "web"

    def __init__(
        self,
        page: Page,
        *,
        base_url: str = "",
        ctx: ConnectorContext | None = None,
        find_timeout_seconds: float = 5,
        system: str | None = None,
    ) -> None:
        self.page = page
        if system is not None:
            self.system = system
        self.base_url = base_url.rstrip("/")
        self.ctx = ctx
        self.find_timeout_ms = find_timeout_seconds * 1000

    async def open(self) -> None:
        """Navigate to this page."""
        try:
            await self.page.goto(f"{self.base_url}/{self.path.lstrip('/')}")
        except PlaywrightError as exc:
            raise translate(exc, f"opening {self.system} {redact_text(self.path)}") from exc

    def where(self) -> str:
        """The current page's address (redacted), for error messages."""
        return redact_text(self.page.url.split("?")[0])

    async def require(self, locator: Locator, what: str) -> Locator:
        """Exactly one visible element, or a PageLayoutError naming ``what``.

        One round trip to the page: Playwright's strict wait refuses as soon as the locator
        matches more than one element (hidden ones included), so the count is only asked for
        to name it in the error.
        """
        try:
            await locator.wait_for(state="visible", timeout=self.find_timeout_ms)
        except PlaywrightError as exc:
            raise await self._not_found(exc, locator, what, f"finding {what}") from exc
        return locator

    async def _not_found(self, exc: PlaywrightError, locator: Locator, what: str, doing: str) -> KollegaError:
        """The error for a strict locator that failed: none (timeout) or several found, else translated."""
        if isinstance(exc, PlaywrightTimeoutError):
            return PageLayoutError(f"{self.system}: no {what} on {self.where()}", what=what)
        if STRICT_VIOLATION not in str(exc):
            return translate(exc, doing)
        try:
            count = str(await locator.count())
        except PlaywrightError:
            count = "several"
        return PageLayoutError(
            f"{self.system}: {count} elements match {what} on {self.where()}; refusing to guess", what=what
        )

    async def field(self, label: str, *, exact: bool = True) -> Locator:
        """The one form field labelled ``label``."""
        return await self.require(self.page.get_by_label(label, exact=exact), f"field labelled {label!r}")

    async def button(self, name: str, *, exact: bool = True) -> Locator:
        """The one button named ``name``."""
        return await self.require(self.page.get_by_role("button", name=name, exact=exact), f"button {name!r}")

    async def link(self, name: str, *, exact: bool = True) -> Locator:
        """The one link named ``name``."""
        return await self.require(self.page.get_by_role("link", name=name, exact=exact), f"link {name!r}")

    async def _act(self, what: str, action: Awaitable[Any]) -> None:
        try:
            await action
        except PlaywrightError as exc:
            raise translate(exc, what) from exc

    async def fill(self, label: str, value: str) -> None:
        """Type ``value`` into the one visible, editable field labelled ``label`` (the value is never logged).

        One round trip: Playwright's strict fill waits for exactly one such field and types
        nothing otherwise; no field within the find timeout, or several, is a PageLayoutError.
        """
        locator = self.page.get_by_label(label, exact=True)
        try:
            await locator.fill(value, timeout=self.find_timeout_ms)
        except PlaywrightError as exc:
            raise await self._not_found(exc, locator, f"field labelled {label!r}", f"filling {label!r}") from exc

    async def select(self, label: str, option: str) -> None:
        """Choose ``option`` (its value or visible text) in the list labelled ``label``."""
        loc = await self.field(label)
        try:
            await loc.select_option(option)
        except PlaywrightError:
            await self._act(f"choosing in {label!r}", loc.select_option(label=option))

    async def check(self, label: str, checked: bool = True) -> None:
        """Tick (or untick) the checkbox labelled ``label``."""
        await self._act(f"ticking {label!r}", (await self.field(label)).set_checked(checked))

    async def value_of(self, label: str) -> str:
        """The current value of the field labelled ``label``."""
        loc = await self.field(label)
        try:
            return await loc.input_value()
        except PlaywrightError as exc:
            raise translate(exc, f"reading {label!r}") from exc

    async def click(self, name: str, *, role: str = "button") -> None:
        """Click the one button (or ``role``) named ``name``."""
        loc = await self.require(self.page.get_by_role(role, name=name, exact=True), f"{role} {name!r}")  # type: ignore[arg-type]
        await self._act(f"clicking {name!r}", loc.click())

    async def submit(self, name: str, *, what: str) -> None:
        """Click a button that writes to the system: refused in a dry run (``what`` is reported).

        Whether the write took effect only the page can tell: read it back, then record the
        write (``ctx.record("external.write", …)``); the connector cannot know it.
        """
        loc = await self.button(name)
        if self.ctx is not None:
            self.ctx.check_write(self.system, what)
        await self._act(f"clicking {name!r}", loc.click())

    async def texts(self, role: str = "alert") -> list[str]:
        """The texts of every element with ``role`` (e.g. the page's error messages)."""
        try:
            return [t.strip() for t in await self.page.get_by_role(role).all_inner_texts()]  # type: ignore[arg-type]
        except PlaywrightError as exc:
            raise translate(exc, f"reading {role} texts") from exc


# -- sessions ----------------------------------------------------------------------------
ExpiryDetector = Callable[[Page], Awaitable[bool]]


def url_contains(fragment: str) -> ExpiryDetector:
    """Detector: the session has expired when the address contains ``fragment`` (e.g. ``/login``)."""

    async def detect(page: Page) -> bool:
        return fragment in page.url

    return detect


def text_visible(text: str) -> ExpiryDetector:
    """Detector: the session has expired when ``text`` (e.g. 'Din session har gått ut') is shown."""

    async def detect(page: Page) -> bool:
        try:
            return await page.get_by_text(text).count() > 0
        except PlaywrightError:
            return False

    return detect


def any_of(*detectors: ExpiryDetector) -> ExpiryDetector:
    """Detector: expired when any of ``detectors`` says so."""

    async def detect(page: Page) -> bool:
        for d in detectors:
            if await d(page):
                return True
        return False

    return detect


class FormLoginSettings(BaseModel):
    """A web application's login form, found by its labels; credentials by reference."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="The application's base URL.")
    login_path: str = Field(default="/login", description="Path of the login page.")
    username: SecretRef = Field(description="The robot's user name, by reference.")
    password: SecretRef = Field(description="The robot's password, by reference.")
    username_label: str = Field(default="Användarnamn", description="Label of the user-name field.")
    password_label: str = Field(default="Lösenord", description="Label of the password field.")
    submit_button: str = Field(default="Logga in", description="Name of the login button.")
    expired_url_fragment: str | None = Field(default="/login", description="Address part meaning 'logged out'.")
    expired_text: str | None = Field(default=None, description="Text on the page meaning 'session expired'.")


class FormLogin:
    """Logs in through a form with labelled fields; usable as :class:`LoginHelper`'s login callable."""

    def __init__(self, settings: FormLoginSettings, system: str = "web") -> None:
        self.settings = settings
        self.system = system

    async def __call__(self, page: Page) -> None:
        s = self.settings
        form = PageObject(page, base_url=s.base_url, system=self.system)
        try:
            await page.goto(f"{s.base_url.rstrip('/')}/{s.login_path.lstrip('/')}")
        except PlaywrightError as exc:
            raise translate(exc, f"opening the {self.system} login page") from exc
        await form.fill(s.username_label, s.username.resolve())
        await form.fill(s.password_label, s.password.resolve())
        await form.click(s.submit_button)
        try:
            await page.wait_for_load_state()
        except PlaywrightError as exc:
            raise translate(exc, f"logging in to {self.system}") from exc

    def detector(self) -> ExpiryDetector:
        """The expiry detector these settings describe."""
        found = [url_contains(self.settings.expired_url_fragment)] if self.settings.expired_url_fragment else []
        if self.settings.expired_text:
            found.append(text_visible(self.settings.expired_text))
        return any_of(*found)


class LoginHelper:
    """Runs page actions in a logged-in session; on an expired session logs in again, once."""

    def __init__(
        self, login: Callable[[Page], Awaitable[None]], is_expired: ExpiryDetector, *, system: str = "web"
    ) -> None:
        self.login = login
        self.is_expired = is_expired
        self.system = system
        #: How many times this helper logged in (for tests and metrics).
        self.logins = 0

    @classmethod
    def with_form(cls, settings: FormLoginSettings, system: str = "web") -> LoginHelper:
        """A helper logging in through a labelled form, detecting expiry as the settings say."""
        form = FormLogin(settings, system)
        return cls(form, form.detector(), system=system)

    async def log_in(self, page: Page) -> None:
        """Log in now; ConnectorAuthError when the application still shows us logged out."""
        self.logins += 1
        await self.login(page)
        if await self.is_expired(page):
            raise ConnectorAuthError(f"{self.system}: login refused (still logged out after logging in)")

    async def goto(self, page: Page, url: str) -> None:
        """Open ``url``; when that lands on the login page, log in and open it again."""
        try:
            await page.goto(url)
            if await self.is_expired(page):
                await self.log_in(page)
                await page.goto(url)
        except PlaywrightError as exc:
            raise translate(exc, f"opening a {self.system} page") from exc
        if await self.is_expired(page):
            raise ConnectorAuthError(f"{self.system}: still logged out after logging in")

    async def ensure_logged_in(self, page: Page) -> None:
        """Log in when the page shows the session has expired (or was never started)."""
        if await self.is_expired(page):
            await self.log_in(page)

    async def run(self, page: Page, action: Callable[[Page], Awaitable[T]]) -> T:
        """Run ``action``; if the session turns out to have expired, log in once and run it again.

        ``action`` must be safe to repeat from its start (check before write, as every write is).
        """
        try:
            result = await action(page)
        except (KollegaError, PlaywrightError) as exc:
            if isinstance(exc, ConnectorAuthError) or not await self.is_expired(page):
                raise
        else:
            if not await self.is_expired(page):
                return result
        log.info("session expired; logging in again", system=self.system)
        await self.log_in(page)
        try:
            result = await action(page)
        except (KollegaError, PlaywrightError) as exc:
            if await self.is_expired(page):
                raise ConnectorAuthError(f"{self.system}: the session expired again right after logging in") from exc
            raise
        if await self.is_expired(page):
            raise ConnectorAuthError(f"{self.system}: the session expired again right after logging in")
        return result
