"""Instance formats for ``kollega lena solve`` and the benchmarks (pure parsing; the caller reads the file).

- ``solomon``: the Solomon VRPTW text format. Hard windows, capacities; objective = total
  Euclidean distance. Times are scaled by 1000 and travel rounded up, so a plan that is
  feasible here is feasible in exact arithmetic.
- ``hhcrsp``: the JSON format of the Mankowska instances (iolab-uniud/hhcrsp). Soft windows
  (a late start adds tardiness), one or two services per patient with synchronisation;
  objective = (distance + total tardiness + max tardiness) / 3.
- ``kollega``: Lena's own JSON format, the model as it is (see :func:`read_kollega`).

Every reader raises :class:`FormatError` naming what is wrong.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from robots.lena.metrics import Weights
from robots.lena.model import (
    BreakRule,
    EuclideanTravelTimes,
    HaversineTravelTimes,
    HistoryEntry,
    Location,
    Lock,
    MatrixTravelTimes,
    ModelError,
    Plan,
    Problem,
    Staff,
    Sync,
    Visit,
)

__all__ = ["FORMATS", "FormatError", "Instance", "parse_instance", "read_hhcrsp", "read_kollega", "read_solomon"]

FORMATS = ("solomon", "hhcrsp", "kollega")
Format = Literal["solomon", "hhcrsp", "kollega"]
#: Benchmark times are scaled to integers by this factor.
SCALE = 1000


class FormatError(ModelError):
    """The instance file is malformed."""

    code = "lena_format"


@dataclass(frozen=True)
class Instance:
    """A problem read from a file, with the format's own objective."""

    problem: Problem
    format: str
    #: Time units per unit of the file's time (1000 for the benchmark formats, 1 for kollega).
    scale: int
    weights: Weights
    #: hhcrsp: the distance matrix (with the office first) to report exact distances.
    matrix: list[list[float]] | None = None
    keys: tuple[str, ...] = ()

    def distance(self, plan: Plan) -> float:
        """Total distance of ``plan`` in the file's units (office to office)."""
        if self.format == "kollega":
            return float(sum(_legs(self, plan)))
        return round(sum(_legs(self, plan)), 6)

    def summary(self, plan: Plan, feasible: bool, objective: float | None = None) -> dict[str, Any]:
        """The JSON answer of ``kollega lena solve``."""
        late = []
        for r in plan.routes:
            for st in r.stops:
                v = self.problem.visit(st.visit_id)
                late.append(max(0, st.start - v.latest) / self.scale)
        total, worst = sum(late), max(late, default=0.0)
        distance = self.distance(plan)
        if objective is None:
            objective = distance if self.format == "solomon" else (distance + total + worst) / 3
        return {
            "feasible": feasible,
            "vehicles": sum(1 for r in plan.routes if r.stops),
            "distance": round(distance, 3),
            "total_tardiness": round(total, 3),
            "max_tardiness": round(worst, 3),
            "objective": round(objective, 3),
            "routes": [[st.visit_id for st in sorted(r.stops, key=lambda s: s.start)] for r in plan.routes if r.stops],
            "unassigned": [{"visit_id": u.visit_id, "code": u.code, "reason": u.reason} for u in plan.unassigned],
        }


def _legs(inst: Instance, plan: Plan) -> list[float]:
    p = inst.problem
    out: list[float] = []
    index = {k: i for i, k in enumerate(inst.keys)}
    for r in plan.routes:
        if not r.stops:
            continue
        member = p.member(r.staff_id)
        places = (
            [member.start_location]
            + [p.visit(st.visit_id).location for st in sorted(r.stops, key=lambda s: s.start)]
            + [member.end_location]
        )
        for a, b in itertools.pairwise(places):
            if inst.matrix is not None:
                out.append(inst.matrix[index[a.key or ""]][index[b.key or ""]])
            elif inst.format == "solomon":
                out.append(math.hypot(a.x - b.x, a.y - b.y))
            else:
                out.append(float(p.travel.matrix([a, b], member.travel_mode)[0][1]))
    return out


