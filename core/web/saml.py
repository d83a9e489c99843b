"""SAML 2.0 sign-in: Kollega as a service provider, through pysaml2 (and the ``xmlsec1`` binary).

::

    GET  /auth/saml/metadata  our SP metadata (the stable URL is also our default entity ID)
    GET  /auth/saml/login     a signed AuthnRequest (HTTP-Redirect) asking for an MFA context;
                              its ID is stored (hashed) with a browser-binding cookie
    POST /auth/saml/acs       the IdP's Response (HTTP-POST): signature of the assertion required,
                              audience, Destination/Recipient, NotBefore/NotOnOrAfter (small skew)
                              and InResponseTo against the stored request, used once; the
                              assertion's ID is remembered until it expires (no replay)
    GET  /auth/saml/slo       single logout: the IdP's LogoutResponse to ours, or its LogoutRequest

Why pysaml2 and not python3-saml: pysaml2 is maintained (7.5, 2026; python3-saml's last release
is 1.16 of 2023), installs as a pure-Python wheel and verifies signatures with Debian's
``xmlsec1`` binary, so no C binding has to be built against the right libxml2 (python3-saml's
``xmlsec`` binding breaks when lxml bundles another libxml2 than the system's); and it plays
the IdP too, which the sandbox's test IdP uses. Signature wrapping: pysaml2 (since 6.5) has
xmlsec1 verify the very assertion it then reads, by its ID; tests/integration/test_web_saml.py
tries the known wrapping attacks.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    # pysaml2 7.5 names cryptography's CFB mode where cryptography 47+ deprecates it (a cipher
    # for encrypted assertions we neither send nor accept): silenced for this import only.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.metadata import create_metadata_string
    from saml2.response import StatusError
    from saml2.s_utils import UnknownPrincipal
    from saml2.saml import NAMEID_FORMAT_PERSISTENT, AuthnContextClassRef, NameID
    from saml2.samlp import RequestedAuthnContext
from sqlalchemy import delete, select

from core import audit
from core.errors import ConfigError, WebError
from core.storage.db import Database
from core.storage.web_models import SamlAssertionSeen, SamlRequest, User, WebSession
from core.web import idp_grants
from core.web.auth import sha256
from core.web.settings import IdpGroupGrant, SamlSettings

LOGIN_TTL = timedelta(minutes=10)
BINDING_COOKIE = "kollega_saml"
METADATA_TTL_SECONDS = 3600
# pysaml2 logs whole messages (names, attributes) at debug level: never let those through.
logging.getLogger("saml2").setLevel(logging.WARNING)


class SamlError(WebError):
    """The SAML sign-in or logout could not be completed; the message is safe to log (no assertion in it)."""

    code = "saml"


class SamlMfaMissing(SamlError):
    """The IdP signed the person in without a second factor, and this deployment requires one."""

    code = "saml_mfa"


@dataclass(frozen=True)
class SamlIdentity:
    """A verified assertion: who, how, and what the IdP says about them."""

    issuer: str
    name_id: str
    name_id_format: str
    session_index: str
    authn_context: str
    attributes: dict[str, list[str]] = field(default_factory=dict)
    next_url: str = ""

    def first(self, name: str) -> str:
        """The first value of an attribute ("" when absent)."""
        values = self.attributes.get(name) or []
        return values[0] if values else ""


def _xmlsec() -> str:
    path = shutil.which("xmlsec1")
    if path is None:
        raise ConfigError("SAML needs the xmlsec1 program (Debian: apt-get install xmlsec1)")
    return path


class SamlServiceProvider:
    """Kollega's SP towards one IdP; the IdP's metadata is read lazily and kept for an hour."""

    def __init__(
        self,
        cfg: SamlSettings,
        public_url: str,
        *,
        groups: list[IdpGroupGrant] | None = None,
        tenants: list[str] | None = None,
        mfa_required: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cfg = cfg
        base = public_url.rstrip("/")
        self.metadata_url = f"{base}/auth/saml/metadata"
        self.entity_id = cfg.sp_entity_id or self.metadata_url
        self.acs_url = f"{base}/auth/saml/acs"
        self.slo_url = f"{base}/auth/saml/slo"
        self.groups = groups or []
        self.tenants = tenants or []
        self.mfa_required = mfa_required
        self.transport = transport
        self.xmlsec = _xmlsec()
        self.key_file = self._key_file()
        if not cfg.sp_cert_file.is_file():
            raise ConfigError(f"[web.saml] sp_cert_file {cfg.sp_cert_file} cannot be read")
        self._idp: tuple[float, str] | None = None

    def _key_file(self) -> str:
        """A path of our private key for xmlsec1: the secret file itself, or a private copy of an env secret."""
        if self.cfg.sp_key.file is not None:
            if not self.cfg.sp_key.file.is_file():
                raise ConfigError(f"[web.saml] sp_key file {self.cfg.sp_key.file} cannot be read")
            return str(self.cfg.sp_key.file)
        fd, path = tempfile.mkstemp(prefix="kollega-saml-", suffix=".key")
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp makes it 0600
            out.write(self.cfg.sp_key.resolve() + "\n")
        return path

    # -- configuration --------------------------------------------------------------
    def _config(self, idp_metadata: str | None) -> SPConfig:
        requested = RequestedAuthnContext(
            authn_context_class_ref=[AuthnContextClassRef(text=c) for c in self.cfg.mfa_authn_contexts],
            comparison="exact",
        )
        sp: dict[str, Any] = {
            "endpoints": {
                "assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)],
                "single_logout_service": [(self.slo_url, BINDING_HTTP_REDIRECT)],
            },
            "allow_unsolicited": self.cfg.allow_unsolicited,
            "want_assertions_signed": True,
            "want_response_signed": False,
            "authn_requests_signed": True,
            "logout_requests_signed": True,
            "logout_responses_signed": True,
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            "name_id_format_allow_create": True,
        }
        if self.mfa_required and self.cfg.mfa_authn_contexts:
            sp["requested_authn_context"] = requested
        conf: dict[str, Any] = {
            "entityid": self.entity_id,
            "xmlsec_binary": self.xmlsec,
            "key_file": self.key_file,
            "cert_file": str(self.cfg.sp_cert_file),
            "accepted_time_diff": self.cfg.clock_skew_seconds,
            "allow_unknown_attributes": True,
            "service": {"sp": sp},
            "metadata": {"inline": [idp_metadata]} if idp_metadata else {},
            "delete_tmpfiles": True,
        }
        config = SPConfig()
        config.load(conf)
        return config

    def metadata_xml(self) -> str:
        """Our SP metadata (entity ID, ACS, SLO, signing certificate, WantAssertionsSigned)."""
        text = create_metadata_string(None, config=self._config(None), valid=None, sign=False)
        return text.decode() if isinstance(text, bytes) else str(text)

    async def idp_metadata(self) -> str:
        """The IdP's metadata XML (file, or URL read with a timeout), cached for an hour."""
        if self._idp and time.monotonic() - self._idp[0] < METADATA_TTL_SECONDS:
            return self._idp[1]
        if self.cfg.idp_metadata_file is not None:
            try:
                text = self.cfg.idp_metadata_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"[web.saml] idp_metadata_file cannot be read: {exc.strerror}") from None
        else:
            assert self.cfg.idp_metadata_url is not None
            try:
                async with httpx.AsyncClient(timeout=self.cfg.timeout_seconds, transport=self.transport) as client:
                    response = await client.get(self.cfg.idp_metadata_url)
                    response.raise_for_status()
                    text = response.text
            except httpx.HTTPError as exc:
                raise SamlError("the identity provider's metadata cannot be read") from exc
        self._idp = (time.monotonic(), text)
        return text

    async def client(self) -> Saml2Client:
        """A new pysaml2 client (one per request: its caches are per-process and unbounded)."""
        try:
            return Saml2Client(config=self._config(await self.idp_metadata()))
        except (ValueError, TypeError, SyntaxError) as exc:
            raise SamlError(f"the identity provider's metadata is not valid ({type(exc).__name__})") from exc

    def _idp_entity(self, client: Saml2Client) -> str:
        idps = list(client.metadata.identity_providers())
        if self.cfg.idp_entity_id:
            if self.cfg.idp_entity_id not in idps:
                raise SamlError("the configured idp_entity_id is not in the IdP's metadata")
            return self.cfg.idp_entity_id
        if len(idps) != 1:
            raise SamlError("the IdP metadata lists no or several IdPs: set [web.saml] idp_entity_id")
        return str(idps[0])

    # -- sign-in --------------------------------------------------------------------
    async def begin(self, db: Database, now: datetime, next_url: str = "") -> tuple[str, str]:
        """A signed AuthnRequest: (the IdP's URL with it, browser-binding cookie value)."""
        # pysaml2 signs and verifies by running xmlsec1, and the database is synchronous: off the event loop.
        return await asyncio.to_thread(self._begin, await self.client(), db, now, next_url)

    def _begin(self, client: Saml2Client, db: Database, now: datetime, next_url: str) -> tuple[str, str]:
        idp = self._idp_entity(client)
        try:
            request_id, info = client.prepare_for_authenticate(
                entityid=idp, binding=BINDING_HTTP_REDIRECT, sign=True, response_binding=BINDING_HTTP_POST
            )
        except Exception as exc:  # pysaml2 raises many unrelated classes (SignOnError, bare Exception …)
            raise SamlError(f"no AuthnRequest could be made ({type(exc).__name__})") from exc
        binding = secrets.token_urlsafe(32)
        with db.session() as s:
            s.execute(delete(SamlRequest).where(SamlRequest.created_at < now - LOGIN_TTL))
            s.add(
                SamlRequest(
                    id_hash=sha256(request_id),
                    kind="authn",
                    browser_binding=sha256(binding),
                    next_url=next_url[:500],
                    created_at=now,
                )
            )
        return dict(info["headers"])["Location"], binding

    async def finish(self, db: Database, saml_response: str, binding: str | None, now: datetime) -> SamlIdentity:
        """Verify the IdP's Response and return who it names; SamlError for anything wrong."""
        return await asyncio.to_thread(self._finish, await self.client(), db, saml_response, binding, now)

    def _finish(
        self, client: Saml2Client, db: Database, saml_response: str, binding: str | None, now: datetime
    ) -> SamlIdentity:
        in_response_to = _in_response_to(saml_response)
        outstanding: dict[str, str] = {}
        request: SamlRequest | None = None
        if in_response_to:
            with db.session() as s:
                request = s.get(SamlRequest, sha256(in_response_to))
                if request is not None:
                    s.delete(request)  # used once, whatever the outcome
            if request is not None and request.kind == "authn" and now - request.created_at <= LOGIN_TTL:
                if not binding or not hmac.compare_digest(request.browser_binding, sha256(binding)):
                    raise SamlError("the sign-in was started in another browser")
                outstanding[in_response_to] = request.next_url
        try:
            response = client.parse_authn_request_response(saml_response, BINDING_HTTP_POST, outstanding=outstanding)
        except StatusError as exc:
            raise SamlError(f"the identity provider refused the sign-in ({type(exc).__name__})") from exc
        except Exception as exc:  # pysaml2's checks raise many unrelated classes
            raise SamlError(f"the SAML response is not valid ({type(exc).__name__})") from exc
        if response is None or response.assertion is None:
            raise SamlError("the SAML response holds no usable assertion")
        assertion = response.assertion
        if assertion.signature is None:  # belt and braces: pysaml2 already requires it
            raise SamlError("the assertion is not signed")
        # The signed assertion's Issuer (not the Response's, which may be unsigned), and only our IdP:
        # a federation's metadata lists many IdPs whose keys pysaml2 would otherwise all trust.
        issuer = str(assertion.issuer.text or "").strip() if assertion.issuer is not None else ""
        if issuer != self._idp_entity(client):
            raise SamlError("the assertion comes from another IdP than the configured one")
        name_id = response.name_id
        if name_id is None or not name_id.text:
            raise SamlError("the assertion names nobody (no NameID)")
        authn = (response.authn_info() or [("", [], "")])[0]
        identity = SamlIdentity(
            issuer=issuer,
            name_id=str(name_id.text).strip(),
            name_id_format=str(name_id.format or ""),
            session_index=next((str(a.session_index) for a in assertion.authn_statement if a.session_index), ""),
            authn_context=str(authn[0] or ""),
            attributes={k: [str(v) for v in vs] for k, vs in (response.ava or {}).items()},
            next_url=outstanding.get(in_response_to or "", ""),
        )
        self._remember(db, issuer, str(assertion.id), response, now)
        if self.mfa_required and identity.authn_context not in self.cfg.mfa_authn_contexts:
            raise SamlMfaMissing("the IdP asserted no multi-factor authentication context")
        return identity

    def _remember(self, db: Database, issuer: str, assertion_id: str, response: Any, now: datetime) -> None:
        """Refuse an assertion seen before; remember this one until it expires."""
        key = sha256(f"{issuer}|{assertion_id}")
        until = datetime.fromtimestamp(response.not_on_or_after, tz=now.tzinfo) if response.not_on_or_after else None
        expires = (until or now + LOGIN_TTL) + timedelta(seconds=self.cfg.clock_skew_seconds)
        with db.session() as s:
            s.execute(delete(SamlAssertionSeen).where(SamlAssertionSeen.expires_at < now))
            if s.get(SamlAssertionSeen, key) is not None:
                raise SamlError("the assertion was already used (replay)")
            s.add(SamlAssertionSeen(id_hash=key, expires_at=expires))

    def provision(self, db: Database, identity: SamlIdentity, now: datetime) -> User:
        """The user for this identity: found by (IdP, NameID), created on first sign-in; IdP grants synced."""
        with db.session() as s:
            user = s.scalar(
                select(User).where(User.saml_issuer == identity.issuer, User.saml_subject == identity.name_id)
            )
            name = identity.first(self.cfg.display_name_attribute)
            if user is None:
                wanted = (identity.first(self.cfg.username_attribute) or identity.name_id)[:180]
                taken = s.scalar(select(User.id).where(User.username == wanted))
                # Never attach a SAML identity to an existing account by name.
                suffix = hashlib.sha256(identity.name_id.encode()).hexdigest()[:8]
                username = wanted if taken is None else f"{wanted}~{suffix}"
                user = User(
                    username=username,
                    display_name=name or username,
                    email=identity.first(self.cfg.email_attribute) or None,
                    saml_issuer=identity.issuer,
                    saml_subject=identity.name_id,
                    active=True,
                    failed_logins=0,
                    created_at=now,
                )
                s.add(user)
                s.flush()
                audit.append(
                    s, actor="system:saml", action="user.created", subject=f"user:{username}", details={"via": "saml"}
                )
            elif name:
                user.display_name = name
            groups = identity.attributes.get(self.cfg.groups_attribute, [])
            wanted_grants = idp_grants.mapped_grants(groups, self.groups)
            idp_grants.sync(s, user, wanted_grants, tenants=self.tenants, via="saml", now=now)
            s.flush()
            s.expunge(user)
            return user

    # -- single logout --------------------------------------------------------------
    async def logout_url(self, db: Database, name_id: str, session_index: str, now: datetime) -> str:
        """A signed LogoutRequest to the IdP for a session we just ended; its ID is stored."""
        return await asyncio.to_thread(self._logout_url, await self.client(), db, name_id, session_index, now)

    def _logout_url(self, client: Saml2Client, db: Database, name_id: str, session_index: str, now: datetime) -> str:
        idp = self._idp_entity(client)
        try:
            destination = client.metadata.single_logout_service(idp, BINDING_HTTP_REDIRECT, "idpsso")[0]["location"]
        except (IndexError, KeyError, UnknownPrincipal) as exc:
            raise SamlError("the IdP offers no single logout (HTTP-Redirect)") from exc
        request_id, request = client.create_logout_request(
            destination,
            idp,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id),
            session_indexes=[session_index] if session_index else None,
            sign=False,  # the Redirect binding signs the query string instead
        )
        info = client.apply_binding(BINDING_HTTP_REDIRECT, str(request), destination, "", sign=True)
        with db.session() as s:
            s.add(
                SamlRequest(id_hash=sha256(request_id), kind="logout", browser_binding="", next_url="", created_at=now)
            )
        return str(dict(info["headers"])["Location"])

    async def logout_answer(self, db: Database, query: dict[str, str], now: datetime) -> str | None:
        """Handle a message at the SLO endpoint; returns where to send the browser (None: our login page).

        A LogoutResponse must answer a LogoutRequest of ours (stored, used once). A LogoutRequest
        from the IdP must carry a valid signature; every session of the named person there
        (and that session index, when given) ends, and a signed LogoutResponse goes back.
        """
        return await asyncio.to_thread(self._logout_answer, await self.client(), db, query, now)

    def _logout_answer(self, client: Saml2Client, db: Database, query: dict[str, str], now: datetime) -> str | None:
        if "SAMLResponse" in query:
            try:
                answer = client.parse_logout_request_response(query["SAMLResponse"], BINDING_HTTP_REDIRECT)
            except Exception as exc:
                raise SamlError(f"the LogoutResponse is not valid ({type(exc).__name__})") from exc
            in_response_to = str(getattr(answer.response, "in_response_to", "") or "") if answer else ""
            with db.session() as s:
                row = s.get(SamlRequest, sha256(in_response_to)) if in_response_to else None
                if row is not None:
                    s.delete(row)
            if row is None or row.kind != "logout":
                raise SamlError("a LogoutResponse to no logout of ours")
            return None
        if "SAMLRequest" not in query:
            raise SamlError("neither SAMLRequest nor SAMLResponse")
        if not query.get("Signature") or not query.get("SigAlg"):
            raise SamlError("the IdP's LogoutRequest is not signed")
        try:
            request = client.parse_logout_request(
                query["SAMLRequest"],
                BINDING_HTTP_REDIRECT,
                relay_state=query.get("RelayState"),
                sigalg=query["SigAlg"],
                signature=query["Signature"],
            )
        except Exception as exc:
            raise SamlError(f"the LogoutRequest is not valid ({type(exc).__name__})") from exc
        if request is None:
            raise SamlError("the LogoutRequest's signature does not verify")
        message = request.message
        issuer = str(message.issuer.text or "").strip() if message.issuer is not None else ""
        if issuer != self._idp_entity(client):
            raise SamlError("a LogoutRequest from another IdP than the configured one")
        subject = str(message.name_id.text or "").strip() if message.name_id is not None else ""
        indexes = [str(i.text) for i in (message.session_index or [])]
        self.end_sessions(db, issuer, subject, indexes, now)
        response = client.create_logout_response(message, [BINDING_HTTP_REDIRECT], sign=False)
        destination = client.metadata.single_logout_service(issuer, BINDING_HTTP_REDIRECT, "idpsso")[0]
        target = destination.get("response_location") or destination["location"]
        info = client.apply_binding(
            BINDING_HTTP_REDIRECT, str(response), target, query.get("RelayState", ""), response=True, sign=True
        )
        return str(dict(info["headers"])["Location"])

    def end_sessions(self, db: Database, issuer: str, name_id: str, indexes: list[str], now: datetime) -> int:
        """End the sessions of the person the IdP logged out (audited); returns how many."""
        with db.session() as s:
            user = s.scalar(select(User).where(User.saml_issuer == issuer, User.saml_subject == name_id))
            if user is None:
                return 0
            query = select(WebSession).where(WebSession.user_id == user.id, WebSession.method == "saml")
            if indexes:
                query = query.where(WebSession.idp_session_index.in_(indexes))
            rows = list(s.scalars(query))
            for row in rows:
                s.delete(row)
            audit.append(
                s,
                actor="system:saml",
                action="user.logout",
                subject=f"user:{user.username}",
                details={"via": "saml_slo", "sessions_ended": len(rows)},
                now=now,
            )
            return len(rows)


def _in_response_to(saml_response: str) -> str:
    """The Response's InResponseTo, read without trusting anything (the full check follows in pysaml2)."""
    from defusedxml import ElementTree

    try:
        root = ElementTree.fromstring(base64.b64decode(saml_response, validate=False))
    except Exception:
        return ""
    return str(root.get("InResponseTo") or "")


def query_of(url: str) -> dict[str, str]:
    """A URL's query as a flat dict (tests and the sandbox use it)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
