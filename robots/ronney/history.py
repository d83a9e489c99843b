"""Checks against the household's history and the previous decision (pure, no I/O).

In the case worker's words, each a flag with a stable key (see robots/ronney/warnings.py for
the catalogue with each check's source):

- ``recovery_claim``            an återkrav decided in the last 36 months (a setting)
- ``previous_decision_advance`` last month's support was paid as an advance on a benefit
- ``pending_benefit``           a benefit applied for and not yet decided
- ``child_part_time``           a child who lives in the household part of the time
- ``payment_account_changed``   another payment account than last month's
- ``income_change``             an income type changed more than its threshold since the last decision
- ``income_dropped``            an income in the register two months ago but not last month
- ``income_type_missing``       an income type of the last decision that is missing now (a
                                suggested komplettering is added to what is missing)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date

from robots.ronney.application import Application, LookupAnswer
from robots.ronney.checks import INCOME_LABELS, Flag, digits, kr, month_name, role_key, roles

__all__ = [
    "history_flags",
    "income_change_flags",
    "income_dropped_flags",
    "income_types_missing",
]


def _months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def _label(kind: str) -> str:
    return INCOME_LABELS.get(kind, kind).lower()


def history_flags(app: Application, *, lookback_months: int) -> list[Flag]:
    """Recovery claims, an advance on a benefit, pending benefits, children part time, a new payment account."""
    flags: list[Flag] = []
    applied_for = date(app.year, int(app.month[5:7]), 1)
    recent = [c for c in app.recovery_claims if 0 <= _months_between(c.decided_on, applied_for) <= lookback_months]
    if recent:
        latest = max(c.decided_on for c in recent)
        total = sum(c.amount for c in recent)
        flags.append(
            Flag(
                "warning",
                "recovery_claim",
                f"Hushållet har {len(recent)} återkrav de senaste {lookback_months} månaderna, sammanlagt {kr(total)} "
                f"kr (senast {latest.isoformat()}): pröva om återkravet påverkar beslutet och om det ska "
                "kvittas mot utbetalningen",
            )
        )
    previous = app.previous_decision
    if previous is not None and previous.advance_on_benefit:
        kind = previous.advance_on_benefit
        flags.append(
            Flag(
                "warning",
                "previous_decision_advance",
                f"Beslutet för {month_name(previous.month)} betalades som förskott på {_label(kind)}: kontrollera om "
                f"förmånen har betalats ut och att återkravet är begärt hos utbetalaren",
                key=f"previous_decision_advance:{kind}",
            )
        )
    for benefit in app.pending_benefits:
        since = f" (ansökt {benefit.applied_on.isoformat()})" if benefit.applied_on else ""
        flags.append(
            Flag(
                "warning",
                "pending_benefit",
                f"Sökande väntar på beslut om {_label(benefit.type)}{since}: pröva om stödet ska ges som förskott "
                "på förmånen, med återkrav när den betalas ut",
                key=f"pending_benefit:{benefit.type}",
            )
        )
    for role, member in roles(app):
        if role.startswith("barn") and member.part_time_at_home:
            flags.append(
                Flag(
                    "warning",
                    "child_part_time",
                    f"{member.first_name or role.capitalize()} ({role}) bor bara delvis i hushållet (växelvis boende): "
                    "räkna barnets del av normen och kostnaderna efter tiden hos sökande",
                    key=f"child_part_time:{role_key(role)}",
                )
            )
    if (
        previous is not None
        and app.payment_account
        and previous.payment_account
        and app.payment_account != previous.payment_account
    ):
        flags.append(
            Flag(
                "warning",
                "payment_account_changed",
                f"Utbetalningskontot är ändrat sedan beslutet för {month_name(previous.month)}: kontrollera att det "
                "nya kontot tillhör sökande innan pengarna betalas ut",
            )
        )
    return flags


def income_change_flags(app: Application, declared: Mapping[str, int], threshold: Callable[[str], float]) -> list[Flag]:
    """Each income type against the previous decision's basis: a change above its threshold (per cent)."""
    previous = app.previous_decision
    if previous is None or previous.basis is None or previous.basis.incomes is None:
        return []
    last = previous.basis.incomes
    flags = []
    for kind in sorted(set(last) | {k for k, v in declared.items() if v}):
        before, now = last.get(kind, 0), declared.get(kind, 0)
        if before == now or (before == 0 and now == 0):
            continue
        if before == 0:
            percent = None
        else:
            percent = abs(now - before) * 100 / before
            limit = threshold(kind)
            if percent <= limit and limit > 0:
                continue
        if now == 0:
            continue  # gone altogether: income_type_missing says so, with a komplettering
        change = f"{'+' if now > before else '−'}{kr(abs(now - before))} kr" + (
            f", {percent:.0f} %" if percent is not None else ", ny inkomst"
        )
        flags.append(
            Flag(
                "warning",
                "income_change",
                f"{INCOME_LABELS.get(kind, kind)} har ändrats sedan beslutet för {month_name(previous.month)}: "
                f"{kr(before)} kr → {kr(now)} kr ({change}; gränsen är {threshold(kind):g} %)",
                key=f"income_change:{kind}",
            )
        )
    return flags


def income_dropped_flags(app: Application, lookups: Mapping[str, LookupAnswer]) -> list[Flag]:
    """An income type a register paid two months ago but not last month (the income month), per adult."""
    month = app.income_month
    year, number = int(month[:4]), int(month[5:7])
    before = f"{year - (number == 1)}-{(number - 2) % 12 + 1:02d}"
    flags = []
    for role, adult in roles(app)[: len(app.adults)]:
        answer = lookups.get(digits(adult.personnummer))
        if answer is None:
            continue
        then = {i.type for i in answer.incomes if i.month == before and i.amount > 0}
        now = {i.type for i in answer.incomes if i.month == month and i.amount > 0}
        for kind in sorted(then - now):
            flags.append(
                Flag(
                    "warning",
                    "income_dropped",
                    f"{INCOME_LABELS.get(kind, kind)} för {role} finns i registren för {month_name(before)} men inte "
                    f"för {month_name(month)}: har inkomsten upphört, eller betalas den sent?",
                    key=f"income_dropped:{role_key(role)}:{kind}",
                )
            )
    return flags


def income_types_missing(
    app: Application, declared: Mapping[str, int], register_kinds: Iterable[str]
) -> tuple[list[Flag], list[dict[str, str]]]:
    """Income types of the last decision that neither the application nor the registers have now.

    Each gives a flag and a suggested komplettering (for the list of what is missing).
    """
    previous = app.previous_decision
    if previous is None or previous.basis is None or not previous.basis.incomes:
        return [], []
    basis = previous.basis
    assert basis.incomes is not None
    seen = {k for k, v in declared.items() if v} | set(register_kinds)
    flags, missing = [], []
    for kind in sorted(k for k, v in basis.incomes.items() if v > 0 and k not in seen):
        label = INCOME_LABELS.get(kind, kind)
        flags.append(
            Flag(
                "warning",
                "income_type_missing",
                f"{label} ({kr(basis.incomes[kind])} kr) räknades i beslutet för {month_name(previous.month)} men "
                "finns varken i ansökan eller i registren nu: begär en komplettering om inkomsten har upphört",
                key=f"income_type_missing:{kind}",
            )
        )
        missing.append(
            {
                "what": "komplettering",
                "text": f"Förslag till komplettering: besked om {label.lower()} (fanns i förra beslutet, saknas nu)",
            }
        )
    return flags, missing