def parse_instance(text: str, fmt: str, name: str = "") -> Instance:
    """Parse ``text`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "solomon":
        return read_solomon(text, name)
    if fmt == "hhcrsp":
        return read_hhcrsp(text, name)
    if fmt == "kollega":
        return read_kollega(text, name)
    raise FormatError([f"unknown format {fmt!r} (known: {', '.join(FORMATS)})"])


# -- Solomon -------------------------------------------------------------------------------
def read_solomon(text: str, name: str = "") -> Instance:
    """A Solomon VRPTW instance: customer 0 is the depot; vehicles = the file's VEHICLE NUMBER."""
    lines = [ln.split() for ln in text.splitlines()]
    try:
        at = next(i for i, ln in enumerate(lines) if ln and ln[0].upper() == "VEHICLE")
        count, capacity = (int(x) for x in next(ln for ln in lines[at + 1 :] if ln and ln[0].isdigit())[:2])
        at = next(i for i, ln in enumerate(lines) if ln and ln[0].upper() == "CUSTOMER")
    except (StopIteration, ValueError) as exc:
        raise FormatError(["solomon: no VEHICLE section with NUMBER and CAPACITY, or no CUSTOMER section"]) from exc
    rows: list[list[float]] = []
    for n, ln in enumerate(lines[at + 1 :], start=at + 2):
        if not ln or not ln[0].lstrip("-").isdigit():
            continue
        if len(ln) < 7:
            raise FormatError([f"solomon: line {n} has {len(ln)} fields, expected 7"])
        try:
            rows.append([float(x) for x in ln[:7]])
        except ValueError as exc:
            raise FormatError([f"solomon: line {n} holds a value that is not a number"]) from exc
    if len(rows) < 2:
        raise FormatError(["solomon: no customers"])
    depot, customers = rows[0], rows[1:]
    home = Location(depot[1], depot[2], "0")
    visits = tuple(
        Visit(
            id=str(int(c[0])),
            client_id=str(int(c[0])),
            location=Location(c[1], c[2], str(int(c[0]))),
            earliest=round(c[4] * SCALE),
            latest=round(c[5] * SCALE),
            duration=max(1, round(c[6] * SCALE)),
            load=int(c[3]),
        )
        for c in customers
    )
    staff = tuple(
        Staff(
            id=f"V{k + 1}",
            shift_start=round(depot[4] * SCALE),
            shift_end=round(depot[5] * SCALE),
            start_location=home,
            end_location=home,
            travel_mode="vehicle",
            capacity=capacity,
        )
        for k in range(count)
    )
    problem = Problem(visits, staff, EuclideanTravelTimes(SCALE), name=name)
    _validated(problem)
    return Instance(problem, "solomon", SCALE, Weights(travel=1.0, unassigned=1e7, locked_unassigned=1e8))


# -- HHCRSP (Mankowska) --------------------------------------------------------------------
def read_hhcrsp(text: str, name: str = "") -> Instance:
    """A Mankowska HHCRSP instance: office first in the distance matrix, then the patients in order."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FormatError([f"hhcrsp: not JSON ({exc})"]) from exc
    problems: list[str] = []
    for key in ("patients", "caregivers", "central_offices", "distances"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list) or not data.get(key):
            problems.append(f"hhcrsp: '{key}' must be a non-empty list")
    if problems:
        raise FormatError(problems)
    office = data["central_offices"][0]
    keys = (str(office.get("id", "d")), *tuple(str(p.get("id", "")) for p in data["patients"]))
    matrix = data["distances"]
    if len(matrix) != len(keys) or any(not isinstance(r, list) or len(r) != len(keys) for r in matrix):
        raise FormatError([f"hhcrsp: 'distances' must be {len(keys)}×{len(keys)} (office + patients)"])
    visits: list[Visit] = []
    horizon = 0
    for n, p in enumerate(data["patients"]):
        try:
            window = [round(float(x) * SCALE) for x in p["time_window"]]
            needs = p["required_caregivers"]
            services = [frozenset([str(r["service"])]) for r in needs]
            duration = round(float(needs[0]["duration"]) * SCALE)
            sync = None
            if len(needs) == 2:
                s = p.get("synchronization") or {}
                if s.get("type") == "sequential":
                    lo, hi = s["distance"]
                    sync = Sync("sequential", round(float(lo) * SCALE), round(float(hi) * SCALE))
                else:
                    sync = Sync("simultaneous")
            visits.append(
                Visit(
                    id=str(p["id"]),
                    client_id=str(p["id"]),
                    location=Location(key=str(p["id"])),
                    earliest=window[0],
                    latest=window[1],
                    duration=duration,
                    competences=services[0],
                    staff_count=len(needs),
                    sync=sync,
                    second_competences=services[1] if len(needs) == 2 else None,
                )
            )
            horizon = max(horizon, window[1] + duration)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FormatError([f"hhcrsp: patient {n + 1} is malformed ({type(exc).__name__}: {exc})"]) from exc
    depot = Location(key=keys[0])
    far = max(max(float(x) for x in r) for r in matrix)
    end = horizon + round(far * SCALE) * (len(keys) + 1)  # no shifts in these instances: never binding
    staff = tuple(
        Staff(
            id=str(c["id"]),
            shift_start=0,
            shift_end=end,
            start_location=depot,
            end_location=depot,
            competences=frozenset(str(a) for a in c.get("abilities", [])),
            travel_mode="vehicle",
        )
        for c in data["caregivers"]
    )
    problem = Problem(tuple(visits), staff, MatrixTravelTimes.single(keys, matrix, SCALE), max_lateness=end, name=name)
    _validated(problem)
    return Instance(
        problem,
        "hhcrsp",
        SCALE,
        Weights(travel=1.0, lateness=1.0, lateness_max=1.0, unassigned=1e7, locked_unassigned=1e8),
        matrix=[[float(x) for x in r] for r in matrix],
        keys=keys,
    )


# -- Kollega -------------------------------------------------------------------------------
def _time(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise FormatError([f"{where}: not a time"])
    if isinstance(value, int):
        return value
    if isinstance(value, str) and len(value) == 5 and value[2] == ":" and value.replace(":", "").isdigit():
        return int(value[:2]) * 60 + int(value[3:])
    raise FormatError([f"{where}: {value!r} is not a time (HH:MM or minutes)"])


def _loc(value: Any, where: str) -> Location:
    if isinstance(value, dict):
        if "lat" in value and "lon" in value:
            return Location(float(value["lon"]), float(value["lat"]), value.get("key"))
        if "x" in value or "key" in value:
            return Location(float(value.get("x", 0)), float(value.get("y", 0)), value.get("key"))
    raise FormatError([f"{where}: a location needs lat/lon, x/y or key"])


def read_kollega(text: str, name: str = "") -> Instance:
    """Lena's own format: ``{"day", "travel", "max_lateness", "visits", "staff", "history"}``, times HH:MM or minutes."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FormatError([f"kollega: not JSON ({exc})"]) from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("visits"), list)
        or not isinstance(data.get("staff"), list)
    ):
        raise FormatError(["kollega: needs an object with the lists 'visits' and 'staff'"])
    try:
        visits = tuple(_kollega_visit(v, n) for n, v in enumerate(data["visits"]))
        staff = tuple(_kollega_staff(s, n) for n, s in enumerate(data["staff"]))
        history = tuple(
            HistoryEntry(str(h["date"]), str(h["client_id"]), tuple(h["staff_ids"])) for h in data.get("history", [])
        )
        travel = _kollega_travel(data.get("travel") or {"kind": "haversine"})
        day = date.fromisoformat(data["day"]) if data.get("day") else date(2000, 1, 1)
        problem = Problem(visits, staff, travel, history, int(data.get("max_lateness", 0)), day, name)
    except FormatError:
        raise
    except ModelError as exc:  # the model's own findings, already in plain words
        raise FormatError([f"kollega: {p}" for p in exc.problems]) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError([f"kollega: {type(exc).__name__}: {exc}"]) from exc
    _validated(problem)
    return Instance(problem, "kollega", 1, Weights())


