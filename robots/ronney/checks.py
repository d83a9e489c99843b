"""Ronney's checks: reading what an application says, validation, what is missing (pure, no I/O).

Validation raises a :class:`core.errors.BusinessError` subclass whose message a case worker
understands and which never contains a personnummer. Everything else produces *flags*:
plain-Swedish observations for the case worker, ``warning`` (an avvikelse to look into
before deciding) or ``info`` (worth knowing). Ronney never decides on a flag; it shows it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Literal

from stdnum.se import personnummer as stdnum_personnummer  # type: ignore[import-untyped]

from core.api import BusinessError
from robots.ronney.application import (
    ATTACHMENT_LABELS,
    COST_KEYS,
    Application,
    ComplementRequest,
    MalformedApplication,
    Member,
)
from robots.ronney.norm import COST_LABELS as _COST_LABELS
from robots.ronney.norm import INCOME_LABELS as _INCOME_LABELS

__all__ = [
    "COST_LABELS",
    "INCOME_LABELS",
    "Flag",
    "InconsistentHousehold",
    "InvalidAmount",
    "InvalidPersonnummer",
    "WrongTenant",
    "age_flags",
    "application_flags",
    "household_for_norm",
    "kr",
    "missing_items",
    "month_name",
    "overdue_complements",
    "role_key",
    "validate",
]

Severity = Literal["warning", "info"]

COST_LABELS: dict[str, str] = dict(_COST_LABELS)
INCOME_LABELS: dict[str, str] = dict(_INCOME_LABELS)
_MONTHS = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)


class InvalidPersonnummer(BusinessError):
    """Ett personnummer i ansökan är ogiltigt."""

    code = "invalid_personnummer"


class InconsistentHousehold(BusinessError):
    """Hushållet i ansökan hänger inte ihop."""

    code = "household_inconsistent"


class InvalidAmount(BusinessError):
    """Ett belopp i ansökan är ogiltigt."""

    code = "invalid_amount"


class WrongTenant(BusinessError):
    """Ansökan gäller en annan kommun."""

    code = "wrong_tenant"


@dataclass(frozen=True)
class Flag:
    """One observation for the case worker, in plain Swedish."""

    severity: Severity
    #: Stable English key for machines and tests (``income_missing``, ``rent_changed`` …): the warning's type.
    code: str
    text: str
    #: This warning's own key, stable across versions of the application (``income_missing:applicant:salary``);
    #: empty = the code (one warning of the type per application).
    key: str = ""
    #: Its state across versions (robots/ronney/warnings.py): ``open``, ``acknowledged`` or ``closed``.
    state: str = "open"

    @property
    def stable_key(self) -> str:
        """The warning's key (its code when it has no key of its own)."""
        return self.key or self.code

    def as_json(self) -> dict[str, str]:
        """Plain JSON for the review material."""
        out = asdict(self)
        out["key"] = self.stable_key
        return out


def kr(amount: int) -> str:
    """Whole kronor with Swedish thousands grouping: 3450 → ``3 450``."""
    return f"{amount:,}".replace(",", " ")


def signed_kr(amount: int) -> str:
    """A change in kronor with its sign: ``+250``, ``−1 200``."""
    return ("+" if amount > 0 else "−" if amount < 0 else "±") + kr(abs(amount))


def month_name(month: str) -> str:
    """``2026-11`` → ``november 2026``."""
    year, number = month.split("-")
    return f"{_MONTHS[int(number) - 1]} {year}"


def digits(personnummer: str) -> str:
    """The personnummer's digits only (the key Ronney matches people on)."""
    return re.sub(r"\D", "", personnummer)


def role_key(role: str) -> str:
    """A role as a warning key's part, without personal data: ``sökande`` → ``applicant``, ``barn 2`` → ``child2``."""
    if role == "sökande":
        return "applicant"
    if role == "medsökande":
        return "co_applicant"
    return role.replace("barn ", "child").replace(" ", "_")


def roles(app: Application) -> list[tuple[str, Member]]:
    """Every person in the application with the role a case worker calls them by."""
    out = [("sökande", app.applicant)]
    if app.co_applicant is not None:
        out.append(("medsökande", app.co_applicant))
    out += [(f"barn {n}", child) for n, child in enumerate(app.children, start=1)]
    return out


