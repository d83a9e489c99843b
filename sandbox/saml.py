"""A SAML 2.0 identity provider, so that SAML sign-in can be tested without a municipality's IdP.

Built on pysaml2's IdP (``saml2.server.Server``), signing with a key derived from the seed
(the OIDC provider's, so metadata stays the same across restarts) and a self-signed
certificate made from it: test-only material, never a real key. Routes under ``/saml``:

    GET  /metadata   the IdP's metadata (entity ID = this URL)
    POST /sp         register a service provider by its metadata (XML body)
    GET  /sso        an AuthnRequest (HTTP-Redirect) → the page of demo users
    POST /sso        tx + username (+ "password only") → a form that POSTs the signed
                     Response to the SP's assertion consumer service
    GET  /slo        the SP's LogoutRequest → a signed LogoutResponse back to it

An SP not yet registered whose entity ID is an ``http://127.0.0.1…`` or ``localhost`` URL
is registered by reading its metadata from that URL (Kollega's entity ID is its metadata's
URL). The demo users are the OIDC provider's; their ``groups`` are sent in the ``groups``
attribute. A person may choose to sign in with a password only: the assertion then says
``PasswordProtectedTransport`` instead of the REFEDS MFA profile.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jinja2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.utils import CryptographyDeprecationWarning
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.testing.saml import certificate_pem, key_pem
from sandbox.oidc import DEFAULT_SEED, DEMO_USERS, DemoUser, signing_key

with warnings.catch_warnings():
    # As in core.web.saml: pysaml2 names a cipher mode cryptography deprecates; this import only.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.config import IdPConfig
    from saml2.metadata import create_metadata_string
    from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_PERSISTENT, NameID
    from saml2.server import Server

#: What the sandbox asserts after a second factor, and after a password alone.
MFA_CONTEXT = "https://refeds.org/profile/mfa"
PASSWORD_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105 - a URI
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@lru_cache(maxsize=8)
def key_files(seed: int) -> tuple[Path, Path]:
    """The IdP's key (the OIDC provider's, from the seed) and a self-signed certificate, as files.

    Made once per seed and process (a sandbox reset keeps them): test-only material.
    """
    directory = Path(tempfile.mkdtemp(prefix="sandbox-saml-"))
    key = serialization.load_pem_private_key(signing_key(seed).as_pem(private=True), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    key_file, cert_file = directory / "idp.key", directory / "idp.crt"
    key_file.write_bytes(key_pem(key))
    key_file.chmod(0o600)
    cert_file.write_bytes(
        certificate_pem(key, "kollega-sandbox-idp (test only)", not_before=datetime(2020, 1, 1, tzinfo=UTC))
    )
    return key_file, cert_file


@dataclass
class PendingLogin:
    """An AuthnRequest waiting for the person to pick a demo user."""

    request_id: str
    sp: str
    acs: str
    relay_state: str
    created: datetime


@dataclass
class SamlIdp:
    """The IdP's state: key, registered SPs, pending logins, issued sessions."""

    seed: int = DEFAULT_SEED
    users: dict[str, DemoUser] = field(default_factory=lambda: {u.username: u for u in DEMO_USERS})
    sps: dict[str, str] = field(default_factory=dict)
    pending: dict[str, PendingLogin] = field(default_factory=dict)
    #: Assertions issued: (sp, username, session index).
    issued: list[tuple[str, str, str]] = field(default_factory=list)
    logouts: int = 0

    def __post_init__(self) -> None:
        self.key_file, self.cert_file = key_files(self.seed)
        self._servers: dict[tuple[str, frozenset[str]], Server] = {}

    @staticmethod
    def entity_id(base: str) -> str:
        """The IdP's entity ID: its metadata's URL."""
        return f"{base}/saml/metadata"

    def config(self, base: str, *, lifetime_seconds: int = 300) -> IdPConfig:
        """pysaml2's IdP configuration for this base URL and the registered SPs."""
        xmlsec = shutil.which("xmlsec1")
        if xmlsec is None:
            raise RuntimeError("the sandbox's SAML IdP needs xmlsec1 (apt-get install xmlsec1)")
        conf: dict[str, Any] = {
            "entityid": self.entity_id(base),
            "xmlsec_binary": xmlsec,
            "key_file": str(self.key_file),
            "cert_file": str(self.cert_file),
            "accepted_time_diff": 60,
            "allow_unknown_attributes": True,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [(f"{base}/saml/sso", BINDING_HTTP_REDIRECT)],
                        "single_logout_service": [(f"{base}/saml/slo", BINDING_HTTP_REDIRECT)],
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                    "sign_assertion": True,
                    "sign_response": True,
                    "policy": {
                        "default": {
                            "lifetime": {"seconds": lifetime_seconds},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_BASIC,
                        }
                    },
                }
            },
            "metadata": {"inline": list(self.sps.values())} if self.sps else {},
            "delete_tmpfiles": True,
        }
        config = IdPConfig()
        config.load(conf)
        return config

    def server(self, base: str, *, lifetime_seconds: int = 300) -> Server:
        """pysaml2's IdP for this base URL (cached until an SP registers)."""
        key = (f"{base}|{lifetime_seconds}", frozenset(self.sps))
        if key not in self._servers:
            self._servers[key] = Server(config=self.config(base, lifetime_seconds=lifetime_seconds))
        return self._servers[key]

    def metadata(self, base: str) -> str:
        """The IdP's metadata XML."""
        text = create_metadata_string(None, config=self.config(base), valid=None, sign=False)
        return text.decode() if isinstance(text, bytes) else str(text)

    def register(self, metadata_xml: str) -> str:
        """Register an SP by its metadata; returns its entity ID."""
        from defusedxml import ElementTree

        root = ElementTree.fromstring(metadata_xml.encode())
        entity = str(root.get("entityID") or "")
        if not entity:
            raise ValueError("no entityID in the SP metadata")
        self.sps[entity] = metadata_xml
        return entity

    def name_id(self, base: str, sp: str, user: DemoUser) -> NameID:
        """The person's persistent NameID towards one SP."""
        return NameID(
            format=NAMEID_FORMAT_PERSISTENT, text=user.sub, name_qualifier=self.entity_id(base), sp_name_qualifier=sp
        )

    def response(
        self,
        base: str,
        login: PendingLogin,
        username: str,
        *,
        mfa: bool = True,
        sign_assertion: bool = True,
        sign_response: bool | None = None,
        audience: str | None = None,
        lifetime_seconds: int = 300,
    ) -> str:
        """A Response (XML) for a pending login; the keyword arguments make broken ones for tests."""
        user = self.users[username]
        server = self.server(base, lifetime_seconds=lifetime_seconds)
        identity = {
            "uid": [user.username],
            "displayName": [user.name],
            "mail": [user.email],
            "groups": list(user.groups),
        }
        response = server.create_authn_response(
            identity,
            in_response_to=login.request_id,
            destination=login.acs,
            sp_entity_id=audience or login.sp,
            name_id=self.name_id(base, login.sp, user),
            authn={
                "class_ref": MFA_CONTEXT if mfa else PASSWORD_CONTEXT,
                "authn_auth": self.entity_id(base),
            },
            sign_assertion=sign_assertion,
            sign_response=sign_assertion if sign_response is None else sign_response,
            session_not_on_or_after=None,
        )
        self.issued.append((login.sp, username, _session_index(str(response))))
        return str(response)

    def prune(self) -> None:
        """Forget logins older than ten minutes."""
        horizon = datetime.now(UTC) - timedelta(minutes=10)
        for tx in [t for t, p in self.pending.items() if p.created < horizon]:
            del self.pending[tx]


