"""Bosse over a seeded month, side by side with a person calling candidates in list order.

    .venv/bin/python bench/bosse_month.py [--seed 1] [--days 30] [--substitutes 120] [--shifts 40]
        [--wave-size 3] [--reply-wait 30] [--out bench/results/bosse.json]

The data is the sandbox's (``sandbox.staffing.generate_staffing``): the substitutes, their
bookings and how they answer SMS (eager, selective, reluctant, late, silent) come from the
first night; each night of the month brings ``--shifts`` new open shifts for the next day
and each substitute's stated availability for that day, drawn the way the sandbox draws
them. Bookings accumulate over the month.

Both policies run on the same simulated clock (5-minute steps, daytime only), with the
same replies (a substitute's answer to their n-th offer is drawn from the same seed
whoever sends it) and the same booking check:

* **bosse** — Bosse's own code: ``evaluate_shift`` (rules and ranking), ``next_step``
  (waves of ``--wave-size``, the next wave when nobody is waiting, hand-over at the
  deadline), ``plan_offers`` (all open shifts together, with each substitute's reply
  history from the offers made so far, ``history.reply_history``), the first yes
  re-checked against the roster as it is then.
* **baseline** — a coordinator calling the eligible in list order (V001, V002 …), one at
  a time, waiting ``--reply-wait`` minutes for each answer, with the same rules.

Then the most any policy could book in the same month with the same replies and rules, a
clairvoyant upper bound (``bench/bosse_bound.py``; ``--no-bound`` skips it).

Reported per policy: fill rate, median minutes from first offer to booking, rule
violations (every booking re-checked against the final rosters, without itself: must be
0), and the spread of the month's booked hours between substitutes (standard deviation
and max − min over everyone in the pool), and why each shift left open was lost
(``unfilled_analysis``: nobody eligible; a yes that could no longer be booked; a yes after
offers closed; eligible people never asked – booked elsewhere that day, held back by the
joint plan, or not reached – by their reply behaviour; everyone asked without a yes).
Targets (issue 20): fill rate 3 pp above the baseline's, SMS per filled shift at most 1.2×
the baseline's, zero violations and a smaller spread. 14 nights take about 1.5 min of CPU
time for both policies.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "bench"):  # run as a script from anywhere, or loaded by a test
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bosse_bound import oracle_bound, reply  # noqa: E402

from robots.bosse.audit_check import Limits, Person, audit  # noqa: E402
from robots.bosse.history import reply_history  # noqa: E402
from robots.bosse.ledger import Offer, Reply, SentMessage, ShiftLedger  # noqa: E402
from robots.bosse.messages import Answer, MessageKind  # noqa: E402
from robots.bosse.planning import (  # noqa: E402
    Candidate,
    ClashCache,
    Evaluation,
    StepKind,
    close_at,
    evaluate_shift,
    next_step,
    plan_offers,
)
from robots.bosse.records import ShiftInfo, SubstituteInfo, parse_shift, parse_substitute  # noqa: E402
from robots.bosse.rules import STOCKHOLM, Interval, check_eligibility, normalise_term  # noqa: E402
from robots.bosse.settings import BosseSettings  # noqa: E402
from sandbox.people import PersonFactory  # noqa: E402
from sandbox.staffing import generate_staffing  # noqa: E402
from sandbox.state import SandboxOptions  # noqa: E402

STEP = timedelta(minutes=5)


@dataclass
class Month:
    """The seeded month: the pool, the shifts of each night, availability per day, behaviours."""

    pool: dict[str, SubstituteInfo]
    nights: list[tuple[date, list[ShiftInfo]]]
    availability: dict[str, list[Interval]]
    behaviour: dict[str, str]


def make_month(seed: int, start: date, days: int, substitutes: int, shifts: int) -> Month:
    """Generate the month from the sandbox's generator, night by night."""
    nights: list[tuple[date, list[ShiftInfo]]] = []
    availability: dict[str, list[Interval]] = {}
    pool: dict[str, SubstituteInfo] = {}
    behaviour: dict[str, str] = {}
    for n in range(days):
        today = start + timedelta(days=n)
        options = SandboxOptions(today=today, substitutes=substitutes, open_shifts=shifts, staffing_horizon_days=1)
        rng = random.Random(f"{seed}:staffing:{n}")
        subs, day_shifts, kinds = generate_staffing(
            rng, PersonFactory(random.Random(f"{seed}:people:{n}"), today), options
        )
        if n == 0:
            pool = {s["id"]: parse_substitute({**s, "available": []}) for s in subs}
            behaviour = kinds
        for s in subs:
            availability.setdefault(s["id"], []).extend(
                parse_substitute({"id": s["id"], "available": s["available"]}).available
            )
        nights.append((today, [parse_shift(s) for s in day_shifts]))
    for sub_id, person in pool.items():
        pool[sub_id] = replace(person, available=tuple(availability[sub_id]))
    return Month(pool, nights, availability, behaviour)


