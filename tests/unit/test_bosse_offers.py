"""Bosse's pure offer logic: SMS references and texts, the reply parser, the offer ledger,
quiet hours and deadlines, the next step for a shift, and who is owed which notice."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from robots.bosse.ledger import build_ledger, normalise_phone
from robots.bosse.messages import (
    Answer,
    MessageKind,
    Reference,
    booking_key,
    message_text,
    parse_reference,
    parse_reply,
    shift_label,
)
from robots.bosse.planning import (
    Candidate,
    Evaluation,
    StepKind,
    close_at,
    covered_notices,
    in_quiet_hours,
    next_step,
    pending_notices,
    quiet_hours_end_after,
    wave_targets,
)
from robots.bosse.records import ShiftInfo, parse_shift, parse_substitute
from robots.bosse.rules import STOCKHOLM
from robots.bosse.settings import BosseSettings

TENANT = "1081"


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM).astimezone(UTC)


def shift(**kw: Any) -> ShiftInfo:
    base: dict[str, Any] = {
        "id": "PASS-1",
        "code": "P101",
        "unit": "Solgården",
        "name": "dag",
        "start": local("2026-11-24T07:00"),
        "end": local("2026-11-24T16:00"),
        "hours": 9.0,
        "deadline": local("2026-11-24T05:00"),
    }
    return ShiftInfo(**{**base, **kw})


# --------------------------------------------------------------------------- messages


class TestReferences:
    """Every SMS has a reference saying what it is; it round-trips and is the idempotency key."""

    def test_round_trip(self) -> None:
        for ref in (
            Reference(TENANT, "PASS-20261124-001", MessageKind.offer, "V001", 2),
            Reference(TENANT, "PASS/with/slash", MessageKind.filled, "V 7"),
        ):
            assert parse_reference(str(ref)) == ref

    def test_offer_reference_names_the_wave(self) -> None:
        assert str(Reference(TENANT, "PASS-1", MessageKind.offer, "V001", 3)) == "bosse/1081/PASS-1/offer/V001/w3"

    @pytest.mark.parametrize(
        "text",
        [
            None,
            "",
            "offer-V001",
            "bosse/1081/PASS-1/offer/V001",
            "bosse/1081/PASS-1/bogus/V001",
            "bosse/1081/PASS-1/filled/V001/w1",
            "bosse/1081/PASS-1/offer/V001/wx",
        ],
    )
    def test_other_references_are_not_bosses(self, text: str | None) -> None:
        assert parse_reference(text) is None

    def test_booking_key_is_per_shift_and_person(self) -> None:
        assert booking_key(TENANT, "PASS-1", "V001") != booking_key(TENANT, "PASS-1", "V002")


class TestTexts:
    """Offers carry the code and JA; no other message looks like an offer."""

    def test_label(self) -> None:
        assert shift_label(shift()) == "Solgården, tis 24/11 07:00–16:00"

    def test_offer(self) -> None:
        text = message_text(MessageKind.offer, shift())
        assert text == (
            "Bemanningen: vill du ta pass P101, Solgården, tis 24/11 07:00–16:00 (dag)? "
            "Svara JA P101 eller NEJ P101. Först till kvarn."
        )

    @pytest.mark.parametrize("kind", [k for k in MessageKind if k is not MessageKind.offer])
    def test_no_other_text_contains_ja(self, kind: MessageKind) -> None:
        text = message_text(kind, shift())
        assert "P101" in text
        assert not re.search(r"\bJA\b", text, re.IGNORECASE)

    def test_texts_are_fixed_for_a_shift(self) -> None:
        assert all(message_text(k, shift()) == message_text(k, shift()) for k in MessageKind)


class TestReplyParser:
    """JA/NEJ with the shift code, tolerant of case, spacing, punctuation and greetings."""

    @pytest.mark.parametrize(
        ("text", "answer", "code"),
        [
            ("JA P101", Answer.yes, "P101"),
            ("nej p101", Answer.no, "P101"),
            ("  Ja  P101 ", Answer.yes, "P101"),
            ("Ja P101, mvh Anna", Answer.yes, "P101"),
            ("JA\nP101", Answer.yes, "P101"),
            ("Ja", Answer.yes, None),
            ("Nej", Answer.no, None),
            ("ja!", Answer.yes, None),
            ("NEJ TACK", Answer.no, None),
            ("Ja tack, P102", Answer.yes, "P102"),
            ("JA-P101", Answer.yes, "P101"),
            ("jap101", Answer.yes, "P101"),
            ("Kanske P101", None, "P101"),
            ("", None, None),
            ("🙂", None, None),
        ],
    )
    def test_parse(self, text: str, answer: Answer | None, code: str | None) -> None:
        parsed = parse_reply(text, ["P101", "P102"])
        assert (parsed.answer, parsed.code) == (answer, code)

    def test_unknown_codes_are_not_codes(self) -> None:
        assert parse_reply("JA P999", ["P101"]).code is None


# --------------------------------------------------------------------------- ledger


def sent(
    msg_id: str, ref: str, at: str, to: str = "+46701740605", status: str = "delivered", text: str = ""
) -> dict[str, Any]:
    return {
        "id": msg_id,
        "reference": ref,
        "created_at": local(at).isoformat(),
        "to": to,
        "status": status,
        "text": text,
    }


def inbound(msg_id: str, text: str, at: str, frm: str = "+46701740605", reply_to: str | None = None) -> dict[str, Any]:
    return {"id": msg_id, "from": frm, "text": text, "received_at": local(at).isoformat(), "in_reply_to": reply_to}


OFFER_TEXT = message_text(MessageKind.offer, shift())
OFFER_TEXT_2 = message_text(MessageKind.offer, shift(id="PASS-2", code="P102"))
A, B, C = "+46701740605", "+46701740606", "+46701740607"


def offer(
    sub: str,
    to: str,
    at: str = "2026-11-23T07:00",
    wave: int = 1,
    shift_id: str = "PASS-1",
    msg_id: str | None = None,
    status: str = "delivered",
) -> dict[str, Any]:
    text = OFFER_TEXT if shift_id == "PASS-1" else OFFER_TEXT_2
    return sent(
        msg_id or f"SMS-{shift_id}-{sub}",
        str(Reference(TENANT, shift_id, MessageKind.offer, sub, wave)),
        at,
        to=to,
        status=status,
        text=text,
    )


class TestLedger:
    """Offers, answers and notices are read back from the gateway's record."""

    def test_offers_answers_and_notices(self) -> None:
        out = [
            offer("V1", A),
            offer("V2", B, wave=2, at="2026-11-23T07:30"),
            offer("V3", C, status="failed"),
            sent("SMS-9", str(Reference(TENANT, "PASS-1", MessageKind.filled, "V2")), "2026-11-23T08:00", to=B),
            sent("SMS-X", "someone-else", "2026-11-23T07:00"),
        ]
        replies = [
            inbound("IN-1", "Nej", "2026-11-23T07:05", A, "SMS-PASS-1-V1"),
            inbound("IN-2", "JA P101", "2026-11-23T08:10", B),
            inbound("IN-3", "hej", "2026-11-23T08:11", "+46700000000"),
        ]
        ledger = build_ledger(TENANT, out, replies)
        mine = ledger.of("PASS-1")
        assert set(mine.offers) == {"V1", "V2", "V3"}
        assert mine.offers["V1"].answer is Answer.no
        assert mine.offers["V2"].answer is Answer.yes and mine.offers["V2"].wave == 2
        assert not mine.offers["V3"].message.delivered
        assert mine.last_wave == 2
        assert mine.covered  # a "filled" notice went out
        assert ledger.unmatched == 1
        assert [(e["kind"], e["substitute_id"]) for e in mine.history()] == [
            ("offer", "V1"),
            ("offer", "V3"),
            ("reply", "V1"),
            ("offer", "V2"),
            ("filled", "V2"),
            ("reply", "V2"),
        ]
        assert all("+46" not in str(e) for e in mine.history())  # no phone numbers for the coordinators

    def test_other_tenants_are_ignored(self) -> None:
        other = sent("S1", str(Reference("1082", "PASS-1", MessageKind.offer, "V1", 1)), "2026-11-23T07:00")
        assert build_ledger(TENANT, [other], []).shifts == {}

    def test_code_in_text_wins_over_in_reply_to(self) -> None:
        out = [offer("V1", A), offer("V1", A, shift_id="PASS-2", msg_id="SMS-2")]
        ledger = build_ledger(TENANT, out, [inbound("IN-1", "JA P102", "2026-11-23T07:05", A, "SMS-PASS-1-V1")])
        assert ledger.of("PASS-2").offers["V1"].answer is Answer.yes
        assert ledger.of("PASS-1").offers["V1"].answer is None

    def test_bare_answer_goes_to_the_only_open_offer(self) -> None:
        out = [offer("V1", A), offer("V1", A, shift_id="PASS-2", msg_id="SMS-2")]
        replies = [inbound("IN-1", "Nej P101", "2026-11-23T07:05", A), inbound("IN-2", "Ja", "2026-11-23T07:06", A)]
        ledger = build_ledger(TENANT, out, replies)
        assert ledger.of("PASS-2").offers["V1"].answer is Answer.yes

    def test_bare_answer_with_two_open_offers_is_ambiguous(self) -> None:
        out = [offer("V1", A), offer("V1", A, shift_id="PASS-2", msg_id="SMS-2")]
        ledger = build_ledger(TENANT, out, [inbound("IN-1", "Ja", "2026-11-23T07:05", A)])
        assert ledger.unmatched == 1

    def test_latest_clear_answer_counts_and_yes_queue_is_first_yes_first(self) -> None:
        out = [offer("V1", A), offer("V2", B), offer("V3", C)]
        replies = [
            inbound("IN-1", "JA P101", "2026-11-23T07:09", B),
            inbound("IN-2", "Ja P101", "2026-11-23T07:05", C),
            inbound("IN-3", "JA P101", "2026-11-23T07:02", A),
            inbound("IN-4", "nej p101", "2026-11-23T07:03", A),
        ]
        mine = build_ledger(TENANT, out, replies).of("PASS-1")
        assert mine.offers["V1"].answer is Answer.no
        assert mine.yes_queue() == ["V3", "V2"]
        assert mine.yes_queue(received_before=local("2026-11-23T07:06")) == ["V3"]

    def test_phone_numbers_compare_in_any_format(self) -> None:
        assert normalise_phone("070-174 06 05") == normalise_phone("+46701740605") == normalise_phone("0046701740605")


