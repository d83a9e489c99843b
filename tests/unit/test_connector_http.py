"""Unit tests of the HTTP connector: breaker, backoff, Retry-After, redaction, dry run (httpx.MockTransport)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from connectors.base import validate_settings
from connectors.http import (
    BreakerRegistry,
    CircuitBreaker,
    CircuitOpen,
    CircuitState,
    HttpConnector,
    HttpSettings,
    RetrySettings,
    TokenCache,
    backoff_delay,
    parse_retry_after,
)
from core.errors import ConfigError, ConnectorAuthError, ConnectorError, ConnectorUnavailable, DryRunRefusal
from core.testing import FakeClock, RecordingContext

PNR = "19121212-1212"


class SleepRecorder(FakeClock):
    """A fake clock that remembers every sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


def make(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    ctx: RecordingContext | None = None,
    clock: FakeClock | None = None,
    breakers: BreakerRegistry | None = None,
    **overrides: Any,
) -> tuple[HttpConnector, RecordingContext, SleepRecorder]:
    settings = {"base_url": "http://system.test/api", "retry": {"attempts": 3, "jitter": 0}, **overrides}
    ctx = ctx or RecordingContext()
    clk = clock or SleepRecorder()
    conn = HttpConnector(
        ctx,
        "registers",
        HttpSettings.model_validate(settings),
        clock=clk,
        transport=httpx.MockTransport(handler),
        breakers=breakers or BreakerRegistry(),
        token_cache=TokenCache(),
    )
    return conn, ctx, clk  # type: ignore[return-value]


def scripted(
    *responses: httpx.Response | Exception,
) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


class TestCircuitBreaker:
    """Opens after N consecutive failures, probes once after the cool-down, closes on success."""

    def test_opens_after_threshold_and_refuses(self) -> None:
        clock = FakeClock()
        b = CircuitBreaker("s", failure_threshold=3, cooldown_seconds=30)
        for _ in range(2):
            b.before_request(clock.now())
            b.record_failure(clock.now())
        assert b.state is CircuitState.closed
        b.before_request(clock.now())
        b.record_failure(clock.now())
        assert b.state is CircuitState.open
        with pytest.raises(CircuitOpen) as err:
            b.before_request(clock.now())
        assert isinstance(err.value, ConnectorUnavailable)
        assert err.value.code == "circuit_open"

    def test_success_resets_the_count(self) -> None:
        clock = FakeClock()
        b = CircuitBreaker("s", failure_threshold=2, cooldown_seconds=30)
        b.record_failure(clock.now())
        b.record_success()
        b.record_failure(clock.now())
        assert b.state is CircuitState.closed

    def test_half_open_probe_closes_on_success(self) -> None:
        clock = FakeClock()
        b = CircuitBreaker("s", failure_threshold=1, cooldown_seconds=30)
        b.record_failure(clock.now())
        clock.advance(29)
        with pytest.raises(CircuitOpen):
            b.before_request(clock.now())
        clock.advance(1)
        b.before_request(clock.now())  # the probe
        assert b.state is CircuitState.half_open
        with pytest.raises(CircuitOpen):
            b.before_request(clock.now())  # only one probe at a time
        b.record_success()
        assert b.state is CircuitState.closed
        b.before_request(clock.now())

    def test_failed_probe_reopens_for_a_new_cooldown(self) -> None:
        clock = FakeClock()
        b = CircuitBreaker("s", failure_threshold=5, cooldown_seconds=10)
        for _ in range(5):
            b.record_failure(clock.now())
        clock.advance(10)
        b.before_request(clock.now())
        b.record_failure(clock.now())
        assert b.state is CircuitState.open
        clock.advance(9)
        with pytest.raises(CircuitOpen):
            b.before_request(clock.now())
        clock.advance(1)
        b.before_request(clock.now())
        assert b.state is CircuitState.half_open

    def test_release_frees_the_probe_slot(self) -> None:
        clock = FakeClock()
        b = CircuitBreaker("s", failure_threshold=1, cooldown_seconds=0)
        b.record_failure(clock.now())
        b.before_request(clock.now())
        b.release()
        b.before_request(clock.now())
        assert b.state is CircuitState.half_open

    def test_registry_shares_one_breaker_per_system(self) -> None:
        reg = BreakerRegistry()
        settings = HttpSettings(base_url="http://x").circuit_breaker
        assert reg.get("a", settings) is reg.get("a", settings)
        assert reg.get("a", settings) is not reg.get("b", settings)


