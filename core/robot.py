"""The Robot base class and the outcomes of processing one work item.

A robot is a plugin: a subclass of :class:`Robot` registered under the entry-point group
``kollega.robots``. The engine drives it::

    collect(ctx)          -> iterable of NewItem (reads only; same reference = same case)
    process(ctx, item)    -> Done | NeedsReview, or raises BusinessError / ApplicationError
    on_decision(ctx, rv)  -> carries out what a person decided on a review item; may return
                             Carried(summary, reference): what was done, shown to the decider
    recheck(ctx, item)    -> optional: Done if an ``uncertain`` item's write turns out done

A robot never decides in a citizen's matter on its own: it prepares and proposes, a person
decides, and only then does ``on_decision`` carry the decision out.

``Robot`` is generic over its pydantic settings model: ``class Ronney(Robot[RonneySettings])``
types ``self.settings`` as ``RonneySettings`` and sets ``settings_model`` from the parameter.
What a robot is handed while it runs is the :class:`RunContext` protocol below (the engine's
concrete class is :class:`core.context.RunContext`). Robot authors import all of this from
:mod:`core.api`.
"""

from __future__ import annotations

import abc
import typing
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, cast

from pydantic import BaseModel
from typing_extensions import TypeVar

from core.effects import EffectFacts, EffectsDeclaration, Measured

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    import typer

    from core.clock import Clock
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


@dataclass(frozen=True)
class Carried:
    """What ``on_decision`` did, shown to the person who decided (Mina beslut, the item page).

    ``summary`` is one Swedish sentence a case worker understands, without technical words,
    file paths or personal identifiers (``"Bokad i bemanningssystemet, bekräftelse-SMS
    skickat"``); the time is added by the inbox. ``reference`` is the target system's own
    reference for what was written (a booking or decision id), when it has one.
    """

    summary: str
    reference: str | None = None


class RobotLog(Protocol):
    """The structured logger a robot gets (structlog): an event name plus key-value fields."""

    def debug(self, event: str, *args: Any, **fields: Any) -> Any:
        """Log at debug level."""
        ...

    def info(self, event: str, *args: Any, **fields: Any) -> Any:
        """Log at info level."""
        ...

    def warning(self, event: str, *args: Any, **fields: Any) -> Any:
        """Log at warning level."""
        ...

    def error(self, event: str, *args: Any, **fields: Any) -> Any:
        """Log at error level."""
        ...

    def exception(self, event: str, *args: Any, **fields: Any) -> Any:
        """Log at error level with the current exception's traceback."""
        ...


