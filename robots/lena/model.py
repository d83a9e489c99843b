"""The routing model of a home-care day (pure: no I/O).

A :class:`Problem` is one planning day for one group: the visits to make, the staff on duty,
where travel times come from, and 14 days of history for continuity. Times are integers in
the problem's time unit — minutes since the local midnight of the day for Lena; the
benchmark formats use finer units (see :mod:`robots.lena.formats`). A visit's window is
the window for its *start*.

Conventions the checker and the solver share:

- A staff member's working day is the whole shift: they leave their start location at
  the shift start at the earliest and must be back at their end location by the shift end.
- A break rule asks for one break of ``minutes`` lying entirely inside the window
  ``earliest``–``latest``, with no more than ``max_work_without_break`` of the shift before
  it or after it; a shift no longer than ``max_work_without_break`` needs no break. A
  break is taken between two visits (or before the first, after the last) and never
  overlaps a visit; travel around it still takes its full time.
- A double-staffed visit needs two different people. ``simultaneous``: both start at the
  same time. ``sequential``: the second role starts ``min_gap``–``max_gap`` after the first
  (start to start). Both starts must lie in the visit's window.
- Lateness (a start after ``latest``) is allowed only when ``Problem.max_lateness`` > 0, and
  then at most that much.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Protocol, runtime_checkable

from core.api import BusinessError

__all__ = [
    "BreakRule",
    "EuclideanTravelTimes",
    "HaversineTravelTimes",
    "HistoryEntry",
    "Location",
    "Lock",
    "MatrixTravelTimes",
    "ModelError",
    "Plan",
    "Problem",
    "Route",
    "Staff",
    "Stop",
    "Sync",
    "TravelTimeSource",
    "Unassigned",
    "Visit",
]

#: Default speeds of the travel modes (km/h), as the home-care system's own planner uses.
DEFAULT_SPEEDS_KMH: dict[str, float] = {"car": 40.0, "bike": 15.0, "walk": 5.0}
#: Minutes added to each car trip to park and walk to the door.
DEFAULT_OVERHEAD_MINUTES: dict[str, float] = {"car": 2.0}


class ModelError(BusinessError):
    """The planning data is inconsistent; ``problems`` lists every finding in plain words."""

    code = "lena_model"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = "; ".join(self.problems[:10])
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        super().__init__(f"invalid planning data: {shown}{more}")


# -- places and travel ---------------------------------------------------------------------
@dataclass(frozen=True)
class Location:
    """A place: plane or geographic coordinates (``x`` = longitude, ``y`` = latitude), or a matrix key."""

    x: float = 0.0
    y: float = 0.0
    #: The row/column name in a travel-time matrix (used by :class:`MatrixTravelTimes`).
    key: str | None = None


@runtime_checkable
class TravelTimeSource(Protocol):
    """Where travel times come from: coordinates, a matrix, or later a real routing service."""

    def modes(self) -> frozenset[str] | None:
        """The travel modes this source knows (None = any)."""

    def matrix(self, locations: Sequence[Location], mode: str) -> list[list[int]]:
        """Travel times between all pairs of ``locations`` by ``mode``, in the problem's time unit, rounded up."""


@dataclass(frozen=True)
class HaversineTravelTimes:
    """Great-circle distance × a detour factor at a speed per mode, plus a fixed overhead per trip (minutes)."""

    speeds_kmh: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SPEEDS_KMH))
    detour: float = 1.3
    overhead_minutes: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_OVERHEAD_MINUTES))

    def modes(self) -> frozenset[str] | None:
        """The modes with a speed."""
        return frozenset(self.speeds_kmh)

    def minutes(self, a: Location, b: Location, mode: str) -> float:
        """Unrounded minutes from ``a`` to ``b``; no overhead within the same address (< 10 m)."""
        lat1, lon1, lat2, lon2 = map(math.radians, (a.y, a.x, b.y, b.x))
        h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        km = 2 * 6371.0 * math.asin(math.sqrt(min(1.0, h))) * self.detour
        if km < 0.01:
            return 0.0
        return km / self.speeds_kmh[mode] * 60 + self.overhead_minutes.get(mode, 0.0)

    def matrix(self, locations: Sequence[Location], mode: str) -> list[list[int]]:
        """Whole minutes, rounded up."""
        return [[math.ceil(self.minutes(a, b, mode) - 1e-9) for b in locations] for a in locations]


