"""b. The registers, SSBTEK-like: other authorities' data on one person for one period.

``POST /registers/lookup`` takes the personnummer in the body (or the ``X-Personnummer``
header) — never in the URL, since URLs end up in logs — together with the period, the
case id, the purpose and the legal basis that lifts secrecy. A request without case id,
purpose or legal basis is refused with 400, as is a personnummer in the query string.

The answer holds, per source: Försäkringskassan, Pensionsmyndigheten, Arbetsförmedlingen,
CSN, Skatteverket, the unemployment fund (a-kassa) and Transportstyrelsen. The data
agrees with what each applicant declared in the e-service, except for the planted cases
of undeclared or under-declared income (listed in ``/admin/state/registers``).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from stdnum.se import personnummer as stdnum_personnummer  # type: ignore[import-untyped]

from sandbox.common import add_months, error, month_key
from sandbox.geography import geography
from sandbox.state import SandboxOptions, SandboxState, get_state

__all__ = ["SOURCES", "generate_registers", "router"]

SYSTEM = "registers"

SOURCES = (
    "forsakringskassan",
    "pensionsmyndigheten",
    "arbetsformedlingen",
    "csn",
    "skatteverket",
    "akassa",
    "transportstyrelsen",
)

#: Income type → (source, Swedish name of the benefit).
_BENEFITS: dict[str, tuple[str, str]] = {
    "sickness_benefit": ("forsakringskassan", "sjukpenning"),
    "activity_support": ("forsakringskassan", "aktivitetsstöd"),
    "housing_allowance": ("forsakringskassan", "bostadsbidrag"),
    "child_allowance": ("forsakringskassan", "barnbidrag"),
    "maintenance_support": ("forsakringskassan", "underhållsstöd"),
    "pension": ("pensionsmyndigheten", "ålderspension"),
    "study_grant": ("csn", "studiemedel"),
    "unemployment_benefit": ("akassa", "arbetslöshetsersättning"),
}
_FUNDS = ("Kommunals a-kassa", "Unionens a-kassa", "Byggnads a-kassa", "Alfa-kassan", "Handels a-kassa")
_PAY_DAY = {"forsakringskassan": 25, "pensionsmyndigheten": 19, "csn": 24, "akassa": 15}


def _empty() -> dict[str, Any]:
    return {
        "forsakringskassan": [],
        "pensionsmyndigheten": [],
        "csn": [],
        "akassa": [],
        "arbetsformedlingen": {"registered": False},
        "skatteverket": {"income": [], "folkbokforing": None},
        "transportstyrelsen": {"vehicles": []},
    }


def _add_income(
    record: dict[str, Any], rng: random.Random, kind: str, amount: int, payer: str, months: list[date], vary: bool
) -> None:
    for n, month in enumerate(months):
        last = n == len(months) - 1
        value = amount if last or not vary else max(0, round(amount * rng.uniform(0.85, 1.1) / 10) * 10)
        if kind == "salary":
            gross = round(value / 0.7)
            record["skatteverket"]["income"].append(
                {
                    "employer": payer,
                    "month": month_key(month),
                    "gross": gross,
                    "preliminary_tax": gross - value,
                    "net": value,
                    "source": "arbetsgivardeklaration",
                }
            )
        elif kind in _BENEFITS:
            source, name = _BENEFITS[kind]
            paid = month.replace(day=_PAY_DAY[source])
            entry = {
                "benefit": name,
                "type": kind,
                "month": month_key(month),
                "amount": value,
                "paid_on": paid.isoformat(),
            }
            if source == "akassa":
                entry["fund"] = payer
            record[source].append(entry)


def generate_registers(
    rng: random.Random, applications: list[dict[str, Any]], options: SandboxOptions
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Register data for every adult in the applications, and the planted undeclared incomes."""
    registers: dict[str, dict[str, Any]] = {}
    undeclared: list[dict[str, Any]] = []
    for app in applications:
        month = date.fromisoformat(app["income_period"]["from"])
        months = [add_months(month, -2), add_months(month, -1), month]
        adults = [a for a in (app["applicant"], app["co_applicant"]) if a is not None]
        for adult in adults:
            number = adult["personnummer"]
            if not stdnum_personnummer.is_valid(number) or number in registers:
                continue
            record = registers[number] = _empty()
            record["skatteverket"]["folkbokforing"] = {**app["address"], "municipality": options.municipality}
            fund = rng.choice(_FUNDS)
            for income in app["incomes"]:
                if income["personnummer"] == number:
                    payer = fund if income["type"] == "unemployment_benefit" else income["payer"]
                    _add_income(
                        record, rng, income["type"], income["amount"], payer, months, vary=income["type"] == "salary"
                    )
            kinds = {i["type"] for i in app["incomes"] if i["personnummer"] == number}
            if kinds & {"unemployment_benefit", "activity_support"} or rng.random() < 0.3:
                record["arbetsformedlingen"] = {
                    "registered": True,
                    "registered_since": (options.today - timedelta(days=rng.randint(30, 900))).isoformat(),
                    "category": "i program" if "activity_support" in kinds else "arbetssökande",
                    "program": "Jobb- och utvecklingsgarantin" if "activity_support" in kinds else None,
                    "extent_percent": rng.choice((100, 100, 100, 75, 50)),
                }
            if rng.random() < 0.25:
                record["transportstyrelsen"]["vehicles"] = [
                    {
                        "registration": f"{''.join(rng.choices('ABCDEFGHJKLMNPRSTUWXYZ', k=3))} {rng.randint(10, 99)}"
                        f"{rng.choice('ABCDEFGHJKLMNPRSTUWXYZ0123456789')}",
                        "model_year": rng.randint(2002, 2022),
                        "owner_since": f"{rng.randint(2015, 2025)}-0{rng.randint(1, 9)}-01",
                    }
                ]
            history = random.Random(f"{app['id']}:{number[-4:]}:dropped")
            if history.random() < 0.04 and not {"sickness_benefit"} & kinds:
                # paid the month before the income month but not in it: ended, or paid late
                _add_income(
                    record,
                    history,
                    "sickness_benefit",
                    history.randint(200, 900) * 10,
                    "Försäkringskassan",
                    months[1:2],
                    vary=False,
                )
        if adults and rng.random() < options.undeclared_income_rate:
            undeclared.append(_plant_undeclared(rng, app, registers, months, geography(options.tenant).employers))
    return registers, [u for u in undeclared if u]


