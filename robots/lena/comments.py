"""The coordinator's comment on a returned plan, read as changes for the re-plan (pure).

One instruction per line (case does not matter; other lines are kept as notes)::

    lås VIS-20261124-0012 S004 08:15     lock a visit to a person (and a start time)
    lås VIS-20261124-0012 S004           lock to the person, any time in the window
    frånvarande S007                     the person is not on duty (also: sjuk, ledig)
    tillåt sen ankomst 15                allow starts up to 15 minutes late (default 15)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from robots.lena.model import Lock, Problem

__all__ = ["Changes", "apply_changes", "parse_comment"]

_LOCK = re.compile(
    r"^l[åa]s\s+(?P<visit>\S+)\s+(?:till\s+)?(?P<staff>\S+)(?:\s+(?:kl\.?\s*)?(?P<time>\d{1,2}[:.]\d{2}))?\s*$",
    re.IGNORECASE,
)
_ABSENT = re.compile(r"^(?:frånvarande|franvarande|sjuk|ledig)\s+(?P<staff>\S+)\s*$", re.IGNORECASE)
_LATE = re.compile(
    r"^till[åa]t\s+sen(?:a)?\s+ankomst(?:er)?(?:\s+(?P<minutes>\d+))?(?:\s*min(?:uter)?)?\s*$", re.IGNORECASE
)


@dataclass(frozen=True)
class Changes:
    """What a comment asks for."""

    locks: dict[str, Lock] = field(default_factory=dict)
    absent: frozenset[str] = frozenset()
    max_lateness: int | None = None
    notes: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """True when the comment asks for nothing the solver can act on."""
        return not self.locks and not self.absent and self.max_lateness is None


def parse_comment(comment: str | None) -> Changes:
    """Read the instructions in ``comment``; anything else becomes a note."""
    locks: dict[str, Lock] = {}
    absent: set[str] = set()
    late: int | None = None
    notes: list[str] = []
    for raw in (comment or "").splitlines():
        line = raw.strip().rstrip(".")
        if not line:
            continue
        if m := _LOCK.match(line):
            start = None
            if m.group("time"):
                hh, mm = re.split(r"[:.]", m.group("time"))
                start = int(hh) * 60 + int(mm)
            locks[m.group("visit")] = Lock(m.group("staff"), start)
        elif m := _ABSENT.match(line):
            absent.add(m.group("staff"))
        elif m := _LATE.match(line):
            late = int(m.group("minutes") or 15)
        else:
            notes.append(raw.strip())
    return Changes(locks, frozenset(absent), late, tuple(notes))


def apply_changes(problem: Problem, changes: Changes) -> tuple[Problem, list[str]]:
    """``problem`` with the changes made, and what could not be applied (in Swedish)."""
    problems: list[str] = []
    known_visits = {v.id for v in problem.visits}
    known_staff = {s.id for s in problem.staff}
    for vid, wanted in changes.locks.items():
        if vid not in known_visits:
            problems.append(f"Låsningen av {vid} gick inte att göra: besöket finns inte i morgondagens planering")
        elif wanted.staff_id not in known_staff:
            problems.append(f"Låsningen av {vid} gick inte att göra: {wanted.staff_id} är inte i tjänst")
    for sid in sorted(changes.absent - known_staff):
        problems.append(f"{sid} finns inte bland dem som är i tjänst")
    visits = []
    for v in problem.visits:
        lock: Lock | None = changes.locks.get(v.id)
        if lock is not None and lock.staff_id in known_staff:
            slack = changes.max_lateness if changes.max_lateness is not None else problem.max_lateness
            if lock.start is not None and not v.earliest <= lock.start <= v.latest + slack:
                problems.append(
                    f"Låsningen av {v.id} kl {lock.start // 60:02d}:{lock.start % 60:02d} ligger utanför "
                    "besökets tidsfönster; låst till personen utan tid"
                )
                lock = Lock(lock.staff_id)
            v = replace(v, locked=lock)
        visits.append(v)
    staff = tuple(s for s in problem.staff if s.id not in changes.absent)
    late = problem.max_lateness if changes.max_lateness is None else changes.max_lateness
    return replace(problem, visits=tuple(visits), staff=staff, max_lateness=late), problems
