"""Ronney's pure checks and comparisons: reading an application, validation, register and month-to-month.

Test personnummer only: birth numbers 980–999 with a Luhn check digit (see sandbox/people.py).
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from stdnum import luhn

from core.errors import BusinessError
from core.logging import PERSONNUMMER_RE
from robots.ronney.application import MalformedApplication, parse_application, parse_lookup
from robots.ronney.checks import (
    InconsistentHousehold,
    InvalidAmount,
    InvalidPersonnummer,
    WrongTenant,
    age_flags,
    application_flags,
    household_for_norm,
    kr,
    missing_items,
    month_name,
    overdue_complements,
    validate,
)
from robots.ronney.compare import compare_incomes, compare_previous, register_flags
from robots.ronney.norm import Household, calculate
from robots.ronney.settings import RonneySettings
from robots.ronney.tables import load_table


def pnr(yyyymmdd: str, birth: int = 981) -> str:
    """A valid test personnummer, 12 digits."""
    ten = f"{yyyymmdd[2:]}{birth:03d}"
    return f"{yyyymmdd[:2]}{ten}{luhn.calc_check_digit(ten)}"


ANNA = pnr("19850101", 982)
OLLE = pnr("19830612", 983)
KID = pnr("20210405", 984)


def application(**changes: Any) -> dict[str, Any]:
    """A valid re-application as the e-service gives it: Anna with a child, aged 5."""
    app: dict[str, Any] = {
        "id": "EB-202612-0001",
        "tenant": "1081",
        "kind": "reapplication",
        "month": "2026-12",
        "income_period": {"from": "2026-11-01", "to": "2026-11-30"},
        "submitted_at": "2026-11-12T07:41:00+01:00",
        "updated_at": "2026-11-12T07:41:00+01:00",
        "status": "submitted",
        "applicant": {"personnummer": ANNA, "first_name": "Anna", "last_name": "Berg", "age": 41},
        "co_applicant": None,
        "cohabiting": False,
        "children": [
            {"personnummer": KID, "first_name": "Elsa", "last_name": "Berg", "age": 5, "lunch_at_home": False}
        ],
        "other_household_members": 0,
        "address": {"street": "Sjövägen 32", "postal_code": "370 21", "city": "Listerby", "area": "Listerby"},
        "costs": {
            "rent": 7000,
            "household_electricity": 300,
            "home_insurance": 150,
            "work_travel": 0,
            "union_fee": 0,
            "unemployment_fund_fee": 0,
            "childcare": 500,
            "medical": 0,
            "dental_acute": 0,
        },
        "incomes": [
            {"personnummer": ANNA, "type": "salary", "amount": 9000, "payer": "Kallinge Bygg AB"},
            {"personnummer": ANNA, "type": "child_allowance", "amount": 1250, "payer": "Försäkringskassan"},
        ],
        "months_on_support": 8,
        "job_stimulus_active": False,
        "attachments": [
            {"id": "A1", "type": "kontoutdrag", "filename": "k.pdf", "received_at": "2026-11-12T07:41:00+01:00"},
            {"id": "A2", "type": "hyresavi", "filename": "h.pdf", "received_at": "2026-11-12T07:41:00+01:00"},
            {"id": "A3", "type": "lonespecifikation", "filename": "l.pdf", "received_at": "2026-11-12T07:41:00+01:00"},
        ],
        "complement_requests": [],
        "previous_decision": {
            "month": "2026-11",
            "decision": "approved",
            "amount": 6000,
            "decided_at": "2026-10-28",
            "basis": {"rent": 7000, "household_size": 2, "income_total": 10250},
        },
        "decision": None,
    }
    app.update(changes)
    return app


def lookup_answer(
    person: str,
    *,
    fk: list[dict[str, Any]] = (),
    salary: list[dict[str, Any]] = (),
    registered: bool = True,
    vehicles: list[dict[str, Any]] = (),
    found: bool = True,
    municipality: str = "Ronneby kommun",
    street: str = "Sjövägen 32",
) -> dict[str, Any]:
    """A register answer in the sandbox's shape (sandbox/API.md, b)."""
    return {
        "request_id": "SSBTEK-0000001",
        "fetched_at": "2026-11-23T01:00:00+01:00",
        "personnummer": person,
        "case_id": "EB-202612-0001",
        "found": found,
        "sources": {
            "forsakringskassan": {"status": "ok" if fk else "no_data", "payments": list(fk)},
            "pensionsmyndigheten": {"status": "no_data", "payments": []},
            "arbetsformedlingen": {"status": "ok", "registered": registered, "extent_percent": 100},
            "csn": {"status": "no_data", "payments": []},
            "skatteverket": {
                "status": "ok",
                "income": list(salary),
                "folkbokforing": {
                    "street": street,
                    "postal_code": "370 21",
                    "city": "Listerby",
                    "municipality": municipality,
                },
            },
            "akassa": {"status": "no_data", "payments": []},
            "transportstyrelsen": {"status": "ok", "vehicles": list(vehicles)},
        },
    }


