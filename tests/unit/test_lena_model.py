"""Lena's routing model: validation names every inconsistency; travel sources; break windows; homecare JSON."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from robots.lena.comments import apply_changes, parse_comment
from robots.lena.homecare import assignments_of, from_minutes, plan_body, to_minutes, to_problem
from robots.lena.model import (
    BreakRule,
    EuclideanTravelTimes,
    HaversineTravelTimes,
    Location,
    Lock,
    MatrixTravelTimes,
    ModelError,
    Plan,
    Problem,
    Route,
    Stop,
    Sync,
    TravelTimeSource,
    Unassigned,
)
from robots.lena.samples import day, member, problem, visit


def problems_of(p: Problem) -> list[str]:
    with pytest.raises(ModelError) as info:
        p.validate()
    return info.value.problems


class TestValidation:
    """Every inconsistent field is reported, all at once, in plain words."""

    def test_sample_day_is_valid(self) -> None:
        day().validate()

    @pytest.mark.parametrize(
        ("change", "words"),
        [
            ({"earliest": 600, "latest": 500}, "window ends"),
            ({"earliest": -5}, "negative"),
            ({"duration": 0}, "duration 0 must be positive"),
            ({"staff_count": 3}, "staff count 3"),
            ({"staff_count": 2, "sync": None}, "no synchronisation"),
            ({"sync": Sync()}, "synchronisation given for a visit with one"),
            ({"second_competences": frozenset({"x"})}, "second-person competences"),
            ({"staff_count": 2, "sync": Sync("sequential", 30, 10)}, "not a valid range"),
            ({"staff_count": 2, "sync": Sync("sequential", 90, 120)}, "shorter than the minimum gap"),
            ({"staff_count": 2, "sync": Sync("simultaneous", 5, 10)}, "gaps given for simultaneous"),
            ({"staff_count": 2, "sync": Sync("together", 0, 0)}, "unknown synchronisation"),  # type: ignore[arg-type]
            ({"locked": Lock("A", 300)}, "locked start 300 is outside"),
            ({"locked": Lock("")}, "empty staff id"),
            ({"client_id": ""}, "no client"),
            ({"load": -1}, "load -1"),
        ],
    )
    def test_visit_problems(self, change: dict, words: str) -> None:
        v = replace(visit("V1", 1, 1, 480, 540), **change)
        found = problems_of(problem([v], [member("A")]))
        assert any(words in p for p in found), found

    @pytest.mark.parametrize(
        ("change", "words"),
        [
            ({"shift_start": 600, "shift_end": 500}, "shift ends"),
            ({"shift_start": -1}, "negative"),
            ({"travel_mode": "boat"}, None),  # Euclidean travel knows every mode
            ({"capacity": -3}, "capacity -3"),
            ({"break_rule": BreakRule(30, 720, 600)}, "break window ends before"),
            ({"break_rule": BreakRule(30, 600, 620)}, "shorter than the break"),
            ({"break_rule": BreakRule(-5, 600, 700)}, "negative"),
            ({"break_rule": BreakRule(30, 420, 480)}, "no break of 30"),  # too early for a 9-hour shift
            ({"break_rule": BreakRule(30, 600, 700, 0)}, "must be positive"),
        ],
    )
    def test_staff_problems(self, change: dict, words: str | None) -> None:
        p = problem([visit("V1", 1, 1, 480, 540)], [replace(member("A"), **change)])
        if words is None:
            p.validate()
        else:
            found = problems_of(p)
            assert any(words in x for x in found), found

    def test_unknown_travel_mode_for_a_geographic_source(self) -> None:
        p = replace(
            problem([visit("V1", 15.3, 56.2, 480, 540)], [member("A", mode="boat")]), travel=HaversineTravelTimes()
        )
        assert any("unknown travel mode 'boat'" in x for x in problems_of(p))

    def test_duplicates_and_empty_ids(self) -> None:
        p = problem(
            [visit("V1", 1, 1, 480, 540), visit("V1", 2, 2, 480, 540), visit("", 1, 1, 480, 540)],
            [member("A"), member("A")],
        )
        found = problems_of(p)
        assert "visit V1: the id occurs more than once" in found
        assert "staff A: the id occurs more than once" in found
        assert "visit: an empty id" in found

    def test_all_problems_reported_together(self) -> None:
        p = problem(
            [replace(visit("V1", 1, 1, 480, 540), duration=0), replace(visit("V2", 1, 1, 480, 540), earliest=600)],
            [member("A", start=900, end=800)],
            max_lateness=-1,
        )
        found = problems_of(p)
        assert len(found) == 4
        assert "max_lateness -1 is negative" in found

    def test_not_a_travel_source(self) -> None:
        p = replace(day(), travel=object())  # type: ignore[arg-type]
        assert any("not a travel-time source" in x for x in problems_of(p))

    def test_lock_to_someone_off_duty_is_not_a_model_error(self) -> None:
        problem([visit("V1", 1, 1, 480, 540, locked=Lock("Z", 500))], [member("A")]).validate()


class TestBreakWindow:
    """The break window combines the rule's window with 'no more than 5 h without a break'."""

    def test_window_narrowed_by_the_five_hour_rule(self) -> None:
        s = member("A", 420, 960, brk=(30, 600, 720))  # 07-16, break inside 10:00-12:00
        assert s.break_window() == (630, 690)  # start ≥ 16:00-5h-30min, start ≤ 12:00-30min

    def test_short_shift_needs_no_break(self) -> None:
        s = member("A", 420, 700, brk=(30, 500, 600))
        assert not s.needs_break() and s.break_window() is None


