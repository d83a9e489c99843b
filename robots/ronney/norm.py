"""Försörjningsstöd by the riksnorm: a pure calculation whose every line names its source.

support = riksnorm + reasonable costs − all household income, floored at 0, whole kronor.
The household is the JSON contract of ``kollega ronney calc`` (issue 4, item 3); the table
comes from :mod:`robots.ronney.tables`. Nothing here decides: the result is a proposal for a
case worker, and special reasons (särskilda skäl) to deviate from the norm are theirs.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from core.api import ConfigError
from robots.ronney.legal import LegalData, legal_data
from robots.ronney.tables import MAX_TABULATED_HOUSEHOLD, NormTable, band_for_age

__all__ = [
    "COST_LABELS",
    "INCOME_LABELS",
    "JOB_STIMULUS_MAX_MONTHS",
    "JOB_STIMULUS_MIN_MONTHS",
    "Adult",
    "Child",
    "Costs",
    "Household",
    "Incomes",
    "NormLine",
    "NormResult",
    "NormTotals",
    "TableRef",
    "calculate",
    "describe_errors",
]

#: A non-negative amount in whole kronor per month.
Amount = Annotated[int, Field(ge=0)]

Section = Literal["personal", "household", "cost", "income"]

#: Share of employment income disregarded under jobbstimulans, in per cent.
JOB_STIMULUS_PERCENT = 25
#: Jobbstimulans applies after this many consecutive months with försörjningsstöd …
JOB_STIMULUS_MIN_MONTHS = 6
#: … for at most this many months (two years), then the six months must be met again.
JOB_STIMULUS_MAX_MONTHS = 24
#: A child (under 18) is a "barn"; older members up to 20 count as "skolungdom" only in school.
ADULT_AGE = 18

_COST_LABELS: dict[str, str] = {
    "rent": "Boendekostnad (hyra)",
    "household_electricity": "Hushållsel",
    "home_insurance": "Hemförsäkring",
    "work_travel": "Arbetsresor",
    "union_fee": "Fackföreningsavgift",
    "unemployment_fund_fee": "Avgift till arbetslöshetskassa",
    "childcare": "Barnomsorgsavgift",
    "medical": "Läkarvård och medicin",
    "dental_acute": "Akut tandvård",
    "other": "Övrig kostnad",
}

_INCOME_LABELS: dict[str, str] = {
    "salary": "Lön",
    "unemployment_benefit": "Arbetslöshetsersättning (a-kassa)",
    "sickness_benefit": "Sjukpenning",
    "activity_support": "Aktivitetsstöd",
    "housing_allowance": "Bostadsbidrag",
    "child_allowance": "Barnbidrag",
    "maintenance_support": "Underhållsstöd",
    "study_grant": "Studiemedel",
    "pension": "Pension",
    "other": "Övrig inkomst",
}

#: Swedish labels of the cost and income keys, for other modules (read-only by convention).
COST_LABELS = _COST_LABELS
INCOME_LABELS = _INCOME_LABELS


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- the household (input contract) ---------------------------------------------------------


class Adult(_Frozen):
    """An adult in the application."""

    age: int = Field(ge=18, le=120)


class Child(_Frozen):
    """A child or school-age youth living at home (0–20); lunch matters for ages 0–6."""

    age: int = Field(ge=0, le=20)
    lunch_at_home: bool = True
    #: In grundskola, gymnasieskola or comparable basic education (matters for ages 18–20).
    in_school: bool = False
    #: The child's income from own work this month (kr).
    work_income: Amount = 0
    #: The child's income from own work this calendar year before this month (kr).
    work_income_year_to_date: Amount = 0

    @property
    def work_income_protected(self) -> bool:
        """Whether the law shields this member's income from work (a child, or a pupil under 21)."""
        return self.age < ADULT_AGE or self.in_school


class Costs(_Frozen):
    """Reasonable costs outside the norm (skäliga kostnader), actual kr/month as applied for."""

    rent: Amount = 0
    household_electricity: Amount = 0
    home_insurance: Amount = 0
    work_travel: Amount = 0
    union_fee: Amount = 0
    unemployment_fund_fee: Amount = 0
    childcare: Amount = 0
    medical: Amount = 0
    dental_acute: Amount = 0
    #: Any other cost applied for: never counted by itself, always the case worker's assessment.
    other: Amount = 0


