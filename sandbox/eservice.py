"""a. The income-support e-service (ekonomiskt bistånd): the month's applications and decisions.

Applications for the coming month (new and re-applications) with the household, declared
incomes and costs, attachments, complement requests and the previous month's decision.
Decisions are written back idempotently: one decision per application, keyed by the
client's idempotency key; the same key again is a replay, another key is a 409.

Amount keys are those of ``kollega ronney calc`` (costs: rent, household_electricity, …;
incomes: salary, unemployment_benefit, …), so a robot can map an application onto the norm.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sandbox.common import (
    IdempotencyStore,
    add_months,
    error,
    idempotency_key,
    local,
    month_end,
    month_key,
    not_found,
    paginate,
    parse_month,
)
from sandbox.geography import geography
from sandbox.people import Person, PersonFactory
from sandbox.state import TZ, SandboxOptions, SandboxState, get_state

__all__ = ["COST_KEYS", "INCOME_KEYS", "EserviceStore", "generate_applications", "mark_complement_arrived", "router"]

SYSTEM = "eservice"

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
)
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

#: Who pays each kind of income (the register that knows about it).
PAYERS = {
    "salary": "Arbetsgivare",
    "unemployment_benefit": "Arbetslöshetskassan",
    "sickness_benefit": "Försäkringskassan",
    "activity_support": "Försäkringskassan",
    "housing_allowance": "Försäkringskassan",
    "child_allowance": "Försäkringskassan",
    "maintenance_support": "Försäkringskassan",
    "study_grant": "CSN",
    "pension": "Pensionsmyndigheten",
    "other": "Övrigt",
}
CHILD_ALLOWANCE = {0: 0, 1: 1250, 2: 2650, 3: 4480, 4: 6740, 5: 9240}
COMPLEMENT_TOPICS = (
    "Lönespecifikation för förra månaden",
    "Hyresavi för ansökningsmånaden",
    "Kontoutdrag för de senaste tre månaderna",
    "Intyg från Arbetsförmedlingen",
    "Läkarintyg",
    "Beslut från Försäkringskassan",
)


# --- generation --------------------------------------------------------------------------------


def _member(p: Person, today: date, **extra: Any) -> dict[str, Any]:
    return {**p.as_dict(today), **extra}


def _household(rng: random.Random, people: PersonFactory) -> tuple[list[Person], list[Person], bool, int]:
    """(adults, children, cohabiting, other household members) by a plausible distribution."""
    roll = rng.random()
    adults = [people.person(19, 78)]
    children: list[Person] = []
    cohabiting = False
    others = 0
    if roll < 0.50:
        pass
    elif roll < 0.72:
        adults = [people.person(20, 55)]
        oldest = min(17, adults[0].age(people.today) - 18)
        children = [people.person(0, oldest, last_name=adults[0].last_name) for _ in range(rng.randint(1, 3))]
    elif roll < 0.80:
        adults.append(people.person(19, 78, last_name=adults[0].last_name))
        cohabiting = True
    elif roll < 0.95:
        adults = [people.person(22, 55)]
        adults.append(people.person(22, 55, last_name=adults[0].last_name))
        cohabiting = True
        oldest = min(20, min(a.age(people.today) for a in adults) - 18)
        children = [people.person(0, oldest, last_name=adults[0].last_name) for _ in range(rng.randint(1, 4))]
    else:
        others = rng.randint(1, 2)
    return adults, children, cohabiting, others


def _incomes(
    rng: random.Random, adults: list[Person], children: list[Person], today: date, employers: tuple[str, ...]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for adult in adults:
        roll = rng.random()
        kind, amount = (
            ("salary", rng.randint(300, 1800) * 10)
            if roll < 0.25
            else ("unemployment_benefit", rng.randint(600, 1400) * 10)
            if roll < 0.45
            else ("sickness_benefit", rng.randint(500, 1200) * 10)
            if roll < 0.58
            else ("activity_support", rng.randint(400, 900) * 10)
            if roll < 0.72
            else ("study_grant", rng.randint(300, 1200) * 10)
            if roll < 0.77
            else ("pension", rng.randint(700, 1300) * 10)
            if roll < 0.82 and adult.age(today) > 60
            else ("", 0)
        )
        if kind:
            payer = rng.choice(employers) if kind == "salary" else PAYERS[kind]
            out.append({"personnummer": adult.personnummer, "type": kind, "amount": amount, "payer": payer})
    if children:
        out.append(
            {
                "personnummer": adults[0].personnummer,
                "type": "child_allowance",
                "amount": CHILD_ALLOWANCE[min(len(children), 5)],
                "payer": PAYERS["child_allowance"],
            }
        )
        if len(adults) == 1 and rng.random() < 0.6:
            out.append(
                {
                    "personnummer": adults[0].personnummer,
                    "type": "maintenance_support",
                    "amount": 1673 * len(children),
                    "payer": PAYERS["maintenance_support"],
                }
            )
        if rng.random() < 0.4:
            out.append(
                {
                    "personnummer": adults[0].personnummer,
                    "type": "housing_allowance",
                    "amount": rng.randint(100, 450) * 10,
                    "payer": PAYERS["housing_allowance"],
                }
            )
    return out


def _costs(
    rng: random.Random, size: int, incomes: list[dict[str, Any]], children: list[Person], today: date
) -> dict[str, int]:
    working = any(i["type"] == "salary" for i in incomes)
    preschool = sum(1 for c in children if 1 <= c.age(today) <= 5)
    return {
        "rent": rng.randint(420 + 90 * size, 700 + 180 * size) * 10,
        "household_electricity": 0 if rng.random() < 0.4 else rng.randint(20, 60) * 10,
        "home_insurance": rng.randint(10, 25) * 10 if rng.random() < 0.8 else 0,
        "work_travel": rng.randint(45, 90) * 10 if working and rng.random() < 0.7 else 0,
        "union_fee": rng.randint(20, 45) * 10 if working and rng.random() < 0.5 else 0,
        "unemployment_fund_fee": rng.randint(10, 16) * 10 if rng.random() < 0.3 else 0,
        "childcare": sum(rng.randint(30, 150) * 10 for _ in range(preschool)),
        "medical": rng.randint(10, 60) * 10 if rng.random() < 0.2 else 0,
        "dental_acute": rng.randint(50, 300) * 10 if rng.random() < 0.05 else 0,
    }


def _attachments(
    rng: random.Random, app_id: str, costs: dict[str, int], incomes: list[dict[str, Any]], submitted: datetime
) -> list[dict[str, Any]]:
    kinds = ["kontoutdrag"]
    if costs["rent"] > 0:
        kinds.append("hyresavi")
    if any(i["type"] == "salary" for i in incomes):
        kinds.append("lonespecifikation")
    optional = {
        "household_electricity": "elfaktura",
        "home_insurance": "forsakringsbrev",
        "childcare": "barnomsorgsfaktura",
        "medical": "kvitto_lakarvard",
        "dental_acute": "tandlakarkvitto",
    }
    kinds += [kind for key, kind in optional.items() if costs[key] > 0 and rng.random() < 0.8]
    return [
        {
            "id": f"{app_id}-A{n + 1}",
            "type": kind,
            "filename": f"{kind}.pdf",
            "size_bytes": rng.randint(40_000, 900_000),
            "received_at": submitted.isoformat(timespec="seconds"),
        }
        for n, kind in enumerate(kinds)
    ]


def generate_applications(
    rng: random.Random, people: PersonFactory, options: SandboxOptions
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The coming month's applications, and the anomalies planted in them (by kind → application ids)."""
    today = options.today
    month = add_months(today, 1)
    income_month = add_months(month, -1)
    opens = min(month - timedelta(days=19), today - timedelta(days=1))
    window = max(1, (today - opens).days)
    anomalies: dict[str, list[str]] = {
        "invalid_personnummer": [],
        "missing_attachment": [],
        "household_inconsistent": [],
        "negative_amount": [],
    }
    apps: list[dict[str, Any]] = []
    for i in range(options.applications):
        app_id = f"EB-{month:%Y%m}-{i + 1:04d}"
        adults, children, cohabiting, others = _household(rng, people)
        size = len(adults) + len(children)
        incomes = _incomes(rng, adults, children, today, geography(options.tenant).employers)
        costs = _costs(rng, size, incomes, children, today)
        submitted = local(opens + timedelta(days=rng.randrange(window)), rng.randint(7, 22), rng.randint(0, 59))
        kind = "reapplication" if rng.random() < options.reapplication_share else "new"
        months_on_support = rng.randint(1, 36) if kind == "reapplication" else 0
        salaried = any(x["type"] == "salary" for x in incomes)
        app: dict[str, Any] = {
            "id": app_id,
            "tenant": options.tenant,
            "kind": kind,
            "month": month_key(month),
            "income_period": {"from": income_month.isoformat(), "to": month_end(income_month).isoformat()},
            "submitted_at": submitted.isoformat(timespec="seconds"),
            "updated_at": submitted.isoformat(timespec="seconds"),
            "status": "submitted",
            "applicant": _member(adults[0], today),
            "co_applicant": _member(adults[1], today) if len(adults) > 1 else None,
            "cohabiting": cohabiting,
            "children": [_member(c, today, lunch_at_home=c.age(today) < 1 or rng.random() < 0.15) for c in children],
            "other_household_members": others,
            "address": {k: v for k, v in people.address().items() if k not in ("lat", "lon")},
            "costs": costs,
            "incomes": incomes,
            "months_on_support": months_on_support,
            "job_stimulus_active": bool(salaried and months_on_support >= 6 and rng.random() < 0.8),
            "attachments": _attachments(rng, app_id, costs, incomes, submitted),
            "complement_requests": [],
            "previous_decision": None,
        }
        if kind == "reapplication":
            rent = costs["rent"] if rng.random() > 0.15 else costs["rent"] - rng.randint(-150, 150) * 10
            prev_size = size if rng.random() > 0.05 else max(1, size + rng.choice((-1, 1)))
            income_total = sum(x["amount"] for x in incomes) + rng.randint(-100, 100) * 10
            amount = max(0, 3300 * len(adults) + 2600 * len(children) + 1200 + rent - max(0, income_total))
            app["previous_decision"] = {
                "month": month_key(income_month),
                "decision": "approved" if amount > 0 else "rejected",
                "amount": amount // 10 * 10,
                "decided_at": (income_month - timedelta(days=rng.randint(2, 8))).isoformat(),
                "basis": {"rent": rent, "household_size": prev_size, "income_total": max(0, income_total)},
            }
        _history(app, today)
        _complements(rng, app, today)
        _plant_anomaly(rng, app, options.anomaly_rate, anomalies)
        apps.append(app)
    return apps, anomalies


