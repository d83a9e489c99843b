"""The SMS gateway: outbound messages with ids and delivery status, inbound replies.

An outbound message to a substitute's phone that names a shift code (``P101``) and says
``JA`` is an offer: the gateway plans the substitute's reply from their behaviour
(eager, selective, reluctant, late, silent — see :data:`sandbox.staffing.BEHAVIOURS`),
deterministically from the seed, the substitute and how many offers they have had. A
reply is ``JA``/``NEJ`` with the code in varying case and spacing, now and then without
the code. It appears when the sandbox clock passes the message time plus the reply
delay; tests move the clock with ``POST /admin/clock``.

Replies are read by polling ``GET /sms/inbound?after=N`` and, if a webhook is set
(``PUT /sms/webhook`` or the ``sms_webhook_url`` option), POSTed to it as
``{"type": "inbound", "message": {...}}`` — and, when asked for, delivery reports as
``{"type": "status", "message": {"id", "status", "updated_at", "error"}}``. With a secret,
each call is signed twice: ``X-Sandbox-Signature: <hex HMAC-SHA256 of the body>`` and
``X-Signature: sha256=<hex HMAC-SHA256 of "<X-Timestamp>.<body>">`` with ``X-Timestamp``
in Unix seconds (real time: the receiver checks it against its own clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sandbox.common import IdempotencyStore, error, idempotency_key, not_found
from sandbox.staffing import BEHAVIOURS
from sandbox.state import SandboxState, get_state

__all__ = ["SmsStore", "deliver_webhooks", "materialize", "normalise_number", "router"]

SYSTEM = "sms"
SENDER = "Bemanningen"
_CODE = re.compile(r"\b(P\d{3,})\b", re.IGNORECASE)
_YES_WORD = re.compile(r"\bJA\b", re.IGNORECASE)
QUIET_START, QUIET_END = 21, 7


def normalise_number(number: str) -> str | None:
    """E.164 form of a Swedish number (``070-174 06 05`` → ``+46701740605``); None if it is not one."""
    digits = re.sub(r"[\s\-()]", "", number)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("0"):
        digits = "+46" + digits[1:]
    return digits if re.fullmatch(r"\+\d{8,15}", digits) else None


@dataclass
class SmsStore:
    """Messages, planned and received replies, webhook settings and deliveries."""

    outbound: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)
    inbound: list[dict[str, Any]] = field(default_factory=list)
    offers: dict[str, int] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=lambda: {"url": None, "secret": None, "delivery_reports": False})
    webhook_queue: list[dict[str, Any]] = field(default_factory=list)
    webhook_deliveries: list[dict[str, Any]] = field(default_factory=list)
    idempotency: IdempotencyStore = field(default_factory=IdempotencyStore)


def _store(state: SandboxState) -> SmsStore:
    def create() -> SmsStore:
        store = SmsStore()
        store.webhook["url"] = state.options.sms_webhook_url
        return store

    return state.store(SYSTEM, create)


def _phone_book(state: SandboxState) -> dict[str, dict[str, Any]]:
    return state.store("sms.phones", lambda: {s["phone"]: s for s in state.data.substitutes})


def _shift_by_code(state: SandboxState) -> dict[str, dict[str, Any]]:
    return state.store("sms.codes", lambda: {s["code"].upper(): s for s in state.data.shifts})


def _unreachable(state: SandboxState, sub_id: str) -> bool:
    return state.rng("sms", "unreachable", sub_id).random() < 0.02


def _available(sub: dict[str, Any], shift: dict[str, Any]) -> bool:
    start, end = datetime.fromisoformat(shift["start"]), datetime.fromisoformat(shift["end"])
    return any(
        datetime.fromisoformat(a["start"]) <= start and end <= datetime.fromisoformat(a["end"])
        for a in sub["available"]
    )


def _plan_reply(state: SandboxState, store: SmsStore, message: dict[str, Any], sub: dict[str, Any]) -> None:
    match = _CODE.search(message["text"])
    if match is None or not _YES_WORD.search(message["text"]):
        return
    code = match.group(1).upper()
    shift = _shift_by_code(state).get(code)
    n = store.offers.get(sub["id"], 0) + 1
    store.offers[sub["id"]] = n
    rng = state.rng("sms", "reply", sub["id"], n)
    behaviour = state.data.truth.get("staffing", {}).get("behaviour", {}).get(sub["id"], "selective")
    _, p_yes, delay = BEHAVIOURS[behaviour]
    u_yes, u_delay, u_form = rng.random(), rng.random(), rng.random()
    if delay is None:
        return
    if shift is not None and not _available(sub, shift):
        p_yes *= 0.2
    answer = "JA" if u_yes < p_yes else "NEJ"
    minutes = delay[0] + u_delay * (delay[1] - delay[0])
    forms = (
        (0.45, f"{answer} {code}"),
        (0.60, f"{answer.lower()} {code.lower()}"),
        (0.72, f"  {answer.capitalize()}  {code} "),
        (0.82, f"{answer.capitalize()} {code}, mvh {sub['first_name']}"),
        (0.92, f"{answer}\n{code}"),
        (1.01, answer.capitalize()),
    )
    text = next(form for limit, form in forms if u_form < limit)
    due = datetime.fromisoformat(message["created_at"]) + timedelta(minutes=minutes)
    reply = {"from": sub["phone"], "to": message["from"], "text": text, "in_reply_to": message["id"]}
    store.pending.append((due, int(message["id"].split("-")[1]), reply))


def materialize(state: SandboxState) -> int:
    """Move every planned reply that is due by the sandbox clock into the inbox; returns how many."""
    store = _store(state)
    now = state.now()
    due = sorted((p for p in store.pending if p[0] <= now), key=lambda p: (p[0], p[1]))
    if not due:
        return 0
    store.pending = [p for p in store.pending if p[0] > now]
    for when, _, reply in due:
        item = {
            "id": f"IN-{len(store.inbound) + 1:06d}",
            "seq": len(store.inbound) + 1,
            **reply,
            "received_at": when.isoformat(timespec="seconds"),
        }
        store.inbound.append(item)
        state.log.record(
            SYSTEM, "inbound.received", item["from"], {"id": item["id"], "in_reply_to": item["in_reply_to"]}
        )
        if store.webhook["url"]:
            store.webhook_queue.append({"type": "inbound", "message": item})
    return len(due)


async def deliver_webhooks(state: SandboxState, client: httpx.AsyncClient) -> None:
    """POST queued events to the webhook (three tries each); records every attempt."""
    store = _store(state)
    while store.webhook_queue:
        event = store.webhook_queue.pop(0)
        url, secret = store.webhook["url"], store.webhook["secret"]
        if not url:
            continue
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        if secret:
            stamp = str(int(time.time()))
            headers["X-Sandbox-Signature"] = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Timestamp"] = stamp
            headers["X-Signature"] = (
                "sha256=" + hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
            )
        status: int | str = "error"
        for attempt in range(1, 4):
            try:
                response = await client.post(url, content=body, headers=headers)
                status = response.status_code
                if response.status_code < 500:
                    break
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            await asyncio.sleep(0.2 * attempt)
        store.webhook_deliveries.append(
            {"type": event["type"], "id": event["message"]["id"], "url": url, "status": status}
        )


async def background(state: SandboxState, stop: asyncio.Event) -> None:
    """Materialise replies and deliver webhooks every 0.2 s until ``stop`` is set."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        while not stop.is_set():
            materialize(state)
            if _store(state).webhook_queue:
                await deliver_webhooks(state, client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.2)


