"""What a case worker gets: the review material of an application or a complement (pure).

The material is plain JSON (it is stored with the review item and rendered by
``templates/review.html``); amounts are whole kronor, texts are Swedish and already
formatted where the template would otherwise need custom filters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from robots.ronney.application import ATTACHMENT_LABELS, SOURCE_NAMES, Application, ComplementRequest, LookupAnswer
from robots.ronney.checks import COST_LABELS, Flag, digits, kr, month_name, roles
from robots.ronney.compare import IncomeComparison
from robots.ronney.legal import legal_data
from robots.ronney.norm import NormResult

__all__ = [
    "APPLICATION_QUEUE",
    "COMPLEMENT_QUEUE",
    "MATERIAL_VERSION",
    "application_material",
    "complement_material",
    "decision_payload_parts",
]

APPLICATION_QUEUE = "ronney.application"
COMPLEMENT_QUEUE = "ronney.complement"
#: Bumped when the material's shape changes, so templates can tell old items apart.
MATERIAL_VERSION = 1

_TZ = ZoneInfo("Europe/Stockholm")
_DECISION_TEXT = {
    "approved": "Bevilja",
    "partially_approved": "Bevilja delvis (delavslag på begränsade eller manuellt bedömda kostnader)",
    "rejected": "Avslå (inkomsterna täcker behovet)",
}


def local_text(moment: datetime) -> str:
    """``2026-11-23 01:14`` in Swedish local time."""
    return moment.astimezone(_TZ).strftime("%Y-%m-%d %H:%M")


def _attachments(app: Application) -> list[dict[str, Any]]:
    return [
        {
            "type": a.type,
            "label": ATTACHMENT_LABELS.get(a.type, a.type),
            "filename": a.filename,
            "received": local_text(a.received_at) if a.received_at else "–",
        }
        for a in app.attachments
    ]


def _complements(app: Application) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "what": c.what,
            "requested": local_text(c.requested_at),
            "due": c.due.isoformat(),
            "arrived": local_text(c.arrived_at) if c.arrived_at else None,
        }
        for c in app.complement_requests
    ]


def _household(app: Application) -> dict[str, Any]:
    members = []
    for role, m in roles(app):
        child = role.startswith("barn")
        members.append(
            {
                "role": role,
                "name": m.name,
                "personnummer": m.personnummer,
                "age": m.age,
                "lunch_at_home": m.lunch_at_home if child and m.age <= 6 else None,
            }
        )
    address = ""
    if app.address:
        address = ", ".join(
            str(app.address.get(k) or "") for k in ("street", "postal_code", "city") if app.address.get(k)
        )
    return {
        "members": members,
        "cohabiting": app.cohabiting,
        "other_household_members": app.other_household_members,
        "address": address,
        "months_on_support": app.months_on_support,
        "job_stimulus_active": app.job_stimulus_active,
    }


def _registers(app: Application, lookups: Mapping[str, LookupAnswer]) -> list[dict[str, Any]]:
    out = []
    for role, adult in roles(app)[: len(app.adults)]:
        answer = lookups.get(digits(adult.personnummer))
        if answer is None:
            continue
        af = answer.employment_service or {}
        if af.get("registered"):
            parts = [str(af.get("category") or "inskriven")]
            if af.get("program"):
                parts.append(str(af["program"]))
            if af.get("extent_percent") is not None:
                parts.append(f"{af['extent_percent']} %")
            if af.get("registered_since"):
                parts.append(f"sedan {af['registered_since']}")
            employment = ", ".join(parts)
        else:
            employment = "inte inskriven"
        pop = answer.population_register or {}
        population = ", ".join(str(pop.get(k)) for k in ("street", "postal_code", "city", "municipality") if pop.get(k))
        out.append(
            {
                "role": role,
                "person": adult.name or role,
                "request_id": answer.request_id,
                "fetched_at": answer.fetched_at,
                "found": answer.found,
                "employment_service": employment,
                "population_register": population,
                "vehicles": [
                    f"{v.get('registration', '?')} (årsmodell {v.get('model_year', '?')})" for v in answer.vehicles
                ],
                "sources_without_data": [SOURCE_NAMES.get(s, s) for s in answer.sources_without_data],
            }
        )
    return out


def _income_history(comparison: IncomeComparison, months: Sequence[str]) -> dict[str, Any]:
    rows: dict[tuple[str, str, str], dict[str, int]] = {}
    for h in comparison.history:
        key = (f"{h['person']} ({h['role']})", h["label"], h["from"])
        rows.setdefault(key, {})
        rows[key][h["month"]] = rows[key].get(h["month"], 0) + int(h["amount"])
    return {
        "months": [month_name(m) for m in months],
        "rows": [
            {"person": person, "label": label, "from": origin, "amounts": [by_month.get(m) for m in months]}
            for (person, label, origin), by_month in rows.items()
        ],
    }


def _costs(app: Application, result: NormResult | None) -> list[dict[str, Any]]:
    used = {line.key: line.amount for line in result.lines if line.section == "cost"} if result else {}
    return [
        {"key": key, "label": label, "applied": app.costs.get(key, 0), "used": used.get(key, app.costs.get(key, 0))}
        for key, label in COST_LABELS.items()
        if app.costs.get(key, 0)
    ]


def decision_sentence(month: str, amount: int, decision: str) -> str:
    """The decision itself, in the applicant's Swedish."""
    if decision == "rejected" or amount <= 0:
        return f"Din ansökan om försörjningsstöd för {month_name(month)} avslås."
    partly = "delvis " if decision == "partially_approved" else ""
    return f"Du beviljas {partly}försörjningsstöd med {kr(amount)} kr för {month_name(month)}."


