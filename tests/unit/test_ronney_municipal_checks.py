"""Issue 19: the checks a municipality's own system makes (Sundsvall's), each with a stable key.

Warnings with a life across an application's versions, reasonable costs by the municipality's
rule tables (caps, manual assessment, delavslag through to the decision), income change
thresholds per type, an income that stopped in the registers, an income type of the last
decision missing now, and the history checks.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from robots.ronney.application import parse_application, parse_lookup
from robots.ronney.checks import Flag, household_for_norm
from robots.ronney.costs import CostRule, assess_costs
from robots.ronney.decision import apply_changes
from robots.ronney.history import history_flags, income_change_flags, income_dropped_flags, income_types_missing
from robots.ronney.material import decision_payload_parts, proposed_decision
from robots.ronney.norm import Household, calculate
from robots.ronney.settings import RonneySettings
from robots.ronney.tables import load_table
from robots.ronney.warnings import WARNING_TYPES, apply_case_worker, keyed, update_states
from tests.unit.test_ronney_checks import ANNA, application, fk_row, lookup_answer

# --- warnings with a life ---------------------------------------------------------------------


def flag(code: str, key: str = "", severity: str = "warning") -> Flag:
    return Flag(severity, code, f"text of {code}", key=key)  # type: ignore[arg-type]


def states(flags: list[Flag]) -> dict[str, str]:
    return {f.stable_key: f.state for f in flags}


class TestWarningLife:
    def test_open_then_closed_automatically_when_the_cause_goes_away_and_open_again_when_it_returns(self) -> None:
        state, out, gone = update_states(None, [flag("rent_changed")], version="v1", registers_failed=False, now="t1")
        assert states(out) == {"rent_changed": "open"} and gone == []
        state, out, gone = update_states(state, [], version="v2", registers_failed=False, now="t2")
        assert out == [] and gone == [
            {"key": "rent_changed", "name": WARNING_TYPES["rent_changed"][0], "state": "closed", "why": "cause_gone"}
        ]
        assert state["warnings"]["rent_changed"]["state"] == "closed"
        state, out, _gone = update_states(state, [flag("rent_changed")], version="v3", registers_failed=False, now="t3")
        assert states(out) == {"rent_changed": "open"}

    def test_acknowledged_stays_acknowledged_while_the_cause_is_there(self) -> None:
        state, _out, _ = update_states(None, [flag("vehicle")], version="v1", registers_failed=False, now="t1")
        state, changed = apply_case_worker(state, {"warning.vehicle": "ack"}, by="anna", now="t2", keys=["vehicle"])
        assert changed == ["vehicle"]
        _state, out, _ = update_states(state, [flag("vehicle")], version="v2", registers_failed=False, now="t3")
        assert states(out) == {"vehicle": "acknowledged"}

    def test_never_reopened_once_a_case_worker_closed_it(self) -> None:
        state, _out, _ = update_states(None, [flag("vehicle")], version="v1", registers_failed=False, now="t1")
        state, _ = apply_case_worker(state, {"warning.vehicle": "close"}, by="anna", now="t2", keys=["vehicle"])
        for version in ("v2", "v3"):
            state, out, gone = update_states(state, [flag("vehicle")], version=version, registers_failed=False, now="t")
            assert states(out) == {"vehicle": "closed"} and gone == []
        # the cause going away and coming back does not reopen it either
        state, _out, gone = update_states(state, [], version="v4", registers_failed=False, now="t")
        assert gone == []
        _state, out, _ = update_states(state, [flag("vehicle")], version="v5", registers_failed=False, now="t")
        assert states(out) == {"vehicle": "closed"}
        # and a later choice cannot change a closed warning back
        _state, changed = apply_case_worker(state, {"warning.vehicle": "ack"}, by="bertil", now="t", keys=["vehicle"])
        assert changed == []

    def test_a_failed_register_read_freezes_the_warnings_that_depend_on_it(self) -> None:
        first = [flag("income_missing", "income_missing:applicant:salary"), flag("rent_changed")]
        state, _out, _ = update_states(None, first, version="v1", registers_failed=False, now="t1")
        read_failed = [flag("register_read_failed", "register_read_failed:applicant")]
        state, out, gone = update_states(state, read_failed, version="v2", registers_failed=True, now="t2")
        entry = state["warnings"]["income_missing:applicant:salary"]
        assert entry["state"] == "open" and entry["frozen"] is True  # not closed for being missing
        assert state["warnings"]["rent_changed"]["state"] == "closed"  # does not depend on the registers
        assert {g["key"]: g["why"] for g in gone} == {
            "income_missing:applicant:salary": "frozen",
            "rent_changed": "cause_gone",
        }
        assert states(out) == {"register_read_failed:applicant": "open"}
        # the registers answer again and the cause has gone: now it closes, and the read failure too
        state, _out, gone = update_states(state, [], version="v3", registers_failed=False, now="t3")
        assert state["warnings"]["income_missing:applicant:salary"]["state"] == "closed"
        assert state["warnings"]["register_read_failed:applicant"]["state"] == "closed"

    def test_keys_are_unique_and_stable(self) -> None:
        out = keyed([flag("vehicle"), flag("vehicle"), flag("income_missing", "income_missing:applicant:salary")])
        assert [f.stable_key for f in out] == ["vehicle", "vehicle#2", "income_missing:applicant:salary"]
        assert out[0].as_json()["key"] == "vehicle"

    def test_every_warning_type_has_a_swedish_name_and_a_source(self) -> None:
        for code, (name, source) in WARNING_TYPES.items():
            assert name and source, code


# --- reasonable costs by the municipality's rule tables ------------------------------------------

RULES: dict[str, list[CostRule]] = {
    "rent": [
        CostRule(household_max=1, cap=6000, text="Hyra för en person: högst 6 000 kr"),
        CostRule(children_min=1, cap=6500, text="Hyra för hushåll med barn: högst 6 500 kr"),
    ],
    "home_insurance": [CostRule(cap=200, text="Hemförsäkring: högst 200 kr")],
    "household_electricity": [CostRule(above_last_month="manual", text="Ökad el bedöms särskilt")],
    "dental_acute": [CostRule(manual=True, text="Tandvård bedöms mot kostnadsförslag")],
}


def household(app: Any, limits: dict[str, Any]) -> Household:
    used = {"salary": 9000, "child_allowance": 1250}
    # the 2021 table: the official one with every figure (2026's lacks the children's amounts)
    return Household.model_validate({**household_for_norm(app, used, None), "year": 2021, "cost_limits": limits})


class TestCostRules:
    def test_capped_manual_and_other_line_by_line(self) -> None:
        raw = application()
        raw["costs"].update(other=900, dental_acute=1200)
        app = parse_application(raw)
        assessment = assess_costs(app, RULES, {"household_electricity": 250})
        # rent 7 000 capped at 6 500 (a child: the second rule); electricity rose on last month: manual
        assert assessment.limits["rent"].cap == 6500
        assert assessment.limits["household_electricity"].manual
        assert assessment.limits["dental_acute"].manual and assessment.limits["other"].manual
        assert "home_insurance" in assessment.limits and not any(
            f.key == "expense_capped:home_insurance" for f in assessment.flags
        )  # 150 kr is within the cap
        keys = sorted(f.stable_key for f in assessment.flags)
        assert keys == [
            "expense_capped:rent",
            "expense_review:dental_acute",
            "expense_review:household_electricity",
            "expense_review:other",
        ]
        result = calculate(household(app, {k: v.model_dump() for k, v in assessment.limits.items()}), load_table(2021))
        lines = {line.key: line for line in result.lines if line.section == "cost"}
        assert (lines["rent"].amount, lines["rent"].requested, lines["rent"].outcome) == (6500, 7000, "capped")
        assert (lines["other"].amount, lines["other"].requested, lines["other"].outcome) == (0, 900, "manual")
        assert "kräver manuell bedömning" in lines["dental_acute"].source
        assert lines["home_insurance"].requested is None
        # a capped or left-out cost makes the proposal a delavslag, in the letter too
        assert proposed_decision(result) == "partially_approved"
        letter_lines, reasoning = decision_payload_parts(app, result)
        assert "Boendekostnad (hyra) – delavslag, 6 500 kr av 7 000 kr" in [x["text"] for x in letter_lines]
        assert "delavslag" in reasoning and "manuell" not in reasoning
        # the contract: requested/outcome only on those lines
        contract = result.to_contract_json()
        assert all(
            ("requested" in x) == (x["key"] in ("rent", "other", "dental_acute", "household_electricity"))
            for x in contract["lines"]
            if x["section"] == "cost"
        )

    def test_delavslag_is_carried_through_a_changed_decision(self) -> None:
        raw = application()
        app = parse_application(raw)
        assessment = assess_costs(app, RULES, None)
        result = calculate(household(app, {k: v.model_dump() for k, v in assessment.limits.items()}), load_table(2021))
        lines = result.to_contract_json()["lines"]
        rent = next(i for i, x in enumerate(lines) if x["key"] == "rent")
        insurance = next(i for i, x in enumerate(lines) if x["key"] == "home_insurance")
        # the case worker lowers another cost: still a delavslag, and the capped rent says so
        changed = apply_changes(
            lines,
            {
                f"line.{insurance}.decision": "delvis",
                f"line.{insurance}.amount": "100",
                f"line.{insurance}.reason": "x",
            },
        )
        assert changed.decision == "partially_approved"
        assert changed.lines[rent]["text"] == "Boendekostnad (hyra) – delavslag, 6 500 kr av 7 000 kr"
        # granting the rent in full with a reason lifts the delavslag on it
        full = apply_changes(lines, {f"line.{rent}.amount": "7000", f"line.{rent}.reason": "Särskilda skäl"})
        assert full.decision == "approved" and full.amount == changed.amount + 50 + 500

    def test_the_rule_table_is_validated_when_ronney_starts(self) -> None:
        with pytest.raises(ValidationError, match="unknown cost type"):
            RonneySettings.model_validate({"cost_rules": {"1081": {"hyra": [{"cap": 1, "text": "Hyra"}]}}})
        with pytest.raises(ValidationError, match="greater than"):
            RonneySettings.model_validate(
                {"cost_rules": {"1081": {"rent": [{"household_min": 3, "household_max": 1, "text": "Hyra"}]}}}
            )
        with pytest.raises(ValidationError, match="either a cap or a manual"):
            RonneySettings.model_validate(
                {"cost_rules": {"1081": {"rent": [{"cap": 1, "manual": True, "text": "Hyra x"}]}}}
            )
        with pytest.raises(ValidationError, match="kommunkod"):
            RonneySettings.model_validate({"cost_rules": {"Ronneby": {"rent": [{"cap": 1, "text": "Hyra"}]}}})
        with pytest.raises(ValidationError, match="unknown income type"):
            RonneySettings.model_validate({"income_change_percent": {"lön": 5}})

    def test_last_month_and_age_conditions(self) -> None:
        rule = CostRule(age_min=65, last_month_min=100, cap=300, text="Pensionär med tidigare kostnad")
        assert rule.matches(age=70, children=0, household=1, last_month=200)
        assert not rule.matches(age=70, children=0, household=1, last_month=None)
        assert not rule.matches(age=40, children=0, household=1, last_month=200)
        capped = CostRule(above_last_month="cap", text="Högst förra månadens belopp")
        app = parse_application(application())
        assessment = assess_costs(app, {"household_electricity": [capped]}, {"household_electricity": 250})
        assert assessment.limits["household_electricity"].cap == 250


# --- income thresholds per type, stopped incomes, missing types --------------------------------


def with_basis(incomes: dict[str, int]) -> Any:
    raw = application()
    raw["previous_decision"]["basis"]["incomes"] = incomes
    return parse_application(raw)


class TestIncomeChecks:
    def test_thresholds_per_income_type(self) -> None:
        app = with_basis({"salary": 8000, "child_allowance": 1250})
        settings = RonneySettings(income_change_percent={"child_allowance": 0})
        # salary 8 000 → 9 000 is 12.5 %: above the default 12 %
        flags = income_change_flags(app, {"salary": 9000, "child_allowance": 1250}, settings.income_threshold)
        assert [f.stable_key for f in flags] == ["income_change:salary"]
        assert "8 000 kr → 9 000 kr" in flags[0].text and "12 %" in flags[0].text
        # 0 = exact: a 10 kr change of child allowance is flagged
        flags = income_change_flags(app, {"salary": 8500, "child_allowance": 1260}, settings.income_threshold)
        assert [f.stable_key for f in flags] == ["income_change:child_allowance"]
        # a new income type is a change too
        flags = income_change_flags(
            app, {"salary": 8000, "child_allowance": 1250, "pension": 500}, settings.income_threshold
        )
        assert [f.stable_key for f in flags] == ["income_change:pension"]

    def test_an_income_type_of_the_last_decision_missing_now_suggests_a_komplettering(self) -> None:
        app = with_basis({"salary": 9000, "child_allowance": 1250, "housing_allowance": 1500})
        flags, missing = income_types_missing(app, {"salary": 9000, "child_allowance": 1250}, {"child_allowance"})
        assert [f.stable_key for f in flags] == ["income_type_missing:housing_allowance"]
        assert missing == [
            {
                "what": "komplettering",
                "text": "Förslag till komplettering: besked om bostadsbidrag (fanns i förra beslutet, saknas nu)",
            }
        ]
        # in the registers now: not missing
        assert income_types_missing(app, {"salary": 9000}, {"housing_allowance", "child_allowance"}) == ([], [])

    def test_an_income_in_the_register_two_months_ago_but_not_last_month(self) -> None:
        app = parse_application(application())
        answer = lookup_answer(
            ANNA,
            fk=[
                fk_row("2026-10", "sickness_benefit", 4000, "sjukpenning"),
                fk_row("2026-11", "child_allowance", 1250, "barnbidrag"),
            ],
        )
        flags = income_dropped_flags(app, {ANNA: parse_lookup(ANNA, answer)})
        assert [f.stable_key for f in flags] == ["income_dropped:applicant:sickness_benefit"]
        assert "oktober 2026" in flags[0].text and "november 2026" in flags[0].text


# --- history checks --------------------------------------------------------------------------


class TestHistory:
    def test_each_history_check_in_the_case_workers_words(self) -> None:
        raw = application(
            recovery_claims=[{"decided_on": "2024-03-01", "amount": 2500}, {"decided_on": "2020-01-01", "amount": 900}],
            pending_benefits=[{"type": "sickness_benefit", "applied_on": "2026-11-02"}],
            payment_account="****1234",
        )
        raw["children"][0]["part_time_at_home"] = True
        raw["previous_decision"].update(advance_on_benefit="housing_allowance", payment_account="****9876")
        flags = history_flags(parse_application(raw), lookback_months=36)
        by_key = {f.stable_key: f.text for f in flags}
        assert set(by_key) == {
            "recovery_claim",
            "previous_decision_advance:housing_allowance",
            "pending_benefit:sickness_benefit",
            "child_part_time:child1",
            "payment_account_changed",
        }
        assert "1 återkrav de senaste 36 månaderna, sammanlagt 2 500 kr" in by_key["recovery_claim"]  # 2020 is too old
        assert "förskott på bostadsbidrag" in by_key["previous_decision_advance:housing_allowance"]
        assert "Elsa" in by_key["child_part_time:child1"]
        assert "1234" not in by_key["payment_account_changed"] and "9876" not in by_key["payment_account_changed"]

    def test_nothing_to_say_without_history(self) -> None:
        assert history_flags(parse_application(application()), lookback_months=36) == []
