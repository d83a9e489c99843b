"""An OpenID Connect provider, so that logging in can be tested without a real identity provider.

Authorization code flow only, with PKCE S256 required (plain or missing is refused), state
passed through, the nonce put in the ID token, client authentication by client_secret_basic
or client_secret_post, ID tokens signed RS256 with a key derived from the seed (the same
seed gives the same key, so tokens stay verifiable across restarts). Routes under ``/oidc``:

    GET  /.well-known/openid-configuration   discovery
    GET  /authorize                          validates the request, shows the demo users
    POST /authorize                          tx + username → 303 to redirect_uri?code=…&state=…&iss=…
    POST /token                              code + code_verifier → access token and ID token
    GET  /jwks                               the public signing key
    GET|POST /userinfo                       claims for a Bearer access token
    GET  /logout                             end_session_endpoint: back to post_logout_redirect_uri

Demo users carry ``roles``, ``tenants`` and ``queues`` claims, and ``amr`` (RFC 8176; password
and one-time code, or password only) or ``acr`` (see :data:`DEMO_USERS`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import random
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import jinja2
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import RSAKey

DEFAULT_SEED = 1
DEMO_CLIENT_ID = "kollega-web"
#: The demo client's secret: a sandbox-only value, never used outside the sandbox.
DEMO_CLIENT_SECRET = "sandbox-kollega-web-secret"  # noqa: S105 - a published test value
SCOPES = ("openid", "profile", "email")
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "testserver"}


@dataclass(frozen=True)
class DemoUser:
    """A person who can log in at the sandbox provider."""

    username: str
    name: str
    email: str
    roles: tuple[str, ...]
    tenants: tuple[str, ...]
    queues: tuple[str, ...] = ()
    description: str = ""
    #: Directory groups, as a municipality's IdP sends them (``groups`` claim and SAML attribute).
    groups: tuple[str, ...] = ()
    #: How the person authenticated, as RFC 8176 names it (the ID token's ``amr``): password
    #: and a one-time code unless the user is one who logs in on one factor only.
    amr: tuple[str, ...] = ("pwd", "otp")
    #: The ID token's ``acr`` (authentication context class), when the provider states one.
    acr: str | None = None

    @property
    def sub(self) -> str:
        """A stable, opaque subject identifier."""
        return "u-" + hashlib.sha256(f"kollega-sandbox|{self.username}".encode()).hexdigest()[:16]

    def claims(self, scope: Iterable[str]) -> dict[str, Any]:
        """The user's claims for the granted scopes; roles, tenants and queues always."""
        scopes = set(scope)
        out: dict[str, Any] = {
            "sub": self.sub,
            "roles": list(self.roles),
            "tenants": list(self.tenants),
            "queues": list(self.queues),
            "groups": list(self.groups),
        }
        if "profile" in scopes:
            given, _, family = self.name.partition(" ")
            out.update(name=self.name, given_name=given, family_name=family, preferred_username=self.username)
        if "email" in scopes:
            out.update(email=self.email, email_verified=True)
        return out


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser(
        "anna.handlaggare",
        "Anna Lind",
        "anna.lind@ronneby.example",
        ("case_worker",),
        ("1081",),
        ("ronney.review",),
        "Handläggare, ekonomiskt bistånd (kö ronney.review), Ronneby kommun 1081",
        ("Kollega Ronneby Handläggare EKB", "Alla anställda"),
    ),
    DemoUser(
        "erik.samordnare",
        "Erik Berg",
        "erik.berg@ronneby.example",
        ("coordinator",),
        ("1081",),
        ("bosse.review", "lena.review"),
        "Samordnare, bemanning och hemtjänst, Ronneby kommun 1081",
        ("Kollega Ronneby Samordnare", "Alla anställda"),
    ),
    DemoUser(
        "sara.drift",
        "Sara Holm",
        "sara.holm@ronneby.example",
        ("operations",),
        ("1081",),
        (),
        "Drift, Ronneby kommun 1081",
        ("Kollega Ronneby Drift", "Alla anställda"),
    ),
    DemoUser(
        "johan.it",
        "Johan Ek",
        "johan.ek@ronneby.example",
        ("it_admin",),
        ("1081",),
        (),
        "IT-administratör, Ronneby kommun 1081",
        ("Kollega Ronneby IT", "Alla anställda"),
    ),
    DemoUser(
        "maria.revisor",
        "Maria Sjö",
        "maria.sjo@ronneby.example",
        ("auditor",),
        ("1081",),
        (),
        "Granskare (loggkontroll), Ronneby kommun 1081",
        ("Kollega Ronneby Granskare", "Alla anställda"),
    ),
    DemoUser(
        "olof.losenord",
        "Olof Ask",
        "olof.ask@ronneby.example",
        ("operations",),
        ("1081",),
        (),
        "Drift, Ronneby kommun 1081; loggar in med enbart lösenord (ingen andra faktor)",
        amr=("pwd",),
    ),
    DemoUser(
        "lisa.siths",
        "Lisa Dal",
        "lisa.dal@ronneby.example",
        ("auditor",),
        ("1081",),
        (),
        "Granskare, Ronneby kommun 1081; inloggningen anger tillitsnivå (acr) i stället för metoder (amr)",
        amr=(),
        acr="http://id.sambi.se/loa/loa3",
    ),
    DemoUser(
        "karin.karlshamn",
        "Karin Ström",
        "karin.strom@karlshamn.example",
        ("case_worker",),
        ("1082",),
        ("ronney.review",),
        "Handläggare, ekonomiskt bistånd (kö ronney.review), Karlshamns kommun 1082",
        ("Kollega Karlshamn Handläggare EKB", "Alla anställda"),
    ),
)


