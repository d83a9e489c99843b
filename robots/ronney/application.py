"""The e-service's application and the register answer, as Ronney reads them (pure, no I/O).

The shapes are those of the income-support e-service and the SSBTEK-like register lookup
(sandbox/API.md, sections a and b). Parsing is tolerant of extra keys a newer e-service may
add, strict about what Ronney relies on: an application that cannot be read is a
:class:`MalformedApplication` whose message names the field — never its value, which may
be a personnummer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.api import BusinessError

__all__ = [
    "ATTACHMENT_LABELS",
    "COST_KEYS",
    "INCOME_KEYS",
    "SOURCE_NAMES",
    "Application",
    "Attachment",
    "ComplementRequest",
    "DeclaredIncome",
    "LookupAnswer",
    "MalformedApplication",
    "Member",
    "PendingBenefit",
    "RecoveryClaim",
    "RegisterIncome",
    "parse_application",
    "parse_lookup",
]

#: Cost keys of the e-service, the same as those of ``kollega ronney calc``.
COST_KEYS = (
    "rent",
    "household_electricity",
    "home_insurance",
    "work_travel",
    "union_fee",
    "unemployment_fund_fee",
    "childcare",
    "medical",
    "dental_acute",
    "other",
)
#: Income keys of the e-service, the same as those of ``kollega ronney calc``.
INCOME_KEYS = (
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
IncomeType = Literal[
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
]

#: Swedish names of the register sources, as a case worker knows them.
SOURCE_NAMES = {
    "forsakringskassan": "Försäkringskassan",
    "pensionsmyndigheten": "Pensionsmyndigheten",
    "csn": "CSN",
    "akassa": "arbetslöshetskassan",
    "skatteverket": "Skatteverket",
    "arbetsformedlingen": "Arbetsförmedlingen",
    "transportstyrelsen": "Transportstyrelsen",
}

#: Swedish names of the attachment types of the e-service.
ATTACHMENT_LABELS = {
    "kontoutdrag": "Kontoutdrag",
    "hyresavi": "Hyresavi",
    "lonespecifikation": "Lönespecifikation",
    "elfaktura": "Elfaktura",
    "forsakringsbrev": "Försäkringsbrev",
    "barnomsorgsfaktura": "Barnomsorgsfaktura",
    "kvitto_lakarvard": "Kvitto läkarvård",
    "tandlakarkvitto": "Tandläkarkvitto",
    "komplettering": "Komplettering",
}


class MalformedApplication(BusinessError):
    """Ansökan kan inte läsas: uppgifter saknas eller har fel form."""

    code = "malformed_application"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Member(_Model):
    """A person in the application: applicant, co-applicant or child."""

    personnummer: str = Field(min_length=1)
    first_name: str = ""
    last_name: str = ""
    age: int = Field(ge=0, le=130)
    #: Children only: eats lunch at home five days a week (matters for ages 0–6).
    lunch_at_home: bool = True
    #: Children: in grundskola, gymnasieskola or comparable basic education.
    in_school: bool = False
    #: Children: income from own work in the income month, and earlier this calendar year.
    work_income: int = Field(default=0, ge=0)
    work_income_year_to_date: int = Field(default=0, ge=0)
    #: Children: lives in the household only part of the time (växelvis boende).
    part_time_at_home: bool = False

    @property
    def name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}".strip()


class DeclaredIncome(_Model):
    """One income declared in the application, kr/month in the income period."""

    personnummer: str
    type: IncomeType
    amount: int
    payer: str = ""


class Attachment(_Model):
    """A document attached to the application."""

    id: str
    type: str
    filename: str = ""
    received_at: datetime | None = None


class ComplementRequest(_Model):
    """A complement (komplettering) asked of the applicant, and whether it came."""

    id: str
    what: str
    requested_at: datetime
    requested_by: str = ""
    due: date
    arrived_at: datetime | None = None
    attachment_id: str | None = None


class Period(_Model):
    """A period of whole days."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    from_: date = Field(alias="from")
    to: date


class PreviousBasis(_Model):
    """What the previous month's decision was based on."""

    rent: int = 0
    household_size: int = 0
    income_total: int = 0
    #: Income per type counted in the previous decision (when the e-service gives it).
    incomes: dict[str, int] | None = None
    #: Cost per type approved in the previous decision (when the e-service gives it).
    costs: dict[str, int] | None = None


class PreviousDecision(_Model):
    """The previous month's decision, for a re-application."""

    month: str
    decision: str
    amount: int
    decided_at: str = ""
    basis: PreviousBasis | None = None
    #: The income type the previous decision was paid as an advance on (förskott på förmån), if it was.
    advance_on_benefit: str | None = None
    #: The payment account the previous decision was paid to (masked, e.g. ``****1234``).
    payment_account: str = ""


class RecoveryClaim(_Model):
    """A recovery claim (återkrav) decided against the household."""

    decided_on: date
    amount: int = Field(ge=0)


class PendingBenefit(_Model):
    """A benefit the household has applied for and not yet been decided."""

    type: str
    applied_on: date | None = None


