"""The robots' one door into core: everything a robot author imports from Kollega's kernel.

A robot imports from ``core.api`` and from ``connectors`` only (a test fails when a module
under robots/ imports another part of core)::

    from core.api import Done, NeedsReview, NewItem, Outcome, Robot, RunContext, WorkItemView

    class Greeter(Robot[GreeterSettings]):
        name = "greeter"
        display_name = "Greeter"

        async def collect(self, ctx: RunContext) -> AsyncIterator[NewItem]: ...
        async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome: ...

Every name in ``__all__`` is documented in docs/writing-a-robot.md (a test checks it).
"""

from __future__ import annotations

from core.clock import local_today
from core.effects import (
    EffectFacts,
    EffectsDeclaration,
    EventFact,
    ItemFact,
    Measure,
    Measured,
    OutcomeKind,
    ReviewFact,
    median,
    share,
)
from core.errors import (
    ApplicationError,
    BusinessError,
    ConfigError,
    ConnectorAuthError,
    ConnectorError,
    ConnectorUnavailable,
    DryRunRefusal,
    ItemTimeout,
    KollegaError,
    RobotError,
    TargetLocked,
)
from core.interfaces import ConnectorContext
from core.logging import get_logger
from core.records import ItemStatus, ReviewKind, ReviewState, ReviewView, WorkItemView
from core.robot import Carried, Done, NeedsReview, NewItem, NoSettings, Outcome, Robot, RobotLog, RunContext, SettingsT
from core.settings import SecretRef, load_settings

__all__ = [
    "ApplicationError",
    "BusinessError",
    "Carried",
    "ConfigError",
    "ConnectorAuthError",
    "ConnectorContext",
    "ConnectorError",
    "ConnectorUnavailable",
    "Done",
    "DryRunRefusal",
    "EffectFacts",
    "EffectsDeclaration",
    "EventFact",
    "ItemFact",
    "ItemStatus",
    "ItemTimeout",
    "KollegaError",
    "Measure",
    "Measured",
    "NeedsReview",
    "NewItem",
    "NoSettings",
    "Outcome",
    "OutcomeKind",
    "ReviewFact",
    "ReviewKind",
    "ReviewState",
    "ReviewView",
    "Robot",
    "RobotError",
    "RobotLog",
    "RunContext",
    "SecretRef",
    "SettingsT",
    "TargetLocked",
    "WorkItemView",
    "get_logger",
    "load_settings",
    "local_today",
    "median",
    "share",
]
