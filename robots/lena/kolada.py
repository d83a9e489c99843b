"""Personalkontinuitet as Kolada counts it (pure): the staff a home-care recipient meets over 14 days.

The national key figure (Kolada, from Socialstyrelsen's survey for Öppna jämförelser) is
titled "Personalkontinuitet, antal personal som en hemtjänsttagare med minst 2 besök
dagligen möter under 14 dagar, median". As municipalities publish its definition: it
covers recipients aged 65 or over with two or more home-care visits every day of the
14 days; safety alarms and meal deliveries are not counted; only 07:00–22:00 counts;
home-health staff are not counted; recipients who did not live at home the whole period
are left out. Sources and what could not be verified: docs/effects.md#kolada.

This is not Lena's own continuity figure (:mod:`robots.lena.continuity`: the mean of
distinct staff over the history's 14 days plus the planned day, every client, every
visit); the two are computed and named separately.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

__all__ = [
    "DAY_FROM",
    "DAY_TO",
    "EXCLUDED_KINDS",
    "PERIOD_DAYS",
    "KoladaResult",
    "KoladaVisit",
    "Recipient",
    "kolada_continuity",
]

#: The measurement period, in days (the last of them is the planned day).
PERIOD_DAYS = 14
#: Visits starting from 07:00 up to (not including) 22:00 local time count, in minutes since midnight.
DAY_FROM, DAY_TO = 7 * 60, 22 * 60
#: Recipients this old or older are counted.
MIN_AGE = 65
#: Visits every day of the period a recipient needs to be counted.
MIN_VISITS_PER_DAY = 2
#: Visit kinds that are not counted: safety alarms, meal deliveries, home-health care (its staff are not counted).
EXCLUDED_KINDS = frozenset({"trygghetslarm", "matleverans", "hemsjukvård"})
#: The kind of an ordinary home-care visit.
CARE = "omsorg"


@dataclass(frozen=True)
class KoladaVisit:
    """One performed or planned visit: whose, which day, when it starts (minutes since local midnight), kind, staff."""

    client_id: str
    day: date
    start: int
    kind: str
    staff_ids: tuple[str, ...]


@dataclass(frozen=True)
class Recipient:
    """What the selection needs to know about a home-care recipient."""

    client_id: str
    #: Age in whole years at the end of the period (None: unknown, not counted).
    age: int | None
    #: Days in the period the recipient did not live at home (hospital, short-term stay).
    away_days: frozenset[date] = frozenset()


@dataclass(frozen=True)
class KoladaResult:
    """The figure for one period: median (what Kolada publishes) and mean, over the recipients counted."""

    median: float | None
    mean: float | None
    #: Distinct staff per counted recipient, in no particular order (no ids: safe to record).
    counts: tuple[int, ...]
    #: Why recipients were left out: reason → how many.
    excluded: Mapping[str, int] = field(default_factory=dict)


def _counted(v: KoladaVisit) -> bool:
    return v.kind not in EXCLUDED_KINDS and DAY_FROM <= v.start < DAY_TO


def kolada_continuity(
    visits: Iterable[KoladaVisit], recipients: Mapping[str, Recipient], last_day: date
) -> KoladaResult:
    """The staff each recipient met in the 14 days ending ``last_day``, for the recipients the definition counts.

    ``visits`` may span any days and groups (visits outside the period are ignored);
    ``recipients`` are the home-care recipients to consider (others' visits are ignored).
    """
    first = last_day - timedelta(days=PERIOD_DAYS - 1)
    period = [first + timedelta(days=i) for i in range(PERIOD_DAYS)]
    per_day: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    staff: dict[str, set[str]] = defaultdict(set)
    for v in visits:
        if v.client_id not in recipients or not first <= v.day <= last_day or not _counted(v):
            continue
        per_day[v.client_id][v.day] += 1
        staff[v.client_id].update(v.staff_ids)
    excluded: dict[str, int] = defaultdict(int)
    counts: list[int] = []
    for cid, r in sorted(recipients.items()):
        if r.age is None or r.age < MIN_AGE:
            excluded["under_65"] += 1
        elif any(first <= d <= last_day for d in r.away_days):
            excluded["not_at_home"] += 1
        elif any(per_day[cid].get(d, 0) < MIN_VISITS_PER_DAY for d in period):
            excluded["fewer_than_two_visits_a_day"] += 1
        else:
            counts.append(len(staff[cid]))
    return KoladaResult(
        median=float(statistics.median(counts)) if counts else None,
        mean=round(statistics.mean(counts), 2) if counts else None,
        counts=tuple(sorted(counts)),
        excluded=dict(excluded),
    )
