"""Deployment settings: ``config/kollega.toml`` plus ``KOLLEGA_*`` environment overrides.

Secrets are never written inline: a secret setting is a reference, ``{env = "NAME"}`` or
``{file = "/run/secrets/name"}``, resolved only when used. Each robot's section
``[robots.<name>]`` is validated by that robot's own ``settings_model``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from core.errors import ConfigError, SecretUnavailable

#: The key of a deployment's ``[connectors.<system>]`` that lists the municipalities sharing it.
SHARED_KEY = "shared_by"
#: Connector sections describing this machine's own tools, not an external system: every
#: municipality's runs use the deployment's section (with their own keys over it).
LOCAL_SECTIONS = frozenset({"browser"})

#: The repository (or installation) root: config/, schedules/ and var/ live below it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "kollega.toml"
#: The key of a robot section naming the robot for people (not one of its settings).
DISPLAY_NAME_KEY = "display_name"


class SecretRef(BaseModel):
    """A reference to a secret held outside the configuration: an env var, a file or a Vault entry.

    ``{vault = "path#key"}`` names key ``key`` of the KV v2 secret ``path`` under the mount
    ``[vault] mount_point`` (see :mod:`core.vault`). The engine reads every secret of a
    robot's settings when a run starts (:func:`core.vault.load_secrets`), so a rotated
    secret is used from the next run on; :meth:`resolve` then returns what was read.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = Field(default=None, description="Name of the environment variable holding the secret.")
    file: Path | None = Field(default=None, description="Path of a file holding the secret (e.g. a Docker secret).")
    vault: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.\-/]+#[A-Za-z0-9_.\-]+$",
        description="A HashiCorp Vault KV v2 entry, 'path#key' (path under [vault] mount_point).",
    )
    #: The value read when the run started (None: read at each resolve()).
    _loaded: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline(cls, data: Any) -> Any:
        if isinstance(data, str):
            raise ValueError(
                'secrets must be given by reference, {env = "NAME"}, {file = "/path"} or '
                '{vault = "path#key"}, never inline'
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if sum(v is not None for v in (self.env, self.file, self.vault)) != 1:
            raise ValueError("a secret reference needs exactly one of 'env', 'file' or 'vault'")
        return self

    @property
    def reference(self) -> str:
        """The reference in words, for messages: ``env KOLLEGA_X``, ``file /p``, ``vault p#k``."""
        if self.env is not None:
            return f"env {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return f"vault {self.vault}"

    def read(self) -> str:
        """Read the secret from its source now; SecretUnavailable naming the reference, never a value."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise SecretUnavailable(f"secret environment variable {self.env} is not set")
            return value
        if self.file is not None:
            try:
                return self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SecretUnavailable(f"secret file {self.file} cannot be read: {exc.strerror}") from None
        from core.vault import read_vault_secret

        assert self.vault is not None
        return read_vault_secret(self.vault)

    def load(self) -> None:
        """Read the secret now and keep it for :meth:`resolve` (the engine does this as a run starts)."""
        self._loaded = self.read()

    def resolve(self) -> str:
        """The secret: as loaded when the run started, else read now; SecretUnavailable when missing."""
        if self._loaded is not None:
            return self._loaded
        return self.read()

    def masked(self) -> str:
        """The reference with the value hidden, for listings (``•••• (vault p#k)``)."""
        return f"•••• ({self.reference})"

    def __repr__(self) -> str:
        if self.env:
            return f"SecretRef(env={self.env!r})"
        if self.file:
            return f"SecretRef(file={str(self.file)!r})"
        return f"SecretRef(vault={self.vault!r})"


class VaultSettings(BaseModel):
    """Where secrets ``{vault = "path#key"}`` are read: a HashiCorp Vault KV v2 engine (``[vault]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://", description="Vault's address, e.g. https://vault.kommun.example:8200.")
    auth: Literal["token", "approle"] = Field(default="token", description="How Kollega logs in: token or approle.")
    token: SecretRef | None = Field(
        default=None, description="For auth = token: the Vault token, by env or file reference."
    )
    role_id: str | None = Field(default=None, description="For auth = approle: the role's RoleID.")
    secret_id: SecretRef | None = Field(
        default=None, description="For auth = approle: the SecretID, by env or file reference."
    )
    approle_mount: str = Field(default="approle", description="The path the AppRole auth method is mounted at.")
    mount_point: str = Field(default="secret", description="The path the KV version 2 engine is mounted at.")
    namespace: str | None = Field(default=None, description="Vault Enterprise namespace; empty = none.")
    ca_file: Path | None = Field(default=None, description="CA bundle to verify Vault's TLS certificate.")
    timeout_seconds: float = Field(default=10, gt=0, description="How long one call to Vault may take.")

    @model_validator(mode="after")
    def _credentials_for_auth(self) -> VaultSettings:
        for ref in (self.token, self.secret_id):
            if ref is not None and ref.vault is not None:
                raise ValueError("Vault's own credentials cannot come from Vault: use env or file")
        if self.auth == "token" and self.token is None:
            raise ValueError('auth = "token" needs token = { env = "NAME" } (or a file)')
        if self.auth == "approle" and (self.role_id is None or self.secret_id is None):
            raise ValueError('auth = "approle" needs role_id and secret_id = { env = "NAME" } (or a file)')
        return self


class RetentionSettings(BaseModel):
    """How long personal data in finished work is kept (``[retention]``, or per tenant).

    Purging clears the data (payloads, results, review material, comments, personnummer)
    and deletes artifacts; the rows, their status and the audit log stay, so the chain
    still verifies and the statistics still add up. ``None`` in a tenant's section means
    "as the deployment's default".
    """

    model_config = ConfigDict(extra="forbid")

    work_item_days: int | None = Field(
        default=None, ge=1, description="Days after an item finished before its payload and result are cleared."
    )
    review_days: int | None = Field(
        default=None, ge=1, description="Days after a decision before the review item's material is cleared."
    )
    artifact_days: int | None = Field(
        default=None,
        ge=1,
        description="Days before screenshots and snapshots are deleted (default: artifact_retention_days).",
    )


class TenantSettings(BaseModel):
    """A municipality served by this deployment."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\d{4}$", description="The kommunkod, four digits (Ronneby: 1081).")
    name: str = Field(description="The municipality's name, e.g. 'Ronneby kommun'.")
    ops_email: str | None = Field(default=None, description="Where alerts about failed nights are mailed.")
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings, description="This municipality's own retention periods, where they differ."
    )
    connectors: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="This municipality's own systems, one section per system; over [connectors.<system>] only "
        "when that one is shared with it (shared_by).",
    )
    robots: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="This municipality's own robot settings, one section per robot ([tenants.robots.<name>]): "
        "each key replaces the deployment's [robots.<name>] key; display_name names the robot here.",
    )
    days_off: dict[date, str] = Field(
        default_factory=dict,
        description="The municipality's own non-working days in the 'workdays' calendar (klämdagar, local "
        'closures): date = "why", e.g. "2026-05-15" = "Klämdag".',
    )
    effect_minutes: dict[str, float] = Field(
        default_factory=dict,
        description="The municipality's own measured minutes a person needs by hand per outcome, keyed "
        "'<robot>.<outcome>' (e.g. 'ronney.application_prepared' = 18); an outcome not named here counts with "
        "the robot's documented estimate, labelled as one (docs/effects.md).",
    )

    @field_validator("effect_minutes")
    @classmethod
    def _minutes_sane(cls, value: dict[str, float]) -> dict[str, float]:
        for key, minutes in value.items():
            if "." not in key:
                raise ValueError(f"effect_minutes key {key!r} must be '<robot>.<outcome>'")
            if not 0 <= minutes <= 24 * 60:
                raise ValueError(f"effect_minutes {key!r} must be between 0 and 1440 minutes, not {minutes}")
        return value


