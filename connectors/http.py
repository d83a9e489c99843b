"""HTTP connector: one ``httpx.AsyncClient`` per external system per run.

It adds what every robot needs when it talks to a JSON API: a base URL, authentication
(API key header, OAuth2 client credentials with a cached token, client certificate),
timeouts, retries with exponential backoff that honour ``Retry-After``, a circuit breaker
per system shared by the whole process, an optional token-bucket rate limit, dry-run
refusal of writes, audit events for reads of personal data and for writes, and logs that
never show a body and only show URLs after redaction.

Errors (everything else from httpx is translated at this boundary)::

    ConnectorUnavailable   connect error, timeout, 5xx or 429 after the retries, circuit open
    ConnectorAuthError     401/403 (after one token refresh), token endpoint refused us
    ConnectorError         another 4xx (code ``http_<status>``), a body that is not JSON
    DryRunRefusal          a write in a dry run
    UnsafePath             an absolute URL, or ``..``, where a path under ``base_url`` belongs

Credentials (API key, OAuth2 token, client certificate) go to ``base_url`` only: a
request's path is always relative to it, so an absolute URL, a ``//host`` reference or a
``..`` segment (also percent-encoded) is refused before anything is sent.

Example::

    api = HttpConnector.for_run(ctx, "registers")
    data = await api.get_json(f"/persons/{pnr}/incomes", subject=pnr, purpose="ekonomiskt bistånd")
"""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
import time
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import connector_settings, record_access, record_write, require_purpose
from core.clock import Clock, SystemClock
from core.errors import ConfigError, ConnectorAuthError, ConnectorError, ConnectorUnavailable
from core.interfaces import ConnectorContext
from core.logging import get_logger, redact_text
from core.settings import SecretRef
from core.transitions import backoff_delay as shared_backoff

log = get_logger("kollega.connectors.http")

#: Methods that never change anything: not writes, so allowed in a dry run.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Methods that may be repeated after an ambiguous failure (the server may have seen them).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


# -- settings ----------------------------------------------------------------------------
class ApiKeyAuth(BaseModel):
    """An API key sent in a header on every request."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["api_key"] = "api_key"
    header: str = Field(default="X-API-Key", description="Header carrying the key.")
    key: SecretRef = Field(description='The key, by reference: {env = "NAME"} or {file = "/path"}.')
    prefix: str = Field(default="", description="Text before the key in the header, e.g. 'ApiKey '.")


class OAuth2ClientCredentials(BaseModel):
    """OAuth2 client-credentials grant; the token is cached until shortly before it expires."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str = Field(description="Token endpoint, absolute or relative to base_url.")
    client_id: str = Field(description="Our client id at the identity provider.")
    client_secret: SecretRef = Field(description="Our client secret, by reference.")
    scope: str | None = Field(default=None, description="Space-separated scopes to ask for.")
    client_auth: Literal["basic", "body"] = Field(
        default="basic", description="Send the client credentials as HTTP Basic auth or in the form body."
    )
    refresh_margin_seconds: float = Field(default=30, ge=0, description="Fetch a new token this long before expiry.")
    default_expires_in_seconds: float = Field(
        default=300, gt=0, description="Token lifetime assumed when the answer has no expires_in."
    )


class ClientCertificate(BaseModel):
    """A client certificate (mutual TLS), as PEM files."""

    model_config = ConfigDict(extra="forbid")

    cert_file: Path = Field(description="PEM file with the certificate (and the key, unless key_file is given).")
    key_file: Path | None = Field(default=None, description="PEM file with the private key.")
    key_password: SecretRef | None = Field(default=None, description="Password of an encrypted key, by reference.")


class RetrySettings(BaseModel):
    """When and how often a failed request is tried again."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=3, ge=1, le=20, description="Tries in all, the first one included.")
    backoff_base_seconds: float = Field(
        default=0.5, ge=0, description="Wait after the first failure; doubles each time."
    )
    backoff_cap_seconds: float = Field(default=20, ge=0, description="Longest wait between two tries.")
    jitter: float = Field(default=0.2, ge=0, le=1, description="Random extra wait, as a fraction of the backoff.")
    max_retry_after_seconds: float = Field(
        default=60, ge=0, description="A longer Retry-After is not waited for: the item is retried later instead."
    )
    retry_statuses: frozenset[int] = Field(
        default=frozenset({429, 500, 502, 503, 504}), description="Statuses that are retried (429 and 5xx)."
    )


class CircuitBreakerSettings(BaseModel):
    """The circuit breaker protecting a system (and us) when it is down."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Use a circuit breaker for this system.")
    failure_threshold: int = Field(default=5, ge=1, description="Consecutive failures that open the circuit.")
    cooldown_seconds: float = Field(default=30, ge=0, description="How long the circuit stays open before a probe.")


