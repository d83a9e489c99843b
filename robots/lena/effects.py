"""Lena's effects: what she is for, what she reports, the facts she records per plan and the month's figures (pure).

When Lena prepares a plan she computes its facts (:func:`plan_facts`): Kolada's
continuity for her plan and for the home-care system's own plan over the same 14 days
(:mod:`robots.lena.kolada`, history of every group), her own continuity figure for both,
travel and care minutes, lateness and unassigned visits. They travel with the review
material and are written into the ``lena.plan_published`` audit event when the
coordinator approves, so the month's figures (:func:`measure`) count only published plans.
docs/effects.md explains each figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.api import EffectFacts, EffectsDeclaration, Measure, Measured, OutcomeKind, median, share
from robots.lena.continuity import distinct_staff, plan_assignments
from robots.lena.homecare import STOCKHOLM, to_minutes
from robots.lena.kolada import CARE, PERIOD_DAYS, KoladaResult, KoladaVisit, Recipient, kolada_continuity
from robots.lena.metrics import PlanMetrics
from robots.lena.model import Plan, Problem

__all__ = ["EFFECTS", "measure", "plan_facts", "recipients_of", "visits_of"]

_ESTIMATE = "uppskattning i Kollega, inte uppmätt: ersätt med kommunens egen mätning"

EFFECTS = EffectsDeclaration(
    why="Samordnare lägger timmar varje dag på att pussla morgondagens hemtjänstbesök, och brukarna möter "
    "många olika personal under två veckor.",
    value="Färre olika personal hos varje brukare (personalkontinuitet), kortare restid och besök i tid, så "
    "omsorgen blir tryggare och mer tid går till brukarna.",
    when="Från första publicerade planen; kontinuiteten syns fullt efter 14 dagar.",
    how_measured="Personalkontinuitet enligt Koladas definition för de publicerade planerna jämfört med "
    "verksamhetssystemets egen plan för samma dag, Lenas eget kontinuitetsmått, restidens andel av arbetstiden, "
    "försenade och oplanerade besök; sparad tid räknas bara för publicerade planer, minus uppmätt granskningstid.",
    measures=(
        Measure(
            "kolada_continuity",
            "Personalkontinuitet (Kolada), publicerade planer",
            "personal",
            "Median av antal olika personal som en hemtjänsttagare möter under 14 dagar (13 dagars historik och "
            "den planerade dagen), räknat som Kolada: 65 år och äldre, minst två besök varje dag, besök 07–22, "
            "utan trygghetslarm, matleveranser och hemsjukvård, bara brukare som bott hemma hela perioden.",
            better="lower",
        ),
        Measure(
            "kolada_continuity_system",
            "Personalkontinuitet (Kolada), verksamhetssystemets plan",
            "personal",
            "Samma mått för verksamhetssystemets egen plan för samma dagar, som jämförelse.",
            better="lower",
        ),
        Measure(
            "own_continuity",
            "Lenas kontinuitetsmått, publicerade planer",
            "personal",
            "Medelvärde av antal olika personal per brukare med besök den planerade dagen, under historikens "
            "dagar och den planerade dagen, alla besök och tider (Lenas eget mått, inte Koladas).",
            better="lower",
        ),
        Measure(
            "own_continuity_system",
            "Lenas kontinuitetsmått, verksamhetssystemets plan",
            "personal",
            "Samma mått för verksamhetssystemets egen plan.",
            better="lower",
        ),
        Measure(
            "travel_share",
            "Restid av arbetstiden",
            "%",
            "Restid delad med restid plus besökstid i de publicerade planerna.",
            better="lower",
        ),
        Measure(
            "late_visits",
            "Försenade besök",
            "st",
            "Antal planerade besök som börjar efter sitt tidsfönster i de publicerade planerna.",
            better="lower",
            decimals=0,
        ),
        Measure(
            "lateness_minutes",
            "Försening totalt",
            "minuter",
            "Summan av minuter efter tidsfönstret för försenade besök i de publicerade planerna.",
            better="lower",
            decimals=0,
        ),
        Measure(
            "unassigned_visits",
            "Oplanerade besök",
            "st",
            "Antal besök som lämnades oplanerade (med skäl) i de publicerade planerna.",
            better="lower",
            decimals=0,
        ),
    ),
    outcomes=(OutcomeKind("plan_published", "Dagsplan publicerad för en grupp", 60.0, _ESTIMATE),),
)


def _day(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def recipients_of(clients: Iterable[Mapping[str, Any]], last_day: date) -> dict[str, Recipient]:
    """client id → what the selection needs: age and the days away from home (absences)."""
    out = {}
    for c in clients:
        away: set[date] = set()
        for a in c.get("absences") or ():
            lo, hi = _day(a.get("from")), _day(a.get("to")) or last_day
            if lo is None:
                continue
            away.update(lo + timedelta(days=i) for i in range((hi - lo).days + 1))
        age = c.get("age")
        out[str(c["id"])] = Recipient(str(c["id"]), int(age) if isinstance(age, int) else None, frozenset(away))
    return out


def visits_of(history: Iterable[Mapping[str, Any]], tz: ZoneInfo = STOCKHOLM) -> list[KoladaVisit]:
    """Performed visits of the home-care history as :class:`KoladaVisit` (start in local minutes)."""
    out = []
    for h in history:
        day = _day(h.get("date"))
        if day is None or not h.get("start"):
            continue
        out.append(
            KoladaVisit(
                str(h["client_id"]),
                day,
                to_minutes(day, str(h["start"]), tz),
                str(h.get("kind") or CARE),
                tuple(str(s) for s in h.get("staff_ids") or ()),
            )
        )
    return out


def _planned(problem: Problem, rows: Mapping[str, list[tuple[str, int]]], day: date) -> list[KoladaVisit]:
    out = []
    for v in problem.visits:
        people = rows.get(v.id)
        if people:  # an unassigned visit is not made
            out.append(KoladaVisit(v.client_id, day, min(t for _, t in people), CARE, tuple(s for s, _ in people)))
    return out


def _kolada_dict(result: KoladaResult) -> dict[str, Any]:
    return {"median": result.median, "mean": result.mean, "counts": list(result.counts), "excluded": result.excluded}


def plan_facts(
    problem: Problem,
    plan: Plan,
    metrics: PlanMetrics,
    *,
    day: date,
    clients: Iterable[Mapping[str, Any]],
    history: Iterable[Mapping[str, Any]],
    baseline: Mapping[str, Any] | None,
    tz: ZoneInfo = STOCKHOLM,
) -> dict[str, Any]:
    """The facts of one plan the effects ledger needs (no client or staff ids: safe to audit)."""
    past = visits_of(history, tz)
    recipients = recipients_of(clients, day)
    ours = {vid: [(s, t) for s, t, _ in rows] for vid, rows in plan.assignments().items()}
    mine = kolada_continuity(past + _planned(problem, ours, day), recipients, day)
    today = {v.client_id for v in problem.visits}
    own = distinct_staff(problem, plan_assignments(plan))
    facts: dict[str, Any] = {
        "period_days": PERIOD_DAYS,
        "kolada": _kolada_dict(mine),
        "own_counts": sorted(n for c, n in own.items() if c in today),
        "visits": len(problem.visits),
        "unassigned": len(plan.unassigned),
        "travel_minutes": metrics.travel,
        "care_minutes": sum(d.work for d in metrics.days.values()),
        "lateness_minutes": metrics.lateness_total,
        "late_visits": _late(problem, plan),
    }
    if baseline is not None:
        theirs: dict[str, list[tuple[str, int]]] = {}
        for a in baseline.get("assignments", []):
            start = to_minutes(day, str(a["start"]), tz) if a.get("start") else 0
            theirs[str(a["visit_id"])] = [(str(s), start) for s in a.get("staff_ids", [])]
        facts["kolada_system"] = _kolada_dict(kolada_continuity(past + _planned(problem, theirs, day), recipients, day))
        base_own = distinct_staff(problem, {vid: [s for s, _ in rows] for vid, rows in theirs.items()})
        facts["own_counts_system"] = sorted(n for c, n in base_own.items() if c in today)
    return facts


def _late(problem: Problem, plan: Plan) -> int:
    return sum(1 for r in plan.routes for st in r.stops if st.start > problem.visit(st.visit_id).latest)


def _pooled(plans: list[Mapping[str, Any]], key: str) -> list[int]:
    """Every recipient's count of Kolada's figure ``key`` over the plans (each plan's 14 days)."""
    return [int(n) for p in plans for n in ((p.get(key) or {}).get("counts") or [])]


def measure(facts: EffectFacts) -> Measured:
    """Lena's figures for one municipality and month, from the plans published in it."""
    out = Measured()
    published = [e for e in facts.events_of("lena.plan_published") if isinstance(e.details.get("effects"), dict)]
    plans: list[Mapping[str, Any]] = [e.details["effects"] for e in published]
    for key, source in (("kolada_continuity", "kolada"), ("kolada_continuity_system", "kolada_system")):
        counts = _pooled(plans, source)
        out.values[key] = median(counts)
        out.bases[key] = len(counts)
    for key, source in (("own_continuity", "own_counts"), ("own_continuity_system", "own_counts_system")):
        counts = [int(n) for p in plans for n in p.get(source) or []]
        out.values[key] = round(statistics.mean(counts), 2) if counts else None
        out.bases[key] = len(counts)
    travel = sum(int(p.get("travel_minutes") or 0) for p in plans)
    care = sum(int(p.get("care_minutes") or 0) for p in plans)
    out.values["travel_share"] = share(travel, travel + care)
    out.bases["travel_share"] = len(plans)
    for key in ("late_visits", "lateness_minutes", "unassigned_visits"):
        source = "unassigned" if key == "unassigned_visits" else key
        out.values[key] = float(sum(int(p.get(source) or 0) for p in plans)) if plans else None
        out.bases[key] = len(plans)
    out.outcomes["plan_published"] = len({(e.details.get("group"), e.details.get("date")) for e in published})
    return out
