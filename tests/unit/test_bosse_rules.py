"""Unit tests of Bosse's working-time rules, the ranking and the ``bosse match`` contract.

Expected values are worked out by hand in the comments. Times are Swedish local time;
CET = UTC+1 (winter), CEST = UTC+2 (summer). In 2026 the clocks go forward on Sunday
29 March (02:00 -> 03:00, the night is 23 h) and back on Sunday 25 October (03:00 -> 02:00,
the night is 25 h).
"""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from robots.bosse.contract import MatchResult, format_validation_error, match, match_json, parse_match_input
from robots.bosse.ranking import rank_candidates
from robots.bosse.rules import (
    BosseRules,
    Interval,
    Rule,
    Shift,
    Substitute,
    check_eligibility,
    format_hours,
    format_interval,
    format_number,
    is_eligible,
    local_to_utc,
)

# --------------------------------------------------------------------------- helpers


def t(local: str) -> datetime:
    """A Swedish local time ("2026-12-01T07:00") as an aware UTC instant."""
    return local_to_utc(datetime.fromisoformat(local))


def iv(start: str, end: str) -> Interval:
    return Interval(t(start), t(end))


#: Availability that covers every shift used below, so tests of other rules stay focused.
ALWAYS = (iv("2026-01-01T00:00", "2027-01-01T00:00"),)


def shift(start: str = "2026-12-01T07:00", end: str = "2026-12-01T16:00", **kw: Any) -> Shift:
    return Shift(id=kw.pop("id", "s1"), start=t(start), end=t(end), **kw)


def sub(id: str = "v1", **kw: Any) -> Substitute:
    kw.setdefault("available", ALWAYS)
    return Substitute(id=id, **kw)


def reasons(s: Shift, v: Substitute, rules: BosseRules | None = None) -> list[str]:
    return [x.reason for x in check_eligibility(s, v, rules or BosseRules())]


def rules_failed(s: Shift, v: Substitute, rules: BosseRules | None = None) -> list[Rule]:
    return [x.rule for x in check_eligibility(s, v, rules or BosseRules())]


# --------------------------------------------------------------------------- settings


def test_rules_defaults_are_the_agreement_values() -> None:
    rules = BosseRules()
    assert (rules.min_daily_rest_hours, rules.min_weekly_rest_hours, rules.default_max_hours_month) == (
        11,
        36,
        165,
    )


def test_rules_are_frozen_documented_and_strict() -> None:
    rules = BosseRules()
    with pytest.raises(ValidationError):
        rules.min_daily_rest_hours = 9  # type: ignore[misc]
    with pytest.raises(ValidationError):
        BosseRules(min_daily_rest_hourz=9)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        BosseRules(min_daily_rest_hours=-1)
    assert all(f.description for f in BosseRules.model_fields.values())


# --------------------------------------------------------------------------- time basics


def test_local_time_is_read_dst_aware() -> None:
    assert t("2026-12-01T07:00") == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # CET
    assert t("2026-07-01T07:00") == datetime(2026, 7, 1, 5, 0, tzinfo=UTC)  # CEST
    # 02:30 on 25 October happens twice; the first occurrence (still CEST) is meant.
    assert t("2026-10-25T02:30") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="does not exist"):
        t("2026-03-29T02:30")  # skipped hour


def test_intervals_need_aware_times_and_positive_length() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(datetime(2026, 12, 1, 7), datetime(2026, 12, 1, 16))
    with pytest.raises(ValueError, match="after start"):
        iv("2026-12-01T16:00", "2026-12-01T16:00")


def test_dst_nights_have_real_length() -> None:
    assert iv("2026-03-28T22:00", "2026-03-29T07:00").duration == timedelta(hours=8)  # 9 h on the wall
    assert iv("2026-10-24T22:00", "2026-10-25T07:00").duration == timedelta(hours=10)  # 9 h on the wall


@pytest.mark.parametrize(
    ("value", "kwargs", "text"),
    [
        (9.5, {}, "9,5"),
        (11, {}, "11"),
        (11.0, {}, "11"),
        (0, {}, "0"),
        (120.333, {}, "120,33"),
        (2.005, {}, "2,01"),  # half up on the decimal value, not the binary float
        (1234.5, {}, "1 234,5"),
        (10.999, {"round_down": True}, "10,99"),
        (4.25, {"decimals": 1}, "4,3"),
    ],
)
def test_numbers_are_formatted_the_swedish_way(value: float, kwargs: dict[str, Any], text: str) -> None:
    assert format_number(value, **kwargs) == text


