"""End to end in real Chromium: an overdue item is visible, sorted first, and handed to a colleague (issue 21).

The pages that show overdue, lapsed and handed-over items, and the dashboard's queue backlog,
are checked with axe-core like the other main pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, expect, sync_playwright
from sqlalchemy import select

from core.review import ReviewQueue
from core.storage.models import AuditEvent
from core.testing import FakeClock, temporary_database
from core.testing.browser import launch_chromium
from core.testing.server import serve_app
from core.testing.web import WebEnv, log_in_page, make_web_env
from core.web import alerts
from tests.integration.test_web_inbox import add_review

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass
class Served:
    """The app over HTTP on a free loopback port, with the ids of the items set up."""

    env: WebEnv
    base_url: str
    late: int
    gone: int


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("web-overdue")
    with temporary_database(tmp) as db:
        env = make_web_env(db, tmp, clock=FakeClock(datetime.now(UTC)))
        add_review(env, title="Gammal ansökan", minutes_ago=900)
        add_review(env, title="Ansökan med tid kvar", minutes_ago=300, due_in_hours=8)
        late = add_review(env, title="Försenad ansökan", minutes_ago=30, due_in_hours=0.25)
        gone = add_review(env, title="Pass som redan började", minutes_ago=60, due_in_hours=0.5)
        reviews = ReviewQueue(db, env.clock)
        assert reviews.lapse(
            gone, "Passet började 07:00 och kan inte längre tillsättas härifrån.", actor="robot:example"
        )
        alerts.sweep_reviews(db, env.settings, env.registry, reviews, env.clock)  # marks and escalates `late`
        with serve_app(env.app, lifespan="on") as base_url:
            yield Served(env, base_url, late, gone)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        try:
            yield chromium
        finally:
            chromium.close()


def test_pages_with_overdue_lapsed_and_backlog_pass_axe(served: Served, browser: Browser) -> None:
    """axe-core (WCAG 2.0/2.1 A and AA): nothing serious or critical on the inbox, the item page and the dashboard."""
    from axe_playwright_python.sync_playwright import Axe  # a dev dependency: axe-core bundled for Playwright

    axe = Axe()
    pages = [
        ("anna", "/inbox"),
        ("anna", f"/inbox/items/{served.late}"),
        ("anna", f"/inbox/items/{served.gone}"),
        ("sara", "/ops"),
    ]
    problems: list[str] = []
    for user in dict.fromkeys(u for u, _ in pages):
        context = browser.new_context(locale="sv-SE")
        try:
            page = context.new_page()
            log_in_page(page, served.base_url, user, at=served.env.clock.now(), db=served.env.db)
            for who, path in pages:
                if who != user:
                    continue
                page.goto(served.base_url + path)
                result = axe.run(
                    page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
                )
                for v in result.response["violations"]:
                    if v["impact"] in ("serious", "critical"):
                        problems.append(f"{path}: {v['id']} ({v['impact']}): {v['help']}")
                if path == "/ops":
                    expect(page.locator('tr[data-queue="example.review"] td[data-col="overdue"]')).to_have_text("1")
                    expect(page.locator('li[data-alert-kind="review_overdue"]')).to_contain_text(
                        f"Ärende {served.late}"
                    )
        finally:
            context.close()
    assert not problems, "\n".join(problems)


def test_an_overdue_item_is_first_marked_and_handed_to_a_colleague(served: Served, browser: Browser) -> None:
    context = browser.new_context(locale="sv-SE")
    try:
        page = context.new_page()
        log_in_page(page, served.base_url, "anna", at=served.env.clock.now(), db=served.env.db)
        expect(page).to_have_url(f"{served.base_url}/inbox")
        first = page.locator("table.items:not(.lapsed) tbody tr").first
        expect(first.locator("a[data-item-id]")).to_have_text("Försenad ansökan")
        expect(first.get_by_text("Försenad", exact=True)).to_be_visible()
        expect(page.locator(f'[data-lapsed-reason="{served.gone}"]')).to_contain_text("Passet började 07:00")
        first.get_by_role("link", name="Försenad ansökan").click()
        expect(page).to_have_url(f"{served.base_url}/inbox/items/{served.late}")
        expect(page.locator("#overdue-notice")).to_contain_text("Ärendet ligger kvar tills någon beslutar")
        page.get_by_label("Till kollega").select_option(label="Bertil")
        page.get_by_label("Varför (sparas som kommentar)").fill("Jag är på utbildning i dag.")
        page.get_by_role("button", name="Lämna över ärendet").click()
        expect(page).to_have_url(f"{served.base_url}/inbox")
        expect(page.get_by_role("status")).to_contain_text("Ärendet är överlämnat till Bertil.")
        row = page.locator("table.items:not(.lapsed) tbody tr").first
        expect(row.locator("a[data-item-id]")).to_have_text("Försenad ansökan")  # still first, still open
        expect(row).to_contain_text("Tilldelad bertil")
        expect(row.get_by_text("Försenad", exact=True)).to_be_visible()
    finally:
        context.close()
    assert ReviewQueue(served.env.db, served.env.clock).get(served.late).assignee == "user:bertil"
    with served.env.db.session() as s:
        handed = s.scalars(select(AuditEvent).where(AuditEvent.action == "review.handed_over")).all()
    assert [(e.actor, e.details["to"]) for e in handed] == [("user:anna", "user:bertil")]
