"""Every connector against the sandbox municipality over real HTTP and in real Chromium, with fault injection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
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
from connectors.http import BreakerRegistry, CircuitOpen, HttpConnector, HttpSettings, TokenCache
from connectors.sms import SmsClient, SmsEvent, SmsSettings, SmsWebhook
from core.errors import ConnectorUnavailable
from core.storage.models import Artifact, AuditEvent
from core.testing import FakeClock, RecordingContext, run_context, temporary_database
from core.testing.server import serve_app

sandbox_testing = pytest.importorskip("sandbox.testing")

OPTIONS: dict[str, Any] = {
    "applications": 10,
    "substitutes": 12,
    "open_shifts": 6,
    "homecare_visits": 10,
    "homecare_staff": 4,
    "employees": 60,
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with sandbox_testing.running_sandbox(seed=11, **OPTIONS) as url:
        yield url


@pytest.fixture
def faults(sandbox: str) -> Iterator[Any]:
    """Set faults on a system for one test; cleared afterwards."""
    touched: list[str] = []

    def set_faults(system: str, **settings: Any) -> None:
        touched.append(system)
        httpx.post(f"{sandbox}/admin/faults/{system}", json=settings).raise_for_status()

    yield set_faults
    for system in touched:
        httpx.delete(f"{sandbox}/admin/faults/{system}").raise_for_status()


class RecordingClock(FakeClock):
    """A fake clock that remembers its sleeps."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


def http(
    url: str,
    system: str,
    *,
    clock: FakeClock | None = None,
    ctx: Any = None,
    breakers: BreakerRegistry | None = None,
    **overrides: Any,
) -> HttpConnector:
    settings = HttpSettings.model_validate(
        {"base_url": f"{url}/{system}", "retry": {"jitter": 0, "backoff_base_seconds": 0.01}, **overrides}
    )
    return HttpConnector(
        ctx or RecordingContext(),
        system,
        settings,
        clock=clock or FakeClock(),
        breakers=breakers or BreakerRegistry(),
        token_cache=TokenCache(),
    )


