"""SMS connector: an HTTP SMS gateway (send, delivery status, inbound replies) and its webhook.

Built on :class:`connectors.http.HttpConnector`, so it has the same retries, circuit
breaker, timeouts, redacted logs and dry-run refusal. A send carries the work item's
reference as ``Idempotency-Key``: a retried send is never delivered twice by a gateway
that honours the key (the sandbox's does).

The gateway API it expects (paths configurable)::

    POST sms/messages            {"to", "from", "text", "reference"} → {"id", "status"}
    GET  sms/messages/{id}       → {"id", "status", "updated_at"?, "error"?}
    GET  sms/inbound?after=C     → {"items": [{"id", "from", "text", "received_at", "in_reply_to"?}],
                                    "cursor" or "last_seq"}

Inbound replies can also arrive by webhook: :class:`SmsWebhook` verifies the gateway's
HMAC-SHA256 signature (by default ``X-Signature: sha256=<hex>`` over ``<timestamp>.<body>``
with ``X-Timestamp``; header names configurable, and without a timestamp header the MAC is
over the body alone) and parses the payload, flat or as ``{"type", "message": {...}}``. An
instance is usable directly as a FastAPI dependency.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from connectors.base import connector_settings
from connectors.http import HttpConnector, HttpSettings
from core.clock import Clock, SystemClock
from core.errors import BusinessError, ConnectorAuthError, ConnectorError
from core.interfaces import ConnectorContext
from core.settings import SecretRef


class SmsSettings(HttpSettings):
    """The section ``[connectors.sms]``: the gateway's HTTP settings plus what SMS needs."""

    sender: str = Field(
        default="Kommunen", description="Sender shown on the phone: a name (≤ 11 characters) or number."
    )
    send_path: str = Field(default="sms/messages", description="Path for sending.")
    status_path: str = Field(default="sms/messages/{id}", description="Path of one message's delivery status.")
    inbound_path: str = Field(default="sms/inbound", description="Path for polling inbound replies.")
    inbound_cursor_param: str = Field(default="after", description="Query parameter carrying the poll cursor.")
    default_country_code: str = Field(default="46", pattern=r"^\d{1,3}$", description="Country code for 07… numbers.")
    max_length: int = Field(default=612, ge=1, description="Longest text sent (612 = four concatenated SMS).")
    webhook_secret: SecretRef | None = Field(default=None, description="Shared secret signing the gateway's webhooks.")
    webhook_tolerance_seconds: float = Field(default=300, gt=0, description="Oldest webhook timestamp accepted.")
    webhook_signature_header: str = Field(default="X-Signature", description="Header with the HMAC-SHA256 (hex).")
    webhook_timestamp_header: str | None = Field(
        default="X-Timestamp",
        description="Header with the Unix time signed along (empty: body alone, no replay check).",
    )


class DeliveryStatus(StrEnum):
    """Where an outbound SMS is."""

    queued = "queued"  # accepted by the gateway, not yet handed to the operator
    sent = "sent"  # handed to the operator, no delivery report yet
    delivered = "delivered"  # the phone received it
    failed = "failed"  # the operator gave up (unknown number, phone off too long …)
    expired = "expired"  # not delivered within its validity period
    unknown = "unknown"  # the gateway said something we do not know


class SentSms(BaseModel):
    """The gateway's answer to a send."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: DeliveryStatus
    reference: str


class DeliveryReport(BaseModel):
    """One message's delivery status."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: DeliveryStatus
    updated_at: datetime | None = None
    error: str | None = None


