"""Bosse's effects: what it is for, what it reports, and the month's figures from what happened (pure).

Measured from Bosse's prepare items (one per open shift it worked on, with the shift), its
``bosse.booked`` events (with when the shift opened and its hours) and the ``external.write``
events of its SMS gateway (one per message sent). docs/effects.md explains each figure.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from core.api import EffectFacts, EffectsDeclaration, EventFact, Measure, Measured, OutcomeKind, median, share

__all__ = ["EFFECTS", "gini", "measure"]

_ESTIMATE = "uppskattning i Kollega, inte uppmätt: ersätt med kommunens egen mätning"

EFFECTS = EffectsDeclaration(
    why="Bemanningsenheten ringer och sms:ar vikarier för varje öppet pass, ofta tidigt på morgonen, och "
    "måste själv kontrollera arbetstidsreglerna för varje bokning.",
    value="Fler pass tillsätts, snabbare och inom arbetstidsreglerna, och timmarna fördelas jämnare mellan "
    "vikarierna; bemanningen får tid för de pass som är svåra att tillsätta.",
    when="Från första veckan: varje öppet pass erbjuds i vågor dagtid och bokas på första giltiga ja.",
    how_measured="Andel tillsatta pass, mediantid från att passet öppnades till bokning, antal SMS per tillsatt "
    "pass och hur jämnt timmarna fördelas mellan vikarierna; sparad tid räknas bara för pass som Bosse "
    "bokade, minus uppmätt granskningstid.",
    measures=(
        Measure(
            "fill_rate",
            "Tillsatta pass",
            "%",
            "Andel av de öppna pass Bosse arbetade med under månaden som blev bokade genom Bosse (på ett ja "
            "via SMS eller på samordnarens beslut).",
            better="higher",
        ),
        Measure(
            "median_minutes_to_booked",
            "Mediantid från öppnat pass till bokning",
            "minuter",
            "Median av tiden från att passet öppnades i bemanningssystemet till att Bosse bokade det, för "
            "månadens bokningar.",
            better="lower",
            decimals=0,
        ),
        Measure(
            "sms_per_filled_shift",
            "SMS per tillsatt pass",
            "st",
            "Antal SMS Bosse skickade under månaden (erbjudanden, bekräftelser och besked) delat med antal pass "
            "som bokades.",
            better="lower",
        ),
        Measure(
            "hours_spread",
            "Spridning av timmar (Gini)",
            "",
            "Gini-koefficient för de bokade timmarna per vikarie under månaden: 0 betyder helt jämnt fördelat, "
            "1 att en person fick alla timmar.",
            better="lower",
            decimals=2,
        ),
    ),
    outcomes=(
        OutcomeKind("shift_booked_on_yes", "Pass bokat på ett ja via SMS", 20.0, _ESTIMATE),
        OutcomeKind("shift_booked_on_decision", "Pass bokat på samordnarens beslut", 8.0, _ESTIMATE),
    ),
)


def gini(values: list[float]) -> float | None:
    """The Gini coefficient of non-negative values (0 = equal), None for none or all zero."""
    data = sorted(v for v in values if v >= 0)
    total = sum(data)
    if not data or total == 0:
        return None
    n = len(data)
    weighted = sum((i + 1) * v for i, v in enumerate(data))
    return round((2 * weighted) / (n * total) - (n + 1) / n, 2)


def _when(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _bookings(facts: EffectFacts) -> dict[str, EventFact]:
    """shift id → its first booking event in the month (a recovered booking may be recorded twice)."""
    out: dict[str, EventFact] = {}
    for e in facts.events_of("bosse.booked"):
        shift = str(e.details.get("shift_id") or "")
        if shift and shift not in out:
            out[shift] = e
    return out


def measure(facts: EffectFacts, sms_system: str = "sms") -> Measured:
    """Bosse's figures for one municipality and month."""
    out = Measured()
    booked = _bookings(facts)
    worked = {
        str(i.payload.get("shift_id") or i.reference)
        for i in facts.items
        if "/" not in i.reference and (i.result or {}).get("status") != "booked"  # already booked when found
    }
    worked |= set(booked)
    out.values["fill_rate"] = share(len(booked), len(worked))
    out.bases["fill_rate"] = len(worked)

    minutes = []
    for e in booked.values():
        opened = _when(e.details.get("opened_at"))
        if opened is not None:
            minutes.append((e.time - opened).total_seconds() / 60)
    value = median(minutes)
    out.values["median_minutes_to_booked"] = None if value is None else round(value)
    out.bases["median_minutes_to_booked"] = len(minutes)

    # One external.write per message; a replayed send (same reference) is counted once.
    sent = {
        str(e.details.get("what")) for e in facts.events_of("external.write") if e.details.get("system") == sms_system
    }
    out.values["sms_per_filled_shift"] = round(len(sent) / len(booked), 1) if booked else None
    out.bases["sms_per_filled_shift"] = len(booked)

    hours: dict[str, float] = defaultdict(float)
    for e in booked.values():
        sub = str(e.details.get("substitute_id") or "")
        if sub:
            hours[sub] += float(e.details.get("hours") or 0)
    out.values["hours_spread"] = gini(list(hours.values()))
    out.bases["hours_spread"] = len(hours)

    out.outcomes["shift_booked_on_yes"] = sum(1 for e in booked.values() if e.details.get("via") == "sms_yes")
    out.outcomes["shift_booked_on_decision"] = sum(1 for e in booked.values() if e.details.get("via") == "decision")
    return out
