"""What should happen next with a shift: wait, send a wave, hand it over, tell people (pure).

Given the shift, the ranked candidates, the shift's :class:`~robots.bosse.ledger.ShiftLedger`
and the time, :func:`next_step` says what Bosse does next; :func:`pending_notices` says
who still has to be told what once a shift is booked. Both are used by ``collect`` (to
decide which work items exist) and by ``process`` (to do the work), so the two never
disagree. Quiet hours and deadlines are worked out here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum

from connectors.sms import normalize_msisdn
from core.api import BusinessError
from robots.bosse.history import ReplyStats, timely_yes
from robots.bosse.ledger import ShiftLedger
from robots.bosse.messages import Answer, MessageKind
from robots.bosse.ranking import rank_candidates
from robots.bosse.records import ShiftInfo, SubstituteInfo
from robots.bosse.rules import STOCKHOLM, BosseRules, check_eligibility, exception_option
from robots.bosse.settings import BosseSettings

__all__ = [
    "Candidate",
    "Evaluation",
    "ExceptionCase",
    "Plan",
    "Step",
    "StepKind",
    "adaptive_wave_size",
    "clashing_offers",
    "close_at",
    "evaluate_shift",
    "in_quiet_hours",
    "live_offers",
    "never_answers",
    "next_step",
    "pending_notices",
    "plan_offers",
    "quiet_hours_end_after",
    "wave_targets",
]


# -- time -----------------------------------------------------------------------------
def _local(moment: datetime) -> datetime:
    return moment.astimezone(STOCKHOLM)


def in_quiet_hours(moment: datetime, start: time, end: time) -> bool:
    """True when ``moment`` (aware) falls in the quiet hours [start, end) Swedish time."""
    clock = _local(moment).time().replace(tzinfo=None)
    if start > end:  # across midnight, e.g. 21:00-07:00
        return clock >= start or clock < end
    return start <= clock < end


def _at(day: datetime, moment: time) -> datetime:
    return datetime.combine(day.date(), moment, STOCKHOLM).astimezone(UTC)


def quiet_hours_end_after(moment: datetime, start: time, end: time) -> datetime:
    """When the quiet hours around ``moment`` end (``moment`` itself when it is not quiet)."""
    if not in_quiet_hours(moment, start, end):
        return moment
    local = _local(moment)
    candidate = _at(local, end)
    if candidate <= moment:
        candidate = _at(local + timedelta(days=1), end)
    return candidate


def _quiet_start_before(moment: datetime, start: time, end: time) -> datetime:
    """The start of the quiet period ``moment`` lies in."""
    local = _local(moment)
    candidate = _at(local, start)
    if candidate > moment:
        candidate = _at(local - timedelta(days=1), start)
    return candidate


def close_at(shift: ShiftInfo, settings: BosseSettings) -> datetime:
    """When the shift goes to the coordinators if still open: its deadline, brought forward
    out of the quiet hours (no offer can be sent there) by ``escalation_margin_minutes``."""
    deadline = shift.deadline or shift.start - timedelta(hours=settings.deadline_hours_before_start)
    deadline = min(deadline, shift.start)
    if in_quiet_hours(deadline, settings.quiet_hours_start, settings.quiet_hours_end):
        begin = _quiet_start_before(deadline, settings.quiet_hours_start, settings.quiet_hours_end)
        return begin - timedelta(minutes=settings.escalation_margin_minutes)
    return deadline


# -- ranking ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """An eligible substitute in rank order, with why, and whether an SMS can reach them."""

    rank: int
    id: str
    why: str
    reachable: bool


@dataclass(frozen=True)
class ExceptionCase:
    """Someone who could take the shift only under an exception in AB: for a coordinator only."""

    id: str
    text: str
    compensating_rest_hours: float


@dataclass(frozen=True)
class Evaluation:
    """Everyone checked for one shift: the eligible ranked, the others with their reasons.

    ``exceptions`` holds the ineligible who could take it only under an exception in AB
    (never offered by Bosse, only shown to the coordinators).
    """

    eligible: tuple[Candidate, ...]
    ineligible: tuple[tuple[str, tuple[str, ...]], ...]
    exceptions: tuple[ExceptionCase, ...] = ()

    def rank_of(self, substitute_id: str) -> Candidate | None:
        """The candidate entry of ``substitute_id`` (None when not eligible)."""
        return next((c for c in self.eligible if c.id == substitute_id), None)


def _reachable(phone: str | None) -> bool:
    if not phone:
        return False
    try:
        normalize_msisdn(phone)
    except BusinessError:
        return False
    return True


def evaluate_shift(shift: ShiftInfo, substitutes: Iterable[SubstituteInfo], rules: BosseRules) -> Evaluation:
    """Check every substitute against the rules for ``shift`` and rank the eligible ones."""
    domain_shift = shift.to_rules()
    people = {s.id: s for s in substitutes}
    eligible = []
    ineligible: list[tuple[str, tuple[str, ...]]] = []
    exceptions: list[ExceptionCase] = []
    for person in people.values():
        seen = person.to_rules(shift)
        violations = check_eligibility(domain_shift, seen, rules)
        if violations:
            ineligible.append((person.id, tuple(v.reason for v in violations)))
            option = exception_option(violations, rules)
            if option is not None:
                exceptions.append(ExceptionCase(person.id, option.text, float(option.compensating_rest_hours)))
        else:
            eligible.append(seen)
    ranked = rank_candidates(domain_shift, eligible)
    return Evaluation(
        eligible=tuple(Candidate(c.rank, c.id, c.why, _reachable(people[c.id].phone)) for c in ranked),
        ineligible=tuple(ineligible),
        exceptions=tuple(exceptions),
    )


# -- the next step ------------------------------------------------------------------------
class StepKind(StrEnum):
    """What Bosse does next with an open shift."""

    nothing = "nothing"  # booked, or covered otherwise: nothing to offer
    wait = "wait"  # offers are out, a yes is being handled, or it is quiet hours / too early
    wave = "wave"  # send the next wave of offers
    unfilled = "unfilled"  # hand the shift to the coordinators


@dataclass(frozen=True)
class Step:
    """The next step for a shift and the reason, in Swedish for people."""

    kind: StepKind
    reason: str
    code: str = ""
    wave: int | None = None
    candidates: tuple[str, ...] = field(default=())


def next_step(
    shift: ShiftInfo, evaluation: Evaluation, ledger: ShiftLedger, now: datetime, settings: BosseSettings
) -> Step:
    """Decide what happens next with ``shift`` at ``now``."""
    if not shift.is_open:
        return Step(StepKind.nothing, "passet är bokat", "booked")
    if ledger.covered:
        return Step(StepKind.nothing, "passet är tillsatt på annat sätt", "covered")
    closes = close_at(shift, settings)
    if now >= closes:
        return Step(StepKind.unfilled, "passet är inte tillsatt vid sista tidpunkten för erbjudanden", "deadline")
    if ledger.yes_queue(received_before=closes):
        return Step(StepKind.wait, "ett ja väntar på att bokas", "yes_pending")
    if ledger.waiting(now, settings.reply_wait_minutes * 60):
        return Step(StepKind.wait, "erbjudanden väntar på svar", "waiting")
    remaining = [c.id for c in evaluation.eligible if c.id not in ledger.offers and c.reachable]
    if not remaining:
        if not evaluation.eligible:
            return Step(StepKind.unfilled, "ingen vikarie uppfyller kraven för passet", "no_candidates")
        if not ledger.offers and not any(c.reachable for c in evaluation.eligible):
            return Step(StepKind.unfilled, "ingen behörig vikarie kan nås per SMS", "unreachable")
        return Step(StepKind.unfilled, "alla behöriga vikarier har fått erbjudandet utan att tacka ja", "exhausted")
    if settings.max_waves is not None and ledger.last_wave >= settings.max_waves:
        return Step(StepKind.unfilled, f"{settings.max_waves} omgångar erbjudanden utan ja", "max_waves")
    if in_quiet_hours(now, settings.quiet_hours_start, settings.quiet_hours_end):
        return Step(StepKind.wait, "tysta timmar: erbjudanden skickas på morgonen", "quiet_hours")
    if settings.max_offer_lead_hours is not None and now < shift.start - timedelta(hours=settings.max_offer_lead_hours):
        return Step(StepKind.wait, "för tidigt att erbjuda passet", "too_early")
    wave = ledger.last_wave + 1
    return Step(StepKind.wave, f"omgång {wave} av erbjudanden", "wave", wave, tuple(remaining[: settings.wave_size]))


def wave_targets(evaluation: Evaluation, ledger: ShiftLedger, wave: int, size: int) -> list[str]:
    """Who gets wave ``wave``: the best-ranked reachable candidates not offered yet, topping
    up the wave to ``size`` when part of it was already sent (a repeated attempt)."""
    already = sum(1 for o in ledger.offers.values() if o.wave == wave)
    remaining = [c.id for c in evaluation.eligible if c.id not in ledger.offers and c.reachable]
    return remaining[: max(size - already, 0)]


def pending_notices(shift: ShiftInfo, ledger: ShiftLedger, *, booked_by_us: bool) -> list[tuple[MessageKind, str]]:
    """Messages still owed once ``shift`` is booked: the confirmation (when Bosse booked), "filled"
    to every other offer holder who has not said no, and a polite no to a yes that came after."""
    booked = shift.booked_substitute_id
    if booked is None:
        return []
    owed: list[tuple[MessageKind, str]] = []
    if booked_by_us and ledger.notice(MessageKind.confirm, booked) is None:
        owed.append((MessageKind.confirm, booked))
    for sub, offer in sorted(ledger.offers.items()):
        if sub == booked or not offer.message.delivered:
            continue
        if ledger.notice(MessageKind.notbooked, sub) is not None:
            continue
        filled = ledger.notice(MessageKind.filled, sub)
        if filled is None:
            if offer.answer is not Answer.no:
                owed.append((MessageKind.filled, sub))
        elif (
            offer.answer is Answer.yes
            and offer.answered_at is not None
            and offer.answered_at > filled.sent_at
            and ledger.notice(MessageKind.late, sub) is None
        ):
            owed.append((MessageKind.late, sub))
    return owed


def covered_notices(ledger: ShiftLedger) -> list[str]:
    """Who must be told a shift is filled when it was covered outside Bosse (a coordinator's call)."""
    return [
        sub
        for sub, offer in sorted(ledger.offers.items())
        if offer.message.delivered
        and offer.answer is not Answer.no
        and ledger.notice(MessageKind.filled, sub) is None
        and ledger.notice(MessageKind.notbooked, sub) is None
    ]


def candidates_for_review(evaluation: Evaluation, ledger: ShiftLedger) -> Sequence[str]:
    """The proposal order for the coordinators: yeses first (in order), then the ranking without
    those who said no."""
    yes = ledger.yes_queue()
    rest = [
        c.id
        for c in evaluation.eligible
        if c.id not in yes and not (c.id in ledger.offers and ledger.offers[c.id].answer is Answer.no)
    ]
    return [s for s in yes if evaluation.rank_of(s) is not None] + rest


# -- tonight's shifts together --------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """Offers to send now for all open shifts together.

    ``order`` lists the shifts scarcest first (fewest candidates left); ``offers`` says who
    gets an offer for which shift now; ``held_back`` says, per shift, who was left out and
    why (Swedish), e.g. because a yes to an offer they hold would make this shift illegal.
    """

    order: tuple[str, ...]
    offers: dict[str, tuple[str, ...]]
    held_back: dict[str, dict[str, str]]


def adaptive_wave_size(remaining: int, now: datetime, closes: datetime, settings: BosseSettings) -> int:
    """How many to ask at once: few while there is time for many rounds of replies, more as
    the deadline nears, so that everyone left can be asked before offers close (at most
    ``wave_size``, at least one)."""
    if not settings.adaptive_waves:
        return settings.wave_size
    rounds = int((closes - now).total_seconds() // (settings.reply_wait_minutes * 60))
    needed = -(-remaining // max(rounds, 1))
    return max(1, min(settings.wave_size, needed))


#: Clash answers a caller may keep between plans: (person, shift, shift) -> (the person's record, clash).
ClashCache = dict[tuple[str, str, str], tuple[SubstituteInfo, bool]]


class _Conflicts:
    """Whether a yes to one shift would make another illegal for a person (cached)."""

    def __init__(
        self,
        people: Mapping[str, SubstituteInfo],
        shifts: Mapping[str, ShiftInfo],
        rules: BosseRules,
        cache: ClashCache | None = None,
    ):
        self.people, self.shifts, self.rules = people, shifts, rules
        self._cache: ClashCache = {} if cache is None else cache

    def clash(self, person_id: str, a: str, b: str) -> bool:
        if a == b:
            return False
        first, second = sorted((a, b))
        key = (person_id, first, second)
        person = self.people[person_id]
        # An answer holds while the person's record is the same object (records are frozen;
        # a new booking makes a new one), so a cache kept between plans stays right.
        known = self._cache.get(key)
        if known is None or known[0] is not person:
            known = (person, self._one_way(person_id, a, b) or self._one_way(person_id, b, a))
            self._cache[key] = known
        return known[1]

    def _one_way(self, person_id: str, booked: str, offered: str) -> bool:
        person, first, second = self.people[person_id], self.shifts[booked], self.shifts[offered]
        hours = dict(person.hours_by_month)
        hours[first.month] = hours.get(first.month, person.hours_this_month if not hours else 0.0) + first.hours
        with_first = replace(
            person,
            bookings=(*person.bookings, first.to_rules().span),
            booking_ids=(*person.booking_ids, f"planned:{first.id}"),
            hours_by_month=hours,
        )
        return bool(check_eligibility(second.to_rules(), with_first.to_rules(second), self.rules))


def live_offers(shifts: Iterable[ShiftInfo], ledgers: Mapping[str, ShiftLedger]) -> dict[str, set[str]]:
    """Per person, the open shifts on which they hold an offer not declined (a yes may come)."""
    held: dict[str, set[str]] = {}
    for shift in shifts:
        ledger = ledgers.get(shift.id)
        if ledger is None or not shift.is_open or ledger.covered:
            continue
        for sub, offer in ledger.offers.items():
            if offer.message.delivered and offer.answer is not Answer.no:
                held.setdefault(sub, set()).add(shift.id)
    return held


def _shared(
    chance: Mapping[str, Mapping[str, float]], remaining: Mapping[str, list[str]], conflicts: _Conflicts
) -> dict[str, dict[str, float]]:
    """Each candidate's chance of a timely yes, shared out between the open shifts they could
    take that exclude each other: one person's yes can fill only one of them, so a shift whose
    candidates are all wanted elsewhere is scarcer than one with as many people of its own."""
    wanted: dict[str, list[str]] = {}
    for sid, subs in remaining.items():
        for sub in subs:
            wanted.setdefault(sub, []).append(sid)
    return {
        sid: {
            sub: p / (1 + sum(1 for other in wanted[sub] if other != sid and conflicts.clash(sub, other, sid)))
            for sub, p in chance[sid].items()
        }
        for sid in chance
    }


def _chance_unfilled(
    sid: str,
    chance: Mapping[str, float],
    ledger: ShiftLedger,
    history: Mapping[str, ReplyStats],
    now: datetime,
    by_id: Mapping[str, ShiftInfo],
    settings: BosseSettings,
) -> float:
    """The chance that nobody says yes in time: neither those still to be asked nor those
    whose offer is out unanswered (each at the time they were asked)."""
    closes = close_at(by_id[sid], settings)
    result = 1.0
    for p in chance.values():
        result *= 1.0 - p
    for sub, offer in ledger.offers.items():
        if offer.message.delivered and offer.answer is None:
            result *= 1.0 - timely_yes(history.get(sub), offer.message.sent_at, closes)
    return result


#: Someone who has had at least this many offers from Bosse with an outcome (in the reply history's
#: window) and answered none of them is asked after those who do answer, within a shift.
SILENT_AFTER_OFFERS = 3
#: A person is kept for a scarcer shift only while that shift's chance of going unfilled is at least this.
KEEP_FOR_SCARCER_FROM = 0.02
#: A shift whose only candidates are kept for scarcer ones waits while it has more rounds of
#: replies left than those candidates plus this many.
SPARE_ROUNDS = 2


def plan_offers(
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
    within a shift, those who answer SMS come before those who never do (:func:`never_answers`)
    and, among them, those other shifts need least are asked first. Nobody is offered a shift
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
        if steps[sid].kind is not StepKind.wave:
            continue
        shift = by_id[sid]
        scarcer = order[:index]
        size = adaptive_wave_size(len(remaining[sid]), now, close_at(shift, settings), settings)
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
        chosen = _least_needed_elsewhere_first(sid, shift, chosen, remaining, alone, conflicts, people, history)
        rounds = int((close_at(shift, settings) - now).total_seconds() // (settings.reply_wait_minutes * 60))
        # Those kept for a scarcer shift are taken from it only when this shift cannot wait.
        picked = (chosen + (later if chosen or rounds <= len(later) + SPARE_ROUNDS else []))[:size]
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


def _least_needed_elsewhere_first(
    sid: str,
    shift: ShiftInfo,
    chosen: list[str],
    remaining: Mapping[str, list[str]],
    unfilled: Mapping[str, float],
    conflicts: _Conflicts,
    people: Mapping[str, SubstituteInfo],
    history: Mapping[str, ReplyStats],
) -> list[str]:
    """``chosen`` (in ranking order) with those who answer before those who never do
    (:func:`never_answers`), and among them those whom other open shifts need least first:
    what a person is needed elsewhere is the summed chance that each other shift they could
    take, and a yes here would exclude, goes unfilled (in tenths, so the ranking's order –
    fewest hours first – still decides between near equals). Priority right stays first."""

    def need_elsewhere(sub: str) -> float:
        return sum(unfilled[o] for o in remaining if o != sid and sub in remaining[o] and conflicts.clash(sub, o, sid))

    day = shift.local_start.date()
    keys = {
        sub: (not people[sub].has_priority_on(day), never_answers(history.get(sub)), round(need_elsewhere(sub), 1))
        for sub in chosen
    }
    return sorted(chosen, key=lambda sub: keys[sub])  # stable: ranking order within a tie


def never_answers(stats: ReplyStats | None) -> bool:
    """True for someone who has had :data:`SILENT_AFTER_OFFERS` or more offers with an outcome in the
    reply history and answered none: they are still asked, but after those who do answer, so a
    shift does not spend its first rounds of replies waiting on them (the ranking puts them
    first otherwise: never booked, they have the fewest hours)."""
    return stats is not None and stats.offers >= SILENT_AFTER_OFFERS and stats.answered == 0


def clashing_offers(
    person: SubstituteInfo, shift: ShiftInfo, holding: Sequence[ShiftInfo], rules: BosseRules
) -> list[str]:
    """The shifts among ``holding`` (open shifts ``person`` holds a live offer on) where a yes
    would make ``shift`` illegal for them, or the other way round: no offer is sent then."""
    shifts = {s.id: s for s in [*holding, shift]}
    conflicts = _Conflicts({person.id: person}, shifts, rules)
    return [other.id for other in holding if conflicts.clash(person.id, other.id, shift.id)]
