"""Ronney's norm calculation and norm tables.

Every expected figure is worked out by hand in a comment from the official tables
(../shared/domain/income-support.md: Socialstyrelsen / SFS 2020:1013), never by calling
the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.errors import ConfigError
from robots.ronney.norm import Household, NormResult, calculate, describe_errors
from robots.ronney.tables import AGE_BANDS, DATA_DIR, NormTable, band_for_age, list_tables, load_table

# --- the official tables, typed in from the domain notes (kr/month) -----------------------

BANDS = ("0", "1-2", "3", "4-6", "7-10", "11-14", "15-18", "19-20")
OFFICIAL: dict[int, dict[str, Any]] = {
    2014: {
        "children": dict(zip(BANDS, (1740, 1980, 1730, 1980, 2410, 2840, 3250, 3280), strict=True)),
        "without_lunch": dict(zip(BANDS[:4], (1610, 1800, 1550, 1730), strict=True)),
        "single": 2950,
        "couple": 5320,
        "common": dict(zip(range(1, 8), (930, 1040, 1310, 1490, 1710, 1950, 2120), strict=True)),
    },
    2019: {
        "children": dict(zip(BANDS, (2130, 2380, 2120, 2380, 2990, 3440, 3880, 3910), strict=True)),
        "without_lunch": dict(zip(BANDS[:4], (2000, 2190, 1940, 2120), strict=True)),
        "single": 3090,
        "couple": 5570,
        "common": dict(zip(range(1, 8), (990, 1100, 1380, 1570, 1810, 2050, 2220), strict=True)),
    },
    2021: {
        "children": dict(zip(BANDS, (2180, 2440, 2170, 2440, 3060, 3520, 3970, 4000), strict=True)),
        "without_lunch": dict(zip(BANDS[:4], (2050, 2240, 1990, 2170), strict=True)),
        "single": 3160,
        "couple": 5700,
        "common": dict(zip(range(1, 8), (1020, 1130, 1420, 1610, 1860, 2100, 2270), strict=True)),
    },
}
#: The band of every age 0..20, written out by hand.
AGE_TO_BAND = {0: "0", 1: "1-2", 2: "1-2", 3: "3", 4: "4-6", 5: "4-6", 6: "4-6"}
AGE_TO_BAND |= {a: "7-10" for a in range(7, 11)} | {a: "11-14" for a in range(11, 15)}
AGE_TO_BAND |= {a: "15-18" for a in range(15, 19)} | {19: "19-20", 20: "19-20"}


def hh(year: int = 2021, **fields: Any) -> Household:
    """A household from the JSON contract; one adult aged 35 unless told otherwise."""
    data: dict[str, Any] = {"year": year, "adults": [{"age": 35}], **fields}
    return Household.model_validate(data)


def calc(household: Household) -> NormResult:
    return calculate(household, load_table(household.year))


def couple(**fields: Any) -> dict[str, Any]:
    return {"adults": [{"age": 35}, {"age": 37}], "cohabiting": True, **fields}


# --- the shipped tables -------------------------------------------------------------------


@pytest.mark.parametrize("year", sorted(OFFICIAL))
def test_shipped_official_table_matches_the_domain_notes(year: int) -> None:
    table = load_table(year)
    expected = OFFICIAL[year]
    assert table.verified is True
    assert table.year == year
    assert table.source and table.source_urls
    assert table.children == expected["children"]
    assert table.children_without_lunch == expected["without_lunch"]
    assert table.adults.single == expected["single"]
    assert table.adults.cohabiting == expected["couple"]
    assert table.household_common == expected["common"]
    assert table.missing_figures() == []


@pytest.mark.parametrize("year", sorted(OFFICIAL))
def test_extra_member_above_seven_is_170_in_every_official_year(year: int) -> None:
    # Domain notes: "Extra member above 7: +170 in each of these years"
    # (2014: 2 120 − 1 950; 2019: 2 220 − 2 050; 2021: 2 270 − 2 100).
    assert load_table(year).extra_member() == 170


def test_list_tables_shows_every_shipped_year_and_its_status() -> None:
    infos = {t.year: t for t in list_tables()}
    assert sorted(infos) == [2014, 2019, 2021, 2026]
    assert [infos[y].verified for y in (2014, 2019, 2021)] == [True, True, True]
    assert all(infos[y].complete for y in (2014, 2019, 2021))
    assert infos[2026].verified is False
    assert infos[2026].complete is False
    assert "SFS 2020:1013" in infos[2021].source
    assert infos[2021].file.endswith("norm-2021.toml")


def test_data_files_are_where_the_package_data_glob_finds_them() -> None:
    names = sorted(p.name for p in DATA_DIR.glob("norm-*.toml"))
    assert names == ["norm-2014.toml", "norm-2019.toml", "norm-2021.toml", "norm-2026.toml"]
    repository = Path(__file__).resolve().parents[2]
    assert repository / "robots" / "ronney" / "data" == DATA_DIR


def test_missing_year_is_a_config_error_naming_the_file_to_add() -> None:
    with pytest.raises(ConfigError, match=r"norm-2023\.toml") as info:
        load_table(2023)
    assert "2023" in str(info.value)
    assert "robots/ronney/data" in str(info.value)


def test_table_2026_holds_only_what_is_known_and_is_unverified() -> None:
    table = load_table(2026)
    assert table.verified is False
    # Municipal fixture split of the announced totals: 3 940 + 1 280, 2 × 3 550 + 1 410.
    assert table.adults.single == 3940
    assert table.adults.cohabiting == 7100
    assert table.household_common == {1: 1280, 2: 1410}
    assert table.children == {} and table.children_without_lunch == {}
    assert table.announced_totals is not None
    assert (table.announced_totals.single, table.announced_totals.cohabiting) == (5220, 8510)
    assert "household_common.3" in table.missing_figures()
    assert "children.4-6" in table.missing_figures()


@pytest.mark.parametrize(
    ("age", "band"),
    [(a, b) for a, b in AGE_TO_BAND.items()],
)
def test_band_for_age(age: int, band: str) -> None:
    assert band_for_age(age).key == band


def test_band_for_age_outside_0_to_20() -> None:
    with pytest.raises(ValueError):
        band_for_age(21)
    assert [b.label for b in AGE_BANDS][:4] == ["0 år", "1–2 år", "3 år", "4–6 år"]


# --- table files written by operations staff ------------------------------------------------

COMPLETE_2021 = """
year = 2021
verified = true
cite = "Socialstyrelsen"
source = "test"
[adults]
single = 3160
cohabiting = 5700
[children]
"0" = 2180
"1-2" = 2440
"3" = 2170
"4-6" = 2440
"7-10" = 3060
"11-14" = 3520
"15-18" = 3970
"19-20" = 4000
[children_without_lunch]
"0" = 2050
"1-2" = 2240
"3" = 1990
"4-6" = 2170
[household_common]
1 = 1020
2 = 1130
3 = 1420
4 = 1610
5 = 1860
6 = 2100
7 = 2270
"""


def write(tmp_path: Path, text: str, year: int = 2021) -> Path:
    (tmp_path / f"norm-{year}.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_a_complete_table_in_another_directory_loads(tmp_path: Path) -> None:
    table = load_table(2021, write(tmp_path, COMPLETE_2021))
    assert table.household_common[7] == 2270
    assert table.file.endswith("norm-2021.toml")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        # verified = true promises a complete table
        (lambda t: t.replace('"19-20" = 4000\n', ""), "children.19-20"),
        (lambda t: t.replace("7 = 2270\n", ""), "household_common.7"),
        (lambda t: t.replace("cohabiting = 5700\n", ""), "adults.cohabiting"),
        # typos
        (lambda t: t.replace('"7-10" = 3060', '"7-9" = 3060'), "7-9"),
        (lambda t: t.replace('"4-6" = 2170', '"4-6" = 2470'), "children_without_lunch.4-6"),
        (lambda t: t.replace("7 = 2270", "7 = 2070"), "household_common.7"),
        (lambda t: t.replace("7 = 2270", "8 = 2270"), "household_common"),
        (lambda t: t.replace("single = 3160", "single = -3160"), "adults.single"),
        (lambda t: t + "\nextra = 1\n", "extra"),
        (lambda t: t.replace('cite = "Socialstyrelsen"\n', ""), "cite"),
    ],
)
def test_an_invalid_table_is_a_config_error_naming_file_and_figure(tmp_path: Path, change: Any, needle: str) -> None:
    write(tmp_path, change(COMPLETE_2021))
    with pytest.raises(ConfigError) as info:
        load_table(2021, tmp_path)
    assert "norm-2021.toml" in str(info.value)
    assert needle in str(info.value)


def test_year_inside_the_file_must_match_its_name(tmp_path: Path) -> None:
    write(tmp_path, COMPLETE_2021, year=2022)
    with pytest.raises(ConfigError, match=r"norm-2022\.toml.*year = 2021"):
        load_table(2022, tmp_path)


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path, "year = = 2021")
    with pytest.raises(ConfigError, match=r"norm-2021\.toml is not valid TOML"):
        load_table(2021, tmp_path)


def test_announced_totals_are_cross_checked(tmp_path: Path) -> None:
    text = 'year = 2030\nverified = false\ncite = "x"\nsource = "x"\n[adults]\nsingle = 4000\n'
    text += "[household_common]\n1 = 1200\n[announced_totals]\nsingle = 5300\n"
    write(tmp_path, text, year=2030)
    # 4 000 + 1 200 = 5 200, not the announced 5 300
    with pytest.raises(ConfigError, match=r"announced_totals\.single"):
        load_table(2030, tmp_path)


def test_an_unverified_partial_table_loads_and_lists_as_incomplete(tmp_path: Path) -> None:
    write(tmp_path, 'year = 2030\nverified = false\ncite = "x"\nsource = "draft"\n[adults]\nsingle = 4000\n', 2030)
    (tmp_path / "norm-2030.toml.bak").write_text("not a table", encoding="utf-8")
    (tmp_path / "norm-draft.toml").write_text("not a table", encoding="utf-8")
    assert [(t.year, t.verified, t.complete, t.source) for t in list_tables(tmp_path)] == [
        (2030, False, False, "draft")
    ]


# --- Socialstyrelsen's worked example ------------------------------------------------------


def test_official_example_adult_sharing_a_household_2014() -> None:
    # Socialstyrelsen, riksnormen 2014: an adult in a 5-person household without being a
    # sambo: 1 710 ÷ 5 + 2 950 = 3 292 kr.
    result = calc(hh(2014, other_household_members=4))
    assert result.norm.personal_costs == 2950
    assert result.norm.household_costs == 342
    assert result.norm.total == 3292
    assert result.support == 3292
    share = [line for line in result.lines if line.section == "household"]
    assert len(share) == 1 and share[0].key == "household_common_share"
    assert "1 710 kr × 1/5" in share[0].source


# --- every age band, with and without lunch, in every official year -------------------------


@pytest.mark.parametrize(
    ("year", "age", "lunch"),
    [(y, a, lunch) for y in sorted(OFFICIAL) for a in range(21) for lunch in (True, False)],
)
def test_single_parent_with_one_child_of_every_age(year: int, age: int, lunch: bool) -> None:
    # Expected = single adult + the child's amount (the lower one only for ages 0–6 without
    # lunch at home) + common costs of a 2-person household, all read off OFFICIAL above.
    t = OFFICIAL[year]
    band = AGE_TO_BAND[age]
    child = t["without_lunch"][band] if (age <= 6 and not lunch) else t["children"][band]
    result = calc(hh(year, children=[{"age": age, "lunch_at_home": lunch}]))
    assert result.norm.personal_costs == t["single"] + child
    assert result.norm.household_costs == t["common"][2]
    assert result.support == t["single"] + child + t["common"][2]


def test_child_amounts_spot_checked_by_hand() -> None:
    # 2021: 4 år utan lunch 2 170; 4 år med lunch 2 440; 9 år 3 060 (lunch irrelevant);
    # 0 år utan lunch 2 050; 19 år 4 000.
    r = calc(hh(2021, children=[{"age": 4, "lunch_at_home": False}]))
    assert (
        r.lines[1].amount == 2170
        and r.lines[1].source == "riksnorm 2021, Socialstyrelsen: barn 4–6 år utan lunch hemma"
    )
    assert calc(hh(2021, children=[{"age": 4}])).lines[1].amount == 2440  # lunch_at_home defaults to true
    assert calc(hh(2021, children=[{"age": 9, "lunch_at_home": False}])).lines[1].amount == 3060
    assert calc(hh(2021, children=[{"age": 0, "lunch_at_home": False}])).lines[1].amount == 2050
    assert calc(hh(2021, children=[{"age": 19}])).lines[1].amount == 4000


# --- hand-checked households ------------------------------------------------------------------

HOUSEHOLDS: list[tuple[str, int, dict[str, Any], tuple[int, int, int, int, int]]] = [
    # (name, year, fields, (personal, household, reasonable, income, support))
    # single 2021: 3 160 + 1 020 = 4 180
    ("single 2021", 2021, {}, (3160, 1020, 0, 0, 4180)),
    # single 2019: 3 090 + 990 = 4 080
    ("single 2019", 2019, {}, (3090, 990, 0, 0, 4080)),
    # single 2014: 2 950 + 930 = 3 880
    ("single 2014", 2014, {}, (2950, 930, 0, 0, 3880)),
    # couple 2021: 5 700 + 1 130 = 6 830
    ("couple 2021", 2021, couple(), (5700, 1130, 0, 0, 6830)),
    # couple 2014: 5 320 + 1 040 = 6 360
    ("couple 2014", 2014, couple(), (5320, 1040, 0, 0, 6360)),
    # couple 2019 + children 7 (no lunch: irrelevant) and 15: 5 570 + 2 990 + 3 880 = 12 440;
    # common 4 persons 1 570; total 14 010
    (
        "couple, two school children 2019",
        2019,
        couple(children=[{"age": 7, "lunch_at_home": False}, {"age": 15}]),
        (12440, 1570, 0, 0, 14010),
    ),
    # single 2014 + child 0 without lunch + child 3 with lunch: 2 950 + 1 610 + 1 730 = 6 290;
    # common 3 persons 1 310; total 7 600
    (
        "single parent, two small children 2014",
        2014,
        {"children": [{"age": 0, "lunch_at_home": False}, {"age": 3}]},
        (6290, 1310, 0, 0, 7600),
    ),
    # 8 persons 2021: couple 5 700 + children 0 no lunch 2 050, 2 lunch 2 440, 3 no lunch 1 990,
    # 5 no lunch 2 170, 8: 3 060, 12: 3 520 → 5 700+2 050+2 440+1 990+2 170+3 060+3 520 = 20 930;
    # common 8 persons = 2 270 + 1 × (2 270 − 2 100) = 2 440; total 23 370
    (
        "8-person household 2021",
        2021,
        couple(
            children=[
                {"age": 0, "lunch_at_home": False},
                {"age": 2},
                {"age": 3, "lunch_at_home": False},
                {"age": 5, "lunch_at_home": False},
                {"age": 8},
                {"age": 12},
            ]
        ),
        (20930, 2440, 0, 0, 23370),
    ),
    # 9 persons 2019: single 3 090 + 8 children aged 10 × 2 990 = 23 920 → 27 010;
    # common 9 = 2 220 + 2 × 170 = 2 560; total 29 570
    ("9-person household 2019", 2019, {"children": [{"age": 10}] * 8}, (27010, 2560, 0, 0, 29570)),
    # adult sharing a 3-person household 2021: 3 160 + 1 420 ÷ 3 (473.33 → 473) = 3 633
    ("adult sharing with two others 2021", 2021, {"other_household_members": 2}, (3160, 473, 0, 0, 3633)),
    # adult sharing a 5-person household 2021 (same rule as the official example):
    # 3 160 + 1 860 ÷ 5 = 372 → 3 532
    ("adult sharing a 5-person household 2021", 2021, {"other_household_members": 4}, (3160, 372, 0, 0, 3532)),
    # couple + child 1 år (lunch) + 1 other member 2021: 5 700 + 2 440 = 8 140;
    # common 4 persons 1 610 × 3/4 = 1 207.5 → 1 208 (halves up); total 9 348
    (
        "couple and child sharing with one other 2021",
        2021,
        couple(children=[{"age": 1}], other_household_members=1),
        (8140, 1208, 0, 0, 9348),
    ),
    # adult sharing an 8-person household 2019: common 8 = 2 220 + 170 = 2 390; ÷ 8 = 298.75 → 299;
    # 3 090 + 299 = 3 389
    ("adult in an 8-person shared household 2019", 2019, {"other_household_members": 7}, (3090, 299, 0, 0, 3389)),
    # rent above the cap 2021: single 4 180; rent 8 000 capped to 6 500, el 250 → 6 750;
    # support 4 180 + 6 750 = 10 930
    (
        "rent capped",
        2021,
        {"costs": {"rent": 8000, "household_electricity": 250}, "max_rent": 6500},
        (3160, 1020, 6750, 0, 10930),
    ),
    # rent below the cap: 6 000 + 250 = 6 250; 4 180 + 6 250 = 10 430
    (
        "rent under the cap",
        2021,
        {"costs": {"rent": 6000, "household_electricity": 250}, "max_rent": 6500},
        (3160, 1020, 6250, 0, 10430),
    ),
    # no cap configured: rent 8 000 counts in full; 4 180 + 8 000 = 12 180
    ("rent without cap", 2021, {"costs": {"rent": 8000}, "max_rent": None}, (3160, 1020, 8000, 0, 12180)),
    # every reasonable cost: 5 000 + 300 + 150 + 600 + 250 + 150 + 100 + 200 + 900 = 7 650;
    # 4 180 + 7 650 = 11 830
    (
        "every reasonable cost",
        2021,
        {
            "costs": {
                "rent": 5000,
                "household_electricity": 300,
                "home_insurance": 150,
                "work_travel": 600,
                "union_fee": 250,
                "unemployment_fund_fee": 150,
                "childcare": 100,
                "medical": 200,
                "dental_acute": 900,
            }
        },
        (3160, 1020, 7650, 0, 11830),
    ),
    # job stimulus: salary 8 000, 25 % = 2 000 disregarded → income 6 000; 4 180 + 6 000 − 6 000
    (
        "job stimulus active",
        2021,
        {"costs": {"rent": 6000}, "incomes": {"salary": 8000}, "job_stimulus_active": True},
        (3160, 1020, 6000, 6000, 4180),
    ),
    # same without job stimulus: income 8 000; 10 180 − 8 000 = 2 180
    (
        "job stimulus not active",
        2021,
        {"costs": {"rent": 6000}, "incomes": {"salary": 8000}},
        (3160, 1020, 6000, 8000, 2180),
    ),
    # job stimulus does not touch other income: salary 4 000 (− 1 000) + sjukpenning 3 000 → 6 000
    (
        "job stimulus only on salary",
        2021,
        {"costs": {"rent": 6000}, "incomes": {"salary": 4000, "sickness_benefit": 3000}, "job_stimulus_active": True},
        (3160, 1020, 6000, 6000, 4180),
    ),
    # income above the norm → 0: couple 6 830 + rent 7 000 = 13 830 < salary 20 000
    (
        "income above norm",
        2021,
        couple(costs={"rent": 7000}, incomes={"salary": 20000}),
        (5700, 1130, 7000, 20000, 0),
    ),
    # income exactly the need → 0: 4 180 + 5 000 = 9 180
    (
        "income equal to need",
        2021,
        {"costs": {"rent": 5000}, "incomes": {"pension": 9180}},
        (3160, 1020, 5000, 9180, 0),
    ),
    # every income kind counts: 10 kinds × 100 = 1 000; 4 180 − 1 000 = 3 180
    (
        "every income kind",
        2021,
        {
            "incomes": {
                k: 100
                for k in (
                    "salary",
                    "unemployment_benefit",
                    "sickness_benefit",
                    "activity_support",
                    "housing_allowance",
                    "child_allowance",
                    "maintenance_support",
                    "study_grant",
                    "pension",
                    "other",
                )
            }
        },
        (3160, 1020, 0, 1000, 3180),
    ),
    # the contract example: single 3 160 + child 4 utan lunch 2 170 = 5 330; common 2 → 1 130;
    # costs 6 500 + 300 + 150 = 6 950; barnbidrag 1 250; 6 460 + 6 950 − 1 250 = 12 160
    (
        "contract example",
        2021,
        {
            "cohabiting": False,
            "children": [{"age": 4, "lunch_at_home": False}],
            "other_household_members": 0,
            "costs": {"rent": 6500, "household_electricity": 300, "home_insurance": 150},
            "incomes": {"child_allowance": 1250},
            "job_stimulus_active": False,
            "max_rent": None,
        },
        (5330, 1130, 6950, 1250, 12160),
    ),
    # 2026 (unverified): the known parts reproduce the announced totals:
    # single 3 940 + 1 280 = 5 220; couple 7 100 + 1 410 = 8 510
    ("single 2026", 2026, {}, (3940, 1280, 0, 0, 5220)),
    ("couple 2026", 2026, couple(), (7100, 1410, 0, 0, 8510)),
]


@pytest.mark.parametrize(
    ("fields", "expected", "year"), [(f, e, y) for _, y, f, e in HOUSEHOLDS], ids=[h[0] for h in HOUSEHOLDS]
)
def test_hand_checked_household(fields: dict[str, Any], expected: tuple[int, int, int, int, int], year: int) -> None:
    personal, household, reasonable, income, support = expected
    result = calc(hh(year, **fields))
    assert result.norm.personal_costs == personal
    assert result.norm.household_costs == household
    assert result.norm.total == personal + household
    assert result.reasonable_costs == reasonable
    assert result.income == income
    assert result.support == support
    # The lines explain the whole sum (before the floor at 0), and every line names a source.
    assert sum(line.amount for line in result.lines) == personal + household + reasonable - income
    assert all(line.source and line.label and line.key for line in result.lines)
    assert result.table.year == year


@pytest.mark.parametrize(
    ("salary", "counted"),
    [
        (10000, 7500),  # 2 500 disregarded
        (10001, 7501),  # 2 500.25 → 2 500
        (10002, 7501),  # 2 500.5 → 2 501 (halves up, in the applicant's favour)
        (10003, 7502),  # 2 500.75 → 2 501
        (1, 1),  # 0.25 → 0
        (2, 1),  # 0.5 → 1
    ],
)
def test_job_stimulus_rounds_to_whole_kronor(salary: int, counted: int) -> None:
    result = calc(hh(2021, incomes={"salary": salary}, job_stimulus_active=True))
    assert result.income == counted
    stimulus = [line for line in result.lines if line.key == "job_stimulus"]
    assert len(stimulus) == 1 and stimulus[0].amount == salary - counted
    assert "4 kap. 1 b §" in stimulus[0].source


def test_job_stimulus_line_absent_without_salary() -> None:
    result = calc(hh(2021, incomes={"pension": 5000}, job_stimulus_active=True))
    assert result.income == 5000
    assert [line.key for line in result.lines if line.section == "income"] == ["pension"]


def test_households_above_seven_show_the_extrapolation_as_its_own_line() -> None:
    # 9 persons 2021: 2 270 (7 personer) + 2 × 170
    result = calc(hh(2021, children=[{"age": 10}] * 8))
    common = [line for line in result.lines if line.section == "household"]
    assert [(line.key, line.amount) for line in common] == [("household_common", 2270), ("household_common_extra", 340)]
    assert "2 270 − 2 100" in common[1].source


def test_rent_cap_line_says_what_was_applied_for() -> None:
    result = calc(hh(2021, costs={"rent": 8000}, max_rent=6500))
    rent = next(line for line in result.lines if line.key == "rent")
    assert rent.amount == 6500
    assert "8 000" in rent.source and "6 500" in rent.source


def test_rent_equal_to_the_cap_is_not_reported_as_capped() -> None:
    rent = next(line for line in calc(hh(2021, costs={"rent": 6500}, max_rent=6500)).lines if line.key == "rent")
    assert rent.amount == 6500 and "begränsad" not in rent.source


def test_missing_sections_mean_zero() -> None:
    result = calc(Household.model_validate({"year": 2021, "adults": [{"age": 30}]}))
    # 3 160 + 1 020
    assert (result.support, result.reasonable_costs, result.income) == (4180, 0, 0)
    nulls = Household.model_validate(
        {"year": 2021, "adults": [{"age": 30}], "costs": None, "incomes": None, "children": None}
    )
    assert calc(nulls) == result


def test_zero_costs_and_incomes_do_not_clutter_the_lines() -> None:
    result = calc(hh(2021, costs={"rent": 0}, incomes={"salary": 0}))
    assert [line.key for line in result.lines] == ["adult_single", "household_common"]


# --- the result contract --------------------------------------------------------------------


def test_contract_json_shape() -> None:
    result = calc(
        hh(2021, children=[{"age": 4, "lunch_at_home": False}], costs={"rent": 6500}, incomes={"child_allowance": 1250})
    )
    data = result.to_contract_json()
    assert list(data) == ["norm", "reasonable_costs", "income", "support", "lines", "table"]
    assert list(data["norm"]) == ["personal_costs", "household_costs", "total"]
    assert data["table"] == {"year": 2021, "verified": True}
    assert data == result.model_dump(mode="json")
    assert isinstance(data["lines"], list)
    assert set(data["lines"][0]) == {"section", "key", "label", "amount", "source"}
    assert data["lines"][0] == {
        "section": "personal",
        "key": "adult_single",
        "label": "Personliga kostnader, ensamstående vuxen",
        "amount": 3160,
        "source": "riksnorm 2021, Socialstyrelsen: ensamstående",
    }
    # 3 160 + 2 170 + 1 130 + 6 500 − 1 250 = 11 710
    assert json.loads(json.dumps(data))["support"] == 11710
    assert all(isinstance(data[k], int) for k in ("reasonable_costs", "income", "support"))


def test_result_is_frozen() -> None:
    result = calc(hh(2021))
    with pytest.raises(ValidationError):
        setattr(result, "support", 1)  # noqa: B010 - the assignment itself is under test
    assert result.warnings == ()


def test_unverified_table_is_flagged_in_the_result_and_every_norm_line() -> None:
    result = calc(hh(2026))
    assert result.table.verified is False
    assert result.to_contract_json()["table"] == {"year": 2026, "verified": False}
    assert result.warnings and "inte verifierad" in result.warnings[0]
    norm_lines = [line for line in result.lines if line.section in ("personal", "household")]
    assert norm_lines and all("EJ VERIFIERAD" in line.source for line in norm_lines)
    assert not any("EJ VERIFIERAD" in line.source for line in calc(hh(2021)).lines)


@pytest.mark.parametrize(
    ("fields", "figure"),
    [
        ({"children": [{"age": 4}]}, "children.4-6"),
        ({"children": [{"age": 4, "lunch_at_home": False}]}, "children_without_lunch.4-6"),
        ({"other_household_members": 2}, "household_common.3"),
        ({"other_household_members": 8}, "household_common.7"),
    ],
)
def test_unknown_2026_figure_is_a_config_error_not_a_guess(fields: dict[str, Any], figure: str) -> None:
    with pytest.raises(ConfigError) as info:
        calc(hh(2026, **fields))
    assert "norm-2026.toml" in str(info.value)
    assert figure in str(info.value)


def test_table_of_another_year_is_refused() -> None:
    with pytest.raises(ValueError, match="2019"):
        calculate(hh(2021), load_table(2019))


def test_calculate_is_pure_on_a_table_built_in_memory() -> None:
    table = NormTable.model_validate(
        {
            "year": 2040,
            "verified": False,
            "cite": "test",
            "source": "test",
            "adults": {"single": 1000},
            "household_common": {1: 100},
        }
    )
    # 1 000 + 100
    assert calculate(hh(2040), table).support == 1100


# --- invalid households ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"year": 2021, "adults": [{"age": 35}], "pets": 2}, "pets"),
        ({"year": 2021, "adults": [{"age": 35}], "costs": {"gym": 300}}, "costs.gym"),
        ({"year": 2021, "adults": [{"age": 35}], "incomes": {"lottery": 300}}, "incomes.lottery"),
        ({"year": 2021, "adults": [{"age": 35, "name": "x"}]}, "adults.0.name"),
        ({"year": 2021, "adults": [{"age": 35}], "children": [{"age": 3, "lunch": True}]}, "children.0.lunch"),
        ({"year": 2021, "adults": [{"age": 35}], "costs": {"rent": -1}}, "costs.rent"),
        ({"year": 2021, "adults": [{"age": 35}], "costs": {"rent": 6500.5}}, "costs.rent"),
        ({"year": 2021, "adults": [{"age": 35}], "incomes": {"salary": -100}}, "incomes.salary"),
        ({"year": 2021, "adults": [{"age": 35}], "max_rent": -1}, "max_rent"),
        ({"year": 2021, "adults": [{"age": 121}]}, "adults.0.age"),
        ({"year": 2021, "adults": [{"age": 17}]}, "adults.0.age"),
        ({"year": 2021, "adults": [{"age": 35}], "children": [{"age": 21}]}, "children.0.age"),
        ({"year": 2021, "adults": [{"age": 35}], "children": [{"age": -1}]}, "children.0.age"),
        ({"year": 2021, "adults": [{"age": 35}], "other_household_members": -1}, "other_household_members"),
        ({"year": 2021, "adults": [{"age": 35}] * 3, "cohabiting": True}, "adults"),
        ({"year": 2021, "adults": []}, "adults"),
        ({"year": 2021, "adults": [{"age": 35}], "cohabiting": True}, "cohabiting"),
        ({"year": 2021, "adults": [{"age": 35}, {"age": 36}]}, "cohabiting"),
        ({"year": 2021, "adults": [{"age": 35}, {"age": 36}], "cohabiting": False}, "cohabiting"),
        ({"adults": [{"age": 35}]}, "year"),
        ({"year": 2021}, "adults"),
        ({"year": 2021, "adults": [{"age": 35}], "job_stimulus_active": "maybe"}, "job_stimulus_active"),
    ],
)
def test_invalid_household_names_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Household.model_validate(data)
    message = describe_errors(info.value)
    assert message.startswith(f"{field}: ") or f"\n{field}: " in message
    assert field in str(info.value)


def test_three_adults_message_points_to_other_household_members() -> None:
    with pytest.raises(ValidationError) as info:
        Household.model_validate({"year": 2021, "adults": [{"age": 35}] * 3, "cohabiting": True})
    message = describe_errors(info.value)
    assert message.startswith("adults: 3 adults given")
    assert "other_household_members" in message
    assert "Value error" not in message


def test_household_is_frozen_and_parses_the_contract_json_text() -> None:
    text = (
        '{"year": 2021, "adults": [{"age": 35}], "cohabiting": false, "children": [{"age": 4, "lunch_at_home": false}],'
        ' "other_household_members": 0, "costs": {"rent": 6500, "household_electricity": 300, "home_insurance": 150,'
        ' "work_travel": 0, "union_fee": 0, "unemployment_fund_fee": 0, "childcare": 0, "medical": 0,'
        ' "dental_acute": 0},'
        ' "incomes": {"salary": 0, "unemployment_benefit": 0, "sickness_benefit": 0, "activity_support": 0,'
        ' "housing_allowance": 0, "child_allowance": 1250, "maintenance_support": 0, "study_grant": 0, "pension": 0,'
        ' "other": 0}, "job_stimulus_active": false, "max_rent": null}'
    )
    household = Household.model_validate_json(text)
    assert (household.members, household.household_size) == (2, 2)
    with pytest.raises(ValidationError):
        setattr(household, "year", 2019)  # noqa: B010 - the assignment itself is under test
    # see the "contract example" household above: 12 160
    assert calc(household).support == 12160