def salary_row(month: str, net: int, employer: str = "Kallinge Bygg AB") -> dict[str, Any]:
    return {
        "employer": employer,
        "month": month,
        "gross": round(net / 0.7),
        "preliminary_tax": 0,
        "net": net,
        "source": "arbetsgivardeklaration",
    }


def fk_row(month: str, kind: str, amount: int, benefit: str) -> dict[str, Any]:
    return {"benefit": benefit, "type": kind, "month": month, "amount": amount, "paid_on": f"{month}-25"}


AGREEING = lookup_answer(
    ANNA,
    fk=[fk_row("2026-11", "child_allowance", 1250, "barnbidrag")],
    salary=[salary_row("2026-09", 8800), salary_row("2026-10", 9100), salary_row("2026-11", 9000)],
)


def compare(app: dict[str, Any], answer: dict[str, Any] = AGREEING, tolerance: int = 100) -> Any:
    parsed = parse_application(app)
    return compare_incomes(
        parsed, {ANNA: parse_lookup(ANNA, answer)}, tolerance=tolerance, months=["2026-09", "2026-10", "2026-11"]
    )


def assert_no_personnummer(message: str) -> None:
    for number in (ANNA, OLLE, KID):
        assert number not in message and number[2:] not in message
    assert not PERSONNUMMER_RE.search(message.replace("EB-202612-0001", "")), message


class TestReading:
    """An application that cannot be read is a business error naming the field, never its value."""

    def test_a_valid_application_reads(self) -> None:
        app = parse_application(application())
        assert app.members == 2 and app.year == 2026 and app.income_month == "2026-11"
        assert [a.first_name for a in app.adults] == ["Anna"]

    def test_unknown_extra_keys_from_a_newer_e_service_are_ignored(self) -> None:
        assert parse_application(application(new_field={"x": 1})).id == "EB-202612-0001"

    @pytest.mark.parametrize(
        ("change", "needle"),
        [
            ({"applicant": None}, "applicant"),
            ({"costs": "sjutusen"}, "costs"),
            ({"income_period": {"from": "igår"}}, "income_period"),
            ({"kind": "förnyelse"}, "kind"),
        ],
    )
    def test_malformed_application_names_the_field(self, change: dict[str, Any], needle: str) -> None:
        with pytest.raises(MalformedApplication) as info:
            parse_application(application(**change))
        assert needle in info.value.message
        assert info.value.code == "malformed_application"
        assert_no_personnummer(info.value.message)

    def test_missing_field_says_saknas(self) -> None:
        raw = application()
        del raw["cohabiting"]
        with pytest.raises(MalformedApplication, match="cohabiting saknas"):
            parse_application(raw)

    def test_not_an_object(self) -> None:
        with pytest.raises(MalformedApplication):
            parse_application(["EB-1"])

    def test_bad_register_answer_is_a_value_error(self) -> None:
        with pytest.raises(ValueError):
            parse_lookup(ANNA, {"sources": {"forsakringskassan": {"payments": [{"amount": 1}]}}})
        with pytest.raises(ValueError):
            parse_lookup(ANNA, {"error": "x"})


