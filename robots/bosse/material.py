"""The coordinators' review material for a shift Bosse could not fill (pure).

The material is what ``templates/review.html`` shows: the shift, the ranked candidates
with why each stands where they do and how each answered, the people who were excluded
with every reason, the SMS history, and Bosse's proposal. It is a snapshot taken when the
review item was made; on_decision re-checks the staffing system before doing anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from robots.bosse.history import ReplyStats, history_material
from robots.bosse.ledger import ShiftLedger
from robots.bosse.messages import Answer, shift_label
from robots.bosse.planning import Evaluation, candidates_for_review
from robots.bosse.records import ShiftInfo, SubstituteInfo
from robots.bosse.rules import DEFAULT_RULES, STOCKHOLM, BosseRules, counters

__all__ = ["HOW_TO_DECIDE", "QUEUE", "review_material", "review_summary", "review_title"]

#: The coordinators' review queue.
QUEUE = "bosse.unfilled"

#: Shown with every review: what each decision makes Bosse do.
HOW_TO_DECIDE = (
    "Godkänn: Bosse bokar den föreslagna vikarien, eller den vars id (t.ex. V012) du skriver i "
    "kommentaren, efter en ny kontroll mot arbetstidsreglerna, och skickar bekräftelse. "
    "Returnera: Bosse skickar en ny omgång erbjudanden (till de id du skriver i kommentaren, "
    "annars till nästa i rangordningen). Avslå: passet är bemannat på annat sätt; de som har "
    "ett obesvarat erbjudande får veta att passet är tillsatt."
)


def _local(moment: datetime | None) -> str | None:
    return moment.astimezone(STOCKHOLM).isoformat(timespec="minutes") if moment else None


def _offer_status(ledger: ShiftLedger, substitute_id: str) -> tuple[dict[str, Any] | None, str]:
    offer = ledger.offers.get(substitute_id)
    if offer is None:
        return None, "inte erbjuden"
    info = {
        "wave": offer.wave,
        "sent_at": _local(offer.message.sent_at),
        "delivered": offer.message.delivered,
        "answer": offer.answer.value if offer.answer else None,
        "answered_at": _local(offer.answered_at),
    }
    if not offer.message.delivered:
        return info, f"omgång {offer.wave}: SMS kunde inte levereras"
    if offer.answer is Answer.yes:
        return info, f"omgång {offer.wave}: svarade JA"
    if offer.answer is Answer.no:
        return info, f"omgång {offer.wave}: svarade NEJ"
    return info, f"omgång {offer.wave}: inget svar"


def _counters(shift: ShiftInfo, person: SubstituteInfo | None, rules: BosseRules) -> list[str]:
    """The person's overtime and mertid with the shift, counted from their bookings, in Swedish
    (``"övertid i december: 38 av 50 h"``), for the coordinators."""
    if person is None:
        return []
    return [c.text for c in counters(shift.to_rules(), person.to_rules(shift), rules)]


def review_material(
    shift: ShiftInfo,
    evaluation: Evaluation,
    ledger: ShiftLedger,
    people: Mapping[str, SubstituteInfo],
    *,
    reason: str,
    reason_text: str,
    note: str | None = None,
    late_yes: str | None = None,
    rules: BosseRules = DEFAULT_RULES,
    history: Mapping[str, ReplyStats] | None = None,
) -> dict[str, Any]:
    """The JSON material of a ``bosse.unfilled`` review item.

    ``history`` is every substitute's reply history (:func:`robots.bosse.history.reply_history`):
    each eligible candidate is shown with how they answered Bosse's offers in its window.
    """

    def name(sub: str) -> str:
        person = people.get(sub)
        return person.name if person else sub

    eligible = []
    for c in evaluation.eligible:
        offer, status = _offer_status(ledger, c.id)
        eligible.append(
            {
                "rank": c.rank,
                "id": c.id,
                "name": name(c.id),
                "why": c.why,
                "reachable": c.reachable,
                "offer": offer,
                "status": status if c.reachable else f"{status}; saknar giltigt mobilnummer",
                "counters": _counters(shift, people.get(c.id), rules),
                "replies": history_material((history or {}).get(c.id)),
            }
        )
    ineligible = [{"id": sub, "name": name(sub), "reasons": list(reasons)} for sub, reasons in evaluation.ineligible]
    # Never offered by Bosse: shown so a coordinator can decide, with the rest it would cost.
    exceptions = [
        {
            "id": e.id,
            "name": name(e.id),
            "label": "Endast med undantag – kräver samordnarens beslut",
            "text": e.text,
            "compensating_rest_hours": e.compensating_rest_hours,
        }
        for e in evaluation.exceptions
    ]
    events = []
    for event in ledger.history():
        at = datetime.fromisoformat(event["at"])
        events.append({**event, "at": _local(at), "name": name(event["substitute_id"])})
    order = list(candidates_for_review(evaluation, ledger))
    if late_yes is not None and evaluation.rank_of(late_yes) is not None:
        order = [late_yes, *[s for s in order if s != late_yes]]
    proposed = order[0] if order else None
    return {
        "shift": {**shift.as_material(), "label": shift_label(shift)},
        "reason": reason,
        "reason_text": reason_text,
        "note": note,
        "late_yes": late_yes,
        "proposed": proposed,
        "proposed_name": name(proposed) if proposed else None,
        "eligible": eligible,
        "ineligible": ineligible,
        "exceptions": exceptions,
        "history": events,
        "counts": {
            "eligible": len(eligible),
            "ineligible": len(ineligible),
            "offered": len(ledger.offers),
            "no": sum(1 for o in ledger.offers.values() if o.answer is Answer.no),
            "yes": sum(1 for o in ledger.offers.values() if o.answer is Answer.yes),
        },
        "how_to_decide": HOW_TO_DECIDE,
    }


def review_title(shift: ShiftInfo, *, late_yes: str | None = None) -> str:
    """``Obemannat pass P101: Solgården, tis 24/11 07:00–16:00``."""
    if late_yes is not None:
        return f"Sent ja från {late_yes} för pass {shift.code}: {shift_label(shift)}"
    return f"Obemannat pass {shift.code}: {shift_label(shift)}"


def review_summary(material: Mapping[str, Any]) -> str:
    """One or two sentences for the inbox list."""
    counts = material["counts"]
    text = (
        f"{str(material['reason_text']).capitalize()}. {counts['eligible']} behöriga, "
        f"{counts['offered']} har fått erbjudande, {counts['no']} har tackat nej."
    )
    if material.get("proposed"):
        text += f" Förslag: {material['proposed_name']} ({material['proposed']})."
    else:
        text += " Ingen behörig vikarie att föreslå."
    return text


def shift_started(material: dict[str, Any], now: datetime, zone: ZoneInfo) -> str | None:
    """The Swedish reason a review item about a shift has lost its point (the shift began), or None.

    ``material["shift"]["start"]`` is the shift's local start with its offset (see
    ``ShiftInfo.as_material``); material without one never lapses.
    """
    shift = material.get("shift") if isinstance(material, dict) else None
    if not isinstance(shift, dict) or not isinstance(shift.get("start"), str):
        return None
    start_text = str(shift["start"])
    try:
        start = datetime.fromisoformat(start_text)
    except ValueError:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=zone)
    if start > now:
        return None
    label = shift.get("label") or shift.get("name")
    which = f"Passet ({label})" if label else "Passet"
    return (
        f"{which} började {start.astimezone(zone):%Y-%m-%d %H:%M} och kan inte längre tillsättas härifrån. "
        "Ingen vikarie bokades av Kollega; se bemanningssystemet för hur passet täcktes."
    )