class InboundSms(BaseModel):
    """A reply from a phone (the sender's number is personal data: do not log it)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: str
    sender: str = Field(alias="from")
    text: str
    received_at: datetime
    in_reply_to: str | None = None

    @property
    def answer(self) -> str | None:
        """``JA`` or ``NEJ`` when the text is one of them (case and punctuation ignored), else None."""
        word = re.sub(r"[^A-ZÅÄÖ]", "", self.text.strip().upper())
        return {"JA": "JA", "J": "JA", "YES": "JA", "NEJ": "NEJ", "N": "NEJ", "NO": "NEJ"}.get(word)


class InboundBatch(BaseModel):
    """Replies found by one poll and the cursor to poll from next time."""

    messages: list[InboundSms]
    cursor: str | None


class SmsEvent(BaseModel):
    """A verified webhook: an inbound reply or a delivery report."""

    kind: Literal["inbound", "status"]
    inbound: InboundSms | None = None
    report: DeliveryReport | None = None


def _status(value: Any) -> DeliveryStatus:
    try:
        return DeliveryStatus(str(value).lower())
    except ValueError:
        return DeliveryStatus.unknown


def normalize_msisdn(number: str, country_code: str = "46") -> str:
    """A mobile number in E.164 (``070-123 45 67`` → ``+46701234567``); BusinessError if it is not one."""
    digits = re.sub(r"[\s\-().]", "", number or "")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("0"):
        digits = f"+{country_code}{digits[1:]}"
    elif not digits.startswith("+"):
        digits = f"+{country_code}{digits}" if len(digits) <= 9 else "+" + digits
    if not re.fullmatch(r"\+[1-9]\d{7,14}", digits):
        raise BusinessError("Mottagarens mobilnummer är inte ett giltigt telefonnummer", code="invalid_msisdn")
    return digits


class SmsClient:
    """Sends SMS through the gateway, asks for delivery status and polls for replies."""

    def __init__(
        self,
        ctx: ConnectorContext,
        settings: SmsSettings,
        *,
        system: str = "sms",
        http: HttpConnector | None = None,
        **http_kwargs: Any,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.system = system
        self.http = http or HttpConnector(ctx, system, settings, **http_kwargs)

    @classmethod
    def for_run(cls, ctx: ConnectorContext, system: str = "sms", **http_kwargs: Any) -> SmsClient:
        """The run's SMS client from ``[connectors.<system>]`` (closed with the run)."""
        key = f"sms:{system}"
        existing = ctx.resources.get(key)
        if isinstance(existing, SmsClient):
            return existing
        client = cls(ctx, connector_settings(ctx, system, SmsSettings), system=system, **http_kwargs)
        ctx.resources[key] = client
        return client

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()

    async def __aenter__(self) -> SmsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(
        self, to: str, text: str, *, reference: str, subject: str | None = None, purpose: str | None = None
    ) -> SentSms:
        """Send ``text`` to ``to``; ``reference`` (the work item's) makes a retried send idempotent.

        Refused in a dry run. ``subject``/``purpose`` go into the write's audit event.
        """
        number = normalize_msisdn(to, self.settings.default_country_code)
        if not text.strip():
            raise BusinessError("SMS:et saknar text", code="sms_empty")
        if len(text) > self.settings.max_length:
            raise BusinessError(
                f"SMS:et är {len(text)} tecken, längre än de {self.settings.max_length} som går att skicka",
                code="sms_too_long",
            )
        body = {"to": number, "from": self.settings.sender, "text": text, "reference": reference}
        answer = await self.http.post_json(
            self.settings.send_path,
            body,
            headers={"Idempotency-Key": reference},
            idempotent=True,
            what=f"SMS for {reference}",
            subject=subject,
            purpose=purpose,
        )
        if not isinstance(answer, dict) or not (answer.get("id") or answer.get("message_id")):
            raise ConnectorError(
                f"{self.system}: the gateway's answer to a send has no message id", code="bad_response"
            )
        return SentSms(
            id=str(answer.get("id") or answer.get("message_id")),
            status=_status(answer.get("status")),
            reference=reference,
        )

    async def status(self, message_id: str) -> DeliveryReport:
        """The delivery status of one message."""
        answer = await self.http.get_json(self.settings.status_path.format(id=message_id))
        try:
            return DeliveryReport(
                id=str(answer.get("id", message_id)),
                status=_status(answer.get("status")),
                updated_at=answer.get("updated_at") or answer.get("delivered_at"),
                error=answer.get("error"),
            )
        except (AttributeError, ValidationError) as exc:
            raise ConnectorError(f"{self.system}: unexpected delivery report", code="bad_response") from exc

    async def poll_replies(self, cursor: str | None = None) -> InboundBatch:
        """Replies received since ``cursor`` (everything when None) and the next cursor."""
        param = self.settings.inbound_cursor_param
        answer = await self.http.get_json(
            self.settings.inbound_path, params={param: cursor} if cursor is not None else None
        )
        items = answer if isinstance(answer, list) else (answer.get("items") or answer.get("messages") or [])
        next_cursor = None
        if isinstance(answer, dict):
            next_cursor = next(
                (answer[k] for k in ("cursor", "next_cursor", "last_seq") if answer.get(k) is not None), None
            )
        try:
            messages = [InboundSms.model_validate(m) for m in items]
        except ValidationError as exc:
            raise ConnectorError(f"{self.system}: unexpected inbound message", code="bad_response") from exc
        if next_cursor is None and messages:
            next_cursor = messages[-1].id
        return InboundBatch(messages=messages, cursor=str(next_cursor) if next_cursor is not None else cursor)


