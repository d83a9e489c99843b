"""Issue 18: the law's rules as pure functions, the extended calc contract, tables as deployment data.

Figures by hand: 2021 riksnorm (SFS 2020:1013): single adult 3 160, child 15–18 3 970,
common costs 2 persons 1 130. Prisbasbelopp 2026: 59 200 kr (förordning (2025:872)).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.errors import ConfigError
from robots.ronney.legal import legal_data
from robots.ronney.norm import (
    JOB_STIMULUS_MAX_MONTHS,
    JOB_STIMULUS_MIN_MONTHS,
    Household,
    calculate,
    job_stimulus_applies,
    pupil_disregard,
)
from robots.ronney.robot import Ronney
from robots.ronney.tables import DATA_DIR, SANDBOX_DIR, find_table, install_table, load_table, search_dirs

PBB = 59_200


# --- (a) pupils' income from work ----------------------------------------------------------


@pytest.mark.parametrize(
    ("income", "before", "disregarded"),
    [
        (0, 0, 0),
        (1, 0, 1),
        (3000, 0, 3000),
        (3000, PBB - 3000, 3000),  # exactly reaches the limit: all of it disregarded
        (3000, PBB - 2999, 2999),  # one krona over: that krona counts
        (3000, PBB - 1, 1),
        (3000, PBB, 0),  # the limit already used: all of it counts
        (3000, PBB + 5000, 0),
        (PBB + 10, 0, PBB),  # more than a prisbasbelopp in one month: only the excess counts
    ],
)
def test_pupil_disregard_is_what_fits_under_one_prisbasbelopp(income: int, before: int, disregarded: int) -> None:
    assert pupil_disregard(income, before, PBB) == disregarded


def test_every_boundary_of_the_pupil_rule_exhaustively() -> None:
    # Small prisbasbelopp so every combination is checked: counted + disregarded = income,
    # and the year's disregarded total never exceeds the prisbasbelopp.
    pbb = 12
    for before in range(0, 20):
        for income in range(0, 20):
            d = pupil_disregard(income, before, pbb)
            assert 0 <= d <= income
            assert before + d <= max(pbb, before)
            assert d == max(0, min(income, pbb - before))


def child_household(**child: Any) -> Household:
    return Household.model_validate({"year": 2021, "adults": [{"age": 45}], "children": [{"age": 16, **child}]})


def test_a_child_s_work_income_within_the_limit_is_not_counted() -> None:
    # 2021 prisbasbelopp 47 600: 10 000 before, 5 000 now → all 5 000 fits: income 0.
    r = calculate(child_household(work_income=5000, work_income_year_to_date=10_000), load_table(2021))
    keys = [(line.key, line.amount) for line in r.lines if line.section == "income"]
    assert keys == [("child_work_income", -5000), ("child_work_income_disregarded", 5000)]
    assert r.income == 0
    # 3 160 + 3 970 + 1 130 = 8 260
    assert r.support == 8260


def test_only_the_excess_over_the_prisbasbelopp_counts() -> None:
    # 45 000 before, 5 000 now: 2 600 fits under 47 600, 2 400 counts.
    r = calculate(child_household(work_income=5000, work_income_year_to_date=45_000), load_table(2021))
    assert r.income == 2400 and r.support == 8260 - 2400
    (line,) = [line for line in r.lines if line.key == "child_work_income_disregarded"]
    assert line.amount == 2600 and "47 600" in line.source and "4 kap. 1 a §" in line.source


def test_an_adult_child_not_in_school_has_work_income_counted_in_full() -> None:
    hh = Household.model_validate(
        {"year": 2021, "adults": [{"age": 45}], "children": [{"age": 19, "work_income": 4000}]}
    )
    r = calculate(hh, load_table(2021))
    assert r.income == 4000 and not any(line.key == "child_work_income_disregarded" for line in r.lines)
    in_school = Household.model_validate(
        {"year": 2021, "adults": [{"age": 45}], "children": [{"age": 19, "in_school": True, "work_income": 4000}]}
    )
    assert calculate(in_school, load_table(2021)).income == 0


def test_a_year_without_a_prisbasbelopp_is_a_config_error_not_a_guess() -> None:
    hh = Household.model_validate({"year": 2019, "adults": [{"age": 45}], "children": [{"age": 16, "work_income": 1}]})
    with pytest.raises(ConfigError) as info:
        calculate(hh, load_table(2019))
    assert info.value.code == "prisbasbelopp_missing"
    given = hh.model_copy(update={"prisbasbelopp": 46_500})
    assert calculate(given, load_table(2019)).income == 0


# --- (b) jobbstimulans -----------------------------------------------------------------------


def test_job_stimulus_boundaries_exhaustively() -> None:
    for months in range(0, 40):
        for used in range(0, 40):
            expected = months >= 6 and used < 24
            assert job_stimulus_applies(months, used) is expected, (months, used)
    assert (JOB_STIMULUS_MIN_MONTHS, JOB_STIMULUS_MAX_MONTHS) == (6, 24)


def salaried(**fields: Any) -> Household:
    return Household.model_validate({"year": 2021, "adults": [{"age": 35}], "incomes": {"salary": 8000}, **fields})


@pytest.mark.parametrize(
    ("fields", "disregarded"),
    [
        ({"months_on_support": 5}, 0),
        ({"months_on_support": 6}, 2000),
        ({"months_on_support": 6, "job_stimulus_months_used": 23}, 2000),
        ({"months_on_support": 30, "job_stimulus_months_used": 24}, 0),
        ({"job_stimulus_months_used": 0}, 0),  # months on support unknown = 0
        # New fields present: they decide, the old flag is ignored.
        ({"months_on_support": 2, "job_stimulus_active": True}, 0),
        # Absent: the old flag still works.
        ({"job_stimulus_active": True}, 2000),
        ({}, 0),
    ],
)
def test_job_stimulus_in_the_calculation(fields: dict[str, Any], disregarded: int) -> None:
    r = calculate(salaried(**fields), load_table(2021))
    lines = [line for line in r.lines if line.key == "job_stimulus"]
    assert sum(line.amount for line in lines) == disregarded
    assert r.income == 8000 - disregarded


# --- (c) legal references by date in force -------------------------------------------------


def test_legal_references_follow_the_date_in_force() -> None:
    legal = legal_data()
    assert "2001:453" in legal.ref("job_stimulus", date(2025, 6, 1)).text
    assert "2025:400" in legal.ref("job_stimulus", date(2025, 7, 1)).text
    assert "2025:400" in legal.ref("riksnorm", date(2027, 1, 1)).text
    assert legal.pbb(2026) is not None and legal.pbb(2026).amount == 59_200  # type: ignore[union-attr]
    assert all(r.source_url.startswith("http") for r in legal.reference)
    with pytest.raises(ConfigError):
        legal.ref("riksnorm", date(2000, 1, 1))


def test_the_month_chooses_the_law_in_the_lines() -> None:
    old = calculate(salaried(year=2021, job_stimulus_active=True), load_table(2021))
    (line,) = [line for line in old.lines if line.key == "job_stimulus"]
    assert "4 kap. 1 b § socialtjänstlagen (2001:453)" in line.source


# --- the calc contract ----------------------------------------------------------------------


def test_calc_json_keeps_the_contract_and_shows_each_disregarded_amount(tmp_path: Path) -> None:
    data = {
        "year": 2021,
        "adults": [{"age": 45}],
        "children": [{"age": 16, "in_school": True, "work_income": 5000, "work_income_year_to_date": 45_000}],
        "incomes": {"salary": 8000},
        "months_on_support": 7,
        "job_stimulus_months_used": 3,
    }
    path = tmp_path / "h.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    app = Ronney(Ronney.settings_model.model_construct()).cli()
    result = CliRunner().invoke(app, ["calc", str(path), "--json", "--tables", str(DATA_DIR)])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"norm", "reasonable_costs", "income", "support", "lines", "table"}
    assert out["norm"]["total"] == 3160 + 3970 + 1130
    # salary 8 000 − 2 000 jobbstimulans; child 5 000 − 2 600 disregarded → income 6 000 + 2 400
    assert out["income"] == 8400
    assert out["support"] == 0  # 8 260 − 8 400 < 0, floored
    lines = {line["key"]: line["amount"] for line in out["lines"]}
    assert lines["job_stimulus"] == 2000 and lines["child_work_income_disregarded"] == 2600


# --- tables as deployment data -------------------------------------------------------------


def complete_2027(**changes: Any) -> str:
    text = (DATA_DIR / "norm-2021.toml").read_text(encoding="utf-8")
    text = text.replace("year = 2021", "year = 2027").replace("in_force = 2021-01-01", "in_force = 2027-01-01")
    text = text.replace('sfs = "2020:1013"', 'sfs = "2026:1"')
    for old, new in changes.items():
        text = text.replace(old, new)
    return text


def norms(args: list[str], env_var: Path) -> Any:
    app = Ronney(Ronney.settings_model.model_construct()).cli()
    return CliRunner().invoke(app, ["norms", *args], env={"KOLLEGA_VAR_DIR": str(env_var)})


def test_norms_add_installs_a_complete_table_into_the_deployment_folder(tmp_path: Path) -> None:
    source = tmp_path / "ny.toml"
    source.write_text(complete_2027(), encoding="utf-8")
    var = tmp_path / "var"
    result = norms(["add", str(source)], var)
    assert result.exit_code == 0, result.stderr
    assert (var / "ronney" / "norms" / "norm-2027.toml").is_file()
    listed = json.loads(norms(["--json"], var).stdout)
    row = next(t for t in listed if t["year"] == 2027)
    assert row["official"] is True and row["sfs"] == "2026:1" and row["in_force"] == "2027-01-01"
    assert {t["year"] for t in listed} >= {2014, 2019, 2021, 2026, 2027}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({'sfs = "2026:1"\n': ""}, "sfs"),
        ({"in_force = 2027-01-01\n": ""}, "in_force"),
        ({"in_force = 2027-01-01": "in_force = 2026-01-01"}, "in_force"),
        ({'"19-20" = 4000\n': ""}, "children.19-20"),
        ({"7 = 2270\n": ""}, "household_common.7"),
        ({"official = true\n": "official = false\nsandbox = true\n"}, "sandbox"),
    ],
)
def test_norms_add_refuses_an_incomplete_table(tmp_path: Path, change: dict[str, str], problem: str) -> None:
    source = tmp_path / "ny.toml"
    text = complete_2027(**change)
    source.write_text(text, encoding="utf-8")
    result = norms(["add", str(source)], tmp_path / "var")
    assert result.exit_code == 2 and problem in result.stderr
    assert not (tmp_path / "var" / "ronney" / "norms" / "norm-2027.toml").exists()


def test_a_table_without_the_official_flag_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "ny.toml"
    source.write_text(complete_2027(**{"official = true\n": ""}), encoding="utf-8")
    with pytest.raises(ConfigError, match="official"):
        install_table(source, tmp_path / "out")


def test_the_sandbox_table_is_refused_without_the_demo_setting() -> None:
    with pytest.raises(ConfigError, match="sandbox"):
        find_table(2027, [SANDBOX_DIR], allow_sandbox=False)
    table = find_table(2027, search_dirs(None, sandbox=True), allow_sandbox=True)
    assert table is not None and table.sandbox and not table.official
    assert find_table(2027, search_dirs(None, sandbox=False), allow_sandbox=False) is None


def test_shipped_official_tables_name_their_source() -> None:
    for path in DATA_DIR.glob("norm-*.toml"):
        table = load_table(int(path.stem[5:]))
        if table.official:
            assert table.source_url and table.in_force and not table.missing_figures() and not table.sandbox
