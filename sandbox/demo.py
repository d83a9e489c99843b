"""The demo's wiring: a sandbox per municipality, one full night of every robot, demo accounts.

Everything runs on this machine: the sandbox plays the municipality's external systems
over real HTTP, the robots work against it on the deployment's database (the embedded
SQLite file unless one is configured), and the web app serves the review inbox and the
operations dashboard afterwards (``kollega demo``, :mod:`sandbox.commands`).

The demo's own settings live in ``config/demo.toml`` (:class:`DemoSettings`): the
sandbox's size, where each connector finds its system on a sandbox, the sandbox's demo
passwords, and robot settings for a night compressed into minutes. They are laid under
the deployment's settings object; nothing is written to the environment. Every installed
robot takes part, on the same terms: its section of ``config/demo.toml`` if it has one,
the deployment's settings and its defaults otherwise.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from core.cli.runs import run_many
from core.clock import Clock, SystemClock, local_today
from core.engine import Engine, RunSummary
from core.errors import ConfigError
from core.logging import get_logger
from core.registry import Registry
from core.scheduler import night_jobs
from core.settings import PROJECT_ROOT, SHARED_KEY, SecretRef, Settings, describe_validation_error
from core.storage.db import Database
from core.storage.web_models import Role, User

log = get_logger("kollega.demo")

#: The demo's settings file (read by the demo only).
DEMO_CONFIG = PROJECT_ROOT / "config" / "demo.toml"


class SandboxSection(BaseModel):
    """``[sandbox]``: the sandboxes the demo starts, one per municipality."""

    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(default="1081", pattern=r"^\d{4}$", description="Played when no tenant is configured.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Sandbox options (sandbox.state.SandboxOptions fields): its size."
    )
    systems: dict[str, str] = Field(
        default_factory=dict, description="Connector section → its system's path under a sandbox's URL."
    )
    apis: dict[str, str] = Field(
        default_factory=dict,
        description="A section's api (e.g. open_eplatform) → its path under a sandbox's URL, over systems'.",
    )


class DemoSettings(BaseModel):
    """``config/demo.toml``: what the demo changes for its one night."""

    model_config = ConfigDict(extra="forbid")

    backoff_base_seconds: float = Field(default=1.0, ge=0, description="The first retry waits at most this long.")
    worker_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often the worker beside the inbox looks for decisions to carry out."
    )
    sandbox: SandboxSection = Field(default_factory=SandboxSection)
    passwords: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Robot → secret setting → the sandbox's published demo password."
    )
    robots: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Robot → settings laid under its deployment section for the demo."
    )
    web: dict[str, Any] = Field(
        default_factory=dict,
        description="Web settings laid under the deployment's [web] (e.g. mfa_required = false: a banner says so).",
    )


def load_demo_settings(path: Path = DEMO_CONFIG) -> DemoSettings:
    """Read the demo's settings; ConfigError naming the file and key when they are not valid."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"the demo's settings file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the demo's settings file {path} is not valid TOML: {exc}") from None
    try:
        return DemoSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc)}") from None


# -- settings for the demo's night ---------------------------------------------------------
def _resolves(value: Any) -> bool:
    """True when ``value`` is a secret reference whose secret is there."""
    try:
        SecretRef.model_validate(value).resolve()
    except (ValidationError, ConfigError):
        return False
    return True


def apply_demo_settings(settings: Settings, demo: DemoSettings, registry: Registry) -> None:
    """Lay the demo's settings under ``settings`` for every robot of ``registry`` (in place).

    A robot's section of the demo goes under its deployment section (the deployment's own
    keys win). A sandbox password is handed over as a secret file under ``var/demo/``,
    unless the deployment's reference for that setting already resolves.
    """
    # A night compressed into minutes: transient failures are retried seconds apart.
    settings.worker = settings.worker.model_copy(
        update={
            "backoff_base_seconds": min(settings.worker.backoff_base_seconds, demo.backoff_base_seconds),
            # A decision made in the demo's inbox is carried out within seconds.
            "poll_seconds": min(settings.worker.poll_seconds, demo.worker_poll_seconds),
        }
    )
    # The deployment's own [web] keys win, as for robots.
    settings.web = {**demo.web, **settings.web}
    for name in sorted(registry.robots):
        own = settings.robots.get(name, {})
        section = {**demo.robots.get(name, {}), **own}
        for key, password in demo.passwords.get(name, {}).items():
            if not _resolves(own.get(key)):
                section[key] = {"file": str(_secret_file(settings, f"{name}-{key}", password))}
        if section or name in settings.robots:
            settings.robots[name] = section


