"""Ronney's comparisons: declared against register income, register observations, and this month
against the previous one (pure, no I/O).

Each produces *flags* (see :class:`robots.ronney.checks.Flag`) for the case worker and, for
income, the amounts the calculation uses: the higher of declared and register income.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from robots.ronney.application import SOURCE_NAMES, Application, LookupAnswer, Member
from robots.ronney.checks import INCOME_LABELS, Flag, digits, kr, month_name, role_key, roles, signed_kr

__all__ = ["CHECKABLE_INCOMES", "IncomeComparison", "compare_incomes", "compare_previous", "register_flags"]

#: Income kinds the registers know about; "other" cannot be checked against them.
CHECKABLE_INCOMES = frozenset(INCOME_LABELS) - {"other"}
#: Kinds of income that show the adult supports themselves otherwise than by job-seeking.
_OWN_SUPPORT = frozenset({"salary", "pension", "sickness_benefit", "study_grant", "activity_support"})


# --- declared vs register income ------------------------------------------------------------


@dataclass
class IncomeComparison:
    """Declared and register income side by side, the flags, and the amounts to calculate with."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    #: Income per kind used in the calculation (the higher of declared and register).
    used: dict[str, int] = field(default_factory=dict)
    #: Income per kind as declared.
    declared: dict[str, int] = field(default_factory=dict)
    #: Register income per person, kind and month (the comparison period), for the side-by-side view.
    history: list[dict[str, Any]] = field(default_factory=list)


def _from_text(source: str, payer: str) -> str:
    if source == "skatteverket":
        return f"{payer} (lön enligt Skatteverket)" if payer else "Skatteverket (lön)"
    if source == "akassa":
        return payer or "arbetslöshetskassan"
    return SOURCE_NAMES.get(source, source)