def _session_index(xml: str) -> str:
    """The SessionIndex pysaml2 put in a Response's AuthnStatement ("" when none)."""
    from defusedxml import ElementTree

    statement = ElementTree.fromstring(xml.encode()).find(".//{urn:oasis:names:tc:SAML:2.0:assertion}AuthnStatement")
    return str(statement.get("SessionIndex") or "") if statement is not None else ""


def idp_for(state: Any) -> SamlIdp:
    """The IdP kept in the shared sandbox state (new after each reset, same key for the same seed)."""
    idp: SamlIdp = state.store("saml", lambda: SamlIdp(int(state.seed)))
    return idp


def setup(state: Any) -> None:
    """Called once by ``create_app``: the IdP's counts join ``GET /admin/state/saml``."""

    def inspect(st: Any) -> dict[str, Any]:
        idp = idp_for(st)
        return {"service_providers": sorted(idp.sps), "assertions_issued": len(idp.issued), "logouts": idp.logouts}

    state.register_inspector("saml", inspect)


def get_idp(request: Request) -> SamlIdp:
    """The IdP: in the shared sandbox state when there is one, else on the app."""
    shared = getattr(request.app.state, "sandbox", None)
    if shared is not None:
        return idp_for(shared)
    fallback: SamlIdp | None = getattr(request.app.state, "saml_idp", None)
    if fallback is None:
        fallback = request.app.state.saml_idp = SamlIdp()
    return fallback


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