# --------------------------------------------------------------------------- time


class TestQuietHoursAndDeadlines:
    """No SMS 21:00-07:00 Swedish time; a deadline in the quiet hours is brought forward."""

    @pytest.mark.parametrize(
        ("at", "quiet"),
        [
            ("2026-11-23T20:59", False),
            ("2026-11-23T21:00", True),
            ("2026-11-24T03:00", True),
            ("2026-11-24T06:59", True),
            ("2026-11-24T07:00", False),
            ("2026-07-01T21:30", True),
        ],
    )
    def test_quiet(self, at: str, quiet: bool) -> None:
        assert in_quiet_hours(local(at), time(21), time(7)) is quiet

    def test_daytime_quiet_window(self) -> None:
        assert in_quiet_hours(local("2026-11-23T12:30"), time(12), time(13))
        assert not in_quiet_hours(local("2026-11-23T13:00"), time(12), time(13))

    def test_end_of_quiet_hours(self) -> None:
        assert quiet_hours_end_after(local("2026-11-23T22:00"), time(21), time(7)) == local("2026-11-24T07:00")
        assert quiet_hours_end_after(local("2026-11-24T01:00"), time(21), time(7)) == local("2026-11-24T07:00")
        assert quiet_hours_end_after(local("2026-11-24T09:00"), time(21), time(7)) == local("2026-11-24T09:00")

    def test_close_at_is_the_deadline_in_the_day(self) -> None:
        s = shift(start=local("2026-11-24T15:00"), end=local("2026-11-24T22:00"), deadline=local("2026-11-24T13:00"))
        assert close_at(s, BosseSettings()) == local("2026-11-24T13:00")

    def test_deadline_in_quiet_hours_moves_before_them(self) -> None:
        # 07:00 shift, deadline 05:00: no offer can go out after 21:00 the evening before.
        assert close_at(shift(), BosseSettings()) == local("2026-11-23T20:45")

    def test_missing_deadline_uses_the_setting(self) -> None:
        s = shift(start=local("2026-11-24T15:00"), end=local("2026-11-24T22:00"), deadline=None)
        assert close_at(s, BosseSettings(deadline_hours_before_start=3)) == local("2026-11-24T12:00")