def compare_incomes(
    app: Application, lookups: Mapping[str, LookupAnswer], *, tolerance: int, months: Iterable[str] = ()
) -> IncomeComparison:
    """Compare declared income with the registers' for the income month, per person and kind.

    ``lookups`` maps a person's personnummer digits to their register answer; people without
    one (children) are shown as not checked. The calculation uses the higher amount.
    """
    out = IncomeComparison()
    month = app.income_month
    names: dict[str, tuple[str, Member | None]] = {digits(m.personnummer): (role, m) for role, m in roles(app)}
    declared: dict[tuple[str, str], int] = {}
    payers: dict[tuple[str, str], str] = {}
    for income in app.incomes:
        own: tuple[str, str] = (digits(income.personnummer), income.type)
        declared[own] = declared.get(own, 0) + income.amount
        payers.setdefault(own, income.payer)
    register: dict[tuple[str, str], int] = {}
    sources: dict[tuple[str, str], tuple[str, str, str]] = {}
    for person, answer in lookups.items():
        for inc in answer.incomes:
            if inc.month != month:
                continue
            key = (person, inc.type)
            register[key] = register.get(key, 0) + inc.amount
            sources.setdefault(key, (inc.source, inc.payer, inc.benefit))
    wanted_months = sorted(set(months) | {month})
    for person, answer in lookups.items():
        for inc in answer.incomes:
            if inc.month in wanted_months:
                role, member = names.get(person, ("?", None))
                out.history.append(
                    {
                        "person": member.name if member else role,
                        "role": role,
                        "type": inc.type,
                        "label": INCOME_LABELS.get(inc.type, inc.benefit),
                        "from": _from_text(inc.source, inc.payer),
                        "month": inc.month,
                        "amount": inc.amount,
                    }
                )
    out.history.sort(key=lambda h: (h["role"], h["type"], h["from"], h["month"]))
    for key in sorted(set(declared) | set(register), key=lambda k: (_role_order(names, k[0]), k[1])):
        person, kind = key
        role, member = names.get(person, ("okänd person", None))
        who = member.first_name if member and member.first_name else role
        label = INCOME_LABELS.get(kind, kind)
        d = declared.get(key, 0)
        checked = person in lookups and kind in CHECKABLE_INCOMES
        r = register.get(key, 0) if checked else None
        flags_before = len(out.flags)
        source, payer, benefit = sources.get(key, ("", payers.get(key, ""), label.lower()))
        origin = _from_text(source, payer) if source else ""
        used = max(d, r or 0)
        status = "unchecked"
        if r is not None:
            diff = r - d
            if abs(diff) <= tolerance:
                status = "agrees"
            elif d == 0:
                status = "missing"
                out.flags.append(
                    Flag(
                        "warning",
                        "income_missing",
                        f"Inkomst från {origin} {kr(r)} kr saknas i ansökan ({benefit} {month_name(month)}, {who})",
                    )
                )
            elif diff > 0:
                status = "higher"
                out.flags.append(
                    Flag(
                        "warning",
                        "income_higher",
                        f"Inkomst från {origin} är {kr(r)} kr enligt registret men {kr(d)} kr i ansökan "
                        f"({signed_kr(diff)} kr, {benefit} {month_name(month)}, {who})",
                    )
                )
            elif r == 0:
                status = "not_in_register"
                out.flags.append(
                    Flag(
                        "info",
                        "income_not_in_register",
                        f"{label} {kr(d)} kr i ansökan finns inte i registren för {month_name(month)} ({who}): "
                        "beräkningen räknar med ansökans belopp",
                    )
                )
            else:
                status = "lower"
                out.flags.append(
                    Flag(
                        "info",
                        "income_lower",
                        f"{label} {kr(d)} kr i ansökan, {kr(r)} kr enligt {origin} ({who}): "
                        "beräkningen räknar med ansökans högre belopp",
                    )
                )
        elif d:
            out.flags.append(
                Flag(
                    "info",
                    "income_unchecked",
                    f"{label} {kr(d)} kr för {role} ({who}) har inte kunnat kontrolleras mot registren",
                )
            )
        if len(out.flags) > flags_before:  # one warning per person and income type: its own key
            made = out.flags[-1]
            out.flags[-1] = replace(made, key=f"{made.code}:{role_key(role)}:{kind}")
        out.rows.append(
            {
                "person": member.name if member else role,
                "role": role,
                "type": kind,
                "label": label,
                "declared": d,
                "register": r,
                "from": origin or payers.get(key, ""),
                "difference": None if r is None else r - d,
                "used": used,
                "status": status,
            }
        )
        if used:
            out.used[kind] = out.used.get(kind, 0) + used
        if d:
            out.declared[kind] = out.declared.get(kind, 0) + d
    return out


def _role_order(names: Mapping[str, tuple[str, Member | None]], person: str) -> int:
    order = list(names)
    return order.index(person) if person in order else len(order)


# --- register observations other than income ----------------------------------------------