class TestBackoff:
    """Exponential backoff, capped; Retry-After as seconds or HTTP date."""

    def test_exponential_and_capped(self) -> None:
        retry = RetrySettings(backoff_base_seconds=1, backoff_cap_seconds=5, jitter=0)
        assert [backoff_delay(n, retry) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]

    def test_jitter_adds_at_most_the_fraction(self) -> None:
        retry = RetrySettings(backoff_base_seconds=2, jitter=0.5)
        assert all(2 <= backoff_delay(1, retry) <= 3 for _ in range(50))

    def test_parse_retry_after(self) -> None:
        now = FakeClock().now()
        assert parse_retry_after("7", now) == 7
        assert parse_retry_after(format_datetime(now + timedelta(seconds=12), usegmt=True), now) == 12
        assert parse_retry_after("soon", now) is None
        assert parse_retry_after(None, now) is None
        assert parse_retry_after("-3", now) == 0


class TestRetries:
    """Connect errors, 5xx and 429 are retried with backoff; Retry-After is honoured."""

    async def test_5xx_then_success(self) -> None:
        handler, seen = scripted(httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"ok": 1}))
        conn, _ctx, clock = make(handler)
        assert await conn.get_json("/x") == {"ok": 1}
        assert len(seen) == 3
        assert clock.sleeps == [0.5, 1.0]

    async def test_connect_error_then_success(self) -> None:
        handler, seen = scripted(httpx.ConnectError("refused"), httpx.Response(200, json=[]))
        conn, _ctx, _clock = make(handler)
        assert await conn.get_json("/x") == []
        assert len(seen) == 2

    async def test_429_honours_retry_after(self) -> None:
        handler, _seen = scripted(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={}))
        conn, _ctx, clock = make(handler)
        await conn.get_json("/x")
        assert clock.sleeps == [7.0]

    async def test_retry_after_http_date(self) -> None:
        clock = SleepRecorder()
        when = format_datetime(clock.now() + timedelta(seconds=4), usegmt=True)
        handler, _seen = scripted(httpx.Response(503, headers={"Retry-After": when}), httpx.Response(200, json={}))
        conn, _ctx, _ = make(handler, clock=clock)
        await conn.get_json("/x")
        assert clock.sleeps == [4.0]

    async def test_too_long_retry_after_is_left_to_the_engine(self) -> None:
        handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "3600"}))
        conn, _ctx, clock = make(handler)
        with pytest.raises(ConnectorUnavailable) as err:
            await conn.get_json("/x")
        assert len(seen) == 1 and clock.sleeps == []
        assert err.value.details["retry_after"] == 3600

    async def test_gives_up_after_the_attempts(self) -> None:
        handler, seen = scripted(httpx.Response(500))
        conn, _ctx, _clock = make(handler)
        with pytest.raises(ConnectorUnavailable) as err:
            await conn.get("/x")
        assert len(seen) == 3 and err.value.code == "http_500"

    async def test_timeout_is_unavailable_and_chained(self) -> None:
        handler, _seen = scripted(httpx.ReadTimeout("slow"))
        conn, _ctx, _clock = make(handler)
        with pytest.raises(ConnectorUnavailable) as err:
            await conn.get("/x")
        assert err.value.code == "timeout"
        assert isinstance(err.value.__cause__, httpx.ReadTimeout)

    async def test_post_is_not_retried_after_a_5xx_but_after_429(self) -> None:
        handler, seen = scripted(httpx.Response(503))
        conn, _ctx, _clock = make(handler)
        with pytest.raises(ConnectorUnavailable):
            await conn.post_json("/decisions", {"a": 1})
        assert len(seen) == 1
        handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(201, json={"id": 3}))
        conn, _ctx, _clock = make(handler)
        assert await conn.post_json("/decisions", {"a": 1}) == {"id": 3}
        assert len(seen) == 2

    async def test_other_4xx_is_a_connector_error_unless_allowed(self) -> None:
        handler, seen = scripted(httpx.Response(404))
        conn, _ctx, _clock = make(handler)
        with pytest.raises(ConnectorError) as err:
            await conn.get("/missing")
        assert err.value.code == "http_404" and len(seen) == 1
        response = await conn.get("/missing", allow_status=(404,))
        assert response.status_code == 404

    async def test_401_is_an_auth_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REG_KEY", "k-123")
        handler, seen = scripted(httpx.Response(401))
        conn, _ctx, _clock = make(handler, auth={"kind": "api_key", "key": {"env": "REG_KEY"}})
        with pytest.raises(ConnectorAuthError):
            await conn.get("/x")
        assert seen[0].headers["X-API-Key"] == "k-123"

    async def test_circuit_opens_and_refuses_without_a_request(self) -> None:
        handler, seen = scripted(httpx.Response(503))
        conn, _ctx, _clock = make(handler, retry={"attempts": 1}, circuit_breaker={"failure_threshold": 2})
        for _ in range(2):
            with pytest.raises(ConnectorUnavailable):
                await conn.get("/x")
        with pytest.raises(CircuitOpen):
            await conn.get("/x")
        assert len(seen) == 2

    async def test_not_json_is_a_bad_response(self) -> None:
        handler, _seen = scripted(httpx.Response(200, text="<html>underhåll</html>"))
        conn, _ctx, _clock = make(handler)
        with pytest.raises(ConnectorError) as err:
            await conn.get_json("/x")
        assert err.value.code == "bad_response"