# --------------------------------------------------------------------------- next step


def evaluation(*ids: str, unreachable: tuple[str, ...] = ()) -> Evaluation:
    return Evaluation(tuple(Candidate(i + 1, s, "why", s not in unreachable) for i, s in enumerate(ids)), ())


SETTINGS = BosseSettings(wave_size=2, reply_wait_minutes=30)
DAY = shift(start=local("2026-11-25T07:00"), end=local("2026-11-25T16:00"), deadline=local("2026-11-25T05:00"))


class TestNextStep:
    """Waves of k, a wait between them, no offers at night, and a hand-over when nothing is left."""

    def ledger(self, out: list[dict[str, Any]], replies: list[dict[str, Any]] = ()) -> Any:  # type: ignore[assignment]
        return build_ledger(TENANT, out, list(replies)).of("PASS-1")

    def test_first_wave_in_the_morning_not_at_night(self) -> None:
        ev, empty = evaluation("V1", "V2", "V3"), self.ledger([])
        night = next_step(DAY, ev, empty, local("2026-11-23T01:00"), SETTINGS)
        assert (night.kind, night.code) == (StepKind.wait, "quiet_hours")
        morning = next_step(DAY, ev, empty, local("2026-11-23T07:00"), SETTINGS)
        assert (morning.kind, morning.wave, morning.candidates) == (StepKind.wave, 1, ("V1", "V2"))

    def test_waits_for_answers_then_sends_the_next_wave(self) -> None:
        ev = evaluation("V1", "V2", "V3", "V4")
        led = self.ledger([offer("V1", A), offer("V2", B)])
        assert next_step(DAY, ev, led, local("2026-11-23T07:20"), SETTINGS).kind is StepKind.wait
        step = next_step(DAY, ev, led, local("2026-11-23T07:30"), SETTINGS)
        assert (step.kind, step.wave, step.candidates) == (StepKind.wave, 2, ("V3", "V4"))

    def test_all_no_means_next_wave_at_once(self) -> None:
        led = self.ledger(
            [offer("V1", A), offer("V2", B)],
            [inbound("I1", "nej", "2026-11-23T07:02", A), inbound("I2", "NEJ P101", "2026-11-23T07:03", B)],
        )
        step = next_step(DAY, evaluation("V1", "V2", "V3"), led, local("2026-11-23T07:05"), SETTINGS)
        assert (step.kind, step.candidates) == (StepKind.wave, ("V3",))

    def test_undelivered_offers_do_not_wait(self) -> None:
        led = self.ledger([offer("V1", A, status="failed")])
        step = next_step(DAY, evaluation("V1", "V2"), led, local("2026-11-23T07:01"), SETTINGS)
        assert step.candidates == ("V2",)

    def test_a_yes_waits_for_its_booking(self) -> None:
        led = self.ledger([offer("V1", A)], [inbound("I1", "ja", "2026-11-23T07:02", A)])
        step = next_step(DAY, evaluation("V1", "V2"), led, local("2026-11-23T08:00"), SETTINGS)
        assert step.code == "yes_pending"

    def test_unreachable_candidates_are_skipped(self) -> None:
        step = next_step(
            DAY, evaluation("V1", "V2", "V3", unreachable=("V1",)), self.ledger([]), local("2026-11-23T07:00"), SETTINGS
        )
        assert step.candidates == ("V2", "V3")

    def test_nobody_eligible_goes_to_the_coordinators_even_at_night(self) -> None:
        step = next_step(DAY, evaluation(), self.ledger([]), local("2026-11-23T01:00"), SETTINGS)
        assert (step.kind, step.code) == (StepKind.unfilled, "no_candidates")

    def test_everyone_offered_and_done_goes_to_the_coordinators(self) -> None:
        led = self.ledger([offer("V1", A)])
        assert next_step(DAY, evaluation("V1"), led, local("2026-11-23T07:31"), SETTINGS).code == "exhausted"

    def test_max_waves(self) -> None:
        led = self.ledger([offer("V1", A)])
        settings = BosseSettings(wave_size=1, max_waves=1)
        assert next_step(DAY, evaluation("V1", "V2"), led, local("2026-11-23T08:00"), settings).code == "max_waves"

    def test_deadline(self) -> None:
        step = next_step(DAY, evaluation("V1"), self.ledger([]), local("2026-11-24T20:45"), SETTINGS)
        assert (step.kind, step.code) == (StepKind.unfilled, "deadline")

    def test_offer_lead_time(self) -> None:
        settings = BosseSettings(max_offer_lead_hours=24)
        assert (
            next_step(DAY, evaluation("V1"), self.ledger([]), local("2026-11-23T07:00"), settings).code == "too_early"
        )
        assert (
            next_step(DAY, evaluation("V1"), self.ledger([]), local("2026-11-24T07:00"), settings).kind is StepKind.wave
        )

    def test_booked_or_covered_needs_nothing(self) -> None:
        booked = shift(status="booked", booked_substitute_id="V9")
        assert (
            next_step(booked, evaluation("V1"), self.ledger([]), local("2026-11-23T07:00"), SETTINGS).code == "booked"
        )
        filled = sent("S9", str(Reference(TENANT, "PASS-1", MessageKind.filled, "V1")), "2026-11-23T08:00")
        led = self.ledger([offer("V1", A), filled])
        assert next_step(DAY, evaluation("V1", "V2"), led, local("2026-11-23T09:00"), SETTINGS).code == "covered"

    def test_wave_targets_top_up_a_partly_sent_wave(self) -> None:
        led = self.ledger([offer("V1", A, wave=1)])
        assert wave_targets(evaluation("V1", "V2", "V3"), led, 1, 2) == ["V2"]
        assert wave_targets(evaluation("V1", "V2", "V3"), led, 2, 2) == ["V2", "V3"]