@dataclass(frozen=True)
class EuclideanTravelTimes:
    """Plane distance between coordinates, times ``scale``, rounded up (the Solomon convention)."""

    scale: float = 1.0

    def modes(self) -> frozenset[str] | None:
        """Every mode travels alike."""
        return None

    def matrix(self, locations: Sequence[Location], mode: str) -> list[list[int]]:
        """Scaled distances, rounded up so that a plan feasible here is feasible in exact arithmetic."""
        return [[math.ceil(math.hypot(a.x - b.x, a.y - b.y) * self.scale - 1e-9) for b in locations] for a in locations]


@dataclass(frozen=True)
class MatrixTravelTimes:
    """A given matrix (one for all modes, or one per mode) indexed by :attr:`Location.key`, times ``scale``."""

    index: Mapping[str, int]
    matrices: Mapping[str, Sequence[Sequence[float]]]
    scale: float = 1.0

    @classmethod
    def single(cls, keys: Sequence[str], matrix: Sequence[Sequence[float]], scale: float = 1.0) -> MatrixTravelTimes:
        """One matrix used for every mode; ``keys[i]`` names row and column ``i``."""
        return cls({k: i for i, k in enumerate(keys)}, {"*": matrix}, scale)

    def modes(self) -> frozenset[str] | None:
        """The modes with their own matrix (None when one matrix serves all)."""
        return None if "*" in self.matrices else frozenset(self.matrices)

    def matrix(self, locations: Sequence[Location], mode: str) -> list[list[int]]:
        """Rows and columns picked by key, scaled and rounded up."""
        m = self.matrices.get(mode, self.matrices.get("*"))
        if m is None:
            raise KeyError(f"no travel-time matrix for mode {mode!r}")
        idx = []
        for loc in locations:
            if loc.key is None or loc.key not in self.index:
                raise KeyError(f"location {loc.key!r} is not in the travel-time matrix")
            idx.append(self.index[loc.key])
        return [[math.ceil(float(m[i][j]) * self.scale - 1e-9) for j in idx] for i in idx]


# -- visits and staff ----------------------------------------------------------------------
@dataclass(frozen=True)
class Sync:
    """How the two staff of a double-staffed visit are synchronised."""

    kind: Literal["simultaneous", "sequential"] = "simultaneous"
    #: Sequential only: the second role starts at least this long after the first (start to start).
    min_gap: int = 0
    #: Sequential only: … and at most this long after.
    max_gap: int = 0


@dataclass(frozen=True)
class Lock:
    """A coordinator's lock: this visit goes to ``staff_id`` (and starts at ``start`` when given)."""

    staff_id: str
    start: int | None = None


@dataclass(frozen=True)
class Visit:
    """One visit to a client: where, the start window, how long, what it needs."""

    id: str
    client_id: str
    location: Location
    earliest: int
    latest: int
    duration: int
    competences: frozenset[str] = frozenset()
    staff_count: int = 1
    sync: Sync | None = None
    #: Competences of the second person when they differ from the first's (HHCRSP services).
    second_competences: frozenset[str] | None = None
    locked: Lock | None = None
    preferred_staff: tuple[str, ...] = ()
    contact_person: str | None = None
    #: Generic load (used by the Solomon format's capacities); 0 for home care.
    load: int = 0
    activity: str = ""

    def roles(self) -> tuple[frozenset[str], ...]:
        """The competences each of the ``staff_count`` people needs, first role first."""
        if self.staff_count == 1:
            return (self.competences,)
        second = self.second_competences if self.second_competences is not None else self.competences
        return (self.competences, second)


@dataclass(frozen=True)
class BreakRule:
    """One break of ``minutes`` inside ``earliest``–``latest``; no more than ``max_work_without_break`` without one."""

    minutes: int
    earliest: int
    latest: int
    max_work_without_break: int = 300


