"""OpenID Connect login: authorization code flow with PKCE S256, state and nonce checked.

::

    GET /auth/oidc/login     new state, nonce, PKCE verifier and a browser-binding cookie;
                             303 to the provider's authorization endpoint
    GET /auth/oidc/callback  the state is looked up and used once (and must come from the same
                             browser), ``iss`` compared, the code redeemed with the verifier, the
                             ID token's signature (JWKS), iss, aud, azp, exp, iat and nonce checked

The provider's claims ``roles``, ``tenants`` and ``queues``, and its ``groups`` through the
``[[web.idp_groups]]`` mapping, become the user's IdP grants (core.web.idp_grants). While a
second factor is required (``[web] mfa_required``), the ID token must assert one, by ``acr``
or ``amr`` (RFC 8176); a login without it is refused before any account is made, and audited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, select

from core import audit
from core.errors import WebError
from core.storage.db import Database
from core.storage.web_models import LoginState, Role, User
from core.web import idp_grants
from core.web.auth import Grant, sha256
from core.web.settings import IdpGroupGrant, OidcSettings

LOGIN_TTL = timedelta(minutes=10)
BINDING_COOKIE = "kollega_oidc"


class OidcError(WebError):
    """The OpenID Connect login could not be completed; the message is safe to show (no tokens in it)."""

    code = "oidc"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_challenge(verifier: str) -> str:
    """S256 code challenge of a PKCE verifier."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


