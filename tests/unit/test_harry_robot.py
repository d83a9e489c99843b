"""HaRry's robot class without a browser: settings, messages, decisions, the review template."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

import robots.harry
from core.errors import BusinessError, ConfigError
from core.records import ReviewView, WorkItemView
from core.robot import Robot
from core.testing import RecordingContext
from robots.harry.robot import Harry, HarrySettings, invalid_message
from robots.harry.schedule import Row, Schedule, compare, side_by_side, summary_of
from sandbox.scheduling import CSV_COLUMNS

TEMPLATES = Path(robots.harry.__file__).parent / "templates"


def settings(**extra: Any) -> HarrySettings:
    """Valid settings with the password by reference."""
    return HarrySettings.model_validate({"password": {"env": "HARRY_PW"}, **extra})


def render(review: dict[str, Any], material: dict[str, Any]) -> str:
    """Render the review template as the web app would (autoescaped; strict about undefined names)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return env.get_template("review.html").render(review=review, material=material, lang="sv", _=lambda s: s)


def review_dict(**extra: Any) -> dict[str, Any]:
    """The ``review`` context the web app passes."""
    return {
        "id": 7,
        "title": "Schemat för E10001",
        "summary": "1 skillnad(er)",
        "state": "open",
        "kind": "decision",
        "queue": "harry.deviation",
        "created_at": "2026-11-24T02:10:00+01:00",
        **extra,
    }


class TestSettings:
    """The settings model documents and checks every field."""

    def test_valid_plugin(self) -> None:
        assert Harry.validate_class() == []
        assert issubclass(Harry, Robot) and Harry.side_effects_repeatable is False

    def test_defaults(self) -> None:
        s = settings()
        assert (s.contexts, s.api_system, s.drop_folder, s.username) == (3, "scheduling", None, "robot.harry")

    def test_password_only_by_reference(self) -> None:
        with pytest.raises(ValidationError, match="by reference"):
            HarrySettings.model_validate({"password": "hemligt"})

    def test_every_field_is_documented(self) -> None:
        assert all(f.description for f in HarrySettings.model_fields.values())

    def test_nowhere_to_look(self) -> None:
        robot = Harry(settings(api_system=None))

        async def first() -> None:
            async for _ in robot.collect(RecordingContext()):  # type: ignore[arg-type]
                break

        with pytest.raises(ConfigError, match="nowhere to look"):
            asyncio.run(first())


class TestInvalidExports:
    """A schedule from a broken export becomes a business error in plain Swedish."""

    def item(self, payload: dict[str, Any]) -> WorkItemView:
        return WorkItemView(
            id=1,
            robot="harry",
            tenant="0000",
            reference="r",
            payload=payload,
            subject=None,
            attempts=1,
            lease_token="t",
        )

    def test_message(self) -> None:
        payload = {
            "kind": "invalid",
            "employee_id": "E10001",
            "period": "2026-12",
            "version": "1",
            "file": "x.csv",
            "problems": ["rad 3, kolumn start: ogiltigt eller saknat värde"],
        }
        msg = invalid_message(payload)
        assert msg.startswith("Schemat för E10001, period 2026-12 (version 1) i exportfilen x.csv har fel")
        assert "Rätta schemat i schemasystemet" in msg

    def test_process_raises_business_error(self) -> None:
        payload = {"kind": "invalid_file", "file": "x.csv", "problems": ["x.csv is empty"]}
        with pytest.raises(BusinessError, match=r"Exportfilen x\.csv kunde inte läsas"):
            asyncio.run(Harry(settings()).process(RecordingContext(), self.item(payload)))  # type: ignore[arg-type]

    def test_schedule_the_form_cannot_hold_is_refused_before_the_browser(self) -> None:
        rows = [
            Row(date(2026, 12, 4), start, end, 0, "ARB")
            for start, end in (("06:00", "08:00"), ("09:00", "11:00"), ("12:00", "14:00"))
        ]
        payload = Schedule(
            "E10001", "2026-12", date(2026, 12, 1), date(2026, 12, 31), 1, "S", tuple(rows), "csv:x.csv"
        ).payload()
        with pytest.raises(BusinessError) as caught:
            asyncio.run(Harry(settings()).process(RecordingContext(), self.item(payload)))  # type: ignore[arg-type]
        assert str(caught.value) == (
            "Schemat för E10001, period 2026-12 (version 1) kan inte registreras i "
            "PersonalLön: 2026-12-04 har 3 rader; PersonalLön tar emot högst 2 per dag."
        )
        assert caught.value.code == "schedule_unfit"


