"""The working-time rules of AB (from 2023-10-01) and ATL as Bosse applies them.

Times are Swedish local time; December 2026 is CET. The default dygnsbryt is 09:00 unless
a test sets another. Each expectation is worked out by hand in the comments.
"""

from __future__ import annotations

import json
from datetime import datetime, time
from fractions import Fraction
from typing import Any

import pytest
from typer.testing import CliRunner

from robots.bosse.audit_check import Limits, Person, audit
from robots.bosse.cli import make_app
from robots.bosse.contract import match
from robots.bosse.rules import (
    BosseRules,
    Interval,
    PeriodHours,
    Rule,
    Shift,
    Substitute,
    check_eligibility,
    counters,
    exception_option,
    local_to_utc,
)


def t(local: str) -> datetime:
    return local_to_utc(datetime.fromisoformat(local))


def iv(start: str, end: str) -> Interval:
    return Interval(t(start), t(end))


ALWAYS = (iv("2026-01-01T00:00", "2027-03-01T00:00"),)


def shift(start: str, end: str, unit: str | None = None) -> Shift:
    return Shift("s1", t(start), t(end), unit=unit)


def sub(**kw: Any) -> Substitute:
    kw.setdefault("available", ALWAYS)
    kw.setdefault("hours_this_month", 0.0)
    return Substitute("v1", **kw)


def failed(s: Shift, v: Substitute, rules: BosseRules | None = None) -> list[Rule]:
    return [x.rule for x in check_eligibility(s, v, rules or BosseRules())]


# -- arbetspass -------------------------------------------------------------------------------


def test_a_16_hour_shift_with_nothing_around_it_is_refused() -> None:
    found = check_eligibility(shift("2026-12-01T07:00", "2026-12-01T23:00"), sub())
    assert [v.rule for v in found] == [Rule.SHIFT_LENGTH]
    assert found[0].reason.startswith("arbetspasset 2026-12-01 07:00–23:00 blir 16 h, högst 13 h")
    assert "AB § 13 från 2023-10-01" in found[0].reason


def test_13_hours_is_the_longest_work_period() -> None:
    # 07:00–20:00 with dygnsbryt 07:00: the period 07–07 has 20:00–07:00 = 11 h of rest.
    v = sub(day_break=time(7, 0))
    assert failed(shift("2026-12-01T07:00", "2026-12-01T20:00"), v) == []
    assert failed(shift("2026-12-01T07:00", "2026-12-01T20:15"), v) == [Rule.SHIFT_LENGTH]


def test_a_split_shift_is_judged_as_one_work_period() -> None:
    # 07–10 booked + 16–20 offered: one work period 07–20 = 13 h, then 11 h rest: allowed.
    booked = sub(bookings=[iv("2026-12-01T07:00", "2026-12-01T10:00")])
    assert failed(shift("2026-12-01T16:00", "2026-12-01T20:00"), booked) == []
    # 16–21 makes it 14 h: the 6 h between is not a dygnsvila, so it is refused.
    found = check_eligibility(shift("2026-12-01T16:00", "2026-12-01T21:00"), booked)
    assert [v.rule for v in found] == [Rule.DAILY_REST]
    assert "som delad tur skulle arbetspasset 2026-12-01 07:00–21:00 bli 14 h" in found[0].reason


def test_rest_between_two_shifts_must_be_a_full_dygnsvila() -> None:
    # Evening 13:30–21:30 then day 07:00: 9,5 h between, one 'period' of 27 h: refused.
    v = sub(bookings=[iv("2026-11-30T13:30", "2026-11-30T21:30")])
    assert failed(shift("2026-12-01T07:00", "2026-12-01T16:00"), v) == [Rule.DAILY_REST]
    # Ending 20:00 leaves exactly 11 h: allowed.
    ok = sub(bookings=[iv("2026-11-30T12:00", "2026-11-30T20:00")])
    assert failed(shift("2026-12-01T07:00", "2026-12-01T16:00"), ok) == []


# -- dygnsvila per 24-hour period from the dygnsbryt --------------------------------------------