def _plant_undeclared(
    rng: random.Random,
    app: dict[str, Any],
    registers: dict[str, dict[str, Any]],
    months: list[date],
    employers: tuple[str, ...],
) -> dict[str, Any]:
    adult = rng.choice([a for a in (app["applicant"], app["co_applicant"]) if a is not None])
    record = registers.get(adult["personnummer"])
    if record is None:  # an invalid personnummer planted in the e-service: nothing to find
        return {}
    salary = next(
        (i for i in app["incomes"] if i["personnummer"] == adult["personnummer"] and i["type"] == "salary"), None
    )
    if salary is not None and rng.random() < 0.4:
        extra = rng.randint(50, 300) * 10
        row = next(
            r
            for r in record["skatteverket"]["income"]
            if r["month"] == month_key(months[-1]) and r["employer"] == salary["payer"]
        )
        row["net"] += extra
        row["gross"] = round(row["net"] / 0.7)
        row["preliminary_tax"] = row["gross"] - row["net"]
        return {
            "application_id": app["id"],
            "personnummer": adult["personnummer"],
            "kind": "higher",
            "source": "skatteverket",
            "type": "salary",
            "declared": salary["amount"],
            "register": row["net"],
        }
    kind = rng.choice(("sickness_benefit", "unemployment_benefit", "salary", "housing_allowance"))
    amount = rng.randint(120, 600) * 10 if kind != "salary" else rng.randint(150, 900) * 10
    payer = rng.choice(employers) if kind == "salary" else _FUNDS[0] if kind == "unemployment_benefit" else "FK"
    _add_income(record, rng, kind, amount, payer, months[-1:], vary=False)
    source = "skatteverket" if kind == "salary" else _BENEFITS[kind][0]
    return {
        "application_id": app["id"],
        "personnummer": adult["personnummer"],
        "kind": "missing",
        "source": source,
        "type": kind,
        "declared": 0,
        "register": amount,
    }


# --- API ---------------------------------------------------------------------------------------

router = APIRouter(prefix="/registers", tags=["registers (SSBTEK-like)"])


