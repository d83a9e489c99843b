"""Tonight's open shifts planned together (``planning.plan_offers``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from robots.bosse.ledger import Offer, Reply, SentMessage, ShiftLedger
from robots.bosse.messages import Answer, MessageKind
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


def _evening_pair() -> tuple[ShiftInfo, ShiftInfo]:
    # Two evening shifts at the same time: a yes to one excludes the other.
    return shift("A", "2026-12-02T15:00", "2026-12-02T22:00"), shift("B", "2026-12-02T15:00", "2026-12-02T22:00")


def test_learnt_reply_history_decides_which_shift_is_scarcest() -> None:
    from robots.bosse.history import ReplyStats

    a, b = _evening_pair()
    people = {p.id: p for p in [person("V1"), person("V2"), person("V3"), person("V4"), person("V5")]}
    # A can use V1 and V2; B can use V3, V4 and V5; V1 could also take B.
    a_only = {"V1", "V2"}
    b_only = {"V1", "V3", "V4", "V5"}
    evaluations = {
        "A": evaluate_shift(a, [people[i] for i in sorted(a_only)], SETTINGS.rules),
        "B": evaluate_shift(b, [people[i] for i in sorted(b_only)], SETTINGS.rules),
    }
    ledgers = {"A": ShiftLedger("A"), "B": ShiftLedger("B")}
    never_yes = ReplyStats(offers=10, answered=10, yes=0, minutes=(20.0,) * 10)
    always_yes = ReplyStats(offers=10, answered=10, yes=10, minutes=(5.0,) * 10)
    # Without history A (fewer candidates) is the scarcer and gets V1.
    plan = plan_offers([a, b], evaluations, ledgers, people, NOW, SETTINGS)
    assert plan.order == ("A", "B")
    assert set(plan.offers["A"]) == {"V1", "V2"}
    assert "V1" not in plan.offers["B"]
    # Known: V2 always says yes, V3-V5 never do. B is the one at risk and is offered V1.
    history = {"V2": always_yes, "V3": never_yes, "V4": never_yes, "V5": never_yes}
    plan = plan_offers([a, b], evaluations, ledgers, people, NOW, SETTINGS, history)
    assert plan.order == ("B", "A")
    assert "V1" in plan.offers["B"]
    assert plan.offers["A"] == ("V2",)


def test_a_shift_waiting_for_replies_keeps_its_people_and_the_other_waits() -> None:
    settings = BosseSettings(wave_size=1, reply_wait_minutes=30)
    a, b = _evening_pair()
    c = shift("C", "2026-12-02T15:00", "2026-12-02T22:00")
    people = {p.id: p for p in [person("V1"), person("V2"), person("V3")]}
    # B has asked V1 (unanswered, still within the reply time) and has only V2 left. A could
    # use all three, but V1 and V3 hold offers on B and C (a yes there would exclude A).
    evaluations = {
        "A": evaluate_shift(a, people.values(), settings.rules),
        "B": evaluate_shift(b, [people["V1"], people["V2"]], settings.rules),
        "C": evaluate_shift(c, [people["V3"]], settings.rules),
    }

    def ledgers_at(now: datetime) -> dict[str, ShiftLedger]:
        ledgers = {sid: ShiftLedger(sid) for sid in "ABC"}
        for sid, sub in (("B", "V1"), ("C", "V3")):
            sent = now - timedelta(minutes=10)
            ledgers[sid].offers[sub] = Offer(SentMessage(sid, sid, MessageKind.offer, sub, 1, "+4670", "", sent, True))
        return ledgers

    plan = plan_offers([a, b, c], evaluations, ledgers_at(NOW), people, NOW, settings)
    assert plan.order.index("B") < plan.order.index("A")  # B, waiting on a single offer, is at more risk
    assert "A" not in plan.offers  # a day left: A waits rather than take B's last candidate
    assert plan.held_back["A"]["V2"] == "sparas till ett pass med färre behöriga"
    # An hour before A's offers close it cannot wait any longer.
    assert a.deadline is not None
    late = a.deadline - timedelta(hours=1)
    plan = plan_offers([a, b, c], evaluations, ledgers_at(late), people, late, settings)
    assert plan.offers["A"] == ("V2",)


def test_within_a_shift_those_least_needed_elsewhere_are_asked_first() -> None:
    settings = BosseSettings(wave_size=1, reply_wait_minutes=30)
    a, b = _evening_pair()
    # V1 has fewer hours (ranked first for A) but is one of only three for B; V2 can only take A.
    people = {p.id: p for p in [person("V1", 10), person("V2", 50), person("V3"), person("V4")]}
    evaluations = {
        "A": evaluate_shift(a, [people["V1"], people["V2"]], settings.rules),
        "B": evaluate_shift(b, [people["V1"], people["V3"], people["V4"]], settings.rules),
    }
    assert [c.id for c in evaluations["A"].eligible] == ["V1", "V2"]
    ledgers = {"A": ShiftLedger("A"), "B": ShiftLedger("B")}
    plan = plan_offers([a, b], evaluations, ledgers, people, NOW, settings)
    assert plan.order == ("A", "B")
    assert plan.offers["A"] == ("V2",)


def test_candidates_wanted_by_another_shift_count_in_part_so_that_shift_is_scarcer() -> None:
    # DAY and EVE (same day, too little rest between) share V1 and V2: one yes from either
    # fills only one of them. EARLY has two people of its own (V3, V4, available only then).
    # Counted alone all three look alike and EARLY, the first to start, would go first.
    early, day, evening = (
        shift("EARLY", "2026-12-01T15:00", "2026-12-01T22:00"),
        shift("DAY", "2026-12-02T07:00", "2026-12-02T16:00"),
        shift("EVE", "2026-12-02T20:00", "2026-12-03T06:00"),
    )
    early_only = (Interval(t("2026-12-01T14:00"), t("2026-12-01T23:00")),)
    day_two = (Interval(t("2026-12-02T06:00"), t("2026-12-03T07:00")),)
    people = {p.id: p for p in [person("V1"), person("V2"), person("V3"), person("V4")]}
    for pid, available in (("V1", day_two), ("V2", day_two), ("V3", early_only), ("V4", early_only)):
        people[pid] = SubstituteInfo(**{**people[pid].__dict__, "available": available})
    shifts = [early, day, evening]
    evaluations = {s.id: evaluate_shift(s, people.values(), SETTINGS.rules) for s in shifts}
    assert {s: [c.id for c in e.eligible] for s, e in evaluations.items()} == {
        "EARLY": ["V3", "V4"],
        "DAY": ["V1", "V2"],
        "EVE": ["V1", "V2"],
    }
    plan = plan_offers(shifts, evaluations, {s.id: ShiftLedger(s.id) for s in shifts}, people, NOW, SETTINGS)
    assert plan.order == ("DAY", "EVE", "EARLY")
    # The people of EARLY are nobody else's: it still asks them at once.
    assert plan.offers["EARLY"] == ("V3", "V4")
    assert plan.offers["DAY"] == ("V1", "V2") and "EVE" not in plan.offers


def test_those_who_never_answer_are_asked_after_those_who_do() -> None:
    from robots.bosse.history import ReplyStats
    from robots.bosse.planning import SILENT_AFTER_OFFERS, never_answers

    settings = BosseSettings(wave_size=1, reply_wait_minutes=30)
    a = shift("A", "2026-12-02T15:00", "2026-12-02T22:00")
    # V1 has the fewest hours (ranked first) but has left every offer unanswered; V2 answers.
    people = {p.id: p for p in [person("V1", 0), person("V2", 40), person("V3", 80)]}
    evaluations = {"A": evaluate_shift(a, people.values(), settings.rules)}
    assert [c.id for c in evaluations["A"].eligible] == ["V1", "V2", "V3"]
    ledgers = {"A": ShiftLedger("A")}
    silent = ReplyStats(offers=SILENT_AFTER_OFFERS, answered=0, yes=0)
    answers = ReplyStats(offers=5, answered=5, yes=1, minutes=(30.0,) * 5)
    assert never_answers(silent) and not never_answers(answers) and not never_answers(None)
    # Fewer unanswered offers than that: still in ranking order (a newcomer is not judged yet).
    young = ReplyStats(offers=SILENT_AFTER_OFFERS - 1, answered=0, yes=0)
    plan = plan_offers([a], evaluations, ledgers, people, NOW, settings, {"V1": young, "V2": answers})
    assert plan.offers == {"A": ("V1",)}
    plan = plan_offers([a], evaluations, ledgers, people, NOW, settings, {"V1": silent, "V2": answers})
    assert plan.offers == {"A": ("V2",)}
    # Still asked, last, when the others have been: nobody is left out for it.
    for sub in ("V2", "V3"):
        sent = NOW - timedelta(hours=1)
        ledgers["A"].offers[sub] = Offer(SentMessage("A", "A", MessageKind.offer, sub, 1, "+4670", "", sent, True))
        ledgers["A"].offers[sub].replies.append(
            Reply(f"IN-{sub}", "A", sub, Answer.no, "nej", sent + timedelta(minutes=5))
        )
    plan = plan_offers([a], evaluations, ledgers, people, NOW, settings, {"V1": silent, "V2": answers})
    assert plan.offers == {"A": ("V1",)}


def test_priority_right_still_comes_before_answering() -> None:
    from robots.bosse.history import ReplyStats

    settings = BosseSettings(wave_size=1, reply_wait_minutes=30)
    a = shift("A", "2026-12-02T15:00", "2026-12-02T22:00")
    people = {p.id: p for p in [person("V1", 50), person("V2", 0)]}
    people["V1"] = SubstituteInfo(**{**people["V1"].__dict__, "priority_right": True})
    evaluations = {"A": evaluate_shift(a, people.values(), settings.rules)}
    assert [c.id for c in evaluations["A"].eligible] == ["V1", "V2"]
    silent = ReplyStats(offers=4, answered=0, yes=0)
    plan = plan_offers([a], evaluations, {"A": ShiftLedger("A")}, people, NOW, settings, {"V1": silent})
    assert plan.offers == {"A": ("V1",)}