def _history(app: dict[str, Any], today: date) -> None:
    """What a municipality's own system knows of the household: the previous decision's basis per type,
    recovery claims, an advance on a benefit, pending benefits, children part time, the payment account,
    and now and then an "other" cost. Drawn from the application's own id, so the rest of the
    sandbox's data is the same as without it (a seed gives the same night as before)."""
    rng = random.Random(f"{app['id']}:history")
    app["payment_account"] = f"****{rng.randint(1000, 9999)}"
    if rng.random() < 0.05:
        app["costs"]["other"] = rng.randint(20, 150) * 10
    for child in app["children"]:
        child["part_time_at_home"] = rng.random() < 0.08
    if rng.random() < 0.05:
        app["pending_benefits"] = [
            {
                "type": rng.choice(("sickness_benefit", "housing_allowance", "activity_support")),
                "applied_on": (today - timedelta(days=rng.randint(5, 60))).isoformat(),
            }
        ]
    previous = app.get("previous_decision")
    if previous is None:
        return
    if rng.random() < 0.06:
        months_ago = rng.randint(3, 40)  # some within the 36 months a case worker is shown, some older
        app["recovery_claims"] = [
            {"decided_on": (today - timedelta(days=30 * months_ago)).isoformat(), "amount": rng.randint(10, 300) * 10}
        ]
    previous["payment_account"] = app["payment_account"] if rng.random() > 0.06 else f"****{rng.randint(1000, 9999)}"
    if rng.random() < 0.04:
        previous["advance_on_benefit"] = rng.choice(("sickness_benefit", "housing_allowance"))
    incomes: dict[str, int] = {}
    for income in app["incomes"]:
        incomes[income["type"]] = incomes.get(income["type"], 0) + income["amount"]
    roll = rng.random()
    if incomes and roll < 0.08:  # one income type changed by 20–40 % since the last decision
        kind = rng.choice(sorted(incomes))
        incomes[kind] = int(incomes[kind] * rng.choice((0.6, 0.7, 0.8, 1.25, 1.4))) // 10 * 10
    elif roll < 0.13:  # an income type of the last decision that is gone now
        gone = rng.choice(("sickness_benefit", "housing_allowance", "unemployment_benefit"))
        if gone not in incomes:
            incomes[gone] = rng.randint(150, 900) * 10
    previous["basis"]["incomes"] = incomes
    previous["basis"]["costs"] = {k: v for k, v in app["costs"].items() if v > 0 and k != "other"}
    previous["basis"]["costs"]["rent"] = previous["basis"]["rent"]