class RunContext(Protocol):
    """What a robot may use during one run for one tenant (the engine hands it in).

    A narrow view of :class:`core.context.RunContext`: the tenant and its local time, the
    clock, the log, the audit trail, artifacts and the write guard. It also fulfils
    :class:`core.interfaces.ConnectorContext`, so a robot passes it on to its connectors.
    """

    #: The tenant's kommunkod (``1081``).
    tenant: str
    #: True in a dry run: every external write is refused (see :meth:`check_write`).
    dry_run: bool
    #: Connectors and other shared resources opened for this run (closed at its end).
    resources: dict[str, Any]

    @property
    def tenant_name(self) -> str:
        """The tenant's name from ``[[tenants]]`` (``Ronneby kommun``), or its code when unnamed."""
        ...

    @property
    def timezone(self) -> ZoneInfo:
        """The tenant's local time zone (the deployment's ``timezone``, Europe/Stockholm by default)."""
        ...

    @property
    def clock(self) -> Clock:
        """The clock of the run (a fake one in tests): ``now()`` in UTC and ``sleep()``."""
        ...

    @property
    def log(self) -> RobotLog:
        """The run's logger, bound to robot, tenant and run id."""
        ...

    @property
    def actor(self) -> str:
        """The audit actor of this robot (``robot:ronney``)."""
        ...

    def check_write(self, system: str, what: str) -> None:
        """Call before every external write: raises DryRunRefusal (and reports it) in a dry run."""
        ...

    def exclusive(self, key: str, *, wait_seconds: float | None = None) -> AbstractAsyncContextManager[None]:
        """``async with ctx.exclusive("payroll:<system>:<employee>:<period>"):`` around check, write, read-back.

        One holder per key across every worker and run (of any municipality), with a
        renewed lease; a target busy for longer than ``wait_seconds`` raises TargetLocked
        (an ApplicationError: the item is retried later).
        """
        ...

    def record(
        self,
        action: str,
        *,
        subject: str | None = None,
        purpose: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Write an audit event as this robot (e.g. an external write); returns its sequence number."""
        ...

    def record_access(self, *, subject: str, system: str, purpose: str, details: dict[str, Any] | None = None) -> int:
        """Write a data-access event: this robot read ``subject``'s data from ``system`` for ``purpose``."""
        ...

    @property
    def var_dir(self) -> Path:
        """The deployment's data folder (``var_dir``): a robot keeps its deployment data under its own name there."""
        ...

    def alert(self, key: str, message: str) -> bool:
        """Raise an operations alert once per ``key`` (dashboard and mail to ops); True when new."""
        ...

    def state_get(self, key: str) -> tuple[dict[str, Any], int] | None:
        """This robot's own state for this tenant under ``key`` (a JSON object) and its version, or None."""
        ...

    def state_put(self, key: str, value: dict[str, Any], *, expected_version: int | None = None) -> int | None:
        """Keep ``value`` under ``key``; the new version, or None when ``expected_version`` is not current (0 = write once)."""
        ...

    def save_artifact(
        self,
        *,
        work_item_id: int | None,
        kind: str,
        filename: str,
        content_type: str,
        data: bytes,
        sensitive: bool = True,
    ) -> int:
        """Attach a file (screenshot, snapshot, document) to a work item; returns its id."""
        ...


#: The settings model a robot is generic over (``Robot[RonneySettings]``). Covariant, with
#: BaseModel as its default, so a bare ``type[Robot]`` (the engine, the registry) holds every
#: robot class; a robot without settings writes ``Robot[NoSettings]``.
SettingsT = TypeVar("SettingsT", bound=BaseModel, default=BaseModel, covariant=True)


def _settings_parameter(cls: type) -> type[BaseModel] | None:
    """The concrete settings model ``cls`` gave its generic base (``Robot[RonneySettings]``), if any."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Robot):
            for arg in typing.get_args(base):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    return arg
    return None


class Robot(abc.ABC, Generic[SettingsT]):
    """Base class of every robot, generic over its settings model.

    Subclasses name their settings model as the type parameter (``Robot[RonneySettings]``),
    set the class attributes and implement :meth:`collect` and :meth:`process`.
    """

    #: Entry-point name, lower case (``ronney``).
    name: ClassVar[str]
    #: Name shown to people (``Ronney``).
    display_name: ClassVar[str]
    #: One sentence on what the robot does.
    description: ClassVar[str] = ""
    #: Pydantic model validating the robot's section ``[robots.<name>]`` of the settings; set
    #: from the type parameter (``Robot[RonneySettings]``) unless the class sets it itself.
    settings_model: ClassVar[type[BaseModel]] = NoSettings
    #: Deprecated and unused: time saved is measured per outcome from :attr:`effects`
    #: (docs/effects.md); kept so older plugins that set it still load.
    manual_minutes_per_item: ClassVar[float] = 0.0
    #: The robot's answers to the four questions (why, what value, when, how measured), its
    #: measures and the outcomes that replace manual work: the effects ledger (docs/effects.md).
    effects: ClassVar[EffectsDeclaration | None] = None
    #: Template (package-relative ``module:path``) used to render review items.
    review_template: ClassVar[str | None] = None
    #: The kinds of review item (``decision``, ``exception``, ``uncertain``) the template
    #: renders; the others get the web app's generic view of the engine's material.
    review_template_kinds: ClassVar[frozenset[str]] = frozenset({"decision"})
    #: What people see instead of a review queue's name, in Swedish (``{"ronney.application":
    #: "ansökningar"}`` is shown as "Ronney: ansökningar"); a queue without a label shows its
    #: name, the engine's ``<robot>.exceptions`` "<Robot>: undantag".
    queue_labels: ClassVar[Mapping[str, str]] = {}
    #: Translations of the Swedish texts the robot shows people (its queue labels, the ``_()``
    #: texts of its review template), per language: ``{"en": {"ansökningar": "applications"}}``.
    #: Looked up before the web app's own texts, so a plugin brings its English with it.
    messages: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    #: False when ``process`` writes to an external system in a way that must not be
    #: repeated blindly: an item whose worker died mid-process becomes ``uncertain`` and
    #: goes to a person instead of being retried.
    side_effects_repeatable: ClassVar[bool] = True
    #: Attempts before an item fails for good (None = the engine's setting).
    max_attempts: ClassVar[int | None] = None

    #: The validated section ``[robots.<name>]``, typed by the class's type parameter.
    settings: SettingsT

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "settings_model" not in cls.__dict__:
            model = _settings_parameter(cls)
            if model is not None:
                cls.settings_model = model

    def __init__(self, settings: SettingsT | None = None) -> None:
        if settings is None:
            value: BaseModel = self.settings_model()
        elif isinstance(settings, self.settings_model):
            value = settings
        else:
            # Settings of another (e.g. an older, equivalent) model: checked by this robot's own.
            value = self.settings_model.model_validate(settings.model_dump())
        # Safe: settings_model is the class's type parameter (or a subclass of it, see validate_class).
        self.settings = cast(SettingsT, value)

    @abc.abstractmethod
    def collect(self, ctx: RunContext) -> Iterable[NewItem] | AsyncIterator[NewItem]:
        """Find new work items; must only read. Re-collecting a known reference is a no-op."""

    @abc.abstractmethod
    async def process(self, ctx: RunContext, item: WorkItemView) -> Outcome:
        """Process one item; safe to run twice for the same item."""

    async def on_decision(self, ctx: RunContext, review: ReviewView) -> Carried | None:
        """Carry out a person's decision; return :class:`Carried` to tell the decider what was done.

        ``None`` (the default, which does nothing) is shown as "utfört" without details. A
        :class:`BusinessError`'s message is shown to the decider as the reason it failed, so
        robots write it in Swedish; any other failure is shown in general words.
        """
        return None

    async def recheck(self, ctx: RunContext, item: WorkItemView) -> Done | None:
        """Re-check an ``uncertain`` item (its worker died mid-write) without writing anything.

        Called by the engine at the start of a run, under a lease, for each uncertain item
        whose review no person has decided yet. Return :class:`Done` only when the target
        system shows the write complete and correct: the item is then done and its review
        closed by the robot. ``None`` (the default) or an exception leaves both to a person.
        Must only read.
        """
        return None

    def lapse_reason(self, review: ReviewView, now: datetime, zone: ZoneInfo) -> str | None:
        """Whether an open review item past its deadline has lost its point: the reason, or None.

        Asked by the kernel for each open item of this robot whose deadline has passed (at
        most once a minute per item). A reason (Swedish, for the case worker, nothing
        personal) closes the item as ``lapsed``: audited, shown in the inbox with the
        reason, nothing carried out, its work item settled. ``None`` (the default) keeps
        the item open, marked overdue ("Försenad") and escalated. ``now`` is UTC; ``zone``
        the deployment's local time zone. Pure: no I/O; an exception counts as None.
        """
        return None

    def cli(self) -> typer.Typer | None:
        """An optional typer app mounted as ``kollega <name> …``."""
        return None

    @classmethod
    def measure_effects(cls, facts: EffectFacts) -> Measured:
        """The month's figures from what happened (pure: no I/O); keys as :attr:`effects` declares them.

        The default measures nothing. A robot that declares :attr:`effects` overrides it.
        """
        return Measured()

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
        else:
            declared = next((_settings_parameter(k) for k in cls.__mro__ if _settings_parameter(k)), None)
            if declared is not None and not issubclass(cls.settings_model, declared):
                problems.append(
                    f"settings_model {cls.settings_model.__name__} is not the type parameter {declared.__name__}"
                )
        if getattr(cls, "__abstractmethods__", None):
            missing = ", ".join(sorted(cls.__abstractmethods__))
            problems.append(f"abstract methods not implemented: {missing}")
        effects = getattr(cls, "effects", None)
        if effects is not None:
            if not isinstance(effects, EffectsDeclaration):
                problems.append("effects must be an EffectsDeclaration")
            else:
                for what in ("why", "value", "when", "how_measured"):
                    if not getattr(effects, what).strip():
                        problems.append(f"effects.{what} must answer its question (it is empty)")
                for kind, keys in (
                    ("measure", [m.key for m in effects.measures]),
                    ("outcome", [o.key for o in effects.outcomes]),
                ):
                    if len(set(keys)) != len(keys):
                        problems.append(f"effects declares a {kind} key twice")
        kinds: object = getattr(cls, "review_template_kinds", frozenset())
        if not isinstance(kinds, frozenset | set) or not kinds <= {"decision", "exception", "uncertain"}:
            problems.append("review_template_kinds must be a set of 'decision', 'exception' and 'uncertain'")
        problems += _text_problems(cls)
        return problems


def _texts(table: object) -> bool:
    """Whether ``table`` maps strings to non-empty strings."""
    return isinstance(table, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in table.items()
    )


def _text_problems(cls: type[Robot]) -> list[str]:
    """What is wrong with a robot's ``queue_labels`` and ``messages`` (texts shown to people)."""
    problems: list[str] = []
    if not _texts(getattr(cls, "queue_labels", {})):
        problems.append("queue_labels must map queue names to non-empty Swedish texts")
    messages = getattr(cls, "messages", {})
    if not isinstance(messages, Mapping):
        return [*problems, "messages must map a language code to a table of texts"]
    for lang, table in messages.items():
        if lang == "sv":
            problems.append("messages['sv'] is not needed: the Swedish text is the message id")
        elif not (isinstance(lang, str) and len(lang) == 2 and lang.isalpha() and lang.islower()):
            problems.append(f"messages has {lang!r}, which is not a two-letter language code")
        elif not _texts(table):
            problems.append(f"messages[{lang!r}] must map Swedish texts to non-empty translations")
    return problems