def a_substitute(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/staffing/substitutes").json()["items"][0])


class TestHttpAgainstSandbox:
    """Retries, Retry-After, the circuit breaker, timeouts and the access log, with the sandbox's faults."""

    async def test_register_lookup_retried_then_audited(self, sandbox: str, faults: Any, tmp_path: Path) -> None:
        pnr = a_substitute(sandbox)["personnummer"]
        faults("registers", fail_next=2, error_status=503)
        body = {
            "personnummer": pnr,
            "period": {"from": "2026-08-01", "to": "2026-10-31"},
            "case_id": "EB-1",
            "purpose": "utredning av ekonomiskt bistånd",
            "legal_basis": "SoL 4 kap. 1 §",
        }
        with temporary_database(tmp_path) as db:
            ctx = run_context(db, tmp_path)
            async with http(sandbox, "registers", ctx=ctx) as api:
                answer = await api.post_json(
                    "lookup", body, write=False, idempotent=True, subject=pnr, purpose="utredning av ekonomiskt bistånd"
                )
            assert answer["personnummer"] == pnr
            with db.session() as s:
                events = s.scalars(select(AuditEvent).where(AuditEvent.action == "data.read")).all()
                assert [(e.subject, e.details["system"]) for e in events] == [(pnr, "registers")]
        described = httpx.get(f"{sandbox}/admin/faults/registers").json()
        assert described["remaining"]["fail_next"] == 0  # both injected failures were met and retried

    async def test_429_retry_after(self, sandbox: str, faults: Any) -> None:
        faults("staffing", fail_next=1, error_status=429, retry_after_seconds=1)
        clock = RecordingClock()
        async with http(sandbox, "staffing", clock=clock) as api:
            assert (await api.get_json("units")) is not None
        assert clock.sleeps == [1.0]

    async def test_circuit_opens_and_closes(self, sandbox: str, faults: Any) -> None:
        faults("staffing", error_rate=1.0, error_status=500)
        clock = FakeClock()
        breakers = BreakerRegistry()
        async with http(
            sandbox,
            "staffing",
            clock=clock,
            breakers=breakers,
            retry={"attempts": 1},
            circuit_breaker={"failure_threshold": 2, "cooldown_seconds": 60},
        ) as api:
            for _ in range(2):
                with pytest.raises(ConnectorUnavailable):
                    await api.get("units")
            with pytest.raises(CircuitOpen):
                await api.get("units")
            httpx.delete(f"{sandbox}/admin/faults/staffing").raise_for_status()
            clock.advance(60)
            assert (await api.get("units")).status_code == 200
            assert api.breaker is not None and api.breaker.state == "closed"

    async def test_hanging_request_times_out(self, sandbox: str, faults: Any) -> None:
        faults("staffing", hang_next=1)
        started = time.monotonic()
        async with http(sandbox, "staffing", timeout_seconds=0.5, retry={"attempts": 1}) as api:
            with pytest.raises(ConnectorUnavailable) as err:
                await api.get("units")
            assert err.value.code == "timeout"
            assert (await api.get("units")).status_code == 200
        assert time.monotonic() - started < 5

    async def test_maintenance_page_is_unavailable_not_json(self, sandbox: str, faults: Any) -> None:
        faults("staffing", maintenance=True)
        async with http(sandbox, "staffing", retry={"attempts": 2}) as api:
            with pytest.raises(ConnectorUnavailable) as err:
                await api.get_json("units")
        assert err.value.code == "http_503"


class TestSmsAgainstSandbox:
    """Offers sent through the sandbox gateway get JA/NEJ replies, by polling and by signed webhook."""

    async def test_offers_replies_and_webhook(self, sandbox: str) -> None:
        received: list[SmsEvent] = []
        hook_app = FastAPI()
        hook = SmsWebhook("delad-hemlighet", signature_header="X-Sandbox-Signature", timestamp_header=None)

        @hook_app.post("/hooks/sms")
        async def sms_hook(event: SmsEvent = Depends(hook)) -> dict[str, bool]:
            received.append(event)
            return {"ok": True}

        subs = httpx.get(f"{sandbox}/staffing/substitutes").json()["items"]
        code = httpx.get(f"{sandbox}/staffing/shifts").json()["items"][0]["code"]
        settings = SmsSettings.model_validate({"base_url": f"{sandbox}/", "sender": "Bemanningen"})
        with serve_app(hook_app) as hook_url:
            httpx.put(
                f"{sandbox}/sms/webhook", json={"url": f"{hook_url}/hooks/sms", "secret": "delad-hemlighet"}
            ).raise_for_status()
            try:
                async with SmsClient(
                    RecordingContext(), settings, clock=FakeClock(), breakers=BreakerRegistry()
                ) as sms:
                    sent = [
                        await sms.send(
                            s["phone"],
                            f"Pass {code} i morgon 07-13. Svara JA {code} eller NEJ.",
                            reference=f"offer-{s['id']}",
                        )
                        for s in subs
                    ]
                    again = await sms.send(
                        subs[0]["phone"],
                        f"Pass {code} i morgon 07-13. Svara JA {code} eller NEJ.",
                        reference=f"offer-{subs[0]['id']}",
                    )
                    assert again.id == sent[0].id  # idempotent by reference
                    assert (await sms.status(sent[0].id)).status in ("delivered", "failed")
                    httpx.post(f"{sandbox}/admin/clock", json={"advance_minutes": 24 * 60}).raise_for_status()
                    batch = await sms.poll_replies()
                    ids = {m.id for m in sent}
                    assert batch.messages and all(m.in_reply_to in ids for m in batch.messages)
                    assert any(m.answer in ("JA", "NEJ") for m in batch.messages)
                    assert (await sms.poll_replies(batch.cursor)).messages == []
                deadline = time.monotonic() + 10
                while len(received) < len(batch.messages) and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                httpx.put(f"{sandbox}/sms/webhook", json={"url": None, "secret": None})
        assert {e.inbound.id for e in received if e.inbound} == {m.id for m in batch.messages}


class SearchPage(PageObject):
    """PersonalLön's employee search."""

    path = "/payroll/search"
    system = "payroll"

    async def search(self, query: str) -> str:
        await self.fill("Anställningsnummer eller namn", query)
        await self.click("Sök")
        caption = self.page.locator("caption")
        if await caption.count():
            return (await caption.inner_text()).strip()
        return (await self.texts("status"))[0]


FAST = BrowserSettings(find_timeout_seconds=1, timeout_seconds=10)


@pytest.mark.browser
class TestPayrollInChromium:
    """The browser connector drives the sandbox's payroll application by labels."""

    def helper(self, sandbox: str, monkeypatch: pytest.MonkeyPatch) -> LoginHelper:
        monkeypatch.setenv("PAYROLL_USER", "robot.harry")
        monkeypatch.setenv("PAYROLL_PASSWORD", "sandlada-harry")
        return LoginHelper.with_form(
            FormLoginSettings.model_validate(
                {
                    "base_url": sandbox,
                    "login_path": "/payroll/login",
                    "username": {"env": "PAYROLL_USER"},
                    "password": {"env": "PAYROLL_PASSWORD"},
                }
            ),
            system="payroll",
        )

    async def test_session_expiry_relogin_and_alt_layout(
        self, sandbox: str, faults: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        helper = self.helper(sandbox, monkeypatch)

        async def search(page: Page) -> str:
            await page.goto(f"{sandbox}/payroll/search")
            return await SearchPage(page, find_timeout_seconds=1).search("a")

        async with BrowserConnector(RecordingContext(), FAST) as browser, browser.page() as page:
            await helper.goto(page, f"{sandbox}/payroll/search")
            first = await helper.run(page, search)
            assert first.startswith("Sökresultat") and helper.logins == 1
            faults("payroll", session_expiry_after=3)  # the session has made three requests already
            assert await helper.run(page, search) == first
            assert helper.logins == 2
            faults("payroll", alt_layout=True)
            assert await helper.run(page, search) == first  # other ids and classes, same labels

    async def test_missing_label_is_a_clear_error_with_a_screenshot(
        self, sandbox: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        helper = self.helper(sandbox, monkeypatch)
        with temporary_database(tmp_path) as db:
            ctx = run_context(db, tmp_path)
            async with BrowserConnector(ctx, FAST) as browser:
                with pytest.raises(PageLayoutError) as err:
                    async with browser.page() as page:
                        await helper.goto(page, f"{sandbox}/payroll/search")
                        await SearchPage(page, find_timeout_seconds=0.5).fill("Personnummer", "19121212-1212")
            assert "Personnummer" in str(err.value)
            with db.session() as s:
                artifacts = s.scalars(select(Artifact).order_by(Artifact.id)).all()
                assert [(a.kind, a.sensitive) for a in artifacts] == [("screenshot", True), ("html", True)]
            assert err.value.details["artifacts"] == [a.id for a in artifacts]