class CostLimit(_Frozen):
    """What the municipality's rule says of one cost (robots/ronney/costs.py): a cap, or assess by hand."""

    #: The highest amount counted, kr/month (None: no cap).
    cap: Amount | None = None
    #: The cost is not counted by itself: the case worker assesses it (the line shows 0 kr).
    manual: bool = False
    #: The rule in the municipality's words, shown on the line and in the decision's reasons.
    text: str = ""


class Incomes(_Frozen):
    """All income of the household, kr/month; every kind is deducted."""

    salary: Amount = 0
    unemployment_benefit: Amount = 0
    sickness_benefit: Amount = 0
    activity_support: Amount = 0
    housing_allowance: Amount = 0
    child_allowance: Amount = 0
    maintenance_support: Amount = 0
    study_grant: Amount = 0
    pension: Amount = 0
    other: Amount = 0


class Household(_Frozen):
    """One application's household, exactly the JSON contract of ``kollega ronney calc``."""

    year: int = Field(ge=2000, le=2100)
    adults: tuple[Adult, ...]
    cohabiting: bool = Field(default=False, validate_default=True)
    children: tuple[Child, ...] = ()
    #: People in the household who are not in this application (e.g. a friend, an adult child).
    other_household_members: int = Field(default=0, ge=0)
    costs: Costs = Costs()
    incomes: Incomes = Incomes()
    job_stimulus_active: bool = False
    #: Consecutive months with försörjningsstöd before this one; with the next field it decides
    #: jobbstimulans (``job_stimulus_active`` is used only when both are absent).
    months_on_support: int | None = Field(default=None, ge=0)
    #: Months jobbstimulans has already been applied in the current two-year period.
    job_stimulus_months_used: int | None = Field(default=None, ge=0)
    #: The month applied for (1–12); the legal references are those in force on its first day.
    month: int | None = Field(default=None, ge=1, le=12)
    #: The prisbasbelopp of the year; empty = the one in legal.toml.
    prisbasbelopp: Amount | None = None
    #: The municipality's maximum housing cost for this household type, when configured.
    max_rent: Amount | None = None
    #: Per cost key, what the municipality's cost rules say (a cap or a manual assessment).
    cost_limits: dict[str, CostLimit] = Field(default_factory=dict)

    @field_validator("children", "costs", "incomes", mode="before")
    @classmethod
    def _null_is_missing(cls, value: Any, info: ValidationInfo) -> Any:
        # "Missing sections mean zero": an explicit null is read the same way.
        if value is None:
            return () if info.field_name == "children" else {}
        return value

    @field_validator("adults")
    @classmethod
    def _one_or_two_adults(cls, adults: tuple[Adult, ...]) -> tuple[Adult, ...]:
        if not 1 <= len(adults) <= 2:
            raise ValueError(
                f"{len(adults)} adults given; an application has one adult or two adults who are "
                "sambor (cohabiting); another adult of the household belongs in other_household_members"
            )
        return adults

    @field_validator("cohabiting")
    @classmethod
    def _cohabiting_needs_two(cls, cohabiting: bool, info: ValidationInfo) -> bool:
        adults = info.data.get("adults")
        if adults is None:
            return cohabiting  # adults already failed; that error names the field
        if cohabiting and len(adults) != 2:
            raise ValueError(f"true needs exactly two adults, got {len(adults)}")
        if not cohabiting and len(adults) == 2:
            raise ValueError(
                "two adults in one application must be sambor (cohabiting: true); an adult who shares "
                "the household without being a sambo applies separately and is counted in other_household_members"
            )
        return cohabiting

    @property
    def job_stimulus(self) -> bool:
        """Whether jobbstimulans applies: 6 consecutive months on support, and under 24 months used."""
        if self.months_on_support is None and self.job_stimulus_months_used is None:
            return self.job_stimulus_active
        return job_stimulus_applies(self.months_on_support or 0, self.job_stimulus_months_used or 0)

    @property
    def on(self) -> date:
        """The first day of the month applied for (January when the month is not given)."""
        return date(self.year, self.month or 1, 1)

    @property
    def members(self) -> int:
        """Number of people in this application."""
        return len(self.adults) + len(self.children)

    @property
    def household_size(self) -> int:
        """Number of people in the whole household, including those outside the application."""
        return self.members + self.other_household_members


# --- the result (output contract) -----------------------------------------------------------