class TestDecisions:
    """HR's decisions on a deviation are carried out (and audited); others are left to the kernel."""

    def review(self, state: str, queue: str = "harry.deviation") -> ReviewView:
        return ReviewView(
            id=3,
            tenant="0000",
            robot="harry",
            work_item_id=9,
            queue=queue,
            kind="decision",
            title="t",
            material={"reference": "E1/2026-12/v1/abc", "employee_id": "E1", "period": "2026-12", "version": 1},
            subject="199001012383",
            state=state,
            decided_by="user:hr",
            decision_comment=None,
        )

    @pytest.mark.parametrize(
        ("state", "action"),
        [
            ("approved", "harry.registered_by_hand"),
            ("rejected", "harry.registration_rejected"),
            ("returned", "harry.retry_requested"),
        ],
    )
    def test_audited(self, state: str, action: str) -> None:
        ctx = RecordingContext()
        asyncio.run(Harry(settings()).on_decision(ctx, self.review(state)))  # type: ignore[arg-type]
        [event] = ctx.events
        assert event["action"] == action and event["details"]["reference"] == "E1/2026-12/v1/abc"

    @pytest.mark.parametrize(
        ("state", "words"),
        [("approved", "registrerat för hand"), ("rejected", "registreras inte"), ("returned", "registreras på nytt")],
    )
    def test_says_what_was_done_in_swedish(self, state: str, words: str) -> None:
        carried = asyncio.run(Harry(settings()).on_decision(RecordingContext(), self.review(state)))  # type: ignore[arg-type]
        assert carried is not None and words in carried.summary and "2026-12" in carried.summary
        assert "199001012383" not in carried.summary and "/" not in carried.summary

    def test_other_queues_ignored(self) -> None:
        ctx = RecordingContext()
        asyncio.run(Harry(settings()).on_decision(ctx, self.review("approved", "harry.exceptions")))  # type: ignore[arg-type]
        assert ctx.events == []


class TestReviewTemplate:
    """The template shows the approved schedule next to what PersonalLön shows, differences marked."""

    def material(self) -> dict[str, Any]:
        expected = [
            Row(date(2026, 12, 1), "07:00", "16:00", 30, "ARB"),
            Row(date(2026, 12, 2), "07:00", "16:00", 30, "ARB"),
        ]
        shown = [Row(date(2026, 12, 1), "07:00", "17:00", 30, "ARB")]
        diffs = compare(expected, shown)
        return {
            "reference": "E10001/2026-12/v1/abc",
            "employee_id": "E10001",
            "employee_name": "Anna <Test>",
            "period": "2026-12",
            "period_from": "2026-12-01",
            "period_to": "2026-12-31",
            "version": 1,
            "schedule_id": "S",
            "source": "api",
            "approved_at": "2026-11-20T10:00:00+01:00",
            "registration": "R-000001",
            "expected": [r.as_dict() for r in expected],
            "shown": [r.as_dict() for r in shown],
            "differences": [d.as_dict() for d in diffs],
            "lines": side_by_side(expected, shown),
            "screenshot_artifact_id": 42,
            "summary": summary_of(diffs),
        }

    def test_deviation(self) -> None:
        html = render(review_dict(), self.material())
        assert "Godkänt i schemasystemet" in html and "Visas i PersonalLön" in html
        assert "<mark>17:00</mark>" in html and "<mark>16:00</mark>" in html
        assert "saknas i PersonalLön" in html
        # Without the web app's artifact_url nobody gets a URL: the screenshot is only mentioned.
        assert "bilaga 42" in html and "visas bara för behöriga roller" in html and "<img" not in html
        assert "Anna &lt;Test&gt;" in html  # escaped
        assert "<button" not in html and "<form" not in html
        assert "registrerat för hand" in html

    def test_screenshot_url_from_the_web_app(self) -> None:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
        html = env.get_template("review.html").render(
            review=review_dict(),
            material=self.material(),
            lang="sv",
            _=lambda s: s,
            artifact_url=lambda i: f"/x/{i}.png",
        )
        assert 'data-artifact-id="42"' in html and 'src="/x/42.png"' in html
        html = env.get_template("review.html").render(
            review=review_dict(), material=self.material(), lang="sv", _=lambda s: s, artifact_url=lambda i: None
        )
        assert "<img" not in html and "visas bara för behöriga roller" in html

    def test_exception_leaves_its_artifacts_to_the_page(self) -> None:
        # The web app lists a problem report's attachments under the material, for the roles that may see them.
        material = {
            "reference": "E1/2026-12/v1/abc",
            "error_code": "period_locked",
            "error": "låst",
            "artifacts": [5, 6],
        }
        html = render(review_dict(kind="exception", queue="harry.exceptions"), material)
        assert "Schemat kunde inte registreras" in html and "låst" in html and "E1/2026-12/v1/abc" in html
        assert "visas nedan för de roller som får se dem" in html and "href" not in html
        assert "period_locked" not in html

    def test_exception_and_uncertain(self) -> None:
        material = {
            "reference": "E1/2026-12/v1/abc",
            "error_code": "period_locked",
            "error": "Perioden 2026-12-01–2026-12-31 är låst i PersonalLön",
        }
        html = render(review_dict(kind="exception", queue="harry.exceptions"), material)
        assert "Schemat kunde inte registreras" in html and "är låst i PersonalLön" in html
        html = render(review_dict(kind="uncertain", queue="harry.exceptions"), material)
        assert "Osäkert om schemat blev sparat" in html and "Skicka tillbaka" in html


class TestCheckExportCommand:
    """``kollega harry check-export FILE``."""

    def test_reports_schedules_and_broken(self, tmp_path: Path) -> None:
        pnr = "199001012383"
        lines = [
            ";".join(CSV_COLUMNS),
            f"E10001;{pnr};SCH-1;1;2026-12;2026-12-01;07:00;16:00;30;ARB;",
            f"E10002;{pnr};SCH-2;1;2026-12;2026-12-01;07:00;16:00;30;;",
        ]
        path = tmp_path / "export.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        app = Harry(HarrySettings.model_construct()).cli()
        assert app is not None
        result = CliRunner().invoke(app, ["check-export", str(path)])
        assert result.exit_code == 1
        assert "1 scheman, 1 med fel" in result.output and "E10001/2026-12/v1/" in result.output
        assert "kolumn activity_code" in result.output and pnr not in result.output