class TestRateLimit:
    """A token bucket spaces requests out."""

    async def test_requests_wait_for_tokens(self) -> None:
        handler, seen = scripted(httpx.Response(200, json={}))
        conn, _ctx, clock = make(handler, rate_limit={"requests_per_second": 2, "burst": 1})
        for _ in range(3):
            await conn.get("/x")
        assert len(seen) == 3
        assert sum(clock.sleeps) == pytest.approx(1.0)


class TestDryRunAndAudit:
    """Writes are refused in a dry run; personal reads are written to the access log."""

    async def test_dry_run_refuses_writes_before_sending(self) -> None:
        handler, seen = scripted(httpx.Response(200))
        conn, ctx, _clock = make(handler, ctx=RecordingContext(dry_run=True))
        with pytest.raises(DryRunRefusal):
            await conn.post_json("/decisions", {"x": 1}, what="decision for case 17")
        assert seen == []
        assert ctx.refused_writes == [{"system": "registers", "what": "decision for case 17"}]
        await conn.get("/x")  # reads go through

    async def test_a_post_that_only_reads_is_allowed_in_a_dry_run(self) -> None:
        handler, seen = scripted(httpx.Response(200, json={"hits": []}))
        conn, _ctx, _clock = make(handler, ctx=RecordingContext(dry_run=True))
        assert await conn.post_json("/search", {"q": "x"}, write=False) == {"hits": []}
        assert len(seen) == 1

    async def test_personal_read_is_recorded(self) -> None:
        handler, _seen = scripted(httpx.Response(200, json={"income": 1}))
        conn, ctx, _clock = make(handler)
        await conn.get_json(f"/persons/{PNR}", subject=PNR, purpose="utredning ekonomiskt bistånd")
        assert ctx.accesses == [
            {
                "subject": PNR,
                "system": "registers",
                "purpose": "utredning ekonomiskt bistånd",
                "details": {"method": "GET", "path": "/persons/<personnummer>", "status": 200},
            }
        ]

    async def test_failed_read_is_not_recorded_and_purpose_is_required(self) -> None:
        handler, _seen = scripted(httpx.Response(404))
        conn, ctx, _clock = make(handler)
        with pytest.raises(ConnectorError):
            await conn.get_json("/persons/x", subject=PNR, purpose="utredning")
        assert ctx.accesses == []
        with pytest.raises(ConfigError):
            await conn.get_json("/persons/x", subject=PNR, purpose="")

    async def test_writes_are_audited(self) -> None:
        handler, _seen = scripted(httpx.Response(201, json={}))
        conn, ctx, _clock = make(handler)
        await conn.post_json("/decisions", {}, what="beslut ärende 4", subject=PNR, purpose="verkställa beslut")
        assert ctx.events[0]["action"] == "external.write"
        assert ctx.events[0]["subject"] == PNR
        assert ctx.events[0]["details"]["system"] == "registers"


class TestRedaction:
    """URLs are redacted in logs and messages; bodies are never logged."""

    async def test_logs_and_errors_hide_personnummer_and_tokens(self) -> None:
        handler, _seen = scripted(httpx.Response(500, json={"secret": "body-content"}))
        with capture_logs() as logs:
            conn, _ctx, _clock = make(handler, retry={"attempts": 2, "jitter": 0})
            with pytest.raises(ConnectorUnavailable) as err:
                await conn.get(f"/persons/{PNR}/incomes", params={"access_token": "tok-9876", "pnr": "191212121212"})
        text = repr(logs) + str(err.value)
        assert logs, "requests and retries are logged"
        assert "1212" not in text.replace("<personnummer>", "")
        assert "tok-9876" not in text
        assert "body-content" not in text
        assert "<personnummer>" in text


