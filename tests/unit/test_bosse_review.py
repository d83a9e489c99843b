"""The coordinators' review of an unfilled shift: the material and its template (review.html)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
import pytest
from jinja2.sandbox import SandboxedEnvironment

from core.scheduler import load_schedules
from core.settings import PROJECT_ROOT
from core.web.i18n import robot_translator
from robots.bosse.history import ReplyStats
from robots.bosse.ledger import build_ledger
from robots.bosse.material import QUEUE, review_material, review_summary, review_title
from robots.bosse.messages import MessageKind, Reference, message_text
from robots.bosse.planning import close_at, evaluate_shift
from robots.bosse.records import ShiftInfo, SubstituteInfo
from robots.bosse.robot import Bosse
from robots.bosse.rules import STOCKHOLM, BosseRules, Interval
from robots.bosse.settings import BosseSettings

TEMPLATES = PROJECT_ROOT / "robots" / "bosse" / "templates"


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM).astimezone(UTC)


SHIFT = ShiftInfo(
    id="PASS-20261124-001",
    code="P101",
    unit="Solgården",
    unit_kind="äldreboende",
    name="dag",
    start=local("2026-11-24T07:00"),
    end=local("2026-11-24T16:00"),
    hours=9.0,
    qualifications=("undersköterska",),
    medication_delegation=True,
    reason="sjukfrånvaro",
    deadline=local("2026-11-24T05:00"),
)
DAY = (Interval(local("2026-11-24T06:00"), local("2026-11-24T18:00")),)


def person(sub_id: str, name: str, **kw: Any) -> SubstituteInfo:
    base: dict[str, Any] = {
        "id": sub_id,
        "first_name": name,
        "last_name": "Testsson",
        "phone": f"+4670174060{sub_id[-1]}",
        "personnummer": None,
        "qualifications": ("undersköterska",),
        "medication_delegation": True,
        "available": DAY,
        "hours_by_month": {"2026-11": 40.0},
    }
    return SubstituteInfo(**{**base, **kw})


PEOPLE = {
    p.id: p
    for p in [
        person("V1", "Anna", priority_right=True),
        person("V2", "Britt", hours_by_month={"2026-11": 20.0}),
        person("V3", "<script>alert(1)</script>"),
        person("V4", "Cecilia", qualifications=("vårdbiträde",), medication_delegation=False),
        person("V5", "Doris", available=()),
    ]
}


def material(**kw: Any) -> dict[str, Any]:
    evaluation = evaluate_shift(SHIFT, PEOPLE.values(), BosseRules())
    text = message_text(MessageKind.offer, SHIFT)
    sent = [
        {
            "id": f"S{i}",
            "reference": str(Reference("1081", SHIFT.id, MessageKind.offer, sub, 1)),
            "to": PEOPLE[sub].phone,
            "text": text,
            "status": "delivered",
            "created_at": local("2026-11-23T07:00").isoformat(),
        }
        for i, sub in enumerate(("V1", "V2"))
    ]
    inbound = [
        {
            "id": "IN-1",
            "from": PEOPLE["V1"].phone,
            "text": "Nej P101, mvh Anna",
            "received_at": (local("2026-11-23T07:00") + timedelta(minutes=4)).isoformat(),
            "in_reply_to": "S0",
        }
    ]
    ledger = build_ledger("1081", sent, inbound).of(SHIFT.id)
    return review_material(
        SHIFT,
        evaluation,
        ledger,
        PEOPLE,
        reason="deadline",
        reason_text="passet är inte tillsatt vid sista tidpunkten för erbjudanden",
        **kw,
    )


def render(material: dict[str, Any], review: dict[str, Any] | None = None, lang: str = "sv") -> str:
    # As the web app renders it (core/web/inbox.py): sandboxed and autoescaping.
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    review = review or {
        "id": 1,
        "title": "t",
        "summary": "s",
        "state": "open",
        "kind": "decision",
        "queue": QUEUE,
        "created_at": datetime(2026, 11, 23, 19, 45, tzinfo=UTC),
    }
    return env.get_template(Bosse.review_template or "").render(
        review=review, material=material, lang=lang, _=robot_translator(Bosse, lang)
    )


class TestMaterial:
    """Ranked candidates with why and how they answered, the excluded with every reason, the history."""

    def test_contents(self) -> None:
        m = material()
        assert [e["id"] for e in m["eligible"]] == ["V1", "V2", "V3"]
        assert m["eligible"][0]["why"].startswith("företrädesrätt")
        assert m["eligible"][0]["status"] == "omgång 1: svarade NEJ"
        assert m["eligible"][1]["status"] == "omgång 1: inget svar"
        assert m["eligible"][2]["status"] == "inte erbjuden"
        assert {p["id"]: p["reasons"] for p in m["ineligible"]} == {
            "V4": ["saknar kvalifikation undersköterska (passets krav)", "saknar läkemedelsdelegering (passets krav)"],
            "V5": ["ingen anmäld tillgänglighet under passet (vikariens anmälda tillgänglighet)"],
        }
        # Proposal: nobody said yes; the best ranked who did not say no.
        assert (m["proposed"], m["proposed_name"]) == ("V2", "Britt Testsson")
        assert [(e["kind"], e["substitute_id"]) for e in m["history"]] == [
            ("offer", "V1"),
            ("offer", "V2"),
            ("reply", "V1"),
        ]
        assert m["history"][0]["at"] == "2026-11-23T07:00+01:00"
        assert "+4670" not in str(m)  # no phone numbers in the material

    def test_title_and_summary(self) -> None:
        m = material()
        assert review_title(SHIFT) == "Obemannat pass P101: Solgården, tis 24/11 07:00–16:00"
        assert review_summary(m) == (
            "Passet är inte tillsatt vid sista tidpunkten för erbjudanden. 3 behöriga, "
            "2 har fått erbjudande, 1 har tackat nej. Förslag: Britt Testsson (V2)."
        )

    def test_late_yes_is_proposed(self) -> None:
        m = material(late_yes="V3")
        assert m["proposed"] == "V3"
        assert review_title(SHIFT, late_yes="V3").startswith("Sent ja från V3 för pass P101")


class TestReplyHistory:
    """Each candidate is shown with how they answered Bosse's offers in the last 90 days."""

    HISTORY = {"V1": ReplyStats(offers=7, answered=5, yes=3, minutes=(4.0, 10.0, 12.0, 30.0, 50.0))}

    def test_material_and_text(self) -> None:
        m = material(history=self.HISTORY)
        replies = {e["id"]: e["replies"] for e in m["eligible"]}
        assert replies["V1"] == {
            "days": 90,
            "asked": 7,
            "yes": 3,
            "unanswered": 2,
            "usual_minutes": 12,
            "text": "Svarat ja på 3 av 7 förfrågningar de senaste 90 dagarna (2 obesvarade; svarar oftast inom 12 min)",
        }
        assert replies["V2"]["text"] == "Inga förfrågningar från Bosse de senaste 90 dagarna"
        assert replies["V2"]["asked"] == 0

    def test_shown_in_swedish_and_english(self) -> None:
        m = material(history=self.HISTORY)
        sv = render(m)
        assert "Svarshistorik" in sv
        assert "Svarat ja på 3 av 7 förfrågningar de senaste 90 dagarna (2 obesvarade; svarar oftast inom 12 min)" in sv
        assert "Inga förfrågningar från Bosse de senaste 90 dagarna" in sv
        en = render(m, lang="en")
        assert "Reply history" in en
        assert "Said yes to 3 of 7 requests in the last 90 days (2 unanswered; usually answers within 12 min)" in en
        assert "No requests from Bosse in the last 90 days" in en


