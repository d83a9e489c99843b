"""The offer ledger: where each shift stands, rebuilt from the SMS gateway's record (pure).

Bosse keeps no state of its own between runs. What it has offered, to whom, in which wave,
who answered what and who has been told what is all in the gateway: the messages Bosse sent
(each with a :class:`~robots.bosse.messages.Reference`) and the replies it received. This
module reads those two lists into a :class:`Ledger`, so every run decides from the same
facts, and a crashed or repeated run simply finds the facts a little further along.

A reply is matched to an offer by, in order: the shift code in its text (if the sender was
offered that shift), the message it answers (``in_reply_to``), or — for a bare "Ja" with
neither — the sender's only unanswered offer. Anything else is not Bosse's and is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from robots.bosse.messages import Answer, MessageKind, ParsedReply, parse_reference, parse_reply

__all__ = ["Ledger", "Offer", "Reply", "SentMessage", "ShiftLedger", "build_ledger", "normalise_phone"]


def normalise_phone(number: str | None) -> str:
    """A phone number reduced for comparison (``070-174 06 05`` and ``+46701740605`` agree)."""
    digits = re.sub(r"[^\d+]", "", number or "")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("0"):
        digits = "+46" + digits[1:]
    return digits


def _when(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True)
class SentMessage:
    """One SMS Bosse sent, as the gateway lists it."""

    id: str
    shift_id: str
    kind: MessageKind
    substitute_id: str
    wave: int | None
    to: str
    text: str
    sent_at: datetime
    delivered: bool


@dataclass(frozen=True)
class Reply:
    """A reply matched to a shift and a substitute."""

    id: str
    shift_id: str
    substitute_id: str
    answer: Answer | None
    text: str
    received_at: datetime


@dataclass
class Offer:
    """An offer of one shift to one substitute and the answers to it."""

    message: SentMessage
    replies: list[Reply] = field(default_factory=list)

    @property
    def substitute_id(self) -> str:
        """Who got the offer."""
        return self.message.substitute_id

    @property
    def wave(self) -> int:
        """The wave the offer went out in."""
        return self.message.wave or 1

    @property
    def answer(self) -> Answer | None:
        """The latest clear answer (people may change their mind), None if none yet."""
        clear = [r for r in self.replies if r.answer is not None]
        return clear[-1].answer if clear else None

    @property
    def answered_at(self) -> datetime | None:
        """When the latest clear answer arrived."""
        clear = [r for r in self.replies if r.answer is not None]
        return clear[-1].received_at if clear else None


@dataclass
class ShiftLedger:
    """Everything sent and received about one shift."""

    shift_id: str
    offers: dict[str, Offer] = field(default_factory=dict)
    notices: dict[tuple[MessageKind, str], SentMessage] = field(default_factory=dict)
    replies: list[Reply] = field(default_factory=list)

    @property
    def last_wave(self) -> int:
        """The highest wave sent so far (0 before the first)."""
        return max((o.wave for o in self.offers.values()), default=0)

    @property
    def covered(self) -> bool:
        """True once the offer holders have been told the shift is filled (it is closed for Bosse)."""
        return any(kind is MessageKind.filled for kind, _ in self.notices)

    def notice(self, kind: MessageKind, substitute_id: str) -> SentMessage | None:
        """The notice of ``kind`` sent to ``substitute_id``, if any."""
        return self.notices.get((kind, substitute_id))

    def yes_queue(self, *, received_before: datetime | None = None) -> list[str]:
        """Who said yes, first yes first; without those Bosse already told it could not book them."""
        yeses = [
            (o.answered_at, o.substitute_id)
            for o in self.offers.values()
            if o.answer is Answer.yes
            and o.answered_at is not None
            and (received_before is None or o.answered_at < received_before)
            and self.notice(MessageKind.notbooked, o.substitute_id) is None
        ]
        return [sub for _, sub in sorted(yeses)]

    def waiting(self, now: datetime, reply_wait_seconds: float) -> list[str]:
        """Offers delivered, unanswered and still within their reply time."""
        return [
            o.substitute_id
            for o in self.offers.values()
            if o.message.delivered
            and o.answer is None
            and (now - o.message.sent_at).total_seconds() < reply_wait_seconds
        ]

    def history(self) -> list[dict[str, Any]]:
        """Sent messages and replies in time order, for the coordinators (no phone numbers)."""
        events: list[tuple[datetime, int, dict[str, Any]]] = []
        for o in self.offers.values():
            m = o.message
            events.append(
                (
                    m.sent_at,
                    0,
                    {
                        "at": m.sent_at.isoformat(),
                        "kind": "offer",
                        "substitute_id": m.substitute_id,
                        "wave": m.wave,
                        "delivered": m.delivered,
                    },
                )
            )
        for (kind, sub), m in self.notices.items():
            events.append(
                (
                    m.sent_at,
                    0,
                    {"at": m.sent_at.isoformat(), "kind": kind.value, "substitute_id": sub, "delivered": m.delivered},
                )
            )
        for r in self.replies:
            events.append(
                (
                    r.received_at,
                    1,
                    {
                        "at": r.received_at.isoformat(),
                        "kind": "reply",
                        "substitute_id": r.substitute_id,
                        "answer": r.answer.value if r.answer else None,
                        "text": r.text[:160],
                    },
                )
            )
        return [e for _, _, e in sorted(events, key=lambda e: (e[0], e[1]))]


@dataclass
class Ledger:
    """The ledgers of every shift Bosse has sent messages about, for one tenant."""

    shifts: dict[str, ShiftLedger] = field(default_factory=dict)
    #: Replies that match no offer of Bosse's (counted, otherwise ignored).
    unmatched: int = 0

    def of(self, shift_id: str) -> ShiftLedger:
        """The ledger of one shift (empty if nothing was sent about it)."""
        return self.shifts.get(shift_id) or ShiftLedger(shift_id)


def _sent(raw: Mapping[str, Any], tenant: str) -> SentMessage | None:
    ref = parse_reference(raw.get("reference") if isinstance(raw.get("reference"), str) else None)
    sent_at = _when(raw.get("created_at"))
    if ref is None or ref.tenant != tenant or sent_at is None or not isinstance(raw.get("id"), str):
        return None
    status = str(raw.get("status") or "").lower()
    return SentMessage(
        id=raw["id"],
        shift_id=ref.shift_id,
        kind=ref.kind,
        substitute_id=ref.substitute_id,
        wave=ref.wave,
        to=normalise_phone(str(raw.get("to") or "")),
        text=str(raw.get("text") or ""),
        sent_at=sent_at,
        delivered=status not in ("failed", "expired"),
    )


_OFFER_CODE = re.compile(r"Svara JA (\S+) eller NEJ")


def build_ledger(tenant: str, sent: Iterable[Mapping[str, Any]], inbound: Iterable[Mapping[str, Any]]) -> Ledger:
    """Read the gateway's sent messages and received replies into a :class:`Ledger`.

    ``sent`` items: ``{"id", "to", "text", "reference", "created_at", "status"}``; ``inbound``
    items: ``{"id", "from", "text", "received_at", "in_reply_to"}``.
    """
    ledger = Ledger()
    by_id: dict[str, SentMessage] = {}
    code_of: dict[str, str] = {}  # shift code -> shift id, from Bosse's own offer texts
    offers_by_phone: dict[str, list[Offer]] = {}
    for raw in sorted(sent, key=lambda m: str(m.get("created_at") or "")):
        message = _sent(raw, tenant)
        if message is None:
            continue
        by_id[message.id] = message
        shift = ledger.shifts.setdefault(message.shift_id, ShiftLedger(message.shift_id))
        if message.kind is MessageKind.offer:
            if message.substitute_id not in shift.offers:
                offer = Offer(message)
                shift.offers[message.substitute_id] = offer
                offers_by_phone.setdefault(message.to, []).append(offer)
            found = _OFFER_CODE.search(message.text)
            if found:
                code_of.setdefault(found.group(1), message.shift_id)
        else:
            shift.notices.setdefault((message.kind, message.substitute_id), message)
    codes = list(code_of)
    for raw in sorted(inbound, key=lambda m: (str(m.get("received_at") or ""), str(m.get("id") or ""))):
        received = _when(raw.get("received_at"))
        if received is None or not isinstance(raw.get("id"), str):
            continue
        text = str(raw.get("text") or "")
        parsed = parse_reply(text, codes)
        matched = _match(parsed, raw, by_id, code_of, offers_by_phone, ledger)
        if matched is None:
            ledger.unmatched += 1
            continue
        reply = Reply(raw["id"], matched.message.shift_id, matched.substitute_id, parsed.answer, text, received)
        matched.replies.append(reply)
        ledger.shifts[matched.message.shift_id].replies.append(reply)
    return ledger


def _match(
    parsed: ParsedReply,
    raw: Mapping[str, Any],
    by_id: Mapping[str, SentMessage],
    code_of: Mapping[str, str],
    offers_by_phone: Mapping[str, list[Offer]],
    ledger: Ledger,
) -> Offer | None:
    phone = normalise_phone(str(raw.get("from") or ""))
    mine = offers_by_phone.get(phone, [])
    if parsed.code is not None:
        shift_id = code_of.get(parsed.code)
        for offer in mine:
            if offer.message.shift_id == shift_id:
                return offer
    answered = by_id.get(str(raw.get("in_reply_to") or ""))
    if answered is not None:
        shift = ledger.shifts.get(answered.shift_id)
        replied_to = shift.offers.get(answered.substitute_id) if shift else None
        if replied_to is not None:
            return replied_to
    open_offers = [o for o in mine if o.answer is None]
    if parsed.code is None and answered is None and len(open_offers) == 1:
        return open_offers[0]
    return None