class TestValidation:
    """Bad data stops the item with a message a case worker understands and no personnummer in it."""

    def test_valid_application_passes(self) -> None:
        validate(parse_application(application()), tenant="1081")

    @pytest.mark.parametrize("who", ["applicant", "child", "co_applicant"])
    def test_invalid_personnummer(self, who: str) -> None:
        raw = application(
            co_applicant={"personnummer": OLLE, "first_name": "Olle", "last_name": "Berg", "age": 43}, cohabiting=True
        )
        member = raw["children"][0] if who == "child" else raw[who]
        member["personnummer"] = member["personnummer"][:-1] + str((int(member["personnummer"][-1]) + 1) % 10)
        with pytest.raises(InvalidPersonnummer) as info:
            validate(parse_application(raw))
        role = {"applicant": "sökande", "child": "barn 1", "co_applicant": "medsökande"}[who]
        assert f"för {role}:" in info.value.message
        assert info.value.code == "invalid_personnummer"
        assert_no_personnummer(info.value.message)

    def test_same_person_twice(self) -> None:
        raw = application()
        raw["children"][0]["personnummer"] = ANNA
        with pytest.raises(InconsistentHousehold, match="sökande och barn 1"):
            validate(parse_application(raw))

    def test_cohabiting_without_co_applicant(self) -> None:
        with pytest.raises(InconsistentHousehold, match="sambo men har ingen medsökande") as info:
            validate(parse_application(application(cohabiting=True)))
        assert info.value.code == "household_inconsistent"

    def test_co_applicant_who_is_not_a_sambo(self) -> None:
        raw = application(co_applicant={"personnummer": OLLE, "age": 43})
        with pytest.raises(InconsistentHousehold, match="inte anges som sambo"):
            validate(parse_application(raw))

    def test_adult_child_is_not_a_child(self) -> None:
        raw = application()
        raw["children"][0]["age"] = 23
        with pytest.raises(InconsistentHousehold, match="Barn 1 är 23 år"):
            validate(parse_application(raw))

    def test_applicant_under_18(self) -> None:
        raw = application()
        raw["applicant"]["age"] = 16
        with pytest.raises(InconsistentHousehold, match="Sökande är 16 år"):
            validate(parse_application(raw))

    def test_negative_rent(self) -> None:
        raw = application()
        raw["costs"]["rent"] = -7000
        with pytest.raises(InvalidAmount, match=r"Negativt belopp för boendekostnad \(hyra\) i ansökan \(-7 000 kr\)"):
            validate(parse_application(raw))

    def test_negative_income(self) -> None:
        raw = application()
        raw["incomes"][0]["amount"] = -5
        with pytest.raises(InvalidAmount, match="inkomsten lön"):
            validate(parse_application(raw))

    def test_unknown_cost_is_malformed(self) -> None:
        raw = application()
        raw["costs"]["yacht"] = 100
        with pytest.raises(MalformedApplication, match="okänd kostnad yacht"):
            validate(parse_application(raw))

    def test_income_of_someone_outside_the_application(self) -> None:
        raw = application()
        raw["incomes"][0]["personnummer"] = OLLE
        with pytest.raises(InconsistentHousehold, match="inte finns i ansökan") as info:
            validate(parse_application(raw))
        assert_no_personnummer(info.value.message)

    def test_application_of_another_municipality(self) -> None:
        with pytest.raises(WrongTenant, match="kommun 1081, inte 1082"):
            validate(parse_application(application()), tenant="1082")

    def test_every_validation_error_is_a_business_error(self) -> None:
        for cls in (InvalidPersonnummer, InconsistentHousehold, InvalidAmount, WrongTenant, MalformedApplication):
            assert issubclass(cls, BusinessError) and not cls.retryable


