"""d. The home-care system (hemtjänst): clients, tomorrow's visits, staff rosters, history, plans.

Clients live in the municipality's localities (:mod:`sandbox.geography`) and each has a care plan; tomorrow's
visits come from those plans: a start window (``earliest_start``–``latest_start``; exact
times ±15 min for medication), duration, required competences, one or two staff (with
``simultaneous`` or ``sequential`` synchronisation), some locked to a person and time,
preferred staff and the client's contact person (fast omsorgskontakt). Staff have a
shift, a break rule, competences and a mode of travel. Fourteen days of history say who
visited whom. ``GET /homecare/plans/baseline`` is the plan the system would make by
itself (greedy, see :mod:`sandbox.homecare_baseline`); ``POST /homecare/plans`` publishes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sandbox.common import IdempotencyStore, error, idempotency_key, local, not_found
from sandbox.geography import geography
from sandbox.homecare_baseline import baseline_plan
from sandbox.people import PersonFactory
from sandbox.state import TZ, SandboxOptions, SandboxState, get_state

__all__ = ["ACTIVITIES", "HomecareStore", "generate_homecare", "router"]

SYSTEM = "homecare"

#: Activity → (earliest start, latest start (hh, mm), duration range in minutes, competences, days of week or None = daily)
ACTIVITIES: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int], list[str], tuple[int, ...] | None]] = {
    "Morgonhjälp": ((7, 0), (9, 30), (30, 45), ["undersköterska"], None),
    "Läkemedel morgon": ((7, 30), (8, 30), (10, 15), ["delegering_läkemedel"], None),
    "Frukost": ((8, 0), (10, 0), (20, 30), [], None),
    "Lunch": ((11, 0), (13, 30), (25, 40), [], None),
    "Läkemedel lunch": ((11, 30), (12, 30), (10, 15), ["delegering_läkemedel"], None),
    "Tillsyn": ((14, 0), (16, 0), (10, 20), [], None),
    "Middag": ((16, 0), (18, 30), (25, 40), [], None),
    "Läkemedel kväll": ((19, 30), (20, 30), (10, 15), ["delegering_läkemedel"], None),
    "Kvällshjälp": ((19, 30), (21, 30), (30, 45), ["undersköterska"], None),
    "Dusch": ((9, 0), (14, 0), (45, 60), ["undersköterska"], (1, 4)),
    "Städning": ((9, 0), (15, 0), (60, 90), [], (2,)),
    "Inköp": ((10, 0), (15, 0), (45, 60), [], (3,)),
}
_LEVELS = (  # care levels: which daily activities a client gets
    ("Lunch", "Tillsyn"),
    ("Morgonhjälp", "Lunch", "Middag"),
    ("Morgonhjälp", "Läkemedel morgon", "Lunch", "Middag", "Kvällshjälp"),
    (
        "Morgonhjälp",
        "Läkemedel morgon",
        "Frukost",
        "Lunch",
        "Läkemedel lunch",
        "Tillsyn",
        "Middag",
        "Läkemedel kväll",
        "Kvällshjälp",
    ),
)
_MODES = (("car", 0.7), ("bike", 0.2), ("walk", 0.1))
_SHIFTS = (("dag", (7, 0), (16, 0)), ("mellan", (10, 0), (19, 0)), ("kväll", (13, 0), (22, 0)))
BREAK_MINUTES = 30


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-").replace("å", "a").replace("ä", "a").replace("ö", "o")


def _activities_for(level: tuple[str, ...], rng: random.Random, weekday: int, weekly: bool) -> list[str]:
    acts = list(level)
    if weekly:
        acts += [
            name
            for name, spec in ACTIVITIES.items()
            if spec[4] is not None and weekday in spec[4] and rng.random() < 0.3
        ]
    return acts


def _visit(rng: random.Random, visit_id: str, client: dict[str, Any], day: date, activity: str) -> dict[str, Any]:
    (eh, em), (lh, lm), (dmin, dmax), competences, _ = ACTIVITIES[activity]
    return {
        "id": visit_id,
        "client_id": client["id"],
        "group": client["group"],
        "date": day.isoformat(),
        "activity": activity,
        "earliest_start": local(day, eh, em).isoformat(timespec="minutes"),
        "latest_start": local(day, lh, lm).isoformat(timespec="minutes"),
        "duration_minutes": rng.randrange(dmin, dmax + 1, 5),
        "competences": list(competences),
        "staff_count": 1,
        "sync": None,
        "locked": None,
        "preferred_staff": list(client["preferred_staff"]),
        "contact_person": client["contact_person"],
        "lat": client["address"]["lat"],
        "lon": client["address"]["lon"],
    }


def generate_homecare(rng: random.Random, people: PersonFactory, options: SandboxOptions) -> dict[str, Any]:
    """Groups, clients, staff, tomorrow's visits and 14 days of history."""
    tomorrow = options.today + timedelta(days=1)
    places = geography(options.tenant)
    groups: list[dict[str, Any]] = []
    for g in range(options.homecare_groups):
        area = places.areas[g]
        groups.append(
            {
                "id": _slug(area.name),
                "name": f"Hemtjänst {area.name}",
                "area": area.name,
                "office": {"lat": area.lat, "lon": area.lon},
            }
        )
    staff: list[dict[str, Any]] = []
    for i in range(options.homecare_staff):
        group = groups[i % len(groups)]
        person = people.person(20, 64)
        usk = rng.random() < 0.75
        competences = ["undersköterska", "vårdbiträde"] if usk else ["vårdbiträde"]
        if usk and rng.random() < 0.8:
            competences.append("delegering_läkemedel")
        name, begins, ends = _SHIFTS[0] if i % 20 < 10 else _SHIFTS[1] if i % 20 < 13 else _SHIFTS[2]
        shift_start, shift_end = local(tomorrow, *begins), local(tomorrow, *ends)
        staff.append(
            {
                "id": f"S{i + 1:03d}",
                "group": group["id"],
                "first_name": person.first_name,
                "last_name": person.last_name,
                "competences": competences,
                "travel_mode": rng.choices([m for m, _ in _MODES], [w for _, w in _MODES])[0],
                "shift": {
                    "name": name,
                    "start": shift_start.isoformat(timespec="minutes"),
                    "end": shift_end.isoformat(timespec="minutes"),
                },
                "break": {
                    "minutes": BREAK_MINUTES,
                    "earliest": (shift_start + timedelta(hours=3)).isoformat(timespec="minutes"),
                    "latest": (shift_start + timedelta(hours=5)).isoformat(timespec="minutes"),
                    "max_work_without_break_minutes": 300,
                },
                "start_location": dict(group["office"]),
                "end_location": dict(group["office"]),
            }
        )
    by_group = {g["id"]: [s["id"] for s in staff if s["group"] == g["id"]] for g in groups}
    clients: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    target = options.homecare_visits
    n = 0
    while len(visits) < target and by_group[groups[0]["id"]]:
        group = groups[n % len(groups)]
        area = places.area(group["area"])
        person = people.person(65, 99)
        pool = rng.sample(by_group[group["id"]], min(len(by_group[group["id"]]), rng.randint(5, 14)))
        contact = pool[0]
        level = _LEVELS[rng.choices(range(len(_LEVELS)), (0.3, 0.35, 0.25, 0.1))[0]]
        address = people.address(area)
        address["lat"], address["lon"] = people.point_near(area.lat, area.lon, 4.0 if len(groups) == 1 else 2.5)
        client = {
            "id": f"K{n + 1:04d}",
            "group": group["id"],
            **person.as_dict(options.today),
            "address": address,
            "contact_person": contact,
            "preferred_staff": pool[:2],
            "care_level": len(level),
            "double_staffing": rng.random() < options.double_staffing_share * 2,
            "key_code": f"{rng.randint(1000, 9999)}",
        }
        clients.append(client)
        n += 1
        for act in _activities_for(level, rng, tomorrow.isoweekday(), weekly=True):
            if len(visits) >= target:
                break
            visits.append(_visit(rng, f"VIS-{tomorrow:%Y%m%d}-{len(visits) + 1:04d}", client, tomorrow, act))
        for back in range(14, 0, -1):
            day = tomorrow - timedelta(days=back)
            for act in _activities_for(level, rng, day.isoweekday(), weekly=True):
                v = _visit(rng, "", client, day, act)
                chosen = contact if rng.random() < 0.3 else rng.choice(pool)
                start = datetime.fromisoformat(v["earliest_start"]) + timedelta(minutes=rng.randint(0, 30))
                history.append(
                    {
                        "date": day.isoformat(),
                        "client_id": client["id"],
                        "activity": act,
                        "staff_ids": [chosen],
                        "start": start.isoformat(timespec="minutes"),
                        "duration_minutes": v["duration_minutes"],
                    }
                )
    _double_and_lock(rng, visits, clients, staff, options.double_staffing_share)
    return {
        "groups": groups,
        "clients": clients,
        "staff": staff,
        "visits": visits,
        "history": sorted(history, key=lambda h: (h["date"], h["start"], h["client_id"])),
        "date": tomorrow.isoformat(),
    }