class TestNotices:
    """Once booked: confirm the booked person, tell open offers it is filled, a late yes gets a polite no."""

    def test_after_booking(self) -> None:
        out = [offer("V1", A), offer("V2", B), offer("V3", C), offer("V4", "+46701740608", status="failed")]
        replies = [inbound("I1", "JA", "2026-11-23T07:02", A), inbound("I2", "nej", "2026-11-23T07:03", B)]
        led = build_ledger(TENANT, out, replies).of("PASS-1")
        booked = shift(status="booked", booked_substitute_id="V1")
        assert pending_notices(booked, led, booked_by_us=True) == [
            (MessageKind.confirm, "V1"),
            (MessageKind.filled, "V3"),
        ]
        assert pending_notices(booked, led, booked_by_us=False) == [(MessageKind.filled, "V3")]
        assert pending_notices(shift(), led, booked_by_us=True) == []

    def test_late_yes_after_the_filled_notice(self) -> None:
        filled = sent("S9", str(Reference(TENANT, "PASS-1", MessageKind.filled, "V2")), "2026-11-23T07:10", to=B)
        confirm = sent("S8", str(Reference(TENANT, "PASS-1", MessageKind.confirm, "V1")), "2026-11-23T07:10")
        replies = [inbound("I1", "JA", "2026-11-23T07:02", A), inbound("I2", "ja p101", "2026-11-23T07:30", B)]
        led = build_ledger(TENANT, [offer("V1", A), offer("V2", B), filled, confirm], replies).of("PASS-1")
        booked = shift(status="booked", booked_substitute_id="V1")
        assert pending_notices(booked, led, booked_by_us=True) == [(MessageKind.late, "V2")]

    def test_covered_otherwise(self) -> None:
        led = build_ledger(TENANT, [offer("V1", A), offer("V2", B)], [inbound("I1", "NEJ", "2026-11-23T07:02", A)]).of(
            "PASS-1"
        )
        assert covered_notices(led) == ["V2"]