class NormLine(_Frozen):
    """One line of the calculation: what, how much (signed, kr/month) and where it comes from."""

    section: Section
    #: Stable English key ("child", "rent", "job_stimulus", …) for machines.
    key: str
    #: Swedish label for the case worker.
    label: str
    #: Positive adds to the need; negative is income deducted.
    amount: int
    source: str
    #: Cost lines only, when less is counted than applied for: the amount applied for.
    requested: int | None = Field(default=None, exclude_if=lambda v: v is None)
    #: Cost lines only: ``capped`` (a rule's cap, a delavslag) or ``manual`` (the case worker assesses it).
    outcome: Literal["capped", "manual"] | None = Field(default=None, exclude_if=lambda v: v is None)


class NormTotals(_Frozen):
    """The riksnorm of the application: personal plus common household costs."""

    personal_costs: int
    household_costs: int
    total: int


class TableRef(_Frozen):
    """Which table the calculation used and whether it is verified against the förordning."""

    year: int
    verified: bool
    #: Same as ``verified``; kept out of the JSON contract, which is ``{"year", "verified"}``.
    official: bool = Field(default=False, exclude=True)
    #: The sandbox municipality's invented table (the demo's); not in the JSON contract.
    sandbox: bool = Field(default=False, exclude=True)


class NormResult(_Frozen):
    """The calculated support; ``model_dump(mode="json")`` is the ``--json`` contract."""

    #: None when the year's table is missing: the norm part waits for it.
    norm: NormTotals | None
    reasonable_costs: int
    income: int
    #: None when the norm part waits for the year's table.
    support: int | None
    lines: tuple[NormLine, ...]
    table: TableRef | None

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the case worker must be told before relying on the result (Swedish); never in the letter."""
        if self.table is None or self.table.verified:
            return ()
        if self.table.sandbox:
            return (
                f"Demo: riksnormen för {self.table.year} är sandlådekommunens påhittade belopp, inte den "
                "officiella riksnormen. Beloppet är ett exempel och får inte användas för ett riktigt beslut.",
            )
        return (
            f"Riksnormen för {self.table.year} är inte verifierad mot socialtjänstförordningen: "
            "kontrollera beloppen innan beslut.",
        )

    def to_contract_json(self) -> dict[str, Any]:
        """The JSON object printed by ``kollega ronney calc --json`` (ready for json.dumps).

        A line carries ``requested`` and ``outcome`` only when a cost is capped or left to the
        case worker, so the contract of earlier versions is unchanged for everything else.
        """
        return self.model_dump(mode="json")


# --- the calculation ------------------------------------------------------------------------


def calculate(household: Household, table: NormTable | None, legal: LegalData | None = None) -> NormResult:
    """Försörjningsstöd for one household with ``table`` (must be the household's year).

    Without a table (the year's is not installed) everything but the norm is calculated:
    ``norm`` and ``support`` are None and the norm part waits for the table.
    """
    if table is not None and household.year != table.year:
        raise ValueError(f"the household is for {household.year} but the table is for {table.year}")
    legal = legal or legal_data()
    costs = _cost_lines(household)
    incomes = _income_lines(household, legal)
    reasonable = sum(line.amount for line in costs)
    income = -sum(line.amount for line in incomes)
    if table is None:
        return NormResult(
            norm=None,
            reasonable_costs=reasonable,
            income=income,
            support=None,
            lines=(*costs, *incomes),
            table=None,
        )
    cite = _cite(table, legal.ref("riksnorm", household.on).text)
    personal = _personal_lines(household, table, cite)
    common = _household_lines(household, table, cite)
    personal_costs = sum(line.amount for line in personal)
    household_costs = sum(line.amount for line in common)
    norm_total = personal_costs + household_costs
    return NormResult(
        norm=NormTotals(personal_costs=personal_costs, household_costs=household_costs, total=norm_total),
        reasonable_costs=reasonable,
        income=income,
        support=max(0, norm_total + reasonable - income),
        lines=(*personal, *common, *costs, *incomes),
        table=TableRef(year=table.year, verified=table.official, official=table.official, sandbox=table.sandbox),
    )


def job_stimulus_applies(months_on_support: int, months_used: int) -> bool:
    """Jobbstimulans: after 6 consecutive months with försörjningsstöd, for at most 24 months."""
    return months_on_support >= JOB_STIMULUS_MIN_MONTHS and months_used < JOB_STIMULUS_MAX_MONTHS


def pupil_disregard(work_income: int, year_to_date: int, prisbasbelopp: int) -> int:
    """The part of this month's income from work not counted: what fits under one prisbasbelopp this year."""
    room = max(0, prisbasbelopp - year_to_date)
    return min(work_income, room)


def describe_errors(exc: ValidationError) -> str:
    """One line per problem, each naming the field (e.g. ``costs.rent: … greater than or equal to 0``)."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        out.append(f"{loc}: {msg}")
    return "\n".join(out)


def _cite(table: NormTable, law: str) -> str:
    # Every norm line repeats the flag, so no view of a single line can hide it (the case
    # worker's view; the applicant's letter shows labels and amounts, not these sources).
    # The law itself (from legal.toml) is in the reasons of the decision.
    del law
    flag = (
        ""
        if table.official
        else " (SANDLÅDANS PÅHITTADE BELOPP)"
        if table.sandbox
        else " (EJ VERIFIERAD mot förordningen)"
    )
    return f"riksnorm {table.year}{flag}, {table.cite}"


def _kr(amount: int) -> str:
    """Swedish thousands grouping: 12 160 → "12 160"."""
    return f"{amount:,}".replace(",", " ")


def _round_half_up(numerator: int, denominator: int) -> int:
    # Whole kronor, halves up (Python's round() would round 0.5 to even).
    return (2 * numerator + denominator) // (2 * denominator)


def _personal_lines(household: Household, table: NormTable, cite: str) -> list[NormLine]:
    lines = []
    if household.cohabiting:
        lines.append(
            NormLine(
                section="personal",
                key="adults_cohabiting",
                label="Personliga kostnader, sambor (två vuxna)",
                amount=table.adults_cohabiting(),
                source=f"{cite}: sambor (båda tillsammans)",
            )
        )
    else:
        shares = household.other_household_members > 0
        lines.append(
            NormLine(
                section="personal",
                key="adult_single",
                label="Personliga kostnader, ensamstående vuxen",
                amount=table.adult_single(),
                source=f"{cite}: ensamstående" + (" (vuxen i hushållsgemenskap utan att vara sambo)" if shares else ""),
            )
        )
    for child in household.children:
        band = band_for_age(child.age)
        lunch = ""  # lunch matters for ages 0–6 only
        if band.lunch_matters:
            lunch = " med lunch hemma" if child.lunch_at_home else " utan lunch hemma"
        lines.append(
            NormLine(
                section="personal",
                key="child",
                label=f"Personliga kostnader, barn {child.age} år{lunch}",
                amount=table.child(band, child.lunch_at_home),
                source=f"{cite}: barn {band.label}{lunch}",
            )
        )
    return lines


def _household_lines(household: Household, table: NormTable, cite: str) -> list[NormLine]:
    size = household.household_size
    label = "Gemensamma hushållskostnader"
    if size <= MAX_TABULATED_HOUSEHOLD:
        full = table.common(size)
        basis = f"gemensamma hushållskostnader {size} {'person' if size == 1 else 'personer'} {_kr(full)} kr"
    else:
        extra = size - MAX_TABULATED_HOUSEHOLD
        seven, six = table.common(7), table.common(6)
        full = seven + extra * (seven - six)
        basis = (
            f"gemensamma hushållskostnader {size} personer = 7 personer {_kr(seven)} kr + {extra} × "
            f"{_kr(seven - six)} kr (skillnaden mellan 6 och 7 personer, {_kr(seven)} − {_kr(six)})"
        )
        if household.other_household_members == 0:
            # Two lines make the förordning's extrapolation visible to the case worker.
            return [
                NormLine(
                    section="household",
                    key="household_common",
                    label=label,
                    amount=seven,
                    source=f"{cite}: gemensamma hushållskostnader 7 personer",
                ),
                NormLine(
                    section="household",
                    key="household_common_extra",
                    label=f"{label}, {extra} {'person' if extra == 1 else 'personer'} utöver 7",
                    amount=extra * (seven - six),
                    source=f"{cite}: {extra} × {_kr(seven - six)} kr, skillnaden mellan hushåll med 6 och 7 "
                    f"personer ({_kr(seven)} − {_kr(six)})",
                ),
            ]
    if household.other_household_members == 0:
        return [
            NormLine(section="household", key="household_common", label=label, amount=full, source=f"{cite}: {basis}")
        ]
    members = household.members
    share = _round_half_up(full * members, size)
    return [
        NormLine(
            section="household",
            key="household_common_share",
            label=f"{label}, sökandens andel ({members} av {size})",
            amount=share,
            source=f"{cite}: {basis} × {members}/{size} (personerna i ansökan av hushållets {size}), "
            "avrundat till hela kronor",
        )
    ]


def _cost_lines(household: Household) -> list[NormLine]:
    lines = []
    for key, label in _COST_LABELS.items():
        applied: int = getattr(household.costs, key)
        if applied == 0:
            continue
        limit = household.cost_limits.get(key)
        if key == "other" or (limit is not None and limit.manual):
            why = limit.text if limit is not None and limit.text else "övriga kostnader bedöms alltid av handläggaren"
            lines.append(
                NormLine(
                    section="cost",
                    key=key,
                    label=label,
                    amount=0,
                    source=f"ansökan: {_kr(applied)} kr; kräver manuell bedömning ({why})",
                    requested=applied,
                    outcome="manual",
                )
            )
            continue
        amount, source = applied, "ansökan: faktisk kostnad, skälig kostnad utanför riksnormen"
        requested: int | None = None
        if key == "rent" and household.max_rent is not None and applied > household.max_rent:
            amount, requested = household.max_rent, applied
            source = (
                f"ansökan: hyra {_kr(applied)} kr, begränsad till kommunens högsta godtagbara "
                f"boendekostnad för hushållstypen {_kr(household.max_rent)} kr"
            )
        if limit is not None and limit.cap is not None and amount > limit.cap:
            amount, requested = limit.cap, applied
            source = f"ansökan: {_kr(applied)} kr, begränsad till {_kr(limit.cap)} kr ({limit.text})"
        lines.append(
            NormLine(
                section="cost",
                key=key,
                label=label,
                amount=amount,
                source=source,
                requested=requested,
                outcome="capped" if requested is not None else None,
            )
        )
    return lines


def _pupil_lines(household: Household, legal: LegalData) -> list[NormLine]:
    lines: list[NormLine] = []
    law = legal.ref("pupil_income", household.on).text
    for n, child in enumerate(household.children, start=1):
        if child.work_income == 0:
            continue
        lines.append(
            NormLine(
                section="income",
                key="child_work_income",
                label=f"Arbetsinkomst, barn {n} ({child.age} år)",
                amount=-child.work_income,
                source="ansökan: barnets inkomst av eget arbete denna månad",
            )
        )
        if not child.work_income_protected:
            continue  # an adult child not in school: counted like any income
        pbb = household.prisbasbelopp
        if pbb is None:
            known = legal.pbb(household.year)
            if known is None:
                raise ConfigError(
                    f"legal.toml has no prisbasbelopp for {household.year}: add it with its source",
                    code="prisbasbelopp_missing",
                    year=household.year,
                    what=f"prisbasbeloppet för {household.year}",
                )
            pbb = known.amount
        disregarded = pupil_disregard(child.work_income, child.work_income_year_to_date, pbb)
        if disregarded:
            lines.append(
                NormLine(
                    section="income",
                    key="child_work_income_disregarded",
                    label=f"Räknas inte: barn {n}s arbetsinkomst upp till ett prisbasbelopp per år",
                    amount=disregarded,
                    source=f"{law}: inkomst av eget arbete räknas inte till den del årets inkomst ryms inom ett "
                    f"prisbasbelopp ({_kr(pbb)} kr); tidigare i år {_kr(child.work_income_year_to_date)} kr, "
                    f"denna månad {_kr(child.work_income)} kr",
                )
            )
    return lines


def _income_lines(household: Household, legal: LegalData) -> list[NormLine]:
    lines = []
    stimulus_law = legal.ref("job_stimulus", household.on).text
    for key, label in _INCOME_LABELS.items():
        amount: int = getattr(household.incomes, key)
        if amount == 0:
            continue
        stimulus = key == "salary" and household.job_stimulus
        lines.append(
            NormLine(
                section="income",
                key=key,
                label=label,
                amount=-amount,
                source="ansökan: hushållets inkomst, räknas av"
                + (" (jobbstimulans på nästa rad)" if stimulus else " i sin helhet"),
            )
        )
        if stimulus:
            disregarded = _round_half_up(amount * JOB_STIMULUS_PERCENT, 100)
            lines.append(
                NormLine(
                    section="income",
                    key="job_stimulus",
                    label=f"Jobbstimulans: {JOB_STIMULUS_PERCENT} % av lönen räknas inte",
                    amount=disregarded,
                    source=f"{stimulus_law}: {JOB_STIMULUS_PERCENT} % av inkomst av "
                    f"anställning räknas inte ({_kr(amount)} kr × {JOB_STIMULUS_PERCENT} %, avrundat)",
                )
            )
    return lines + _pupil_lines(household, legal)