def _double_and_lock(
    rng: random.Random,
    visits: list[dict[str, Any]],
    clients: list[dict[str, Any]],
    staff: list[dict[str, Any]],
    share: float,
) -> None:
    doubled = {c["id"] for c in clients if c["double_staffing"]}
    candidates = [v for v in visits if v["client_id"] in doubled and not v["activity"].startswith("Läkemedel")]
    for v in rng.sample(candidates, min(len(candidates), round(share * len(visits)))):
        v["staff_count"] = 2
        v["competences"] = ["undersköterska"]
        v["sync"] = (
            {"type": "simultaneous"}
            if rng.random() < 0.8
            else {"type": "sequential", "min_gap_minutes": 0, "max_gap_minutes": 30}
        )
    by_id = {s["id"]: s for s in staff}
    singles = [v for v in visits if v["staff_count"] == 1]
    for v in rng.sample(singles, min(len(singles), max(0, round(0.03 * len(visits))))):
        earliest = datetime.fromisoformat(v["earliest_start"])
        fits = [
            s
            for s in v["preferred_staff"]
            if set(v["competences"]) <= set(by_id[s]["competences"])
            and datetime.fromisoformat(by_id[s]["shift"]["start"]) <= earliest
            and earliest + timedelta(minutes=v["duration_minutes"] + 30)
            <= datetime.fromisoformat(by_id[s]["shift"]["end"])
        ]
        if fits:
            v["locked"] = {"staff_id": fits[0], "start": v["earliest_start"]}