class RateLimitSettings(BaseModel):
    """A token bucket: at most ``requests_per_second`` on average, bursts up to ``burst``."""

    model_config = ConfigDict(extra="forbid")

    requests_per_second: float = Field(gt=0, description="Average requests per second allowed.")
    burst: int = Field(default=1, ge=1, description="Requests that may be sent at once after a quiet spell.")


class HttpSettings(BaseModel):
    """One external system's section ``[connectors.<system>]`` for the HTTP connector."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="Base URL of the system's API, e.g. https://bistand.example.se/api/.")
    timeout_seconds: float = Field(default=30, gt=0, description="Read/write/pool timeout of one request.")
    connect_timeout_seconds: float = Field(default=10, gt=0, description="Timeout for opening a connection.")
    verify_tls: bool = Field(default=True, description="Verify the server's certificate (off only in a lab).")
    ca_file: Path | None = Field(default=None, description="PEM bundle of CAs to trust instead of the system's.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers on every request (no secrets).")
    auth: Annotated[ApiKeyAuth | OAuth2ClientCredentials, Field(discriminator="kind")] | None = Field(
        default=None, description="How we authenticate: api_key or oauth2_client_credentials."
    )
    client_certificate: ClientCertificate | None = Field(default=None, description="Client certificate for mTLS.")
    retry: RetrySettings = Field(default_factory=RetrySettings)
    circuit_breaker: CircuitBreakerSettings = Field(default_factory=CircuitBreakerSettings)
    rate_limit: RateLimitSettings | None = Field(default=None, description="Optional client-side rate limit.")
    audit_writes: bool = Field(default=True, description="Write an external.write audit event after each write.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value if value.endswith("/") else value + "/"


# -- circuit breaker ---------------------------------------------------------------------
class CircuitState(StrEnum):
    """The states of a circuit breaker."""

    closed = "closed"  # requests flow; consecutive failures are counted
    open = "open"  # requests are refused at once until the cool-down has passed
    half_open = "half_open"  # one probe request is let through; its outcome closes or reopens


class UnsafePath(ConnectorError):
    """The path would leave the system's base URL (an absolute URL or ``..``): refused, nothing sent."""

    code = "unsafe_path"
    retryable = False  # the same path is refused again: a person must look at it


class CircuitOpen(ConnectorUnavailable):
    """The circuit breaker for this system is open: it failed repeatedly, try again later."""

    code = "circuit_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker for one system; thread-safe, time passed in by the caller."""

    def __init__(self, system: str, failure_threshold: int = 5, cooldown_seconds: float = 30) -> None:
        self.system = system
        self.failure_threshold = failure_threshold
        self.cooldown = timedelta(seconds=cooldown_seconds)
        self.state = CircuitState.closed
        self.failures = 0
        self.opened_at: datetime | None = None
        self._probe_in_flight = False
        self._lock = threading.Lock()

    def before_request(self, now: datetime) -> None:
        """Let a request through, or raise :class:`CircuitOpen`; after the cool-down one probe goes through."""
        with self._lock:
            if self.state is CircuitState.open:
                assert self.opened_at is not None
                if now - self.opened_at < self.cooldown:
                    wait = (self.opened_at + self.cooldown - now).total_seconds()
                    raise CircuitOpen(
                        f"circuit open for {self.system}: probing again in {wait:.0f} s",
                        system=self.system,
                        retry_after=wait,
                    )
                self.state = CircuitState.half_open
            if self.state is CircuitState.half_open:
                if self._probe_in_flight:
                    raise CircuitOpen(
                        f"circuit half-open for {self.system}: a probe request is under way", system=self.system
                    )
                self._probe_in_flight = True

    def record_success(self) -> None:
        """The system answered: close the circuit and forget earlier failures."""
        with self._lock:
            if self.state is not CircuitState.closed:
                log.info("circuit closed", system=self.system)
            self.state, self.failures, self.opened_at, self._probe_in_flight = CircuitState.closed, 0, None, False

    def record_failure(self, now: datetime) -> None:
        """The system failed (transport error, timeout, 5xx): count it; open at the threshold or after a probe."""
        with self._lock:
            self.failures += 1
            self._probe_in_flight = False
            if self.state is CircuitState.half_open or self.failures >= self.failure_threshold:
                if self.state is not CircuitState.open:
                    log.warning("circuit opened", system=self.system, failures=self.failures)
                self.state, self.opened_at = CircuitState.open, now

    def release(self) -> None:
        """The request ended without a verdict (cancelled, 429): free the probe slot, change nothing else."""
        with self._lock:
            self._probe_in_flight = False


