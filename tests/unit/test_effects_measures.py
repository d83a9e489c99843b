"""Each robot's month of effects, from hand-made facts: only what happened counts, only work replaced saves time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.api import EffectFacts, EventFact, ItemFact, Robot
from core.effects import ReviewFact
from robots.bosse.effects import gini
from robots.bosse.robot import Bosse
from robots.harry.robot import Harry
from robots.lena.robot import LenaRobot
from robots.ronney.effects import ready_by
from robots.ronney.robot import Ronney

ZONE = ZoneInfo("Europe/Stockholm")


def t(text: str) -> datetime:
    """A UTC time from local Swedish wall-clock text."""
    return datetime.fromisoformat(text).replace(tzinfo=ZONE).astimezone(UTC)


def facts(
    items: tuple[ItemFact, ...] = (), reviews: tuple[ReviewFact, ...] = (), events: tuple[EventFact, ...] = ()
) -> EffectFacts:
    return EffectFacts("1081", "2026-11", ZONE, items, reviews, events)


def review(n: int, created: str, *, state: str = "open", decided: str | None = None, **kw: Any) -> ReviewFact:
    return ReviewFact(
        id=n,
        work_item_id=n,
        queue=kw.pop("queue", "ronney.application"),
        kind="decision",
        state=state,
        created_at=t(created),
        decided_at=t(decided) if decided else None,
        decision_data=kw.pop("decision_data", None),
        material=kw.pop("material", {}),
        created_in_month=kw.pop("created_in_month", True),
    )


def event(seq: int, action: str, when: str, **details: Any) -> EventFact:
    return EventFact(seq, action, t(when), details)


def item(
    n: int, reference: str, status: str = "done", result: dict[str, Any] | None = None, **payload: Any
) -> ItemFact:
    return ItemFact(n, reference, status, payload, result, t("2026-11-10T01:00"), t("2026-11-10T01:05"))


@pytest.mark.parametrize("robot", [Ronney, Bosse, LenaRobot, Harry])
def test_every_robot_answers_the_four_questions_and_reports_what_it_declares(robot: type[Robot]) -> None:
    decl = robot.effects
    assert decl is not None and robot.validate_class() == []
    assert all(getattr(decl, q).strip() for q in ("why", "value", "when", "how_measured"))
    measured = robot.measure_effects(facts())
    assert set(measured.values) == {m.key for m in decl.measures}
    assert set(measured.outcomes) == {o.key for o in decl.outcomes}
    assert all(o.default_minutes > 0 and "uppskattning" in o.source for o in decl.outcomes)


class TestRonney:
    """Prepared before 07:30, hours to decision, unchanged/changed/rejected, complements; time for decided ones only."""

    SUBMITTED = {"submitted_at": "2026-11-09T14:00:00+01:00"}

    def test_ready_by_is_the_first_0730_after_submission(self) -> None:
        f = facts()
        assert ready_by(t("2026-11-09T14:00"), f) == t("2026-11-10T07:30")
        assert ready_by(t("2026-11-10T05:00"), f) == t("2026-11-10T07:30")
        assert ready_by(t("2026-11-10T07:30"), f) == t("2026-11-11T07:30")

    def test_a_month(self) -> None:
        reviews = (
            review(1, "2026-11-10T02:00", state="approved", decided="2026-11-10T09:00", material=self.SUBMITTED),
            review(2, "2026-11-10T08:15", state="approved", decided="2026-11-10T10:00", material=self.SUBMITTED),
            review(3, "2026-11-10T03:00", state="rejected", decided="2026-11-11T14:00", material=self.SUBMITTED),
            review(4, "2026-11-10T03:00", state="returned", decided="2026-11-10T11:00", material=self.SUBMITTED),
            review(5, "2026-11-10T03:00", material={}),  # no submission time: not in the 07:30 share's basis
        )
        events = (
            event(1, "ronney.decision_written", "2026-11-10T09:01", review_id=1, changed=False),
            event(2, "ronney.decision_written", "2026-11-10T10:01", review_id=2, changed=True),
            event(3, "ronney.decision_written", "2026-11-11T14:01", review_id=3, changed=False),
            event(4, "ronney.decision_written", "2026-11-11T14:02", review_id=3, already_written=True),
            event(5, "ronney.complement_requested", "2026-11-12T01:00", review_id=9),
        )
        m = Ronney.measure_effects(facts(reviews=reviews, events=events))
        assert m.values["prepared_before_0730"] == 75.0 and m.bases["prepared_before_0730"] == 4
        assert m.values["median_hours_to_decision"] == 20.0  # 19, 20 and 48 hours
        assert m.values["decided_unchanged"] == pytest.approx(33.3)
        assert m.values["decided_changed"] == pytest.approx(33.3)
        assert m.values["decided_rejected"] == pytest.approx(33.3)
        assert m.values["complements_chased"] == 1.0
        # A returned proposal saves nothing; a replayed write is not a second decision written.
        assert m.outcomes == {"application_prepared": 3, "decision_written": 3, "complement_chased": 1}

    def test_already_decided_and_waiting_items_save_nothing(self) -> None:
        items = (
            item(1, "A1@v1", result={"application_id": "A1", "already_decided": True}),
            item(2, "A2@v1", result={"application_id": "A2", "waiting_for_complement": True}),
        )
        m = Ronney.measure_effects(facts(items=items))
        assert sum(m.outcomes.values()) == 0 and m.values["median_hours_to_decision"] is None

    def test_a_decision_made_in_the_month_for_an_item_prepared_before_it(self) -> None:
        old = review(
            1,
            "2026-10-31T02:00",
            state="approved",
            decided="2026-11-02T09:00",
            material=self.SUBMITTED | {"submitted_at": "2026-10-30T10:00:00+01:00"},
            decision_data={"lines": [{"key": "rent", "amount": 1}]},
            created_in_month=False,
        )
        m = Ronney.measure_effects(facts(reviews=(old,)))
        assert m.bases["prepared_before_0730"] == 0  # prepared in October
        assert m.values["decided_changed"] == 100.0  # no event this month: the decision data says changed
        assert m.outcomes["application_prepared"] == 1


class TestBosse:
    """Fill rate, minutes to booked, SMS per filled shift, spread of hours; time only for shifts Bosse booked."""

    def test_a_month(self) -> None:
        items = (
            item(1, "PASS-1", result={"status": "prepared"}, shift_id="PASS-1"),
            item(2, "PASS-2", result={"status": "prepared"}, shift_id="PASS-2"),
            item(3, "PASS-3", result={"status": "prepared"}, shift_id="PASS-3"),
            item(4, "PASS-4", result={"status": "booked"}, shift_id="PASS-4"),  # filled before Bosse came
            item(5, "PASS-1/wave-1/2026111007", result={"status": "sent"}),
        )
        opened = "2026-11-09T10:00:00+01:00"
        events = (
            event(
                1,
                "bosse.booked",
                "2026-11-10T08:00",
                shift_id="PASS-1",
                substitute_id="V1",
                via="sms_yes",
                opened_at=opened,
                hours=8,
            ),
            event(
                2,
                "bosse.booked",
                "2026-11-10T08:01",
                shift_id="PASS-1",
                substitute_id="V1",
                via="sms_yes",
                recovered=True,
                opened_at=opened,
                hours=8,
            ),
            event(
                3,
                "bosse.booked",
                "2026-11-10T12:00",
                shift_id="PASS-2",
                substitute_id="V2",
                via="decision",
                opened_at=opened,
                hours=4,
            ),
            *(
                event(10 + n, "external.write", "2026-11-10T07:00", system="sms", what=f"SMS for ref-{n}")
                for n in range(6)
            ),
            event(20, "external.write", "2026-11-10T07:00", system="sms", what="SMS for ref-0"),  # a replay
            event(21, "external.write", "2026-11-10T07:00", system="staffing", what="POST /bookings"),
        )
        m = Bosse.measure_effects(facts(items=items, events=events))
        assert m.values["fill_rate"] == pytest.approx(66.7) and m.bases["fill_rate"] == 3
        assert m.values["median_minutes_to_booked"] == 1440  # 22 h and 26 h after opening
        assert m.values["sms_per_filled_shift"] == 3.0
        assert m.values["hours_spread"] == pytest.approx(0.17)
        assert m.outcomes == {"shift_booked_on_yes": 1, "shift_booked_on_decision": 1}

    def test_no_bookings(self) -> None:
        m = Bosse.measure_effects(facts(items=(item(1, "PASS-1", result={"status": "prepared"}),)))
        assert m.values["fill_rate"] == 0.0 and m.values["sms_per_filled_shift"] is None
        assert m.values["hours_spread"] is None

    def test_gini(self) -> None:
        assert gini([5, 5, 5]) == 0.0
        assert gini([0, 0, 10]) == pytest.approx(0.67)
        assert gini([]) is None and gini([0, 0]) is None


class TestLena:
    """Figures come from published plans only, pooled over the month's plans."""

    PLAN = {
        "kolada": {"median": 3.0, "counts": [2, 3, 9]},
        "kolada_system": {"median": 6.0, "counts": [5, 6, 12]},
        "own_counts": [3, 4],
        "own_counts_system": [6, 8],
        "travel_minutes": 60,
        "care_minutes": 240,
        "lateness_minutes": 5,
        "late_visits": 1,
        "unassigned": 2,
    }

    def test_a_month_of_two_published_plans(self) -> None:
        other = dict(self.PLAN, kolada={"median": 4.0, "counts": [4]}, unassigned=0)
        events = (
            event(1, "lena.plan_published", "2026-11-10T06:00", group="a", date="2026-11-10", effects=self.PLAN),
            event(2, "lena.plan_published", "2026-11-11T06:00", group="a", date="2026-11-11", effects=other),
            event(3, "lena.plan_published", "2026-11-11T06:30", group="a", date="2026-11-11", effects=other),
            event(4, "lena.replan_requested", "2026-11-12T06:00", group="b", date="2026-11-12"),
        )
        m = LenaRobot.measure_effects(facts(events=events))
        assert m.values["kolada_continuity"] == 4.0  # median of 2, 3, 9, 4, 4
        assert m.values["kolada_continuity_system"] == 6.0
        assert m.values["own_continuity"] == 3.5 and m.values["own_continuity_system"] == 7.0
        assert m.values["travel_share"] == 20.0
        assert m.values["unassigned_visits"] == 2.0 and m.values["late_visits"] == 3.0
        assert m.outcomes == {"plan_published": 2}  # the same group's day published twice counts once

    def test_plans_not_published_count_nothing(self) -> None:
        m = LenaRobot.measure_effects(facts())
        assert m.values["kolada_continuity"] is None and m.outcomes == {"plan_published": 0}


class TestHarry:
    """Registered and verified schedules, deviations, days not typed by hand."""

    def test_a_month(self) -> None:
        items = (
            item(1, "S1/v1", result={"outcome": "registered", "rows": 20}),
            item(2, "S2/v1", result={"outcome": "registered", "rows": 10}),
            item(3, "S3/v1", result={"outcome": "already_registered", "rows": 10}),
            item(4, "S4/v1", result={"outcome": "superseded"}),
            item(5, "S5/v1", status="needs_review"),
        )
        reviews = (review(5, "2026-11-10T02:00", queue="harry.deviation"),)
        m = Harry.measure_effects(facts(items=items, reviews=reviews))
        assert m.values == {"schedules_registered": 2.0, "deviations_found": 1.0, "manual_registrations_avoided": 30.0}
        assert m.outcomes == {"schedule_registered": 2}