# --- store and API ------------------------------------------------------------------------------


@dataclass
class HomecareStore:
    """Published plans (every version) and the baseline cache."""

    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest: dict[tuple[str, str], str] = field(default_factory=dict)
    baseline: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: IdempotencyStore = field(default_factory=IdempotencyStore)


def _store(state: SandboxState) -> HomecareStore:
    return state.store(SYSTEM, HomecareStore)


def _group_or_404(state: SandboxState, group: str | None) -> str:
    groups: list[str] = [g["id"] for g in state.data.homecare["groups"]]
    if group is None:
        return groups[0]
    if group not in groups:
        raise not_found(f"home-care group {group}")
    return group


router = APIRouter(prefix="/homecare", tags=["home care"])


class Assignment(BaseModel):
    """One visit in a plan: who and when."""

    model_config = ConfigDict(extra="forbid")
    visit_id: str
    staff_ids: list[str] = Field(min_length=1, max_length=2)
    start: datetime
    starts: list[datetime] | None = Field(None, description="Per staff member, for sequential double staffing.")


class Unassigned(BaseModel):
    """A visit left out, with the reason."""

    model_config = ConfigDict(extra="forbid")
    visit_id: str
    reason: str


class PlanIn(BaseModel):
    """A day's plan for one group."""

    model_config = ConfigDict(extra="forbid")
    date: date
    group: str
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    published_by: str = Field(min_length=1)
    assignments: list[Assignment]
    unassigned: list[Unassigned] = []
    comment: str | None = None