def test_the_dygnsbryt_decides_whether_the_rest_is_continuous() -> None:
    s = shift("2026-12-01T07:00", "2026-12-01T19:00")  # 12 h
    # Dygnsbryt 00:00: the day 00–24 has 00–07 (7 h) and 19–24 (5 h) free: no 11 h in one piece.
    midnight = check_eligibility(s, sub(day_break=time(0, 0)))
    assert [v.rule for v in midnight] == [Rule.DAILY_REST]
    assert "dygnsbryt 00:00" in midnight[0].reason and "som längst 7 h" in midnight[0].reason
    # Dygnsbryt 07:00: the period 07–07 has 19:00–07:00 = 12 h free.
    assert failed(s, sub(day_break=time(7, 0))) == []


def test_the_dygnsbryt_comes_from_the_person_then_the_workplace_then_the_default() -> None:
    rules = BosseRules(default_day_break=time(0, 0), day_break_by_unit={"Solgården": time(7, 0)})
    at_unit = shift("2026-12-01T07:00", "2026-12-01T19:00", unit="solgården")
    elsewhere = shift("2026-12-01T07:00", "2026-12-01T19:00", unit="Vidablick")
    assert failed(at_unit, sub(), rules) == []  # the unit's 07:00
    assert failed(elsewhere, sub(), rules) == [Rule.DAILY_REST]  # the default 00:00
    assert failed(elsewhere, sub(day_break=time(7, 0)), rules) == []  # the person's own


# -- veckovila ---------------------------------------------------------------------------------


def _mon_to_fri(start: str = "07:00", end: str = "16:00") -> list[Interval]:
    return [iv(f"2026-11-{d}T{start}", f"2026-11-{d}T{end}") for d in ("23", "24", "25", "26", "27")]


def test_weekly_rest_may_start_right_after_a_shift_when_the_days_rest_came_before() -> None:
    # Dygnsbryt 07:00. Mon–Fri 07–16, and Sat 21:15–Sun 07:15 offered. The 7-day period is
    # Mon 07:00 – Mon 07:00. Fri 16:00 – Sat 21:15 is 29,25 h: too short; Sun 07:15 – Mon
    # 07:00 is 23,75 h: too short. Refused.
    v = sub(day_break=time(7, 0), bookings=_mon_to_fri())
    assert failed(shift("2026-11-28T21:15", "2026-11-29T07:15"), v) == [Rule.WEEKLY_REST]
    # Offered Fri 07–16 instead (Mon–Thu booked): Fri 16:00 – Mon 07:00 is 63 h. The day
    # period Fri 07 – Sat 07 rests 16:00–07:00 (15 h); its rest and a 36 h rest from Sat
    # 07:00 do not overlap. Allowed.
    v4 = sub(day_break=time(7, 0), bookings=_mon_to_fri()[:4])
    assert failed(shift("2026-11-27T07:00", "2026-11-27T16:00"), v4) == []


def test_weekly_rest_does_not_overlap_the_daily_rest() -> None:
    # Dygnsbryt 09:00 (the default); Mon–Fri 07–16 and Saturday 20:00–24:00 offered: the
    # 7-day period Mon 09:00 – Mon 09:00 then has Fri 16:00 – Sat 20:00 (28 h) and Sun 00:00 –
    # Mon 09:00 (33 h) free: no 36 h. Refused.
    assert Rule.WEEKLY_REST in failed(shift("2026-11-28T20:00", "2026-11-29T00:00"), sub(bookings=_mon_to_fri()))
    # Saturday 07:00–14:00 offered instead, dygnsbryt 18:00. Free Sat 14:00 – Mon 07:00 = 41 h, but the
    # period Fri 18:00 – Sat 18:00 holds Saturday's work and rests only 18:00–07:00 = 13 h,
    # before it: the veckovila can start at 14:00 and reach Mon 02:00. Allowed.
    v = sub(day_break=time(18, 0), bookings=_mon_to_fri())
    assert failed(shift("2026-11-28T07:00", "2026-11-28T14:00"), v) == []
    # With dygnsbryt 12:00 the period Sat 12:00 – Sun 12:00 holds 12:00–14:00 work and
    # needs its 11 h outside the veckovila: 14:00–01:00, then 36 h reach Mon 13:00, past the
    # 7-day period's end (Mon 12:00). Refused: weekly rest would overlap daily rest.
    v12 = sub(day_break=time(12, 0), bookings=_mon_to_fri())
    assert failed(shift("2026-11-28T07:00", "2026-11-28T14:00"), v12) == [Rule.WEEKLY_REST]