def test_hours_and_intervals_are_formatted_for_people() -> None:
    assert format_hours(timedelta(hours=9, minutes=30)) == "9,5 h"
    assert format_interval(iv("2026-12-01T06:00", "2026-12-01T10:00")) == "2026-12-01 06:00–10:00"
    assert format_interval(iv("2026-11-30T22:00", "2026-12-01T07:00")) == "2026-11-30 22:00–2026-12-01 07:00"


# --------------------------------------------------------------------------- competence


def test_all_requirements_met_is_eligible() -> None:
    s = shift(qualifications=["undersköterska"], medication_delegation=True, driving_licence=True)
    v = sub(qualifications=["undersköterska", "demens"], medication_delegation=True, driving_licence=True)
    assert check_eligibility(s, v) == []
    assert is_eligible(s, v)


def test_missing_qualifications_are_named() -> None:
    s = shift(qualifications=["undersköterska", "demens"])
    assert reasons(s, sub(qualifications=["demens"])) == ["saknar kvalifikation undersköterska (passets krav)"]
    assert reasons(s, sub()) == ["saknar kvalifikationerna undersköterska, demens (passets krav)"]


def test_qualifications_compare_case_and_whitespace_insensitively() -> None:
    s = shift(qualifications=["Undersköterska"])
    assert reasons(s, sub(qualifications=["  undersköterska "])) == []


def test_delegation_and_licence_only_when_the_shift_asks() -> None:
    bare = sub()
    assert reasons(shift(), bare) == []
    assert reasons(shift(medication_delegation=True), bare) == ["saknar läkemedelsdelegering (passets krav)"]
    assert reasons(shift(driving_licence=True), bare) == ["saknar körkort (passets krav)"]


# --------------------------------------------------------------------------- availability


@pytest.mark.parametrize(
    "available",
    [
        [("2026-12-01T07:00", "2026-12-01T16:00")],  # exactly the shift
        [("2026-12-01T06:00", "2026-12-01T12:00"), ("2026-12-01T12:00", "2026-12-01T18:00")],  # touching
        [("2026-12-01T12:00", "2026-12-01T18:00"), ("2026-12-01T06:00", "2026-12-01T13:00")],  # overlapping
    ],
)
def test_union_of_availability_covering_the_shift_is_enough(available: list[tuple[str, str]]) -> None:
    v = sub(available=[iv(a, b) for a, b in available])
    assert reasons(shift(), v) == []


def test_availability_gaps_are_listed() -> None:
    v = sub(
        available=[
            iv("2026-12-01T08:00", "2026-12-01T12:00"),
            iv("2026-12-01T12:30", "2026-12-01T15:00"),
        ]
    )
    # Shift 07–16: uncovered 07:00–08:00, 12:00–12:30 and 15:00–16:00.
    assert reasons(shift(), v) == [
        "anmäld tillgänglighet saknas 2026-12-01 07:00–08:00, 2026-12-01 12:00–12:30, 2026-12-01 15:00–16:00 "
        "(vikariens anmälda tillgänglighet)"
    ]
    assert rules_failed(shift(), v) == [Rule.AVAILABILITY]


def test_no_availability_during_the_shift() -> None:
    assert reasons(shift(), sub(available=[])) == [
        "ingen anmäld tillgänglighet under passet (vikariens anmälda tillgänglighet)"
    ]
    other_day = sub(available=[iv("2026-12-02T07:00", "2026-12-02T16:00")])
    assert reasons(shift(), other_day) == [
        "ingen anmäld tillgänglighet under passet (vikariens anmälda tillgänglighet)"
    ]


def test_night_shift_availability_gap_after_midnight() -> None:
    s = shift("2026-12-01T22:00", "2026-12-02T07:00")
    v = sub(available=[iv("2026-12-01T20:00", "2026-12-02T00:00")])
    assert reasons(s, v) == ["anmäld tillgänglighet saknas 2026-12-02 00:00–07:00 (vikariens anmälda tillgänglighet)"]


# --------------------------------------------------------------------------- overlap


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-12-01T06:00", "2026-12-01T10:00"),  # overlaps the start
        ("2026-12-01T10:00", "2026-12-01T12:00"),  # inside
        ("2026-12-01T15:59", "2026-12-01T20:00"),  # overlaps the end by one minute
        ("2026-12-01T00:00", "2026-12-02T00:00"),  # contains the shift
    ],
)
def test_overlapping_booking_is_a_clash(start: str, end: str) -> None:
    v = sub(bookings=[iv(start, end)])
    # Only the clash is reported: there is no rest "between" overlapping periods to measure.
    assert rules_failed(shift(), v) == [Rule.OVERLAP]
    assert reasons(shift(), v) == [f"krockar med bokning {format_interval(iv(start, end))} (dubbelbokning)"]


