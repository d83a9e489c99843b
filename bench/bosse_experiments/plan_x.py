# ruff: noqa
# Experiment of 2026-12-07 (docs/benchmarks.md, Bosse, 'spending the unused SMS'): not part of Kollega.
from robots.bosse.planning import *
from robots.bosse.planning import (
    _Conflicts,
    _shared,
    _chance_unfilled,
    _least_needed_elsewhere_first,
    KEEP_FOR_SCARCER_FROM,
    SPARE_ROUNDS,
    ClashCache,
)
from robots.bosse.history import timely_yes, ReplyStats
from robots.bosse.ledger import ShiftLedger
from robots.bosse.records import ShiftInfo, SubstituteInfo
from robots.bosse.settings import BosseSettings
from collections.abc import Mapping, Sequence
from datetime import datetime

OPTS = {}


def plan_offers_x(
    shifts: Sequence[ShiftInfo],
    evaluations: Mapping[str, Evaluation],
    ledgers: Mapping[str, ShiftLedger],
    people: Mapping[str, SubstituteInfo],
    now: datetime,
    settings: BosseSettings,
    history: Mapping[str, ReplyStats] | None = None,
    clash_cache: ClashCache | None = None,
) -> Plan:
    """Plan the offers of all open shifts together.

    The scarcest shifts go first: those most likely to go unfilled, judged by each candidate
    left (and each offer still unanswered) and their chance of a timely yes from ``history``
    (:mod:`robots.bosse.history`; without it everyone counts alike, so fewest candidates
    first), a candidate left counting in equal parts for each open shift they could take of
    those that exclude each other (:func:`_shared`). Every shift still looking for someone
    counts, also one waiting for replies. A person who could take several shifts that exclude
    each other is kept for the scarcest of them that is at risk (:data:`KEEP_FOR_SCARCER_FROM`) and held back from the others, which
    take them only when nobody else is left and they cannot wait (:data:`SPARE_ROUNDS`);
    within a shift, those other shifts need least are asked first. Nobody is offered a shift
    that a yes to an offer they already hold would make illegal; and each shift asks only as
    many at once as it needs to reach everyone left before its deadline
    (:func:`adaptive_wave_size`). ``clash_cache`` may be kept by the caller between plans.
    """
    by_id = {s.id: s for s in shifts}
    steps = {s.id: next_step(s, evaluations[s.id], ledgers[s.id], now, settings) for s in shifts}
    # Every shift still looking for someone counts, not only those due a wave now: a shift
    # waiting for replies still needs the people it has not asked yet.
    remaining = {
        sid: [c.id for c in evaluations[sid].eligible if c.id not in ledgers[sid].offers and c.reachable]
        for sid, step in steps.items()
        if step.kind is StepKind.wave or step.code == "waiting"
    }
    history = history or {}
    chance = {
        sid: {sub: timely_yes(history.get(sub), now, close_at(by_id[sid], settings)) for sub in remaining[sid]}
        for sid in remaining
    }
    conflicts = _Conflicts(people, by_id, settings.rules, clash_cache)
    chance_alone = chance
    # What each shift needs (scarcest first, kept for the scarcer) counts shared candidates in
    # part; what a person is needed for elsewhere counts each other shift as it stands alone.
    alone = {sid: _chance_unfilled(sid, chance[sid], ledgers[sid], history, now, by_id, settings) for sid in remaining}
    chance = _shared(chance, remaining, conflicts)
    unfilled = {
        sid: _chance_unfilled(sid, chance[sid], ledgers[sid], history, now, by_id, settings) for sid in remaining
    }
    order = sorted(remaining, key=lambda sid: (-unfilled[sid], by_id[sid].start, sid))
    held = live_offers(shifts, ledgers)
    planned: dict[str, set[str]] = {}
    offers: dict[str, tuple[str, ...]] = {}
    held_back: dict[str, dict[str, str]] = {}
    for index, sid in enumerate(order):
        if steps[sid].kind is not StepKind.wave and not (OPTS.get("target") and steps[sid].code == "waiting"):
            continue
        shift = by_id[sid]
        scarcer = order[:index]
        size = adaptive_wave_size(len(remaining[sid]), now, close_at(shift, settings), settings)
        closes_ = close_at(shift, settings)
        pending_yes = sum(
            timely_yes(history.get(s), o.message.sent_at, closes_)
            for s, o in ledgers[sid].offers.items()
            if o.message.delivered and o.answer is None
        )
        chosen: list[str] = []
        later: list[str] = []
        skipped: dict[str, str] = {}
        for sub in remaining[sid]:
            holding = held.get(sub, set()) | planned.get(sub, set())
            blocker = next((other for other in sorted(holding) if conflicts.clash(sub, other, sid)), None)
            if blocker is not None:
                skipped[sub] = f"har erbjudande på pass {by_id[blocker].code}; ett ja där gör detta pass otillåtet"
                continue
            # Wanted where scarcer: asked there first, here only when nobody else is left.
            if any(
                sub in remaining[o] and unfilled[o] >= KEEP_FOR_SCARCER_FROM and conflicts.clash(sub, o, sid)
                for o in scarcer
            ):
                later.append(sub)
                continue
            chosen.append(sub)
        chosen = _least_needed_elsewhere_first(sid, shift, chosen, remaining, alone, conflicts, people)
        rounds = int((close_at(shift, settings) - now).total_seconds() // (settings.reply_wait_minutes * 60))
        # Those kept for a scarcer shift are taken from it only when this shift cannot wait.
        pool_ = chosen + (later if chosen or rounds <= len(later) + SPARE_ROUNDS else [])
        if OPTS.get("target"):
            picked = []
            exp = pending_yes
            for s in pool_:
                if exp >= OPTS["target"] and len(picked) >= (1 if steps[sid].code == "wave" else 0):
                    break
                picked.append(s)
                exp += chance_alone[sid][s]
        else:
            picked = pool_[:size]
        for sub in later:
            if sub not in picked:
                skipped[sub] = "sparas till ett pass med färre behöriga"
        if picked:
            offers[sid] = tuple(picked)
            for sub in picked:
                planned.setdefault(sub, set()).add(sid)
        if skipped:
            held_back[sid] = skipped
    return Plan(tuple(order), offers, held_back)