class Application(_Model):
    """One application for income support for one month, as the e-service gives it."""

    id: str = Field(min_length=1)
    tenant: str = ""
    kind: Literal["new", "reapplication"]
    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    income_period: Period
    submitted_at: datetime
    updated_at: datetime
    status: str
    applicant: Member
    co_applicant: Member | None = None
    cohabiting: bool
    children: tuple[Member, ...] = ()
    other_household_members: int = Field(default=0, ge=0)
    address: dict[str, str] | None = None
    costs: dict[str, int]
    incomes: tuple[DeclaredIncome, ...] = ()
    months_on_support: int = Field(default=0, ge=0)
    job_stimulus_active: bool = False
    #: Months jobbstimulans has been applied in the current two-year period (when the e-service knows).
    job_stimulus_months_used: int | None = Field(default=None, ge=0)
    attachments: tuple[Attachment, ...] = ()
    complement_requests: tuple[ComplementRequest, ...] = ()
    previous_decision: PreviousDecision | None = None
    decision: dict[str, Any] | None = None
    #: Recovery claims (återkrav) the municipality decided against the household.
    recovery_claims: tuple[RecoveryClaim, ...] = ()
    #: Benefits applied for and not yet decided (the applicant's answer).
    pending_benefits: tuple[PendingBenefit, ...] = ()
    #: The account the applicant wants the support paid to (masked, e.g. ``****1234``).
    payment_account: str = ""

    @property
    def adults(self) -> tuple[Member, ...]:
        """The applicant and, when there is one, the co-applicant."""
        return (self.applicant,) if self.co_applicant is None else (self.applicant, self.co_applicant)

    @property
    def members(self) -> int:
        """People in the application (adults and children)."""
        return len(self.adults) + len(self.children)

    @property
    def year(self) -> int:
        """The year of the month applied for (picks the riksnorm table)."""
        return int(self.month[:4])

    @property
    def income_month(self) -> str:
        """The month the declared incomes concern, YYYY-MM."""
        return self.income_period.from_.strftime("%Y-%m")

    def outstanding_complements(self) -> list[ComplementRequest]:
        """Complement requests that have not arrived."""
        return [c for c in self.complement_requests if c.arrived_at is None]


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(hela ansökan)"
        kind = "saknas" if err["type"] == "missing" else "har fel form"
        parts.append(f"{loc} {kind}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (och {more} fel till)" if more > 0 else "")


def parse_application(raw: Any) -> Application:
    """Read an application from the e-service's JSON; MalformedApplication names what is wrong."""
    if not isinstance(raw, dict):
        raise MalformedApplication("Ansökan kan inte läsas: e-tjänsten svarade inte med en ansökan")
    try:
        return Application.model_validate(raw)
    except ValidationError as exc:
        raise MalformedApplication(f"Ansökan kan inte läsas: {_describe(exc)}") from None


# --- the register answer --------------------------------------------------------------------


class RegisterIncome(_Model):
    """One income a register knows about, for one person and month."""

    personnummer: str
    type: str
    source: str
    benefit: str
    month: str
    amount: int
    payer: str = ""


class LookupAnswer(_Model):
    """The register answer for one person, reduced to what Ronney compares and shows."""

    personnummer: str
    request_id: str = ""
    fetched_at: str = ""
    found: bool = True
    incomes: tuple[RegisterIncome, ...] = ()
    employment_service: dict[str, Any] | None = None
    vehicles: tuple[dict[str, Any], ...] = ()
    population_register: dict[str, Any] | None = None
    sources_without_data: tuple[str, ...] = ()


_BENEFIT_NAMES = {
    "salary": "lön",
    "unemployment_benefit": "arbetslöshetsersättning",
    "sickness_benefit": "sjukpenning",
    "activity_support": "aktivitetsstöd",
    "housing_allowance": "bostadsbidrag",
    "child_allowance": "barnbidrag",
    "maintenance_support": "underhållsstöd",
    "study_grant": "studiemedel",
    "pension": "pension",
}


def parse_lookup(personnummer: str, raw: Any) -> LookupAnswer:
    """Reduce the register lookup's JSON for one person; ValueError when it is not a lookup answer."""
    try:
        return _parse_lookup(personnummer, raw)
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise ValueError(f"the register answer cannot be read ({type(exc).__name__})") from None


def _parse_lookup(personnummer: str, raw: Any) -> LookupAnswer:
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), dict):
        raise ValueError("the register answer has no sources")
    sources: dict[str, Any] = raw["sources"]
    incomes: list[RegisterIncome] = []
    empty: list[str] = []
    for source, answer in sources.items():
        if not isinstance(answer, dict):
            raise ValueError(f"the register answer's source {source} is not an object")
        if answer.get("status") == "no_data":
            empty.append(source)
        for payment in answer.get("payments") or []:
            kind = str(payment.get("type") or "other")
            incomes.append(
                RegisterIncome(
                    personnummer=personnummer,
                    type=kind,
                    source=source,
                    benefit=str(payment.get("benefit") or _BENEFIT_NAMES.get(kind, kind)),
                    month=str(payment["month"]),
                    amount=int(payment["amount"]),
                    payer=str(payment.get("fund") or SOURCE_NAMES.get(source, source)),
                )
            )
        if source == "skatteverket":
            for row in answer.get("income") or []:
                incomes.append(
                    RegisterIncome(
                        personnummer=personnummer,
                        type="salary",
                        source=source,
                        benefit="lön (netto efter preliminärskatt)",
                        month=str(row["month"]),
                        amount=int(row["net"]),
                        payer=str(row.get("employer") or ""),
                    )
                )
    skv = sources.get("skatteverket") or {}
    af = sources.get("arbetsformedlingen")
    ts = sources.get("transportstyrelsen") or {}
    return LookupAnswer(
        personnummer=personnummer,
        request_id=str(raw.get("request_id") or ""),
        fetched_at=str(raw.get("fetched_at") or ""),
        found=bool(raw.get("found", True)),
        incomes=tuple(incomes),
        employment_service={k: v for k, v in af.items() if k != "status"} if isinstance(af, dict) else None,
        vehicles=tuple(ts.get("vehicles") or ()),
        population_register=skv.get("folkbokforing") if isinstance(skv, dict) else None,
        sources_without_data=tuple(sorted(empty)),
    )