# -- övertid, mertid, average ---------------------------------------------------------------------


def _long_week() -> list[Interval]:
    # Mon 7 – Fri 11 Dec, 07:00–19:00: 60 h in week 50 (dygnsbryt 07:00 keeps each day legal).
    return [iv(f"2026-12-{d:02d}T07:00", f"2026-12-{d:02d}T19:00") for d in (7, 8, 9, 10, 11)]


def test_overtime_is_counted_from_the_bookings_and_shown_in_swedish() -> None:
    v = sub(day_break=time(7, 0), bookings=_long_week()[:4], overtime_hours=PeriodHours(month=30))
    s = shift("2026-12-11T07:00", "2026-12-11T19:00")
    texts = [c.text for c in counters(s, v)]
    # 60 h in the week, 40 h full time: 20 h overtime, + 30 h earlier this month = 50 h.
    assert "övertid i december: 50 av 50 h" in texts
    assert "övertid under 2026: 20 av 200 h" in texts
    assert failed(s, v) == []
    over = sub(day_break=time(7, 0), bookings=_long_week()[:4], overtime_hours=PeriodHours(month=30.5))
    found = check_eligibility(s, over)
    assert [x.rule for x in found] == [Rule.OVERTIME]
    assert found[0].reason == "övertid i december: 50,5 av 50 h med passet, gränsen överskrids (ATL 8 §)"


def test_mertid_for_a_part_timer() -> None:
    # Contract 30 h: hours 30–40 of a week are mertid, beyond 40 overtime.
    v = sub(day_break=time(7, 0), bookings=_long_week()[:3], contract_hours_week=30, extra_hours=PeriodHours(year=195))
    s = shift("2026-12-10T07:00", "2026-12-10T12:00")  # 36 + 5 = 41 h: 10 h mertid, 1 h overtime
    texts = [c.text for c in counters(s, v)]
    assert "mertid under 2026: 205 av 200 h" in texts
    assert "övertid i december: 1 av 50 h" in texts
    assert failed(s, v) == [Rule.EXTRA_TIME]


def test_hours_within_full_time_add_no_overtime() -> None:
    v = sub(day_break=time(7, 0), bookings=_long_week()[:2], overtime_hours=PeriodHours(month=50))
    assert failed(shift("2026-12-09T07:00", "2026-12-09T19:00"), v) == []  # 36 h in the week


def test_the_48_hour_average_over_the_reference_period() -> None:
    # One-month reference period and an average of 10 h a week: December allows 10 × 31/7 =
    # 44,29 h; 36 h booked + 9 h = 45 h is over.
    rules = BosseRules(average_reference_months=1, max_average_week_hours=10)
    v = sub(day_break=time(7, 0), bookings=_long_week()[:3])
    found = check_eligibility(shift("2026-12-20T07:00", "2026-12-20T16:00"), v, rules)
    assert [x.rule for x in found] == [Rule.AVERAGE_HOURS]
    assert "(ATL 10 b §)" in found[0].reason


def test_the_local_monthly_cap_says_it_is_local() -> None:
    found = check_eligibility(shift("2026-12-01T07:00", "2026-12-01T16:00"), sub(hours_this_month=160))
    assert found[0].reason.endswith("(lokal regel, inte lag)")
    assert (
        failed(
            shift("2026-12-01T07:00", "2026-12-01T16:00"),
            sub(hours_this_month=160),
            BosseRules(default_max_hours_month=None),
        )
        == []
    )