router = APIRouter(prefix="/saml", include_in_schema=False)

_PAGE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="sv"><head><meta charset="utf-8"><title>{{ title }} – Sandlådans SAML-inloggning</title>
<style>body{font-family:Arial,sans-serif;margin:2rem;max-width:44rem}li{margin:.6rem 0}
button{font-size:1rem;padding:.3rem .8rem}.desc{color:#374151;margin-left:.5rem}</style></head>
<body><main><h1>{{ title }}</h1>
{% if error %}<p role="alert">{{ error }}</p>{% endif %}
{% if users %}<p>Välj en testanvändare. Inga riktiga personer eller lösenord finns här.
Inloggningen sker med andra faktor (REFEDS MFA) om du inte kryssar i rutan.</p>
<form method="post" action="/saml/sso"><input type="hidden" name="tx" value="{{ tx }}">
<p><label><input type="checkbox" name="password_only" value="1"> Bara lösenord (ingen andra faktor)</label></p>
<ul>{% for u in users %}<li><button type="submit" name="username" value="{{ u.username }}">Logga in som {{ u.name }}</button>
<span class="desc">{{ u.description }}</span></li>{% endfor %}</ul>
<p><button type="submit" name="cancel" value="1">Avbryt</button></p></form>{% endif %}
{% if post_to %}<p>Du skickas tillbaka till tjänsten.</p>
<form method="post" action="{{ post_to }}">{% for k, v in fields.items() %}
<input type="hidden" name="{{ k }}" value="{{ v }}">{% endfor %}
<button type="submit">Fortsätt till tjänsten</button></form>{% endif %}
</main></body></html>""")


def _page(title: str, *, status: int = 200, error: str = "", **values: Any) -> HTMLResponse:
    html = _PAGE.render(title=title, error=error, **values)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    """The IdP's metadata."""
    return Response(get_idp(request).metadata(_base(request)), media_type="application/samlmetadata+xml")


@router.post("/sp")
async def register_sp(request: Request) -> Response:
    """Register a service provider by its metadata (the XML is the body)."""
    try:
        entity = get_idp(request).register((await request.body()).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        return Response(f"invalid SP metadata: {exc}\n", status_code=400, media_type="text/plain")
    return Response(f"{entity}\n", media_type="text/plain")


async def _learn_sp(idp: SamlIdp, entity: str) -> bool:
    """Register a loopback SP by reading the metadata its entity ID points at."""
    parts = urlsplit(entity)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK:
        return False
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.get(entity)
            answer.raise_for_status()
        idp.register(answer.text)
    except (httpx.HTTPError, ValueError):
        return False
    return entity in idp.sps


def _issuer_of(saml_request: str) -> str:
    """The Issuer of a Redirect-binding request, read before pysaml2 knows the SP."""
    import zlib

    from defusedxml import ElementTree

    try:
        xml = zlib.decompress(base64.b64decode(saml_request), -15)
        root = ElementTree.fromstring(xml)
    except Exception:
        return ""
    issuer = root.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer")
    return (issuer.text or "").strip() if issuer is not None else ""


@router.get("/sso")
async def sso(request: Request) -> Response:
    """An AuthnRequest: checked by pysaml2 against the SP's metadata; then the demo users."""
    idp = get_idp(request)
    saml_request = request.query_params.get("SAMLRequest", "")
    sp = _issuer_of(saml_request)
    if not sp:
        return _page("Inloggningen kunde inte starta", status=400, error="Ingen giltig SAMLRequest.")
    if sp not in idp.sps and not await _learn_sp(idp, sp):
        return _page("Inloggningen kunde inte starta", status=400, error="Okänd tjänst (SP); registrera dess metadata.")
    try:
        parsed = idp.server(_base(request)).parse_authn_request(saml_request, BINDING_HTTP_REDIRECT)
        message = parsed.message
        acs = idp.server(_base(request)).config.metadata.assertion_consumer_service(sp, BINDING_HTTP_POST)[0][
            "location"
        ]
    except Exception as exc:
        return _page("Inloggningen kunde inte starta", status=400, error=f"Ogiltig begäran ({type(exc).__name__}).")
    if message.assertion_consumer_service_url and message.assertion_consumer_service_url != acs:
        return _page("Inloggningen kunde inte starta", status=400, error="Okänd mottagaradress (ACS).")
    idp.prune()
    tx = secrets.token_urlsafe(24)
    idp.pending[tx] = PendingLogin(
        str(message.id), sp, acs, request.query_params.get("RelayState", ""), datetime.now(UTC)
    )
    return _page("Logga in i sandlådan (SAML)", users=list(idp.users.values()), tx=tx)


@router.post("/sso")
async def sso_login(request: Request) -> Response:
    """The chosen user signs in: a page whose form posts the signed Response to the SP."""
    idp = get_idp(request)
    form = await request.form()
    login = idp.pending.pop(str(form.get("tx", "")), None)
    if login is None:
        return _page("Inloggningen har gått ut", status=400, error="Börja om inloggningen från tjänsten.")
    if form.get("cancel"):
        return _page("Inloggningen avbröts")
    username = str(form.get("username", ""))
    if username not in idp.users:
        return _page("Okänd användare", status=400, error="Användaren finns inte.")
    xml = idp.response(_base(request), login, username, mfa=not form.get("password_only"))
    fields = {"SAMLResponse": base64.b64encode(xml.encode()).decode()}
    if login.relay_state:
        fields["RelayState"] = login.relay_state
    return _page("Inloggad", post_to=login.acs, fields=fields)


@router.get("/slo")
async def slo(request: Request) -> Response:
    """The SP's LogoutRequest: the person is logged out here and a signed LogoutResponse goes back."""
    idp = get_idp(request)
    server = idp.server(_base(request))
    saml_request = request.query_params.get("SAMLRequest", "")
    try:
        parsed = server.parse_logout_request(saml_request, BINDING_HTTP_REDIRECT)
        message = parsed.message
        sp = str(message.issuer.text)
        answer = server.create_logout_response(message, [BINDING_HTTP_REDIRECT], sign=False)
        target = server.config.metadata.single_logout_service(sp, BINDING_HTTP_REDIRECT, "spsso")[0]["location"]
        info = server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(answer),
            target,
            request.query_params.get("RelayState", ""),
            response=True,
            sign=True,
        )
    except Exception as exc:
        return _page("Utloggningen misslyckades", status=400, error=f"Ogiltig begäran ({type(exc).__name__}).")
    idp.logouts += 1
    return RedirectResponse(dict(info["headers"])["Location"], status_code=303)


__all__ = ["MFA_CONTEXT", "PASSWORD_CONTEXT", "PendingLogin", "SamlIdp", "get_idp", "idp_for", "router", "setup"]
