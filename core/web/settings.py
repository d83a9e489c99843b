"""Settings of the web app: sessions, cookies, OpenID Connect, SAML, IdP groups, alerts, metrics.

Read from the ``[web]`` section of the deployment settings once ``core.settings.Settings``
has a ``web`` field (``KOLLEGA_WEB__SESSION_IDLE_MINUTES=20`` then works too); until then
:func:`web_settings` falls back to the defaults below. Secrets are references.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    groups_claim: str = Field(
        default="groups", description="Claim listing the user's groups, mapped to grants by [[web.idp_groups]]."
    )
    sync_roles: bool = Field(
        default=True,
        description="Replace the user's IdP grants (claims and mapped groups) at every login; local grants stay.",
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


#: AuthnContextClassRef values that mean a second factor was used (sources in docs/web.md, "SAML"):
#: the REFEDS MFA profile, the Swedish eID Framework's LoA 3 and 4 (and LoA 3 of uncertified
#: providers), and SAML 2.0's own classes for smart cards, two-factor mobiles and token codes.
MFA_AUTHN_CONTEXTS = [
    "https://refeds.org/profile/mfa",
    "http://id.elegnamnden.se/loa/1.0/loa3",
    "http://id.elegnamnden.se/loa/1.0/loa4",
    "http://id.swedenconnect.se/loa/1.0/uncertified-loa3",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",
]


class SamlSettings(BaseModel):
    """The municipality's SAML 2.0 identity provider (Kollega is the service provider)."""

    model_config = ConfigDict(extra="forbid")

    idp_metadata_url: str | None = Field(
        default=None, description="Where the IdP publishes its metadata (read at the first sign-in, then hourly)."
    )
    idp_metadata_file: Path | None = Field(default=None, description="The IdP's metadata as a file instead.")
    idp_entity_id: str | None = Field(
        default=None, description="The IdP to use when the metadata (e.g. a federation's) lists several."
    )
    sp_entity_id: str | None = Field(
        default=None, description="Our entity ID; empty = <public_url>/auth/saml/metadata (our metadata's URL)."
    )
    sp_key: SecretRef = Field(description="Our private key (PEM) for signing requests, by reference.")
    sp_cert_file: Path = Field(description="Our certificate (PEM), published in our metadata.")
    button_label: str = Field(default="Logga in med SAML (kommunens IdP)", description="Text of the login button.")
    username_attribute: str = Field(
        default="uid", description="Attribute naming the person's user name (else the NameID is used)."
    )
    display_name_attribute: str = Field(default="displayName", description="Attribute with the person's name.")
    email_attribute: str = Field(default="mail", description="Attribute with the person's e-mail address.")
    groups_attribute: str = Field(
        default="groups",
        description="Attribute listing the person's groups, mapped by [[web.idp_groups]] "
        "(ADFS: http://schemas.xmlsoap.org/claims/Group).",
    )
    mfa_authn_contexts: list[str] = Field(
        default_factory=lambda: list(MFA_AUTHN_CONTEXTS),
        description="AuthnContextClassRef values that count as multi-factor; asked for in every AuthnRequest.",
    )
    allow_unsolicited: bool = Field(
        default=False, description="Accept IdP-initiated sign-ins (responses to no request of ours)."
    )
    clock_skew_seconds: int = Field(
        default=60, ge=0, le=300, description="Tolerated clock difference for NotBefore/NotOnOrAfter."
    )
    timeout_seconds: float = Field(default=10, gt=0, description="Timeout of reading the IdP's metadata.")

    @model_validator(mode="after")
    def _one_metadata_source(self) -> SamlSettings:
        if (self.idp_metadata_url is None) == (self.idp_metadata_file is None):
            raise ValueError("[web.saml] needs exactly one of idp_metadata_url or idp_metadata_file")
        return self


class IdpGroupGrant(BaseModel):
    """One identity-provider group and the grants its members get at every sign-in (OIDC and SAML)."""

    model_config = ConfigDict(extra="forbid")

    group: str = Field(min_length=1, description="The group's name as the IdP sends it (exact match).")
    role: Role = Field(description="The role its members get.")
    tenant: str = Field(pattern=r"^\d{4}$", description="The municipality (kommunkod); must be a configured tenant.")
    queues: list[str] = Field(
        default_factory=list,
        description="Review queues (case workers need at least one; coordinators: empty = every queue).",
    )

    @model_validator(mode="after")
    def _queues_fit_the_role(self) -> IdpGroupGrant:
        if self.role == Role.case_worker and not self.queues:
            raise ValueError(f"idp group {self.group!r}: a case_worker grant needs queues")
        if self.queues and self.role not in (Role.case_worker, Role.coordinator):
            raise ValueError(f"idp group {self.group!r}: only case_worker and coordinator grants have queues")
        return self


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
    saml: SamlSettings | None = Field(default=None, description="SAML 2.0 login; empty = none.")
    idp_groups: list[IdpGroupGrant] = Field(
        default_factory=list, description="IdP groups → grants, applied at every OIDC or SAML sign-in."
    )
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
    dashboard_cache_seconds: int = Field(
        default=300,
        ge=0,
        description="How long the dashboard keeps its costly figures (time saved; the overdue and alert checks "
        "behind it) before it computes them again; the page says when they were computed. 0 = every view.",
    )
    inbox_cache_seconds: float = Field(
        default=5,
        ge=0,
        le=60,
        description='How long each `kollega serve` process keeps a person\'s "Mina beslut" (checked on every view '
        "against their newest decisions, so their own show at once), and the queue counts and lapsed items of their "
        "queues; what a robot did with a decision, an item it closed, and the counts may show this much later (a "
        "list that fits on its first page recounts its queues). 0 = read on every view.",
    )
    request_threads: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Threads per `kollega serve` process that run the synchronous pages at once (the rest wait "
        "their turn); at most the database pool's 10, so that no request opens and closes a connection of its own.",
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