class BreakerRegistry:
    """The circuit breakers of a process, one per system name."""

    def __init__(self) -> None:
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, system: str, settings: CircuitBreakerSettings) -> CircuitBreaker:
        """The breaker for ``system``, created on first use (later settings update its thresholds)."""
        with self._lock:
            breaker = self._breakers.get(system)
            if breaker is None:
                breaker = self._breakers[system] = CircuitBreaker(
                    system, settings.failure_threshold, settings.cooldown_seconds
                )
            else:
                breaker.failure_threshold = settings.failure_threshold
                breaker.cooldown = timedelta(seconds=settings.cooldown_seconds)
            return breaker

    def reset(self) -> None:
        """Forget every breaker (tests)."""
        with self._lock:
            self._breakers.clear()


#: The process-wide breakers: every run talking to one system shares its breaker.
DEFAULT_BREAKERS = BreakerRegistry()


# -- backoff, Retry-After, rate limit, tokens --------------------------------------------
def backoff_delay(attempt: int, retry: RetrySettings, rng: random.Random | None = None) -> float:
    """Wait before try ``attempt + 1`` after ``attempt`` failed tries: base · 2^(attempt-1), capped, plus jitter."""
    return shared_backoff(attempt, retry.backoff_base_seconds, retry.backoff_cap_seconds, jitter=retry.jitter, rng=rng)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or invalid."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


class TokenBucket:
    """Token-bucket rate limiter on an injectable clock."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self._last = clock.now()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Take one token, waiting until one is available."""
        async with self._lock:
            while True:
                now = self.clock.now()
                self.tokens = min(self.capacity, self.tokens + (now - self._last).total_seconds() * self.rate)
                self._last = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await self.clock.sleep((1 - self.tokens) / self.rate)


