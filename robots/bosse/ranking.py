"""Explainable ranking of the eligible substitutes for a shift (pure, no I/O).

Order: priority right (företrädesrätt) first; then fewest hours booked this month, so
work is shared fairly; then the substitute's own preferences (wants the shift's unit,
shorter distance); finally the substitute id, so the order never depends on input order.
Each entry carries a ``why`` in Swedish naming the facts that put it where it is, for the
coordinators' review screen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from math import inf

from robots.bosse.rules import Shift, Substitute, format_number, normalise_term

__all__ = ["RankedCandidate", "rank_candidates"]


@dataclass(frozen=True, slots=True)
class RankedCandidate:
    """One substitute's place in the ranking (1 = offered first) and why."""

    rank: int
    substitute: Substitute
    why: str

    @property
    def id(self) -> str:
        """The substitute's id."""
        return self.substitute.id


# Sort key without the id: (no priority right, hours this month, unit not wanted, distance).
_Key = tuple[bool, Fraction, bool, float]


def rank_candidates(shift: Shift, candidates: Iterable[Substitute]) -> list[RankedCandidate]:
    """Rank already-eligible substitutes for ``shift``, best first, each with a ``why``.

    Eligibility is not checked here: pass only those ``check_eligibility`` accepted.
    """
    people = list(candidates)
    ids = [p.id for p in people]
    if len(set(ids)) != len(ids):
        raise ValueError("substitute ids must be unique")
    keys = {p.id: _key(shift, p) for p in people}
    ordered = sorted(people, key=lambda p: (keys[p.id], p.id))
    # Distance is only worth mentioning when it could have decided something.
    any_distance = any(p.distance_km is not None for p in people)
    ranked: list[RankedCandidate] = []
    for index, person in enumerate(ordered):
        facts = _facts(shift, person, mention_distance=any_distance)
        tied = [other.id for other in ordered if other is not person and keys[other.id] == keys[person.id]]
        if tied:
            facts.append(f"lika med {', '.join(tied)} i övrigt, ordning efter id")
        ranked.append(RankedCandidate(rank=index + 1, substitute=person, why="; ".join(facts)))
    return ranked


def _key(shift: Shift, person: Substitute) -> _Key:
    distance = person.distance_km if person.distance_km is not None else inf
    return (
        not person.priority_right,
        # Exact decimal value, so 120 and 120.0 tie and the tie-break is by id.
        Fraction(str(person.hours_this_month)),
        not _wants_unit(shift, person),
        distance,
    )


def _wants_unit(shift: Shift, person: Substitute) -> bool:
    if shift.unit is None:
        return False
    wanted = {normalise_term(u) for u in person.preferred_units}
    return normalise_term(shift.unit) in wanted


def _facts(shift: Shift, person: Substitute, *, mention_distance: bool) -> list[str]:
    facts = [
        "företrädesrätt" if person.priority_right else "ingen företrädesrätt",
        f"{format_number(person.hours_this_month)} h bokade denna månad",
    ]
    if shift.unit is not None:
        facts.append(
            f"önskar enheten {shift.unit}" if _wants_unit(shift, person) else f"har inte önskat enheten {shift.unit}"
        )
    if mention_distance:
        facts.append(
            f"{format_number(person.distance_km, decimals=1)} km bort"
            if person.distance_km is not None
            else "avstånd okänt"
        )
    return facts