def _complements(rng: random.Random, app: dict[str, Any], today: date) -> None:
    roll = rng.random()
    if roll >= 0.13:
        return
    requested = local(today - timedelta(days=rng.randint(1, 12)), rng.randint(8, 16))
    arrived = roll < 0.05
    request: dict[str, Any] = {
        "id": f"{app['id']}-K1",
        "what": rng.choice(COMPLEMENT_TOPICS),
        "requested_at": requested.isoformat(timespec="seconds"),
        "requested_by": "handläggare",
        "due": (requested.date() + timedelta(days=7)).isoformat(),
        "arrived_at": None,
        "attachment_id": None,
    }
    if arrived:
        came = requested + timedelta(days=rng.randint(1, 4), hours=rng.randint(0, 6))
        came = min(came, local(today, 6))
        attachment = {
            "id": f"{app['id']}-A{len(app['attachments']) + 1}",
            "type": "komplettering",
            "filename": "komplettering.pdf",
            "size_bytes": rng.randint(40_000, 400_000),
            "received_at": came.isoformat(timespec="seconds"),
        }
        app["attachments"].append(attachment)
        request.update(arrived_at=attachment["received_at"], attachment_id=attachment["id"])
    else:
        app["status"] = "awaiting_complement"
    app["complement_requests"].append(request)