class TokenCache:
    """OAuth2 access tokens of a process, keyed by token endpoint, client and scope."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str], now: datetime) -> str | None:
        """A token still valid at ``now``, or None."""
        with self._lock:
            found = self._tokens.get(key)
            return found[0] if found and now < found[1] else None

    def put(self, key: tuple[str, str, str], token: str, refresh_at: datetime) -> None:
        """Keep ``token`` until ``refresh_at``."""
        with self._lock:
            self._tokens[key] = (token, refresh_at)

    def invalidate(self, key: tuple[str, str, str], token: str) -> None:
        """Forget ``token`` (the server refused it) unless another task already replaced it."""
        with self._lock:
            if key in self._tokens and self._tokens[key][0] == token:
                del self._tokens[key]


#: The process-wide token cache: a token is fetched once and shared by the runs until it expires.
DEFAULT_TOKEN_CACHE = TokenCache()


def _ssl_context(settings: HttpSettings) -> ssl.SSLContext | bool:
    cert = settings.client_certificate
    if cert is None and settings.ca_file is None:
        return settings.verify_tls
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        password = cert.key_password.resolve() if cert.key_password else None
        try:
            context.load_cert_chain(str(cert.cert_file), str(cert.key_file) if cert.key_file else None, password)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"client certificate {cert.cert_file} cannot be loaded: {type(exc).__name__}") from exc
    return context


# -- the connector -----------------------------------------------------------------------
class HttpConnector:
    """An HTTP client for one external system during one run (close it, or let the run close it)."""

    def __init__(
        self,
        ctx: ConnectorContext,
        system: str,
        settings: HttpSettings,
        *,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        breakers: BreakerRegistry | None = None,
        token_cache: TokenCache | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.ctx = ctx
        self.system = system
        self.settings = settings
        self.clock: Clock = clock or getattr(ctx, "clock", None) or SystemClock()
        self.rng = rng
        breaker_settings = settings.circuit_breaker
        self.breaker = (
            (breakers or DEFAULT_BREAKERS).get(system, breaker_settings) if breaker_settings.enabled else None
        )
        self._tokens = token_cache or DEFAULT_TOKEN_CACHE
        self._token_lock = asyncio.Lock()
        self._bucket = (
            TokenBucket(settings.rate_limit.requests_per_second, settings.rate_limit.burst, self.clock)
            if settings.rate_limit
            else None
        )
        self._static_headers = dict(settings.headers)
        if isinstance(settings.auth, ApiKeyAuth):
            self._static_headers[settings.auth.header] = settings.auth.prefix + settings.auth.key.resolve()
        timeout = httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds)
        self.client = httpx.AsyncClient(
            base_url=settings.base_url,
            timeout=timeout,
            verify=_ssl_context(settings),
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def for_run(cls, ctx: ConnectorContext, system: str, **kwargs: Any) -> HttpConnector:
        """The run's connector for ``system`` (created from ``[connectors.<system>]`` once, closed with the run)."""
        key = f"http:{system}"
        existing = ctx.resources.get(key)
        if isinstance(existing, HttpConnector):
            return existing
        connector = cls(ctx, system, connector_settings(ctx, system, HttpSettings), **kwargs)
        ctx.resources[key] = connector
        return connector

    async def aclose(self) -> None:
        """Close the underlying client and its connections."""
        await self.client.aclose()

    async def __aenter__(self) -> HttpConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- public methods ------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        subject: str | None = None,
        purpose: str | None = None,
        write: bool | None = None,
        what: str | None = None,
        idempotent: bool | None = None,
        allow_status: Collection[int] = (),
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request with retries, breaker, rate limit, dry-run check and audit; return the response.

        ``subject`` (a personnummer) and ``purpose`` mark a read of personal data, written to
        the access log after a successful answer. ``write`` defaults to "not GET/HEAD/OPTIONS";
        a write is refused in a dry run. Statuses in ``allow_status`` are returned, not raised.
        """
        method = method.upper()
        require_purpose(subject, purpose)
        is_write = write if write is not None else method not in SAFE_METHODS
        shown = redact_text(path)
        self._check_path(path, shown)
        if is_write:
            self.ctx.check_write(self.system, what or f"{method} {shown}")
        build: dict[str, Any] = {
            "params": params,
            "json": json,
            "content": content,
            "data": data,
            "headers": dict(headers or {}),
        }
        if timeout is not None:
            build["timeout"] = httpx.Timeout(timeout, connect=min(timeout, self.settings.connect_timeout_seconds))
        response = await self._send(
            method,
            path,
            build,
            idempotent=idempotent if idempotent is not None else method in IDEMPOTENT_METHODS,
            allow_status=allow_status,
        )
        details = {"method": method, "path": shown, "status": response.status_code}
        if is_write and self.settings.audit_writes and response.is_success:
            await record_write(
                self.ctx,
                system=self.system,
                what=what or f"{method} {shown}",
                subject=subject,
                purpose=purpose,
                details=details,
            )
        elif subject is not None and purpose is not None and not is_write and response.is_success:
            await record_access(self.ctx, subject=subject, system=self.system, purpose=purpose, details=details)
        return response

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET ``path`` (see :meth:`request` for the keyword arguments)."""
        return await self.request("GET", path, **kwargs)

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET ``path`` and decode its JSON body; pass ``subject=`` and ``purpose=`` for personal data."""
        return self.json_of(await self.request("GET", path, **kwargs))

    async def post_json(self, path: str, payload: Any, **kwargs: Any) -> Any:
        """POST ``payload`` as JSON (a write unless ``write=False``) and decode the JSON answer (None if empty)."""
        return self.json_of(await self.request("POST", path, json=payload, **kwargs), empty_ok=True)

    async def put_json(self, path: str, payload: Any, **kwargs: Any) -> Any:
        """PUT ``payload`` as JSON (a write) and decode the JSON answer (None if empty)."""
        return self.json_of(await self.request("PUT", path, json=payload, **kwargs), empty_ok=True)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        """DELETE ``path`` (a write)."""
        return await self.request("DELETE", path, **kwargs)

    def json_of(self, response: httpx.Response, *, empty_ok: bool = False) -> Any:
        """The decoded JSON body; ConnectorError (``bad_response``) when it is not JSON."""
        if empty_ok and not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ConnectorError(
                f"{self.system} answered {response.status_code} with a body that is not JSON",
                code="bad_response",
                system=self.system,
            ) from exc

    # -- internals -----------------------------------------------------------------------
    def _check_path(self, path: str, shown: str) -> None:
        """Refuse a path that is not under ``base_url``: our credentials must not go anywhere else."""
        base = self.settings.base_url
        try:
            url = httpx.URL(path)
        except httpx.InvalidURL as exc:
            raise UnsafePath(f"{self.system}: {shown!r} is not a valid path", system=self.system) from exc
        if url.scheme or url.host or path.lstrip().startswith(("//", "\\")):
            raise UnsafePath(
                f"{self.system}: {shown!r} is an absolute URL; requests go only to paths under {base}",
                system=self.system,
            )
        # ".." (also as %2e%2e, or between backslashes some servers treat as slashes) climbs out of the base path.
        segments = unquote(path.split("?", 1)[0].split("#", 1)[0]).replace("\\", "/").split("/")
        if ".." in segments:
            raise UnsafePath(
                f"{self.system}: {shown!r} climbs out of the base path with '..'; requests go only under {base}",
                system=self.system,
            )

    def _check_target(self, request: httpx.Request) -> None:
        # A second line behind _check_path: whatever httpx made of the path stays under base_url.
        base = self.client.base_url
        url = request.url
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port) or not url.raw_path.startswith(
            base.raw_path
        ):
            raise UnsafePath(
                f"{self.system}: {redact_text(str(url))} is outside {self.settings.base_url}", system=self.system
            )

    async def _send(
        self, method: str, path: str, build: dict[str, Any], *, idempotent: bool, allow_status: Collection[int]
    ) -> httpx.Response:
        retry = self.settings.retry
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            if self._bucket is not None:
                await self._bucket.acquire()
            headers = {**self._static_headers, **(await self._auth_headers()), **build["headers"]}
            request = self.client.build_request(method, path, **{**build, "headers": headers})
            self._check_target(request)
            shown = redact_text(str(request.url))
            if self.breaker is not None:
                self.breaker.before_request(self.clock.now())
            verdict: bool | None = None  # True: system healthy, False: system failing, None: no verdict
            response: httpx.Response | None = None
            cause: Exception | None = None
            started = time.monotonic()
            try:
                try:
                    response = await self.client.send(request)
                except httpx.TimeoutException as exc:
                    verdict, cause = False, exc
                    error: ConnectorError = ConnectorUnavailable(
                        f"{self.system}: {method} {shown} timed out ({type(exc).__name__})",
                        code="timeout",
                        system=self.system,
                    )
                    # A request that never got a connection was not seen by the server.
                    retryable = idempotent or isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
                except httpx.TransportError as exc:
                    verdict, cause = False, exc
                    error = ConnectorUnavailable(
                        f"{self.system}: {method} {shown} failed ({type(exc).__name__})", system=self.system
                    )
                    retryable = idempotent or isinstance(exc, httpx.ConnectError)
                else:
                    verdict = None if response.status_code == 429 else response.status_code < 500
            finally:
                self._breaker_verdict(verdict)
            elapsed_ms = round((time.monotonic() - started) * 1000)
            retry_after: float | None = None
            if response is not None:
                status = response.status_code
                log.debug(
                    "http request",
                    system=self.system,
                    method=method,
                    url=shown,
                    status=status,
                    attempt=attempt,
                    elapsed_ms=elapsed_ms,
                )
                if status == 401 and isinstance(self.settings.auth, OAuth2ClientCredentials) and not reauthenticated:
                    # The token may have been revoked or expired early: fetch a new one, once.
                    reauthenticated = True
                    self._forget_token(headers.get("Authorization", ""))
                    attempt -= 1
                    continue
                if status in allow_status or response.is_success or response.is_redirect:
                    return response
                if status in (401, 403):
                    raise ConnectorAuthError(
                        f"{self.system} refused our credentials ({status}) for {method} {shown}",
                        system=self.system,
                        status=status,
                    )
                if status not in retry.retry_statuses:
                    raise ConnectorError(
                        f"{self.system} answered {status} to {method} {shown}",
                        code=f"http_{status}",
                        system=self.system,
                        status=status,
                    )
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())
                error = ConnectorUnavailable(
                    f"{self.system} answered {status} to {method} {shown}",
                    code=f"http_{status}",
                    system=self.system,
                    status=status,
                    retry_after=retry_after,
                )
                retryable = idempotent or status == 429  # a 429 was not carried out
            else:
                log.debug(
                    "http request failed",
                    system=self.system,
                    method=method,
                    url=shown,
                    attempt=attempt,
                    error=type(cause).__name__,
                    elapsed_ms=elapsed_ms,
                )
            if not retryable or attempt >= retry.attempts:
                raise error from cause
            if retry_after is not None and retry_after > retry.max_retry_after_seconds:
                raise error from cause  # too long to wait inside an item: the engine retries later
            delay = retry_after if retry_after is not None else backoff_delay(attempt, retry, self.rng)
            log.info(
                "http retry",
                system=self.system,
                method=method,
                url=shown,
                attempt=attempt,
                delay_seconds=round(delay, 3),
                reason=error.code,
            )
            await self.clock.sleep(delay)

    def _breaker_verdict(self, healthy: bool | None) -> None:
        if self.breaker is None:
            return
        if healthy is True:
            self.breaker.record_success()
        elif healthy is False:
            self.breaker.record_failure(self.clock.now())
        else:
            self.breaker.release()

    # OAuth2 client credentials -----------------------------------------------------------
    def _token_key(self) -> tuple[str, str, str]:
        auth = self.settings.auth
        assert isinstance(auth, OAuth2ClientCredentials)
        return (str(self.client.base_url.join(auth.token_url)), auth.client_id, auth.scope or "")

    def _forget_token(self, authorization: str) -> None:
        token = authorization.removeprefix("Bearer ")
        self._tokens.invalidate(self._token_key(), token)

    async def _auth_headers(self) -> dict[str, str]:
        auth = self.settings.auth
        if not isinstance(auth, OAuth2ClientCredentials):
            return {}
        key = self._token_key()
        token = self._tokens.get(key, self.clock.now())
        if token is None:
            async with self._token_lock:  # one fetch per connector, however many tasks wait
                token = self._tokens.get(key, self.clock.now())
                if token is None:
                    token = await self._fetch_token(auth, key)
        return {"Authorization": f"Bearer {token}"}

    async def _fetch_token(self, auth: OAuth2ClientCredentials, key: tuple[str, str, str]) -> str:
        form = {"grant_type": "client_credentials"}
        if auth.scope:
            form["scope"] = auth.scope
        secret = auth.client_secret.resolve()
        basic: tuple[str, str] | None = None
        if auth.client_auth == "basic":
            basic = (auth.client_id, secret)
        else:
            form.update(client_id=auth.client_id, client_secret=secret)
        try:
            response = await self.client.post(
                key[0], data=form, auth=basic or httpx.USE_CLIENT_DEFAULT, headers=self._static_headers
            )
        except httpx.TimeoutException as exc:
            raise ConnectorUnavailable(
                f"{self.system}: the token endpoint timed out", code="timeout", system=self.system
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectorUnavailable(
                f"{self.system}: the token endpoint cannot be reached ({type(exc).__name__})", system=self.system
            ) from exc
        if response.status_code in (400, 401, 403):
            raise ConnectorAuthError(
                f"{self.system}: the token endpoint refused our client credentials ({response.status_code})",
                system=self.system,
            )
        if not response.is_success:
            raise ConnectorUnavailable(
                f"{self.system}: the token endpoint answered {response.status_code}",
                system=self.system,
                status=response.status_code,
            )
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in") or auth.default_expires_in_seconds)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConnectorError(
                f"{self.system}: the token endpoint's answer holds no access_token",
                code="bad_response",
                system=self.system,
            ) from exc
        margin = min(auth.refresh_margin_seconds, expires_in / 2)
        self._tokens.put(key, token, self.clock.now() + timedelta(seconds=expires_in - margin))
        log.info("oauth2 token fetched", system=self.system, expires_in=expires_in)
        return token