# --------------------------------------------------------------------------- records


class TestRecords:
    """Staffing-system JSON is read into Bosse's terms; the month's hours follow the shift."""

    def test_shift(self) -> None:
        s = parse_shift(
            {
                "id": "PASS-1",
                "code": "P101",
                "unit": "Solgården",
                "start": "2026-11-24T07:00+01:00",
                "end": "2026-11-24T16:00+01:00",
                "hours": 9.0,
                "qualifications": ["undersköterska"],
                "status": "booked",
                "booking_id": "BOK-1",
                "booked_substitute_id": "V1",
                "booking": {"booked_by": "Kollega/Bosse"},
                "deadline": "2026-11-24T05:00+01:00",
            }
        )
        assert not s.is_open and s.booked_by == "Kollega/Bosse" and s.month == "2026-11"
        assert s.as_material()["start"] == "2026-11-24T07:00+01:00"

    def test_substitute_hours_for_the_shift_month(self) -> None:
        sub = parse_substitute(
            {
                "id": "V1",
                "first_name": "A",
                "last_name": "B",
                "phone": "+46701740605",
                "hours_by_month": {"2026-11": 150.0, "2026-12": 10.0},
                "hours_this_month": 150.0,
                "priority_right": True,
                "priority_right_until": "2026-11-30",
                "bookings": [{"id": "BOK-1", "start": "2026-12-01T07:00+01:00", "end": "2026-12-01T10:00+01:00"}],
            }
        )
        december = shift(start=local("2026-12-02T07:00"), end=local("2026-12-02T16:00"))
        rules_view = sub.to_rules(december)
        assert rules_view.hours_this_month == 10.0
        assert rules_view.priority_right is False  # the priority right has ended by then
        assert sub.to_rules(shift()).priority_right is True
        without = sub.to_rules(december, without_booking="BOK-1")
        assert without.bookings == () and without.hours_this_month == 7.0

    @pytest.mark.parametrize(
        "bad",
        [
            {"id": "PASS-1"},
            {"id": "PASS-1", "start": "x", "end": "y"},
            {"id": "PASS-1", "start": "2026-11-24T07:00", "end": "2026-11-24T06:00"},
            [],
        ],
    )
    def test_bad_shift(self, bad: Any) -> None:
        from robots.bosse.records import BadRecord

        with pytest.raises(BadRecord):
            parse_shift(bad)

    def test_naive_times_are_swedish(self) -> None:
        s = parse_shift({"id": "P", "start": "2026-07-01T07:00", "end": "2026-07-01T08:00"})
        assert s.start == datetime(2026, 7, 1, 5, 0, tzinfo=UTC)
        assert s.end - s.start == timedelta(hours=1)