class TestTravel:
    """Travel-time sources round up and agree on the protocol."""

    def test_euclidean_rounds_up(self) -> None:
        m = EuclideanTravelTimes(1.0).matrix([Location(0, 0), Location(3, 4), Location(1, 1)], "car")
        assert m[0][1] == 5 and m[0][2] == 2 and m[1][1] == 0

    def test_haversine_speed_detour_and_parking(self) -> None:
        src = HaversineTravelTimes()
        a, b = Location(15.28, 56.21), Location(15.28, 56.22)  # 1.11 km north
        car, walk = src.matrix([a, b], "car")[0][1], src.matrix([a, b], "walk")[0][1]
        assert car == 5  # 1.11 km × 1.3 at 40 km/h = 2.2 min, + 2 min to park, rounded up
        assert walk == 18  # 1.45 km at 5 km/h = 17.3 min
        assert src.matrix([a, a], "car")[0][1] == 0

    def test_matrix_source_by_key(self) -> None:
        src = MatrixTravelTimes.single(["d", "p1"], [[0, 1.5], [2.25, 0]], scale=2)
        assert src.matrix([Location(key="p1"), Location(key="d")], "any") == [[0, 5], [3, 0]]
        with pytest.raises(KeyError):
            src.matrix([Location(key="nope")], "any")

    def test_sources_satisfy_the_protocol(self) -> None:
        for src in (EuclideanTravelTimes(), HaversineTravelTimes(), MatrixTravelTimes.single(["a"], [[0]])):
            assert isinstance(src, TravelTimeSource)


class TestPlanAndComments:
    """Plans list assignments per visit; the coordinator's comment becomes locks and absences."""

    def test_assignments_roles_in_order(self) -> None:
        plan = Plan(
            (Route("B", (Stop("V3", 540, 1),)), Route("A", (Stop("V3", 540, 0),))),
            (Unassigned("V9", "capacity", "full"),),
        )
        assert plan.assignments() == {"V3": [("A", 540, 0), ("B", 540, 1)]}
        assert plan.route("A") is not None and plan.route("Z") is None

    def test_parse_comment(self) -> None:
        c = parse_comment("Lås V1 till B kl 07:45\nsjuk A\ntillåt sen ankomst 20 min\nRing Kalle först.")
        assert c.locks == {"V1": Lock("B", 465)} and c.absent == {"A"} and c.max_lateness == 20
        assert c.notes == ("Ring Kalle först.",) and not c.is_empty()
        assert parse_comment(None).is_empty()

    def test_apply_changes_reports_what_cannot_be_done(self) -> None:
        changed, notes = apply_changes(
            day(), parse_comment("lås V4 B 12:10\nlås V99 A\nlås V2 Z\nfrånvarande Q\nlås V7 A 06:00")
        )
        assert changed.visit("V4").locked == Lock("B", 730)
        assert changed.visit("V7").locked == Lock("A")  # outside the window: kept to the person only
        assert len(notes) == 4
        gone, _ = apply_changes(day(), parse_comment("frånvarande A"))
        assert [s.id for s in gone.staff] == ["B"]


