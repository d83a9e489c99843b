"""The sandbox's shared state: seed, options, generated data, clock, faults and the write log.

One :class:`SandboxState` lives on ``app.state.sandbox``; every system router reaches it
through ``request.app.state.sandbox`` (or the :func:`get_state` dependency). It is the hook
for system modules written separately (``sandbox/payroll.py``, ``sandbox/oidc.py``):

* ``state.data`` — the generated data; ``state.employees`` is the employee list that the
  scheduling system serves and the payroll application must know.
* ``state.faults_for(system)`` — the :class:`FaultSettings` for a system, including the
  settings only an HTML application acts on (``session_expiry_after``, ``alt_layout``).
* ``state.store(name, factory)`` — a per-system mutable store (what was written), created
  on first use and dropped on reset.
* ``state.log.record(system, action, key, details)`` — the write log that
  ``GET /admin/state/{system}`` shows, with counts per action and key.
* ``state.register_inspector(system, fn)`` — extra, system-specific content for
  ``GET /admin/state/{system}``; ``state.register_reset_hook(fn)`` — called after a reset.
* ``state.rng(*parts)`` — a ``random.Random`` derived from the seed and the given parts,
  so that each system's randomness is independent of the others'.

Everything runs on the server's one event loop, so no locks are needed.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.geography import geography

__all__ = [
    "SYSTEMS",
    "TZ",
    "FaultRuntime",
    "FaultSettings",
    "SandboxClock",
    "SandboxData",
    "SandboxOptions",
    "SandboxState",
    "WriteEntry",
    "WriteLog",
    "get_state",
]

#: Local time of every generated timestamp (ISO 8601 with offset).
TZ = ZoneInfo("Europe/Stockholm")

#: The systems the sandbox plays; each is served under ``/<name>`` and has its own faults.
SYSTEMS: tuple[str, ...] = (
    "eservice",
    "registers",
    "staffing",
    "sms",
    "homecare",
    "scheduling",
    "payroll",
    "oidc",
    "vault",
    "saml",
    "oep",  # the e-service played as Open ePlatform (sandbox/open_eplatform.py)
)

T = TypeVar("T")


class SandboxOptions(BaseModel):
    """Volumes and knobs of one sandbox; defaults are one night in Ronneby."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    today: date = Field(date(2026, 11, 23), description="The day of the night run; all data is relative to it.")
    tenant: str = Field("1081", description="Kommunkod of the municipality played (Ronneby).")
    municipality: str = Field("Ronneby kommun", description="Its name; by default the one of the tenant's geography.")
    # income support
    applications: int = Field(500, ge=0, le=20_000, description="Applications for the coming month.")
    reapplication_share: float = Field(0.7, ge=0, le=1)
    undeclared_income_rate: float = Field(
        0.1, ge=0, le=1, description="Applications with a register income not declared."
    )
    anomaly_rate: float = Field(0.04, ge=0, le=1, description="Applications with deliberately bad data.")
    protected_identity_rate: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Applications where a household member has protected personal data (sekretessmarkering, "
        "sometimes skyddad folkbokföring too).",
    )
    # staffing
    substitutes: int = Field(120, ge=0, le=495, description="At most the 495 numbers reserved for fiction.")
    open_shifts: int = Field(
        40, ge=0, le=5_000, description="Open shifts over the staffing horizon (one night's work)."
    )
    staffing_horizon_days: int = Field(3, ge=1, le=62)
    # home care
    homecare_visits: int = Field(300, ge=0, le=5_000, description="Visits tomorrow, over all groups.")
    homecare_staff: int = Field(45, ge=0, le=1_000, description="Staff on duty tomorrow, over all groups.")
    homecare_groups: int = Field(1, ge=1, le=5)
    double_staffing_share: float = Field(0.1, ge=0, le=1)
    # scheduling / payroll
    employees: int = Field(800, ge=0, le=20_000)
    payroll_latency_ms: tuple[float, float] | None = Field(
        None, description="Payroll pages take between these many ms (None: the payroll app's own default)."
    )
    # clock and SMS
    clock_start: datetime | None = Field(None, description="Start of the sandbox clock; default today 07:00 local.")
    time_scale: float = Field(1.0, ge=0, le=10_000, description="Sandbox seconds per real second (0 = frozen).")
    sms_webhook_url: str | None = None
    export_root: Path | None = Field(None, description="If set, CSV exports may only be written below it.")

    @model_validator(mode="before")
    @classmethod
    def _municipality_of_tenant(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tenant" in data and "municipality" not in data:
            return {**data, "municipality": geography(str(data["tenant"])).municipality}
        return data

    @field_validator("clock_start")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=TZ)
        return value

    def start_of_clock(self) -> datetime:
        """When the sandbox clock starts: ``clock_start`` or today at 07:00 local time."""
        if self.clock_start is not None:
            return self.clock_start
        return datetime.combine(self.today, datetime.min.time(), TZ).replace(hour=7)


