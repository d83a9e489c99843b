"""The HTTP connector over real HTTP against a small FastAPI app on a local uvicorn."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from connectors.http import BreakerRegistry, CircuitOpen, HttpConnector, HttpSettings, TokenCache
from core.errors import ConnectorUnavailable
from core.storage.models import AuditEvent
from core.testing import FakeClock, RecordingContext, run_context, temporary_database
from core.testing.server import serve_app

PNR = "19121212-1212"


class State:
    """What the test server remembers."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.healthy = False
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        self.expires_in = 60


def build_app(state: State) -> FastAPI:
    app = FastAPI()

    @app.get("/flaky/{key}")
    async def flaky(key: str, fails: int = 2) -> Response:
        state.calls[key] += 1
        if state.calls[key] <= fails:
            return JSONResponse({"error": "busy"}, status_code=503)
        return JSONResponse({"ok": True, "calls": state.calls[key]})

    @app.get("/limited/{key}")
    async def limited(key: str) -> Response:
        state.calls[key] += 1
        if state.calls[key] == 1:
            return JSONResponse({}, status_code=429, headers={"Retry-After": "2"})
        return JSONResponse({"ok": True})

    @app.get("/health-dependent")
    async def health_dependent() -> Response:
        state.calls["health"] += 1
        return JSONResponse({"ok": True}) if state.healthy else JSONResponse({}, status_code=500)

    @app.get("/hang")
    async def hang() -> Response:
        await asyncio.sleep(3)
        return JSONResponse({})

    @app.post("/oauth/token")
    async def token(request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "client_credentials" or not request.headers.get("authorization", "").startswith(
            "Basic "
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        state.tokens_issued += 1
        value = f"token-{state.tokens_issued}"
        state.valid_tokens.add(value)
        return JSONResponse({"access_token": value, "token_type": "Bearer", "expires_in": state.expires_in})

    @app.get("/protected")
    async def protected(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if auth.removeprefix("Bearer ") not in state.valid_tokens:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"token": auth.removeprefix("Bearer ")})

    @app.get("/persons/{pnr}/incomes")
    async def incomes(pnr: str) -> Response:
        return JSONResponse({"incomes": [{"source": "FK", "amount": 4200}]})

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, State]]:
    state = State()
    with serve_app(build_app(state)) as url:
        yield url, state


def connector(url: str, clock: Any = None, ctx: Any = None, **overrides: Any) -> HttpConnector:
    settings = HttpSettings.model_validate(
        {"base_url": url, "retry": {"jitter": 0, "backoff_base_seconds": 0.05}, **overrides}
    )
    return HttpConnector(
        ctx or RecordingContext(),
        "system",
        settings,
        clock=clock or FakeClock(),
        breakers=BreakerRegistry(),
        token_cache=TokenCache(),
    )


class TestRetriesOverHttp:
    """Transient failures are retried and then succeed; Retry-After is honoured."""

    async def test_retry_then_success(self, server: tuple[str, State]) -> None:
        url, state = server
        async with connector(url) as api:
            assert await api.get_json("/flaky/a", params={"fails": 2}) == {"ok": True, "calls": 3}
        assert state.calls["a"] == 3

    async def test_429_with_retry_after_is_waited_for(self, server: tuple[str, State]) -> None:
        url, state = server
        waits: list[float] = []

        class Clock(FakeClock):
            async def sleep(self, seconds: float) -> None:
                waits.append(seconds)
                await super().sleep(seconds)

        async with connector(url, clock=Clock()) as api:
            assert await api.get_json("/limited/b") == {"ok": True}
        assert waits == [2.0] and state.calls["b"] == 2

    async def test_hanging_request_times_out(self, server: tuple[str, State]) -> None:
        url, _state = server
        started = time.monotonic()
        async with connector(url, timeout_seconds=0.3, retry={"attempts": 1}) as api:
            with pytest.raises(ConnectorUnavailable) as err:
                await api.get("/hang")
        assert err.value.code == "timeout"
        assert time.monotonic() - started < 2


class TestCircuitBreakerOverHttp:
    """The circuit opens after consecutive failures, refuses without calling, then probes and closes."""

    async def test_opens_and_closes(self, server: tuple[str, State]) -> None:
        url, state = server
        clock = FakeClock()
        state.healthy = False
        breakers = BreakerRegistry()
        settings = HttpSettings.model_validate(
            {
                "base_url": url,
                "retry": {"attempts": 1},
                "circuit_breaker": {"failure_threshold": 3, "cooldown_seconds": 30},
            }
        )
        api = HttpConnector(RecordingContext(), "staffing", settings, clock=clock, breakers=breakers)
        other_run = HttpConnector(RecordingContext(), "staffing", settings, clock=clock, breakers=breakers)
        try:
            before = state.calls["health"]
            for _ in range(3):
                with pytest.raises(ConnectorUnavailable):
                    await api.get("/health-dependent")
            with pytest.raises(CircuitOpen):
                await other_run.get("/health-dependent")  # shared per system
            assert state.calls["health"] - before == 3
            state.healthy = True
            clock.advance(30)
            assert (await api.get("/health-dependent")).status_code == 200  # the probe
            assert (await other_run.get("/health-dependent")).status_code == 200
            assert breakers.get("staffing", settings.circuit_breaker).state == "closed"
        finally:
            await api.aclose()
            await other_run.aclose()


class TestOAuth2:
    """The client-credentials token is fetched once, cached, and refreshed on expiry and on 401."""

    async def test_token_cached_refreshed_on_expiry_and_401(
        self, server: tuple[str, State], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url, state = server
        monkeypatch.setenv("CLIENT_SECRET", "s3cret")
        clock = FakeClock()
        issued_before = state.tokens_issued
        auth = {
            "kind": "oauth2_client_credentials",
            "token_url": "/oauth/token",
            "client_id": "kollega",
            "client_secret": {"env": "CLIENT_SECRET"},
            "refresh_margin_seconds": 10,
        }
        async with connector(url, clock=clock, auth=auth) as api:
            first = (await api.get_json("/protected"))["token"]
            assert (await api.get_json("/protected"))["token"] == first
            assert state.tokens_issued - issued_before == 1
            clock.advance(51)  # 60 s lifetime minus the 10 s margin
            second = (await api.get_json("/protected"))["token"]
            assert second != first and state.tokens_issued - issued_before == 2
            state.valid_tokens.discard(second)  # revoked by the server
            third = (await api.get_json("/protected"))["token"]
            assert third not in (first, second) and state.tokens_issued - issued_before == 3


class TestAccessLog:
    """Reads of personal data are written to the audit log with subject, system and purpose."""

    async def test_data_access_event(self, server: tuple[str, State], tmp_path: Path) -> None:
        url, _state = server
        with temporary_database(tmp_path) as db:
            ctx = run_context(db, tmp_path, connectors={"registers": {"base_url": url}})
            api = HttpConnector.for_run(ctx, "registers")
            try:
                data = await api.get_json(
                    f"/persons/{PNR}/incomes", subject=PNR, purpose="utredning av ekonomiskt bistånd"
                )
            finally:
                await api.aclose()
            assert data["incomes"][0]["amount"] == 4200
            with db.session() as s:
                events = s.scalars(select(AuditEvent).where(AuditEvent.action == "data.read")).all()
                assert len(events) == 1
                ev = events[0]
                assert (ev.subject, ev.purpose, ev.actor, ev.tenant) == (
                    PNR,
                    "utredning av ekonomiskt bistånd",
                    "robot:example",
                    "0000",
                )
                assert ev.details["system"] == "registers"
                assert PNR not in ev.details["path"]
            assert ctx.audit.verify().ok