def _plant_anomaly(rng: random.Random, app: dict[str, Any], rate: float, anomalies: dict[str, list[str]]) -> None:
    if rng.random() >= rate:
        return
    kind = rng.choice(sorted(anomalies))
    if kind == "invalid_personnummer":
        member = app["children"][0] if app["children"] else app["co_applicant"] or app["applicant"]
        number = member["personnummer"]
        member["personnummer"] = number[:-1] + str((int(number[-1]) + 1) % 10)  # wrong check digit
    elif kind == "missing_attachment":
        present = [a["type"] for a in app["attachments"]]
        missing = next(t for t in ("hyresavi", "lonespecifikation", "kontoutdrag") if t in present)
        app["attachments"] = [a for a in app["attachments"] if a["type"] != missing]
    elif kind == "household_inconsistent":
        app["cohabiting"] = True
        app["co_applicant"] = None
    else:
        app["costs"]["rent"] = -abs(app["costs"]["rent"])
    anomalies[kind].append(app["id"])


# --- store ------------------------------------------------------------------------------------


@dataclass
class EserviceStore:
    """What was written to the e-service: decisions and complement requests, with idempotency."""

    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    idempotency: IdempotencyStore = field(default_factory=IdempotencyStore)


def _store(state: SandboxState) -> EserviceStore:
    return state.store(SYSTEM, EserviceStore)