def legal_texts(month: str) -> tuple[str, str]:
    """(the legal basis of the decision, how to appeal) in force in ``month`` (from legal.toml)."""
    legal = legal_data()
    on = date(int(month[:4]), int(month[5:7]), 1)
    return legal.ref("support", on).text, legal.ref("appeal", on).text


def decision_payload_parts(app: Application, result: NormResult) -> tuple[list[dict[str, Any]], str]:
    """The decision's lines (label and signed amount) and its reasons, for the letter to the applicant.

    Only what the applicant is told: the decision, the amounts, the reasons with their legal
    basis and how to appeal. Never the case worker's warnings, flags, data sources or a note
    on the table's quality (those stay in the review material).
    """
    legal = legal_data()
    on = date(app.year, int(app.month[5:7]), 1)
    lines = []
    refused = []
    for line in result.lines:
        if line.requested is not None and line.requested > line.amount:
            # a delavslag: the letter says what was applied for, what is granted and why
            lines.append(
                {
                    "text": f"{line.label} – delavslag, {kr(line.amount)} kr av {kr(line.requested)} kr",
                    "amount": line.amount,
                }
            )
            why = (
                "kostnaden ingår inte utan en särskild bedömning"
                if line.outcome == "manual"
                else f"kostnaden räknas med högst {kr(line.amount)} kr enligt kommunens riktlinjer för skäliga kostnader"
            )
            refused.append(f"{line.label}: {kr(line.requested - line.amount)} kr av {kr(line.requested)} kr, {why}.")
        else:
            lines.append({"text": line.label, "amount": line.amount})
    support = result.support or 0
    norm_total = result.norm.total if result.norm is not None else 0
    basis, appeal = legal_texts(app.month)
    norm_ref = legal.ref("riksnorm", on).text
    kind = proposed_decision(result)
    decision = decision_sentence(app.month, support, kind or "rejected")
    partly = f" Avslag på del av ansökan (delavslag): {' '.join(refused)}" if refused and support > 0 else ""
    reasoning = (
        f"{decision} Ditt behov är riksnormen {kr(norm_total)} kr ({norm_ref}) och skäliga kostnader "
        f"{kr(result.reasonable_costs)} kr, sammanlagt {kr(norm_total + result.reasonable_costs)} kr. Hushållets "
        f"inkomster som räknas är {kr(result.income)} kr. Skillnaden är {kr(support)} kr.{partly} Beslutet är "
        f"fattat enligt {basis}. {appeal}"
    )
    return lines, reasoning


