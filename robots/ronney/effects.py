"""Ronney's effects: what it is for, what it reports, and the month's figures from what happened (pure).

Measured from Ronney's review items (created when an application is prepared; decided by a
case worker) and its audit events (``ronney.decision_written`` with ``changed``,
``ronney.complement_requested``). docs/effects.md explains each figure.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from core.api import (
    EffectFacts,
    EffectsDeclaration,
    EventFact,
    Measure,
    Measured,
    OutcomeKind,
    ReviewFact,
    median,
    share,
)

__all__ = ["EFFECTS", "MORNING", "measure"]

APPLICATION_QUEUE = "ronney.application"
#: The hour the case workers' day starts: an application is ready in time if prepared before it.
MORNING = time(7, 30)
_ESTIMATE = "uppskattning i Kollega, inte uppmätt: ersätt med kommunens egen mätning"

EFFECTS = EffectsDeclaration(
    why="Handläggare lägger mycket tid på att kontrollera ansökningar om ekonomiskt bistånd, hämta "
    "registeruppgifter och räkna fram riksnormen innan de kan fatta beslut.",
    value="Ansökan är förberedd med registeruppgifter, beräkning och beslutsunderlag när handläggaren börjar "
    "07.30, så den sökande får beslut snabbare och handläggaren får tid för samtal och stöd.",
    when="Från första månaden: varje natt förbereds ansökningar som kommit in under dagen.",
    how_measured="Andel ansökningar förberedda före 07.30, mediantid från ansökan till beslut, hur ofta "
    "förslaget beslutas oförändrat, ändrat eller avslås, och antal kompletteringar som jagats; sparad tid "
    "räknas bara för förberedda och beslutade ansökningar, skrivna beslut och skickade kompletteringar, "
    "minus uppmätt granskningstid.",
    measures=(
        Measure(
            "prepared_before_0730",
            "Förberedda före 07.30",
            "%",
            "Andel av månadens förberedda ansökningar som var klara före 07.30 första morgonen efter att "
            "ansökan kom in.",
            better="higher",
        ),
        Measure(
            "median_hours_to_decision",
            "Mediantid från ansökan till beslut",
            "timmar",
            "Median av tiden från att ansökan lämnades in till handläggarens beslut, för ansökningar beslutade "
            "under månaden.",
            better="lower",
        ),
        Measure(
            "decided_unchanged",
            "Förslag beslutade oförändrade",
            "%",
            "Andel av månadens beslutade förslag som godkändes utan ändring.",
        ),
        Measure(
            "decided_changed",
            "Förslag beslutade med ändring",
            "%",
            "Andel av månadens beslutade förslag där handläggaren ändrade beräkningen innan beslut.",
        ),
        Measure(
            "decided_rejected",
            "Förslag avslagna",
            "%",
            "Andel av månadens beslutade förslag som handläggaren avslog.",
        ),
        Measure(
            "complements_chased",
            "Kompletteringar som jagats",
            "st",
            "Antal påminnelser om saknade kompletteringar som skickades via e-tjänsten under månaden.",
            decimals=0,
        ),
    ),
    outcomes=(
        OutcomeKind("application_prepared", "Förberedd och beslutad ansökan", 20.0, _ESTIMATE),
        OutcomeKind("decision_written", "Beslut skrivet i e-tjänsten", 3.0, _ESTIMATE),
        OutcomeKind("complement_chased", "Komplettering begärd via e-tjänsten", 5.0, _ESTIMATE),
    ),
    material_keys=("submitted_at",),
)


def _when(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def ready_by(submitted: datetime, facts: EffectFacts) -> datetime:
    """The first 07:30 local after ``submitted``: when a case worker first expects it prepared."""
    local = facts.local(submitted)
    morning = datetime.combine(local.date(), MORNING, tzinfo=facts.zone)
    return morning if local < morning else datetime.combine(local.date() + timedelta(days=1), MORNING, facts.zone)


def _decided(r: ReviewFact, facts: EffectFacts) -> bool:
    return r.queue == APPLICATION_QUEUE and r.state in ("approved", "rejected") and facts.in_month(r.decided_at)


def measure(facts: EffectFacts) -> Measured:
    """Ronney's figures for one municipality and month."""
    out = Measured()
    prepared = [
        r for r in facts.reviews if r.queue == APPLICATION_QUEUE and r.kind == "decision" and r.created_in_month
    ]
    timely = known = 0
    for r in prepared:
        submitted = _when(r.material.get("submitted_at"))
        if submitted is None:
            continue
        known += 1
        timely += r.created_at <= ready_by(submitted, facts)
    out.values["prepared_before_0730"] = share(timely, known)
    out.bases["prepared_before_0730"] = known

    decided = [r for r in facts.reviews if _decided(r, facts)]
    hours = []
    for r in decided:
        submitted = _when(r.material.get("submitted_at"))
        if submitted is not None and r.decided_at is not None:
            hours.append((r.decided_at - submitted).total_seconds() / 3600)
    value = median(hours)
    out.values["median_hours_to_decision"] = None if value is None else round(value, 1)
    out.bases["median_hours_to_decision"] = len(hours)

    written: dict[object, EventFact] = {}
    for e in facts.events_of("ronney.decision_written"):
        written.setdefault(e.details.get("review_id"), e)  # the first write; a later one is a replay
    rejected = sum(1 for r in decided if r.state == "rejected")
    changed = 0
    for r in decided:
        if r.state != "approved":
            continue
        event = written.get(r.id)
        # The decision is written a moment after it is made: its event may fall in the next month.
        changed += bool(event.details.get("changed")) if event is not None else _changed_data(r)
    out.values["decided_rejected"] = share(rejected, len(decided))
    out.values["decided_changed"] = share(changed, len(decided))
    out.values["decided_unchanged"] = share(len(decided) - rejected - changed, len(decided))
    for key in ("decided_rejected", "decided_changed", "decided_unchanged"):
        out.bases[key] = len(decided)

    chased = facts.events_of("ronney.complement_requested")
    out.values["complements_chased"] = float(len(chased))
    out.bases["complements_chased"] = len(chased)

    # Only outcomes that replaced manual work: a prepared application a person then decided on
    # (not one returned, already decided, or waiting for a complement), a decision written, a complement asked for.
    out.outcomes["application_prepared"] = len(decided)
    out.outcomes["decision_written"] = sum(
        1 for e in written.values() if not e.details.get("already_written") and not e.details.get("replayed")
    )
    out.outcomes["complement_chased"] = len(chased)
    return out


def _changed_data(r: ReviewFact) -> bool:
    """Fallback when the decision's event is not in the month: decision data beyond the table confirmation."""
    return any(k != "confirm_unverified_table" and v for k, v in (r.decision_data or {}).items())
