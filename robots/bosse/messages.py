"""What Bosse says by SMS, how each message is referenced, and how replies are read (pure).

Every SMS Bosse sends has a reference that says what it is::

    bosse/<tenant>/<shift id>/offer/<substitute id>/w<wave>    an offer (the wave it went out in)
    bosse/<tenant>/<shift id>/<kind>/<substitute id>           confirm | filled | late | notbooked

The reference is also the gateway's ``Idempotency-Key``, so a message is sent at most once
however often the work is repeated, and the texts are fixed for a given shift, so a repeated
send is the same request. Together with the replies, the sent messages are Bosse's record
of where each shift stands (see :mod:`robots.bosse.ledger`).

Only an offer contains both the shift code and the word JA: the gateway (and the sandbox)
recognise offers by that, and a confirmation must never look like one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, unquote

from robots.bosse.records import ShiftInfo

__all__ = [
    "Answer",
    "MessageKind",
    "ParsedReply",
    "Reference",
    "booking_key",
    "message_text",
    "parse_reference",
    "parse_reply",
    "reference_prefix",
    "shift_label",
]

_WEEKDAYS = ("mån", "tis", "ons", "tor", "fre", "lör", "sön")
_PREFIX = "bosse"


class MessageKind(StrEnum):
    """The messages Bosse sends about a shift."""

    offer = "offer"  # "vill du ta passet? svara JA/NEJ"
    confirm = "confirm"  # to the person booked: you are booked
    filled = "filled"  # to everyone else with an open offer: the shift is filled
    late = "late"  # to a yes that came after the shift was filled: a polite no
    notbooked = "notbooked"  # to a yes Bosse could not book (rules or a clash): a polite no


class Answer(StrEnum):
    """A substitute's answer to an offer."""

    yes = "JA"  # wants the shift
    no = "NEJ"  # does not want it


@dataclass(frozen=True)
class Reference:
    """A parsed message reference."""

    tenant: str
    shift_id: str
    kind: MessageKind
    substitute_id: str
    wave: int | None = None

    def __str__(self) -> str:
        parts = [
            _PREFIX,
            quote(self.tenant, safe=""),
            quote(self.shift_id, safe=""),
            self.kind.value,
            quote(self.substitute_id, safe=""),
        ]
        if self.kind is MessageKind.offer:
            parts.append(f"w{self.wave or 1}")
        return "/".join(parts)


def reference_prefix(tenant: str) -> str:
    """The start of every reference Bosse uses for ``tenant``."""
    return f"{_PREFIX}/{quote(tenant, safe='')}/"


def parse_reference(text: str | None) -> Reference | None:
    """A reference made by :class:`Reference`, or None for anything else."""
    if not text or not text.startswith(_PREFIX + "/"):
        return None
    parts = text.split("/")
    try:
        kind = MessageKind(parts[3]) if len(parts) > 3 else None
    except ValueError:
        return None
    if kind is None:
        return None
    if kind is MessageKind.offer:
        if len(parts) != 6 or not re.fullmatch(r"w[1-9]\d*", parts[5]):
            return None
        wave: int | None = int(parts[5][1:])
    else:
        if len(parts) != 5:
            return None
        wave = None
    tenant, shift_id, sub_id = (unquote(p) for p in (parts[1], parts[2], parts[4]))
    if not (tenant and shift_id and sub_id):
        return None
    return Reference(tenant, shift_id, kind, sub_id, wave)


def booking_key(tenant: str, shift_id: str, substitute_id: str) -> str:
    """The idempotency key of booking ``substitute_id`` on ``shift_id``."""
    return f"{_PREFIX}/{quote(tenant, safe='')}/{quote(shift_id, safe='')}/book/{quote(substitute_id, safe='')}"


def shift_label(shift: ShiftInfo) -> str:
    """``Solgården, tis 24/11 07:00–16:00`` (Swedish time)."""
    start, end = shift.local_start, shift.local_end
    when = f"{_WEEKDAYS[start.weekday()]} {start.day}/{start.month} {start:%H:%M}–{end:%H:%M}"
    return f"{shift.unit}, {when}" if shift.unit else when


def message_text(kind: MessageKind, shift: ShiftInfo) -> str:
    """The text of a message of ``kind`` about ``shift``; fixed for a given shift."""
    code, label = shift.code, shift_label(shift)
    if kind is MessageKind.offer:
        name = f" ({shift.name})" if shift.name else ""
        return (
            f"Bemanningen: vill du ta pass {code}, {label}{name}? Svara JA {code} eller NEJ {code}. Först till kvarn."
        )
    if kind is MessageKind.confirm:
        return f"Bemanningen: du är bokad på pass {code}, {label}. Tack!"
    if kind is MessageKind.filled:
        return f"Bemanningen: pass {code}, {label}, är nu tillsatt. Tack för ditt intresse, du behöver inte svara."
    if kind is MessageKind.late:
        return f"Bemanningen: tack för ditt svar! Pass {code} är redan tillsatt, så du blir inte bokad på det."
    return (
        f"Bemanningen: tack för ditt svar! Vi kan tyvärr inte boka dig på pass {code}, "
        "eftersom det inte går ihop med dina andra pass eller arbetstidsreglerna."
    )


@dataclass(frozen=True)
class ParsedReply:
    """What a reply says: the answer (None when unclear) and the shift code, if one was given."""

    answer: Answer | None
    code: str | None


_YES_WORDS = frozenset({"JA", "J", "JAA", "JAJA", "JAPP", "YES"})
_NO_WORDS = frozenset({"NEJ", "N", "NÄ", "NEE", "NO"})


def parse_reply(text: str, codes: Iterable[str] = ()) -> ParsedReply:
    """Read a JA/NEJ reply, tolerant of case, spacing, punctuation and a greeting after it.

    The answer is the first word (``"  Ja  P101 "``, ``"nej p101"``, ``"Ja P101, mvh Anna"``,
    ``"JA\\nP101"``, ``"Ja"``); the code is the first of ``codes`` (the shift codes Bosse has
    offered) that appears as a word anywhere in the text, compared without case.
    """
    words = re.findall(r"[0-9A-Za-zÅÄÖåäöÉé-]+", text)
    answer: Answer | None = None
    if words:
        first = words[0].upper()
        if first in _YES_WORDS:
            answer = Answer.yes
        elif first in _NO_WORDS:
            answer = Answer.no
        else:
            # "JA-P101" or "JAP101": the code glued to the answer.
            for known in sorted({c.upper() for c in codes}, key=len, reverse=True):
                for word, value in (("JA", Answer.yes), ("NEJ", Answer.no)):
                    if first in (f"{word}{known}", f"{word}-{known}"):
                        return ParsedReply(value, _original_code(known, codes))
    upper = {w.upper() for w in words} | {w.upper().removeprefix("JA-").removeprefix("NEJ-") for w in words}
    code = next((c for c in codes if c.upper() in upper), None)
    return ParsedReply(answer, code)


def _original_code(upper: str, codes: Iterable[str]) -> str:
    return next((c for c in codes if c.upper() == upper), upper)