# --- validation -----------------------------------------------------------------------------


def validate(app: Application, *, tenant: str | None = None) -> None:
    """Raise a BusinessError when the application cannot be prepared as it stands."""
    if tenant is not None and app.tenant and app.tenant != tenant:
        raise WrongTenant(f"Ansökan gäller kommun {app.tenant}, inte {tenant}: den har kommit till fel kommun")
    seen: dict[str, str] = {}
    for role, member in roles(app):
        if not stdnum_personnummer.is_valid(member.personnummer):
            raise InvalidPersonnummer(
                f"Ogiltigt personnummer för {role}: kontrollsiffran eller datumet stämmer inte. "
                "Kontrollera uppgiften med den sökande innan ansökan kan förberedas."
            )
        key = digits(member.personnummer)
        if key in seen:
            raise InconsistentHousehold(f"Samma personnummer anges för {seen[key]} och {role}")
        seen[key] = role
    if app.cohabiting and app.co_applicant is None:
        raise InconsistentHousehold(
            "Ansökan anger att sökande är sambo men har ingen medsökande: hushållet måste rättas "
            "innan stödet kan beräknas"
        )
    if app.co_applicant is not None and not app.cohabiting:
        raise InconsistentHousehold(
            "Ansökan har en medsökande som inte anges som sambo: två vuxna i samma ansökan ska vara sambor, "
            "en annan vuxen i hushållet söker själv och räknas som övrig i hushållet"
        )
    for role, adult in (("sökande", app.applicant), ("medsökande", app.co_applicant)):
        if adult is not None and adult.age < 18:
            raise InconsistentHousehold(f"{role.capitalize()} är {adult.age} år: en sökande ska vara vuxen")
    for n, child in enumerate(app.children, start=1):
        if child.age > 20:
            raise InconsistentHousehold(
                f"Barn {n} är {child.age} år: hemmavarande barn är 0–20 år, ett vuxet barn räknas som övrig i hushållet"
            )
    unknown = sorted(set(app.costs) - set(COST_KEYS))
    if unknown:
        raise MalformedApplication(f"Ansökan kan inte läsas: okänd kostnad {', '.join(unknown)}")
    for key in COST_KEYS:
        amount = app.costs.get(key, 0)
        if amount < 0:
            raise InvalidAmount(f"Negativt belopp för {COST_LABELS[key].lower()} i ansökan ({kr(amount)} kr)")
    people = {digits(m.personnummer) for _r, m in roles(app)}
    for income in app.incomes:
        if income.amount < 0:
            raise InvalidAmount(
                f"Negativt belopp för inkomsten {INCOME_LABELS[income.type].lower()} i ansökan ({kr(income.amount)} kr)"
            )
        if digits(income.personnummer) not in people:
            raise InconsistentHousehold(
                f"Inkomsten {INCOME_LABELS[income.type].lower()} ({kr(income.amount)} kr) gäller en person som "
                "inte finns i ansökan"
            )


# --- what is missing ------------------------------------------------------------------------


def missing_items(app: Application) -> list[dict[str, str]]:
    """Required attachments not attached, and complements asked for that have not come."""
    present = {a.type for a in app.attachments}
    required = [("kontoutdrag", "krävs alltid")]
    if app.costs.get("rent", 0) > 0:
        required.append(("hyresavi", "krävs när ansökan har hyra"))
    if any(i.type == "salary" and i.amount > 0 for i in app.incomes):
        required.append(("lonespecifikation", "krävs när ansökan har lön"))
    out = [
        {"what": kind, "text": f"{ATTACHMENT_LABELS[kind]} saknas ({why})"}
        for kind, why in required
        if kind not in present
    ]
    for request in app.outstanding_complements():
        out.append(
            {
                "what": "komplettering",
                "text": f"Begärd komplettering har inte kommit: {request.what} "
                f"(begärd {request.requested_at.date().isoformat()}, senast {request.due.isoformat()})",
            }
        )
    return out


def overdue_complements(app: Application, today: date, reminder_days: int) -> list[ComplementRequest]:
    """Complements still missing ``reminder_days`` or more days after they were requested."""
    return [c for c in app.outstanding_complements() if (today - c.requested_at.date()).days >= reminder_days]