def _kollega_visit(v: dict[str, Any], n: int) -> Visit:
    where = f"visits[{n}]"
    sync = v.get("sync")
    lock = v.get("locked")
    return Visit(
        id=str(v["id"]),
        client_id=str(v.get("client_id", v["id"])),
        location=_loc(v.get("location"), where),
        earliest=_time(v["earliest"], f"{where}.earliest"),
        latest=_time(v["latest"], f"{where}.latest"),
        duration=int(v["duration"]),
        competences=frozenset(v.get("competences", [])),
        staff_count=int(v.get("staff_count", 1)),
        sync=Sync(sync.get("type", "simultaneous"), int(sync.get("min_gap", 0)), int(sync.get("max_gap", 0)))
        if sync
        else None,
        locked=Lock(
            str(lock["staff_id"]),
            _time(lock["start"], f"{where}.locked.start") if lock.get("start") is not None else None,
        )
        if lock
        else None,
        preferred_staff=tuple(v.get("preferred_staff", [])),
        contact_person=v.get("contact_person"),
        activity=str(v.get("activity", "")),
    )


def _kollega_staff(s: dict[str, Any], n: int) -> Staff:
    where = f"staff[{n}]"
    b = s.get("break")
    home = _loc(s.get("start_location"), f"{where}.start_location")
    return Staff(
        id=str(s["id"]),
        shift_start=_time(s["shift_start"], f"{where}.shift_start"),
        shift_end=_time(s["shift_end"], f"{where}.shift_end"),
        start_location=home,
        end_location=_loc(s["end_location"], f"{where}.end_location") if s.get("end_location") else home,
        competences=frozenset(s.get("competences", [])),
        travel_mode=str(s.get("travel_mode", "car")),
        break_rule=BreakRule(
            int(b["minutes"]),
            _time(b["earliest"], f"{where}.break.earliest"),
            _time(b["latest"], f"{where}.break.latest"),
            int(b.get("max_work_without_break", 300)),
        )
        if b
        else None,
        name=str(s.get("name", "")),
    )


def _kollega_travel(t: dict[str, Any]) -> Any:
    kind = t.get("kind", "haversine")
    if kind == "haversine":
        return HaversineTravelTimes(**{k: t[k] for k in ("speeds_kmh", "detour", "overhead_minutes") if k in t})
    if kind == "euclidean":
        return EuclideanTravelTimes(float(t.get("scale", 1.0)))
    if kind == "matrix":
        return MatrixTravelTimes.single([str(k) for k in t["keys"]], t["matrix"], float(t.get("scale", 1.0)))
    raise FormatError([f"kollega: unknown travel kind {kind!r} (haversine, euclidean, matrix)"])


def _validated(problem: Problem) -> None:
    try:
        problem.validate()
    except ModelError as exc:
        raise FormatError(exc.problems) from exc