# --------------------------------------------------------------------------- time rules
#
# The rules of AB from 2023-10-01 and ATL are tested in tests/unit/test_bosse_worktime.py;
# here only how they show in the reasons next to the other rules.


def test_touching_booking_is_no_clash_but_no_rest_either() -> None:
    v = sub(bookings=[iv("2026-12-01T03:00", "2026-12-01T07:00")])
    # 03:00–16:00 is one work period of 13 h: allowed as a period, but the 24-hour period
    # from 09:00 (the default dygnsbryt) the day before ends with work 03:00–09:00 and
    # starts 16:00 the same day: fine; so it is the shift length that decides.
    assert rules_failed(shift(), v) == []
    longer = sub(bookings=[iv("2026-12-01T02:00", "2026-12-01T07:00")])
    assert rules_failed(shift(), longer) == [Rule.SHIFT_LENGTH]


# --------------------------------------------------------------------------- monthly cap


def test_monthly_cap_exactly_reached_is_ok() -> None:
    # 156 + 9 = 165 = the default cap.
    assert reasons(shift(), sub(hours_this_month=156)) == []


def test_monthly_cap_exceeded_by_a_little_fails() -> None:
    # 156,01 + 9 = 165,01 > 165.
    assert reasons(shift(), sub(hours_this_month=156.01)) == [
        "månadstak: 156,01 h bokade + 9 h pass = 165,01 h, högst 165 h tillåts (lokal regel, inte lag)"
    ]


def test_monthly_cap_is_exact_despite_binary_floats() -> None:
    # Shift 07:00–16:18 is 9,3 h; 155,7 + 9,3 = 165 exactly (in floats it is not).
    assert reasons(shift(end="2026-12-01T16:18"), sub(hours_this_month=155.7)) == []


def test_own_monthly_cap_overrides_the_default() -> None:
    assert reasons(shift(), sub(hours_this_month=91, max_hours_month=100)) == []
    assert reasons(shift(), sub(hours_this_month=92, max_hours_month=100)) == [
        "månadstak: 92 h bokade + 9 h pass = 101 h, högst 100 h tillåts (lokal regel, inte lag)"
    ]
    assert reasons(shift(), sub(hours_this_month=112), BosseRules(default_max_hours_month=120)) == [
        "månadstak: 112 h bokade + 9 h pass = 121 h, högst 120 h tillåts (lokal regel, inte lag)"
    ]


def test_monthly_cap_counts_the_real_length_of_a_dst_night() -> None:
    # Sat 24 Oct 22:00 -> Sun 07:00 is 10 h real: 155 + 10 = 165 fits, 155,5 does not.
    s = shift("2026-10-24T22:00", "2026-10-25T07:00")
    assert reasons(s, sub(hours_this_month=155)) == []
    assert reasons(s, sub(hours_this_month=155.5)) == [
        "månadstak: 155,5 h bokade + 10 h pass = 165,5 h, högst 165 h tillåts (lokal regel, inte lag)"
    ]


# --------------------------------------------------------------------------- many reasons


def test_every_failing_rule_is_reported_in_rule_order() -> None:
    s = shift(qualifications=["undersköterska"], medication_delegation=True, driving_licence=True)
    v = sub(
        available=[iv("2026-12-01T08:00", "2026-12-01T16:00")],
        bookings=[
            iv("2026-11-30T14:00", "2026-11-30T22:00"),  # 9 h rest before
            iv("2026-12-02T00:00", "2026-12-02T06:00"),  # 8 h rest after
        ],
        hours_this_month=160,
    )
    assert rules_failed(s, v) == [
        Rule.QUALIFICATION,
        Rule.MEDICATION_DELEGATION,
        Rule.DRIVING_LICENCE,
        Rule.AVAILABILITY,
        Rule.DAILY_REST,
        Rule.DAILY_REST,
        Rule.MONTHLY_CAP,
    ]
    period = "som delad tur skulle arbetspasset 2026-11-30 14:00–2026-12-02 06:00 bli 40 h, högst 13 h"
    source = "(AB § 13 från 2023-10-01: arbetspass följs av dygnsvila, högst 13 h)"
    assert reasons(s, v) == [
        "saknar kvalifikation undersköterska (passets krav)",
        "saknar läkemedelsdelegering (passets krav)",
        "saknar körkort (passets krav)",
        "anmäld tillgänglighet saknas 2026-12-01 07:00–08:00 (vikariens anmälda tillgänglighet)",
        f"dygnsvila 9 h före passet, minst 11 h krävs efter ett arbetspass; {period} {source}",
        f"dygnsvila 8 h efter passet, minst 11 h krävs efter ett arbetspass; {period} {source}",
        "månadstak: 160 h bokade + 9 h pass = 169 h, högst 165 h tillåts (lokal regel, inte lag)",
    ]