def _static_ok(shift: ShiftInfo, person: SubstituteInfo) -> bool:
    """The rules that never change during the month (competence, availability): a cheap pre-filter."""
    held = {normalise_term(q) for q in person.qualifications}
    if any(normalise_term(q) not in held for q in shift.qualifications):
        return False
    if (shift.medication_delegation and not person.medication_delegation) or (
        shift.driving_licence and not person.driving_licence
    ):
        return False
    return any(a.start <= shift.start and shift.end <= a.end for a in person.available)


@dataclass
class ShiftState:
    """One shift in the simulation."""

    shift: ShiftInfo
    ledger: ShiftLedger
    candidates: list[str]
    first_offer: datetime | None = None
    booked_at: datetime | None = None
    handed_over: bool = False
    pending: list[tuple[datetime, str, Answer]] = field(default_factory=list)
    cache: tuple[tuple[int, ...], Evaluation] | None = None
    # What the analysis of unfilled shifts needs (not used by either policy).
    eligible_first: tuple[str, ...] | None = None
    held: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


class Simulation:
    """One policy over the month."""

    def __init__(
        self,
        month: Month,
        settings: BosseSettings,
        seed: int,
        *,
        baseline: bool,
        joint: bool = False,
        learn: bool = True,
    ) -> None:
        self.month = month
        self.settings = settings
        self.seed = seed
        self.baseline = baseline
        self.pool = dict(month.pool)
        self.offers_to: dict[str, int] = {}
        self.bookings: list[tuple[ShiftInfo, str, str]] = []
        self.states: list[ShiftState] = []
        self.versions: dict[str, int] = {}
        self._ids = 0
        self.joint = joint
        self.learn = learn
        self.clash_cache: ClashCache = {}
        self.held_back = 0

    def evaluation(self, state: ShiftState) -> Evaluation:
        # Re-evaluated only when one of the shift's candidates got a booking since last time.
        versions = tuple(self.versions.get(s, 0) for s in state.candidates)
        if state.cache is not None and state.cache[0] == versions:
            return state.cache[1]
        ev = self._evaluate(state)
        state.cache = (versions, ev)
        if state.eligible_first is None:
            state.eligible_first = tuple(c.id for c in ev.eligible)
        return ev

    def _evaluate(self, state: ShiftState) -> Evaluation:
        people = [self.pool[s] for s in state.candidates]
        ev = evaluate_shift(state.shift, people, self.settings.rules)
        if not self.baseline:
            return ev
        ordered = sorted(ev.eligible, key=lambda c: c.id)  # the list as it is printed
        return Evaluation(
            tuple(Candidate(i + 1, c.id, "listordning", c.reachable) for i, c in enumerate(ordered)), ev.ineligible
        )

    def answer(self, sub_id: str) -> tuple[Answer, int] | None:
        """The substitute's answer to their n-th offer and the delay in minutes (None: never)."""
        n = self.offers_to[sub_id] = self.offers_to.get(sub_id, 0) + 1
        return reply(self.seed, self.month.behaviour.get(sub_id, "selective"), sub_id, n)

    def offer(self, state: ShiftState, sub_id: str, wave: int, now: datetime) -> None:
        self._ids += 1
        msg = SentMessage(f"S{self._ids}", state.shift.id, MessageKind.offer, sub_id, wave, sub_id, "", now, True)
        state.ledger.offers[sub_id] = Offer(msg)
        state.first_offer = state.first_offer or now
        reply = self.answer(sub_id)
        if reply is not None:
            state.pending.append((now + timedelta(minutes=reply[1]), sub_id, reply[0]))

    def book(self, state: ShiftState, sub_id: str, now: datetime) -> bool:
        shift, person = state.shift, self.pool[sub_id]
        if check_eligibility(shift.to_rules(), person.to_rules(shift), self.settings.rules):
            return False
        booking_id = f"BOK-{shift.id}"
        month = shift.month
        self.pool[sub_id] = replace(
            person,
            bookings=(*person.bookings, Interval(shift.start, shift.end)),
            booking_ids=(*person.booking_ids, booking_id),
            hours_by_month={**person.hours_by_month, month: person.hours_by_month.get(month, 0.0) + shift.hours},
        )
        state.shift = replace(shift, status="booked", booked_substitute_id=sub_id, booking_id=booking_id)
        state.booked_at = now
        self.versions[sub_id] = self.versions.get(sub_id, 0) + 1
        self.bookings.append((state.shift, sub_id, booking_id))
        return True

    def settle(self, state: ShiftState, now: datetime) -> bool:
        """Take in the replies due and book the first valid yes; True if the shift is still to be worked on."""
        due = sorted(p for p in state.pending if p[0] <= now)
        state.pending = [p for p in state.pending if p[0] > now]
        for at, sub_id, answer in due:
            self._ids += 1
            reply = Reply(f"IN-{self._ids}", state.shift.id, sub_id, answer, answer.value, at)
            state.ledger.offers[sub_id].replies.append(reply)
            state.ledger.replies.append(reply)
        if not state.shift.is_open:
            return False
        # A yes that came before offers closed is booked even after a hand-over, as the robot does.
        closes = close_at(state.shift, self.settings)
        for sub_id in state.ledger.yes_queue(received_before=closes):
            if self.book(state, sub_id, now):
                return False
            msg = SentMessage(f"N{sub_id}", state.shift.id, MessageKind.notbooked, sub_id, None, sub_id, "", now, True)
            state.ledger.notices[(MessageKind.notbooked, sub_id)] = msg
            state.refused.append(sub_id)
        return not state.handed_over

    def step(self, state: ShiftState, now: datetime) -> None:
        """One shift on its own (the baseline, and Bosse with ``--no-joint``)."""
        if not self.settle(state, now):
            return
        step = next_step(state.shift, self.evaluation(state), state.ledger, now, self.settings)
        if step.kind is StepKind.wave:
            for sub_id in step.candidates:
                self.offer(state, sub_id, step.wave or 1, now)
        elif step.kind is StepKind.unfilled:
            state.handed_over = True

    def step_all(self, states: list[ShiftState], now: datetime) -> None:
        """All open shifts together, as Bosse plans them (``planning.plan_offers``)."""
        active = [st for st in states if self.settle(st, now)]
        if not active:
            return
        evaluations = {st.shift.id: self.evaluation(st) for st in active}
        steps = {
            st.shift.id: next_step(st.shift, evaluations[st.shift.id], st.ledger, now, self.settings) for st in active
        }
        for st in active:
            if steps[st.shift.id].kind is StepKind.unfilled:
                st.handed_over = True
        if not any(step.kind is StepKind.wave for step in steps.values()):
            return
        # Every open shift counts (a live offer on one blocks clashing offers on the others).
        open_states = [st for st in self.states if st.shift.is_open and now < st.shift.start]
        for st in open_states:
            evaluations.setdefault(st.shift.id, self.evaluation(st))
        plan = plan_offers(
            [st.shift for st in open_states],
            evaluations,
            {st.shift.id: st.ledger for st in open_states},
            self.pool,
            now,
            self.settings,
            reply_history((st.ledger for st in self.states), now) if self.learn else None,
            self.clash_cache,
        )
        self.held_back += sum(len(v) for v in plan.held_back.values())
        by_id = {st.shift.id: st for st in open_states}
        for sid, skipped in plan.held_back.items():
            for sub_id, why in skipped.items():
                by_id[sid].held[sub_id] = "clash" if why.startswith("har erbjudande") else "saved"
        for st in active:
            step = steps[st.shift.id]
            if step.kind is StepKind.wave:
                for sub_id in plan.offers.get(st.shift.id, ()):
                    self.offer(st, sub_id, step.wave or 1, now)

    def run(self) -> None:
        nights = list(self.month.nights)
        now = datetime.combine(nights[0][0], datetime.min.time(), STOCKHOLM).replace(hour=7).astimezone(UTC)
        end = datetime.combine(nights[-1][0] + timedelta(days=2), datetime.min.time(), STOCKHOLM).astimezone(UTC)
        while now < end:
            local = now.astimezone(STOCKHOLM)
            while nights and nights[0][0] <= local.date():
                for shift in nights.pop(0)[1]:
                    candidates = [p.id for p in self.pool.values() if _static_ok(shift, p)]
                    self.states.append(ShiftState(shift, ShiftLedger(shift.id), candidates))
            if 7 <= local.hour < 21:
                due = [
                    st
                    for st in self.states
                    if st.shift.is_open and now < st.shift.start and (st.pending or not st.handed_over)
                ]
                if self.joint:
                    self.step_all(due, now)
                else:
                    for state in due:
                        self.step(state, now)
            now += STEP

    def independent_check(self) -> list[Any]:
        """Every booking made re-checked by ``robots.bosse.audit_check`` (not the rules module)."""
        rules = self.settings.rules
        people = {
            p.id: Person(
                p.id,
                [(b.start, b.end) for b in p.bookings],
                p.day_break or rules.default_day_break,  # the sandbox gives none; no unit defaults set
                contract_hours_week=p.contract_hours_week,
                month_cap_h=p.max_hours_month,
            )
            for p in self.pool.values()
            if any(sub == p.id for _, sub, _ in self.bookings)
        }
        booked = [(sub, shift.start, shift.end) for shift, sub, _ in self.bookings]
        return audit(people, booked, _limits(self.settings))

    def unfilled_analysis(self) -> dict[str, Any]:
        """Why the shifts left open were lost: who was eligible, who was asked, when, and what they said.

        Each open shift gets one cause, the first that applies: nobody eligible when it was first
        looked at; a yes that came in time but could no longer be booked; a yes after offers
        closed; eligible people never asked (split by why: booked elsewhere first, held back by
        the joint plan, or simply not reached before the deadline); everyone asked, no yes.
        """
        booked_anywhere_on: dict[date, set[str]] = {}
        for shift, sub, _ in self.bookings:
            booked_anywhere_on.setdefault(shift.local_start.date(), set()).add(sub)
        causes: dict[str, int] = {}
        unasked: dict[str, int] = {}
        replies: dict[str, int] = {}
        behaviours: dict[str, int] = {}
        asked_late = 0
        eligible_total = asked_total = 0
        for st in self.states:
            if st.booked_at is not None:
                continue
            closes = close_at(st.shift, self.settings)
            first = st.eligible_first or ()
            eligible_total += len(first)
            asked_total += len(st.ledger.offers)
            for sub in first:
                kind = self.month.behaviour.get(sub, "selective")
                behaviours[kind] = behaviours.get(kind, 0) + 1
            for offer in st.ledger.offers.values():
                if offer.answer is None:
                    key = "no answer"
                else:
                    when = "in time" if offer.answered_at and offer.answered_at < closes else "after close"
                    key = f"{offer.answer.value} {when}"
                replies[key] = replies.get(key, 0) + 1
                if closes - offer.message.sent_at < timedelta(hours=3):
                    asked_late += 1
            not_asked = [sub for sub in first if sub not in st.ledger.offers]
            for sub in not_asked:
                why = (
                    "booked elsewhere"
                    if sub in booked_anywhere_on.get(st.shift.local_start.date(), set())
                    else f"held back ({st.held[sub]})"
                    if sub in st.held
                    else "not reached"
                )
                why += f", {self.month.behaviour.get(sub, 'selective')}"
                unasked[why] = unasked.get(why, 0) + 1
            if not first:
                cause = "nobody eligible"
            elif st.refused:
                cause = "a yes in time, no longer bookable"
            elif any(o.answer is Answer.yes for o in st.ledger.offers.values()):
                cause = "a yes only after offers closed"
            elif not_asked:
                cause = "eligible left unasked"
            else:
                cause = "everyone eligible asked, no yes"
            causes[cause] = causes.get(cause, 0) + 1
        return {
            "unfilled": sum(causes.values()),
            "causes": dict(sorted(causes.items())),
            "eligible_when_first_seen": eligible_total,
            "offers_on_unfilled": asked_total,
            "offers_sent_less_than_3h_before_close": asked_late,
            "replies_to_those_offers": dict(sorted(replies.items())),
            "eligible_not_asked_by_reason": dict(sorted(unasked.items())),
            "eligible_by_reply_behaviour": dict(sorted(behaviours.items())),
        }

    def report(self) -> dict[str, Any]:
        booked = [s for s in self.states if s.booked_at is not None]
        waits = [(s.booked_at - s.first_offer).total_seconds() / 60 for s in booked if s.first_offer and s.booked_at]
        violations = 0
        for shift, sub_id, booking_id in self.bookings:
            person = self.pool[sub_id].to_rules(shift, without_booking=booking_id)
            violations += bool(check_eligibility(shift.to_rules(), person, self.settings.rules))
        findings = self.independent_check()
        months = sorted({s.shift.month for s in self.states})
        hours = [sum(p.hours_by_month.get(m, 0.0) for m in months) for p in self.pool.values()]
        offers = sum(len(s.ledger.offers) for s in self.states)
        return {
            "shifts": len(self.states),
            "booked": len(booked),
            "fill_rate": round(len(booked) / max(len(self.states), 1), 4),
            "median_minutes_first_offer_to_booking": round(statistics.median(waits), 1) if waits else None,
            "offers_sent": offers,
            "sms_per_filled_shift": round(offers / max(len(booked), 1), 3),
            "rule_violations": violations,
            "independent_check_violations": len({(f.person, f.booking) for f in findings}),
            "independent_check_rules": sorted({f.rule for f in findings}),
            "offers_held_back_by_joint_plan": self.held_back,
            "hours_months": months,
            "hours_stdev": round(statistics.pstdev(hours), 2),
            "hours_range": round(max(hours) - min(hours), 2),
            "hours_max": max(hours),
            "hours_min": min(hours),
            "unfilled_analysis": self.unfilled_analysis(),
        }