class FaultSettings(BaseModel):
    """Faults injected into one system's requests; the defaults inject nothing.

    Order per request: maintenance page → hang → latency → error before the handler →
    handler → error after the handler (the write happened, the client sees a failure).
    """

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0, ge=0, le=600_000, description="Fixed delay added to every request.")
    jitter_ms: float = Field(0, ge=0, le=600_000, description="Extra delay, uniform in [0, jitter_ms].")
    error_rate: float = Field(0, ge=0, le=1, description="Share of requests answered with error_status.")
    error_status: Literal[429, 500, 502, 503, 504] = 503
    retry_after_seconds: int | None = Field(None, ge=0, le=3600, description="Retry-After on injected errors.")
    fail_next: int = Field(0, ge=0, description="The next N requests fail before reaching the handler.")
    fail_after_processing_next: int = Field(0, ge=0, description="The next N requests are processed, then fail.")
    hang_rate: float = Field(0, ge=0, le=1, description="Share of requests that hang (until the client gives up).")
    hang_next: int = Field(0, ge=0, description="The next N requests hang.")
    hang_seconds: float = Field(120, gt=0, le=3600, description="A hanging request answers 504 after this long.")
    maintenance: bool = Field(False, description="Every request gets the maintenance page (503, HTML).")
    methods: list[str] | None = Field(None, description="Only requests with these methods are affected.")
    path_prefix: str | None = Field(None, description="Only paths below /<system><path_prefix> are affected.")
    session_expiry_after: int | None = Field(None, ge=1, description="Payroll: a session expires after N requests.")
    alt_layout: bool = Field(False, description="Payroll: the alternative page layout (other ids/classes).")

    @field_validator("methods")
    @classmethod
    def _upper(cls, value: list[str] | None) -> list[str] | None:
        return [m.upper() for m in value] if value is not None else None


@dataclass
class FaultRuntime:
    """A system's fault settings plus what changes per request: counters, RNG, statistics."""

    settings: FaultSettings
    rng: random.Random
    fail_next: int = 0
    fail_after_processing_next: int = 0
    hang_next: int = 0
    stats: Counter[str] = field(default_factory=Counter)

    @classmethod
    def create(cls, settings: FaultSettings, rng: random.Random) -> FaultRuntime:
        """Runtime state for freshly set ``settings``."""
        return cls(
            settings=settings,
            rng=rng,
            fail_next=settings.fail_next,
            fail_after_processing_next=settings.fail_after_processing_next,
            hang_next=settings.hang_next,
        )

    def describe(self) -> dict[str, Any]:
        """Settings, remaining counters and statistics, for the admin API."""
        return {
            "settings": self.settings.model_dump(mode="json"),
            "remaining": {
                "fail_next": self.fail_next,
                "fail_after_processing_next": self.fail_after_processing_next,
                "hang_next": self.hang_next,
            },
            "stats": dict(self.stats),
        }


class SandboxClock:
    """The sandbox's notion of now: a start time moving at ``time_scale`` × real time, plus manual jumps.

    Only time-dependent behaviour uses it (SMS replies appearing, timestamps of writes);
    generated data depends on ``options.today`` alone.
    """

    def __init__(self, start: datetime, time_scale: float = 1.0, monotonic: Callable[[], float] = time.monotonic):
        self._monotonic = monotonic
        self._base = start
        self._t0 = monotonic()
        self.time_scale = time_scale

    def now(self) -> datetime:
        """The current sandbox time (aware, Europe/Stockholm)."""
        elapsed = (self._monotonic() - self._t0) * self.time_scale
        return (self._base + timedelta(seconds=elapsed)).astimezone(TZ)

    def _rebase(self) -> None:
        self._base = self.now()
        self._t0 = self._monotonic()

    def advance(self, seconds: float) -> datetime:
        """Jump forward (or back) by ``seconds``; returns the new now."""
        self._rebase()
        self._base += timedelta(seconds=seconds)
        return self.now()

    def set(self, when: datetime, time_scale: float | None = None) -> datetime:
        """Jump to ``when`` (naive = local time); optionally change the speed."""
        self._base = when if when.tzinfo else when.replace(tzinfo=TZ)
        self._t0 = self._monotonic()
        if time_scale is not None:
            self.time_scale = time_scale
        return self.now()

    def set_scale(self, time_scale: float) -> None:
        """Change the speed from now on."""
        self._rebase()
        self.time_scale = time_scale