@dataclass(frozen=True)
class OidcClient:
    """A registered relying party: exact redirect URIs, plus any port on loopback hosts (RFC 8252 §7.3)."""

    client_id: str
    secret: str
    redirect_uris: tuple[str, ...] = ()
    allow_loopback: bool = True

    def accepts(self, uri: str) -> bool:
        """Whether ``uri`` is a redirect URI registered for this client."""
        if uri in self.redirect_uris:
            return True
        parts = urlsplit(uri)
        return (
            self.allow_loopback
            and parts.scheme == "http"
            and parts.hostname in _LOOPBACK
            and not parts.fragment
            and not parts.username
        )


@dataclass
class Grant:
    """A pending authorization (``tx``) that becomes an authorization code once a user logs in."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str
    created: datetime
    username: str | None = None
    used: bool = False
    access_tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AccessToken:
    """An opaque access token for the userinfo endpoint."""

    username: str
    client_id: str
    scope: tuple[str, ...]
    expires: datetime


def _is_probable_prime(n: int, rng: random.Random) -> bool:
    for p in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(40):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


@lru_cache(maxsize=8)
def signing_key(seed: int, bits: int = 2048) -> RSAKey:
    """The RS256 signing key for a seed: primes drawn from a seeded generator, so tokens stay verifiable.

    Deterministic on purpose, which is only acceptable because this is a sandbox.
    """
    rng = random.Random(f"oidc-signing-key|{seed}")  # reproducible on purpose: a sandbox key
    e = 65537

    def prime() -> int:
        while True:
            candidate = rng.getrandbits(bits // 2) | (3 << (bits // 2 - 2)) | 1
            if candidate % e != 1 and _is_probable_prime(candidate, rng):
                return candidate

    p, q = prime(), prime()
    while q == p:
        q = prime()
    d = pow(e, -1, math.lcm(p - 1, q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(e, p * q)
    )
    key = RSAKey.import_key(numbers.private_key(), {"use": "sig", "alg": "RS256"})
    key.ensure_kid()
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge for a verifier."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


class OidcProvider:
    """The provider's state: signing key, clients, users, pending grants and tokens."""

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        *,
        clients: Iterable[OidcClient] | None = None,
        users: Iterable[DemoUser] = DEMO_USERS,
        issuer: str | None = None,
        code_ttl: timedelta = timedelta(seconds=120),
        token_ttl: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.seed = seed
        self.key = signing_key(seed)
        self.clients = {c.client_id: c for c in (clients or [OidcClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)])}
        self.users = {u.username: u for u in users}
        self.issuer = issuer
        self.code_ttl = code_ttl
        self.token_ttl = token_ttl
        self.clock = clock or (lambda: datetime.now(UTC))
        self.pending: dict[str, Grant] = {}
        self.codes: dict[str, Grant] = {}
        self.tokens: dict[str, AccessToken] = {}

    def prune(self) -> None:
        """Forget pending logins and codes older than ten minutes (a used code is kept that long to spot reuse)."""
        horizon = self.clock() - timedelta(minutes=10)
        for table in (self.pending, self.codes):
            for key in [k for k, grant in table.items() if grant.created < horizon]:
                del table[key]

    def issuer_for(self, request: Request) -> str:
        """The issuer: configured, or this server's own base URL + /oidc."""
        return self.issuer or str(request.base_url).rstrip("/") + "/oidc"

    def jwks(self) -> dict[str, Any]:
        """The public key set."""
        return {"keys": [self.key.as_dict(private=False)]}

    def id_token(self, issuer: str, grant: Grant, access_token: str) -> str:
        """A signed ID token for a redeemed grant."""
        assert grant.username is not None
        now = self.clock()
        at_hash = _b64url(hashlib.sha256(access_token.encode()).digest()[:16])
        claims = {
            "iss": issuer,
            "aud": grant.client_id,
            "azp": grant.client_id,
            "iat": int(now.timestamp()),
            "exp": int((now + self.token_ttl).timestamp()),
            "auth_time": int(grant.created.timestamp()),
            "at_hash": at_hash,
            **self.users[grant.username].claims(grant.scope),
        }
        user = self.users[grant.username]
        if user.amr:
            claims["amr"] = list(user.amr)
        if user.acr is not None:
            claims["acr"] = user.acr
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        return jwt.encode({"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}, claims, self.key)


def provider_for(state: Any) -> OidcProvider:
    """The provider kept in the shared sandbox state (new after each reset, same key for the same seed).

    Tokens are stamped with real time, not the sandbox clock: relying parties check ``exp``
    and ``iat`` against their own clocks.
    """
    provider: OidcProvider = state.store("oidc", lambda: OidcProvider(int(state.seed)))
    return provider


def setup(state: Any) -> None:
    """Called once by ``create_app``: the provider's users and counts join ``GET /admin/state/oidc``."""

    def inspect(st: Any) -> dict[str, Any]:
        provider = provider_for(st)
        return {
            "issuer_key_id": provider.key.kid,
            "users": sorted(provider.users),
            "codes_issued": len(provider.codes),
            "codes_redeemed": sum(g.used for g in provider.codes.values()),
            "access_tokens": len(provider.tokens),
        }

    state.register_inspector("oidc", inspect)


def get_provider(request: Request) -> OidcProvider:
    """The provider: in the shared sandbox state when there is one (new on reset), else on the app."""
    shared = getattr(request.app.state, "sandbox", None)
    if shared is not None:
        return provider_for(shared)
    fallback: OidcProvider | None = getattr(request.app.state, "oidc", None)
    if fallback is None:
        fallback = request.app.state.oidc = OidcProvider()
    return fallback


router = APIRouter(prefix="/oidc", include_in_schema=False)

_PAGE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="sv"><head><meta charset="utf-8"><title>{{ title }} – Sandlådans inloggning</title>
<style>body{font-family:Arial,sans-serif;margin:2rem;max-width:44rem}li{margin:.6rem 0}
button{font-size:1rem;padding:.3rem .8rem}.desc{color:#374151;margin-left:.5rem}</style></head>
<body><main><h1>{{ title }}</h1>
{% if error %}<p role="alert">{{ error }}</p>{% endif %}
{% if users %}<p>Välj en testanvändare. Inga riktiga personer eller lösenord finns här.</p>
<form method="post" action="/oidc/authorize"><input type="hidden" name="tx" value="{{ tx }}">
<ul>{% for u in users %}<li><button type="submit" name="username" value="{{ u.username }}">Logga in som {{ u.name }}</button>
<span class="desc">{{ u.description }}</span></li>{% endfor %}</ul>
<p><button type="submit" name="cancel" value="1">Avbryt</button></p></form>{% endif %}
</main></body></html>""")


def _page(
    title: str, *, status: int = 200, error: str = "", users: Iterable[DemoUser] = (), tx: str = ""
) -> HTMLResponse:
    html = _PAGE.render(title=title, error=error, users=list(users), tx=tx)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _redirect(uri: str, params: dict[str, str | None]) -> RedirectResponse:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query) + [(k, v) for k, v in params.items() if v is not None]
    return RedirectResponse(urlunsplit(parts._replace(query=urlencode(query))), status_code=303)


def _oauth_error(
    error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})},
    )


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> JSONResponse:
    """The discovery document."""
    issuer = get_provider(request).issuer_for(request)
    return JSONResponse(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "end_session_endpoint": f"{issuer}/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": list(SCOPES),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "amr",
                "nonce",
                "at_hash",
                "azp",
                "name",
                "given_name",
                "family_name",
                "preferred_username",
                "email",
                "email_verified",
                "roles",
                "tenants",
                "queues",
                "groups",
            ],
            "ui_locales_supported": ["sv"],
        }
    )


@router.get("/jwks")
async def jwks(request: Request) -> JSONResponse:
    """The public signing keys."""
    return JSONResponse(get_provider(request).jwks())


@router.get("/authorize")
async def authorize(request: Request) -> Response:
    """Validate an authorization request and show the demo users to log in as."""
    provider = get_provider(request)
    q = request.query_params
    client = provider.clients.get(q.get("client_id", ""))
    redirect_uri = q.get("redirect_uri", "")
    # Without a known client and its registered redirect URI nothing may be redirected (RFC 6749 §4.1.2.1).
    if client is None:
        return _page("Inloggningen kunde inte starta", status=400, error="Okänd klient (client_id).")
    if not redirect_uri or not client.accepts(redirect_uri):
        return _page("Inloggningen kunde inte starta", status=400, error="Ogiltig redirect_uri för klienten.")
    state = q.get("state")
    iss = provider.issuer_for(request)

    def refuse(error: str, description: str) -> RedirectResponse:
        return _redirect(redirect_uri, {"error": error, "error_description": description, "state": state, "iss": iss})

    if q.get("response_type") != "code":
        return refuse("unsupported_response_type", "Only response_type=code is supported.")
    scope = tuple(q.get("scope", "").split())
    if "openid" not in scope:
        return refuse("invalid_scope", "The openid scope is required.")
    if q.get("prompt") == "none":
        return refuse("login_required", "The sandbox provider keeps no login session.")
    challenge, method = q.get("code_challenge"), q.get("code_challenge_method")
    if not challenge:
        return refuse("invalid_request", "PKCE is required: code_challenge is missing.")
    if method != "S256":
        return refuse("invalid_request", "PKCE code_challenge_method must be S256 (plain is not accepted).")
    if not _CHALLENGE.fullmatch(challenge):
        return refuse("invalid_request", "code_challenge is not a base64url SHA-256 value.")
    provider.prune()
    tx = secrets.token_urlsafe(24)
    provider.pending[tx] = Grant(
        client.client_id,
        redirect_uri,
        tuple(s for s in scope if s in SCOPES),
        state,
        q.get("nonce"),
        challenge,
        provider.clock(),
    )
    return _page("Logga in i sandlådan", users=provider.users.values(), tx=tx)


@router.post("/authorize")
async def login(request: Request) -> Response:
    """The chosen user logs in: the pending grant becomes a one-time code sent to the client."""
    provider = get_provider(request)
    form = await request.form()
    grant = provider.pending.pop(str(form.get("tx", "")), None)
    if grant is None or provider.clock() - grant.created > timedelta(minutes=10):
        return _page("Inloggningen har gått ut", status=400, error="Börja om inloggningen från tjänsten.")
    iss = provider.issuer_for(request)
    if form.get("cancel"):
        return _redirect(grant.redirect_uri, {"error": "access_denied", "state": grant.state, "iss": iss})
    username = str(form.get("username", ""))
    if username not in provider.users:
        return _page("Okänd användare", status=400, error="Användaren finns inte.")
    grant.username = username
    grant.created = provider.clock()
    code = secrets.token_urlsafe(32)
    provider.codes[code] = grant
    return _redirect(grant.redirect_uri, {"code": code, "state": grant.state, "iss": iss})


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str, str] | JSONResponse:
    """(client_id, secret, method) from a Basic header or the form; never both."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        if "client_secret" in form:
            return _oauth_error("invalid_request", "Use one client authentication method.")
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return _oauth_error(
                "invalid_client", "Malformed Basic credentials.", 401, {"WWW-Authenticate": 'Basic realm="oidc"'}
            )
        client_id, _, secret = raw.partition(":")
        return unquote_plus(client_id), unquote_plus(secret), "basic"
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"], "post"
    return _oauth_error(
        "invalid_client", "Client authentication is required.", 401, {"WWW-Authenticate": 'Basic realm="oidc"'}
    )


@router.post("/token")
async def token(request: Request) -> Response:
    """Redeem an authorization code (once), checking the client, redirect URI and PKCE verifier."""
    provider = get_provider(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    creds = _client_credentials(request, form)
    if isinstance(creds, JSONResponse):
        return creds
    client_id, secret, method = creds
    client = provider.clients.get(client_id)
    if client is None or not hmac.compare_digest(client.secret.encode(), secret.encode()):
        return _oauth_error(
            "invalid_client",
            "Unknown client or wrong secret.",
            401,
            {"WWW-Authenticate": 'Basic realm="oidc"'} if method == "basic" else None,
        )
    if form.get("grant_type") != "authorization_code":
        return _oauth_error("unsupported_grant_type", "Only authorization_code is supported.")
    grant = provider.codes.get(form.get("code", ""))
    if grant is None or grant.client_id != client.client_id:
        return _oauth_error("invalid_grant", "Unknown authorization code.")
    if grant.used:
        # A code presented twice may have been stolen: revoke what it gave (RFC 6749 §4.1.2).
        for issued in grant.access_tokens:
            provider.tokens.pop(issued, None)
        return _oauth_error("invalid_grant", "The authorization code has already been used.")
    grant.used = True  # one attempt per code, whatever its outcome
    if provider.clock() - grant.created > provider.code_ttl:
        return _oauth_error("invalid_grant", "The authorization code has expired.")
    if form.get("redirect_uri") != grant.redirect_uri:
        return _oauth_error("invalid_grant", "redirect_uri does not match the authorization request.")
    verifier = form.get("code_verifier", "")
    if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(s256(verifier), grant.code_challenge):
        return _oauth_error("invalid_grant", "PKCE verification failed.")
    assert grant.username is not None
    access_token = secrets.token_urlsafe(32)
    provider.tokens[access_token] = AccessToken(
        grant.username, client.client_id, grant.scope, provider.clock() + provider.token_ttl
    )
    grant.access_tokens.append(access_token)
    return JSONResponse(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": int(provider.token_ttl.total_seconds()),
            "scope": " ".join(grant.scope),
            "id_token": provider.id_token(provider.issuer_for(request), grant, access_token),
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.api_route("/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request) -> Response:
    """Claims for the holder of a valid Bearer access token."""
    provider = get_provider(request)
    header = request.headers.get("authorization", "")
    issued = provider.tokens.get(header[7:].strip()) if header.lower().startswith("bearer ") else None
    if issued is None or issued.expires < provider.clock():
        return JSONResponse(
            {"error": "invalid_token"}, status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    return JSONResponse(provider.users[issued.username].claims(issued.scope), headers={"Cache-Control": "no-store"})


@router.get("/logout")
async def logout(request: Request, post_logout_redirect_uri: str = "", state: str | None = None) -> Response:
    """End session: back to a registered client's URI, else a plain page."""
    provider = get_provider(request)
    if post_logout_redirect_uri and any(c.accepts(post_logout_redirect_uri) for c in provider.clients.values()):
        return _redirect(post_logout_redirect_uri, {"state": state})
    return _page("Du är utloggad")


__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_USERS",
    "DemoUser",
    "OidcClient",
    "OidcProvider",
    "get_provider",
    "provider_for",
    "router",
    "s256",
    "setup",
    "signing_key",
]
