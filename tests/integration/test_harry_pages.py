"""HaRry's page objects in real Chromium against small local pages: layout errors, entry, answers.

The sandbox cannot remove a label, so a local page plays a changed registration form: HaRry
must stop with a clear error naming the label, save a screenshot, and type nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from connectors.browser import BrowserConnector, BrowserSettings, LoginHelper, PageLayoutError, url_contains
from core.errors import BusinessError, ConnectorUnavailable
from core.testing import RecordingContext
from core.testing.server import serve_app
from robots.harry.lanes import BrowserLanes
from robots.harry.pages import ScheduleForm, ScheduleRefused, SearchPage
from robots.harry.schedule import Row, Schedule, form_values

pytestmark = pytest.mark.browser

DAY = date(2026, 12, 1)
FIELDS = (("start", "Starttid"), ("end", "Sluttid"), ("break", "Rast (minuter)"), ("activity", "Aktivitetskod"))


def form_page(variant: str) -> str:
    """A one-day registration form like PersonalLön's; ``variant`` breaks it on purpose."""
    cells = []
    for slot in (1, 2):
        for name, title in FIELDS:
            label = f"{title} {DAY} rad {slot}"
            if variant == "missing" and name == "end" and slot == 1:
                label = "Sluttid"  # the label was changed: HaRry must not guess
            fid = f"r{slot}-{name}"
            control = (
                f'<select id="{fid}" name="{fid}"><option value="">– Ingen –</option>'
                '<option value="ARB">ARB</option><option value="UTB">UTB</option></select>'
                if name == "activity"
                else f'<input type="text" id="{fid}" name="{fid}" value="">'
            )
            cells.append(f'<td><label for="{fid}">{label}</label>{control}</td>')
        if variant == "ambiguous" and slot == 1:
            cells.append(f'<td><label for="dup">Starttid {DAY} rad 1</label><input id="dup" name="dup"></td>')
    return (
        f'<!doctype html><html lang="sv"><head><title>Registrera schema</title></head><body>'
        f'<h1>Registrera schema</h1><form method="post" action="/saved"><table>'
        f"<caption>Schemarader {DAY} – {DAY}</caption><tbody><tr>{''.join(cells)}</tr></tbody></table>"
        f'<button type="submit">Spara</button></form></body></html>'
    )


class Flaky:
    """Counts requests to the flaky page."""

    calls = 0


