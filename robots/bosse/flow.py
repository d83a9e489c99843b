"""Bosse's work, item by item: prepare, offer in waves, settle replies, hand over, carry out.

One shift gives several work items over its life, each with its own reference (so the
engine's "same reference = same case" makes every step happen once)::

    PASS-…                     prepare: check and rank everyone (night); no SMS
    PASS-…/wave-N/HOUR         send wave N of offers (daytime only)
    PASS-…/reply/IN-…          one reply; a JA books the first valid yes and tells the others
    PASS-…/settle/HOUR         a yes left unsettled (its reply item failed): settle it again
    PASS-…/close/BOK-…/HOUR    a booking whose notices are still owed (e.g. made by a coordinator)
    PASS-…/unfilled            still open at its deadline, or nobody left: the coordinators' review

HOUR (``2026112307``) is the hour the step was found due: if its item fails for good (a
system down for longer than the retries last), the step is found due again in a later hour
and done by a new item, while the failed one stays with operations as an exception.

Which items exist is decided by :meth:`Work.collect` from the staffing system and the
offer ledger (:mod:`robots.bosse.ledger`); :mod:`robots.bosse.planning` holds the rules.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from core.api import (
    ApplicationError,
    BusinessError,
    Carried,
    Done,
    NeedsReview,
    NewItem,
    ReviewView,
    RunContext,
    WorkItemView,
)
from robots.bosse.history import reply_history
from robots.bosse.ledger import Ledger, ShiftLedger
from robots.bosse.material import QUEUE, review_material, review_summary, review_title
from robots.bosse.messages import Answer, MessageKind, Reference, message_text
from robots.bosse.planning import (
    Evaluation,
    StepKind,
    clashing_offers,
    close_at,
    covered_notices,
    evaluate_shift,
    in_quiet_hours,
    live_offers,
    next_step,
    pending_notices,
    plan_offers,
    quiet_hours_end_after,
    wave_targets,
)
from robots.bosse.records import ShiftInfo, SubstituteInfo
from robots.bosse.rules import STOCKHOLM, check_eligibility
from robots.bosse.settings import BosseSettings
from robots.bosse.systems import OfferGateway, StaffingApi

__all__ = ["Booking", "ItemRef", "QuietHours", "Work", "parse_item_reference", "slot_of"]

_SUBSTITUTE_ID = re.compile(r"\b[A-Za-z]{1,3}\d{2,}\b")


class QuietHours(ApplicationError):
    """It is quiet hours: the SMS waits until the morning (retried then)."""

    code = "quiet_hours"


@dataclass(frozen=True)
class ItemRef:
    """A parsed work-item reference: which step of which shift (and, for steps that may need
    doing again after a failure, the hour it was found due in)."""

    kind: str  # prepare | wave | reply | settle | close | unfilled
    shift_id: str
    arg: str | None = None
    slot: str | None = None

    def __str__(self) -> str:
        parts = [quote(self.shift_id, safe="")]
        if self.kind == "wave":
            parts.append(f"wave-{self.arg}")
        elif self.kind != "prepare":
            parts.append(self.kind)
            if self.arg is not None:
                parts.append(quote(self.arg, safe=""))
        if self.slot is not None:
            parts.append(self.slot)
        return "/".join(parts)


_SHAPES = {"unfilled": (0, False), "reply": (1, False), "settle": (0, True), "close": (1, True)}


def parse_item_reference(reference: str) -> ItemRef:
    """Read a reference made by :class:`ItemRef`; BusinessError for anything else."""
    parts = reference.split("/")
    shift_id = unquote(parts[0])
    if shift_id and len(parts) == 1:
        return ItemRef("prepare", shift_id)
    if shift_id and len(parts) == 3 and re.fullmatch(r"wave-[1-9]\d*", parts[1]) and parts[2]:
        return ItemRef("wave", shift_id, parts[1].removeprefix("wave-"), parts[2])
    shape = _SHAPES.get(parts[1]) if shift_id and len(parts) > 1 else None
    if shape is not None and len(parts) == 2 + shape[0] + shape[1] and all(parts[2:]):
        arg = unquote(parts[2]) if shape[0] else None
        return ItemRef(parts[1], shift_id, arg, parts[-1] if shape[1] else None)
    raise BusinessError(f"Bosse känner inte igen ärendets referens {reference[:80]!r}", code="bad_reference")


def slot_of(moment: datetime) -> str:
    """The hour a repeatable step was found due in (``2026112307``): a step whose item failed
    for good is found due again, as a new item, in a later hour."""
    return f"{moment.astimezone(STOCKHOLM):%Y%m%d%H}"


#: A yes still not settled this long after it arrived gets a fresh settle item.
SETTLE_GRACE = timedelta(minutes=10)


def _iso(moment: datetime) -> str:
    return moment.astimezone(STOCKHOLM).isoformat(timespec="minutes")


class Work:
    """Bosse's work in one run for one tenant: the systems, the clock and the settings."""

    def __init__(self, ctx: RunContext, settings: BosseSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.staffing = StaffingApi(ctx, settings)
        self.gateway = OfferGateway(ctx, settings)

    # -- helpers -------------------------------------------------------------------------
    def now(self) -> datetime:
        """The run's clock."""
        return self.ctx.clock.now()

    def quiet(self, moment: datetime | None = None) -> bool:
        """True in the quiet hours."""
        return in_quiet_hours(moment or self.now(), self.settings.quiet_hours_start, self.settings.quiet_hours_end)

    def guard_quiet(self) -> None:
        """Refuse to send SMS in quiet hours: the item is retried when they end."""
        now = self.now()
        if self.quiet(now):
            until = quiet_hours_end_after(now, self.settings.quiet_hours_start, self.settings.quiet_hours_end)
            raise QuietHours(
                f"tysta timmar: SMS skickas tidigast {_iso(until)}", retry_after=(until - now).total_seconds() + 1
            )

    async def pool(self) -> list[SubstituteInfo]:
        """The substitutes, read once per run for the night's preparation (cached in the run)."""
        key = "bosse:pool"
        cached = self.ctx.resources.get(key)
        if isinstance(cached, _Pool):
            return await cached.get()
        pool = _Pool(self.staffing)
        self.ctx.resources[key] = pool
        return await pool.get()

    async def send(
        self,
        kind: MessageKind,
        shift: ShiftInfo,
        substitute_id: str,
        to: str,
        *,
        wave: int | None = None,
        subject: str | None = None,
    ) -> None:
        """Send one message about ``shift``; its reference makes a repeat a no-op at the gateway."""
        ref = Reference(self.ctx.tenant, shift.id, kind, substitute_id, wave if kind is MessageKind.offer else None)
        await self.gateway.send(ref, to, message_text(kind, shift), subject=subject)

    async def phone_of(self, substitute_id: str, ledger: ShiftLedger) -> tuple[str, str | None]:
        """The number to text and the personnummer (for the audit), from the ledger or the pool."""
        offer = ledger.offers.get(substitute_id)
        if offer is not None:
            return offer.message.to, None
        person = await self.staffing.substitute(substitute_id)
        if not person.phone:
            raise BusinessError(f"{substitute_id} har inget mobilnummer i bemanningssystemet", code="no_phone")
        return person.phone, person.personnummer

    # -- collect -------------------------------------------------------------------------
    async def collect(self) -> list[NewItem]:
        """The work items due now, in the order they should be done (reads only)."""
        now = self.now()
        local = now.astimezone(STOCKHOLM)
        horizon_end = datetime.combine(
            (local + timedelta(days=self.settings.horizon_days + 1)).date(), datetime.min.time(), STOCKHOLM
        )
        shifts, ledger = await asyncio.gather(
            self.staffing.shifts(start_from=now, start_to=horizon_end), self.gateway.ledger()
        )
        open_shifts = [s for s in shifts if s.is_open]
        pool = await self.staffing.substitutes() if open_shifts else []
        # The night's prepare items use the pool just read instead of reading it again.
        self.ctx.resources.setdefault("bosse:pool", _Pool(self.staffing, pool))
        replies: list[NewItem] = []
        closes: list[NewItem] = []
        waves: list[NewItem] = []
        unfilled: list[NewItem] = []
        quiet = self.quiet(now)
        slot = slot_of(now)
        # Tonight's open shifts are planned together: scarcest first (by each candidate's chance
        # of a timely yes, learnt from how they answered Bosse's earlier offers), nobody offered
        # a shift a yes elsewhere would make illegal (planning.plan_offers).
        rules = self.settings.rules
        evaluations = {s.id: evaluate_shift(s, pool, rules) for s in open_shifts}
        plan = plan_offers(
            open_shifts,
            evaluations,
            {s.id: ledger.of(s.id) for s in open_shifts},
            {p.id: p for p in pool},
            now,
            self.settings,
            reply_history(ledger.shifts.values(), now),
        )
        for shift in shifts:
            mine = ledger.of(shift.id)
            if not quiet:
                replies += [
                    NewItem(
                        str(ItemRef("reply", shift.id, r.id)),
                        {
                            "shift_id": shift.id,
                            "substitute_id": r.substitute_id,
                            "answer": r.answer.value if r.answer else None,
                            "received_at": _iso(r.received_at),
                        },
                    )
                    for r in mine.replies
                ]
            if not shift.is_open:
                ours = shift.booked_by == self.settings.booked_by
                if not quiet and shift.booking_id and pending_notices(shift, mine, booked_by_us=ours):
                    closes.append(
                        NewItem(str(ItemRef("close", shift.id, shift.booking_id, slot)), {"shift_id": shift.id})
                    )
                continue
            pending_yes = mine.yes_queue(received_before=close_at(shift, self.settings))
            stale = [
                sub
                for sub in pending_yes
                if (answered := mine.offers[sub].answered_at) and now - answered >= SETTLE_GRACE
            ]
            if stale and not quiet:
                closes.append(NewItem(str(ItemRef("settle", shift.id, None, slot)), {"shift_id": shift.id}))
            step = next_step(shift, evaluations[shift.id], mine, now, self.settings)
            if step.kind is StepKind.wave and shift.id in plan.offers:
                step = replace(step, candidates=plan.offers[shift.id])
                waves.append(
                    NewItem(
                        str(ItemRef("wave", shift.id, str(step.wave), slot)),
                        {"shift_id": shift.id, "wave": step.wave, "planned": list(step.candidates)},
                    )
                )
            elif step.kind is StepKind.unfilled:
                unfilled.append(
                    NewItem(
                        str(ItemRef("unfilled", shift.id)),
                        {"shift_id": shift.id, "reason": step.code, "reason_text": step.reason},
                    )
                )
        prepare = [
            NewItem(str(ItemRef("prepare", s.id)), {"shift_id": s.id, "code": s.code, "start": _iso(s.start)})
            for s in open_shifts
        ]
        if ledger.unmatched:
            self.ctx.log.info("replies not matched to any offer", count=ledger.unmatched)
        return replies + closes + waves + unfilled + prepare

    # -- process -------------------------------------------------------------------------
    async def process(self, item: WorkItemView) -> Done | NeedsReview:
        """Do the step the item's reference names."""
        ref = parse_item_reference(item.reference)
        if item.return_comment is not None and ref.kind in ("unfilled", "reply"):
            # A coordinator returned the review this item made: send another wave.
            return await self.unfilled(ref.shift_id, item.payload, item.return_comment)
        if ref.kind == "prepare":
            return await self.prepare(ref.shift_id)
        if ref.kind == "wave":
            planned = item.payload.get("planned")
            return await self.wave(
                ref.shift_id, int(ref.arg or 1), [str(p) for p in planned] if isinstance(planned, list) else None
            )
        # A retried item's earlier attempt may have booked and died before recording it.
        retry = item.attempts > 1
        if ref.kind == "reply":
            return await self.reply(ref.shift_id, item.payload, retry=retry)
        if ref.kind in ("close", "settle"):
            self.guard_quiet()
            return await self.settle(ref.shift_id, retry=retry)
        return await self.unfilled(ref.shift_id, item.payload, None)

    async def prepare(self, shift_id: str) -> Done:
        """Check everyone against the rules and rank the eligible: the night's preparation."""
        shift = await self.staffing.shift(shift_id)
        result: dict[str, Any] = {"kind": "prepare", "shift": shift.as_material()}
        if not shift.is_open:
            return Done({**result, "status": "booked", "booked_substitute_id": shift.booked_substitute_id})
        evaluation = evaluate_shift(shift, await self.pool(), self.settings.rules)
        s = self.settings
        first = [c.id for c in evaluation.eligible if c.reachable][: s.wave_size]
        return Done(
            {
                **result,
                "status": "prepared",
                "eligible": len(evaluation.eligible),
                "ineligible": len(evaluation.ineligible),
                "ranking": [{"rank": c.rank, "id": c.id, "why": c.why} for c in evaluation.eligible[:10]],
                "first_wave": first,
                "offers_from": _iso(quiet_hours_end_after(self.now(), s.quiet_hours_start, s.quiet_hours_end)),
                "closes_at": _iso(close_at(shift, s)),
            }
        )

    async def _fresh(self, shift_id: str) -> tuple[ShiftInfo, ShiftLedger]:
        shift, ledger = await asyncio.gather(self.staffing.shift(shift_id), self.gateway.ledger())
        return shift, ledger.of(shift_id)

    async def _offer(
        self, shift: ShiftInfo, evaluation: Evaluation, people: dict[str, SubstituteInfo], targets: list[str], wave: int
    ) -> list[str]:
        sent = []
        for sub in targets:
            person = people[sub]
            assert person.phone is not None  # only reachable candidates are targets
            await self.send(MessageKind.offer, shift, sub, person.phone, wave=wave, subject=person.personnummer)
            sent.append(sub)
        return sent

    async def wave(self, shift_id: str, wave: int, planned: list[str] | None = None) -> Done:
        """Send wave ``wave`` of offers: to those the night's joint plan chose (``planned``),
        else the best-ranked candidates not offered yet; never to someone holding an offer
        on another open shift that a yes would make this one illegal for."""
        self.guard_quiet()
        shift, ledger = await self._fresh(shift_id)
        result: dict[str, Any] = {"kind": "wave", "wave": wave, "shift_id": shift_id}
        if not shift.is_open or ledger.covered:
            return Done({**result, "status": "skipped", "why": "passet är redan tillsatt"})
        if self.now() >= close_at(shift, self.settings):
            return Done({**result, "status": "skipped", "why": "sista tidpunkten för erbjudanden har passerat"})
        people = {p.id: p for p in await self.staffing.substitutes()}
        evaluation = evaluate_shift(shift, people.values(), self.settings.rules)
        if planned is None:
            targets = wave_targets(evaluation, ledger, wave, self.settings.wave_size)
        else:
            targets = [
                p
                for p in planned
                if (c := evaluation.rank_of(p)) is not None and c.reachable and p not in ledger.offers
            ]
        targets, held = await self._without_clashes(shift, people, targets)
        if held:
            result["held_back"] = held
        sent = await self._offer(shift, evaluation, people, targets, wave)
        earlier = sorted(sub for sub, o in ledger.offers.items() if o.wave == wave)
        return Done({**result, "status": "sent" if sent or earlier else "nobody_left", "offered": earlier + sent})

    async def _without_clashes(
        self, shift: ShiftInfo, people: dict[str, SubstituteInfo], targets: list[str]
    ) -> tuple[list[str], dict[str, list[str]]]:
        """Leave out whoever holds a live offer on another open shift that clashes with this one."""
        full = await self.gateway.ledger()
        since = self.now() - timedelta(days=self.settings.horizon_days + 1)
        offered = {sub: ids for sub, ids in _held_by(full, since).items() if sub in targets}
        others = {sid for ids in offered.values() for sid in ids if sid != shift.id}
        open_others = [s for s in await asyncio.gather(*(self.staffing.shift(sid) for sid in sorted(others)))]
        holding = live_offers(open_others, {s.id: full.of(s.id) for s in open_others})
        kept: list[str] = []
        held: dict[str, list[str]] = {}
        for sub in targets:
            mine = [s for s in open_others if s.id in holding.get(sub, set())]
            clash = clashing_offers(people[sub], shift, mine, self.settings.rules) if mine else []
            if clash:
                held[sub] = clash
            else:
                kept.append(sub)
        return kept, held

    async def reply(self, shift_id: str, payload: dict[str, Any], *, retry: bool = False) -> Done | NeedsReview:
        """One reply: a JA settles the shift (books the first valid yes); NEJ and unclear are noted."""
        answer = payload.get("answer")
        if answer != Answer.yes.value:
            return Done({"kind": "reply", "answer": answer, "substitute_id": payload.get("substitute_id")})
        self.guard_quiet()
        return await self.settle(shift_id, replied=str(payload.get("substitute_id") or ""), retry=retry)

    async def settle(self, shift_id: str, replied: str | None = None, *, retry: bool = False) -> Done | NeedsReview:
        """Book the first valid yes (checked again now), then tell everyone what they need to know.

        ``retry``: the item was taken over from an attempt that did not finish; if the shift
        is booked by Bosse on a yes, that attempt may have booked and died before recording
        it, so the booking is recorded now (``recovered``).
        """
        shift, ledger = await self._fresh(shift_id)
        if retry:
            await self._record_recovered(shift, ledger)
        now = self.now()
        closes = close_at(shift, self.settings)
        result: dict[str, Any] = {"kind": "settle", "shift_id": shift_id, "refused": {}}
        refused: dict[str, list[str]] = result["refused"]
        if shift.is_open and not ledger.covered and now < shift.start:
            for sub in ledger.yes_queue(received_before=closes):
                booking = await self.book_checked(shift, sub, via="sms_yes")
                if booking.booked:
                    result["booked"] = sub
                    break
                if booking.reasons:
                    refused[sub] = booking.reasons
                    continue
                result["conflict"] = booking.conflict  # taken or closed meanwhile: see who has it below
                break
            shift = await self.staffing.shift(shift_id)
        for sub in refused:
            if ledger.notice(MessageKind.notbooked, sub) is None and sub in ledger.offers:
                await self.send(MessageKind.notbooked, shift, sub, ledger.offers[sub].message.to)
        sent = await self._notify(shift, ledger)
        result.update(
            status="booked" if not shift.is_open else "open",
            booked_substitute_id=shift.booked_substitute_id,
            notices=sent,
        )
        offer = ledger.offers.get(replied or "")
        late = (
            offer is not None
            and offer.answer is Answer.yes
            and offer.answered_at is not None
            and offer.answered_at >= closes
            and shift.is_open
            and not ledger.covered
            and now < shift.start
            and ledger.notice(MessageKind.notbooked, offer.substitute_id) is None
        )
        if late and offer is not None:
            return await self._late_yes(shift, ledger, offer.substitute_id, result)
        return Done(result)

    async def _record_recovered(self, shift: ShiftInfo, ledger: ShiftLedger) -> None:
        """Write ``bosse.booked`` for a booking an interrupted attempt made on a yes.

        The audit log cannot be asked whether that attempt got as far as recording it, nor
        which retried item's attempt made the booking, so a booking may be recorded more than
        once, marked ``recovered``: a booking in the staffing system that the audit log never
        mentions would be worse.
        """
        sub = shift.booked_substitute_id
        offer = ledger.offers.get(sub or "")
        if shift.is_open or shift.booked_by != self.settings.booked_by or not sub or offer is None:
            return
        if offer.answer is not Answer.yes:
            return
        person = await self.staffing.substitute(sub)
        await asyncio.to_thread(
            self.ctx.record,
            "bosse.booked",
            subject=person.personnummer,
            purpose=self.settings.purpose,
            details={
                "shift_id": shift.id,
                "substitute_id": sub,
                "booking_id": shift.booking_id,
                "via": "sms_yes",
                "recovered": True,
                "opened_at": shift.opened_at.isoformat() if shift.opened_at else None,
                "hours": shift.hours,
            },
        )

    def _person_lock(self, substitute_id: str) -> asyncio.Lock:
        locks: dict[str, asyncio.Lock] = self.ctx.resources.setdefault("bosse:person-locks", {})
        if substitute_id not in locks:
            locks[substitute_id] = asyncio.Lock()
        return locks[substitute_id]

    async def book_checked(
        self, shift: ShiftInfo, substitute_id: str, *, via: str, details: dict[str, Any] | None = None
    ) -> Booking:
        """Book ``substitute_id`` if the rules allow it now; never leave a booking that breaks them.

        The person's data is read fresh and checked; the staffing system checks again (409).
        Checking and booking are two steps, so two workers booking the same person on two
        shifts at once could each pass the check: after booking, the person is read again,
        and if the rules are now broken and this booking is the person's latest, it is
        cancelled (the other worker keeps its earlier one). In one process the steps for one
        person are also done one at a time.
        """
        rules = self.settings.rules
        # The shift and the person are locked for every worker and run (of any municipality
        # on this staffing system), shift first, around check, booking and read-back.
        async with (
            self._person_lock(substitute_id),
            self.ctx.exclusive(self.staffing.target("shift", shift.id)),
            self.ctx.exclusive(self.staffing.target("substitute", substitute_id)),
        ):
            person = await self.staffing.substitute(substitute_id)
            violations = check_eligibility(shift.to_rules(), person.to_rules(shift), rules)
            if violations:
                return Booking(reasons=[v.reason for v in violations])
            outcome = await self.staffing.book(shift, person)
            if not outcome.booked:
                if outcome.conflict == "substitute_overlap":
                    return Booking(reasons=["krockar med en annan bokning i bemanningssystemet"])
                return Booking(conflict=outcome.conflict)
            after = await self.staffing.substitute(substitute_id)
            violations = check_eligibility(
                shift.to_rules(), after.to_rules(shift, without_booking=outcome.booking_id), rules
            )
            if violations and outcome.booking_id and await self._latest(substitute_id, outcome.booking_id):
                await self.staffing.cancel(outcome.booking_id, subject=person.personnummer)
                await asyncio.to_thread(
                    self.ctx.record,
                    "bosse.booking_withdrawn",
                    subject=person.personnummer,
                    purpose=self.settings.purpose,
                    details={
                        **(details or {}),
                        "shift_id": shift.id,
                        "substitute_id": substitute_id,
                        "booking_id": outcome.booking_id,
                        "reasons": [v.reason for v in violations],
                    },
                )
                return Booking(reasons=[v.reason for v in violations])
            await asyncio.to_thread(
                self.ctx.record,
                "bosse.booked",
                subject=person.personnummer,
                purpose=self.settings.purpose,
                details={
                    **(details or {}),
                    "shift_id": shift.id,
                    "substitute_id": substitute_id,
                    "booking_id": outcome.booking_id,
                    "via": via,
                    # For the effects ledger: time from opening to booked, and hours per substitute.
                    "opened_at": shift.opened_at.isoformat() if shift.opened_at else None,
                    "hours": shift.hours,
                },
            )
            return Booking(booked=True, booking_id=outcome.booking_id)

    async def _latest(self, substitute_id: str, booking_id: str) -> bool:
        """True when ``booking_id`` is the person's most recent active booking (or is gone)."""
        active = [b for b in await self.staffing.bookings_of(substitute_id) if b.get("status") == "active"]
        if not any(b.get("id") == booking_id for b in active):
            return True
        latest = max(active, key=lambda b: (str(b.get("booked_at") or ""), str(b.get("id") or "")))
        return latest.get("id") == booking_id

    async def _notify(self, shift: ShiftInfo, ledger: ShiftLedger) -> list[str]:
        if shift.is_open:
            return []
        sent = []
        ours = shift.booked_by == self.settings.booked_by
        for kind, sub in pending_notices(shift, ledger, booked_by_us=ours):
            to, subject = await self.phone_of(sub, ledger)
            await self.send(kind, shift, sub, to, subject=subject)
            sent.append(f"{kind.value}:{sub}")
        return sent

    async def _late_yes(
        self, shift: ShiftInfo, ledger: ShiftLedger, substitute_id: str, result: dict[str, Any]
    ) -> Done | NeedsReview:
        """A yes after the deadline on a still open shift: the coordinators decide (or a polite no)."""
        people = {p.id: p for p in await self.staffing.substitutes()}
        evaluation = evaluate_shift(shift, people.values(), self.settings.rules)
        if evaluation.rank_of(substitute_id) is None:
            await self.send(MessageKind.notbooked, shift, substitute_id, ledger.offers[substitute_id].message.to)
            return Done({**result, "late_yes": substitute_id, "status": "late_yes_not_eligible"})
        return await self._review(
            shift,
            evaluation,
            ledger,
            people,
            reason="late_yes",
            reason_text=f"{substitute_id} svarade JA efter sista tidpunkten för erbjudanden",
            late_yes=substitute_id,
        )

    async def _review(
        self,
        shift: ShiftInfo,
        evaluation: Evaluation,
        ledger: ShiftLedger,
        people: dict[str, SubstituteInfo],
        *,
        reason: str,
        reason_text: str,
        note: str | None = None,
        late_yes: str | None = None,
    ) -> NeedsReview:
        # Each candidate's reply history, from the offers of every shift (the SMS gateway's record).
        everything = await self.gateway.ledger()
        material = review_material(
            shift,
            evaluation,
            ledger,
            people,
            reason=reason,
            reason_text=reason_text,
            note=note,
            late_yes=late_yes,
            rules=self.settings.rules,
            history=reply_history(everything.shifts.values(), self.now()),
        )
        return NeedsReview(
            queue=QUEUE,
            title=review_title(shift, late_yes=late_yes),
            summary=review_summary(material),
            material=material,
            due=shift.start,
        )

    async def unfilled(self, shift_id: str, payload: dict[str, Any], comment: str | None) -> Done | NeedsReview:
        """Hand the shift to the coordinators; when they returned it, send another wave first."""
        shift, ledger = await self._fresh(shift_id)
        if not shift.is_open:
            return Done({"kind": "unfilled", "status": "booked", "booked_substitute_id": shift.booked_substitute_id})
        people = {p.id: p for p in await self.staffing.substitutes()}
        evaluation = evaluate_shift(shift, people.values(), self.settings.rules)
        note = None
        if comment is not None:
            self.guard_quiet()
            wave = ledger.last_wave + 1
            named = [s for s in _SUBSTITUTE_ID.findall(comment) if (c := evaluation.rank_of(s)) and c.reachable]
            targets = [s for s in named if s not in ledger.offers] or wave_targets(
                evaluation, ledger, wave, self.settings.wave_size
            )
            sent = await self._offer(shift, evaluation, people, targets, wave)
            note = (
                f"Ny omgång ({wave}) skickad till {', '.join(sent)} på bemanningens begäran."
                if sent
                else "Ingen fler behörig vikarie att skicka erbjudande till."
            )
            ledger = (await self.gateway.ledger()).of(shift_id)
        reason = str(payload.get("reason") or "deadline")
        reason_text = str(payload.get("reason_text") or "passet är inte tillsatt")
        return await self._review(shift, evaluation, ledger, people, reason=reason, reason_text=reason_text, note=note)

    # -- decisions -----------------------------------------------------------------------
    async def decide(self, review: ReviewView) -> Carried | None:
        """Carry out a coordinator's decision on a ``bosse.unfilled`` review; say what was done, in Swedish."""
        if review.queue != QUEUE or review.kind != "decision" or review.state not in ("approved", "rejected"):
            if review.state == "returned" and review.queue == QUEUE:
                return Carried("Passet erbjuds på nytt: Bosse skickar en ny omgång erbjudanden.")
            return None  # "returned" is carried out by processing the item again
        shift_id = str((review.material.get("shift") or {}).get("id") or "")
        if not shift_id:
            raise BusinessError("granskningsunderlaget saknar pass-id", code="bad_material")
        shift, ledger = await self._fresh(shift_id)
        details: dict[str, Any] = {"review_id": review.id, "shift_id": shift_id, "decided_by": review.decided_by}
        if review.state == "rejected":
            told = []
            if not self.quiet():
                for sub in covered_notices(ledger):
                    await self.send(MessageKind.filled, shift, sub, ledger.offers[sub].message.to)
                    told.append(sub)
            await asyncio.to_thread(self.ctx.record, "bosse.covered_otherwise", details={**details, "told": told})
            return Carried(
                f"Passet {shift.code} löses på annat sätt; "
                + (f"{len(told)} vikarie(r) har fått besked via SMS." if told else "inga SMS behövdes.")
            )
        chosen = _chosen(review)
        if chosen is None:
            raise BusinessError("Ange vilken vikarie som ska bokas (t.ex. V012) i kommentaren", code="no_choice")
        if not shift.is_open:
            await asyncio.to_thread(
                self.ctx.record,
                "bosse.decision_moot",
                details={**details, "chosen": chosen, "booked_substitute_id": shift.booked_substitute_id},
            )
            if shift.booked_substitute_id == chosen:
                if not self.quiet():
                    await self._notify(shift, ledger)
                return Carried(f"{chosen} var redan bokad på passet {shift.code} i bemanningssystemet.")
            return Carried(
                f"Passet {shift.code} var redan tillsatt av någon annan i bemanningssystemet; {chosen} bokades inte.",
            )
        booking = await self.book_checked(shift, chosen, via="decision", details=details)
        if booking.reasons:
            raise BusinessError(
                f"{chosen} kan inte bokas på {shift.code}: {'; '.join(booking.reasons)}", code="not_eligible"
            )
        if not booking.booked:
            await asyncio.to_thread(
                self.ctx.record,
                "bosse.decision_moot",
                details={**details, "chosen": chosen, "conflict": booking.conflict},
            )
            return Carried(
                f"Passet {shift.code} tillsattes av någon annan i bemanningssystemet medan beslutet "
                f"verkställdes; {chosen} bokades inte."
            )
        sent: list[str] = []
        if not self.quiet():  # in quiet hours the next daytime run's close item tells everyone
            shift, ledger = await self._fresh(shift_id)
            sent = await self._notify(shift, ledger)
        sms = (
            "bekräftelse-SMS skickat"
            if f"{MessageKind.confirm.value}:{chosen}" in sent
            else "bekräftelse-SMS skickas när de tysta timmarna är slut"
        )
        return Carried(f"{chosen} bokad på passet {shift.code} i bemanningssystemet, {sms}.", booking.booking_id)


@dataclass(frozen=True)
class Booking:
    """What :meth:`Work.book_checked` did: booked, refused with reasons, or a conflict on the shift."""

    booked: bool = False
    booking_id: str | None = None
    reasons: list[str] | None = None
    conflict: str | None = None


def _chosen(review: ReviewView) -> str | None:
    """The person to book: an id named in the comment (one the material lists), else the proposal."""
    material = review.material
    known = {str(e.get("id")) for key in ("eligible", "ineligible") for e in material.get(key) or []}
    tokens: list[str] = _SUBSTITUTE_ID.findall(review.decision_comment or "")
    for token in tokens:
        for candidate in (token, token.upper()):
            if candidate in known:
                return candidate
    proposed = material.get("proposed")
    return str(proposed) if proposed else None


def _held_by(ledger: Ledger, since: datetime) -> dict[str, set[str]]:
    """Per person, the shifts whose offer they have not declined, offered since ``since`` (an
    offer goes out at most ``horizon_days`` before its shift, so older ones are for past shifts)."""
    held: dict[str, set[str]] = {}
    for shift_id, mine in ledger.shifts.items():
        for sub, offer in mine.offers.items():
            if offer.message.sent_at >= since and offer.answer is not Answer.no:
                held.setdefault(sub, set()).add(shift_id)
    return held


class _Pool:
    """The substitute pool, fetched once and shared by the run's items."""

    def __init__(self, staffing: StaffingApi, people: list[SubstituteInfo] | None = None) -> None:
        self._staffing = staffing
        self._lock = asyncio.Lock()
        self._people = people

    async def get(self) -> list[SubstituteInfo]:
        async with self._lock:
            if self._people is None:
                self._people = await self._staffing.substitutes()
            return self._people
