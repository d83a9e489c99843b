"""Ronney's settings: the section ``[robots.ronney]`` of config/kollega.toml, field by field.

Example::

    [robots.ronney]
    complement_reminder_days = 10
    legal_basis = "…as confirmed by the municipality's lawyer…"

    [robots.ronney.max_rent."1081"]   # Ronneby: highest reasonable housing cost by household size
    1 = 6200
    2 = 7400
    3 = 8600

    [[robots.ronney.cost_rules."1081".home_insurance]]   # Ronneby's rule table, one row per rule
    household_max = 2
    cap = 200
    text = "Hemförsäkring för 1–2 personer: högst 200 kr"
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from robots.ronney.application import INCOME_KEYS
from robots.ronney.costs import CostRule, check_rule_table

__all__ = ["DEFAULT_LEGAL_BASIS", "DEFAULT_PURPOSE", "REGISTER_SOURCES", "RonneySettings"]

#: The sources of the SSBTEK-like register lookup, in the order they are shown.
REGISTER_SOURCES = (
    "forsakringskassan",
    "pensionsmyndigheten",
    "arbetsformedlingen",
    "csn",
    "skatteverket",
    "akassa",
    "transportstyrelsen",
)

DEFAULT_PURPOSE = "Handläggning av ansökan om ekonomiskt bistånd (försörjningsstöd)"
# The municipality must confirm the legal basis it relies on: this default names the
# provisions commonly cited for SSBTEK lookups, not a legal opinion.
DEFAULT_LEGAL_BASIS = "11 kap. 11 § socialtjänstlagen (2001:453); 110 kap. 31 § socialförsäkringsbalken (2010:110)"

_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class RonneySettings(BaseModel):
    """How Ronney prepares income-support applications (``[robots.ronney]``)."""

    model_config = ConfigDict(extra="forbid")

    month: str | None = Field(
        default=None,
        description="The month applied for, YYYY-MM. Empty = the coming month by the deployment's clock "
        "(the night of 23 November prepares December).",
    )
    max_rent: dict[str, dict[PositiveInt, PositiveInt]] = Field(
        default_factory=dict,
        description="Per municipality (kommunkod): the highest reasonable housing cost in kr/month by household "
        "type, i.e. the number of people in the application (1 = one adult, 2 = a couple or a parent and a child, "
        "…). A larger household than the largest size given uses the largest size's amount, a smaller one the "
        "smallest size's. A municipality without an entry gets no rent cap.",
    )
    complement_reminder_days: int = Field(
        default=10,
        ge=1,
        le=90,
        description="Days after a complement (komplettering) was requested before Ronney, finding it still "
        "missing, asks a case worker whether to request it again ('Begär komplettering?').",
    )
    complement_due_days: int = Field(
        default=7, ge=1, le=60, description="Days the applicant gets to send a complement Ronney requests again."
    )
    register_months: int = Field(
        default=3,
        ge=1,
        le=13,
        description="Months of register data fetched per adult, ending with the application's income month; "
        "the earlier months are shown side by side for comparison.",
    )
    register_sources: list[str] | None = Field(
        default=None,
        description="Register sources asked (forsakringskassan, pensionsmyndigheten, arbetsformedlingen, csn, "
        "skatteverket, akassa, transportstyrelsen). Empty = all of them.",
    )
    purpose: str = Field(
        default=DEFAULT_PURPOSE,
        min_length=5,
        max_length=300,
        description="Purpose stated in every register lookup and in the access log.",
    )
    legal_basis: str = Field(
        default=DEFAULT_LEGAL_BASIS,
        min_length=5,
        max_length=300,
        description="Legal basis stated in every register lookup (what lifts secrecy). The municipality must "
        "confirm it; the default names the provisions commonly cited for SSBTEK.",
    )
    organisation: str | None = Field(
        default=None,
        description="Organisation named in register lookups; empty = the municipality's name from [[tenants]].",
    )
    income_tolerance: int = Field(
        default=100,
        ge=0,
        description="kr/month: a difference between declared and register income up to this is not flagged.",
    )
    previous_month_income_tolerance: int = Field(
        default=500,
        ge=0,
        description="kr/month: a change of the household's total income since the previous month up to this is "
        "not flagged.",
    )
    norm_tables_dir: Path | None = Field(
        default=None,
        description="The deployment's folder of riksnorm tables norm-YYYY.toml (installed with `kollega ronney "
        "norms add FILE`), looked in before the tables shipped with Ronney. Empty = <var_dir>/ronney/norms.",
    )
    sandbox_tables: bool = Field(
        default=False,
        description="Allow the sandbox municipality's invented riksnorm tables (the demo's). Only the demo's "
        "configuration sets this; a production deployment refuses a sandbox table.",
    )
    pdf: bool = Field(
        default=True,
        description="Also render each decision basis (beslutsunderlag) as PDF, with the run's Chromium "
        "(see [connectors.browser]). The HTML is always kept.",
    )
    pdf_pages: int = Field(default=2, ge=1, le=16, description="Browser pages rendering PDFs at once.")
    collect_concurrency: int = Field(
        default=8, ge=1, le=64, description="Applications read at once from the e-service while collecting."
    )
    review_due_hours: float | None = Field(
        default=None,
        gt=0,
        description="Deadline of a review item, in hours after it was prepared; empty = no deadline.",
    )
    four_eyes: bool = Field(default=False, description="Decisions need the approval of two different case workers.")
    cost_rules: dict[str, dict[str, list[CostRule]]] = Field(
        default_factory=dict,
        description="Per municipality (kommunkod), per cost type: the rule table for reasonable costs, first match "
        "wins (conditions age_min/max, children_min/max, household_min/max, last_month_min/max; outputs cap, "
        "manual, above_last_month, text, source). See robots/ronney/costs.py. 'other' is always assessed by hand.",
    )
    income_change_percent: dict[str, float] = Field(
        default_factory=dict,
        description="Per income type: the change in per cent against the previous decision's basis that is flagged "
        "(0 = any change). Types not given use default_income_change_percent.",
    )
    default_income_change_percent: float = Field(
        default=12.0, ge=0, le=1000, description="The change threshold, per cent, for income types not listed."
    )
    acknowledge_before_approval: list[str] = Field(
        default_factory=list,
        description="Municipalities (kommunkoder) where every open warning must be acknowledged before approval.",
    )
    register_read_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Attempts of an item before a register lookup that keeps failing is shown as a warning "
        "(register_read_failed) instead of being retried again; the warnings that depend on it are frozen.",
    )
    recovery_lookback_months: int = Field(
        default=36, ge=1, le=120, description="Months back a recovery claim (återkrav) is shown to the case worker."
    )

    @field_validator("month")
    @classmethod
    def _month_format(cls, value: str | None) -> str | None:
        if value is not None and not _MONTH_RE.match(value):
            raise ValueError("must be a month written YYYY-MM, e.g. 2026-12")
        return value

    @field_validator("max_rent")
    @classmethod
    def _tenant_codes(cls, value: dict[str, dict[int, int]]) -> dict[str, dict[int, int]]:
        for code, table in value.items():
            if not re.fullmatch(r"\d{4}", code):
                raise ValueError(f"{code!r} is not a kommunkod (four digits)")
            if not table:
                raise ValueError(f"{code}: give at least one household size")
        return value

    @field_validator("register_sources")
    @classmethod
    def _known_sources(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            unknown = sorted(set(value) - set(REGISTER_SOURCES))
            if unknown:
                raise ValueError(f"unknown source(s) {unknown}; the sources are {list(REGISTER_SOURCES)}")
        return value

    @field_validator("purpose", "legal_basis")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank: every register lookup must state it")
        return value.strip()

    @field_validator("cost_rules")
    @classmethod
    def _cost_rule_tables(cls, value: dict[str, dict[str, list[CostRule]]]) -> dict[str, dict[str, list[CostRule]]]:
        for code, table in value.items():
            if not re.fullmatch(r"\d{4}", code):
                raise ValueError(f"{code!r}: a municipality is its four-digit kommunkod")
            try:
                check_rule_table(table)
            except ValueError as exc:
                raise ValueError(f"{code}: {exc}") from None
        return value

    @field_validator("income_change_percent")
    @classmethod
    def _income_types(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(INCOME_KEYS))
        if unknown:
            raise ValueError(f"unknown income type(s) {', '.join(unknown)}; known: {', '.join(INCOME_KEYS)}")
        bad = sorted(k for k, v in value.items() if not 0 <= v <= 1000)
        if bad:
            raise ValueError(f"{', '.join(bad)}: a percentage from 0 to 1000")
        return value

    def income_threshold(self, kind: str) -> float:
        """The change in per cent of income type ``kind`` that is flagged (0 = any change)."""
        return self.income_change_percent.get(kind, self.default_income_change_percent)

    def max_rent_for(self, tenant: str, persons: int) -> int | None:
        """The rent cap for a household of ``persons`` in ``tenant``, or None when none is configured."""
        table = self.max_rent.get(tenant)
        if not table:
            return None
        if persons in table:
            return table[persons]
        smaller = [size for size in table if size <= persons]
        if smaller:
            return table[max(smaller)]
        return table[min(table)]
