"""The protected-identity gate's decision table and its material (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from robots.ronney.gate import (
    GateDecision,
    MalformedProtectionAnswer,
    Marking,
    decide,
    parse_protection_answer,
    restricted_material,
)

A, B, C = "191212121212", "198112189876", "201001012384"
HOUSEHOLD = [("sökande", A), ("medsökande", B), ("barn 1", C)]
NONE = Marking(False, False)
SECRET = Marking(True, False)
HIDDEN = Marking(True, True)


@pytest.mark.parametrize(
    ("markings", "failure", "expected"),
    [
        # every member answered, nobody marked: the only way through
        ({A: NONE, B: NONE, C: NONE}, None, GateDecision("clear", "none")),
        # a marking anywhere in the household closes the gate, a child's too
        ({A: NONE, B: NONE, C: SECRET}, None, GateDecision("protected", "sekretessmarkering", ("barn 1",))),
        ({A: SECRET, B: NONE, C: NONE}, None, GateDecision("protected", "sekretessmarkering", ("sökande",))),
        (
            {A: SECRET, B: HIDDEN, C: NONE},
            None,
            GateDecision("protected", "skyddad_folkbokforing", ("sökande", "medsökande")),
        ),
        (
            {A: Marking(False, True), B: NONE, C: NONE},
            None,
            GateDecision("protected", "skyddad_folkbokforing", ("sökande",)),
        ),
        # no answer at all, or a failure: fail closed
        (None, None, GateDecision("unchecked", "register_unavailable")),
        (None, "register_unavailable", GateDecision("unchecked", "register_unavailable")),
        (None, "refused", GateDecision("unchecked", "refused")),
        (None, "malformed_answer", GateDecision("unchecked", "malformed_answer")),
        # an answer leaving someone out is not "nobody is protected"
        ({A: NONE, B: NONE}, None, GateDecision("unchecked", "incomplete_answer")),
        ({}, None, GateDecision("unchecked", "incomplete_answer")),
        # a marking found wins over a failure reported beside it
        ({A: NONE, B: SECRET}, "malformed_answer", GateDecision("protected", "sekretessmarkering", ("medsökande",))),
    ],
)
def test_decision_table(markings: dict[str, Marking] | None, failure: str | None, expected: GateDecision) -> None:
    assert decide(HOUSEHOLD, markings, failure) == expected  # type: ignore[arg-type]


def test_a_member_who_cannot_be_asked_closes_the_gate() -> None:
    household = [("sökande", A), ("barn 1", None)]
    assert decide(household, {A: NONE}) == GateDecision("unchecked", "not_checkable")
    assert decide(household, {A: SECRET}).outcome == "protected"


def test_only_clear_opens() -> None:
    assert [d.clear for d in (GateDecision("clear", "none"), GateDecision("protected", "sekretessmarkering"))] == [
        True,
        False,
    ]
    assert not GateDecision("unchecked", "register_unavailable").clear


def test_parse_reads_booleans_strictly() -> None:
    raw = {
        "persons": [
            {"personnummer": A, "sekretessmarkering": False, "skyddad_folkbokforing": False},
            {"personnummer": B, "sekretessmarkering": True, "skyddad_folkbokforing": True},
        ]
    }
    assert parse_protection_answer([A, B], raw) == {A: NONE, B: HIDDEN}


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        {"persons": "none"},
        {"persons": ["x"]},
        {"persons": [{"personnummer": A, "sekretessmarkering": "N", "skyddad_folkbokforing": False}]},
        {"persons": [{"personnummer": A, "sekretessmarkering": False}]},  # a marking missing is not "no"
        {"persons": [{"personnummer": C, "sekretessmarkering": False, "skyddad_folkbokforing": False}]},
    ],
)
def test_parse_refuses_what_it_cannot_read(raw: object) -> None:
    with pytest.raises(MalformedProtectionAnswer) as info:
        parse_protection_answer([A, B], raw)
    assert A not in str(info.value) and C not in str(info.value)


def _material(decision: GateDecision) -> dict[str, object]:
    return restricted_material(
        decision=decision,
        queue="ronney.application",
        reference="EB-202701-0007@20261120T101500",
        application_id="EB-202701-0007",
        application_kind="reapplication",
        month="2027-01",
        prepared_at=datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
        prepared_at_text="2026-11-23 02:00",
    )


def test_protected_material_says_what_to_do_and_nothing_about_who() -> None:
    material = _material(GateDecision("protected", "skyddad_folkbokforing", ("barn 1",)))
    assert material["kind"] == "restricted" and material["documents"] == []
    assert "handläggs manuellt" in str(material["title"]) and "januari 2027" in str(material["title"])
    flag = material["flags"][0]  # type: ignore[index]
    assert flag["code"] == "protected_identity" and "skyddad folkbokföring" in flag["text"] and "barn 1" in flag["text"]
    assert any("kommunens rutin för skyddade personuppgifter" in s for s in material["what_to_do"])  # type: ignore[attr-defined]
    # nothing that could locate or identify anyone: only the keys of the restricted shape
    assert set(material) == {
        "kind", "version", "queue", "title", "summary", "reference", "application_id", "application_kind",
        "application_kind_text", "month", "month_text", "gate", "flags", "what_to_do", "return_comment",
        "documents", "prepared_at", "prepared_at_text",
    }  # fmt: skip
    text = json.dumps(material, ensure_ascii=False)
    for word in ("address", "adress:", "personnummer", "register", "amount", "calculation"):
        assert f'"{word}"' not in text


def test_unchecked_material_says_why_and_how_to_get_it_prepared() -> None:
    material = _material(GateDecision("unchecked", "register_unavailable"))
    flag = material["flags"][0]  # type: ignore[index]
    assert flag["code"] == "protected_identity_unchecked" and "svarade inte" in flag["text"]
    assert any("returnera" in s.lower() for s in material["what_to_do"])  # type: ignore[attr-defined]


def test_a_clear_household_has_no_restricted_material() -> None:
    with pytest.raises(ValueError):
        _material(GateDecision("clear", "none"))