@dataclass
class WriteEntry:
    """One write an external party made to a sandbox system."""

    seq: int
    system: str
    action: str
    key: str
    at: str
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "seq": self.seq,
            "system": self.system,
            "action": self.action,
            "key": self.key,
            "at": self.at,
            "details": self.details,
        }


class WriteLog:
    """Append-only record of writes per system, for tests: what was written where, how many times."""

    def __init__(self, clock: SandboxClock) -> None:
        self._clock = clock
        self._entries: list[WriteEntry] = []

    def record(self, system: str, action: str, key: str, details: dict[str, Any] | None = None) -> WriteEntry:
        """Append one write (``action`` such as ``decision.created``, ``key`` such as an application id)."""
        entry = WriteEntry(
            seq=len(self._entries) + 1,
            system=system,
            action=action,
            key=key,
            at=self._clock.now().isoformat(timespec="seconds"),
            details=dict(details or {}),
        )
        self._entries.append(entry)
        return entry

    def entries(self, system: str | None = None, action: str | None = None, since: int = 0) -> list[WriteEntry]:
        """Entries, optionally of one system and action, with ``seq > since``."""
        return [
            e
            for e in self._entries
            if e.seq > since and (system is None or e.system == system) and (action is None or e.action == action)
        ]

    def counts(self, system: str) -> dict[str, dict[str, int]]:
        """``{action: {key: count}}`` for one system."""
        out: dict[str, Counter[str]] = {}
        for e in self.entries(system):
            out.setdefault(e.action, Counter())[e.key] += 1
        return {action: dict(counter) for action, counter in out.items()}

    def count(self, system: str, action: str, key: str | None = None) -> int:
        """How many times ``action`` happened in ``system`` (for ``key``, if given)."""
        return sum(1 for e in self.entries(system, action) if key is None or e.key == key)

    def clear(self) -> None:
        """Forget everything (on reset)."""
        self._entries.clear()