class TestTemplate:
    """An HTML fragment in Swedish, without decision buttons, explaining every place in the list."""

    def test_renders_the_explainable_list(self) -> None:
        html = render(material())
        assert "<section" in html and "<html" not in html and "<body" not in html
        assert "<button" not in html and "<form" not in html
        for text in (
            "Passet P101",
            "Solgården",
            "2026-11-24 07:00–16:00",
            "läkemedelsdelegering",
            "Bosses förslag",
            "Britt Testsson",
            "företrädesrätt",
            "40 h bokade denna månad",
            "omgång 1: svarade NEJ",
            "saknar kvalifikation undersköterska",
            "ingen anmäld tillgänglighet under passet",
            "SMS-historik",
            "Nej P101, mvh Anna",
            "Godkänn",
            "Returnera",
            "Avslå",
        ):
            assert text in html, text

    def test_escapes_what_people_typed(self) -> None:
        html = render(material())
        assert "<script>" not in html and "&lt;script&gt;" in html

    def test_exception_items_render_too(self) -> None:
        exc = {"reference": "PASS-1/wave-1/2026112307", "error_code": "http_503", "error": "staffing answered 503"}
        html = render(
            exc,
            {
                "id": 2,
                "title": "Tekniskt fel",
                "summary": "s",
                "state": "open",
                "kind": "exception",
                "queue": "bosse.exceptions",
                "created_at": "2026-11-23T07:00",
            },
        )
        assert "staffing answered 503" in html and "PASS-1/wave-1/2026112307" in html


