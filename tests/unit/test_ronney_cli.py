"""``kollega ronney calc FILE [--json]`` and ``kollega ronney norms``: the contract of issue 4, item 3.

Expected figures are worked out by hand from the official 2021 table (SFS 2020:1013).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from robots.ronney.robot import Ronney

#: The example of issue 4, item 3, verbatim.
EXAMPLE: dict[str, Any] = {
    "year": 2021,
    "adults": [{"age": 35}],
    "cohabiting": False,
    "children": [{"age": 4, "lunch_at_home": False}],
    "other_household_members": 0,
    "costs": {
        "rent": 6500,
        "household_electricity": 300,
        "home_insurance": 150,
        "work_travel": 0,
        "union_fee": 0,
        "unemployment_fund_fee": 0,
        "childcare": 0,
        "medical": 0,
        "dental_acute": 0,
    },
    "incomes": {
        "salary": 0,
        "unemployment_benefit": 0,
        "sickness_benefit": 0,
        "activity_support": 0,
        "housing_allowance": 0,
        "child_allowance": 1250,
        "maintenance_support": 0,
        "study_grant": 0,
        "pension": 0,
        "other": 0,
    },
    "job_stimulus_active": False,
    "max_rent": None,
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def app() -> Any:
    # As `kollega` mounts it: the robot built from its settings model without validation.
    return Ronney(Ronney.settings_model.model_construct()).cli()


def write(tmp_path: Path, data: Any, name: str = "household.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def calc(runner: CliRunner, tmp_path: Path, data: Any, *extra: str) -> Any:
    return runner.invoke(app(), ["calc", write(tmp_path, data), *extra])


class TestCalcJson:
    """--json prints exactly the contract's shape."""

    def test_the_issue_example(self, runner: CliRunner, tmp_path: Path) -> None:
        result = calc(runner, tmp_path, EXAMPLE, "--json")
        assert result.exit_code == 0, result.stderr
        out = json.loads(result.stdout)
        assert set(out) == {"norm", "reasonable_costs", "income", "support", "lines", "table"}
        # single adult 3 160 + child 4–6 without lunch 2 170 = 5 330; common costs, 2 persons: 1 130
        assert out["norm"] == {"personal_costs": 5330, "household_costs": 1130, "total": 6460}
        assert out["reasonable_costs"] == 6500 + 300 + 150
        assert out["income"] == 1250
        assert out["support"] == 6460 + 6950 - 1250 == 12160
        assert out["table"] == {"year": 2021, "verified": True}
        assert all({"section", "key", "label", "amount", "source"} <= set(line) for line in out["lines"])
        assert sum(line["amount"] for line in out["lines"]) == 12160

    def test_missing_sections_mean_zero(self, runner: CliRunner, tmp_path: Path) -> None:
        out = json.loads(calc(runner, tmp_path, {"year": 2021, "adults": [{"age": 30}]}, "--json").stdout)
        assert out["support"] == 3160 + 1020 and out["income"] == 0 and out["reasonable_costs"] == 0

    def test_rent_cap_and_job_stimulus(self, runner: CliRunner, tmp_path: Path) -> None:
        data = {
            "year": 2021,
            "adults": [{"age": 30}],
            "costs": {"rent": 8000},
            "max_rent": 6000,
            "incomes": {"salary": 10000},
            "job_stimulus_active": True,
        }
        out = json.loads(calc(runner, tmp_path, data, "--json").stdout)
        # 4 180 norm + 6 000 capped rent − (10 000 − 2 500 disregarded) = 2 680
        assert out["support"] == 4180 + 6000 - 7500

    def test_unverified_table_says_so(self, runner: CliRunner, tmp_path: Path) -> None:
        result = calc(runner, tmp_path, {"year": 2026, "adults": [{"age": 30}]}, "--json")
        out = json.loads(result.stdout)
        assert out["table"] == {"year": 2026, "verified": False}
        assert out["support"] == 5220  # the announced 2026 total for a single person
        assert all("EJ VERIFIERAD" in line["source"] for line in out["lines"] if line["section"] != "income")

    def test_standard_input(self, runner: CliRunner) -> None:
        result = runner.invoke(app(), ["calc", "-", "--json"], input=json.dumps(EXAMPLE))
        assert result.exit_code == 0 and json.loads(result.stdout)["support"] == 12160


