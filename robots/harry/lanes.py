"""Browser lanes: one browser per run, a few browser contexts ("lanes") used in parallel.

Each lane is a browser context with its own logged-in session and one page, used by one work
item at a time. The page is kept for the lane's next items, up to ``ITEMS_PER_PAGE`` of them: a
new tab starts a new renderer process, which cost about a CPU second per schedule on the
sandbox night, while a page kept for all of a lane's items let the renderer's memory grow
by ~10 MB an item. After ``items_per_lane`` items, or after an
item failed for a technical reason, the lane's context is closed and a fresh one opened, so
memory stays flat over a long night. The number of lanes bounds how many items drive the
browser at once, whatever the engine's concurrency. When an item fails, a screenshot and the
page's HTML are saved as sensitive artifacts of the work item (the browser connector's
``capture_failure``), and their ids put on the error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from connectors.browser import BrowserConnector, LoginHelper, translate
from core.api import BusinessError, ConnectorContext, KollegaError, get_logger

log = get_logger("kollega.robots.harry.lanes")

#: Items one page (tab, and so one renderer process) serves before the lane opens a new one.
ITEMS_PER_PAGE = 10


@dataclass
class Lane:
    """One browser context: its session, how many items it served, whether it is logged in."""

    number: int
    context: BrowserContext
    login: LoginHelper
    uses: int = 0
    logged_in: bool = False
    retired: bool = False
    #: The lane's page, kept between its items (None until the first item, or after a failure).
    page: Page | None = None
    #: Items the current page has served.
    page_uses: int = 0


class BrowserLanes:
    """A fixed number of lanes on one browser, for one run (closed with the run's resources)."""

    def __init__(
        self,
        ctx: ConnectorContext | None,
        browser: BrowserConnector,
        *,
        size: int,
        items_per_lane: int,
        make_login: Callable[[], LoginHelper],
    ) -> None:
        self.ctx = ctx
        self.browser = browser
        self.size = size
        self.items_per_lane = items_per_lane
        self.make_login = make_login
        self._idle: list[Lane] = []
        self._open = 0
        self._changed = asyncio.Condition()
        self._closed = False
        #: Lanes (browser contexts) opened so far, and logins done on them (for tests and the bench).
        self.lanes_opened = 0
        self.logins_done = 0
        #: Most items driving the browser at the same time (for tests and the bench).
        self.busy = 0
        self.peak_busy = 0

    @classmethod
    def for_run(cls, ctx: ConnectorContext, key: str, factory: Callable[[], BrowserLanes]) -> BrowserLanes:
        """The run's lanes under ``ctx.resources[key]``, created by ``factory`` on first use."""
        existing = ctx.resources.get(key)
        if isinstance(existing, BrowserLanes):
            return existing
        lanes = factory()
        ctx.resources[key] = lanes
        return lanes

    async def _new_lane(self) -> Lane:
        browser = await self.browser.start()
        s = self.browser.settings
        try:
            context = await browser.new_context(
                locale=s.locale,
                timezone_id=s.timezone_id,
                ignore_https_errors=s.ignore_https_errors,
                viewport={"width": s.viewport_width, "height": s.viewport_height},
            )
        except PlaywrightError as exc:
            raise translate(exc, "opening a browser context") from exc
        context.set_default_timeout(s.timeout_seconds * 1000)
        context.set_default_navigation_timeout(s.navigation_timeout_seconds * 1000)
        self.lanes_opened += 1
        return Lane(self.lanes_opened, context, self.make_login())

    async def _acquire(self) -> Lane:
        async with self._changed:
            while not self._idle and self._open >= self.size:
                await self._changed.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return await self._new_lane()
        except BaseException:
            async with self._changed:
                self._open -= 1
                self._changed.notify()
            raise

    async def _release(self, lane: Lane) -> None:
        lane.uses += 1
        self.logins_done += lane.login.logins
        lane.login.logins = 0
        if lane.retired or lane.uses >= self.items_per_lane or self._closed:
            lane.page = None
            await self._close_context(lane.context)
            async with self._changed:
                self._open -= 1
                self._changed.notify()
            return
        async with self._changed:
            self._idle.append(lane)
            self._changed.notify()

    @staticmethod
    async def _close_context(context: BrowserContext) -> None:
        try:
            await context.close()
        except PlaywrightError:
            log.warning("closing a browser context failed", exc_info=True)

    @asynccontextmanager
    async def page(self, work_item_id: int | None) -> AsyncIterator[tuple[Lane, Page]]:
        """A lane and its page for one item; evidence saved and the lane retired on failure.

        The page is the one the lane's previous item used, unless that item failed (a page an
        item failed on is closed, evidence first) or the page has served ``ITEMS_PER_PAGE``
        items: then the item gets a new one.
        """
        lane = await self._acquire()
        page: Page | None = lane.page
        lane.page = None  # given back below only when this item ends well
        self.busy += 1
        self.peak_busy = max(self.peak_busy, self.busy)
        try:
            if page is not None and (page.is_closed() or lane.page_uses >= ITEMS_PER_PAGE):
                with contextlib.suppress(PlaywrightError):
                    await page.close()
                page = None
            if page is None:
                try:
                    page = await lane.context.new_page()
                except PlaywrightError as exc:
                    raise translate(exc, "opening a page") from exc
                lane.page_uses = 0
            lane.page_uses += 1
            yield lane, page
            lane.page, page = page, None  # kept for the lane's next item
        except Exception as exc:
            # A business refusal leaves the session healthy; anything else gets a fresh context.
            if not isinstance(exc, BusinessError):
                lane.retired = True
            ids = await self.browser.capture_failure(page, None, work_item_id) if page is not None else []
            if isinstance(exc, KollegaError):
                exc.details.setdefault("artifacts", ids)
                raise
            if isinstance(exc, PlaywrightError):
                error = translate(exc, "driving the payroll system")
                error.details["artifacts"] = ids
                raise error from exc
            raise
        except BaseException:  # cancelled (the worker is stopping): never reuse a half-used page
            lane.retired = True
            raise
        finally:
            self.busy -= 1
            if page is not None:
                with contextlib.suppress(PlaywrightError):
                    await page.close()
            await self._release(lane)

    async def aclose(self) -> None:
        """Close every idle lane, then the browser (lanes still busy are closed with it)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for lane in idle:
            await self._close_context(lane.context)
        await self.browser.aclose()