class TestHomecareJson:
    """The home-care API's JSON becomes a model (minutes of real time since local midnight) and back."""

    VISIT = {
        "id": "VIS-1",
        "client_id": "K1",
        "earliest_start": "2026-11-24T07:00+01:00",
        "latest_start": "2026-11-24T09:30+01:00",
        "duration_minutes": 30,
        "competences": ["undersköterska"],
        "staff_count": 2,
        "sync": {"type": "sequential", "min_gap_minutes": 0, "max_gap_minutes": 30},
        "locked": None,
        "preferred_staff": ["S001"],
        "contact_person": "S001",
        "lat": 56.2,
        "lon": 15.3,
        "activity": "Morgonhjälp",
    }
    STAFF = {
        "id": "S001",
        "first_name": "Anna",
        "last_name": "A",
        "competences": ["undersköterska"],
        "travel_mode": "bike",
        "shift": {"start": "2026-11-24T07:00+01:00", "end": "2026-11-24T16:00+01:00"},
        "break": {
            "minutes": 30,
            "earliest": "2026-11-24T10:00+01:00",
            "latest": "2026-11-24T12:00+01:00",
            "max_work_without_break_minutes": 300,
        },
        "start_location": {"lat": 56.21, "lon": 15.28},
        "end_location": {"lat": 56.21, "lon": 15.28},
    }

    def test_to_problem(self) -> None:
        p = to_problem(
            date(2026, 11, 24),
            [self.VISIT],
            [self.STAFF, {**self.STAFF, "id": "S002"}],
            [{"date": "2026-11-20", "client_id": "K1", "staff_ids": ["S002"]}],
        )
        v, s = p.visit("VIS-1"), p.member("S001")
        assert (v.earliest, v.latest, v.sync) == (420, 570, Sync("sequential", 0, 30))
        assert (s.shift_start, s.shift_end, s.travel_mode, s.name) == (420, 960, "bike", "Anna A")
        assert s.break_rule == BreakRule(30, 600, 720, 300)

    def test_bad_json_is_a_model_error(self) -> None:
        with pytest.raises(ModelError) as info:
            to_problem(date(2026, 11, 24), [{**self.VISIT, "lat": None}, {"id": "X"}], [])
        assert len(info.value.problems) == 2

    def test_dst_days_count_real_minutes(self) -> None:
        autumn = date(2026, 10, 25)  # 25 hours long
        assert to_minutes(autumn, "2026-10-25T07:00+01:00") == 8 * 60
        assert from_minutes(autumn, 8 * 60).isoformat() == "2026-10-25T07:00:00+01:00"
        assert to_minutes(date(2026, 3, 29), "2026-03-29T07:00+02:00") == 6 * 60

    def test_plan_body_and_read_back(self) -> None:
        p = day()
        plan = Plan(
            (Route("A", (Stop("V5", 780, 0), Stop("V6", 660, 0))), Route("B", (Stop("V5", 800, 1),))),
            (Unassigned("V1", "capacity", "full"),),
        )
        body = plan_body(p, plan, day=date(2026, 11, 24), group="g", published_by="Lena", idempotency_key="k")
        v5 = next(a for a in body["assignments"] if a["visit_id"] == "V5")
        assert v5["staff_ids"] == ["A", "B"] and v5["starts"] == ["2026-11-24T13:00+01:00", "2026-11-24T13:20+01:00"]
        assert body["unassigned"] == [{"visit_id": "V1", "reason": "full"}]
        assert assignments_of(body)["V6"] == ["A"]