def local_app() -> FastAPI:
    """Pages for the tests."""
    app = FastAPI()

    @app.get("/payroll/form/{variant}", response_class=HTMLResponse)
    async def form(variant: str) -> str:
        return form_page(variant)

    @app.get("/payroll/search", response_class=HTMLResponse)
    async def search() -> HTMLResponse:
        Flaky.calls += 1
        if Flaky.calls == 1:
            return HTMLResponse("<h1>Ett tekniskt fel har uppstått (503)</h1>", status_code=503)
        return HTMLResponse('<!doctype html><html lang="sv"><body><h1>Sök anställd</h1></body></html>')

    @app.get("/payroll/slow/search", response_class=HTMLResponse)
    async def slow() -> HTMLResponse:
        await asyncio.sleep(3)
        return HTMLResponse("<h1>Sök anställd</h1>")

    @app.get("/payroll/maintenance/search", response_class=HTMLResponse)
    async def maintenance() -> HTMLResponse:
        return HTMLResponse(
            "<h1>Systemet är tillfälligt stängt för underhåll</h1>", status_code=503, headers={"Retry-After": "300"}
        )

    return app


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The local pages over real HTTP."""
    with serve_app(local_app()) as url:
        yield url


def lanes_for(ctx: RecordingContext, size: int = 1, navigation_timeout: float = 15) -> BrowserLanes:
    """Lanes on a real Chromium (no login needed for these pages)."""
    browser = BrowserConnector(
        ctx,
        BrowserSettings(
            executable_path=Path("/usr/bin/chromium"),
            find_timeout_seconds=1,
            navigation_timeout_seconds=navigation_timeout,
        ),
    )
    return BrowserLanes(
        ctx,
        browser,
        size=size,
        items_per_lane=2,
        make_login=lambda: LoginHelper(lambda page: asyncio.sleep(0), url_contains("/login")),
    )


def one_day(*rows: Row) -> Schedule:
    """A schedule for the one day the local form has."""
    return Schedule("E1", "2026-12", DAY, DAY, 1, "S", rows, "api")


async def values_on(page: object) -> dict[str, str]:
    """Every input's and select's value on the page, by name."""
    return await page.evaluate(  # type: ignore[attr-defined,no-any-return]
        "() => Object.fromEntries(Array.from(document.querySelectorAll('input, select')).map(e => [e.name, e.value]))"
    )


class TestChangedForm:
    """A changed layout never makes HaRry type into a guessed field."""

    @pytest.mark.parametrize(
        ("variant", "message"),
        [
            ("missing", "no field labelled 'Sluttid 2026-12-01 rad 1'"),
            ("ambiguous", "several fields labelled 'Starttid 2026-12-01"),
        ],
    )
    def test_clear_error_screenshot_nothing_typed(self, base_url: str, variant: str, message: str) -> None:
        ctx = RecordingContext()
        typed: dict[str, str] = {}

        async def scenario() -> None:
            lanes = lanes_for(ctx)
            try:
                with pytest.raises(PageLayoutError, match=message) as caught:
                    async with lanes.page(17) as (_lane, page):
                        form = ScheduleForm(page, base_url=f"{base_url}/payroll", ctx=ctx, find_timeout_seconds=1)
                        await form.goto(f"/form/{variant}", "opening the form")
                        await form.arrived()
                        await form.check_period(DAY, DAY)
                        try:
                            await form.fill_schedule(form_values(one_day(Row(DAY, "07:00", "16:00", 30, "ARB"))))
                        finally:
                            typed.update(await values_on(page))
                assert "nothing was typed" in str(caught.value)
                assert caught.value.retryable is False  # a person must look: the next try would look the same
                assert caught.value.details["artifacts"] == [1, 2]
            finally:
                await lanes.aclose()

        asyncio.run(scenario())
        assert set(typed.values()) == {""}
        assert [a["kind"] for a in ctx.artifacts] == ["screenshot", "html"]
        assert all(a["work_item_id"] == 17 and a["sensitive"] for a in ctx.artifacts)
        assert ctx.writes_checked == []

    def test_unoffered_activity_code_is_refused_before_typing(self, base_url: str) -> None:
        ctx = RecordingContext()

        async def scenario() -> dict[str, str]:
            lanes = lanes_for(ctx)
            try:
                async with lanes.page(1) as (_lane, page):
                    form = ScheduleForm(page, base_url=f"{base_url}/payroll", ctx=ctx)
                    await form.goto("/form/ok", "opening the form")
                    with pytest.raises(ScheduleRefused, match="aktivitetskoden KOMP"):
                        await form.fill_schedule(form_values(one_day(Row(DAY, "07:00", "16:00", 30, "KOMP"))))
                    return await values_on(page)
            finally:
                await lanes.aclose()

        assert set(asyncio.run(scenario()).values()) == {""}

    @pytest.mark.parametrize("typed", [False, True])
    def test_entry_by_label(self, base_url: str, typed: bool) -> None:
        ctx = RecordingContext()
        rows = (Row(DAY, "07:00", "12:00", 0, "ARB"), Row(DAY, "13:00", "16:00", 0, "UTB"))

        async def scenario() -> tuple[int, dict[str, str]]:
            lanes = lanes_for(ctx)
            try:
                async with lanes.page(1) as (_lane, page):
                    form = ScheduleForm(page, base_url=f"{base_url}/payroll", ctx=ctx)
                    await form.goto("/form/ok", "opening the form")
                    changed = await form.fill_schedule(form_values(one_day(*rows)), typed=typed)
                    return changed, await values_on(page)
            finally:
                await lanes.aclose()

        changed, values = asyncio.run(scenario())
        assert changed == 8
        assert values == {
            "r1-start": "07:00",
            "r1-end": "12:00",
            "r1-break": "0",
            "r1-activity": "ARB",
            "r2-start": "13:00",
            "r2-end": "16:00",
            "r2-break": "0",
            "r2-activity": "UTB",
        }


class TestAnswers:
    """Failing pages are retried; a maintenance page is not hammered."""

    def test_transient_error_is_reloaded(self, base_url: str) -> None:
        Flaky.calls = 0
        ctx = RecordingContext()

        async def scenario() -> None:
            lanes = lanes_for(ctx)
            try:
                async with lanes.page(1) as (_lane, page):
                    await SearchPage(page, base_url=f"{base_url}/payroll", ctx=ctx).open()
            finally:
                await lanes.aclose()

        asyncio.run(scenario())
        assert Flaky.calls == 2

    def test_maintenance_is_an_application_error_with_retry_after(self, base_url: str) -> None:
        ctx = RecordingContext()

        async def scenario() -> None:
            lanes = lanes_for(ctx)
            try:
                async with lanes.page(5) as (_lane, page):
                    await SearchPage(page, base_url=f"{base_url}/payroll/maintenance", ctx=ctx).open()
            finally:
                await lanes.aclose()

        with pytest.raises(ConnectorUnavailable, match="answered 503") as caught:
            asyncio.run(scenario())
        assert caught.value.retryable and caught.value.details["retry_after"] == 300
        assert [a["kind"] for a in ctx.artifacts] == ["screenshot", "html"]

    def test_slow_page_is_an_application_error(self, base_url: str) -> None:
        ctx = RecordingContext()

        async def scenario() -> None:
            lanes = lanes_for(ctx, navigation_timeout=1)
            try:
                async with lanes.page(6) as (_lane, page):
                    await SearchPage(page, base_url=f"{base_url}/payroll/slow", ctx=ctx).open()
            finally:
                await lanes.aclose()

        with pytest.raises(ConnectorUnavailable, match="timed out") as caught:
            asyncio.run(scenario())
        assert caught.value.retryable and caught.value.code == "browser_timeout"


class TestLanes:
    """Contexts are used in parallel, one item each, and recycled."""

    def test_parallel_and_recycled(self, base_url: str) -> None:
        ctx = RecordingContext()
        lanes = lanes_for(ctx, size=2)

        async def item(n: int) -> None:
            async with lanes.page(n) as (_lane, page):
                await page.goto(f"{base_url}/payroll/form/ok")
                await asyncio.sleep(0.2)

        async def scenario() -> None:
            try:
                await asyncio.gather(*(item(n) for n in range(6)))
            finally:
                await lanes.aclose()

        asyncio.run(scenario())
        assert lanes.peak_busy == 2
        assert lanes.lanes_opened == 4  # 2 lanes serve 2 items each, then 2 fresh lanes the last 2

    def test_page_kept_for_the_lanes_next_item_but_not_after_a_failure(self, base_url: str) -> None:
        ctx = RecordingContext()
        lanes = lanes_for(ctx, size=1)  # 2 items per lane
        seen: list[tuple[int, object]] = []

        async def item(n: int, fail: Exception | None = None) -> None:
            async with lanes.page(n) as (lane, page):
                seen.append((lane.number, page))
                await page.goto(f"{base_url}/payroll/form/ok")
                if fail is not None:
                    raise fail

        async def scenario() -> bool:
            try:
                with pytest.raises(BusinessError):
                    await item(1, BusinessError("refused", code="x"))  # the lane is kept, its page is not
                closed = bool(seen[0][1].is_closed())  # type: ignore[attr-defined]
                for n in (2, 3, 4):
                    await item(n)
                return closed
            finally:
                await lanes.aclose()

        closed = asyncio.run(scenario())
        assert [number for number, _page in seen] == [1, 1, 2, 2]
        assert closed and seen[1][1] is not seen[0][1]  # after a failure: a new page in the same lane
        assert seen[3][1] is seen[2][1]  # after an item that ended well: the same page
        assert lanes.lanes_opened == 2

    def test_a_page_serves_a_bounded_number_of_items(self, base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        from robots.harry import lanes as lanes_module

        monkeypatch.setattr(lanes_module, "ITEMS_PER_PAGE", 1)
        ctx = RecordingContext()
        lanes = lanes_for(ctx, size=1)  # 2 items per lane
        seen: list[tuple[int, object, bool]] = []

        async def scenario() -> None:
            try:
                for n in (1, 2):
                    async with lanes.page(n) as (lane, page):
                        await page.goto(f"{base_url}/payroll/form/ok")
                        seen.append((lane.number, page, False))
                first = seen[0][1]
                seen.append((0, first, bool(first.is_closed())))  # type: ignore[attr-defined]
            finally:
                await lanes.aclose()

        asyncio.run(scenario())
        assert [number for number, _page, _closed in seen[:2]] == [1, 1]
        assert seen[1][1] is not seen[0][1] and seen[2][2]  # the same lane, a new page; the old one closed