def register_flags(app: Application, lookups: Mapping[str, LookupAnswer], *, municipality: str | None) -> list[Flag]:
    """Population register, employment service and vehicles: what the case worker should look at."""
    flags = []
    kinds_by_person: dict[str, set[str]] = {}
    for income in app.incomes:
        kinds_by_person.setdefault(digits(income.personnummer), set()).add(income.type)
    for role, adult in roles(app)[: len(app.adults)]:
        answer = lookups.get(digits(adult.personnummer))
        if answer is None:
            continue
        who = adult.name or role
        if not answer.found:
            flags.append(Flag("warning", "register_not_found", f"Registren har inga uppgifter om {role} ({who})"))
            continue
        pop = answer.population_register or {}
        registered_in = str(pop.get("municipality") or "")
        if municipality and registered_in and registered_in != municipality:
            flags.append(
                Flag(
                    "warning",
                    "other_municipality",
                    f"{who} är folkbokförd i {registered_in}, inte i {municipality}",
                )
            )
        if app.address and pop and _address(pop) != _address(app.address):
            flags.append(
                Flag(
                    "info",
                    "address_differs",
                    f"Adressen i ansökan ({_address(app.address)}) skiljer sig från folkbokföringsadressen för "
                    f"{who} ({_address(pop)})",
                )
            )
        for vehicle in answer.vehicles:
            flags.append(
                Flag(
                    "info",
                    "vehicle",
                    f"{who} äger fordon {vehicle.get('registration', '?')} (årsmodell "
                    f"{vehicle.get('model_year', '?')}): pröva om fordonet är en tillgång",
                )
            )
        af = answer.employment_service or {}
        kinds = kinds_by_person.get(digits(adult.personnummer), set())
        register_kinds = {i.type for i in answer.incomes if i.month == app.income_month}
        supports_otherwise = bool((kinds | register_kinds) & _OWN_SUPPORT) or adult.age >= 65
        if not af.get("registered") and not supports_otherwise:
            flags.append(
                Flag(
                    "warning",
                    "not_job_seeker",
                    f"{who} är inte inskriven som arbetssökande hos Arbetsförmedlingen och har varken arbete, "
                    "pension, sjukpenning, aktivitetsstöd eller studiemedel",
                )
            )
        elif af.get("registered") and isinstance(af.get("extent_percent"), int) and af["extent_percent"] < 100:
            flags.append(
                Flag(
                    "info",
                    "job_seeker_part_time",
                    f"{who} är inskriven hos Arbetsförmedlingen på {af['extent_percent']} %",
                )
            )
    return flags


def _address(address: Mapping[str, Any]) -> str:
    parts = [str(address.get(k) or "").strip() for k in ("street", "postal_code", "city")]
    return ", ".join(p for p in parts if p)


# --- this month vs the previous one ---------------------------------------------------------


def compare_previous(
    app: Application, *, declared_income_total: int, proposed: int | None, tolerance: int
) -> tuple[list[dict[str, Any]], list[Flag]]:
    """Rent, household size, income and amount against the previous month's decision."""
    previous = app.previous_decision
    if previous is None:
        return [], []
    rows: list[dict[str, Any]] = []
    flags: list[Flag] = []
    basis = previous.basis
    rent = app.costs.get("rent", 0)
    if basis is not None:
        rows.append(_row("Hyra", basis.rent, rent))
        if rent != basis.rent:
            flags.append(
                Flag(
                    "warning",
                    "rent_changed",
                    f"Hyran har ändrats sedan förra månaden: {kr(basis.rent)} kr → {kr(rent)} kr "
                    f"({signed_kr(rent - basis.rent)} kr)",
                )
            )
        rows.append(_row("Personer i hushållet", basis.household_size, app.members, unit="personer"))
        if app.members != basis.household_size:
            flags.append(
                Flag(
                    "warning",
                    "household_changed",
                    f"Hushållet har ändrats sedan förra månaden: {basis.household_size} → {app.members} personer",
                )
            )
        rows.append(_row("Inkomster enligt ansökan", basis.income_total, declared_income_total))
        change = declared_income_total - basis.income_total
        if abs(change) > tolerance:
            flags.append(
                Flag(
                    "warning" if change < 0 else "info",
                    "income_changed",
                    f"Inkomsterna har ändrats sedan förra månaden: {kr(basis.income_total)} kr → "
                    f"{kr(declared_income_total)} kr ({signed_kr(change)} kr)",
                )
            )
    rows.append(
        _row(f"Beviljat belopp ({'förslag' if proposed is not None else 'ej beräknat'} nu)", previous.amount, proposed)
    )
    if previous.decision == "rejected":
        flags.append(Flag("info", "previous_rejected", f"Ansökan för {month_name(previous.month)} avslogs"))
    return rows, flags


def _row(what: str, previous: int, now: int | None, unit: str = "kr") -> dict[str, Any]:
    return {
        "what": what,
        "previous": previous,
        "now": now,
        "change": None if now is None else now - previous,
        "unit": unit,
    }