# -- exceptions are described, never used ----------------------------------------------------------


def test_an_exception_is_only_described_with_its_compensating_rest() -> None:
    long = check_eligibility(shift("2026-12-01T07:00", "2026-12-01T23:00"), sub())
    option = exception_option(long)
    assert option is not None
    assert option.compensating_rest_hours == Fraction(16)  # rest after at least as long as the period
    assert "Bosse bokar inte på undantag" in option.text
    short_rest = check_eligibility(
        shift("2026-12-01T07:00", "2026-12-01T16:00"), sub(bookings=[iv("2026-11-30T13:30", "2026-11-30T21:30")])
    )
    option = exception_option(short_rest)
    assert option is not None and option.compensating_rest_hours == Fraction(3, 2)  # 11 − 9,5
    # Anything else failing too: no exception.
    assert exception_option(check_eligibility(shift("2026-12-01T07:00", "2026-12-01T23:00"), sub(available=()))) is None
    # Over 20 h: AB's exception periods are at most 20 h.
    assert exception_option(check_eligibility(shift("2026-12-01T02:00", "2026-12-01T23:00"), sub())) is None


# -- the contract --------------------------------------------------------------------------------

PAYLOAD: dict[str, Any] = {
    "shift": {"id": "s1", "start": "2026-12-11T07:00", "end": "2026-12-11T19:00"},
    "substitutes": [
        {
            "id": "v1",
            "available": [{"start": "2026-12-01T00:00", "end": "2026-12-31T00:00"}],
            "bookings": [{"start": f"2026-12-{d:02d}T07:00", "end": f"2026-12-{d:02d}T19:00"} for d in (7, 8, 9, 10)],
            "hours_this_month": 48,
            "day_break": "07:00",
            "overtime_hours": {"four_weeks": 0, "month": 31, "year": 100},
            "extra_hours": {"year": 0},
            "contract_hours_week": 40,
        }
    ],
}


def test_the_optional_fields_are_read() -> None:
    result = match(PAYLOAD)
    assert result["eligible"] == []
    assert result["ineligible"] == [
        {"id": "v1", "reasons": ["övertid i december: 51 av 50 h med passet, gränsen överskrids (ATL 8 §)"]}
    ]
    fewer = json.loads(json.dumps(PAYLOAD))
    fewer["substitutes"][0]["overtime_hours"]["month"] = 30
    assert [e["id"] for e in match(fewer)["eligible"]] == ["v1"]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("day_break",), "7:00", "substitutes[0].day_break"),
        (("day_break",), "25:00", "substitutes[0].day_break"),
        (("overtime_hours", "moth"), 1, "substitutes[0].overtime_hours.moth"),
        (("extra_hours", "year"), -1, "substitutes[0].extra_hours.year"),
        (("contract_hours_week",), "30", "substitutes[0].contract_hours_week"),
    ],
)
def test_bad_optional_fields_exit_2_naming_the_field(
    tmp_path: Any, path: tuple[str, ...], value: Any, field: str
) -> None:
    payload = json.loads(json.dumps(PAYLOAD))
    target = payload["substitutes"][0]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    file = tmp_path / "in.json"
    file.write_text(json.dumps(payload), encoding="utf-8")
    result = CliRunner().invoke(make_app(), ["match", str(file), "--json"])
    assert result.exit_code == 2
    assert f"invalid input at {field}:" in result.stderr


# -- the independent check sees what the rules forbid ------------------------------------------------


def test_the_independent_check_flags_a_roster_that_breaks_the_rules() -> None:
    bookings = [(t("2026-12-01T07:00"), t("2026-12-01T23:00"))]
    findings = audit({"v": Person("v", bookings, time(9, 0))}, [("v", *bookings[0])], Limits())
    assert {f.rule for f in findings} >= {"work_period"}
    split = [(t("2026-12-01T07:00"), t("2026-12-01T10:00")), (t("2026-12-01T16:00"), t("2026-12-01T20:00"))]
    assert audit({"v": Person("v", split, time(9, 0))}, [("v", *split[1])], Limits()) == []
