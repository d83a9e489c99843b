"""End to end in real Chromium: the effects page, its charts, its links to how each figure is computed, axe-clean."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from core.testing import ExampleRobot, FakeClock, run_robot, temporary_database
from core.testing.browser import launch_chromium
from core.testing.server import serve_app
from core.testing.web import WebEnv, log_in_page, make_web_env
from robots.bosse.robot import Bosse
from robots.harry.robot import Harry
from robots.lena.robot import LenaRobot
from robots.ronney.robot import Ronney

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROBOTS = {"example": ExampleRobot, "ronney": Ronney, "bosse": Bosse, "lena": LenaRobot, "harry": Harry}


@dataclass
class Served:
    """The app over HTTP on a free loopback port."""

    env: WebEnv
    base_url: str
    month: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("web-effects")
    now = datetime.now(UTC)
    with temporary_database(tmp) as db:
        env = make_web_env(db, tmp, robots=ROBOTS, clock=FakeClock(now))
        run_robot(ExampleRobot, db=db, tmp_path=tmp, clock=env.clock)
        month = f"{now.astimezone(ZoneInfo('Europe/Stockholm')):%Y-%m}"
        with serve_app(env.app, lifespan="on") as base_url:
            yield Served(env, base_url, month)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        try:
            yield chromium
        finally:
            chromium.close()


def test_operations_reads_the_effects_and_follows_a_figure_to_its_computation(served: Served, browser: Browser) -> None:
    context = browser.new_context(locale="sv-SE", accept_downloads=True)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        log_in_page(page, served.base_url, "sara", at=served.env.clock.now(), db=served.env.db)
        page.get_by_role("navigation").get_by_role("link", name="Effekter").click()
        expect(page).to_have_url(f"{served.base_url}/effekter")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Effekter")
        for name in ("Ronney", "Bosse", "Lena", "HaRry", "Exempelroboten"):
            expect(page.get_by_role("heading", level=2, name=name, exact=True)).to_be_visible()
        handled = page.locator('section[data-robot="example"] tr[data-measure="handled"] [data-col="value"]')
        expect(handled).to_have_text("14 st")
        # The month by month charts are server-rendered SVG with a title for screen readers.
        expect(page.locator('section[data-robot="lena"] svg[role="img"]').first).to_be_visible()
        link = page.locator('section[data-robot="lena"] tr[data-measure="kolada_continuity"] a')
        link.click()
        target = page.locator("#how-lena-kolada_continuity")
        expect(target).to_be_in_viewport()
        expect(page.locator("#how-lena-kolada_continuity + dd")).to_contain_text("65 år")
        # Another month through the form; the CSV downloads.
        page.get_by_label("Månad (ÅÅÅÅ-MM)").fill("2020-01")
        page.get_by_role("button", name="Visa").click()
        expect(
            page.locator('section[data-robot="example"] tr[data-measure="handled"] [data-col="value"]')
        ).to_have_text("0 st")
        with page.expect_download() as info:
            page.get_by_role("link", name="Ladda ner månaden som CSV").click()
        assert info.value.suggested_filename == "effekter-0000-2020-01.csv"
        page.get_by_role("link", name="Månadsrapport för utskrift").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Effektrapport")
        assert not errors, errors
    finally:
        context.close()


def test_effects_pages_have_no_serious_accessibility_violations(served: Served, browser: Browser) -> None:
    """axe-core (WCAG 2.0/2.1 A and AA rules) in real Chromium, as for the other pages."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    problems: list[str] = []
    context = browser.new_context(locale="sv-SE")
    try:
        page = context.new_page()
        log_in_page(page, served.base_url, "sara", at=served.env.clock.now(), db=served.env.db)
        for path in ("/effekter", f"/effekter/rapport?tenant=0000&month={served.month}", "/ops"):
            page.goto(served.base_url + path)
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