class WorkerSettings(BaseModel):
    """How workers process items."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(default=4, ge=1, le=256, description="Items processed at once per run, on one event loop.")
    lease_seconds: float = Field(
        default=300, gt=0, description="How long a claim holds an item before others may reclaim it."
    )
    item_timeout_seconds: float = Field(
        default=240, gt=0, description="Per-item timeout; must be shorter than the lease."
    )
    max_attempts: int = Field(
        default=5, ge=1, description="Attempts before an item fails for good and goes to a person."
    )
    backoff_base_seconds: float = Field(default=30, ge=0, description="First retry delay; doubles each attempt.")
    backoff_cap_seconds: float = Field(default=3600, ge=0, description="Longest retry delay.")
    runs_at_once: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Runs one worker works on at once, each of another municipality; their items share "
        "`concurrency` fairly. A run whose worker died is taken over by a busy worker too.",
    )
    lock_lease_seconds: float = Field(
        default=60,
        gt=0,
        description="Lease of a write's target lock, renewed while held: a dead holder frees the target after it.",
    )
    prefetch: int = Field(
        default=10,
        ge=0,
        le=100,
        description="Items one claim statement leases for a run when any of its tasks asks (at least as many "
        "as ask); those not yet started wait leased and heartbeated, and go back to pending when the run stops. "
        "Only in runs without --limit of robots whose side effects are repeatable; 0: lease only for the "
        "tasks that ask.",
    )
    prefetch_max: int = Field(
        default=100,
        ge=0,
        le=1000,
        description="How far a run's claims grow (at least `prefetch`) while its items finish fast: a claim leases "
        "what the run starts in about half a second at its recent pace, so slow items stay at `prefetch`. "
        "The items processed at once stay `concurrency`.",
    )
    poll_seconds: float = Field(default=5, gt=0, description="How often an idle `kollega worker` looks for work.")
    run_log_max_entries: int = Field(
        default=5000,
        ge=0,
        description="Log entries (INFO and above, redacted) kept with each run for its page; more are counted, "
        "not kept.",
    )
    retry_wait_seconds: float = Field(
        default=300,
        ge=0,
        description="A run waits for retries due within this many seconds; later ones wait for the next run or a worker.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> WorkerSettings:
        if self.item_timeout_seconds >= self.lease_seconds:
            raise ValueError("item_timeout_seconds must be shorter than lease_seconds")
        if self.prefetch_max < self.prefetch:
            raise ValueError("prefetch_max must be at least prefetch")
        return self


class SchedulerSettings(BaseModel):
    """The scheduler process."""

    model_config = ConfigDict(extra="forbid")

    schedules_dir: Path = Field(default=PROJECT_ROOT / "schedules", description="Folder of schedule TOML files.")
    misfire_grace_seconds: int = Field(default=3600, ge=1, description="How late a slot may still start.")
    leader_lease_seconds: int = Field(default=60, ge=5, description="Leader lock lease; a standby takes over after it.")
    reload_seconds: float = Field(
        default=10,
        gt=0,
        description="How often the running scheduler looks for edited, added or removed schedule files.",
    )
    julafton_is_holiday: bool = Field(
        default=True, description="Treat 24 December as a holiday in the 'workdays' calendar."
    )
    midsommarafton_is_holiday: bool = Field(default=True, description="Treat midsummer eve as a holiday in 'workdays'.")
    nyarsafton_is_holiday: bool = Field(default=True, description="Treat 31 December as a holiday in 'workdays'.")


class LoggingSettings(BaseModel):
    """Log output."""

    model_config = ConfigDict(extra="forbid")

    level: str = Field(default="INFO", description="Minimum level: DEBUG, INFO, WARNING, ERROR.")
    format: str = Field(
        default="auto",
        pattern="^(auto|json|console)$",
        description="auto = console on a terminal, JSON lines otherwise.",
    )


class ReviewSettings(BaseModel):
    """What happens to review items nobody decides in time (``[review]``).

    Nothing expires: an item past its deadline stays open, marked overdue ("Försenad") and
    escalated once to the queue's coordinators and operations. A queue whose oldest open
    item is older than its limit raises one alert (per oldest item) on the dashboard.
    """

    model_config = ConfigDict(extra="forbid")

    check_every_seconds: float = Field(
        default=60, ge=1, description="How often a worker (and `kollega serve`) looks for overdue items."
    )
    oldest_open_alert_hours: float = Field(
        default=24, gt=0, description="Alert when a queue's oldest open item is older than this many hours."
    )
    queue_oldest_open_alert_hours: dict[str, float] = Field(
        default_factory=dict,
        description='The same limit per queue, overriding the default (e.g. {"ronney.application" = 48}).',
    )
    escalation_mail_coordinators: bool = Field(
        default=True,
        description="Also mail an overdue item's escalation to its queue's coordinators (the coordinator "
        "role for that queue or every queue, and an e-mail address; needs [connectors.mail]).",
    )

    def oldest_open_limit(self, queue: str) -> float:
        """The age limit in hours of ``queue``'s oldest open item."""
        return self.queue_oldest_open_alert_hours.get(queue, self.oldest_open_alert_hours)

    @field_validator("queue_oldest_open_alert_hours")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(q for q, hours in value.items() if not hours > 0)
        if bad:
            raise ValueError(f"the age limit must be more than 0 hours (queues: {', '.join(bad)})")
        return value