class TestMissing:
    """Required attachments and complements not yet in."""

    def test_complete_application_misses_nothing(self) -> None:
        assert missing_items(parse_application(application())) == []

    def test_required_attachments(self) -> None:
        raw = application(attachments=[])
        texts = [m["text"] for m in missing_items(parse_application(raw))]
        assert texts == [
            "Kontoutdrag saknas (krävs alltid)",
            "Hyresavi saknas (krävs när ansökan har hyra)",
            "Lönespecifikation saknas (krävs när ansökan har lön)",
        ]

    def test_no_rent_no_payslip_needed(self) -> None:
        raw = application(attachments=[{"id": "A1", "type": "kontoutdrag"}], incomes=[])
        raw["costs"]["rent"] = 0
        assert missing_items(parse_application(raw)) == []

    def test_outstanding_complement(self) -> None:
        raw = application(
            complement_requests=[
                {
                    "id": "K1",
                    "what": "Hyresavi för december",
                    "requested_at": "2026-11-10T10:00:00+01:00",
                    "requested_by": "anna",
                    "due": "2026-11-17",
                    "arrived_at": None,
                },
                {
                    "id": "K2",
                    "what": "Kontoutdrag",
                    "requested_at": "2026-11-10T10:00:00+01:00",
                    "requested_by": "anna",
                    "due": "2026-11-17",
                    "arrived_at": "2026-11-12T09:00:00+01:00",
                },
            ]
        )
        missing = missing_items(parse_application(raw))
        assert [m["what"] for m in missing] == ["komplettering"]
        assert "Hyresavi för december" in missing[0]["text"] and "senast 2026-11-17" in missing[0]["text"]

    def test_overdue_complements_after_the_configured_days(self) -> None:
        raw = application(
            complement_requests=[
                {"id": "K1", "what": "Hyresavi", "requested_at": "2026-11-13T10:00:00+01:00", "due": "2026-11-20"}
            ]
        )
        app = parse_application(raw)
        assert overdue_complements(app, date(2026, 11, 22), 10) == []
        assert [c.id for c in overdue_complements(app, date(2026, 11, 23), 10)] == ["K1"]


class TestIncomeComparison:
    """Declared against register income for the income month; the calculation takes the higher."""

    def test_agreeing_incomes_raise_no_flags(self) -> None:
        result = compare(application())
        assert result.flags == []
        assert [r["status"] for r in result.rows] == ["agrees", "agrees"]
        assert result.used == {"salary": 9000, "child_allowance": 1250} == result.declared

    def test_difference_within_tolerance_agrees(self) -> None:
        answer = copy.deepcopy(AGREEING)
        answer["sources"]["skatteverket"]["income"][-1]["net"] = 9080
        result = compare(application(), answer)
        assert result.flags == [] and result.used["salary"] == 9080

    def test_undeclared_benefit_is_flagged_in_plain_swedish(self) -> None:
        answer = copy.deepcopy(AGREEING)
        answer["sources"]["forsakringskassan"]["payments"].append(
            fk_row("2026-11", "sickness_benefit", 3450, "sjukpenning")
        )
        result = compare(application(), answer)
        assert [f.code for f in result.flags] == ["income_missing"]
        flag = result.flags[0]
        assert flag.severity == "warning"
        assert flag.text.startswith("Inkomst från Försäkringskassan 3 450 kr saknas i ansökan")
        assert "sjukpenning november 2026, Anna" in flag.text
        assert result.used["sickness_benefit"] == 3450 and "sickness_benefit" not in result.declared

    def test_higher_salary_in_register(self) -> None:
        answer = copy.deepcopy(AGREEING)
        answer["sources"]["skatteverket"]["income"][-1]["net"] = 9720
        result = compare(application(), answer)
        assert [f.code for f in result.flags] == ["income_higher"]
        assert (
            "Kallinge Bygg AB (lön enligt Skatteverket) är 9 720 kr enligt registret men 9 000 kr"
            in result.flags[0].text
        )
        assert "+720 kr" in result.flags[0].text
        assert result.used["salary"] == 9720

    def test_lower_in_register_keeps_the_declared_amount(self) -> None:
        answer = copy.deepcopy(AGREEING)
        answer["sources"]["skatteverket"]["income"][-1]["net"] = 8000
        result = compare(application(), answer)
        assert [(f.code, f.severity) for f in result.flags] == [("income_lower", "info")]
        assert result.used["salary"] == 9000

    def test_declared_income_unknown_to_the_registers(self) -> None:
        answer = lookup_answer(ANNA, fk=[fk_row("2026-11", "child_allowance", 1250, "barnbidrag")])
        result = compare(application(), answer)
        assert [f.code for f in result.flags] == ["income_not_in_register"]
        salary = next(r for r in result.rows if r["type"] == "salary")
        assert salary["register"] == 0 and salary["status"] == "not_in_register" and result.used["salary"] == 9000

    def test_only_the_income_month_is_compared(self) -> None:
        answer = copy.deepcopy(AGREEING)
        answer["sources"]["forsakringskassan"]["payments"].append(
            fk_row("2026-10", "sickness_benefit", 3000, "sjukpenning")
        )
        result = compare(application(), answer)
        assert result.flags == []
        assert {h["month"] for h in result.history} == {"2026-09", "2026-10", "2026-11"}

    def test_income_of_a_child_is_not_checked(self) -> None:
        raw = application()
        raw["incomes"].append({"personnummer": KID, "type": "other", "amount": 400, "payer": "Mormor"})
        result = compare(raw)
        assert [f.code for f in result.flags] == ["income_unchecked"]
        assert result.rows[-1]["register"] is None and result.used["other"] == 400

    def test_two_adults_are_compared_separately(self) -> None:
        raw = application(
            co_applicant={"personnummer": OLLE, "first_name": "Olle", "last_name": "Berg", "age": 43}, cohabiting=True
        )
        raw["incomes"].append(
            {"personnummer": OLLE, "type": "unemployment_benefit", "amount": 8000, "payer": "Byggnads a-kassa"}
        )
        olle = lookup_answer(OLLE)
        olle["sources"]["akassa"] = {
            "status": "ok",
            "payments": [
                {
                    "benefit": "arbetslöshetsersättning",
                    "type": "unemployment_benefit",
                    "month": "2026-11",
                    "amount": 8600,
                    "paid_on": "2026-11-15",
                    "fund": "Byggnads a-kassa",
                }
            ],
        }
        result = compare_incomes(
            parse_application(raw), {ANNA: parse_lookup(ANNA, AGREEING), OLLE: parse_lookup(OLLE, olle)}, tolerance=100
        )
        assert [f.code for f in result.flags] == ["income_higher"]
        assert "Byggnads a-kassa är 8 600 kr" in result.flags[0].text and "Olle" in result.flags[0].text
        assert result.used == {"salary": 9000, "child_allowance": 1250, "unemployment_benefit": 8600}