@dataclass
class SandboxData:
    """Everything generated from the seed. Lists hold JSON-ready dicts, as the API serves them.

    ``truth`` holds what a real system would not tell (which applicants left an income out,
    which substitute answers how): the admin API shows it to tests, never the system APIs.
    """

    applications: list[dict[str, Any]] = field(default_factory=list)
    registers: dict[str, dict[str, Any]] = field(default_factory=dict)
    substitutes: list[dict[str, Any]] = field(default_factory=list)
    shifts: list[dict[str, Any]] = field(default_factory=list)
    homecare: dict[str, Any] = field(default_factory=dict)
    employees: list[dict[str, Any]] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    #: personnummer → {"sekretessmarkering": bool, "skyddad_folkbokforing": bool}, for the marked only.
    protected_identities: dict[str, dict[str, bool]] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Sizes, for the admin API and logs."""
        return {
            "applications": len(self.applications),
            "register_persons": len(self.registers),
            "substitutes": len(self.substitutes),
            "shifts": len(self.shifts),
            "homecare_visits": len(self.homecare.get("visits", [])),
            "homecare_staff": len(self.homecare.get("staff", [])),
            "employees": len(self.employees),
            "schedules": len(self.schedules),
        }


Generator = Callable[[int, SandboxOptions], SandboxData]


class SandboxState:
    """The one mutable object behind the sandbox app (see the module docstring for the hooks)."""

    def __init__(self, seed: int, options: SandboxOptions, generator: Generator) -> None:
        self._generator = generator
        self._inspectors: dict[str, Callable[[SandboxState], dict[str, Any]]] = {}
        self._reset_hooks: list[Callable[[SandboxState], None]] = []
        self.seed = seed
        self.options = options
        self.clock = SandboxClock(options.start_of_clock(), options.time_scale)
        self.log = WriteLog(self.clock)
        self.stores: dict[str, Any] = {}
        self.faults: dict[str, FaultRuntime] = {}
        self.requests: dict[str, Counter[str]] = {}
        self.generation = 0
        self.data = generator(seed, options)
        self._init_faults()

    # --- lifecycle ---------------------------------------------------------------------------

    def reset(self, seed: int | None = None, options: SandboxOptions | None = None) -> None:
        """Regenerate everything from ``seed`` (default: the current one) and forget all writes and faults."""
        self.seed = self.seed if seed is None else seed
        self.options = options or self.options
        self.generation += 1
        self.clock.set(self.options.start_of_clock(), self.options.time_scale)
        self.log.clear()
        self.stores.clear()
        self.requests.clear()
        self.data = self._generator(self.seed, self.options)
        self._init_faults()
        for hook in self._reset_hooks:
            hook(self)

    def register_reset_hook(self, hook: Callable[[SandboxState], None]) -> None:
        """Call ``hook(state)`` after every reset (for modules that keep their own derived data)."""
        self._reset_hooks.append(hook)

    # --- randomness --------------------------------------------------------------------------

    def rng(self, *parts: object) -> random.Random:
        """A generator seeded by the seed and ``parts`` (string seeding is stable across runs)."""
        return random.Random(":".join([str(self.seed), *map(str, parts)]))

    # --- faults ------------------------------------------------------------------------------

    def _init_faults(self) -> None:
        self._fault_sets: Counter[str] = Counter()
        self.faults = {s: FaultRuntime.create(FaultSettings(), self.rng("faults", s, 0)) for s in SYSTEMS}

    def set_faults(self, system: str, settings: FaultSettings) -> FaultRuntime:
        """Replace a system's faults; the fault RNG restarts, so a run is reproducible per seed."""
        self._check_system(system)
        self._fault_sets[system] += 1
        previous = self.faults[system].stats
        runtime = FaultRuntime.create(settings, self.rng("faults", system, self._fault_sets[system]))
        runtime.stats = previous
        self.faults[system] = runtime
        return runtime

    def clear_faults(self, system: str) -> None:
        """No faults for ``system`` any more."""
        self.set_faults(system, FaultSettings())

    def faults_for(self, system: str) -> FaultSettings:
        """The current fault settings of ``system``."""
        self._check_system(system)
        return self.faults[system].settings

    @staticmethod
    def _check_system(system: str) -> None:
        if system not in SYSTEMS:
            raise KeyError(system)

    # --- stores and inspection --------------------------------------------------------------

    def store(self, name: str, factory: Callable[[], T]) -> T:
        """The mutable store called ``name``, created with ``factory()`` on first use after a reset."""
        if name not in self.stores:
            self.stores[name] = factory()
        return self.stores[name]  # type: ignore[no-any-return]

    def register_inspector(self, system: str, inspector: Callable[[SandboxState], dict[str, Any]]) -> None:
        """Add ``inspector(state)``'s dict to ``GET /admin/state/{system}``."""
        self._check_system(system)
        self._inspectors[system] = inspector

    def count_request(self, system: str, outcome: str) -> None:
        """Count one request to ``system`` by outcome (``handled``, ``error``, ``hang`` …)."""
        self.requests.setdefault(system, Counter())[outcome] += 1

    def inspect(self, system: str) -> dict[str, Any]:
        """What tests may check about ``system``: writes, counts, requests, faults and system-specific state."""
        self._check_system(system)
        out: dict[str, Any] = {
            "system": system,
            "seed": self.seed,
            "requests": dict(self.requests.get(system, Counter())),
            "faults": self.faults[system].describe(),
            "write_counts": self.log.counts(system),
            "writes": [e.as_dict() for e in self.log.entries(system)],
        }
        inspector = self._inspectors.get(system)
        if inspector is not None:
            out.update(inspector(self))
        return out

    # --- conveniences ------------------------------------------------------------------------

    @property
    def employees(self) -> list[dict[str, Any]]:
        """The employees of the scheduling system, which the payroll application knows too."""
        return self.data.employees

    @property
    def today(self) -> date:
        """The day of the night run."""
        return self.options.today

    def now(self) -> datetime:
        """Sandbox clock time."""
        return self.clock.now()

    def now_iso(self) -> str:
        """Sandbox clock time as ISO 8601 with offset, to the second."""
        return self.clock.now().isoformat(timespec="seconds")

    def utc_now(self) -> datetime:
        """Sandbox clock time in UTC."""
        return self.clock.now().astimezone(UTC)


def get_state(request: Request) -> SandboxState:
    """FastAPI dependency: the sandbox state of the app serving ``request``."""
    state: SandboxState = request.app.state.sandbox
    return state
