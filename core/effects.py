"""The effects ledger's vocabulary: what a robot declares about its effect, and the facts it is measured on.

A robot answers Värmdö's four questions about an automation (why, what value, when, and
how the effect will be measured) in an :class:`EffectsDeclaration`, names the measures it
reports (:class:`Measure`) and the outcomes that replace manual work (:class:`OutcomeKind`,
each with a documented default of minutes a person would need by hand, labelled an
estimate until a municipality sets its own measured baseline).

Each month the kernel hands the robot the facts of what actually happened for one
municipality (:class:`EffectFacts`: its work items with their results, its review items
with their decisions, its audit events) and the robot's pure ``measure_effects`` turns them
into figures (:class:`Measured`). Nothing here reads a database; :mod:`core.effects_report`
gathers the facts, applies the municipality's baselines and subtracts the measured review
time. docs/effects.md explains every figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

__all__ = [
    "EffectFacts",
    "EffectsDeclaration",
    "EventFact",
    "ItemFact",
    "Measure",
    "Measured",
    "OutcomeKind",
    "ReviewFact",
    "median",
    "share",
]


@dataclass(frozen=True)
class Measure:
    """One figure a robot reports per municipality and month.

    ``label`` and ``how`` are Swedish (shown on the effects page and in the published
    report); ``how`` says in one or two sentences how the figure is computed from what
    happened. ``unit`` is shown after the value (``"%"``, ``"timmar"``, ``"st"``).
    """

    key: str
    label: str
    unit: str
    how: str
    #: Which direction is an improvement: ``"higher"``, ``"lower"`` or None (neither).
    better: Literal["higher", "lower"] | None = None
    #: Decimals shown.
    decimals: int = 1


@dataclass(frozen=True)
class OutcomeKind:
    """An outcome that replaces work a person did by hand, and the default minutes it saves.

    ``default_minutes`` is the documented estimate used until a municipality sets its own
    measured figure (``effect_minutes`` in its ``[[tenants]]`` entry); ``source`` says where
    the estimate comes from (shown with it, so nobody mistakes it for a measurement).
    """

    key: str
    label: str
    default_minutes: float
    source: str


@dataclass(frozen=True)
class EffectsDeclaration:
    """A robot's answers to the four questions, its measures and the outcomes that save time (Swedish text)."""

    #: Why the robot exists: the problem it addresses.
    why: str
    #: What value it is meant to give, and to whom.
    value: str
    #: When the value is expected to show (e.g. "från första månaden").
    when: str
    #: How the effect is measured (the measures below, in words).
    how_measured: str
    measures: tuple[Measure, ...] = ()
    outcomes: tuple[OutcomeKind, ...] = ()
    #: Keys of the review material the measures read (:attr:`ReviewFact.material` holds only
    #: these; material can be large, so none is loaded unless named).
    material_keys: tuple[str, ...] = ()

    def measure(self, key: str) -> Measure:
        """The measure with this key (KeyError if none)."""
        return next(m for m in self.measures if m.key == key)


@dataclass(frozen=True)
class ItemFact:
    """One work item of the month (created in it): its reference, status, payload and result."""

    id: int
    reference: str
    status: str
    payload: Mapping[str, Any]
    result: Mapping[str, Any] | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ReviewFact:
    """One review item created or decided in the month, with its decision.

    ``changed`` is True when the person gave robot-specific data with the decision
    (``decision_data``, e.g. changed amounts): the proposal was not accepted as it stood.
    """

    id: int
    work_item_id: int | None
    queue: str
    kind: str
    state: str
    created_at: datetime
    decided_at: datetime | None
    decision_data: Mapping[str, Any] | None
    #: Only the keys the robot's declaration names in ``material_keys``.
    material: Mapping[str, Any]
    #: Created in the month (otherwise only decided in it).
    created_in_month: bool = True

    @property
    def changed(self) -> bool:
        """The person changed the proposal when deciding (gave decision data)."""
        return bool(self.decision_data)


@dataclass(frozen=True)
class EventFact:
    """One audit event the robot wrote in the month (action, time, details; never the subject)."""

    seq: int
    action: str
    time: datetime
    details: Mapping[str, Any]


@dataclass(frozen=True)
class EffectFacts:
    """What happened for one robot in one municipality in one month (local time)."""

    tenant: str
    month: str
    zone: ZoneInfo
    items: tuple[ItemFact, ...] = ()
    reviews: tuple[ReviewFact, ...] = ()
    events: tuple[EventFact, ...] = ()

    def events_of(self, *actions: str) -> list[EventFact]:
        """The events with one of these actions, oldest first."""
        return [e for e in self.events if e.action in actions]

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the municipality's local time."""
        return moment.astimezone(self.zone)

    def in_month(self, moment: datetime | None) -> bool:
        """True when ``moment`` falls in this month, local time."""
        return moment is not None and f"{self.local(moment):%Y-%m}" == self.month

    @property
    def first_day(self) -> date:
        """The month's first day."""
        return date.fromisoformat(f"{self.month}-01")


@dataclass
class Measured:
    """A robot's figures for one month: measure key → value (None = nothing to measure), outcome key → count."""

    values: dict[str, float | None] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    #: Measure key → how many cases the figure rests on (shown next to it).
    bases: dict[str, int] = field(default_factory=dict)


def median(values: Iterable[float]) -> float | None:
    """The median, or None for no values."""
    data = list(values)
    return float(statistics.median(data)) if data else None


def share(part: int, whole: int) -> float | None:
    """``part`` of ``whole`` in percent, or None when ``whole`` is 0."""
    return round(100.0 * part / whole, 1) if whole else None