class TestCalcTable:
    """Without --json: a table for people, and the warning for an unverified table."""

    def test_prints_lines_and_total(self, runner: CliRunner, tmp_path: Path) -> None:
        result = calc(runner, tmp_path, EXAMPLE)
        assert result.exit_code == 0
        assert "Försörjningsstöd" in result.stdout and "12 160 kr" in result.stdout
        assert "Barnbidrag" in result.stdout

    def test_unverified_warning(self, runner: CliRunner, tmp_path: Path) -> None:
        result = calc(runner, tmp_path, {"year": 2026, "adults": [{"age": 30}]})
        assert result.exit_code == 0 and "inte verifierad" in result.stdout


class TestCalcBadInput:
    """Bad input exits 2 with a message on stderr naming the field."""

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"costs": {"rent": -1}}, "costs.rent"),
            ({"incomes": {"salary": -5}}, "incomes.salary"),
            ({"costs": {"yacht": 100}}, "costs.yacht"),
            ({"pets": 2}, "pets"),
            ({"adults": [{"age": 30}, {"age": 31}, {"age": 32}], "cohabiting": True}, "adults"),
            ({"adults": [{"age": 121}]}, "adults.0.age"),
            ({"adults": [{"age": 30}, {"age": 31}], "cohabiting": False}, "cohabiting"),
            ({"children": [{"age": 21}]}, "children.0.age"),
            ({"other_household_members": -1}, "other_household_members"),
            ({"year": "tjugotjugoett"}, "year"),
        ],
    )
    def test_names_the_field(self, runner: CliRunner, tmp_path: Path, change: dict[str, Any], field: str) -> None:
        result = calc(runner, tmp_path, {**EXAMPLE, **change}, "--json")
        assert result.exit_code == 2
        assert result.stdout == ""
        assert field in result.stderr

    def test_not_json(self, runner: CliRunner, tmp_path: Path) -> None:
        result = calc(runner, tmp_path, "{year: 2021")
        assert result.exit_code == 2 and "not valid JSON" in result.stderr and "line 1" in result.stderr

    def test_not_an_object(self, runner: CliRunner, tmp_path: Path) -> None:
        result = calc(runner, tmp_path, [EXAMPLE])
        assert result.exit_code == 2 and "one JSON object" in result.stderr

    def test_missing_file(self, runner: CliRunner, tmp_path: Path) -> None:
        result = runner.invoke(app(), ["calc", str(tmp_path / "nope.json")])
        assert result.exit_code == 2 and "nope.json" in result.stderr

    def test_year_without_a_table_names_the_file_to_add(self, runner: CliRunner, tmp_path: Path) -> None:
        result = calc(runner, tmp_path, {**EXAMPLE, "year": 2030})
        assert result.exit_code == 2 and "norm-2030.toml" in result.stderr

    def test_figure_missing_from_the_unverified_table(self, runner: CliRunner, tmp_path: Path) -> None:
        result = calc(runner, tmp_path, {**EXAMPLE, "year": 2026})
        assert result.exit_code == 2 and "children_without_lunch.4-6" in result.stderr


class TestNorms:
    """`norms` lists every table and whether it is verified."""

    def test_json(self, runner: CliRunner) -> None:
        result = runner.invoke(app(), ["norms", "--json"])
        assert result.exit_code == 0
        tables = {t["year"]: t for t in json.loads(result.stdout)}
        assert set(tables) >= {2014, 2019, 2021, 2026}
        assert all(tables[y]["verified"] and tables[y]["complete"] for y in (2014, 2019, 2021))
        assert tables[2026]["verified"] is False and tables[2026]["complete"] is False

    def test_table(self, runner: CliRunner) -> None:
        result = runner.invoke(app(), ["norms"])
        assert result.exit_code == 0 and "2026" in result.stdout and "NEJ" in result.stdout

    def test_another_folder(self, runner: CliRunner, tmp_path: Path) -> None:
        (tmp_path / "norm-2021.toml").write_text(
            (Path(__file__).resolve().parents[2] / "robots/ronney/data/norm-2021.toml").read_text(encoding="utf-8")
        )
        result = runner.invoke(app(), ["norms", "--json", "--tables", str(tmp_path)])
        assert [t["year"] for t in json.loads(result.stdout)] == [2021]
        out = calc(runner, tmp_path, EXAMPLE, "--json", "--tables", str(tmp_path))
        assert json.loads(out.stdout)["support"] == 12160

    def test_broken_table_exits_2(self, runner: CliRunner, tmp_path: Path) -> None:
        (tmp_path / "norm-2022.toml").write_text("year = 2022\nverified = tru", encoding="utf-8")
        result = runner.invoke(app(), ["norms", "--tables", str(tmp_path)])
        assert result.exit_code == 2 and "norm-2022.toml" in result.stderr
