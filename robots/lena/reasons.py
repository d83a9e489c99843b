"""Who could do each visit at all, and why a visit is left out (pure).

Before solving, each role of each visit gets its candidates: staff on duty with the
competences whose shift leaves room for the visit (travel from and back to their office
included), or, for a locked visit, the locked person only. A visit without candidates is
unassigned at once with a reason. After solving, a visit the solver left out gets the
reason that capacity ran out (nobody qualified had time inside the window).
"""

from __future__ import annotations

from dataclasses import dataclass

from robots.lena.check import TravelTable
from robots.lena.model import Problem, Staff, Unassigned, Visit

__all__ = ["Candidates", "candidates", "clock", "left_out"]

#: Machine codes of the reasons, with a comment on each.
REASON_CODES = {
    "no_competence": "nobody on duty has the competences the visit needs",
    "no_shift": "qualified staff exist, but no shift leaves room for the visit inside its window",
    "double_staffing": "fewer than two different qualified people can be there",
    "locked_absent": "locked to someone who is not on duty",
    "locked_unqualified": "locked to someone who lacks a competence",
    "locked_outside_shift": "locked to someone whose shift does not cover the locked time",
    "capacity": "the qualified staff's days are full inside the window",
    "check_failed": "removed after the independent check found a broken rule",
}


def clock(problem: Problem, t: int) -> str:
    """A time as HH:MM for Lena's minute-based days, else the raw number."""
    if problem.day is None:
        return str(t)
    return f"{t // 60:02d}:{t % 60:02d}"


def _window(problem: Problem, v: Visit) -> str:
    return f"{clock(problem, v.earliest)}–{clock(problem, v.latest + problem.max_lateness)}"


@dataclass(frozen=True)
class Candidates:
    """Staff indices (into ``problem.staff``) that may fill each role of a visit, or the reason none can."""

    roles: tuple[tuple[int, ...], ...] = ()
    unassigned: Unassigned | None = None


def fits_shift(problem: Problem, table: TravelTable, s: Staff, v: Visit, start: int | None = None) -> bool:
    """True when ``s`` can reach ``v`` inside its window (or at ``start``), do it and get back within the shift."""
    arrive = s.shift_start + table.time(s.start_location, v.location, s.travel_mode)
    if start is not None:
        if arrive > start:
            return False
        begin = start
    else:
        begin = max(v.earliest, arrive)
        if begin > v.latest + problem.max_lateness:
            return False
    return begin + v.duration + table.time(v.location, s.end_location, s.travel_mode) <= s.shift_end


def candidates(problem: Problem, table: TravelTable, v: Visit) -> Candidates:
    """The candidates for each role of ``v``, or an :class:`Unassigned` with the reason."""
    staff = problem.staff
    if v.locked is not None:
        return _locked(problem, table, v)
    roles: list[tuple[int, ...]] = []
    for need in v.roles():
        qualified = [i for i, s in enumerate(staff) if need <= s.competences]
        if not qualified:
            what = ", ".join(sorted(need)) or "-"
            return Candidates(unassigned=Unassigned(v.id, "no_competence", f"Ingen i tjänst har kompetensen {what}"))
        fitting = tuple(i for i in qualified if fits_shift(problem, table, staff[i], v))
        if not fitting:
            return Candidates(
                unassigned=Unassigned(
                    v.id,
                    "no_shift",
                    f"Ingen behörig i tjänst har ett arbetspass som rymmer besöket {_window(problem, v)}",
                )
            )
        roles.append(fitting)
    if len(roles) == 2 and len(set(roles[0]) | set(roles[1])) < 2:
        return Candidates(
            unassigned=Unassigned(
                v.id, "double_staffing", "Dubbelbemanning kräver två behöriga i tjänst, bara en kan komma"
            )
        )
    return Candidates(roles=tuple(roles))


def _locked(problem: Problem, table: TravelTable, v: Visit) -> Candidates:
    assert v.locked is not None
    staff = problem.staff
    who = v.locked.staff_id
    index = next((i for i, s in enumerate(staff) if s.id == who), None)
    if index is None:
        return Candidates(unassigned=Unassigned(v.id, "locked_absent", f"Låst till {who} som inte är i tjänst"))
    member = staff[index]
    roles = v.roles()
    role = next((r for r, need in enumerate(roles) if need <= member.competences), None)
    if role is None:
        missing = ", ".join(sorted(roles[0] - member.competences))
        return Candidates(unassigned=Unassigned(v.id, "locked_unqualified", f"Låst till {who} som saknar {missing}"))
    if not fits_shift(problem, table, member, v, v.locked.start):
        when = clock(problem, v.locked.start) if v.locked.start is not None else _window(problem, v)
        return Candidates(
            unassigned=Unassigned(
                v.id, "locked_outside_shift", f"Låst till {who} vars arbetspass inte rymmer besöket {when}"
            )
        )
    if len(roles) == 1:
        return Candidates(roles=((index,),))
    other = 1 - role
    start = v.locked.start
    others = []
    for i, s in enumerate(staff):
        if i == index or not roles[other] <= s.competences:
            continue
        at = start if (start is not None and v.sync is not None and v.sync.kind == "simultaneous") else None
        if fits_shift(problem, table, s, v, at):
            others.append(i)
    if not others:
        return Candidates(
            unassigned=Unassigned(
                v.id, "double_staffing", f"Låst till {who}, men ingen andra behörig kan komma samtidigt"
            )
        )
    pair = [(index,), tuple(others)]
    if role == 1:
        pair.reverse()
    return Candidates(roles=tuple(pair))


def left_out(problem: Problem, v: Visit) -> Unassigned:
    """The reason for a visit the solver could not fit in."""
    if v.locked is not None:
        return Unassigned(
            v.id, "capacity", f"Det låsta besöket hos {v.locked.staff_id} krockar med andra låsta besök eller rasten"
        )
    if v.staff_count == 2:
        return Unassigned(v.id, "capacity", f"Två behöriga hinner inte vara där samtidigt inom {_window(problem, v)}")
    return Unassigned(
        v.id, "capacity", f"Ingen behörig hinner med besöket inom {_window(problem, v)}; deras dagar är fulla"
    )