class AuditSettings(BaseModel):
    """Checkpoints of the audit chain's head outside the database (``[audit]``).

    A checkpoint is written every ``checkpoint_every`` events and at the end of every run
    to the file (always), and to the auditors' mail and an HTTP endpoint when set. Verification
    (``kollega audit verify``, the auditors' page) checks the chain against the file's latest one.
    """

    model_config = ConfigDict(extra="forbid")

    checkpoint_every: int = Field(
        default=1000, ge=0, description="Checkpoint every this many audit events (0: only at the end of runs)."
    )
    checkpoint_at_run_end: bool = Field(default=True, description="Checkpoint at the end of every run (every night).")
    checkpoint_file: Path | None = Field(
        default=None,
        description="Append-only JSON-lines file of checkpoints; put it on another volume "
        "(default: var_dir/audit-checkpoints.jsonl).",
    )
    checkpoint_mail_to: list[str] = Field(
        default_factory=list, description="Auditors' addresses each checkpoint is mailed to (over [connectors.mail])."
    )
    checkpoint_url: str | None = Field(
        default=None, description="An HTTP(S) endpoint each checkpoint is POSTed to as JSON (a log collector)."
    )
    checkpoint_url_token: SecretRef | None = Field(
        default=None, description="Bearer token for checkpoint_url, by reference."
    )
    checkpoint_timeout_seconds: float = Field(
        default=10, gt=0, description="How long a checkpoint's mail or HTTP call may take."
    )