class OidcClient:
    """Talks to one provider; discovery and keys are cached for an hour."""

    def __init__(
        self,
        cfg: OidcSettings,
        redirect_uri: str,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        groups: list[IdpGroupGrant] | None = None,
        tenants: list[str] | None = None,
        mfa_required: bool = True,
    ) -> None:
        self.cfg = cfg
        #: The ``[[web.idp_groups]]`` mapping and the deployment's kommunkoder (IdP grants stay within them).
        self.groups = groups or []
        self.tenants = tenants or []
        #: ``[web] mfa_required``: a second factor is required of every login.
        self.mfa_required = mfa_required
        self.issuer = cfg.issuer.rstrip("/")
        self.redirect_uri = redirect_uri
        self.transport = transport
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, KeySet] | None = None

    def _client(self) -> httpx.AsyncClient:
        # A new client per call: the app may serve from several event loops (tests, workers).
        return httpx.AsyncClient(timeout=self.cfg.timeout_seconds, transport=self.transport)

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (its issuer must be the configured one)."""
        if self._metadata and time.monotonic() - self._metadata[0] < 3600:
            return self._metadata[1]
        try:
            async with self._client() as client:
                response = await client.get(f"{self.issuer}/.well-known/openid-configuration")
                response.raise_for_status()
                data: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError("the identity provider cannot be reached") from exc
        if data.get("issuer", "").rstrip("/") != self.issuer:
            raise OidcError("the identity provider's discovery names another issuer")
        if "S256" not in data.get("code_challenge_methods_supported", ["S256"]):
            raise OidcError("the identity provider does not support PKCE S256")
        self._metadata = (time.monotonic(), data)
        return data

    async def keys(self, refresh: bool = False) -> KeySet:
        """The provider's signing keys."""
        if self._keys and not refresh and time.monotonic() - self._keys[0] < 3600:
            return self._keys[1]
        meta = await self.metadata()
        try:
            async with self._client() as client:
                response = await client.get(meta["jwks_uri"])
                response.raise_for_status()
                keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, KeyError, JoseError) as exc:
            raise OidcError("the identity provider's keys cannot be read") from exc
        self._keys = (time.monotonic(), keys)
        return keys

    async def begin(self, db: Database, now: datetime) -> tuple[str, str]:
        """Start a login: (authorization URL, browser-binding cookie value)."""
        meta = await self.metadata()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, binding = secrets.token_urlsafe(48), secrets.token_urlsafe(32)
        with db.session() as s:
            s.execute(delete(LoginState).where(LoginState.created_at < now - LOGIN_TTL))
            s.add(
                LoginState(
                    state_hash=sha256(state),
                    nonce=nonce,
                    code_verifier=verifier,
                    browser_binding=sha256(binding),
                    created_at=now,
                )
            )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.cfg.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": " ".join(self.cfg.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": pkce_challenge(verifier),
                "code_challenge_method": "S256",
                # A voluntary claim request (OpenID Connect Core 3.1.2.1): the provider should
                # log the person in at one of these levels; the ID token's acr/amr is what counts.
                **({"acr_values": " ".join(self.cfg.mfa_acr_values)} if self.cfg.mfa_acr_values else {}),
            }
        )
        return f"{meta['authorization_endpoint']}?{query}", binding

    @staticmethod
    def take_state(db: Database, state: str, binding: str | None, now: datetime) -> LoginState:
        """The login the state belongs to, removed so it is used once; OidcError when unknown or foreign."""
        with db.session() as s:
            row = s.get(LoginState, sha256(state)) if state else None
            if row is not None:
                s.delete(row)
        if row is None or now - row.created_at > LOGIN_TTL:
            raise OidcError("the login has expired or was already used")
        if not binding or not hmac.compare_digest(row.browser_binding, sha256(binding)):
            raise OidcError("the login was started in another browser")
        return row

    async def finish(self, code: str, login: LoginState, iss: str | None, now: datetime) -> dict[str, Any]:
        """Redeem the code and return the ID token's verified claims."""
        if iss is not None and iss.rstrip("/") != self.issuer:
            raise OidcError("the answer came from another issuer")
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": login.code_verifier,
        }
        try:
            async with self._client() as client:
                response = await client.post(
                    meta["token_endpoint"], data=form, auth=(self.cfg.client_id, self.cfg.client_secret.resolve())
                )
        except httpx.HTTPError as exc:
            raise OidcError("the identity provider cannot be reached") from exc
        if response.status_code != 200:
            error = (
                response.json().get("error", "error")
                if response.headers.get("content-type", "").startswith("application/json")
                else str(response.status_code)
            )
            raise OidcError(f"the identity provider refused the code ({error})")
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the identity provider sent no ID token")
        claims = await self._verify(id_token, response.json().get("access_token"), now)
        if not hmac.compare_digest(str(claims.get("nonce", "")), login.nonce):
            raise OidcError("the ID token's nonce does not match the login")
        return claims

    async def _verify(self, id_token: str, access_token: Any, now: datetime) -> dict[str, Any]:
        try:
            try:
                token = jwt.decode(id_token, await self.keys(), algorithms=["RS256"])
            except JoseError:
                token = jwt.decode(id_token, await self.keys(refresh=True), algorithms=["RS256"])
            registry = jwt.JWTClaimsRegistry(
                now=int(now.timestamp()),
                leeway=self.cfg.clock_skew_seconds,
                iss={"essential": True, "value": self.issuer},
                sub={"essential": True},
                aud={"essential": True, "value": self.cfg.client_id},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True},
            )
            registry.validate(token.claims)
        except JoseError as exc:
            raise OidcError(f"the ID token is not valid ({type(exc).__name__})") from exc
        claims = dict(token.claims)
        if int(claims["iat"]) > now.timestamp() + self.cfg.clock_skew_seconds:
            raise OidcError("the ID token was issued in the future")
        audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audience) > 1 and claims.get("azp") != self.cfg.client_id:
            raise OidcError("the ID token's azp is not this client")
        if "at_hash" in claims and isinstance(access_token, str):
            expected = _b64url(hashlib.sha256(access_token.encode()).digest()[:16])
            if not hmac.compare_digest(expected, str(claims["at_hash"])):
                raise OidcError("the ID token's at_hash does not match the access token")
        return claims

    def second_factor(self, claims: dict[str, Any]) -> str | None:
        """How the ID token shows a second factor (``acr:<value>`` or ``amr:<value>``), or None.

        ``acr`` (OpenID Connect Core 2) is matched against ``mfa_acr_values``; ``amr`` (a list
        of RFC 8176 method names) against ``mfa_amr_values``.
        """
        acr = claims.get("acr")
        if isinstance(acr, str) and acr in self.cfg.mfa_acr_values:
            return f"acr:{acr}"
        amr = claims.get("amr")
        methods = [str(m) for m in amr] if isinstance(amr, list) else []
        for method in methods:
            if method in self.cfg.mfa_amr_values:
                return f"amr:{method}"
        return None

    def refuse_without_second_factor(self, db: Database, claims: dict[str, Any], now: datetime) -> bool:
        """True (and a ``user.login_refused`` audit event) when the login lacks the second factor required.

        Required while ``[web] mfa_required`` is on and ``require_mfa`` is set: every Kollega role
        can open personal data, so no role signs in on one factor. Nothing is provisioned for a
        refused login; the event names the account (or the subject) and what the provider asserted.
        """
        if not self.mfa_required or not self.cfg.require_mfa or self.second_factor(claims) is not None:
            return False
        sub = str(claims["sub"])
        amr = claims.get("amr")
        with db.session() as s:
            username = s.scalar(
                select(User.username).where(User.oidc_issuer == self.issuer, User.oidc_subject == sub)
            ) or str(claims.get("preferred_username") or sub)
            audit.append(
                s,
                actor="system:web",
                action="user.login_refused",
                subject=f"user:{username}",
                details={
                    "via": "oidc",
                    "reason": "no_second_factor",
                    "acr": str(claims["acr"])[:200] if "acr" in claims else None,
                    "amr": [str(m)[:40] for m in amr][:10] if isinstance(amr, list) else None,
                },
                now=now,
            )
        return True

    def grants_from(self, claims: dict[str, Any]) -> set[Grant]:
        """Grants from the role, tenant and queue claims and the mapped groups (unknown roles are ignored)."""

        def strings(name: str) -> list[str]:
            value = claims.get(name) or []
            return [str(v) for v in (value if isinstance(value, list) else [value])]

        roles = [Role(r) for r in strings(self.cfg.roles_claim) if r in Role.__members__]
        queues = strings(self.cfg.queues_claim)
        grants: set[Grant] = set()
        for tenant in strings(self.cfg.tenants_claim):
            for role in roles:
                if role == Role.case_worker or (role == Role.coordinator and queues):
                    grants.update(Grant(role, tenant, q) for q in queues)
                else:
                    grants.add(Grant(role, tenant))
        return grants | idp_grants.mapped_grants(strings(self.cfg.groups_claim), self.groups)

    def provision(self, db: Database, claims: dict[str, Any], now: datetime) -> User:
        """The user for these claims: found by (issuer, sub), created on first login; grants synced."""
        sub = str(claims["sub"])
        with db.session() as s:
            user = s.scalar(select(User).where(User.oidc_issuer == self.issuer, User.oidc_subject == sub))
            if user is None:
                wanted = str(claims.get("preferred_username") or sub)
                taken = s.scalar(select(User.id).where(User.username == wanted))
                # Never attach an OIDC identity to an existing local account by name.
                username = wanted if taken is None else f"{wanted}~{sub[:8]}"
                user = User(
                    username=username,
                    display_name=str(claims.get("name") or username),
                    email=claims.get("email"),
                    oidc_issuer=self.issuer,
                    oidc_subject=sub,
                    active=True,
                    failed_logins=0,
                    created_at=now,
                )
                s.add(user)
                s.flush()
                audit.append(
                    s,
                    actor="system:web",
                    action="user.created",
                    subject=f"user:{username}",
                    details={"via": "oidc"},
                    now=now,
                )
            else:
                user.display_name = str(claims.get("name") or user.display_name)
            if self.cfg.sync_roles:
                idp_grants.sync(s, user, self.grants_from(claims), tenants=self.tenants, via="oidc", now=now)
            return user