def test_a_clash_is_reported_without_the_rest_rules() -> None:
    v = sub(bookings=[iv("2026-12-01T15:00", "2026-12-01T17:00")], hours_this_month=160)
    assert rules_failed(shift(), v) == [Rule.OVERLAP, Rule.MONTHLY_CAP]


# --------------------------------------------------------------------------- ranking


def _ranked_ids(s: Shift, people: list[Substitute]) -> list[str]:
    return [c.id for c in rank_candidates(s, people)]


def test_priority_right_comes_before_fewer_hours() -> None:
    people = [sub("a", hours_this_month=10), sub("b", hours_this_month=150, priority_right=True)]
    assert _ranked_ids(shift(), people) == ["b", "a"]


def test_fewest_hours_this_month_comes_next() -> None:
    people = [sub("a", hours_this_month=100), sub("b", hours_this_month=40.5), sub("c", hours_this_month=60)]
    assert _ranked_ids(shift(), people) == ["b", "c", "a"]


def test_preferences_break_ties_in_hours_unit_before_distance() -> None:
    s = shift(unit="Solgården")
    people = [
        sub("a", hours_this_month=80, distance_km=1.0),
        sub("b", hours_this_month=80, distance_km=9.0, preferred_units=["solgården"]),
        sub("c", hours_this_month=80),  # distance unknown: last among equals
        sub("d", hours_this_month=80, distance_km=0.5),
        sub("e", hours_this_month=79, distance_km=50.0),  # fewer hours beats preferences
    ]
    assert _ranked_ids(s, people) == ["e", "b", "d", "a", "c"]


def test_unit_preference_is_ignored_when_the_shift_has_no_unit() -> None:
    people = [sub("a", distance_km=3.0), sub("b", distance_km=5.0, preferred_units=["Solgården"])]
    assert _ranked_ids(shift(), people) == ["a", "b"]


def test_tie_break_is_the_id_whatever_the_input_order() -> None:
    people = [
        sub("v3", hours_this_month=120),
        sub("v1", hours_this_month=120.0),
        sub("v2", hours_this_month=120),
    ]
    for order in itertools.permutations(people):
        assert _ranked_ids(shift(), list(order)) == ["v1", "v2", "v3"]


def test_ranking_explains_itself() -> None:
    s = shift(unit="Solgården")
    people = [
        sub("v1", hours_this_month=120, priority_right=True),
        sub("v2", hours_this_month=80, preferred_units=["Solgården"], distance_km=4.2),
        sub("v3", hours_this_month=80, preferred_units=["Solgården"], distance_km=4.2),
    ]
    ranked = rank_candidates(s, people)
    assert [(c.rank, c.id, c.why) for c in ranked] == [
        (
            1,
            "v1",
            "företrädesrätt; 120 h bokade denna månad; har inte önskat enheten Solgården; avstånd okänt",
        ),
        (
            2,
            "v2",
            "ingen företrädesrätt; 80 h bokade denna månad; önskar enheten Solgården; 4,2 km bort; "
            "lika med v3 i övrigt, ordning efter id",
        ),
        (
            3,
            "v3",
            "ingen företrädesrätt; 80 h bokade denna månad; önskar enheten Solgården; 4,2 km bort; "
            "lika med v2 i övrigt, ordning efter id",
        ),
    ]


def test_plain_why_without_unit_or_distance() -> None:
    ranked = rank_candidates(shift(), [sub("v1", hours_this_month=120.5)])
    assert ranked[0].why == "ingen företrädesrätt; 120,5 h bokade denna månad"


def test_ranking_edge_cases() -> None:
    assert rank_candidates(shift(), []) == []
    with pytest.raises(ValueError, match="unique"):
        rank_candidates(shift(), [sub("v1"), sub("v1")])


# --------------------------------------------------------------------------- contract

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