class Settings(BaseSettings):
    """All of Kollega's settings."""

    model_config = SettingsConfigDict(
        env_prefix="KOLLEGA_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    database_url: str = Field(default="", description="SQLAlchemy URL; empty = SQLite file var/kollega.db.")
    var_dir: Path = Field(
        default=PROJECT_ROOT / "var", description="Folder for the SQLite file, artifacts and checkpoints."
    )
    timezone: str = Field(default="Europe/Stockholm", description="Local time zone of the deployment.")
    artifact_retention_days: int = Field(
        default=30, ge=1, description="Days before screenshots and snapshots are deleted."
    )
    retention: RetentionSettings = Field(
        default_factory=lambda: RetentionSettings(work_item_days=180, review_days=365),
        description="Default retention periods of personal data in finished work (`kollega purge`).",
    )
    tenants: list[TenantSettings] = Field(default_factory=list, description="The municipalities served.")
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    robots: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="One section per robot, checked by its settings_model."
    )
    web: dict[str, Any] = Field(
        default_factory=dict, description="The web app; validated by core.web.settings.WebSettings."
    )
    connectors: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="One section per external system, checked by its connector's settings model; with several "
        "municipalities, a section is used only by those its shared_by lists.",
    )
    vault: VaultSettings | None = Field(
        default=None, description='HashiCorp Vault, for secrets given as { vault = "path#key" }; empty = none.'
    )

    def connector_section(self, system: str, tenant: str | None = None) -> dict[str, Any] | None:
        """The section of ``system`` that ``tenant``'s runs use; None when it declares none.

        A municipality never uses another's system implicitly. It gets, in this order:
        its own section (``connectors.<system>`` in its ``[[tenants]]`` entry), laid over
        the deployment's ``[connectors.<system>]`` only when that one lists it in
        ``shared_by``; else the deployment's section when it is shared with it, or when the
        deployment serves no more than this one municipality (then there is nobody to share
        with); else nothing. Sections of this machine's own tools (``browser``) apply to all.
        Without ``tenant``: the deployment's own section (e.g. the alert mailer's).
        """
        base = self.connectors.get(system)
        plain = {k: v for k, v in base.items() if k != SHARED_KEY} if base is not None else None
        if tenant is None or system in LOCAL_SECTIONS:
            own = next((t.connectors.get(system) for t in self.tenants if t.code == tenant), None)
            return None if plain is None and own is None else {**(plain or {}), **(own or {})}
        own = next((t.connectors.get(system) for t in self.tenants if t.code == tenant), None)
        shared = plain is not None and tenant in self.shared_by(system)
        if own is not None:
            return {**(plain or {}), **own} if shared else dict(own)
        if plain is not None and (shared or self._sole_tenant(tenant)):
            return plain
        return None

    def shared_by(self, system: str) -> list[str]:
        """The municipalities ``[connectors.<system>] shared_by`` declares as sharing that system."""
        found = (self.connectors.get(system) or {}).get(SHARED_KEY) or []
        return [str(code) for code in found]

    def _sole_tenant(self, tenant: str) -> bool:
        """True when the deployment serves only ``tenant`` (or names no municipality at all)."""
        return not self.tenants or [t.code for t in self.tenants] == [tenant]

    def require_connector_section(self, system: str, tenant: str | None) -> dict[str, Any]:
        """:meth:`connector_section`, or a ConfigError naming the section ``tenant`` must declare."""
        found = self.connector_section(system, tenant)
        if found is not None:
            return found
        if tenant is None or self._sole_tenant(tenant):
            raise ConfigError(f"connectors.{system} is not configured (add a [connectors.{system}] section)")
        name = next((t.name for t in self.tenants if t.code == tenant), tenant)
        hint = (
            f"[connectors.{system}] exists but is not shared with {tenant}"
            if system in self.connectors
            else f"there is no [connectors.{system}] either"
        )
        raise ConfigError(
            f"tenant {tenant} ({name}) has no connectors.{system}: declare its own in its [[tenants]] entry "
            f"(connectors.{system}.base_url = ...) or share one explicitly with "
            f'[connectors.{system}] shared_by = ["{tenant}", ...]; {hint}'
        )

    @model_validator(mode="after")
    def _shared_with_known_tenants(self) -> Settings:
        codes = {t.code for t in self.tenants}
        for system, section in self.connectors.items():
            found = section.get(SHARED_KEY)
            if found is None:
                continue
            if not isinstance(found, list) or not all(isinstance(c, str) for c in found):
                raise ValueError(f'connectors.{system}.{SHARED_KEY} must be a list of kommunkoder, e.g. ["1081"]')
            unknown = sorted(set(found) - codes) if codes else []
            if unknown:
                raise ValueError(
                    f"connectors.{system}.{SHARED_KEY} names {', '.join(unknown)}, not among the configured tenants"
                )
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under var/."""
        return self.database_url or f"sqlite:///{self.var_dir / 'kollega.db'}"

    def tenant(self, code: str) -> TenantSettings | None:
        """The ``[[tenants]]`` entry of kommunkod ``code``, if configured."""
        return next((t for t in self.tenants if t.code == code), None)

    def robot_section(self, name: str, tenant: str | None = None) -> dict[str, Any]:
        """Robot ``name``'s effective section: ``[robots.<name>]`` with the tenant's keys over it.

        A key a municipality gives (``[tenants.robots.<name>]`` in its ``[[tenants]]`` entry)
        replaces the deployment's value of that key as a whole (a table too); the others stay.
        ``display_name`` is not a setting of the robot and is left out.
        """
        section = dict(self.robots.get(name, {}))
        found = self.tenant(tenant) if tenant is not None else None
        if found is not None:
            section.update(found.robots.get(name, {}))
        section.pop(DISPLAY_NAME_KEY, None)
        return section

    def robot_settings(self, name: str, model: type[BaseModel], tenant: str | None = None) -> BaseModel:
        """Validate and return robot ``name``'s effective section (for ``tenant``) with its settings model."""
        own = set(self._tenant_robots(tenant).get(name, {})) if tenant else set()
        try:
            return model.model_validate(self.robot_section(name, tenant))
        except ValidationError as exc:
            # Each problem is named where its key was written: the municipality's section or the deployment's.
            lines = []
            for err in exc.errors():
                loc = [str(p) for p in err["loc"] if p != "__root__"]
                where = f"tenants.{tenant}.robots.{name}" if loc and loc[0] in own else f"robots.{name}"
                lines.append(f"{'.'.join([where, *loc])}: {err['msg']}")
            raise ConfigError("invalid configuration: " + "; ".join(lines)) from None

    def _tenant_robots(self, tenant: str) -> dict[str, dict[str, Any]]:
        found = self.tenant(tenant)
        return found.robots if found is not None else {}

    def robot_display_name(self, name: str, tenant: str | None, default: str) -> str:
        """The name people of ``tenant`` see for robot ``name``: its ``display_name`` there, else ``default``."""
        for section in (self._tenant_robots(tenant) if tenant else {}).get(name), self.robots.get(name):
            value = (section or {}).get(DISPLAY_NAME_KEY)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return default

    def check_robot_sections(self, models: Mapping[str, type[BaseModel]]) -> None:
        """Validate every robot section, the deployment's and each municipality's effective one, at start.

        ``models`` maps installed robot names to their settings models; a section of a robot
        that is not installed is left alone (a broken plugin must not take the others down).
        ConfigError naming every bad key (``tenants.1081.robots.harry.password: ...``).
        """
        problems: list[str] = []
        for name, model in sorted(models.items()):
            if name in self.robots:
                problems += _problems(self.robot_settings, name, model, None)
            for t in self.tenants:
                if name in t.robots:
                    problems += _problems(self.robot_settings, name, model, t.code)
                    # A model that ignores unknown keys would let a misspelt override pass unseen.
                    known = set(model.model_fields) | {DISPLAY_NAME_KEY}
                    problems += [
                        f"tenants.{t.code}.robots.{name}.{key}: not a setting of robot {name!r}"
                        for key in sorted(set(t.robots[name]) - known)
                        if model.model_config.get("extra") != "forbid"
                    ]
        for where, section in [(f"robots.{n}", sec) for n, sec in self.robots.items()] + [
            (f"tenants.{t.code}.robots.{n}", sec) for t in self.tenants for n, sec in t.robots.items()
        ]:
            shown = section.get(DISPLAY_NAME_KEY)
            if shown is not None and (not isinstance(shown, str) or not shown.strip()):
                problems.append(f"{where}.{DISPLAY_NAME_KEY}: must be a non-empty string")
        if problems:
            text = "; ".join(p.removeprefix("invalid configuration: ") for p in problems)
            raise ConfigError(f"invalid configuration: {text}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then KOLLEGA_* environment, then the TOML file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_config_path()))


_config_override: Path | None = None


def _config_path() -> Path:
    if _config_override is not None:
        return _config_override
    return Path(os.environ.get("KOLLEGA_CONFIG", str(DEFAULT_CONFIG)))


def _problems(check: Any, name: str, model: type[BaseModel], tenant: str | None) -> list[str]:
    try:
        check(name, model, tenant)
    except ConfigError as exc:
        return [exc.message]
    return []


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming the key and what is wrong."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
        key = ".".join(p for p in (prefix, loc) if p)
        lines.append(f"{key or '(top level)'}: {err['msg']}")
    return "invalid configuration: " + "; ".join(lines)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from the TOML file and the environment; ConfigError when invalid."""
    global _config_override
    path = config_file or _config_path()
    if (config_file is not None or "KOLLEGA_CONFIG" in os.environ) and not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    try:
        if path.is_file():
            with path.open("rb") as fh:
                tomllib.load(fh)  # report TOML syntax errors with their line
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
    _config_override = path
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    finally:
        _config_override = None
    from core.vault import configure

    configure(settings.vault)  # vault references resolved outside a run (the web app's) use it
    return settings