def _limits(settings: BosseSettings) -> Limits:
    r = settings.rules
    return Limits(
        daily_rest_h=r.min_daily_rest_hours,
        max_period_h=r.max_shift_hours,
        weekly_rest_h=r.min_weekly_rest_hours,
        full_time_h=r.full_time_hours_week,
        overtime=(r.max_overtime_four_weeks, r.max_overtime_month, r.max_overtime_year),
        extra=(r.max_extra_four_weeks, r.max_extra_month, r.max_extra_year),
        average_h=r.max_average_week_hours,
        reference_months=r.average_reference_months,
        four_week_anchor=r.four_week_anchor,
        local_month_cap_h=r.default_max_hours_month,
    )


def _ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline`` rounded, or None when either is missing or the baseline is 0."""
    if value is None or not baseline:
        return None
    return round(value / baseline, 3)


def main(argv: list[str] | None = None) -> int:
    """Run both policies and print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2026, 11, 30),
        help="the first night; its shifts are on the next day",
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--substitutes", type=int, default=120)
    parser.add_argument("--shifts", type=int, default=40, help="open shifts per night")
    parser.add_argument("--wave-size", type=int, default=3)
    parser.add_argument("--reply-wait", type=float, default=30, help="minutes")
    parser.add_argument("--no-joint", action="store_true", help="Bosse plans each shift on its own (as before)")
    parser.add_argument("--also-separate", action="store_true", help="also run Bosse one shift at a time")
    parser.add_argument("--no-bound", action="store_true", help="skip the clairvoyant upper bound (bosse_bound.py)")
    parser.add_argument("--bound-seconds", type=float, default=300, help="CP-SAT's time for the bound")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bosse.json")
    args = parser.parse_args(argv)
    started = time.monotonic()
    month = make_month(args.seed, args.start, args.days, args.substitutes, args.shifts)
    results: dict[str, Any] = {}
    policies = [("bosse", False, args.wave_size, not args.no_joint), ("baseline", True, 1, False)]
    if args.also_separate:
        policies.append(("bosse_one_shift_at_a_time", False, args.wave_size, False))
    for name, baseline, wave, joint in policies:
        settings = BosseSettings(wave_size=wave, reply_wait_minutes=args.reply_wait)
        sim = Simulation(month, settings, args.seed, baseline=baseline, joint=joint)
        sim.run()
        results[name] = sim.report()
        print(f"{name}: done", file=sys.stderr)
    b, base = results["bosse"], results["baseline"]
    if not args.no_bound:
        bound = oracle_bound(
            month.nights,
            month.pool,
            {s.id: [p.id for p in month.pool.values() if _static_ok(s, p)] for _, day in month.nights for s in day},
            month.behaviour,
            args.seed,
            BosseSettings(wave_size=args.wave_size, reply_wait_minutes=args.reply_wait),
            time_limit=args.bound_seconds,
        )
        results["bound"] = bound.as_json()
        results["bound"]["pp_over_baseline"] = round(100 * (bound.bound - base["booked"]) / max(bound.shifts, 1), 2)
        results["bound"]["min_sms_per_filled_of_plan"] = round(bound.min_offers / max(bound.solution, 1), 3)
        print("bound: done", file=sys.stderr)
    results["fill_rate_pp_over_baseline"] = round(100 * (b["fill_rate"] - base["fill_rate"]), 2)
    results["targets"] = {
        "fill_rate_3pp_over_baseline": results["fill_rate_pp_over_baseline"] >= 3.0,
        "sms_per_filled_at_most_1_2x_baseline": b["sms_per_filled_shift"] <= 1.2 * base["sms_per_filled_shift"],
        "zero_violations": b["rule_violations"] == 0 and b["independent_check_violations"] == 0,
        "smaller_hour_stdev": b["hours_stdev"] < base["hours_stdev"],
        "smaller_hour_range": b["hours_range"] < base["hours_range"],
    }
    # The machine is shared, so Bosse is judged against the baseline measured in the same run.
    results["ratios_to_baseline"] = {
        "fill_rate": _ratio(b["fill_rate"], base["fill_rate"]),
        "median_minutes_first_offer_to_booking": _ratio(
            b["median_minutes_first_offer_to_booking"], base["median_minutes_first_offer_to_booking"]
        ),
        "offers_sent": _ratio(b["offers_sent"], base["offers_sent"]),
        "sms_per_filled_shift": _ratio(b["sms_per_filled_shift"], base["sms_per_filled_shift"]),
        "hours_stdev": _ratio(b["hours_stdev"], base["hours_stdev"]),
        "hours_range": _ratio(b["hours_range"], base["hours_range"]),
    }
    results["conditions"] = {
        "seed": args.seed,
        "start": args.start.isoformat(),
        "days": args.days,
        "substitutes": args.substitutes,
        "shifts_per_night": args.shifts,
        "wave_size": args.wave_size,
        "reply_wait_minutes": args.reply_wait,
        "python": platform.python_version(),
        "seconds": round(time.monotonic() - started, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(f"{'':38}{'bosse':>12}{'baseline':>12}")
    for key in (
        "shifts",
        "booked",
        "fill_rate",
        "median_minutes_first_offer_to_booking",
        "offers_sent",
        "sms_per_filled_shift",
        "rule_violations",
        "independent_check_violations",
        "hours_stdev",
        "hours_range",
    ):
        print(f"{key:38}{b[key]!s:>12}{base[key]!s:>12}")
    for name in ("bosse", "baseline"):
        print(f"{name} unfilled:", json.dumps(results[name]["unfilled_analysis"], ensure_ascii=False))
    if "bound" in results:
        bd = results["bound"]
        print(
            f"{'bound (most any policy could book)':38}{bd['bound']!s:>12}{'':>12}  fill {bd['fill_rate_bound']}, "
            f"+{bd['pp_over_baseline']} pp over baseline, legal plan found {bd['plan_found']}, "
            f"{bd['rounds']} rounds, {bd['lazy_cuts']} cuts, {bd['seconds']} s"
        )
    print("fill rate over baseline (pp):", results["fill_rate_pp_over_baseline"])
    print("ratios to baseline:", ", ".join(f"{k}={v}" for k, v in results["ratios_to_baseline"].items()))
    print("targets:", ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in results["targets"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0 if all(results["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