def _index(state: SandboxState) -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = state.store(
        "eservice.index", lambda: {a["id"]: a for a in state.data.applications}
    )
    return index


def _application(state: SandboxState, app_id: str) -> dict[str, Any]:
    app: dict[str, Any] | None = _index(state).get(app_id)
    if app is None:
        raise not_found(f"application {app_id}")
    return app


def mark_complement_arrived(state: SandboxState, complement_id: str) -> dict[str, Any]:
    """Simulate the applicant sending a complement (admin API): arrival time is the sandbox clock's now."""
    app_id = complement_id.rsplit("-K", 1)[0]
    app = _application(state, app_id)
    request: dict[str, Any]
    for request in app["complement_requests"]:
        if request["id"] == complement_id:
            if request["arrived_at"] is None:
                now = state.now_iso()
                attachment = {
                    "id": f"{app_id}-A{len(app['attachments']) + 1}",
                    "type": "komplettering",
                    "filename": "komplettering.pdf",
                    "size_bytes": 120_000,
                    "received_at": now,
                }
                app["attachments"].append(attachment)
                request.update(arrived_at=now, attachment_id=attachment["id"])
                app["updated_at"] = now
                if app["status"] == "awaiting_complement" and all(r["arrived_at"] for r in app["complement_requests"]):
                    app["status"] = "submitted"
            return request
    raise not_found(f"complement request {complement_id}")


def inspect(state: SandboxState) -> dict[str, Any]:
    """Admin view: decisions per application and how often each was attempted."""
    store = _store(state)
    return {
        "decisions": store.decisions,
        "decision_attempts": store.attempts,
        "decisions_written": {k: state.log.count(SYSTEM, "decision.created", k) for k in store.decisions},
        "scenarios": state.data.truth.get("eservice", {}),
    }


# --- API ---------------------------------------------------------------------------------------

router = APIRouter(prefix="/eservice", tags=["e-service (income support)"])


class DecisionLine(BaseModel):
    """One line of a decision's reasoning."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    amount: int


class DecisionIn(BaseModel):
    """A decision written back to the e-service."""

    model_config = ConfigDict(extra="forbid")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    decision: Literal["approved", "partially_approved", "rejected"]
    amount: int = Field(ge=0)
    month: str
    lines: list[DecisionLine] = []
    reasoning: str = ""
    decided_by: str = Field(min_length=1)
    reference: str | None = None


class ComplementIn(BaseModel):
    """A request for a complement (komplettering) sent to the applicant."""

    model_config = ConfigDict(extra="forbid")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    what: str = Field(min_length=1)
    due: date
    requested_by: str = Field(min_length=1)


def _summary(app: dict[str, Any], store: EserviceStore) -> dict[str, Any]:
    return {
        "id": app["id"],
        "kind": app["kind"],
        "month": app["month"],
        "status": app["status"],
        "submitted_at": app["submitted_at"],
        "updated_at": app["updated_at"],
        "has_decision": app["id"] in store.decisions,
        "awaiting_complement": any(r["arrived_at"] is None for r in app["complement_requests"]),
    }


@router.get("/applications")
async def list_applications(
    state: SandboxState = Depends(get_state),
    month: str | None = None,
    kind: Literal["new", "reapplication"] | None = None,
    status: str | None = None,
    submitted_since: datetime | None = None,
    offset: int = 0,
    limit: int = 100,
) -> dict[str, Any]:
    """Summaries of the month's applications (no personal data), oldest first."""
    wanted = month_key(parse_month(month)) if month else month_key(add_months(state.today, 1))
    store = _store(state)
    items = [
        _summary(a, store)
        for a in state.data.applications
        if a["month"] == wanted
        and (kind is None or a["kind"] == kind)
        and (status is None or a["status"] == status)
        and (submitted_since is None or datetime.fromisoformat(a["submitted_at"]) > _aware(submitted_since))
    ]
    return {"month": wanted, **paginate(items, offset, limit)}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=TZ)


