"""Small hand-made planning days for tests, docs and trying things out (pure).

Places are points on a plane measured in minutes of travel (Euclidean, rounded up), the
office at (0, 0); times are minutes since midnight. ``day()`` is a complete little day with
every kind of visit: double staffing both ways, a locked visit, breaks, history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from robots.lena.model import (
    BreakRule,
    EuclideanTravelTimes,
    HistoryEntry,
    Location,
    Lock,
    Problem,
    Staff,
    Sync,
    Visit,
)

__all__ = ["OFFICE", "day", "member", "problem", "visit"]

OFFICE = Location(0.0, 0.0)
DAY = date(2026, 11, 24)


def visit(
    vid: str,
    x: float,
    y: float,
    earliest: int,
    latest: int,
    duration: int = 20,
    *,
    client: str | None = None,
    competences: Iterable[str] = (),
    staff_count: int = 1,
    sync: Sync | None = None,
    locked: Lock | None = None,
    preferred: Iterable[str] = (),
    contact: str | None = None,
    **extra: Any,
) -> Visit:
    """A visit at (x, y) with a start window; a double-staffed one defaults to simultaneous."""
    if staff_count == 2 and sync is None:
        sync = Sync("simultaneous")
    return Visit(
        id=vid,
        client_id=client or f"K-{vid}",
        location=Location(x, y),
        earliest=earliest,
        latest=latest,
        duration=duration,
        competences=frozenset(competences),
        staff_count=staff_count,
        sync=sync,
        locked=locked,
        preferred_staff=tuple(preferred),
        contact_person=contact,
        **extra,
    )


def member(
    sid: str,
    start: int = 7 * 60,
    end: int = 16 * 60,
    *,
    competences: Iterable[str] = (),
    brk: tuple[int, int, int] | None = None,
    mode: str = "car",
    **extra: Any,
) -> Staff:
    """A staff member working from the office; ``brk`` = (minutes, earliest, latest)."""
    rule = BreakRule(brk[0], brk[1], brk[2]) if brk else None
    return Staff(
        id=sid,
        shift_start=start,
        shift_end=end,
        start_location=OFFICE,
        end_location=OFFICE,
        competences=frozenset(competences),
        travel_mode=mode,
        break_rule=rule,
        **extra,
    )


def problem(
    visits: Iterable[Visit], staff: Iterable[Staff], *, history: Iterable[HistoryEntry] = (), max_lateness: int = 0
) -> Problem:
    """A day on the plane (travel = distance in minutes, rounded up)."""
    return Problem(tuple(visits), tuple(staff), EuclideanTravelTimes(1.0), tuple(history), max_lateness, DAY, "sample")


def day() -> Problem:
    """Two staff, one with delegation; eight visits of every kind; a break each; some history."""
    usk, med = "undersköterska", "delegering_läkemedel"
    return problem(
        [
            visit("V1", 10, 0, 7 * 60 + 30, 8 * 60 + 30, 30, client="K1", competences=[usk], contact="A"),
            visit("V2", 0, 10, 8 * 60, 9 * 60, 15, client="K2", competences=[med]),
            visit("V3", 10, 10, 9 * 60, 10 * 60, 30, client="K3", staff_count=2),
            visit("V4", -10, 0, 12 * 60, 13 * 60, 20, client="K1", contact="A"),
            visit("V5", 0, -10, 13 * 60, 14 * 60, 30, client="K4", staff_count=2, sync=Sync("sequential", 10, 30)),
            visit("V6", 5, 5, 10 * 60 + 30, 12 * 60, 20, client="K2", locked=Lock("B", 11 * 60)),
            visit("V7", -5, 5, 14 * 60 + 30, 15 * 60, 15, client="K3"),
            visit("V8", 5, -5, 7 * 60, 15 * 60, 30, client="K4", preferred=["B"]),
        ],
        [
            member("A", competences=[usk, med], brk=(30, 10 * 60, 13 * 60)),
            member("B", competences=[usk], brk=(30, 10 * 60, 13 * 60)),
        ],
        history=[HistoryEntry("2026-11-20", "K1", ("A",)), HistoryEntry("2026-11-21", "K3", ("B",))],
    )