@router.get("/groups")
async def list_groups(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Home-care groups and their offices."""
    return {"items": state.data.homecare["groups"], "date": state.data.homecare["date"]}


@router.get("/clients")
async def list_clients(state: SandboxState = Depends(get_state), group: str | None = None) -> dict[str, Any]:
    """Clients of a group with age, address, coordinates, contact person, preferred staff and absences."""
    g = _group_or_404(state, group)
    return {"group": g, "items": [c for c in state.data.homecare["clients"] if c["group"] == g]}


@router.get("/visits")
async def list_visits(
    state: SandboxState = Depends(get_state), date: date | None = None, group: str | None = None
) -> dict[str, Any]:
    """The visits of a day (only tomorrow is planned; other days are empty)."""
    g = _group_or_404(state, group)
    day = (date or datetime.fromisoformat(state.data.homecare["date"]).date()).isoformat()
    return {
        "group": g,
        "date": day,
        "items": [v for v in state.data.homecare["visits"] if v["group"] == g and v["date"] == day],
    }


@router.get("/staff")
async def list_staff(
    state: SandboxState = Depends(get_state), date: date | None = None, group: str | None = None
) -> dict[str, Any]:
    """The staff on duty on a day (tomorrow), with shift, break rule, competences and travel mode."""
    g = _group_or_404(state, group)
    day = (date or datetime.fromisoformat(state.data.homecare["date"]).date()).isoformat()
    items = [s for s in state.data.homecare["staff"] if s["group"] == g and s["shift"]["start"][:10] == day]
    return {"group": g, "date": day, "items": items}


@router.get("/history")
async def list_history(
    state: SandboxState = Depends(get_state),
    group: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    all_groups: bool = False,
) -> dict[str, Any]:
    """Performed visits (who visited whom, when, of which kind), by default the 14 days before tomorrow.

    ``all_groups=true``: every group's clients (a client's visits by staff of other groups are in it either way).
    """
    g = None if all_groups else _group_or_404(state, group)
    clients = {c["id"] for c in state.data.homecare["clients"] if g is None or c["group"] == g}
    lo = date_from.isoformat() if date_from else ""
    hi = date_to.isoformat() if date_to else "9999"
    items = [h for h in state.data.homecare["history"] if h["client_id"] in clients and lo <= h["date"] <= hi]
    return {"group": g, "items": items}


@router.get("/plans/baseline")
async def get_baseline(state: SandboxState = Depends(get_state), group: str | None = None) -> dict[str, Any]:
    """The plan the home-care system would use without Lena (greedy, earliest-deadline first)."""
    g = _group_or_404(state, group)
    store = _store(state)
    if g not in store.baseline:
        hc = state.data.homecare
        store.baseline[g] = baseline_plan(
            [v for v in hc["visits"] if v["group"] == g], [s for s in hc["staff"] if s["group"] == g], hc["date"], g
        )
    return store.baseline[g]


def _validate(state: SandboxState, body: PlanIn) -> list[str]:
    hc = state.data.homecare
    problems: list[str] = []
    if body.date.isoformat() != hc["date"]:
        problems.append(f"only {hc['date']} can be planned")
    visits = {v["id"]: v for v in hc["visits"] if v["group"] == body.group}
    staff = {s["id"] for s in hc["staff"] if s["group"] == body.group}
    seen: set[str] = set()
    for a in body.assignments:
        v = visits.get(a.visit_id)
        if v is None:
            problems.append(f"{a.visit_id}: no such visit in {body.group} on {body.date}")
            continue
        if a.visit_id in seen:
            problems.append(f"{a.visit_id}: planned twice")
        seen.add(a.visit_id)
        if len(a.staff_ids) != v["staff_count"] or len(set(a.staff_ids)) != len(a.staff_ids):
            problems.append(f"{a.visit_id}: needs {v['staff_count']} different staff")
        problems += [f"{a.visit_id}: unknown staff {s}" for s in a.staff_ids if s not in staff]
        lock = v["locked"]
        if lock and (lock["staff_id"] not in a.staff_ids or _aware(a.start) != datetime.fromisoformat(lock["start"])):
            problems.append(f"{a.visit_id}: locked to {lock['staff_id']} at {lock['start']}")
    for u in body.unassigned:
        if u.visit_id not in visits:
            problems.append(f"{u.visit_id}: no such visit")
        elif u.visit_id in seen:
            problems.append(f"{u.visit_id}: both planned and unassigned")
        seen.add(u.visit_id)
    missing = sorted(set(visits) - seen)
    if missing:
        problems.append(f"{len(missing)} visits neither planned nor reported unassigned, e.g. {missing[0]}")
    return problems


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=TZ)


@router.post("/plans", status_code=201)
async def publish_plan(body: PlanIn, request: Request, state: SandboxState = Depends(get_state)) -> Any:
    """Publish a plan (a new version each time); idempotent by key; 422 lists what is wrong."""
    group = _group_or_404(state, body.group)
    key = idempotency_key(request, body.idempotency_key)
    assert key is not None
    store = _store(state)
    payload = body.model_dump(mode="json", exclude={"idempotency_key"})
    replay = store.idempotency.check("plan", key, payload)
    if replay is not None:
        return replay
    problems = _validate(state, body)
    if problems:
        return error(422, "invalid_plan", "the plan cannot be published", problems=problems)
    version = sum(1 for p in store.plans.values() if p["group"] == group and p["date"] == payload["date"]) + 1
    plan = {
        "plan_id": f"PLAN-{group}-{body.date:%Y%m%d}-v{version}",
        "version": version,
        "published_at": state.now_iso(),
        "idempotency_key": key,
        **payload,
    }
    store.plans[plan["plan_id"]] = plan
    store.latest[(group, payload["date"])] = plan["plan_id"]
    store.idempotency.remember("plan", key, payload, plan)
    state.log.record(
        SYSTEM,
        "plan.published",
        f"{group}/{payload['date']}",
        {"plan_id": plan["plan_id"], "assignments": len(body.assignments), "unassigned": len(body.unassigned)},
    )
    return JSONResponse(plan, status_code=201)


@router.get("/plans")
async def get_published(
    state: SandboxState = Depends(get_state), date: date | None = None, group: str | None = None
) -> Any:
    """The latest published plan for a group and day (404 if none)."""
    g = _group_or_404(state, group)
    day = (date or datetime.fromisoformat(state.data.homecare["date"]).date()).isoformat()
    plan_id = _store(state).latest.get((g, day))
    if plan_id is None:
        return error(404, "no_plan", f"no plan published for {g} on {day}")
    return _store(state).plans[plan_id]


@router.get("/plans/{plan_id}")
async def get_plan(plan_id: str, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """One published plan version."""
    plan = _store(state).plans.get(plan_id)
    if plan is None:
        raise not_found(f"plan {plan_id}")
    return plan


def inspect(state: SandboxState) -> dict[str, Any]:
    """Admin view: plans published per group and day, and their versions."""
    store = _store(state)
    return {
        "plans_published": state.log.count(SYSTEM, "plan.published"),
        "plans": {f"{g}/{d}": pid for (g, d), pid in store.latest.items()},
        "versions": sorted(store.plans),
    }
