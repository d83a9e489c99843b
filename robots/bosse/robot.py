"""Bosse, the staffing robot: substitutes for open shifts, within the working-time rules, fairly.

Overnight Bosse goes through the open shifts of the coming days and checks and ranks every
substitute for each (:mod:`robots.bosse.rules`, :mod:`robots.bosse.ranking`). In the day it
offers each shift by SMS in waves, books the first valid yes in the staffing system
(checked against the rules again at that moment), confirms it, and tells everyone else the
shift is filled. A shift still open at its deadline goes to the staffing coordinators as a
ranked list (queue ``bosse.unfilled``); their decision is carried out by :meth:`Bosse.on_decision`.

How the steps map onto work items: :mod:`robots.bosse.flow` and ``docs/robots/bosse.md``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from core.api import Carried, Done, EffectFacts, Measured, NeedsReview, NewItem, Robot
from robots.bosse.effects import EFFECTS, measure
from robots.bosse.flow import Work
from robots.bosse.material import QUEUE, shift_started
from robots.bosse.settings import BosseSettings
from robots.bosse.texts_en import EN as MESSAGES_EN

if TYPE_CHECKING:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import typer

    from core.api import ReviewView, RunContext, WorkItemView

__all__ = ["Bosse"]


class Bosse(Robot[BosseSettings]):
    """Finds, offers and books substitutes for open shifts; hands the rest to the coordinators."""

    name = "bosse"
    display_name = "Bosse"
    description = (
        "Finds substitutes for open shifts within the working-time rules, offers them by SMS in "
        "waves and books the first valid yes; what cannot be filled goes to the staffing coordinators."
    )
    effects = EFFECTS

    @classmethod
    def measure_effects(cls, facts: EffectFacts) -> Measured:
        """Bosse's figures for one month (robots/bosse/effects.py)."""
        return measure(facts)

    review_template = "review.html"
    # The template says what happened and what to do when a step failed or may have happened.
    review_template_kinds = frozenset({"decision", "exception", "uncertain"})
    queue_labels = {QUEUE: "obemannade pass"}
    messages = {"en": MESSAGES_EN}
    #: Every write (SMS, booking) is keyed by reference and checked before it is made, so an
    #: item whose worker died can safely be taken over and done again.
    side_effects_repeatable = True

    @property
    def bosse_settings(self) -> BosseSettings:
        """The validated settings."""
        return self.settings

    async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]:
        """The steps due now: replies, notices, waves, hand-overs, and new shifts to prepare."""
        for item in await Work(ctx, self.bosse_settings).collect():
            yield item

    async def process(self, ctx: RunContext, item: WorkItemView) -> Done | NeedsReview:
        """Do one step (see :class:`robots.bosse.flow.ItemRef`)."""
        return await Work(ctx, self.bosse_settings).process(item)

    async def on_decision(self, ctx: RunContext, review: ReviewView) -> Carried | None:
        """Approve = book the proposed (or named) person; reject = covered otherwise; return = new wave."""
        return await Work(ctx, self.bosse_settings).decide(review)

    def lapse_reason(self, review: ReviewView, now: datetime, zone: ZoneInfo) -> str | None:
        """A shift that has started can no longer be filled from the inbox: the item lapses."""
        return shift_started(review.material, now, zone)

    def cli(self) -> typer.Typer:
        """``kollega bosse match FILE [--json]``."""
        from robots.bosse.cli import make_app

        return make_app(self.bosse_settings.rules)
