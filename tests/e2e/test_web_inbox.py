"""End to end in real Chromium: a case worker logs in, opens the oldest item, approves it with the keyboard."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import uvicorn
from playwright.sync_api import Browser, expect, sync_playwright
from sqlalchemy import select

from core.storage.models import ReviewItem, ReviewState
from core.testing import ExampleRobot, FakeClock, run_robot, temporary_database
from core.testing.browser import launch_chromium
from core.testing.web import PASSWORD, WebEnv, log_in_page, make_web_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass
class Served:
    """The app over HTTP on a free loopback port."""

    env: WebEnv
    base_url: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("web-e2e")
    with temporary_database(tmp) as db:
        env = make_web_env(db, tmp, clock=FakeClock(datetime.now(UTC)))
        run_robot(ExampleRobot, db=db, tmp_path=tmp)  # 7 items to review in example.review
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(env.app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the web app did not start"
            time.sleep(0.02)
        try:
            yield Served(env, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        try:
            yield chromium
        finally:
            chromium.close()


def test_case_worker_approves_the_oldest_item_with_the_keyboard(served: Served, browser: Browser) -> None:
    context = browser.new_context(locale="sv-SE")
    try:
        page = context.new_page()
        log_in_page(page, served.base_url, "anna", at=served.env.clock.now(), db=served.env.db)
        expect(page).to_have_url(f"{served.base_url}/inbox")
        expect(page.get_by_role("heading", name="Inkorg")).to_be_visible()
        page.get_by_label("Kö", exact=True).select_option("example.review")
        page.get_by_role("button", name="Filtrera").click()
        first_link = page.locator("a[data-item-id]").first
        first_id = int(first_link.get_attribute("data-item-id") or 0)
        second_id = int(page.locator("a[data-item-id]").nth(1).get_attribute("data-item-id") or 0)
        first_link.focus()
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{served.base_url}/inbox/items/{first_id}")
        expect(page.get_by_role("button", name="Godkänn")).to_be_visible()
        # Keyboard only: Tab through the page to the approve button, then Enter. (The accesskey
        # shortcuts work in desktop browsers; headless Chromium ignores accesskeys.)
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "approve":
                break
        assert page.evaluate("document.activeElement.id") == "approve"
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{served.base_url}/inbox/items/{second_id}")
        expect(page.get_by_role("status")).to_contain_text("Beslut registrerat: Godkänd.")
        with served.env.db.session() as s:
            row = s.get(ReviewItem, first_id)
        assert row is not None and row.state == ReviewState.approved and row.decided_by == "user:anna"
        page.goto(f"{served.base_url}/inbox?queue=example.review")
        assert first_id not in [
            int(x) for x in page.locator("a[data-item-id]").evaluate_all("els => els.map(e => e.dataset.itemId)")
        ]
    finally:
        context.close()


def test_forged_form_is_refused_and_other_tenant_gets_404(served: Served, browser: Browser) -> None:
    context = browser.new_context(locale="sv-SE")
    try:
        page = context.new_page()
        log_in_page(page, served.base_url, "bertil", at=served.env.clock.now(), db=served.env.db)
        item = page.locator("a[data-item-id]").first
        item_id = item.get_attribute("data-item-id")
        item.click()
        page.locator("form[action$='/decide'] input[name=csrf_token]").evaluate("el => el.value = 'forged'")
        page.get_by_role("button", name="Godkänn").click()
        expect(page.get_by_role("heading", name="Formuläret har gått ut")).to_be_visible()
        page.goto(f"{served.base_url}/inbox")
        page.get_by_role("button", name="Logga ut").click()
        page.wait_for_url("**/login?out=1")
        expect(page.get_by_role("status")).to_contain_text("Du är utloggad")
        log_in_page(page, served.base_url, "karin", at=served.env.clock.now(), db=served.env.db)
        response = page.goto(f"{served.base_url}/inbox/items/{item_id}")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", name="Hittades inte")).to_be_visible()
    finally:
        context.close()


#: The main pages and who sees them.
A11Y_PAGES = [
    ("anna", "/inbox"),
    ("anna", "/inbox/items/FIRST"),
    ("sara", "/ops"),
    ("sara", "/ops/schedules"),
    ("johan", "/admin/users"),
    ("maria", "/audit"),
    ("maria", "/audit/checks"),
    ("anna", "/me"),
    ("anna", "/account/password"),
]


def test_main_pages_have_no_serious_accessibility_violations(served: Served, browser: Browser) -> None:
    """axe-core (WCAG 2.0/2.1 A and AA rules) in real Chromium: nothing serious or critical on the main pages."""
    from axe_playwright_python.sync_playwright import Axe  # a dev dependency: axe-core bundled for Playwright

    axe = Axe()
    with served.env.db.session() as s:
        first = s.scalars(
            select(ReviewItem.id).where(ReviewItem.state == ReviewState.open).order_by(ReviewItem.id)
        ).first()
    problems: list[str] = []
    for user in dict.fromkeys(u for u, _ in A11Y_PAGES):
        context = browser.new_context(locale="sv-SE")
        try:
            page = context.new_page()
            log_in_page(page, served.base_url, user, at=served.env.clock.now(), db=served.env.db)
            for who, path in A11Y_PAGES:
                if who != user:
                    continue
                page.goto(served.base_url + path.replace("FIRST", str(first)))
                result = axe.run(
                    page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
                )
                for v in result.response["violations"]:
                    if v["impact"] in ("serious", "critical"):
                        problems.append(
                            f"{path}: {v['id']} ({v['impact']}): {v['help']} – {[n['target'] for n in v['nodes'][:3]]}"
                        )
        finally:
            context.close()
    assert not problems, "\n".join(problems)


def test_first_login_enrols_the_second_factor_in_the_browser(served: Served, browser: Browser) -> None:
    """A person without a second factor scans (here: reads) the key, confirms a code, keeps recovery codes."""
    from axe_playwright_python.sync_playwright import Axe

    from core.storage.web_models import User
    from core.web.mfa import code_at

    with served.env.db.session() as s:
        user = s.scalar(select(User).where(User.username == "erik"))
        assert user is not None
        user.totp_secret = user.totp_confirmed_at = user.totp_last_step = None
    context = browser.new_context(locale="sv-SE")
    try:
        page = context.new_page()
        page.goto(f"{served.base_url}/login")
        page.get_by_label("Användarnamn").fill("erik")
        page.get_by_label("Lösenord").fill(PASSWORD)
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{served.base_url}/login/mfa/enrol")
        assert page.locator("figure.qr svg").count() == 1  # the QR code renders under the strict CSP
        result = Axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa"]}})
        serious = [v["id"] for v in result.response["violations"] if v["impact"] in ("serious", "critical")]
        assert not serious, serious
        key = page.locator("#totp-secret").inner_text().replace(" ", "")
        page.get_by_label("Kod").fill(code_at(key, served.env.clock.now()))
        page.keyboard.press("Enter")
        expect(page.locator("#recovery-codes li")).to_have_count(10)
        page.get_by_role("link", name="Jag har sparat koderna – fortsätt").click()
        expect(page).to_have_url(f"{served.base_url}/inbox")
    finally:
        context.close()