def proposed_decision(result: NormResult | None) -> str | None:
    """``approved``, ``partially_approved`` (a cost capped or left out: delavslag), ``rejected``, or None."""
    if result is None or result.support is None:
        return None
    if result.support <= 0:
        return "rejected"
    if any(line.requested is not None and line.requested > line.amount for line in result.lines):
        return "partially_approved"
    return "approved"


def application_material(
    *,
    app: Application,
    reference: str,
    flags: Sequence[Flag],
    missing: Sequence[Mapping[str, str]],
    comparison: IncomeComparison,
    register_months: Sequence[str],
    lookups: Mapping[str, LookupAnswer],
    previous_rows: Sequence[Mapping[str, Any]],
    result: NormResult | None,
    as_declared: NormResult | None,
    calculation_error: str | None,
    municipality: str,
    prepared_at: datetime,
    return_comment: str | None,
) -> dict[str, Any]:
    """The review material of one application (see ``templates/review.html``)."""
    ordered = [f.as_json() for f in flags if f.severity == "warning"] + [
        f.as_json() for f in flags if f.severity != "warning"
    ]
    amount = result.support if result else None
    decision = proposed_decision(result)
    lines, reasoning = decision_payload_parts(app, result) if result and amount is not None else ([], "")
    warnings_n = sum(1 for f in flags if f.severity == "warning" and f.state != "closed")
    kind_text = "Nyansökan" if app.kind == "new" else "Återansökan"
    title = f"{kind_text} {app.id}, {month_name(app.month)}: " + (
        f"{kr(amount)} kr föreslås" if amount is not None else f"beloppet väntar på riksnormen för {app.year}"
    )
    if warnings_n or missing:
        parts = [f"{warnings_n} {'avvikelse' if warnings_n == 1 else 'avvikelser'}"] if warnings_n else []
        parts += [f"{len(missing)} saknas"] if missing else []
        title += f" ({', '.join(parts)})"
    members = f"{len(app.adults)} vuxna" if len(app.adults) > 1 else "1 vuxen"
    if app.children:
        members += f", {len(app.children)} barn"
    summary = f"Hushåll: {members}. " + (
        f"Föreslaget försörjningsstöd {kr(amount)} kr."
        if amount is not None
        else "Kostnader och inkomster är beräknade; beloppet väntar på årets riksnorm."
    )
    if result is not None and result.table is not None and result.table.sandbox:
        summary += " Demo: beräknat med sandlådans påhittade riksnorm."
    if app.previous_decision is not None:
        summary += f" Förra månaden: {kr(app.previous_decision.amount)} kr."
    previous = app.previous_decision
    unverified = bool(result is not None and result.table is not None and not result.table.verified)
    return {
        "kind": "application",
        "version": MATERIAL_VERSION,
        "queue": APPLICATION_QUEUE,
        "title": title,
        "summary": summary,
        "reference": reference,
        "application_id": app.id,
        "application_version": app.updated_at.isoformat(),
        "application_kind": app.kind,
        "application_kind_text": kind_text,
        "month": app.month,
        "month_text": month_name(app.month),
        "income_month_text": month_name(app.income_month),
        "municipality": municipality,
        "submitted_at_text": local_text(app.submitted_at),
        # For the effects ledger: the hours from application to decision are counted from here.
        "submitted_at": app.submitted_at.isoformat(),
        "flags": ordered,
        "missing": [dict(x) for x in missing],
        "return_comment": return_comment,
        "proposal": {
            "amount": amount,
            "decision": decision,
            "decision_text": _DECISION_TEXT.get(decision or "", "Handläggaren beräknar beloppet"),
            "month": app.month,
            "lines": lines,
            "reasoning": reasoning,
        },
        "as_declared": (
            {"support": as_declared.support}
            if as_declared is not None and result is not None and as_declared.support != result.support
            else None
        ),
        "calculation": result.to_contract_json() if result else None,
        #: The case worker must confirm before approving on a table that is not official.
        "table_unverified": unverified,
        # The kernel refuses an approval without this ticked (core.transitions.check_confirmations).
        **(
            {
                "required_on_approve": {
                    "confirm_unverified_table": f"Jag har kontrollerat beloppen: riksnormen för {app.year} i "
                    "beräkningen är inte den officiella"
                }
            }
            if unverified and amount is not None
            else {}
        ),
        # The kernel refuses an approval that changes a line without its reason (check_reasons), so
        # the case worker hears it on the form, not when the decision is carried out.
        "reasons_on_change": _reasons_on_change(result) if result is not None and amount is not None else [],
        "calculation_error": calculation_error,
        "table_warnings": list(result.warnings) if result else [],
        "household": _household(app),
        "costs": _costs(app, result),
        "incomes": comparison.rows,
        "income_history": _income_history(comparison, register_months),
        "previous": [dict(r) for r in previous_rows],
        "previous_month_text": month_name(previous.month) if previous else None,
        "previous_decision_text": (
            {"approved": "beviljat", "partially_approved": "delvis beviljat", "rejected": "avslag"}.get(
                previous.decision, previous.decision
            )
            if previous
            else None
        ),
        "registers": _registers(app, lookups),
        "attachments": _attachments(app),
        "complements": _complements(app),
        "documents": [],
        "prepared_at": prepared_at.isoformat(),
        "prepared_at_text": local_text(prepared_at),
    }