# --- API ---------------------------------------------------------------------------------------

router = APIRouter(prefix="/sms", tags=["SMS gateway"])


class MessageIn(BaseModel):
    """An SMS to send."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    to: str
    text: str = Field(min_length=1, max_length=1600)
    sender: str | None = Field(None, alias="from")
    reference: str | None = None
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


class WebhookIn(BaseModel):
    """Where inbound messages are POSTed (None to stop)."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    secret: str | None = None
    delivery_reports: bool = False


@router.post("/messages", status_code=202)
async def send(body: MessageIn, request: Request, state: SandboxState = Depends(get_state)) -> Any:
    """Send one SMS; idempotent by key. Delivery status is known at once (delivered or failed)."""
    store = _store(state)
    key = idempotency_key(request, body.idempotency_key, required=False)
    payload = body.model_dump(mode="json", exclude={"idempotency_key"})
    if key:
        replay = store.idempotency.check("message", key, payload)
        if replay is not None:
            return replay
    to = normalise_number(body.to)
    if to is None:
        return error(422, "bad_number", f"not a phone number: {body.to!r}")
    now = state.now()
    sub = _phone_book(state).get(to)
    failed = sub is not None and _unreachable(state, sub["id"])
    message: dict[str, Any] = {
        "id": f"SMS-{len(store.outbound) + 1:06d}",
        "to": to,
        "from": body.sender or SENDER,
        "text": body.text,
        "reference": body.reference,
        "created_at": now.isoformat(timespec="seconds"),
        "status": "failed" if failed else "delivered",
        "delivered_at": None if failed else (now + timedelta(seconds=2)).isoformat(timespec="seconds"),
        "error": "unreachable" if failed else None,
    }
    store.outbound[message["id"]] = message
    quiet = now.hour >= QUIET_START or now.hour < QUIET_END
    state.log.record(
        SYSTEM,
        "message.sent",
        to,
        {"id": message["id"], "quiet_hours": quiet, "substitute_id": sub["id"] if sub else None},
    )
    if sub is not None and not failed:
        _plan_reply(state, store, message, sub)
    if store.webhook["url"] and store.webhook["delivery_reports"]:
        store.webhook_queue.append(
            {
                "type": "status",
                "message": {
                    "id": message["id"],
                    "status": message["status"],
                    "updated_at": message["delivered_at"] or message["created_at"],
                    "error": message["error"],
                },
            }
        )
    if key:
        store.idempotency.remember("message", key, payload, message)
    return JSONResponse(message, status_code=202)


