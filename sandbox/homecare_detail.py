"""What a real home-care system also records, which Kolada's continuity measure needs.

Added to the generated home-care data from an independent random stream (so the visits,
staff and plans of a seed stay as they were):

- every visit and history entry has a ``kind``: ``omsorg`` (home care), ``trygghetslarm``
  (a safety-alarm call-out, often at night), ``matleverans`` (a meal delivery) or
  ``hemsjukvård`` (a home-health nurse's visit);
- some clients are younger than 65 (home care is not only for the old);
- some clients were away for a few days in the history (``absences``: hospital or a
  short-term stay), and have no visits then;
- some care visits were made by staff of a neighbouring group (evening and weekend cover),
  so a client's history spans groups.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from sandbox.common import local
from sandbox.people import PersonFactory
from sandbox.state import SandboxOptions

__all__ = ["add_kolada_detail"]

_NIGHT_PATROL = ("NP01", "NP02", "NP03")
_MEAL_DRIVERS = ("MAT01", "MAT02")
_NURSES = ("SSK01", "SSK02", "SSK03", "SSK04")


def _entry(day: date, client: str, activity: str, kind: str, staff: str, hour: int, minute: int) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "client_id": client,
        "activity": activity,
        "kind": kind,
        "staff_ids": [staff],
        "start": local(day, hour, minute).isoformat(timespec="minutes"),
        "duration_minutes": 15,
    }


def add_kolada_detail(
    care: dict[str, Any], rng: random.Random, people: PersonFactory, options: SandboxOptions
) -> dict[str, Any]:
    """``care`` (from :func:`sandbox.homecare.generate_homecare`) with kinds, ages, absences and cover visits."""
    for v in care["visits"]:
        v["kind"] = "omsorg"
    history: list[dict[str, Any]] = care["history"]
    for h in history:
        h["kind"] = "omsorg"
    tomorrow = date.fromisoformat(care["date"])
    days = [tomorrow - timedelta(days=back) for back in range(14, 0, -1)]
    staff_by_group: dict[str, list[str]] = {}
    for s in care["staff"]:
        staff_by_group.setdefault(s["group"], []).append(s["id"])
    groups = sorted(staff_by_group)
    extra: list[dict[str, Any]] = []
    away: dict[str, set[str]] = {}
    for client in care["clients"]:
        cid = client["id"]
        client["absences"] = []
        if rng.random() < 0.1:  # a younger client: same id and address, another (test) person
            younger = people.person(40, 64)
            client.update(younger.as_dict(options.today))
        if rng.random() < 0.08:
            start = rng.randrange(0, len(days) - 2)
            length = rng.randint(2, 5)
            gone = days[start : start + length]
            client["absences"].append({"from": gone[0].isoformat(), "to": gone[-1].isoformat(), "reason": "sjukhus"})
            away[cid] = {d.isoformat() for d in gone}
        alarm = rng.random() < 0.25
        meals = rng.random() < 0.15
        nurse = rng.random() < 0.25
        others = [g for g in groups if g != client["group"]]
        cover = bool(others) and rng.random() < 0.3
        for day in days:
            if alarm and rng.random() < 0.15:
                hour = rng.choice((1, 3, 14, 23))
                extra.append(_entry(day, cid, "Larmutryckning", "trygghetslarm", rng.choice(_NIGHT_PATROL), hour, 10))
            if meals:
                extra.append(_entry(day, cid, "Matleverans", "matleverans", rng.choice(_MEAL_DRIVERS), 11, 0))
            if nurse and day.isoweekday() in (2, 5):
                extra.append(_entry(day, cid, "Såromläggning", "hemsjukvård", rng.choice(_NURSES), 10, 30))
            if cover and day.isoweekday() >= 6 and rng.random() < 0.5:
                helper = rng.choice(staff_by_group[rng.choice(others)])
                extra.append(_entry(day, cid, "Tillsyn", "omsorg", helper, rng.choice((15, 21, 22)), 30))
    kept = [h for h in history + extra if h["date"] not in away.get(h["client_id"], set())]
    care["history"] = sorted(kept, key=lambda h: (h["date"], h["start"], h["client_id"]))
    return care
