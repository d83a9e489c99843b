"""Bosse's settings: the section ``[robots.bosse]``, validated field by field.

Every duration is in minutes or hours as the field name says; times of day are Swedish
local time (``"21:00"``). The working-time thresholds live in the nested ``rules`` table
(:class:`robots.bosse.rules.BosseRules`)::

    [robots.bosse]
    wave_size = 3
    reply_wait_minutes = 30
    quiet_hours_start = "21:00"
    quiet_hours_end = "07:00"

    [robots.bosse.rules]
    min_daily_rest_hours = 11
"""

from __future__ import annotations

from datetime import time

from pydantic import BaseModel, ConfigDict, Field, model_validator

from robots.bosse.rules import BosseRules

__all__ = ["BosseSettings"]


class BosseSettings(BaseModel):
    """How Bosse finds, offers and books substitutes for open shifts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_days: int = Field(
        default=3,
        ge=1,
        le=31,
        description=(
            "Open shifts are collected from now until the end of the day this many days ahead "
            "(Swedish time): the night run finds the shifts of the coming days."
        ),
    )
    wave_size: int = Field(
        default=3,
        ge=1,
        le=100,
        description="How many candidates get an offer at once (one wave), best ranked first.",
    )
    adaptive_waves: bool = Field(
        default=True,
        description=(
            "Ask only as many at once as a shift needs to reach everyone left before its deadline "
            "(one at a time while there is time for many rounds of replies, up to wave_size as the "
            "deadline nears); false = always wave_size at once."
        ),
    )
    reply_wait_minutes: float = Field(
        default=30,
        gt=0,
        le=24 * 60,
        description=(
            "Reply deadline of an offer: after this long without an answer it counts as unanswered, "
            "and when no offer of a shift is still waiting the next wave goes out. A later yes is "
            "still booked while the shift is open and its deadline has not passed."
        ),
    )
    max_waves: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Most waves per shift before it goes to the coordinators even though candidates remain; "
            "empty = offer until the candidates run out."
        ),
    )
    max_offer_lead_hours: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Offer lead time: offers for a shift go out at the earliest this many hours before it "
            "starts; empty = as soon as Bosse has found the shift (the first daytime run)."
        ),
    )
    deadline_hours_before_start: float = Field(
        default=2,
        ge=0,
        le=14 * 24,
        description=(
            "A shift's deadline when the staffing system gives none: this many hours before it "
            "starts. A shift still open at its deadline goes to the coordinators."
        ),
    )
    quiet_hours_start: time = Field(
        default=time(21, 0),
        description="Start of the quiet hours (Swedish time): no SMS is sent from then …",
    )
    quiet_hours_end: time = Field(
        default=time(7, 0),
        description="… until this time; offers prepared at night go out at the first run after it.",
    )
    escalation_margin_minutes: float = Field(
        default=15,
        ge=0,
        le=12 * 60,
        description=(
            "When a shift's deadline falls in the quiet hours no offer can be sent before it, so the "
            "shift goes to the coordinators this long before the quiet hours begin (the last daytime "
            "run must come after that moment)."
        ),
    )
    booked_by: str = Field(
        default="Kollega/Bosse",
        min_length=1,
        max_length=100,
        description="Name written as 'booked by' on the bookings Bosse makes in the staffing system.",
    )
    staffing_system: str = Field(
        default="staffing",
        min_length=1,
        description="The connector section ([connectors.<name>]) of the staffing system.",
    )
    sms_system: str = Field(
        default="sms",
        min_length=1,
        description="The connector section ([connectors.<name>]) of the SMS gateway.",
    )
    purpose: str = Field(
        default="bemanning av vikariepass",
        min_length=1,
        description="Purpose written in the access log when Bosse reads substitutes' data.",
    )
    rules: BosseRules = Field(
        default_factory=BosseRules,
        description="Working-time thresholds: dygnsvila, veckovila, default monthly cap.",
    )

    @model_validator(mode="after")
    def _quiet_hours_differ(self) -> BosseSettings:
        if self.quiet_hours_start == self.quiet_hours_end:
            raise ValueError("quiet_hours_start and quiet_hours_end must differ")
        return self
