"""End to end in real Chromium, against the sandbox: Ronney prepares, two case workers approve (four-eyes),
the item leaves the queue, and the decision reaches the e-service.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, expect, sync_playwright
from sqlalchemy import select

from connectors.http import DEFAULT_BREAKERS
from core.engine import Engine
from core.registry import Registry
from core.storage.models import ReviewItem, ReviewState
from core.storage.web_models import Role
from core.testing import make_settings, run_robot, temporary_database
from core.testing.browser import launch_chromium
from core.testing.web import PASSWORD, enrol_totp, log_in_page
from core.web.app import create_app
from core.web.auth import Grant, create_user, hash_password
from robots.ronney.robot import Ronney
from sandbox.testing import running_sandbox

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]
OPTIONS: dict[str, Any] = {"applications": 10, "tenant": "0000", "municipality": "Testkommun", "anomaly_rate": 0}


def off_loop(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` in a thread of its own: Playwright's sync API holds this thread's event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        try:
            yield chromium
        finally:
            chromium.close()


def tick_confirmations(page: Any) -> None:
    """Tick what Ronney asks the case worker to confirm before approving (an unofficial norm table)."""
    for box in page.locator('input[type="checkbox"][form="decide-form"]').all():
        box.check()


def test_four_eyes_approval_in_the_browser_reaches_the_sandbox(tmp_path: Path, browser: Browser) -> None:
    DEFAULT_BREAKERS.reset()
    with running_sandbox(seed=4, **OPTIONS) as url, temporary_database(tmp_path) as db:
        settings = make_settings(
            tmp_path,
            robots={"ronney": {"pdf": False, "four_eyes": True}},
            connectors={"eservice": {"base_url": f"{url}/eservice"}, "registers": {"base_url": f"{url}/registers"}},
        )
        off_loop(run_robot, Ronney, db=db, app_settings=settings)
        with db.session() as s:
            # One with a proposed amount (without one, the decision is made in the e-service itself).
            review = next(
                (
                    r
                    for r in s.scalars(
                        select(ReviewItem)
                        .where(ReviewItem.queue == "ronney.application", ReviewItem.state == ReviewState.open)
                        .order_by(ReviewItem.id)
                    )
                    if (r.material.get("proposal") or {}).get("amount") is not None
                ),
                None,
            )
            assert review is not None and review.four_eyes
            review_id, application_id = review.id, review.material["application_id"]
            amount = (review.material.get("proposal") or {}).get("amount")
        for name in ("anna", "bertil"):
            create_user(
                db,
                name,
                display_name=name.capitalize(),
                password_hash=hash_password(PASSWORD),
                grants=[Grant(Role.case_worker, "0000", "ronney.application")],
            )
            enrol_totp(db, name)  # their second factor, as if they had scanned the QR code
        registry = Registry(robots={"ronney": Ronney})
        app = create_app(settings, db, registry)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the web app did not start"
            time.sleep(0.02)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        try:
            for n, name in enumerate(("anna", "bertil")):
                context = browser.new_context(locale="sv-SE")
                page = context.new_page()
                log_in_page(page, base, name, db=db)
                page.goto(f"{base}/inbox?queue=ronney.application")
                page.locator(f"a[data-item-id='{review_id}']").click()
                expect(page).to_have_url(f"{base}/inbox/items/{review_id}")
                tick_confirmations(page)
                page.get_by_role("button", name="Godkänn").click()
                if n == 0:  # the first approval is recorded; a second person must approve
                    with db.session() as s:
                        row = s.get(ReviewItem, review_id)
                        assert row is not None and row.state == ReviewState.open and row.first_approver == "user:anna"
                    # The same person cannot approve twice.
                    page.goto(f"{base}/inbox/items/{review_id}")
                    tick_confirmations(page)
                    page.get_by_role("button", name="Godkänn").click()
                    with db.session() as s:
                        row = s.get(ReviewItem, review_id)
                        assert row is not None and row.state == ReviewState.open
                context.close()
            with db.session() as s:
                row = s.get(ReviewItem, review_id)
                assert row is not None and row.state == ReviewState.approved and row.decided_by == "user:bertil"
            # The item has left the queue.
            context = browser.new_context(locale="sv-SE")
            page = context.new_page()
            log_in_page(page, base, "anna", db=db)
            page.goto(f"{base}/inbox?queue=ronney.application")
            assert page.locator(f"a[data-item-id='{review_id}']").count() == 0
            context.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
        # A worker carries the decision out: the e-service has it, once.
        off_loop(asyncio.run, Engine.from_database(db, settings, registry).drain("ronney", "0000"))
        decision = httpx.get(f"{url}/eservice/applications/{application_id}/decision").json()
        assert decision["decided_by"] == "bertil" and decision["decision"] in ("approved", "partially_approved")
        assert decision["amount"] == amount
    DEFAULT_BREAKERS.reset()


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """The web app on a free local port, for as long as the block runs; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the web app did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_a_changed_line_without_a_reason_is_refused_on_the_form_and_nothing_typed_is_lost(
    tmp_path: Path, browser: Browser
) -> None:
    DEFAULT_BREAKERS.reset()
    with running_sandbox(seed=4, **OPTIONS) as url, temporary_database(tmp_path) as db:
        settings = make_settings(
            tmp_path,
            robots={"ronney": {"pdf": False, "four_eyes": False}},
            connectors={"eservice": {"base_url": f"{url}/eservice"}, "registers": {"base_url": f"{url}/registers"}},
        )
        off_loop(run_robot, Ronney, db=db, app_settings=settings)
        with db.session() as s:
            review = next(
                r
                for r in s.scalars(
                    select(ReviewItem)
                    .where(ReviewItem.queue == "ronney.application", ReviewItem.state == ReviewState.open)
                    .order_by(ReviewItem.id)
                )
                if (r.material.get("proposal") or {}).get("amount") is not None
            )
            review_id = review.id
            lines = review.material["calculation"]["lines"]
            index = next(i for i, line in enumerate(lines) if line["amount"] > 0)
            label = lines[index]["label"]
        create_user(
            db,
            "anna",
            display_name="Anna",
            password_hash=hash_password(PASSWORD),
            grants=[Grant(Role.case_worker, "0000", "ronney.application")],
        )
        enrol_totp(db, "anna")
        app = create_app(settings, db, Registry(robots={"ronney": Ronney}))
        with serving(app) as base:
            context = browser.new_context(locale="sv-SE")
            page = context.new_page()
            log_in_page(page, base, "anna", db=db)
            page.goto(f"{base}/inbox/items/{review_id}")
            page.locator("details.change-lines summary").click()
            page.locator(f'select[name="data.line.{index}.decision"]').select_option("delvis")
            page.locator(f'input[name="data.line.{index}.amount"]').fill("1")
            tick_confirmations(page)
            page.get_by_role("button", name="Godkänn").click()
            # Refused on the form, in Swedish, naming the line; what was typed is still there.
            expect(page.get_by_text("Skäl saknas för:", exact=False)).to_contain_text(label)
            assert page.locator(f'select[name="data.line.{index}.decision"]').input_value() == "delvis"
            assert page.locator(f'input[name="data.line.{index}.amount"]').input_value() == "1"
            with db.session() as s:
                row = s.get(ReviewItem, review_id)
                assert row is not None and row.state == ReviewState.open
            page.locator(f'input[name="data.line.{index}.reason"]').fill("Kostnaden är inte styrkt")
            page.get_by_role("button", name="Godkänn").click()
            with db.session() as s:
                row = s.get(ReviewItem, review_id)
                assert row is not None and row.state == ReviewState.approved
                assert (row.decision_data or {})[f"line.{index}.reason"] == "Kostnaden är inte styrkt"
            context.close()
    DEFAULT_BREAKERS.reset()
