"""Settings of the web app: sessions, cookies, OpenID Connect, alerts, metrics.

Read from the ``[web]`` section of the deployment settings once ``core.settings.Settings``
has a ``web`` field (``KOLLEGA_WEB__SESSION_IDLE_MINUTES=20`` then works too); until then
:func:`web_settings` falls back to the defaults below. Secrets are references.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.settings import SecretRef, Settings
from core.storage.web_models import Role


class OidcSettings(BaseModel):
    """The municipality's OpenID Connect provider (authorization code flow with PKCE S256)."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(description="The issuer URL; discovery is read from <issuer>/.well-known/openid-configuration.")
    client_id: str = Field(description="Our client id at the provider.")
    client_secret: SecretRef = Field(description="Our client secret, by reference.")
    redirect_uri: str | None = Field(
        default=None,
        description="The callback URL registered at the provider; empty = <public_url>/auth/oidc/callback.",
    )
    scopes: list[str] = Field(default=["openid", "profile", "email"], description="Scopes asked for.")
    button_label: str = Field(default="Logga in med kommunens inloggning", description="Text of the login button.")
    roles_claim: str = Field(default="roles", description="Claim listing the user's roles (Kollega role names).")
    tenants_claim: str = Field(default="tenants", description="Claim listing the user's kommunkoder.")
    queues_claim: str = Field(default="queues", description="Claim listing the user's review queues.")
    sync_roles: bool = Field(
        default=True, description="Replace the user's grants with the claims' at every login (the provider decides)."
    )
    timeout_seconds: float = Field(default=10, gt=0, description="Timeout of calls to the provider.")
    clock_skew_seconds: int = Field(default=60, ge=0, description="Tolerated clock difference for exp/iat.")
    require_mfa: bool = Field(
        default=True,
        description=(
            "While [web] mfa_required is on, refuse a login whose ID token does not assert a second factor "
            "(an acr in mfa_acr_values, or an amr value in mfa_amr_values)."
        ),
    )
    mfa_acr_values: list[str] = Field(
        default=[],
        description=(
            "acr values the provider uses for logins with a second factor (asked for as acr_values); "
            "e.g. the provider's level-of-assurance URI for two-factor logins."
        ),
    )
    mfa_amr_values: list[str] = Field(
        default=["mfa", "otp", "hwk", "sc"],
        description=(
            "amr values (RFC 8176) that show a second factor: mfa (multiple factors), otp (one-time "
            "password), hwk (hardware key), sc (smart card)."
        ),
    )


class AlertSettings(BaseModel):
    """When a night needs operations' attention, and how they hear about it."""

    model_config = ConfigDict(extra="forbid")

    check_every_seconds: int = Field(default=300, ge=10, description="How often `kollega serve` looks for alerts.")
    exception_share_jump: float = Field(
        default=0.2, gt=0, le=1, description="Alert when a run's exception share exceeds the 30-day mean by this much."
    )
    min_items: int = Field(default=5, ge=1, description="Runs with fewer items never raise an exception-share alert.")
    mail: bool = Field(default=True, description="Mail new alerts to the tenant's ops_email ([connectors.mail]).")
    decision_wait_minutes: int = Field(
        default=15,
        ge=1,
        description="A decision not carried out after this many minutes of working hours is marked and alerted.",
    )
    working_day_start_hour: int = Field(
        default=7, ge=0, le=23, description="Working hours (local time, weekdays) start at this hour."
    )
    working_day_end_hour: int = Field(
        default=17, ge=1, le=23, description="Working hours end at this hour; decisions wait only in working hours."
    )


class WebSettings(BaseModel):
    """The section ``[web]``."""

    model_config = ConfigDict(extra="forbid")

    public_url: str = Field(default="http://127.0.0.1:8000", description="The URL people reach the app at.")
    cookie_secure: bool = Field(
        default=True, description="Send cookies only over HTTPS (keep on; browsers accept it on localhost)."
    )
    session_idle_minutes: int = Field(default=30, ge=1, description="A session ends after this long without a request.")
    session_absolute_hours: float = Field(default=10, gt=0, description="A session ends this long after login.")
    default_lang: str = Field(default="sv", pattern="^(sv|en)$", description="Language before a person chooses one.")
    local_login: bool = Field(default=True, description="Allow local accounts (user name and password).")
    max_failed_logins: int = Field(
        default=5, ge=1, description="Failed passwords before an account is delayed (then 1 s, 2 s, 4 s … per failure)."
    )
    lockout_minutes: int = Field(
        default=15, ge=1, description="The longest an account's delay grows to; attempts during it do not extend it."
    )
    address_free_attempts: int = Field(
        default=10, ge=1, description="Failed logins from one client address before its exponential delay starts."
    )
    address_max_delay_seconds: int = Field(
        default=900, ge=1, description="The longest delay one client address gets (it doubles per failure up to this)."
    )
    global_free_attempts: int = Field(
        default=200, ge=1, description="Failed logins from all addresses within the window before everyone is slowed."
    )
    global_max_delay_seconds: int = Field(
        default=30, ge=1, description="The longest delay the global throttle imposes (kept short: it slows everyone)."
    )
    throttle_window_minutes: int = Field(
        default=15, ge=1, description="Failures older than this (with none since) are forgotten."
    )
    password_min_length: int = Field(default=12, ge=8, description="Shortest password a person may choose.")
    mfa_required: bool = Field(
        default=True,
        description="Local accounts must use a second factor (TOTP). Switch off only for the demo: a banner says so.",
    )
    oidc: OidcSettings | None = Field(default=None, description="OpenID Connect login; empty = local accounts only.")
    artifact_roles: list[Role] = Field(
        default=[Role.operations, Role.it_admin],
        description="Roles that may see screenshots and other artifacts (they hold personal data).",
    )
    metrics_token: SecretRef | None = Field(
        default=None, description="Bearer token /metrics accepts from any address (Prometheus' bearer_token_file)."
    )
    metrics_networks: list[str] = Field(
        default=["127.0.0.1/32", "::1/128"],
        description="Client networks that may read /metrics without a token (default: this machine only).",
    )
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


def web_settings(settings: Settings, **overrides: Any) -> WebSettings:
    """The web settings of a deployment: its ``web`` section (when it has one) plus overrides."""
    section = getattr(settings, "web", None) or {}
    data = section.model_dump() if isinstance(section, BaseModel) else dict(section)
    data.update(overrides)
    return WebSettings.model_validate(data)
