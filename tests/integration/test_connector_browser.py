"""The browser connector in real Chromium against a small local web application."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from playwright.async_api import Page
from sqlalchemy import select

from connectors.browser import (
    BrowserConnector,
    BrowserSettings,
    FormLoginSettings,
    LoginHelper,
    PageLayoutError,
    PageObject,
)
from core.errors import ConnectorAuthError, DryRunRefusal
from core.queue import WorkQueue
from core.robot import NewItem
from core.storage.models import WorkItem
from core.testing import RecordingContext, run_context, temporary_database
from core.testing.server import serve_app

pytestmark = pytest.mark.browser

LOGIN_PAGE = """<!doctype html><html lang="sv"><head><title>Logga in</title></head><body>
<h1>Personal och lön</h1><form method="post" action="/login">
<label for="u">Användarnamn</label><input id="u" name="username">
<label for="p">Lösenord</label><input id="p" name="password" type="password">
<button type="submit">Logga in</button></form></body></html>"""

SEARCH_PAGE = """<!doctype html><html lang="sv"><head><title>Anställda</title></head><body>
<h1>Anställda</h1><form method="get" action="/employees">
<label for="q">Sök anställd</label><input id="q" name="q" value="{q}">
<button type="submit">Sök</button></form><p role="status">{result}</p></body></html>"""

CHANGED_PAGE = """<!doctype html><html lang="sv"><head><title>Anställda</title></head><body>
<h1>Anställda</h1><form><label for="x">Hitta medarbetare</label><input id="x"></form></body></html>"""

AMBIGUOUS_PAGE = """<!doctype html><html lang="sv"><body><form>
<label>Datum <input name="d1"></label><label>Datum <input name="d2"></label>
<button type="submit">Spara</button></form></body></html>"""


class App:
    """A tiny HTML application with a login, a session that can expire and a search page."""

    def __init__(self) -> None:
        self.sessions: set[str] = set()
        self.logins = 0
        self.refuse_sessions = False

    def build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/login", response_class=HTMLResponse)
        async def login_form() -> str:
            return LOGIN_PAGE

        @app.post("/login")
        async def login(username: str = Form(), password: str = Form()) -> Response:
            if (username, password) != ("robot", "hemligt"):
                return HTMLResponse(LOGIN_PAGE, status_code=401)
            self.logins += 1
            sid = secrets.token_hex(8)
            if not self.refuse_sessions:
                self.sessions.add(sid)
            response = RedirectResponse("/employees", status_code=303)
            response.set_cookie("sid", sid)
            return response

        @app.get("/employees", response_class=HTMLResponse)
        async def employees(request: Request, q: str = "") -> Response:
            if request.cookies.get("sid") not in self.sessions:
                return RedirectResponse("/login", status_code=303)
            result = f"{len(q)} träffar" if q else ""
            return HTMLResponse(SEARCH_PAGE.format(q=q, result=result))

        @app.get("/changed", response_class=HTMLResponse)
        async def changed() -> str:
            return CHANGED_PAGE

        @app.get("/ambiguous", response_class=HTMLResponse)
        async def ambiguous() -> str:
            return AMBIGUOUS_PAGE

        return app


@pytest.fixture(scope="module")
def webapp() -> Iterator[tuple[str, App]]:
    state = App()
    with serve_app(state.build()) as url:
        yield url, state


FAST = BrowserSettings(find_timeout_seconds=0.5, timeout_seconds=5)


class SearchPage(PageObject):
    """The employee search page."""

    path = "/employees"
    system = "payroll"

    async def search(self, text: str) -> str:
        await self.fill("Sök anställd", text)
        await self.click("Sök")
        return (await self.texts("status"))[0]


def login_settings(url: str, monkeypatch: pytest.MonkeyPatch) -> FormLoginSettings:
    monkeypatch.setenv("PAYROLL_USER", "robot")
    monkeypatch.setenv("PAYROLL_PASSWORD", "hemligt")
    return FormLoginSettings(
        base_url=url,
        username={"env": "PAYROLL_USER"},  # type: ignore[arg-type]
        password={"env": "PAYROLL_PASSWORD"},
    )  # type: ignore[arg-type]


class TestFailureEvidence:
    """A missing label is a clear error naming it, with a screenshot and the HTML saved on the work item."""

    async def test_missing_label_saves_artifacts(self, webapp: tuple[str, App], tmp_path: Path) -> None:
        url, _app = webapp
        with temporary_database(tmp_path) as db:
            ctx = run_context(db, tmp_path)
            WorkQueue(db).enqueue("example", "0000", [NewItem(reference="case-1", payload={})])
            with db.session() as s:
                item_id = s.scalars(select(WorkItem.id)).one()
            async with BrowserConnector(ctx, FAST) as browser:
                with pytest.raises(PageLayoutError) as err:
                    async with browser.page(work_item_id=item_id) as page:
                        await page.goto(f"{url}/changed")
                        await SearchPage(page, base_url=url).fill("Sök anställd", "19121212-1212")
            assert "Sök anställd" in str(err.value)
            assert err.value.code == "page_layout"
            artifacts = ctx.artifacts.for_item(item_id)
            assert [a.kind for a in artifacts] == ["screenshot", "html"]
            assert all(a.sensitive for a in artifacts)
            assert Path(artifacts[0].path).read_bytes().startswith(b"\x89PNG")
            assert "Hitta medarbetare" in Path(artifacts[1].path).read_text(encoding="utf-8")
            assert err.value.details["artifacts"] == [a.id for a in artifacts]

    async def test_ambiguous_label_is_refused(self, webapp: tuple[str, App]) -> None:
        url, _app = webapp
        ctx = RecordingContext()
        async with BrowserConnector(ctx, FAST.model_copy(update={"trace_on_failure": True})) as browser:
            with pytest.raises(PageLayoutError) as err:
                async with browser.page() as page:
                    await page.goto(f"{url}/ambiguous")
                    await PageObject(page).fill("Datum", "2026-11-23")
        assert "refusing to guess" in str(err.value)
        assert [a["kind"] for a in ctx.artifacts] == ["screenshot", "html", "trace"]

    async def test_playwright_errors_are_translated(self, webapp: tuple[str, App]) -> None:
        url, _app = webapp
        async with BrowserConnector(RecordingContext(), FAST) as browser:
            with pytest.raises(Exception) as err:
                async with browser.page() as page:
                    await page.goto(f"{url}/employees", timeout=1)
        assert err.value.__class__.__name__ in ("ConnectorUnavailable", "ConnectorError")
        assert err.value.__cause__ is not None


class TestLogin:
    """An expired session is detected and the robot logs in again, once."""

    async def test_relogin_once_on_expiry(self, webapp: tuple[str, App], monkeypatch: pytest.MonkeyPatch) -> None:
        url, app = webapp
        helper = LoginHelper.with_form(login_settings(url, monkeypatch), system="payroll")

        async def search(page: Page) -> str:
            await page.goto(f"{url}/employees")
            return await SearchPage(page, find_timeout_seconds=0.5).search("Anna")

        async with BrowserConnector(RecordingContext(), FAST) as browser, browser.page() as page:
            await helper.goto(page, f"{url}/employees")
            assert helper.logins == 1
            assert await helper.run(page, search) == "4 träffar"
            assert helper.logins == 1
            app.sessions.clear()  # the server expires every session
            assert await helper.run(page, search) == "4 träffar"
            assert helper.logins == 2

    async def test_second_expiry_is_an_auth_error(
        self, webapp: tuple[str, App], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url, app = webapp
        helper = LoginHelper.with_form(login_settings(url, monkeypatch), system="payroll")

        async def search(page: Page) -> str:
            await page.goto(f"{url}/employees")
            return await SearchPage(page, find_timeout_seconds=0.5).search("Bo")

        app.refuse_sessions = True
        try:
            async with BrowserConnector(RecordingContext(), FAST) as browser:
                with pytest.raises(ConnectorAuthError):
                    async with browser.page() as page:
                        await helper.run(page, search)
        finally:
            app.refuse_sessions = False
        assert helper.logins == 1


class TestContexts:
    """A fresh context per item: no cookies leak from one item to the next."""

    async def test_fresh_context_per_item_and_dry_run(
        self, webapp: tuple[str, App], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url, _app = webapp
        helper = LoginHelper.with_form(login_settings(url, monkeypatch), system="payroll")
        ctx = RecordingContext(dry_run=True)
        async with BrowserConnector(ctx, FAST) as browser:
            async with browser.page() as page:
                await helper.goto(page, f"{url}/employees")
                first_context = page.context
                assert await page.context.cookies()
                with pytest.raises(DryRunRefusal):
                    await SearchPage(page, ctx=ctx).submit("Sök", what="search")
            async with browser.page() as page:
                assert page.context is not first_context
                assert await page.context.cookies() == []
        assert ctx.refused_writes == [{"system": "payroll", "what": "search"}]

    async def test_contexts_shared_by_n_items(self, webapp: tuple[str, App]) -> None:
        seen: list[Any] = []
        async with BrowserConnector(None, FAST.model_copy(update={"items_per_context": 2})) as browser:
            for _ in range(3):
                async with browser.page() as page:
                    seen.append(page.context)
        assert seen[0] is seen[1] and seen[2] is not seen[0]

    async def test_concurrent_items_share_and_close_contexts(self, webapp: tuple[str, App]) -> None:
        url, _app = webapp
        connector = BrowserConnector(None, FAST.model_copy(update={"items_per_context": 2}))
        async with connector as browser:
            contexts: list[Any] = []

            async def item() -> None:
                async with browser.page() as page:
                    contexts.append(page.context)
                    await page.goto(f"{url}/login")

            await asyncio.gather(*(item() for _ in range(5)))
            assert len({id(c) for c in contexts}) == 3
            running = await browser.start()
            assert len(running.contexts) <= 1  # only the current, half-used one stays open