def _secret_file(settings: Settings, name: str, value: str) -> Path:
    folder = settings.var_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(value, encoding="utf-8")
    return path


def point_connectors_at(
    settings: Settings,
    base_url: str,
    systems: dict[str, str],
    tenant: str | None = None,
    apis: dict[str, str] | None = None,
) -> None:
    """Declare each connector section of ``systems`` at its system on a running sandbox.

    With ``tenant`` the sections go into that municipality's own ``connectors`` (the
    deployment's keys for the system, e.g. its timeouts, copied under them): each
    municipality's systems are declared explicitly, never shared by accident. Without it
    (a deployment naming no municipality) the deployment's sections change.
    """
    own = next((t for t in settings.tenants if t.code == tenant), None) if tenant else None
    if tenant and own is None:
        raise ConfigError(f"no tenant {tenant} in the settings")
    for system, path in systems.items():
        declared = {**settings.connectors.get(system, {}), **(own.connectors.get(system, {}) if own else {})}
        # A section naming its API (e.g. Open ePlatform) finds that API's stand-in on the sandbox.
        path = (apis or {}).get(str(declared.get("api") or ""), path)
        url = f"{base_url.rstrip('/')}/{path}"
        if own is not None:
            common = {k: v for k, v in settings.connectors.get(system, {}).items() if k != SHARED_KEY}
            own.connectors[system] = {**common, **own.connectors.get(system, {}), "base_url": url}
        else:
            settings.connectors[system] = {**settings.connectors.get(system, {}), "base_url": url}


# -- sandboxes -----------------------------------------------------------------------------
def sandbox_today(settings: Settings, clock: Clock) -> date:
    """The demo sandboxes' day: today in the deployment's time zone by the robots' own clock.

    The robots count "tomorrow" (Lena) and "the coming month" (Ronney) from the same
    :func:`core.clock.local_today`, so the sandbox's data is always for the day and month
    they ask for, also between midnight and 01:00/02:00 local time when the UTC date lags.
    """
    return local_today(clock, settings.timezone)


@contextmanager
def sandbox(seed: int, tenant: str, options: dict[str, Any], today: date) -> Iterator[str]:
    """A sandbox playing ``tenant``'s systems for the day ``today`` on a free local port; yields its base URL."""
    from sandbox.testing import running_sandbox

    with running_sandbox(seed=seed, **{**options, "today": today, "tenant": tenant}) as base_url:
        yield base_url


@contextmanager
def sandboxes(
    settings: Settings, demo: DemoSettings, seed: int, clock: Clock | None = None
) -> Iterator[dict[str, str]]:
    """One sandbox per configured municipality (a different seed each), connectors pointed at them.

    Every municipality gets its own sections (``connectors`` in its ``[[tenants]]`` entry),
    as municipalities sharing one deployment declare them; a deployment naming none gets
    one sandbox behind its ``[connectors.*]``. Each plays :func:`sandbox_today` by ``clock``
    (the robots' clock). Yields kommunkod → sandbox URL.
    """
    codes = [t.code for t in settings.tenants] or [demo.sandbox.tenant]
    today = sandbox_today(settings, clock or SystemClock())
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        for i, code in enumerate(codes):
            urls[code] = stack.enter_context(sandbox(seed + i, code, demo.sandbox.options, today))
            point_connectors_at(
                settings,
                urls[code],
                demo.sandbox.systems,
                tenant=code if settings.tenants else None,
                apis=demo.sandbox.apis,
            )
        yield urls


# -- the night -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoNight:
    """What one demo night did: the sandboxes, the (robot, tenant) runs in order, their summaries."""

    urls: dict[str, str]
    jobs: list[tuple[str, str]]
    summaries: list[RunSummary]
    #: The engine the night ran on (the worker beside the inbox uses it too).
    engine: Engine | None = None

    @property
    def failed(self) -> bool:
        """True when a run failed (the demo then exits 1)."""
        return any(s.status.value == "failed" for s in self.summaries)