class TestRegisterFlags:
    """Population register, employment service and vehicles."""

    def flags(self, answer: dict[str, Any], app: dict[str, Any] | None = None) -> list[str]:
        parsed = parse_application(app or application())
        return [
            f.code for f in register_flags(parsed, {ANNA: parse_lookup(ANNA, answer)}, municipality="Ronneby kommun")
        ]

    def test_nothing_to_say(self) -> None:
        assert self.flags(AGREEING) == []

    def test_not_found(self) -> None:
        assert self.flags(lookup_answer(ANNA, found=False)) == ["register_not_found"]

    def test_registered_in_another_municipality_at_another_address(self) -> None:
        answer = lookup_answer(
            ANNA, municipality="Karlshamns kommun", street="Storgatan 1", salary=[salary_row("2026-11", 9000)]
        )
        assert self.flags(answer) == ["other_municipality", "address_differs"]

    def test_vehicle(self) -> None:
        answer = lookup_answer(
            ANNA, salary=[salary_row("2026-11", 9000)], vehicles=[{"registration": "ABC 12D", "model_year": 2012}]
        )
        assert self.flags(answer) == ["vehicle"]

    def test_no_income_and_not_a_job_seeker(self) -> None:
        raw = application(incomes=[])
        assert self.flags(lookup_answer(ANNA, registered=False), raw) == ["not_job_seeker"]
        assert self.flags(lookup_answer(ANNA, registered=True), raw) == []


class TestPreviousMonth:
    """This month against the previous month's decision."""

    def test_unchanged(self) -> None:
        rows, flags = compare_previous(
            parse_application(application()), declared_income_total=10250, proposed=6100, tolerance=500
        )
        assert flags == []
        assert [r["what"] for r in rows][:3] == ["Hyra", "Personer i hushållet", "Inkomster enligt ansökan"]
        assert rows[-1]["change"] == 100

    def test_rent_household_and_income_changed(self) -> None:
        raw = application()
        raw["costs"]["rent"] = 7250
        raw["previous_decision"]["basis"] = {"rent": 7000, "household_size": 3, "income_total": 11500}
        _rows, flags = compare_previous(
            parse_application(raw), declared_income_total=10250, proposed=None, tolerance=500
        )
        assert [(f.code, f.severity) for f in flags] == [
            ("rent_changed", "warning"),
            ("household_changed", "warning"),
            ("income_changed", "warning"),
        ]
        assert flags[0].text == "Hyran har ändrats sedan förra månaden: 7 000 kr → 7 250 kr (+250 kr)"
        assert "11 500 kr → 10 250 kr (−1 250 kr)" in flags[2].text

    def test_new_application_has_nothing_to_compare(self) -> None:
        raw = application(kind="new", previous_decision=None)
        assert compare_previous(parse_application(raw), declared_income_total=0, proposed=0, tolerance=0) == ([], [])

    def test_previous_rejection_is_mentioned(self) -> None:
        raw = application()
        raw["previous_decision"]["decision"] = "rejected"
        _rows, flags = compare_previous(parse_application(raw), declared_income_total=10250, proposed=0, tolerance=500)
        assert [f.code for f in flags] == ["previous_rejected"]


