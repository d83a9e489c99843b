"""Unit tests of the SMS connector: numbers, webhook signatures, replies (httpx.MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest

from connectors.http import BreakerRegistry
from connectors.sms import (
    DeliveryStatus,
    InboundSms,
    SmsClient,
    SmsSettings,
    SmsWebhook,
    WebhookRejected,
    normalize_msisdn,
    sign_webhook,
)
from core.errors import BusinessError, ConnectorError, DryRunRefusal
from core.testing import FakeClock, RecordingContext


class TestNumbers:
    """Swedish mobile numbers are normalised to E.164; nonsense is a business error."""

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("070-123 45 67", "+46701234567"),
            ("+46 70 123 45 67", "+46701234567"),
            ("0046701234567", "+46701234567"),
            ("46701234567", "+46701234567"),
            ("(070) 1234567", "+46701234567"),
        ],
    )
    def test_normalised(self, raw: str, expected: str) -> None:
        assert normalize_msisdn(raw) == expected

    @pytest.mark.parametrize("raw", ["", "abc", "070", "+0701234567"])
    def test_invalid(self, raw: str) -> None:
        with pytest.raises(BusinessError) as err:
            normalize_msisdn(raw)
        assert raw not in str(err.value) or not raw


class TestReplies:
    """JA/NEJ answers are recognised loosely."""

    @pytest.mark.parametrize(
        ("text", "answer"), [("Ja", "JA"), (" ja!", "JA"), ("NEJ.", "NEJ"), ("nej tack", None), ("kanske", None)]
    )
    def test_answer(self, text: str, answer: str | None) -> None:
        sms = InboundSms.model_validate(
            {"id": "1", "from": "+46701234567", "text": text, "received_at": "2026-11-23T08:00:00+01:00"}
        )
        assert sms.answer == answer


class TestWebhook:
    """The shared-secret HMAC signature is verified before anything is parsed."""

    def body(self) -> bytes:
        return json.dumps(
            {
                "type": "inbound",
                "id": "in-1",
                "from": "+46701234567",
                "text": "JA",
                "received_at": "2026-11-23T07:00:00Z",
                "in_reply_to": "m-9",
            }
        ).encode()

    def test_valid_signature_parses(self) -> None:
        clock = FakeClock()
        stamp = int(clock.now().timestamp())
        hook = SmsWebhook("s3cret", clock=clock)
        event = hook.parse(
            self.body(), {"X-Signature": sign_webhook(self.body(), "s3cret", stamp), "X-Timestamp": str(stamp)}
        )
        assert event.kind == "inbound" and event.inbound is not None
        assert event.inbound.answer == "JA" and event.inbound.in_reply_to == "m-9"

    def test_status_event(self) -> None:
        clock = FakeClock()
        stamp = int(clock.now().timestamp())
        body = json.dumps({"type": "status", "id": "m-9", "status": "DELIVERED"}).encode()
        event = SmsWebhook("k", clock=clock).parse(
            body, {"x-signature": sign_webhook(body, "k", stamp), "x-timestamp": str(stamp)}
        )
        assert event.report is not None and event.report.status is DeliveryStatus.delivered

    @pytest.mark.parametrize("case", ["wrong-secret", "tampered", "unsigned", "stale"])
    def test_rejected(self, case: str) -> None:
        clock = FakeClock()
        stamp = int(clock.now().timestamp())
        body = self.body()
        headers = {"X-Signature": sign_webhook(body, "s3cret", stamp), "X-Timestamp": str(stamp)}
        if case == "wrong-secret":
            headers["X-Signature"] = sign_webhook(body, "other", stamp)
        elif case == "tampered":
            body = body.replace(b"JA", b"NEJ")
        elif case == "unsigned":
            headers = {}
        else:
            clock.advance(301)
        with pytest.raises(WebhookRejected):
            SmsWebhook("s3cret", clock=clock).parse(body, headers)

    def test_bad_payload(self) -> None:
        clock = FakeClock()
        stamp = int(clock.now().timestamp())
        body = b'{"type": "inbound"}'
        with pytest.raises(ConnectorError) as err:
            SmsWebhook("k", clock=clock).parse(
                body, {"X-Signature": sign_webhook(body, "k", stamp), "X-Timestamp": str(stamp)}
            )
        assert err.value.code == "bad_webhook"


class TestClient:
    """Sends carry the reference as idempotency key; dry run refuses; polling follows the cursor."""

    def client(self, handler: httpx.MockTransport, ctx: RecordingContext | None = None) -> SmsClient:
        settings = SmsSettings(base_url="http://gw.test/", sender="Bemanning")
        return SmsClient(
            ctx or RecordingContext(), settings, transport=handler, clock=FakeClock(), breakers=BreakerRegistry()
        )

    async def test_send(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(201, json={"id": "m-1", "status": "queued"})

        sent = await self.client(httpx.MockTransport(handler)).send(
            "070-123 45 67", "Pass i morgon 07-16? Svara JA/NEJ", reference="shift-88"
        )
        assert sent.id == "m-1" and sent.status is DeliveryStatus.queued
        assert seen[0].headers["Idempotency-Key"] == "shift-88"
        assert json.loads(seen[0].content) == {
            "to": "+46701234567",
            "from": "Bemanning",
            "text": "Pass i morgon 07-16? Svara JA/NEJ",
            "reference": "shift-88",
        }

    async def test_dry_run_and_too_long(self) -> None:
        transport = httpx.MockTransport(lambda r: httpx.Response(500))
        ctx = RecordingContext(dry_run=True)
        with pytest.raises(DryRunRefusal):
            await self.client(transport, ctx).send("0701234567", "Hej", reference="r1")
        assert ctx.refused_writes == [{"system": "sms", "what": "SMS for r1"}]
        with pytest.raises(BusinessError):
            await self.client(transport).send("0701234567", "x" * 700, reference="r2")

    async def test_poll_follows_the_cursor(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            since = request.url.params.get("after")
            if since is None:
                return httpx.Response(
                    200,
                    json={
                        "items": [
                            {"id": "in-1", "from": "+46701234567", "text": "JA", "received_at": "2026-11-23T07:00:00Z"}
                        ],
                        "cursor": "c1",
                    },
                )
            return httpx.Response(200, json={"items": [], "cursor": since})

        client = self.client(httpx.MockTransport(handler))
        first = await client.poll_replies()
        assert [m.answer for m in first.messages] == ["JA"] and first.cursor == "c1"
        second = await client.poll_replies(first.cursor)
        assert second.messages == [] and second.cursor == "c1"

    async def test_status_unknown_value(self) -> None:
        transport = httpx.MockTransport(
            lambda r: httpx.Response(200, json={"id": "m-1", "status": "weird", "updated_at": None})
        )
        report = await self.client(transport).status("m-1")
        assert report.status is DeliveryStatus.unknown