class TestRobotClass:
    """The plugin contract: a valid robot with documented settings."""

    def test_valid(self) -> None:
        assert Bosse.validate_class() == []
        assert (Bosse.name, Bosse.display_name, Bosse.review_template) == ("bosse", "Bosse", "review.html")
        assert (TEMPLATES / "review.html").is_file()

    def test_every_setting_is_documented(self) -> None:
        for name, field in BosseSettings.model_fields.items():
            assert field.description, name
        for name, field in BosseRules.model_fields.items():
            assert field.description, name

    def test_settings_validate(self) -> None:
        with pytest.raises(ValueError, match="quiet_hours"):
            BosseSettings(quiet_hours_start="07:00", quiet_hours_end="07:00")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            BosseSettings.model_validate({"wave_size": 0})
        s = BosseSettings.model_validate({"rules": {"min_daily_rest_hours": 9}, "quiet_hours_start": "22:00"})
        assert s.rules.min_daily_rest_hours == 9 and s.quiet_hours_start.hour == 22

    def test_documented_in_docs(self) -> None:
        doc = (PROJECT_ROOT / "docs" / "robots" / "bosse.md").read_text(encoding="utf-8")
        for name in BosseSettings.model_fields:
            assert f"`{name}`" in doc, name


class TestSchedules:
    """The shipped schedules: prepare at night, offers and replies every five minutes in the day."""

    def schedules(self) -> dict[str, Any]:
        found = load_schedules(PROJECT_ROOT / "schedules", robots=None, tenants={"0000"})
        return {s.name: s for s in found if s.robot == "bosse"}

    def test_load(self) -> None:
        s = self.schedules()
        assert set(s) == {"bosse-night", "bosse-replies"}
        assert (s["bosse-night"].cron, s["bosse-night"].calendar) == ("15 0 * * *", "all")
        assert (s["bosse-replies"].cron, s["bosse-replies"].catch_up) == ("*/5 7-20 * * *", False)

    def test_replies_run_only_outside_the_default_quiet_hours_and_late_enough(self) -> None:
        from robots.bosse.planning import in_quiet_hours

        settings = BosseSettings()
        for hour in range(7, 21):
            for minute in range(0, 60, 5):
                assert not in_quiet_hours(
                    local(f"2026-11-23T{hour:02d}:{minute:02d}"), settings.quiet_hours_start, settings.quiet_hours_end
                )
        # The last run (20:55) comes after the moment shifts early next morning are handed over.
        assert close_at(SHIFT, settings) <= local("2026-11-23T20:55")

    def test_files_are_commented_like_the_example(self) -> None:
        for name in ("bosse-night", "bosse-replies"):
            text = (PROJECT_ROOT / "schedules" / f"{name}.toml").read_text(encoding="utf-8")
            assert text.startswith("# ") and tomllib.loads(text)["robot"] == "bosse"
