"""The SMS connector over real HTTP: a small gateway on a local uvicorn, and the webhook in a FastAPI app."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from connectors.http import BreakerRegistry
from connectors.sms import DeliveryStatus, SmsClient, SmsEvent, SmsSettings, SmsWebhook, sign_webhook
from core.testing import FakeClock, RecordingContext
from core.testing.server import serve_app


class Gateway:
    """An SMS gateway that honours Idempotency-Key, answers 503 once, and produces replies."""

    def __init__(self) -> None:
        self.sent: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.posts = 0
        self.fail_next = False

    def build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/sms/messages")
        async def send(request: Request) -> Response:
            self.posts += 1
            key = request.headers["idempotency-key"]
            if key in self.by_key:
                return JSONResponse(
                    {"id": self.by_key[key], "status": "queued"}, headers={"Idempotent-Replayed": "true"}
                )
            if self.fail_next:
                self.fail_next = False
                return JSONResponse({}, status_code=429, headers={"Retry-After": "0"})
            body = await request.json()
            mid = f"m-{len(self.sent) + 1}"
            self.sent[mid] = body
            self.by_key[key] = mid
            return JSONResponse({"id": mid, "status": "queued"}, status_code=201)

        @app.get("/sms/messages/{mid}")
        async def status(mid: str) -> Response:
            return JSONResponse({"id": mid, "status": "delivered", "updated_at": "2026-11-23T07:01:00Z"})

        @app.get("/sms/inbound")
        async def inbound(after: str | None = None) -> Response:
            items = [
                {
                    "id": f"in-{i}",
                    "from": "+46701234567",
                    "text": "JA" if i % 2 else "nej",
                    "received_at": "2026-11-23T07:05:00Z",
                    "in_reply_to": f"m-{i}",
                }
                for i in (1, 2)
            ]
            found = [m for m in items if after is None or m["id"] > after]
            return JSONResponse({"items": found, "cursor": found[-1]["id"] if found else after})

        return app


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[str, Gateway]]:
    gw = Gateway()
    with serve_app(gw.build()) as url:
        yield url, gw


def client(url: str) -> SmsClient:
    settings = SmsSettings.model_validate({"base_url": url, "sender": "Bemanning", "retry": {"jitter": 0}})
    return SmsClient(RecordingContext(), settings, clock=FakeClock(), breakers=BreakerRegistry())


class TestGateway:
    """Send, status and polling over real HTTP."""

    async def test_send_is_idempotent_per_reference(self, gateway: tuple[str, Gateway]) -> None:
        url, gw = gateway
        gw.fail_next = True
        async with client(url) as sms:
            first = await sms.send(
                "0701234567", "Pass 24/11 07-16 på Solgården? Svara JA eller NEJ", reference="offer-1"
            )
            again = await sms.send(
                "0701234567", "Pass 24/11 07-16 på Solgården? Svara JA eller NEJ", reference="offer-1"
            )
            assert first.id == again.id
            assert list(gw.sent) == [first.id] and gw.posts == 3  # 429, created, replayed
            assert (await sms.status(first.id)).status is DeliveryStatus.delivered
            batch = await sms.poll_replies()
            assert [m.answer for m in batch.messages] == ["JA", "NEJ"]
            assert (await sms.poll_replies(batch.cursor)).messages == []


class TestWebhook:
    """SmsWebhook is a FastAPI dependency: 401 for a bad signature, the event for a good one."""

    def test_dependency(self) -> None:
        received: list[SmsEvent] = []
        app = FastAPI()
        hook = SmsWebhook("delad-hemlighet")

        @app.post("/hooks/sms")
        async def sms_hook(event: SmsEvent = Depends(hook)) -> dict[str, str]:
            received.append(event)
            return {"ok": "yes"}

        body = json.dumps(
            {
                "type": "inbound",
                "id": "in-7",
                "from": "+46701234567",
                "text": "Ja",
                "received_at": "2026-11-23T07:00:00Z",
            }
        ).encode()
        stamp = int(time.time())
        with serve_app(app) as url:
            good = httpx.post(
                f"{url}/hooks/sms",
                content=body,
                headers={"X-Signature": sign_webhook(body, "delad-hemlighet", stamp), "X-Timestamp": str(stamp)},
            )
            bad = httpx.post(
                f"{url}/hooks/sms",
                content=body,
                headers={"X-Signature": sign_webhook(body, "gissad", stamp), "X-Timestamp": str(stamp)},
            )
            garbage = b'{"type": "inbound"}'
            invalid = httpx.post(
                f"{url}/hooks/sms",
                content=garbage,
                headers={"X-Signature": sign_webhook(garbage, "delad-hemlighet", stamp), "X-Timestamp": str(stamp)},
            )
        assert good.status_code == 200 and bad.status_code == 401 and invalid.status_code == 400
        assert len(received) == 1 and received[0].inbound is not None and received[0].inbound.answer == "JA"