# --- flags on the application itself ------------------------------------------------------


def age_flags(app: Application, today: date) -> list[Flag]:
    """Ages that do not agree with the personnummer (on the day of submission or today)."""
    flags = []
    for role, member in roles(app):
        try:
            born: date = stdnum_personnummer.get_birth_date(member.personnummer)
        except Exception:  # noqa: S112 - validate() has already refused invalid numbers
            continue
        ages = {_age(born, app.submitted_at.date()), _age(born, today)}
        if member.age not in ages:
            flags.append(
                Flag(
                    "info",
                    "age_mismatch",
                    f"Åldern för {role} i ansökan ({member.age} år) stämmer inte med personnumret "
                    f"({max(ages)} år): beräkningen använder ansökans ålder",
                )
            )
    return flags


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def application_flags(app: Application) -> list[Flag]:
    """What the application itself says that a case worker should know."""
    flags = []
    if app.kind == "new":
        flags.append(
            Flag("info", "new_application", "Nyansökan: ingen tidigare månad att jämföra med, utred hushållet")
        )
    elif app.previous_decision is None:
        flags.append(
            Flag("warning", "no_previous_decision", "Återansökan men inget beslut för förra månaden finns i e-tjänsten")
        )
    salary = any(i.type == "salary" and i.amount > 0 for i in app.incomes)
    if app.job_stimulus_active and app.months_on_support < 6:
        flags.append(
            Flag(
                "warning",
                "job_stimulus_early",
                f"Jobbstimulans är markerad men hushållet har haft försörjningsstöd i {app.months_on_support} "
                "månader: den gäller först efter 6 månader i följd, så beräkningen räknar hela lönen",
            )
        )
    if app.job_stimulus_months_used is not None and app.job_stimulus_months_used >= 24 and salary:
        flags.append(
            Flag(
                "info",
                "job_stimulus_ended",
                f"Jobbstimulans har använts i {app.job_stimulus_months_used} månader: den gäller i högst 24 månader, "
                "så beräkningen räknar hela lönen",
            )
        )
    if app.job_stimulus_active and not salary:
        flags.append(Flag("info", "job_stimulus_no_salary", "Jobbstimulans är markerad men ansökan har ingen lön"))
    if app.other_household_members:
        flags.append(
            Flag(
                "info",
                "shared_household",
                f"Hushållet har {app.other_household_members} person(er) som inte ingår i ansökan: "
                "sökandens andel av de gemensamma hushållskostnaderna räknas",
            )
        )
    return flags


# --- the household for the norm calculation -------------------------------------------------


def _child_for_norm(child: Member) -> dict[str, Any]:
    # The pupil fields only when the application says something: the contract's defaults otherwise.
    data: dict[str, Any] = {"age": child.age, "lunch_at_home": child.lunch_at_home}
    if child.in_school:
        data["in_school"] = True
    if child.work_income or child.work_income_year_to_date:
        data["work_income"] = child.work_income
        data["work_income_year_to_date"] = child.work_income_year_to_date
    return data


def household_for_norm(app: Application, incomes: Mapping[str, int], max_rent: int | None) -> dict[str, Any]:
    """The application as the JSON contract of ``kollega ronney calc`` (norm.Household)."""
    return {
        "year": app.year,
        "adults": [{"age": a.age} for a in app.adults],
        "cohabiting": app.cohabiting,
        "children": [_child_for_norm(c) for c in app.children],
        "other_household_members": app.other_household_members,
        "costs": {k: app.costs.get(k, 0) for k in COST_KEYS},
        "incomes": {k: v for k, v in incomes.items() if v},
        # With the months used known, the law decides (6 months on support, at most 24 used); without
        # them the e-service's mark counts, but never before 6 consecutive months on support.
        **(
            {"months_on_support": app.months_on_support, "job_stimulus_months_used": app.job_stimulus_months_used}
            if app.job_stimulus_months_used is not None
            else {"job_stimulus_active": app.job_stimulus_active and app.months_on_support >= 6}
        ),
        "month": int(app.month[5:7]),
        "max_rent": max_rent,
    }
