"""The review material and template, the robot class and its settings (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from robots.lena.continuity import distinct_staff, summary
from robots.lena.metrics import evaluate
from robots.lena.model import Plan, Route, Stop, Unassigned
from robots.lena.report import build_view, hhmm, plan_from_dict, plan_to_dict
from robots.lena.robot import LenaRobot, LenaSettings
from robots.lena.samples import day
from tests.unit.test_lena_check import plan as hand_made

TEMPLATES = Path(__file__).resolve().parents[2] / "robots" / "lena" / "templates"


def render(material: dict) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    review = {
        "id": 1,
        "title": "Hemtjänstplan",
        "summary": "",
        "state": "open",
        "kind": "decision",
        "queue": "lena.plan",
        "created_at": None,
    }
    return env.get_template("review.html").render(review=review, material=material, lang="sv", _=lambda s: s)


class TestView:
    """What the coordinator sees: warnings first, days, continuity against the system's plan."""

    def test_view_of_the_hand_made_plan(self) -> None:
        p = day()
        plan = hand_made()
        view = build_view(
            p,
            plan,
            evaluate(p, plan),
            baseline={"V1": ["B"], "V4": ["B"]},
            notes=["Samordnarens kommentar: ring först"],
        )
        assert view["warnings"][0]["kind"] == "comment"
        assert view["totals"]["assigned"] == 8 and view["totals"]["unassigned"] == 0
        a = next(d for d in view["staff"] if d["id"] == "A")
        assert [r["kind"] for r in a["rows"]] == ["visit", "visit", "visit", "break", "visit", "visit"]
        assert a["rows"][3]["time"] == "11:15–11:45"
        k1 = next(c for c in view["continuity"] if c["client_id"] == "K1")
        assert k1["staff_today"] == ["A"] and k1["contact_today"] is True
        assert (k1["distinct"], k1["distinct_baseline"]) == (1, 2)

    def test_unassigned_and_tight_break_are_warned(self) -> None:
        p = day()
        rows = hand_made()
        plan = Plan(
            tuple(
                Route(r.staff_id, tuple(s for s in r.stops if s.visit_id != "V7"), r.break_start) for r in rows.routes
            ),
            (Unassigned("V7", "capacity", "Ingen hinner"),),
        )
        view = build_view(p, plan, evaluate(p, plan))
        kinds = [w["kind"] for w in view["warnings"]]
        assert kinds[0] == "unassigned" and "tight_break" in kinds  # B's break is followed by exactly the trip
        assert view["unassigned"] == [
            {"visit_id": "V7", "client_id": "K3", "activity": "", "window": "14:30–15:00", "reason": "Ingen hinner"}
        ]
        assert view["totals"]["continuity_mean_baseline"] is None

    def test_template_renders_swedish_without_buttons(self) -> None:
        p = day()
        plan = hand_made()
        html = render(
            {
                "group": "g",
                "group_name": "Hemtjänst Centrum",
                "date": "2026-11-24",
                "view": build_view(p, plan, evaluate(p, plan), baseline={}),
            }
        )
        for heading in ("Att se över", "Sammanfattning", "Personalens dagar", "Kontinuitet per brukare"):
            assert heading in html
        assert "Hemtjänst Centrum" in html and "<button" not in html and "<form" not in html

    def test_template_survives_empty_material(self) -> None:
        assert "Personalens dagar" in render({})

    def test_template_escapes(self) -> None:
        p = day()
        plan = hand_made()
        html = render({"group_name": "<script>x</script>", "view": build_view(p, plan, evaluate(p, plan))})
        assert "<script>x" not in html


class TestPlanData:
    """A plan survives the trip through the review material."""

    def test_round_trip(self) -> None:
        plan = Plan((Route("A", (Stop("V1", 450), Stop("V3", 540, 1)), 675),), (Unassigned("V2", "c", "r"),))
        assert plan_from_dict(plan_to_dict(plan)) == plan
        assert hhmm(7 * 60 + 5) == "07:05"

    def test_continuity_counts_people_over_history_and_tomorrow(self) -> None:
        p = day()
        counts = distinct_staff(p, {"V1": ["B"], "V4": ["A"]})
        assert counts["K1"] == 2  # A from the history, B tomorrow
        assert summary(p, {"V1": ["A"]})["new_face_visits"] == 0


class TestRobotClass:
    """The robot plugin and its documented settings."""

    def test_valid_plugin(self) -> None:
        assert LenaRobot.validate_class() == []
        assert (LenaRobot.name, LenaRobot.review_template) == ("lena", "review.html")
        assert LenaRobot.effects is not None and LenaRobot().cli() is not None

    def test_every_setting_documented(self) -> None:
        for name, field in LenaSettings.model_fields.items():
            assert field.description, name

    def test_settings_validated(self) -> None:
        with pytest.raises(ValidationError):
            LenaSettings(time_limit_seconds=0)
        with pytest.raises(ValidationError):
            LenaSettings.model_validate({"unknown": 1})
        opts = LenaSettings(continuity_new_face=40, allow_lateness=True).solver_options()
        assert opts.weights.continuity.new_face == 40 and opts.time_limit == 60