class TestApplicationFlags:
    """What the application itself says."""

    def test_new_application(self) -> None:
        raw = application(kind="new", previous_decision=None)
        assert [f.code for f in application_flags(parse_application(raw))] == ["new_application"]

    def test_reapplication_without_previous_decision(self) -> None:
        raw = application(previous_decision=None)
        assert [f.code for f in application_flags(parse_application(raw))] == ["no_previous_decision"]

    def test_job_stimulus_too_early_and_without_salary(self) -> None:
        raw = application(job_stimulus_active=True, months_on_support=3, incomes=[])
        codes = [f.code for f in application_flags(parse_application(raw))]
        assert codes == ["job_stimulus_early", "job_stimulus_no_salary"]

    def test_shared_household(self) -> None:
        raw = application(other_household_members=2)
        assert [f.code for f in application_flags(parse_application(raw))] == ["shared_household"]

    def test_age_that_does_not_match_the_personnummer(self) -> None:
        raw = application()
        assert age_flags(parse_application(raw), date(2026, 11, 23)) == []
        raw["children"][0]["age"] = 9
        flags = age_flags(parse_application(raw), date(2026, 11, 23))
        assert [f.code for f in flags] == ["age_mismatch"] and "barn 1" in flags[0].text


class TestNormHousehold:
    """The application becomes the calc contract; the calculation takes the chosen incomes."""

    def test_household_for_the_norm_calculation(self) -> None:
        raw = application(month="2021-12", income_period={"from": "2021-11-01", "to": "2021-11-30"})
        app = parse_application(raw)
        data = household_for_norm(app, {"salary": 9000, "child_allowance": 1250, "other": 0}, max_rent=6500)
        assert data["children"] == [{"age": 5, "lunch_at_home": False}]
        assert data["incomes"] == {"salary": 9000, "child_allowance": 1250}
        result = calculate(Household.model_validate(data), load_table(2021))
        # 3160 single + 2170 child 4–6 without lunch + 1130 common(2) = 6460; rent capped 6500
        # + 300 + 150 + 500 = 7450; income 10250 → 6460 + 7450 − 10250 = 3660
        assert result.support == 3660

    def test_max_rent_by_household_size(self) -> None:
        s = RonneySettings.model_validate({"max_rent": {"1081": {"1": 6000, "2": 7000, "4": 9000}}})
        assert [s.max_rent_for("1081", n) for n in (1, 2, 3, 4, 6)] == [6000, 7000, 7000, 9000, 9000]
        assert s.max_rent_for("1082", 2) is None

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"month": "2026-13"}, "month"),
            ({"max_rent": {"Ronneby": {"1": 5000}}}, "max_rent"),
            ({"register_sources": ["försäkringskassan"]}, "register_sources"),
            ({"legal_basis": "     "}, "legal_basis"),
            ({"complement_reminder_days": 0}, "complement_reminder_days"),
            ({"unknown": 1}, "unknown"),
        ],
    )
    def test_bad_settings_name_the_field(self, data: dict[str, Any], field: str) -> None:
        with pytest.raises(ValueError, match=field):
            RonneySettings.model_validate(data)


def test_swedish_formatting() -> None:
    assert kr(3450) == "3 450" and kr(1234567) == "1 234 567" and kr(0) == "0"
    assert month_name("2026-11") == "november 2026" and month_name("2027-01") == "januari 2027"
