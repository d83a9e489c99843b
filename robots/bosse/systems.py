"""Bosse's two external systems: the staffing system and the SMS gateway.

Both are reached through the shared connectors (retries, circuit breaker, dry-run refusal,
audit of writes): :class:`StaffingApi` on ``HttpConnector.for_run(ctx, "staffing")`` and
:class:`OfferGateway` on ``SmsClient.for_run(ctx, "sms")``. Reads of substitutes' data
are written to the audit log; nothing here logs a name, personnummer or phone number.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from connectors.http import HttpConnector
from connectors.sms import SentSms, SmsClient
from core.api import ConnectorError, RunContext
from robots.bosse.ledger import Ledger, build_ledger
from robots.bosse.messages import Reference, booking_key, reference_prefix
from robots.bosse.records import BadRecord, ShiftInfo, SubstituteInfo, parse_shift, parse_substitute
from robots.bosse.settings import BosseSettings

__all__ = ["BookingOutcome", "OfferGateway", "StaffingApi", "UnexpectedAnswer"]

_PAGE = 1000


@dataclass(frozen=True)
class BookingOutcome:
    """The staffing system's answer to a booking: made (or replayed), or a conflict code."""

    booked: bool
    conflict: str | None = None
    booking_id: str | None = None


class UnexpectedAnswer(ConnectorError):
    """The external system answered something Bosse cannot read; a person must look (no retry)."""

    code = "bad_response"
    retryable = False


def _bad_answer(system: str, problem: str) -> ConnectorError:
    return UnexpectedAnswer(f"{system}: unexpected answer ({problem})", system=system)