class Period(BaseModel):
    """The period asked about (whole days, inclusive)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: date = Field(alias="from")
    to: date


class LookupIn(BaseModel):
    """A register request: who asks, about whom, for which case, why, and by what right."""

    model_config = ConfigDict(extra="forbid")
    personnummer: str | None = None
    period: Period
    case_id: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    organisation: str | None = None
    case_worker: str | None = None
    sources: list[Literal[SOURCES]] | None = None  # type: ignore[valid-type]


def _in_period(month: str, period: Period) -> bool:
    return month_key(period.from_) <= month <= month_key(period.to)


def _answer(record: dict[str, Any] | None, source: str, period: Period) -> dict[str, Any]:
    value = (record or _empty())[source]
    if source in ("forsakringskassan", "pensionsmyndigheten", "csn", "akassa"):
        payments = [p for p in value if _in_period(p["month"], period)]
        return {"status": "ok" if payments else "no_data", "payments": payments}
    if source == "skatteverket":
        income = [r for r in value["income"] if _in_period(r["month"], period)]
        return {"status": "ok" if record else "no_data", "income": income, "folkbokforing": value["folkbokforing"]}
    return {"status": "ok" if record else "no_data", **value}


@router.post("/lookup")
async def lookup(request: Request, state: SandboxState = Depends(get_state)) -> Any:
    """Data from every (or the chosen) source for one personnummer and period; see the module docstring."""
    if {"personnummer", "pnr", "personal_number"} & {k.lower() for k in request.query_params}:
        state.log.record(SYSTEM, "lookup.refused", "-", {"reason": "personnummer_in_url"})
        return error(400, "personnummer_in_url", "send the personnummer in the body or the X-Personnummer header")
    try:
        raw = await request.json()
        body = LookupIn.model_validate(raw)
    except (ValueError, ValidationError) as exc:
        return error(400, "bad_request", "the body must be a lookup request", detail=str(exc)[:500])
    missing = [name for name in ("case_id", "purpose", "legal_basis") if not (getattr(body, name) or "").strip()]
    number = (request.headers.get("x-personnummer") or body.personnummer or "").replace("-", "").strip()
    if not number:
        missing.insert(0, "personnummer")
    if missing:
        state.log.record(SYSTEM, "lookup.refused", body.case_id or "-", {"reason": "missing", "missing": missing})
        return error(400, "missing_fields", "a register request needs " + ", ".join(missing), missing=missing)
    if len(number) != 12 or not stdnum_personnummer.is_valid(number):
        state.log.record(SYSTEM, "lookup.refused", body.case_id or "-", {"reason": "invalid_personnummer"})
        return error(400, "invalid_personnummer", "the personnummer must be 12 digits with a valid check digit")
    if body.period.to < body.period.from_ or (body.period.to - body.period.from_).days > 400:
        return error(400, "bad_period", "the period must run forwards and cover at most 13 months")
    sources = list(body.sources or SOURCES)
    record = state.data.registers.get(number)
    entry = state.log.record(
        SYSTEM,
        "lookup",
        body.case_id or "",
        {
            "personnummer": number,
            "purpose": body.purpose,
            "legal_basis": body.legal_basis,
            "organisation": body.organisation,
            "case_worker": body.case_worker,
            "sources": sources,
            "period": {"from": body.period.from_.isoformat(), "to": body.period.to.isoformat()},
        },
    )
    return JSONResponse(
        {
            "request_id": f"SSBTEK-{entry.seq:07d}",
            "fetched_at": entry.at,
            "personnummer": number,
            "case_id": body.case_id,
            "period": {"from": body.period.from_.isoformat(), "to": body.period.to.isoformat()},
            "found": record is not None,
            "sources": {s: _answer(record, s, body.period) for s in sources},
        }
    )


def inspect(state: SandboxState) -> dict[str, Any]:
    """Admin view: lookups per case and per person, refusals, and the planted undeclared incomes."""
    lookups = state.log.entries(SYSTEM, "lookup")
    by_person: dict[str, int] = {}
    for e in lookups:
        by_person[e.details["personnummer"]] = by_person.get(e.details["personnummer"], 0) + 1
    return {
        "lookups": len(lookups),
        "refused": state.log.count(SYSTEM, "lookup.refused"),
        "lookups_by_case": state.log.counts(SYSTEM).get("lookup", {}),
        "lookups_by_person": by_person,
        "scenarios": {"undeclared_income": state.data.truth.get("registers", {}).get("undeclared_income", [])},
    }