@dataclass(frozen=True)
class Staff:
    """A staff member on duty: shift, start and end places, competences, travel mode, break rule."""

    id: str
    shift_start: int
    shift_end: int
    start_location: Location
    end_location: Location
    competences: frozenset[str] = frozenset()
    travel_mode: str = "car"
    break_rule: BreakRule | None = None
    #: Generic capacity for ``Visit.load`` (Solomon); None = unlimited.
    capacity: int | None = None
    name: str = ""

    def needs_break(self) -> bool:
        """True when the shift is long enough for the break rule to apply."""
        rule = self.break_rule
        return rule is not None and rule.minutes > 0 and self.shift_end - self.shift_start > rule.max_work_without_break

    def break_window(self) -> tuple[int, int] | None:
        """(earliest, latest) *start* of the required break, or None when no break is needed."""
        rule = self.break_rule
        if rule is None or not self.needs_break():
            return None
        lo = max(rule.earliest, self.shift_start, self.shift_end - rule.max_work_without_break - rule.minutes)
        hi = min(
            rule.latest - rule.minutes, self.shift_end - rule.minutes, self.shift_start + rule.max_work_without_break
        )
        return lo, hi


@dataclass(frozen=True)
class HistoryEntry:
    """A visit performed in the past: who saw which client on which day."""

    day: date | str
    client_id: str
    staff_ids: tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    """One planning day: visits, staff on duty, travel times, history and the lateness policy."""

    visits: tuple[Visit, ...]
    staff: tuple[Staff, ...]
    travel: TravelTimeSource
    history: tuple[HistoryEntry, ...] = ()
    #: 0 = time windows are hard; otherwise a start may be this much after ``latest`` (at a cost).
    max_lateness: int = 0
    day: date | None = None
    name: str = ""

    def visit(self, visit_id: str) -> Visit:
        """The visit with this id (KeyError if none)."""
        return self._visits()[visit_id]

    def member(self, staff_id: str) -> Staff:
        """The staff member with this id (KeyError if none)."""
        return self._staff()[staff_id]

    def _visits(self) -> dict[str, Visit]:
        cached: dict[str, Visit] | None = self.__dict__.get("_visit_index")
        if cached is None:
            cached = {v.id: v for v in self.visits}
            object.__setattr__(self, "_visit_index", cached)
        return cached

    def _staff(self) -> dict[str, Staff]:
        cached: dict[str, Staff] | None = self.__dict__.get("_staff_index")
        if cached is None:
            cached = {s.id: s for s in self.staff}
            object.__setattr__(self, "_staff_index", cached)
        return cached

    def validate(self) -> None:
        """Raise :class:`ModelError` listing everything inconsistent in the data."""
        problems = list(validation_problems(self))
        if problems:
            raise ModelError(problems)


def validation_problems(problem: Problem) -> Iterable[str]:
    """Every inconsistency in ``problem``, as plain sentences (empty when valid)."""
    if not isinstance(problem.travel, TravelTimeSource):
        yield "travel: not a travel-time source (needs modes() and matrix())"
    if problem.max_lateness < 0:
        yield f"max_lateness {problem.max_lateness} is negative"
    yield from _duplicates("visit", [v.id for v in problem.visits])
    yield from _duplicates("staff", [s.id for s in problem.staff])
    for v in problem.visits:
        yield from _visit_problems(v, problem.max_lateness)
    modes = problem.travel.modes() if isinstance(problem.travel, TravelTimeSource) else None
    for s in problem.staff:
        yield from _staff_problems(s, modes)


def _duplicates(kind: str, ids: list[str]) -> Iterable[str]:
    seen: set[str] = set()
    for i in ids:
        if not i:
            yield f"{kind}: an empty id"
        elif i in seen:
            yield f"{kind} {i}: the id occurs more than once"
        seen.add(i)