ISSUE_REASON = (
    "dygnsvila 9,5 h före passet, minst 11 h krävs efter ett arbetspass; som delad tur skulle arbetspasset "
    "2026-11-30 13:00–2026-12-01 16:00 bli 27 h, högst 13 h "
    "(AB § 13 från 2023-10-01: arbetspass följs av dygnsvila, högst 13 h)"
)


def test_issue_example_gives_the_issue_reason() -> None:
    # v1's booking ends Mon 21:30, the shift starts Tue 07:00: 9,5 h rest < 11 h.
    # Everything else holds: competence, availability 06–18, 120 + 9 = 129 <= 165,
    # and week 49 is free from Tue 16:00 on.
    expected: MatchResult = {
        "eligible": [],
        "ineligible": [{"id": "v1", "reasons": [ISSUE_REASON]}],
    }
    assert match(ISSUE_EXAMPLE) == expected


def test_issue_example_from_json_text_and_back() -> None:
    text = json.dumps(ISSUE_EXAMPLE, ensure_ascii=False)
    result = match_json(text)
    assert result == match(ISSUE_EXAMPLE)
    assert json.loads(json.dumps(result)) == result  # plain JSON types only


def test_rules_are_passed_through_match() -> None:
    result = match(ISSUE_EXAMPLE, BosseRules(min_daily_rest_hours=9.5))
    assert result == {
        "eligible": [{"id": "v1", "rank": 1, "why": "ingen företrädesrätt; 120 h bokade denna månad"}],
        "ineligible": [],
    }


def test_mixed_example_ranks_the_eligible_and_explains_the_rest() -> None:
    payload = copy.deepcopy(ISSUE_EXAMPLE)
    payload["shift"]["unit"] = "Solgården"
    whole_day = [{"start": "2026-12-01T00:00", "end": "2026-12-02T00:00"}]
    payload["substitutes"] += [
        # v2: priority right, availability exactly the shift, no bookings.
        {
            "id": "v2",
            "qualifications": ["Undersköterska"],
            "medication_delegation": True,
            "available": [{"start": "2026-12-01T07:00", "end": "2026-12-01T16:00"}],
            "hours_this_month": 140,
            "priority_right": True,
        },
        # v4: no delegation and no availability: two reasons.
        {"id": "v4", "qualifications": ["undersköterska"], "hours_this_month": 10},
        # v5 and v3: 80 h each; v3 wants Solgården so comes first despite the longer way.
        {
            "id": "v5",
            "qualifications": ["undersköterska"],
            "medication_delegation": True,
            "available": whole_day,
            "hours_this_month": 80,
            "distance_km": 2,
        },
        {
            "id": "v3",
            "qualifications": ["undersköterska"],
            "medication_delegation": True,
            "available": whole_day,
            "hours_this_month": 80,
            "preferred_units": ["Solgården"],
            "distance_km": 4.2,
        },
    ]
    assert match(payload) == {
        "eligible": [
            {
                "id": "v2",
                "rank": 1,
                "why": ("företrädesrätt; 140 h bokade denna månad; har inte önskat enheten Solgården; avstånd okänt"),
            },
            {
                "id": "v3",
                "rank": 2,
                "why": "ingen företrädesrätt; 80 h bokade denna månad; önskar enheten Solgården; 4,2 km bort",
            },
            {
                "id": "v5",
                "rank": 3,
                "why": ("ingen företrädesrätt; 80 h bokade denna månad; har inte önskat enheten Solgården; 2 km bort"),
            },
        ],
        "ineligible": [  # input order
            {"id": "v1", "reasons": [ISSUE_REASON]},
            {
                "id": "v4",
                "reasons": [
                    "saknar läkemedelsdelegering (passets krav)",
                    "ingen anmäld tillgänglighet under passet (vikariens anmälda tillgänglighet)",
                ],
            },
        ],
    }


def test_contract_times_are_swedish_local_time() -> None:
    data = parse_match_input(ISSUE_EXAMPLE)
    assert data.shift.start == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # 07:00 CET
    payload = copy.deepcopy(ISSUE_EXAMPLE)
    payload["shift"]["start"] = "2026-10-25T02:30"  # repeated hour: first occurrence
    payload["shift"]["end"] = "2026-10-25T02:30+01:00"  # explicit offset: the second one
    data = parse_match_input(payload)
    assert data.shift.end - data.shift.start == timedelta(hours=1)


