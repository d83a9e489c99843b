"""The Robot base class and the outcomes of processing one work item.

A robot is a plugin: a subclass of :class:`Robot` registered under the entry-point group
``kollega.robots``. The engine drives it::

    collect(ctx)          -> iterable of NewItem (reads only; same reference = same case)
    process(ctx, item)    -> Done | NeedsReview, or raises BusinessError / ApplicationError
    on_decision(ctx, rv)  -> carries out what a person decided on a review item
    recheck(ctx, item)    -> optional: Done if an ``uncertain`` item's write turns out done

A robot never decides in a citizen's matter on its own: it prepares and proposes, a person
decides, and only then does ``on_decision`` carry the decision out.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

if TYPE_CHECKING:
    import typer

    from core.context import RunContext
    from core.records import ReviewView, WorkItemView


class NoSettings(BaseModel):
    """Settings model of a robot that has no settings."""

    model_config = {"extra": "forbid"}


@dataclass(frozen=True)
class NewItem:
    """A work item found by ``collect``: a stable business reference and its payload."""

    reference: str
    payload: dict[str, Any] = field(default_factory=dict)
    #: Personal identifier the item concerns (stored for the access log, never logged).
    subject: str | None = None


@dataclass(frozen=True)
class Done:
    """The item was handled completely; ``result`` is stored on the work item."""

    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NeedsReview:
    """The item is prepared and waits for a person's decision in a review queue."""

    queue: str
    title: str
    material: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    due: datetime | None = None
    four_eyes: bool = False
    #: Personal identifier the review concerns; opening it is an audited access.
    subject: str | None = None


Outcome = Done | NeedsReview


class Robot(abc.ABC):
    """Base class of every robot.

    Subclasses set the class attributes and implement :meth:`collect` and :meth:`process`.
    """

    #: Entry-point name, lower case (``ronney``).
    name: ClassVar[str]
    #: Name shown to people (``Ronney``).
    display_name: ClassVar[str]
    #: One sentence on what the robot does.
    description: ClassVar[str] = ""
    #: Pydantic model validating the robot's section ``[robots.<name>]`` of the settings.
    settings_model: ClassVar[type[BaseModel]] = NoSettings
    #: How long a person would need for one item by hand (time-saved reporting).
    manual_minutes_per_item: ClassVar[float] = 0.0
    #: Template (package-relative ``module:path``) used to render review items.
    review_template: ClassVar[str | None] = None
    #: False when ``process`` writes to an external system in a way that must not be
    #: repeated blindly: an item whose worker died mid-process becomes ``uncertain`` and
    #: goes to a person instead of being retried.
    side_effects_repeatable: ClassVar[bool] = True
    #: Attempts before an item fails for good (None = the engine's setting).
    max_attempts: ClassVar[int | None] = None

    def __init__(self, settings: BaseModel | None = None) -> None:
        self.settings = settings if settings is not None else self.settings_model()

    @abc.abstractmethod
    def collect(self, ctx: RunContext) -> Iterable[NewItem] | AsyncIterator[NewItem]:
        """Find new work items; must only read. Re-collecting a known reference is a no-op."""

    @abc.abstractmethod
    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        """Process one item; safe to run twice for the same item."""

    async def on_decision(self, ctx: RunContext, review: ReviewView) -> None:  # noqa: B027
        """Carry out a person's decision. The default does nothing."""

    async def recheck(self, ctx: RunContext, item: WorkItemView) -> Done | None:
        """Re-check an ``uncertain`` item (its worker died mid-write) without writing anything.

        Called by the engine at the start of a run, under a lease, for each uncertain item
        whose review no person has decided yet. Return :class:`Done` only when the target
        system shows the write complete and correct: the item is then done and its review
        closed by the robot. ``None`` (the default) or an exception leaves both to a person.
        Must only read.
        """
        return None

    def cli(self) -> typer.Typer | None:
        """An optional typer app mounted as ``kollega <name> …``."""
        return None

    @classmethod
    def validate_class(cls) -> list[str]:
        """Return what is wrong with this class as a robot plugin (empty when valid)."""
        problems: list[str] = []
        for attr in ("name", "display_name"):
            value = getattr(cls, attr, None)
            if not isinstance(value, str) or not value:
                problems.append(f"class attribute {attr!r} must be a non-empty string")
        name = getattr(cls, "name", "")
        if isinstance(name, str) and name and (name != name.lower() or not name.replace("_", "").isalnum()):
            problems.append(f"name {name!r} must be lower case letters, digits and underscores")
        if not (isinstance(cls.settings_model, type) and issubclass(cls.settings_model, BaseModel)):
            problems.append("settings_model must be a pydantic BaseModel subclass")
        if getattr(cls, "__abstractmethods__", None):
            missing = ", ".join(sorted(cls.__abstractmethods__))
            problems.append(f"abstract methods not implemented: {missing}")
        return problems