def _visit_problems(v: Visit, max_lateness: int) -> Iterable[str]:
    where = f"visit {v.id}"
    if not v.client_id:
        yield f"{where}: no client"
    if v.earliest < 0:
        yield f"{where}: earliest start {v.earliest} is negative"
    if v.earliest > v.latest:
        yield f"{where}: the window ends ({v.latest}) before it begins ({v.earliest})"
    if v.duration <= 0:
        yield f"{where}: duration {v.duration} must be positive"
    if v.load < 0:
        yield f"{where}: load {v.load} is negative"
    if v.staff_count not in (1, 2):
        yield f"{where}: staff count {v.staff_count} must be 1 or 2"
    elif v.staff_count == 1:
        if v.sync is not None:
            yield f"{where}: synchronisation given for a visit with one staff member"
        if v.second_competences is not None:
            yield f"{where}: second-person competences given for a visit with one staff member"
    elif v.sync is None:
        yield f"{where}: two staff but no synchronisation (simultaneous or sequential)"
    if v.sync is not None:
        if v.sync.kind not in ("simultaneous", "sequential"):
            yield f"{where}: unknown synchronisation {v.sync.kind!r}"
        elif v.sync.kind == "sequential":
            if v.sync.min_gap < 0 or v.sync.min_gap > v.sync.max_gap:
                yield f"{where}: sequential gap {v.sync.min_gap}–{v.sync.max_gap} is not a valid range"
            elif v.latest + max_lateness - v.earliest < v.sync.min_gap:
                yield f"{where}: the window is shorter than the minimum gap between the two staff"
        elif v.sync.min_gap or v.sync.max_gap:
            yield f"{where}: gaps given for simultaneous double staffing"
    if v.locked is not None:
        if not v.locked.staff_id:
            yield f"{where}: locked to an empty staff id"
        start = v.locked.start
        if start is not None and not v.earliest <= start <= v.latest + max_lateness:
            yield f"{where}: locked start {start} is outside the window {v.earliest}–{v.latest + max_lateness}"


def _staff_problems(s: Staff, modes: frozenset[str] | None) -> Iterable[str]:
    where = f"staff {s.id}"
    if s.shift_start < 0:
        yield f"{where}: shift start {s.shift_start} is negative"
    if s.shift_start >= s.shift_end:
        yield f"{where}: the shift ends ({s.shift_end}) before it begins ({s.shift_start})"
    if s.capacity is not None and s.capacity < 0:
        yield f"{where}: capacity {s.capacity} is negative"
    if modes is not None and s.travel_mode not in modes:
        yield f"{where}: unknown travel mode {s.travel_mode!r} (known: {', '.join(sorted(modes))})"
    rule = s.break_rule
    if rule is None:
        return
    if rule.minutes < 0:
        yield f"{where}: break of {rule.minutes} minutes is negative"
    if rule.max_work_without_break <= 0:
        yield f"{where}: max work without a break must be positive"
    if rule.earliest > rule.latest:
        yield f"{where}: the break window ends before it begins"
    if not s.needs_break() or rule.max_work_without_break <= 0:
        return
    if rule.latest - rule.earliest < rule.minutes:
        yield f"{where}: the break window is shorter than the break"
        return
    window = s.break_window()
    assert window is not None
    if window[0] > window[1]:
        yield (
            f"{where}: no break of {rule.minutes} in {rule.earliest}–{rule.latest} leaves at most "
            f"{rule.max_work_without_break} of the shift {s.shift_start}–{s.shift_end} on each side"
        )


# -- plans ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stop:
    """One visit on a staff member's route: when it starts, and which role (0 or 1) they fill."""

    visit_id: str
    start: int
    role: int = 0


@dataclass(frozen=True)
class Route:
    """A staff member's day: visits in order and the break's start (None when none is taken)."""

    staff_id: str
    stops: tuple[Stop, ...] = ()
    break_start: int | None = None


@dataclass(frozen=True)
class Unassigned:
    """A visit left out of the plan, with a machine code and a reason in Swedish."""

    visit_id: str
    code: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """A day's plan: one route per staff member on duty and the visits left out."""

    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...] = ()

    def route(self, staff_id: str) -> Route | None:
        """The route of ``staff_id`` (None when the plan has none)."""
        return next((r for r in self.routes if r.staff_id == staff_id), None)

    def assignments(self) -> dict[str, list[tuple[str, int, int]]]:
        """visit id → [(staff id, start, role)], roles in order."""
        out: dict[str, list[tuple[str, int, int]]] = {}
        for r in self.routes:
            for st in r.stops:
                out.setdefault(st.visit_id, []).append((r.staff_id, st.start, st.role))
        for rows in out.values():
            rows.sort(key=lambda t: (t[2], t[1], t[0]))
        return out