@router.get("/messages")
async def list_messages(
    state: SandboxState = Depends(get_state), to: str | None = None, reference: str | None = None, limit: int = 1000
) -> dict[str, Any]:
    """Outbound messages, oldest first."""
    number = normalise_number(to) if to else None
    items = [
        m
        for m in _store(state).outbound.values()
        if (number is None or m["to"] == number) and (reference is None or m["reference"] == reference)
    ]
    return {"items": items[: max(1, limit)]}


@router.get("/messages/{message_id}")
async def get_message(message_id: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """One outbound message and its delivery status."""
    message = _store(state).outbound.get(message_id)
    if message is None:
        raise not_found(f"message {message_id}")
    return message


@router.get("/inbound")
async def inbound(state: SandboxState = Depends(get_state), after: int = 0, limit: int = 500) -> dict[str, Any]:
    """Replies received so far with ``seq > after``; ``last_seq`` is the cursor for the next poll."""
    materialize(state)
    store = _store(state)
    items = [m for m in store.inbound if m["seq"] > after][: max(1, limit)]
    return {"items": items, "last_seq": items[-1]["seq"] if items else after}


@router.get("/webhook")
async def get_webhook(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """The webhook URL (the secret is not shown) and delivery attempts."""
    store = _store(state)
    return {
        "url": store.webhook["url"],
        "has_secret": bool(store.webhook["secret"]),
        "delivery_reports": store.webhook["delivery_reports"],
        "deliveries": store.webhook_deliveries,
    }


@router.put("/webhook")
async def set_webhook(body: WebhookIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Set or clear the webhook."""
    store = _store(state)
    store.webhook.update(url=body.url, secret=body.secret, delivery_reports=body.delivery_reports)
    return {"url": body.url, "has_secret": bool(body.secret), "delivery_reports": body.delivery_reports}


def inspect(state: SandboxState) -> dict[str, Any]:
    """Admin view: messages sent (per recipient, in quiet hours), replies planned and received, webhooks."""
    store = _store(state)
    sent = state.log.entries(SYSTEM, "message.sent")
    return {
        "sent": len(sent),
        "sent_by_recipient": state.log.counts(SYSTEM).get("message.sent", {}),
        "quiet_hours_violations": sum(1 for e in sent if e.details["quiet_hours"]),
        "replies_pending": [
            {"due": d.isoformat(timespec="seconds"), **r}
            for d, _, r in sorted(store.pending, key=lambda p: (p[0], p[1]))
        ],
        "inbound": len(store.inbound),
        "webhook_deliveries": store.webhook_deliveries,
    }
