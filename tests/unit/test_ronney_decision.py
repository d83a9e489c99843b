"""Issue 18, item 5: the case worker's changes per line become the decision Ronney writes back."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import BusinessError
from robots.ronney.decision import apply_changes

LINES: list[dict[str, Any]] = [
    {"label": "Personliga kostnader, ensamstående vuxen", "section": "personal", "amount": 3160},
    {"label": "Gemensamma hushållskostnader", "section": "household", "amount": 1020},
    {"label": "Boendekostnad (hyra)", "section": "cost", "amount": 6500},
    {"label": "Hushållsel", "section": "cost", "amount": 300},
    {"label": "Lön", "section": "income", "amount": -4000},
]
# 3 160 + 1 020 + 6 500 + 300 − 4 000 = 6 980


def test_no_changes_is_the_proposal() -> None:
    out = apply_changes(LINES, None)
    assert (out.decision, out.amount, out.changed) == ("approved", 6980, False)
    assert [line["text"] for line in out.lines] == [line["label"] for line in LINES]
    assert apply_changes(LINES, {"line.2.decision": "bifall", "line.2.reason": ""}).amount == 6980


def test_partial_approval_of_a_cost_with_a_reason() -> None:
    out = apply_changes(
        LINES, {"line.2.decision": "delvis", "line.2.amount": "5 000", "line.2.reason": "Hyran är inte skälig"}
    )
    assert (out.decision, out.amount) == ("partially_approved", 6980 - 1500)
    assert out.lines[2] == {"text": "Boendekostnad (hyra) – delvis bifall, 5 000 kr av 6 500 kr", "amount": 5000}
    assert out.reasons == ["Boendekostnad (hyra): delvis bifall, 5 000 kr av 6 500 kr. Skäl: Hyran är inte skälig"]


def test_rejecting_a_cost_and_counting_more_income() -> None:
    data = {
        "line.3.decision": "avslag",
        "line.3.reason": "Elen ingår i hyran",
        "line.4.amount": "4500",
        "line.4.reason": "Lönespecifikationen visar 4 500 kr",
    }
    out = apply_changes(LINES, data)
    assert out.amount == 6980 - 300 - 500 and out.decision == "partially_approved"
    assert out.lines[3]["amount"] == 0 and out.lines[4]["amount"] == -4500
    assert "räknas med 4 500 kr i stället för 4 000 kr" in out.lines[4]["text"]


def test_a_higher_amount_is_an_approval() -> None:
    out = apply_changes(LINES, {"line.2.amount": "7000", "line.2.reason": "Ny hyresavi"})
    assert (out.decision, out.amount) == ("approved", 7480)


def test_everything_rejected_is_a_rejection() -> None:
    data = {f"line.{i}.decision": "avslag" for i in range(4)} | {f"line.{i}.reason": "x" for i in range(4)}
    out = apply_changes(LINES, data)
    assert (out.decision, out.amount) == ("rejected", 0)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"line.2.decision": "avslag"}, "reason_missing"),
        ({"line.2.amount": "5000"}, "reason_missing"),
        ({"line.2.decision": "delvis", "line.2.amount": "6500", "line.2.reason": "x"}, "invalid_line_change"),
        ({"line.2.decision": "delvis", "line.2.amount": "", "line.2.reason": "x"}, "invalid_line_change"),
        ({"line.2.amount": "-5", "line.2.reason": "x"}, "invalid_line_change"),
        ({"line.2.amount": "5,5", "line.2.reason": "x"}, "invalid_line_change"),
        ({"line.2.decision": "kanske", "line.2.reason": "x"}, "invalid_line_change"),
    ],
)
def test_bad_changes_write_nothing_and_say_why(data: dict[str, str], code: str) -> None:
    with pytest.raises(BusinessError) as info:
        apply_changes(LINES, data)
    assert info.value.code == code and "hyra" in info.value.message
