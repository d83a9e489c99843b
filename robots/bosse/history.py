"""How each substitute has answered Bosse's offers before, and what that says about the next one (pure).

Everything here is read from the offer ledgers (:mod:`robots.bosse.ledger`), that is from
the SMS gateway's record of Bosse's own messages and the replies to them: Bosse keeps no
other state. From a person's past offers come the share they said yes to, whether they
answer at all, and how long they usually take; :func:`timely_yes` turns that into the
chance that a new offer gets a yes before the shift's offers close.

The estimates are shrunk towards a neutral prior (:data:`PRIOR_YES`, :data:`PRIOR_WEIGHT`
offers' worth), so one answer does not decide much and a newcomer is neither first nor last.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from robots.bosse.ledger import ShiftLedger
from robots.bosse.messages import Answer

__all__ = [
    "PRIOR_WEIGHT",
    "PRIOR_YES",
    "SILENCE_AFTER",
    "WINDOW",
    "ReplyStats",
    "history_material",
    "history_text",
    "reply_history",
    "timely_yes",
]

#: The yes-share assumed for someone Bosse has never asked, and how many offers' worth it counts.
PRIOR_YES = 0.5
PRIOR_WEIGHT = 2.0
#: An offer still unanswered this long after it was sent counts as not answered.
SILENCE_AFTER = timedelta(hours=12)
#: Only offers sent this long before ``now`` count: people's circumstances change, and an old
#: refusal should not keep someone at the back of the queue for ever.
WINDOW = timedelta(days=90)
#: A person whose usual reply time does not fit before offers close still answers in time this often.
LATE_FACTOR = 0.25


@dataclass(frozen=True)
class ReplyStats:
    """One substitute's past offers: how many have an outcome, how many were answered, how many yes,
    and the minutes each answer took."""

    offers: int = 0
    answered: int = 0
    yes: int = 0
    minutes: tuple[float, ...] = ()

    @property
    def yes_share(self) -> float:
        """Estimated chance of a yes to an offer (answered or not), shrunk towards the prior."""
        return (self.yes + PRIOR_YES * PRIOR_WEIGHT) / (self.offers + PRIOR_WEIGHT)

    @property
    def usual_minutes(self) -> float | None:
        """The median time to answer, None before the first answer."""
        return statistics.median(self.minutes) if self.minutes else None


def reply_history(ledgers: Iterable[ShiftLedger], now: datetime) -> dict[str, ReplyStats]:
    """Every substitute's :class:`ReplyStats` from the offers in ``ledgers`` sent in the :data:`WINDOW` up to ``now``.

    An offer counts once it is answered, or once it has gone :data:`SILENCE_AFTER` without an
    answer; undelivered offers and those still within that time do not count.
    """
    counts: dict[str, list[int]] = {}
    minutes: dict[str, list[float]] = {}
    for ledger in ledgers:
        for sub, offer in ledger.offers.items():
            sent = offer.message.sent_at
            if not offer.message.delivered or sent > now or now - sent > WINDOW:
                continue
            first = next((r for r in offer.replies if r.answer is not None and r.received_at <= now), None)
            if first is None and now - sent < SILENCE_AFTER:
                continue
            row = counts.setdefault(sub, [0, 0, 0])
            row[0] += 1
            if first is not None:
                row[1] += 1
                row[2] += first.answer is Answer.yes
                minutes.setdefault(sub, []).append((first.received_at - sent).total_seconds() / 60)
    return {sub: ReplyStats(o, a, y, tuple(minutes.get(sub, ()))) for sub, (o, a, y) in counts.items()}


def timely_yes(stats: ReplyStats | None, now: datetime, closes: datetime) -> float:
    """The chance that an offer sent at ``now`` gets a yes before ``closes``."""
    stats = stats or ReplyStats()
    usual = stats.usual_minutes
    fits = usual is None or now + timedelta(minutes=usual) <= closes
    return stats.yes_share * (1.0 if fits else LATE_FACTOR)


def history_material(stats: ReplyStats | None) -> dict[str, Any]:
    """The reply history as the review material holds it: the counts (for the template, which
    words them in the page's language) and :func:`history_text`."""
    stats = stats or ReplyStats()
    return {
        "days": WINDOW.days,
        "asked": stats.offers,
        "yes": stats.yes,
        "unanswered": stats.offers - stats.answered,
        "usual_minutes": round(stats.usual_minutes) if stats.usual_minutes is not None else None,
        "text": history_text(stats),
    }


def history_text(stats: ReplyStats | None) -> str:
    """The person's reply history in Swedish for the coordinators, e.g. ``"Svarat ja på 3 av 7
    förfrågningar de senaste 90 dagarna (2 obesvarade; svarar oftast inom 12 min)"``."""
    days = WINDOW.days
    if stats is None or stats.offers == 0:
        return f"Inga förfrågningar från Bosse de senaste {days} dagarna"
    text = f"Svarat ja på {stats.yes} av {stats.offers} förfrågningar de senaste {days} dagarna"
    notes = []
    if stats.offers > stats.answered:
        notes.append(f"{stats.offers - stats.answered} obesvarade")
    if stats.usual_minutes is not None:
        notes.append(f"svarar oftast inom {round(stats.usual_minutes)} min")
    return f"{text} ({'; '.join(notes)})" if notes else text
