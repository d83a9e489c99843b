"""Reasonable costs by the municipality's own rule tables (pure, no I/O).

A municipality decides what it counts of each cost outside the riksnorm (skäliga kostnader):
a cap on rent by household, a fixed cap on home insurance, a rise on last month that needs
a case worker's look, and so on. Operations write the rules as data in the deployment's
settings, ``[[robots.ronney.cost_rules."<kommunkod>".<cost>]]``, validated when Ronney starts;
no code changes. Per cost the **first** rule whose conditions all hold is used:

conditions  ``age_min``/``age_max`` (the applicant's age), ``children_min``/``children_max``,
            ``household_min``/``household_max`` (people in the application), and
            ``last_month_min``/``last_month_max`` (last month's approved amount of the cost)
outputs     ``cap`` (kr/month counted at most), ``manual`` (not counted by itself: the case
            worker assesses it), ``above_last_month`` (``"cap"``: at most last month's approved
            amount, ``"manual"``: a rise on it is assessed by hand), ``text`` (the rule in the
            municipality's words, required) and ``source`` (its guideline)

"other" (övrig kostnad) is always assessed by hand, whatever the table says. A capped cost is
flagged ``expense_capped`` and makes the proposal a delavslag; a manual one ``expense_review``.
This mirrors the per-cost DMN tables of Sundsvall's system (docs/robots/ronney.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, model_validator

from robots.ronney.application import COST_KEYS, Application
from robots.ronney.checks import COST_LABELS, Flag, kr
from robots.ronney.norm import CostLimit

__all__ = ["CostAssessment", "CostRule", "assess_costs", "check_rule_table"]


class CostRule(BaseModel):
    """One row of a municipality's rule table for one cost type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    age_min: NonNegativeInt | None = None
    age_max: NonNegativeInt | None = None
    children_min: NonNegativeInt | None = None
    children_max: NonNegativeInt | None = None
    household_min: NonNegativeInt | None = None
    household_max: NonNegativeInt | None = None
    last_month_min: NonNegativeInt | None = None
    last_month_max: NonNegativeInt | None = None
    cap: NonNegativeInt | None = None
    manual: bool = False
    above_last_month: Literal["cap", "manual"] | None = None
    text: str = Field(min_length=3, max_length=300)
    source: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _ranges(self) -> CostRule:
        for low, high in (
            ("age_min", "age_max"),
            ("children_min", "children_max"),
            ("household_min", "household_max"),
            ("last_month_min", "last_month_max"),
        ):
            a, b = getattr(self, low), getattr(self, high)
            if a is not None and b is not None and a > b:
                raise ValueError(f"{low} ({a}) is greater than {high} ({b})")
        if self.manual and self.cap is not None:
            raise ValueError("a rule is either a cap or a manual assessment, not both")
        return self

    def matches(self, *, age: int, children: int, household: int, last_month: int | None) -> bool:
        """Whether every condition of the rule holds (a last-month condition needs last month's amount)."""
        checks = [
            (self.age_min, self.age_max, age),
            (self.children_min, self.children_max, children),
            (self.household_min, self.household_max, household),
        ]
        if self.last_month_min is not None or self.last_month_max is not None:
            if last_month is None:
                return False
            checks.append((self.last_month_min, self.last_month_max, last_month))
        return all((low is None or value >= low) and (high is None or value <= high) for low, high, value in checks)


def check_rule_table(table: dict[str, list[CostRule]]) -> dict[str, list[CostRule]]:
    """Refuse unknown cost types and empty lists (a ValueError naming them, for the settings' validation)."""
    unknown = sorted(set(table) - set(COST_KEYS))
    if unknown:
        raise ValueError(f"unknown cost type(s) {', '.join(unknown)}; known: {', '.join(COST_KEYS)}")
    empty = sorted(key for key, rules in table.items() if not rules)
    if empty:
        raise ValueError(f"no rules for {', '.join(empty)}: leave the cost type out instead")
    return table


@dataclass(frozen=True)
class CostAssessment:
    """What the rules say of the application's costs: the limits for the calculation, and flags."""

    limits: dict[str, CostLimit]
    flags: list[Flag]
    #: Per cost: the rule's text and source, for the case worker's cost table.
    rules: dict[str, dict[str, str]]


def assess_costs(
    app: Application, table: dict[str, list[CostRule]], last_month: dict[str, int] | None
) -> CostAssessment:
    """Apply the municipality's rule table to the application's costs (see the module docstring)."""
    limits: dict[str, CostLimit] = {}
    flags: list[Flag] = []
    shown: dict[str, dict[str, str]] = {}
    for key in COST_KEYS:
        applied = app.costs.get(key, 0)
        if applied <= 0:
            continue
        label = COST_LABELS[key]
        previous = (last_month or {}).get(key)
        rule = next(
            (
                r
                for r in table.get(key, [])
                if r.matches(
                    age=app.applicant.age, children=len(app.children), household=app.members, last_month=previous
                )
            ),
            None,
        )
        if key == "other":
            text = rule.text if rule is not None else "Övriga kostnader bedöms alltid av handläggaren"
            limits[key] = CostLimit(manual=True, text=text)
            shown[key] = {"text": text, "source": rule.source if rule else ""}
            flags.append(_review_flag(key, label, applied, text))
            continue
        if rule is None:
            continue
        shown[key] = {"text": rule.text, "source": rule.source}
        manual = rule.manual
        cap = rule.cap
        if rule.above_last_month is not None and previous is not None and applied > previous:
            if rule.above_last_month == "manual":
                manual = True
            else:
                cap = previous if cap is None else min(cap, previous)
        if manual:
            limits[key] = CostLimit(manual=True, text=rule.text)
            flags.append(_review_flag(key, label, applied, rule.text))
        elif cap is not None:
            limits[key] = CostLimit(cap=cap, text=rule.text)
            if applied > cap:
                flags.append(
                    Flag(
                        "warning",
                        "expense_capped",
                        f"{label}: {kr(applied)} kr sökt, {kr(cap)} kr räknas enligt kommunens regel "
                        f"({rule.text}). Förslaget blir delvis bifall (delavslag) för posten",
                        key=f"expense_capped:{key}",
                    )
                )
    return CostAssessment(limits=limits, flags=flags, rules=shown)


def _review_flag(key: str, label: str, applied: int, text: str) -> Flag:
    return Flag(
        "warning",
        "expense_review",
        f"{label}: {kr(applied)} kr sökt kräver din bedömning ({text}). Posten räknas med 0 kr tills du "
        "ändrar den i beslutet",
        key=f"expense_review:{key}",
    )