# -- webhook -----------------------------------------------------------------------------
class WebhookRejected(ConnectorAuthError):
    """A webhook call was refused: missing, wrong or stale signature."""

    code = "webhook_rejected"
    retryable = False


def sign_webhook(body: bytes, secret: str, timestamp: int | None) -> str:
    """The signature of ``body`` sent at ``timestamp`` (Unix seconds; None: the body alone)."""
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


class SmsWebhook:
    """Verifies and parses the gateway's webhook calls; an instance is a FastAPI dependency.

    ::

        webhook = SmsWebhook(settings.webhook_secret.resolve())

        @app.post("/hooks/sms")
        async def sms_hook(event: SmsEvent = Depends(webhook)) -> dict: ...
    """

    def __init__(
        self,
        secret: str,
        *,
        tolerance_seconds: float = 300,
        clock: Clock | None = None,
        signature_header: str = "X-Signature",
        timestamp_header: str | None = "X-Timestamp",
    ) -> None:
        if not secret:
            raise WebhookRejected("the SMS webhook has no shared secret configured")
        self._secret = secret
        self.tolerance = tolerance_seconds
        self.clock: Clock = clock or SystemClock()
        self.signature_header = signature_header.lower()
        self.timestamp_header = timestamp_header.lower() if timestamp_header else None

    @classmethod
    def from_settings(cls, settings: SmsSettings, clock: Clock | None = None) -> SmsWebhook:
        """The webhook verifier ``[connectors.sms]`` describes (its secret resolved now)."""
        if settings.webhook_secret is None:
            raise WebhookRejected("connectors.sms.webhook_secret is not configured")
        return cls(
            settings.webhook_secret.resolve(),
            tolerance_seconds=settings.webhook_tolerance_seconds,
            clock=clock,
            signature_header=settings.webhook_signature_header,
            timestamp_header=settings.webhook_timestamp_header,
        )

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise WebhookRejected unless the signature is right (and the timestamp recent, when one is signed)."""
        lower = {k.lower(): v for k, v in headers.items()}
        signature = (lower.get(self.signature_header) or "").strip()
        if not signature:
            raise WebhookRejected(f"the webhook call is not signed ({self.signature_header})")
        timestamp: int | None = None
        if self.timestamp_header is not None:
            try:
                timestamp = int(lower.get(self.timestamp_header) or "")
            except ValueError:
                raise WebhookRejected(f"the webhook call has no valid {self.timestamp_header}") from None
            age = abs(self.clock.now().astimezone(UTC).timestamp() - timestamp)
            if age > self.tolerance:
                raise WebhookRejected(f"the webhook timestamp is {age:.0f} s away from now (replayed or clock skew)")
        expected = sign_webhook(body, self._secret, timestamp).removeprefix("sha256=")
        if not hmac.compare_digest(expected, signature.removeprefix("sha256=")):
            raise WebhookRejected("the webhook signature does not match")

    def parse(self, body: bytes, headers: Mapping[str, str]) -> SmsEvent:
        """Verify, then parse ``{"type": "inbound"|"status", ...}`` into an :class:`SmsEvent`."""
        self.verify(body, headers)
        try:
            data = json.loads(body)
            kind = data.get("type")
            if isinstance(data.get("message"), dict):  # {"type": ..., "message": {...}}
                data = {**data["message"], "type": kind}
            if kind == "inbound":
                return SmsEvent(kind="inbound", inbound=InboundSms.model_validate(data))
            if kind == "status":
                report = DeliveryReport(
                    id=str(data["id"]),
                    status=_status(data.get("status")),
                    updated_at=data.get("updated_at"),
                    error=data.get("error"),
                )
                return SmsEvent(kind="status", report=report)
        except (ValueError, KeyError, AttributeError, ValidationError) as exc:
            raise ConnectorError("the SMS webhook payload is not valid", code="bad_webhook") from exc
        raise ConnectorError(f"the SMS webhook has an unknown type {str(kind)[:20]!r}", code="bad_webhook")

    async def __call__(self, request: Request) -> SmsEvent:
        """FastAPI dependency: verify and parse the raw body; 401 for a bad signature, 400 for a bad payload."""
        from fastapi import HTTPException

        body = await request.body()
        try:
            return self.parse(body, dict(request.headers))
        except WebhookRejected as exc:
            raise HTTPException(401, exc.message) from exc
        except ConnectorError as exc:
            raise HTTPException(400, exc.message) from exc