@contextmanager
def demo_night(
    settings: Settings,
    db: Database,
    registry: Registry,
    demo: DemoSettings,
    *,
    seed: int = 1,
    clock: Clock | None = None,
    show_progress: bool = True,
    on_ready: Callable[[dict[str, str], list[tuple[str, str]]], None] | None = None,
) -> Iterator[DemoNight]:
    """Start the sandboxes, run every robot of ``registry`` for every tenant, yield the night.

    The night's order is the scheduler's (:func:`core.scheduler.night_jobs`): enabled
    schedules in firing order, robots without a schedule after them. The sandboxes keep
    running while the caller is inside the block (the inbox links to them). ``on_ready``
    is told the sandboxes and the runs before they start.
    """
    apply_demo_settings(settings, demo, registry)
    # One clock for the robots, the night's order and the sandboxes' day: one "today".
    clock = clock or SystemClock()
    engine = Engine.from_database(db, settings, registry, clock=clock)
    with sandboxes(settings, demo, seed, clock) as urls:
        # Each municipality of the deployment gets a sandbox of its own (its own systems,
        # people and schedules); the robots run for all of them, sharing one database.
        jobs = night_jobs(settings, registry, clock)
        if on_ready is not None:
            on_ready(urls, jobs)
        summaries = asyncio.run(run_many(engine, jobs, trigger="manual", show_progress=show_progress))
        yield DemoNight(urls, jobs, summaries, engine)


# -- the worker beside the inbox -----------------------------------------------------------
@contextmanager
def worker_beside(engine: Engine, *, stop_timeout: float = 60.0) -> Iterator[threading.Thread]:
    """Run a worker (:class:`core.worker.Worker`) in a thread while the caller serves the inbox.

    The demo's decisions are carried out by it within seconds, as ``kollega worker`` does in
    a deployment. Leaving the block (the inbox stopped, e.g. by Ctrl-C) stops the worker
    after the decision it is carrying out, and waits for it.
    """
    from core.worker import Worker

    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        started.set()
        await Worker(engine).serve(box["stop"])

    def run() -> None:
        try:
            asyncio.run(main())
        except Exception:
            log.error("the demo's worker stopped", exc_info=True)
        finally:
            started.set()

    thread = threading.Thread(target=run, name="kollega-demo-worker", daemon=True)
    thread.start()
    started.wait()
    try:
        yield thread
    finally:
        loop, stop = box.get("loop"), box.get("stop")
        if loop is not None and stop is not None and thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join(stop_timeout)


# -- accounts --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoUser:
    """A demo account printed for the newcomer."""

    username: str
    password: str
    role: Role
    tenant: str
    queue: str = ""


#: One demo account per role and tenant: user-name prefix and role.
DEMO_ROLES: tuple[tuple[str, Role], ...] = (
    ("handlaggare", Role.case_worker),
    ("samordnare", Role.coordinator),
    ("drift", Role.operations),
    ("it", Role.it_admin),
    ("revisor", Role.auditor),
)


def demo_users(db: Database, tenants: list[str], queues: dict[str, list[str]]) -> list[DemoUser]:
    """Create one account per role and tenant (once; later demos reuse them with new passwords)."""
    from core import audit
    from core.web.auth import Grant, create_user, hash_password

    made: list[DemoUser] = []
    for tenant in tenants:
        for prefix, role in DEMO_ROLES:
            username = f"{prefix}.{tenant}"
            password = secrets.token_urlsafe(9)
            grants = (
                {Grant(role, tenant, q) for q in queues.get(tenant, [])}
                if role == Role.case_worker
                else {Grant(role, tenant)}
            )
            with db.session() as s:
                row = s.scalar(select(User).where(User.username == username))
                if row is not None:
                    row.password_hash, row.failed_logins, row.locked_until = hash_password(password), 0, None
                    audit.append(s, actor="system:demo", action="user.password_set", subject=f"user:{username}")
            if row is None:
                create_user(db, username, display_name=f"Demo {prefix} {tenant}", password=password, grants=grants)
            made.append(DemoUser(username, password, role, tenant))
    return made
