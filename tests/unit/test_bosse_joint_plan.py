"""Tonight's open shifts planned together (``planning.plan_offers``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from robots.bosse.ledger import Offer, SentMessage, ShiftLedger
from robots.bosse.messages import MessageKind
from robots.bosse.planning import adaptive_wave_size, evaluate_shift, plan_offers
from robots.bosse.records import ShiftInfo, SubstituteInfo
from robots.bosse.rules import Interval, local_to_utc
from robots.bosse.settings import BosseSettings


def t(local: str) -> datetime:
    return local_to_utc(datetime.fromisoformat(local))


def shift(sid: str, start: str, end: str) -> ShiftInfo:
    s, e = t(start), t(end)
    return ShiftInfo(sid, sid, "Solgården", s, e, (e - s).total_seconds() / 3600, deadline=s - timedelta(hours=2))


def person(pid: str, hours: float = 0.0) -> SubstituteInfo:
    return SubstituteInfo(
        pid,
        "Test",
        pid,
        f"+4670174{int(pid[1:]):04d}",
        None,
        available=(Interval(t("2026-12-01T00:00"), t("2026-12-10T00:00")),),
        hours_this_month=hours,
    )


SETTINGS = BosseSettings(wave_size=3, reply_wait_minutes=30, adaptive_waves=False)
NOW = t("2026-12-01T07:00")


def test_the_scarcest_shift_goes_first_and_gets_the_person_it_needs() -> None:
    # Day and evening of the same day clash (too little rest between); V1 may take either,
    # V2 and V3 only the day shift (available in the day only).
    day, evening = (
        shift("DAY", "2026-12-02T07:00", "2026-12-02T16:00"),
        shift("EVE", "2026-12-02T20:00", "2026-12-03T06:00"),
    )
    days_only = (Interval(t("2026-12-02T06:00"), t("2026-12-02T17:00")),)
    people = {p.id: p for p in [person("V1", 100), person("V2"), person("V3")]}
    people["V2"] = SubstituteInfo(**{**people["V2"].__dict__, "available": days_only})
    people["V3"] = SubstituteInfo(**{**people["V3"].__dict__, "available": days_only})
    shifts = [day, evening]
    evaluations = {s.id: evaluate_shift(s, people.values(), SETTINGS.rules) for s in shifts}
    assert [c.id for c in evaluations["EVE"].eligible] == ["V1"]
    plan = plan_offers(shifts, evaluations, {s.id: ShiftLedger(s.id) for s in shifts}, people, NOW, SETTINGS)
    assert plan.order == ("EVE", "DAY")
    assert plan.offers == {"EVE": ("V1",), "DAY": ("V2", "V3")}
    assert "V1" in plan.held_back["DAY"]


def test_no_offer_that_a_yes_elsewhere_would_make_illegal() -> None:
    day, evening = (
        shift("DAY", "2026-12-02T07:00", "2026-12-02T16:00"),
        shift("EVE", "2026-12-02T20:00", "2026-12-03T06:00"),
    )
    people = {"V1": person("V1")}
    shifts = [day, evening]
    evaluations = {s.id: evaluate_shift(s, people.values(), SETTINGS.rules) for s in shifts}
    ledger = ShiftLedger("DAY")
    msg = SentMessage("S1", "DAY", MessageKind.offer, "V1", 1, "+46701740001", "", NOW - timedelta(hours=1), True)
    ledger.offers["V1"] = Offer(msg)
    plan = plan_offers(shifts, evaluations, {"DAY": ledger, "EVE": ShiftLedger("EVE")}, people, NOW, SETTINGS)
    assert "EVE" not in plan.offers
    assert plan.held_back["EVE"]["V1"].startswith("har erbjudande på pass DAY")


def test_adaptive_waves_ask_few_while_there_is_time() -> None:
    settings = BosseSettings(wave_size=3, reply_wait_minutes=30)
    assert adaptive_wave_size(6, NOW, NOW + timedelta(hours=10), settings) == 1  # 20 rounds left
    assert adaptive_wave_size(6, NOW, NOW + timedelta(hours=1), settings) == 3  # 2 rounds left
    assert adaptive_wave_size(6, NOW, NOW + timedelta(minutes=10), settings) == 3
    fixed = BosseSettings(wave_size=3, reply_wait_minutes=30, adaptive_waves=False)
    assert adaptive_wave_size(6, NOW, NOW + timedelta(hours=10), fixed) == 3


def test_the_review_shows_counters_and_exceptions_labelled() -> None:
    from robots.bosse.material import review_material

    long_shift = shift("LONG", "2026-12-02T07:00", "2026-12-02T22:00")  # 15 h: only by exception
    normal = shift("DAY", "2026-12-02T07:00", "2026-12-02T16:00")
    people = {"V1": person("V1")}
    for s, expect_exception in ((long_shift, True), (normal, False)):
        evaluation = evaluate_shift(s, people.values(), SETTINGS.rules)
        m = review_material(s, evaluation, ShiftLedger(s.id), people, reason="deadline", reason_text="x")
        if expect_exception:
            assert m["eligible"] == []
            (case,) = m["exceptions"]
            assert case["id"] == "V1" and case["label"] == "Endast med undantag – kräver samordnarens beslut"
            assert case["compensating_rest_hours"] == 15.0 and "Bosse bokar inte på undantag" in case["text"]
        else:
            assert m["exceptions"] == []
            assert "övertid i december: 0 av 50 h" in m["eligible"][0]["counters"]
