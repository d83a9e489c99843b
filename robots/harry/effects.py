"""HaRry's effects: what it is for, what it reports, and the month's figures from what happened (pure).

Measured from HaRry's work items (each result says whether the schedule was registered and
verified, was already there, or was superseded, and how many days it held) and its
deviation reviews. docs/effects.md explains each figure.
"""

from __future__ import annotations

from core.api import EffectFacts, EffectsDeclaration, Measure, Measured, OutcomeKind

__all__ = ["EFFECTS", "measure"]

DEVIATION_QUEUE = "harry.deviation"
_ESTIMATE = "uppskattning i Kollega, inte uppmätt: ersätt med kommunens egen mätning"

EFFECTS = EffectsDeclaration(
    why="Löneadministratörer skriver in varje godkänt schema för hand i lönesystemet, dag för dag, och fel "
    "upptäcks ofta först när lönen blir fel.",
    value="Scheman registreras varje natt, kontrollästa, och det som inte stämmer hamnar hos HR innan lönen "
    "körs, så fel lön och manuellt inmatningsarbete minskar.",
    when="Från första lönekörningen efter start.",
    how_measured="Antal registrerade och kontrollästa scheman, antal avvikelser som hittades och antal "
    "schemadagar som inte behövde skrivas in för hand; sparad tid räknas bara för scheman HaRry själv "
    "registrerade, minus uppmätt granskningstid.",
    measures=(
        Measure(
            "schedules_registered",
            "Registrerade scheman",
            "st",
            "Antal schemaversioner HaRry skrev in i lönesystemet och kontrolläste under månaden.",
            better="higher",
            decimals=0,
        ),
        Measure(
            "deviations_found",
            "Avvikelser som hittades",
            "st",
            "Antal scheman där lönesystemet visade något annat än det godkända schemat efter registrering, "
            "och som därför lämnades till HR.",
            decimals=0,
        ),
        Measure(
            "manual_registrations_avoided",
            "Schemadagar som inte skrevs in för hand",
            "st",
            "Antal schemadagar i de scheman HaRry registrerade och kontrolläste under månaden.",
            better="higher",
            decimals=0,
        ),
    ),
    outcomes=(OutcomeKind("schedule_registered", "Schema registrerat och kontrolläst", 10.0, _ESTIMATE),),
)


def measure(facts: EffectFacts) -> Measured:
    """HaRry's figures for one municipality and month."""
    out = Measured()
    registered = [i for i in facts.items if i.status == "done" and (i.result or {}).get("outcome") == "registered"]
    days = sum(int((i.result or {}).get("rows") or 0) for i in registered)
    deviations = [r for r in facts.reviews if r.queue == DEVIATION_QUEUE and r.created_in_month]
    out.values["schedules_registered"] = float(len(registered))
    out.values["deviations_found"] = float(len(deviations))
    out.values["manual_registrations_avoided"] = float(days)
    out.bases = {
        "schedules_registered": len(registered),
        "deviations_found": len(deviations),
        "manual_registrations_avoided": len(registered),
    }
    out.outcomes["schedule_registered"] = len(registered)
    return out