class StaffingApi:
    """The staffing system (bemanningssystem): shifts, substitutes and bookings."""

    def __init__(self, ctx: RunContext, settings: BosseSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.system = settings.staffing_system
        self.http = HttpConnector.for_run(ctx, self.system)

    def target(self, kind: str, ident: str) -> str:
        """The lock key of a booking target in this staffing system (by its address: shared or not)."""
        return f"staffing:{self.http.settings.base_url}:{kind}:{ident}"

    async def _pages(self, path: str, params: dict[str, Any], page: int) -> list[Any]:
        items: list[Any] = []
        offset = 0
        while True:
            answer = await self.http.get_json(path, params={**params, "offset": offset, "limit": page})
            if not isinstance(answer, dict) or not isinstance(answer.get("items"), list):
                raise _bad_answer(self.system, f"{path} is not a page of items")
            items.extend(answer["items"])
            total = answer.get("total")
            offset += len(answer["items"])
            if not answer["items"] or not isinstance(total, int) or offset >= total:
                return items

    def _parse_shift(self, raw: object) -> ShiftInfo:
        try:
            return parse_shift(raw)
        except BadRecord as exc:
            raise _bad_answer(self.system, str(exc)) from None

    def _parse_substitute(self, raw: object) -> SubstituteInfo:
        try:
            return parse_substitute(raw)
        except BadRecord as exc:
            raise _bad_answer(self.system, str(exc)) from None

    async def shifts(self, *, start_from: datetime, start_to: datetime, status: str = "all") -> list[ShiftInfo]:
        """Shifts starting in [start_from, start_to), by start (``status``: open, booked or all)."""
        raw = await self._pages(
            "shifts",
            {"status": status, "start_from": start_from.isoformat(), "start_to": start_to.isoformat()},
            _PAGE,
        )
        return [self._parse_shift(r) for r in raw]

    async def shift(self, shift_id: str) -> ShiftInfo:
        """One shift, fresh, with who booked it."""
        return self._parse_shift(await self.http.get_json(f"shifts/{quote(shift_id, safe='')}"))

    async def substitutes(self) -> list[SubstituteInfo]:
        """The whole pool, fresh; the read is written to the audit log (ids only)."""
        people = [self._parse_substitute(r) for r in await self._pages("substitutes", {}, 200)]
        await asyncio.to_thread(
            self.ctx.record,
            "bosse.substitutes_read",
            purpose=self.settings.purpose,
            details={"system": self.system, "count": len(people), "ids": [p.id for p in people]},
        )
        return people

    async def substitute(self, substitute_id: str) -> SubstituteInfo:
        """One substitute, fresh (as the booking re-check needs); an audited read."""
        person = self._parse_substitute(await self.http.get_json(f"substitutes/{quote(substitute_id, safe='')}"))
        if person.personnummer:
            await asyncio.to_thread(
                self.ctx.record_access,
                subject=person.personnummer,
                system=self.system,
                purpose=self.settings.purpose,
                details={"substitute_id": person.id},
            )
        return person

    async def book(self, shift: ShiftInfo, person: SubstituteInfo) -> BookingOutcome:
        """Book ``person`` on ``shift``; idempotent by key (the same booking again is a replay).

        A 409 (shift taken, person busy, shift not open) is returned as a conflict, not raised.
        """
        response = await self.http.request(
            "POST",
            "bookings",
            json={"shift_id": shift.id, "substitute_id": person.id, "booked_by": self.settings.booked_by},
            headers={"Idempotency-Key": booking_key(self.ctx.tenant, shift.id, person.id)},
            idempotent=True,
            allow_status=(409,),
            subject=person.personnummer,
            purpose=self.settings.purpose,
            what=f"booking of {person.id} on {shift.id}",
        )
        body = self.http.json_of(response, empty_ok=True)
        if response.status_code == 409:
            code = body.get("error") if isinstance(body, dict) else None
            return BookingOutcome(False, conflict=str(code or "conflict"))
        booking_id = body.get("id") if isinstance(body, dict) else None
        return BookingOutcome(True, booking_id=str(booking_id) if booking_id else None)

    async def bookings_of(self, substitute_id: str) -> list[dict[str, Any]]:
        """The person's bookings made through the API (active and cancelled), with ``booked_at``."""
        answer = await self.http.get_json("bookings", params={"substitute_id": substitute_id})
        items = answer.get("items") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise _bad_answer(self.system, "the booking list is not a list")
        return [b for b in items if isinstance(b, dict)]

    async def cancel(self, booking_id: str, *, subject: str | None) -> None:
        """Cancel a booking Bosse made (the shift is open again); repeating it changes nothing."""
        await self.http.request(
            "DELETE",
            f"bookings/{quote(booking_id, safe='')}",
            idempotent=True,
            subject=subject,
            purpose=self.settings.purpose,
            what=f"cancellation of booking {booking_id}",
        )


class OfferGateway:
    """The SMS gateway as Bosse uses it: send by reference, and read back what was sent and received."""

    def __init__(self, ctx: RunContext, settings: BosseSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.sms = SmsClient.for_run(ctx, settings.sms_system)

    async def sent(self) -> list[dict[str, Any]]:
        """Every message Bosse sent for this tenant (the gateway's list, filtered by reference)."""
        answer = await self.sms.http.get_json(self.sms.settings.send_path, params={"limit": 100_000})
        items = answer.get("items") if isinstance(answer, dict) else answer
        if not isinstance(items, list):
            raise _bad_answer(self.sms.system, "the message list is not a list")
        prefix = reference_prefix(self.ctx.tenant)
        return [m for m in items if isinstance(m, dict) and str(m.get("reference") or "").startswith(prefix)]

    async def received(self) -> list[dict[str, Any]]:
        """Every reply received, paging through the gateway's inbox from the start."""
        replies: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            batch = await self.sms.poll_replies(cursor)
            replies.extend(
                {
                    "id": m.id,
                    "from": m.sender,
                    "text": m.text,
                    "received_at": m.received_at,
                    "in_reply_to": m.in_reply_to,
                }
                for m in batch.messages
            )
            if not batch.messages or batch.cursor == cursor:
                return replies
            cursor = batch.cursor

    async def ledger(self) -> Ledger:
        """The offer ledger of this tenant, as of now."""
        sent, received = await asyncio.gather(self.sent(), self.received())
        return build_ledger(self.ctx.tenant, sent, received)

    async def send(self, reference: Reference, to: str, text: str, *, subject: str | None) -> SentSms:
        """Send one message; its reference is the idempotency key, so a repeat is never delivered twice."""
        return await self.sms.send(to, text, reference=str(reference), subject=subject, purpose=self.settings.purpose)
