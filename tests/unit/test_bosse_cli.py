"""``kollega bosse match FILE [--json]``: the contract of issue 5 item 3, through the typer app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from robots.bosse.cli import make_app
from robots.bosse.robot import Bosse
from robots.bosse.rules import BosseRules
from tests.unit.test_bosse_rules import ISSUE_REASON

#: The example input of issue 5, item 3.
ISSUE_EXAMPLE: dict[str, Any] = {
    "shift": {
        "id": "s1",
        "start": "2026-12-01T07:00",
        "end": "2026-12-01T16:00",
        "qualifications": ["undersköterska"],
        "medication_delegation": True,
        "driving_licence": False,
    },
    "substitutes": [
        {
            "id": "v1",
            "qualifications": ["undersköterska"],
            "medication_delegation": True,
            "driving_licence": True,
            "available": [{"start": "2026-12-01T06:00", "end": "2026-12-01T18:00"}],
            "bookings": [{"start": "2026-11-30T13:00", "end": "2026-11-30T21:30"}],
            "hours_this_month": 120,
            "max_hours_month": 165,
            "priority_right": False,
        }
    ],
}


def _sub(sub_id: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": sub_id,
        "qualifications": ["undersköterska"],
        "medication_delegation": True,
        "available": [{"start": "2026-12-01T06:00", "end": "2026-12-01T18:00"}],
        "hours_this_month": 100,
    }
    return {**base, **kw}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _write(tmp_path: Path, data: object, name: str = "in.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


class TestMatchJson:
    """With --json the output is exactly {"eligible": [{id, rank, why}], "ineligible": [{id, reasons}]}."""

    def test_issue_example(self, runner: CliRunner, tmp_path: Path) -> None:
        result = runner.invoke(make_app(), ["match", str(_write(tmp_path, ISSUE_EXAMPLE)), "--json"])
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert set(out) == {"eligible", "ineligible"}
        # 2026-11-30 21:30 to 2026-12-01 07:00 is 9.5 h of rest: v1 fails dygnsvila.
        assert out["eligible"] == []
        assert out["ineligible"] == [{"id": "v1", "reasons": [ISSUE_REASON]}]

    def test_ranked_with_why_and_ineligible_with_every_reason(self, runner: CliRunner, tmp_path: Path) -> None:
        data = {
            "shift": {**ISSUE_EXAMPLE["shift"], "unit": "Solgården"},
            "substitutes": [
                _sub("v3", hours_this_month=40),
                _sub("v1", hours_this_month=120, priority_right=True),
                _sub("v2", hours_this_month=40, preferred_units=["Solgården"]),
                _sub("v4", qualifications=[], medication_delegation=False, available=[]),
            ],
        }
        result = runner.invoke(make_app(), ["match", str(_write(tmp_path, data)), "--json"])
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert [(e["id"], e["rank"]) for e in out["eligible"]] == [("v1", 1), ("v2", 2), ("v3", 3)]
        assert out["eligible"][0]["why"].startswith("företrädesrätt")
        assert "önskar enheten Solgården" in out["eligible"][1]["why"]
        assert set(out["eligible"][0]) == {"id", "rank", "why"}
        (v4,) = out["ineligible"]
        assert v4["id"] == "v4"
        assert v4["reasons"] == [
            "saknar kvalifikation undersköterska (passets krav)",
            "saknar läkemedelsdelegering (passets krav)",
            "ingen anmäld tillgänglighet under passet (vikariens anmälda tillgänglighet)",
        ]

    def test_stdin(self, runner: CliRunner) -> None:
        result = runner.invoke(make_app(), ["match", "-", "--json"], input=json.dumps(ISSUE_EXAMPLE))
        assert result.exit_code == 0
        assert json.loads(result.stdout)["ineligible"][0]["id"] == "v1"

    def test_rule_thresholds_come_from_the_robot_settings(self, runner: CliRunner, tmp_path: Path) -> None:
        lenient = make_app(BosseRules(min_daily_rest_hours=9))
        result = runner.invoke(lenient, ["match", str(_write(tmp_path, ISSUE_EXAMPLE)), "--json"])
        assert [e["id"] for e in json.loads(result.stdout)["eligible"]] == ["v1"]

    def test_the_robot_mounts_the_same_app(self, runner: CliRunner, tmp_path: Path) -> None:
        app = Bosse(Bosse.settings_model.model_construct()).cli()
        result = runner.invoke(app, ["match", str(_write(tmp_path, ISSUE_EXAMPLE)), "--json"])
        assert result.exit_code == 0
        assert json.loads(result.stdout)["ineligible"][0]["id"] == "v1"


class TestMatchText:
    """Without --json the result is printed for people, in Swedish."""

    def test_readable(self, runner: CliRunner, tmp_path: Path) -> None:
        data = {"shift": ISSUE_EXAMPLE["shift"], "substitutes": [_sub("v2"), ISSUE_EXAMPLE["substitutes"][0]]}
        result = runner.invoke(make_app(), ["match", str(_write(tmp_path, data))])
        assert result.exit_code == 0
        assert "1 behöriga, 1 ej behöriga" in result.stdout
        assert "1. v2: ingen företrädesrätt; 100 h bokade denna månad" in result.stdout
        assert "- dygnsvila 9,5 h före passet, minst 11 h krävs" in result.stdout  # the start of ISSUE_REASON


class TestBadInput:
    """Bad input exits 2 with a message on stderr naming the field; nothing on stdout."""

    @pytest.mark.parametrize(
        ("mutate", "field"),
        [
            (lambda d: d["shift"].pop("end"), "shift.end"),
            (lambda d: d["shift"].update(start="1 december"), "shift.start"),
            (lambda d: d["substitutes"][0].update(hours_this_month="many"), "substitutes[0].hours_this_month"),
            (lambda d: d["substitutes"][0].update(hours_this_mont=3), "substitutes[0].hours_this_mont"),
            (
                lambda d: d["substitutes"][0]["available"][0].update(end="2026-12-01T05:00"),
                "substitutes[0].available[0].end",
            ),
            (lambda d: d.pop("substitutes"), "substitutes"),
        ],
    )
    def test_names_the_field(self, runner: CliRunner, tmp_path: Path, mutate: Any, field: str) -> None:
        data = json.loads(json.dumps(ISSUE_EXAMPLE))
        mutate(data)
        result = runner.invoke(make_app(), ["match", str(_write(tmp_path, data)), "--json"])
        assert result.exit_code == 2
        assert result.stdout == ""
        assert f"at {field}:" in result.stderr

    def test_not_json(self, runner: CliRunner, tmp_path: Path) -> None:
        result = runner.invoke(make_app(), ["match", str(_write(tmp_path, "{not json")), "--json"])
        assert result.exit_code == 2
        assert result.stderr.startswith("error: invalid input")

    def test_missing_file(self, runner: CliRunner, tmp_path: Path) -> None:
        result = runner.invoke(make_app(), ["match", str(tmp_path / "nope.json")])
        assert result.exit_code == 2
        assert "cannot read" in result.stderr and "nope.json" in result.stderr

    def test_no_file_argument_is_a_usage_error(self, runner: CliRunner) -> None:
        result = runner.invoke(make_app(), ["match"])
        assert result.exit_code == 2