@router.get("/applications/{app_id}")
async def get_application(app_id: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """One application in full: household, incomes, costs, attachments, complements, previous decision."""
    app = dict(_application(state, app_id))
    app["decision"] = _store(state).decisions.get(app_id)
    return app


@router.get("/applications/{app_id}/complements")
async def list_complements(app_id: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """The application's complement requests and whether/when each arrived."""
    return {"application_id": app_id, "items": _application(state, app_id)["complement_requests"]}


@router.post("/applications/{app_id}/complements", status_code=201)
async def request_complement(
    app_id: str, body: ComplementIn, request: Request, state: SandboxState = Depends(get_state)
) -> Any:
    """Ask the applicant for a complement; idempotent by key."""
    app = _application(state, app_id)
    key = idempotency_key(request, body.idempotency_key)
    assert key is not None
    store = _store(state)
    payload = body.model_dump(mode="json", exclude={"idempotency_key"})
    replay = store.idempotency.check(f"complement:{app_id}", key, payload)
    if replay is not None:
        return replay
    now = state.now_iso()
    item = {
        "id": f"{app_id}-K{len(app['complement_requests']) + 1}",
        "what": body.what,
        "requested_at": now,
        "requested_by": body.requested_by,
        "due": body.due.isoformat(),
        "arrived_at": None,
        "attachment_id": None,
    }
    app["complement_requests"].append(item)
    app["status"] = "awaiting_complement"
    app["updated_at"] = now
    store.idempotency.remember(f"complement:{app_id}", key, payload, item)
    state.log.record(SYSTEM, "complement.requested", app_id, {"complement_id": item["id"], "idempotency_key": key})
    return JSONResponse(item, status_code=201)


@router.post("/applications/{app_id}/decision", status_code=201)
async def write_decision(
    app_id: str, body: DecisionIn, request: Request, state: SandboxState = Depends(get_state)
) -> Any:
    """Register the decision; same key again → the same answer (200), another decision → 409."""
    app = _application(state, app_id)
    key = idempotency_key(request, body.idempotency_key)
    assert key is not None
    store = _store(state)
    store.attempts[app_id] = store.attempts.get(app_id, 0) + 1
    payload = body.model_dump(mode="json", exclude={"idempotency_key"})
    replay = store.idempotency.check(f"decision:{app_id}", key, payload)
    if replay is not None:
        state.log.record(SYSTEM, "decision.replayed", app_id, {"idempotency_key": key})
        return replay
    if app_id in store.decisions:
        return error(
            409, "decision_exists", f"application {app_id} already has a decision", decision=store.decisions[app_id]
        )
    if body.month != app["month"]:
        return error(422, "wrong_month", f"application {app_id} concerns {app['month']}, not {body.month}")
    now = state.now_iso()
    decision = {
        "application_id": app_id,
        "decision_id": f"BES-{app_id[3:]}",
        "idempotency_key": key,
        "recorded_at": now,
        **payload,
    }
    store.decisions[app_id] = decision
    store.idempotency.remember(f"decision:{app_id}", key, payload, decision)
    app["status"] = "decided"
    app["updated_at"] = now
    state.log.record(
        SYSTEM, "decision.created", app_id, {"idempotency_key": key, "decision": body.decision, "amount": body.amount}
    )
    return JSONResponse(decision, status_code=201)


@router.get("/applications/{app_id}/decision")
async def read_decision(app_id: str, state: SandboxState = Depends(get_state)) -> Any:
    """The registered decision, or 404 if none (check before writing, read back after)."""
    _application(state, app_id)
    decision = _store(state).decisions.get(app_id)
    if decision is None:
        return error(404, "no_decision", f"application {app_id} has no decision")
    return decision