def test_minimal_substitute_uses_defaults() -> None:
    payload = {
        "shift": {"id": "s1", "start": "2026-12-01T07:00", "end": "2026-12-01T16:00"},
        "substitutes": [
            {
                "id": "v1",
                "hours_this_month": 0,
                "available": [{"start": "2026-12-01T07:00", "end": "2026-12-01T16:00"}],
            }
        ],
    }
    assert match(payload)["eligible"] == [
        {"id": "v1", "rank": 1, "why": "ingen företrädesrätt; 0 h bokade denna månad"}
    ]


def _mutated(path: list[str | int], value: Any) -> dict[str, Any]:
    """The issue example with one value replaced (or removed, for ``...``)."""
    payload = copy.deepcopy(ISSUE_EXAMPLE)
    node: Any = payload
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_mutated(["shift"], ...), "invalid input at shift: is required"),
        (_mutated(["shift", "start"], ...), "invalid input at shift.start: is required"),
        (
            _mutated(["shift", "end"], "2026-12-01T06:00"),
            "invalid input at shift.end: end must be after start",
        ),
        (
            _mutated(["shift", "end"], "2026-12-01T07:00"),
            "invalid input at shift.end: end must be after start",
        ),
        (
            _mutated(["substitutes", 0, "available", 0, "end"], "2026-12-01T05:00"),
            "invalid input at substitutes[0].available[0].end: end must be after start",
        ),
        (
            _mutated(["substitutes", 0, "colour"], "blue"),
            "invalid input at substitutes[0].colour: unknown key (not part of the contract)",
        ),
        (_mutated(["rules"], {}), "invalid input at rules: unknown key (not part of the contract)"),
        (
            _mutated(["substitutes", 0, "driving_licence"], "yes"),
            "invalid input at substitutes[0].driving_licence: input should be a valid boolean",
        ),
        (
            _mutated(["shift", "medication_delegation"], 1),
            "invalid input at shift.medication_delegation: input should be a valid boolean",
        ),
        (
            _mutated(["substitutes", 0, "hours_this_month"], -1),
            "invalid input at substitutes[0].hours_this_month: input should be greater than or equal to 0",
        ),
        (
            _mutated(["substitutes", 0, "hours_this_month"], "120"),
            "invalid input at substitutes[0].hours_this_month: input should be a valid number",
        ),
        (
            _mutated(["substitutes", 0, "hours_this_month"], ...),
            "invalid input at substitutes[0].hours_this_month: is required",
        ),
        (
            _mutated(["substitutes", 0, "max_hours_month"], 0),
            "invalid input at substitutes[0].max_hours_month: input should be greater than 0",
        ),
        (
            _mutated(["shift", "start"], "2026-12-01"),
            "invalid input at shift.start: expected a time like '2026-12-01T07:00', got '2026-12-01'",
        ),
        (
            _mutated(["shift", "start"], 1764568800),
            "invalid input at shift.start: expected a time as a string like '2026-12-01T07:00'",
        ),
        (
            _mutated(["shift", "start"], "2026-02-30T07:00"),
            "invalid input at shift.start: '2026-02-30T07:00' is not a valid",
        ),
        (
            _mutated(["shift", "start"], "2026-03-29T02:30"),
            "invalid input at shift.start: 2026-03-29T02:30 does not exist in Swedish time",
        ),
        (_mutated(["shift", "id"], ""), "invalid input at shift.id: string should have at least 1 character"),
        (_mutated(["substitutes"], {"id": "v1"}), "invalid input at substitutes: expected a JSON array"),
        (_mutated(["shift"], []), "invalid input at shift: expected a JSON object"),
        (
            _mutated(["substitutes"], ISSUE_EXAMPLE["substitutes"] * 2),
            "invalid input at substitutes: duplicate substitute id 'v1'",
        ),
        ([], "invalid input: expected a JSON object"),
    ],
)
def test_invalid_input_names_the_field(payload: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        match(payload)
    line = format_validation_error(caught.value)
    assert line.startswith(message)
    assert "\n" not in line


def test_several_errors_are_counted_on_one_line() -> None:
    payload = _mutated(["shift", "start"], ...)
    payload["shift"]["colour"] = "blue"
    del payload["substitutes"][0]["hours_this_month"]
    with pytest.raises(ValidationError) as caught:
        match(payload)
    assert format_validation_error(caught.value) == "invalid input at shift.start: is required (and 2 more errors)"


def test_malformed_json_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        match_json('{"shift": ')
    line = format_validation_error(caught.value)
    assert line.startswith("invalid input: invalid JSON")
    assert "\n" not in line