# --------------------------------------------------------------------------- work-item references


class TestItemReferences:
    """One reference per step; repeatable steps carry the hour they were found due in."""

    @pytest.mark.parametrize(
        "ref",
        [
            "PASS-1",
            "PASS-1/unfilled",
            "PASS-1/wave-2/2026112307",
            "PASS-1/reply/IN-000001",
            "PASS-1/settle/2026112309",
            "PASS-1/close/BOK-00001/2026112310",
            "PASS%2Fodd/reply/IN%2F1",
        ],
    )
    def test_round_trip(self, ref: str) -> None:
        from robots.bosse.flow import parse_item_reference

        assert str(parse_item_reference(ref)) == ref

    @pytest.mark.parametrize(
        "ref",
        [
            "",
            "PASS-1/wave-0/2026112307",
            "PASS-1/wave-1",
            "PASS-1/bogus",
            "PASS-1/reply",
            "PASS-1/close/BOK-1",
            "PASS-1/unfilled/x",
        ],
    )
    def test_unknown(self, ref: str) -> None:
        from core.errors import BusinessError
        from robots.bosse.flow import parse_item_reference

        with pytest.raises(BusinessError):
            parse_item_reference(ref)

    def test_slot_is_the_local_hour(self) -> None:
        from robots.bosse.flow import slot_of

        assert slot_of(local("2026-11-23T07:59")) == "2026112307"


def test_nobody_reachable_goes_to_the_coordinators() -> None:
    step = next_step(
        DAY,
        evaluation("V1", unreachable=("V1",)),
        build_ledger(TENANT, [], []).of("PASS-1"),
        local("2026-11-23T07:00"),
        SETTINGS,
    )
    assert (step.kind, step.code) == (StepKind.unfilled, "unreachable")