def complement_material(
    *,
    app: Application,
    reference: str,
    request: ComplementRequest,
    today: date,
    due_days: int,
    prepared_at: datetime,
) -> dict[str, Any]:
    """The review material asking whether to request a missing complement again."""
    days = (today - request.requested_at.date()).days
    due = date.fromordinal(today.toordinal() + due_days)
    title = f"Begär komplettering? {app.id}: {request.what} har inte kommit, begärd för {days} dagar sedan"
    return {
        "kind": "complement",
        "version": MATERIAL_VERSION,
        "queue": COMPLEMENT_QUEUE,
        "title": title,
        "summary": f"Komplettering begärd {request.requested_at.date().isoformat()}, sista dag {request.due}, "
        "har inte kommit.",
        "reference": reference,
        "application_id": app.id,
        "month": app.month,
        "month_text": month_name(app.month),
        "applicant_name": app.applicant.name,
        "applicant_personnummer": app.applicant.personnummer,
        "flags": [
            Flag(
                "warning",
                "complement_missing",
                f"{request.what} har inte kommit in {days} dagar efter begäran (sista dag var {request.due})",
            ).as_json()
        ],
        "complement": {
            "id": request.id,
            "what": request.what,
            "requested": local_text(request.requested_at),
            "requested_by": request.requested_by,
            "due": request.due.isoformat(),
            "days_waiting": days,
        },
        "proposed_request": {"what": request.what, "due": due.isoformat()},
        "attachments": _attachments(app),
        "prepared_at": prepared_at.isoformat(),
        "prepared_at_text": local_text(prepared_at),
    }


def _reasons_on_change(result: NormResult) -> list[dict[str, Any]]:
    """Each line of the calculation a case worker may change, and what is no change (see decision.py)."""
    out = []
    for i, line in enumerate(result.to_contract_json().get("lines") or []):
        amount = int(line.get("amount") or 0)
        out.append(
            {
                "label": str(line.get("label") or ""),
                "reason": f"line.{i}.reason",
                "unchanged": {f"line.{i}.decision": ["", "bifall"], f"line.{i}.amount": ["", str(abs(amount))]},
            }
        )
    return out