class TestSettings:
    """The settings model validates a connector section and names bad keys."""

    def test_bad_section_names_the_key(self) -> None:
        with pytest.raises(ConfigError) as err:
            validate_settings(HttpSettings, {"base_url": "ftp://x", "retry": {"attempts": 0}}, "registers")
        assert "connectors.registers.base_url" in str(err.value)
        assert "connectors.registers.retry.attempts" in str(err.value)

    def test_inline_secret_is_refused(self) -> None:
        with pytest.raises(ConfigError):
            validate_settings(
                HttpSettings, {"base_url": "http://x", "auth": {"kind": "api_key", "key": "inline"}}, "registers"
            )

    def test_for_run_reuses_one_connector(self) -> None:
        ctx = RecordingContext(app_settings=type("S", (), {"connectors": {"registers": {"base_url": "http://x"}}})())
        first = HttpConnector.for_run(ctx, "registers")
        assert HttpConnector.for_run(ctx, "registers") is first
        assert ctx.resources["http:registers"] is first
        with pytest.raises(ConfigError):
            HttpConnector.for_run(ctx, "unknown")


class TestOnlyPathsUnderTheBaseUrl:
    """L4 of issue 17: credentials go to the configured system only; a path cannot point elsewhere."""

    UNSAFE = (
        "https://evil.example/steal",
        "HTTP://evil.example/steal",
        "//evil.example/steal",
        "mailto:x@evil.example",
        "../admin",
        "/persons/../../admin",
        "%2e%2e/admin",
        "persons/%2E%2E/%2e%2e/admin",
        "..\\admin",
        "persons\\..\\..\\admin",
    )

    @pytest.mark.parametrize("path", UNSAFE)
    @pytest.mark.parametrize("auth", ["api_key", "oauth2"])
    async def test_refused_before_anything_is_sent(self, path: str, auth: str, monkeypatch: pytest.MonkeyPatch) -> None:
        from connectors.http import UnsafePath

        monkeypatch.setenv("REGISTERS_SECRET", "s3cret-value")
        handler, seen = scripted(httpx.Response(200, json={"access_token": "t", "expires_in": 60}))
        settings: dict[str, Any] = (
            {"auth": {"kind": "api_key", "key": {"env": "REGISTERS_SECRET"}}}
            if auth == "api_key"
            else {
                "auth": {
                    "kind": "oauth2_client_credentials",
                    "token_url": "token",
                    "client_id": "kollega",
                    "client_secret": {"env": "REGISTERS_SECRET"},
                }
            }
        )
        conn, _, _ = make(handler, **settings)
        async with conn:
            with pytest.raises(UnsafePath) as refused:
                await conn.request("POST", path, json={"x": 1})
            with pytest.raises(UnsafePath):
                await conn.get_json(path)
        assert seen == []  # not even a token fetch
        assert refused.value.code == "unsafe_path" and refused.value.retryable is False
        assert "s3cret" not in str(refused.value)

    async def test_paths_under_the_base_url_still_work(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REGISTERS_SECRET", "s3cret-value")
        handler, seen = scripted(httpx.Response(200, json={"ok": True}))
        conn, _, _ = make(handler, auth={"kind": "api_key", "key": {"env": "REGISTERS_SECRET"}})
        async with conn:
            for path in ("/persons/42/incomes", "persons/42", "search?next=a/../b", "files/v1..2"):
                assert await conn.get_json(path) == {"ok": True}
        assert [str(r.url) for r in seen] == [
            "http://system.test/api/persons/42/incomes",
            "http://system.test/api/persons/42",
            "http://system.test/api/search?next=a/../b",
            "http://system.test/api/files/v1..2",
        ]
        assert all(r.headers["X-API-Key"] == "s3cret-value" for r in seen)

    async def test_a_personnummer_in_a_refused_path_is_not_in_the_message(self) -> None:
        from connectors.http import UnsafePath

        handler, seen = scripted(httpx.Response(200))
        conn, _, _ = make(handler)
        async with conn:
            with pytest.raises(UnsafePath) as refused:
                await conn.get(f"https://evil.example/{PNR}")
        assert PNR not in str(refused.value) and seen == []
