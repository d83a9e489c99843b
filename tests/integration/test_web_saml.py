"""SAML 2.0 sign-in: the sandbox's IdP over real HTTP, and forged answers the SP must refuse.

The test IdP's and SP's keys are made at test time (core.testing.saml); nothing here is a
real key.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from defusedxml import ElementTree as SafeET
from sqlalchemy import select

from core.audit import AuditEvent
from core.errors import ConfigError
from core.settings import SecretRef, TenantSettings
from core.storage.db import Database
from core.storage.web_models import GrantSource, Role, User, UserRole, WebSession
from core.testing import FakeClock
from core.testing.saml import make_key_pair
from core.testing.web import WebEnv, make_web_env, web_client
from core.web.saml import query_of
from core.web.settings import IdpGroupGrant, SamlSettings
from sandbox.saml import PendingLogin, SamlIdp
from sandbox.testing import running_sandbox

PUBLIC = "http://127.0.0.1:8000"
ACS = f"{PUBLIC}/auth/saml/acs"
RONNEBY = TenantSettings(code="1081", name="Ronneby kommun", ops_email="drift@ronneby.example")
GROUPS = [
    IdpGroupGrant(
        group="Kollega Ronneby Handläggare EKB", role=Role.case_worker, tenant="1081", queues=["ronney.review"]
    ),
    IdpGroupGrant(group="Kollega Ronneby Drift", role=Role.operations, tenant="1081"),
]
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"


def saml_settings(tmp_path: Path, **metadata: object) -> SamlSettings:
    key, cert = make_key_pair(tmp_path / "sp", "kollega-test-sp")
    return SamlSettings(sp_key=SecretRef(file=key), sp_cert_file=cert, **metadata)  # type: ignore[arg-type]


@dataclass
class Local:
    """The app and an IdP object in this process (its metadata given as a file)."""

    env: WebEnv
    idp: SamlIdp
    base: str = "http://idp.test"


@pytest.fixture
def local(db: Database, tmp_path: Path) -> Iterator[Local]:
    idp = SamlIdp(seed=5)
    (tmp_path / "idp.xml").write_text(idp.metadata("http://idp.test"), encoding="utf-8")
    env = make_web_env(
        db,
        tmp_path,
        clock=FakeClock(datetime.now(UTC)),  # assertions carry real time
        settings_overrides={"tenants": [RONNEBY]},
        public_url=PUBLIC,
        saml=saml_settings(tmp_path, idp_metadata_file=tmp_path / "idp.xml"),
        idp_groups=GROUPS,
    )
    yield Local(env, idp)


async def start(client: httpx.AsyncClient, local: Local) -> PendingLogin:
    """The app's AuthnRequest, as the IdP reads it (the SP's metadata registered first)."""
    metadata = await client.get("/auth/saml/metadata")
    assert metadata.status_code == 200
    local.idp.register(metadata.text)
    response = await client.get("/auth/saml/login")
    assert response.status_code == 303
    url = response.headers["location"]
    assert url.startswith("http://idp.test/saml/sso?") and "Signature=" in url and "SigAlg=" in url
    parsed = local.idp.server(local.base).parse_authn_request(
        query_of(url)["SAMLRequest"], "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
    )
    message = parsed.message
    assert message.assertion_consumer_service_url in (None, ACS)
    classes = [c.text for c in message.requested_authn_context.authn_context_class_ref]
    assert "https://refeds.org/profile/mfa" in classes
    return PendingLogin(str(message.id), str(message.issuer.text), ACS, "", datetime.now(UTC))


async def post(client: httpx.AsyncClient, xml: str) -> httpx.Response:
    return await client.post("/auth/saml/acs", data={"SAMLResponse": base64.b64encode(xml.encode()).decode()})


def signed_in(client: httpx.AsyncClient) -> bool:
    return bool(client.cookies.get("__Host-kollega_session"))


class TestSignIn:
    """A signed assertion answering our request signs the person in; IdP groups become grants."""

    async def test_sign_in_provisions_the_user_with_mapped_grants(self, local: Local) -> None:
        async with web_client(local.env.app) as client:
            login = await start(client, local)
            response = await post(client, local.idp.response(local.base, login, "anna.handlaggare"))
            assert response.status_code == 303 and response.headers["location"] == "/", response.text
            assert signed_in(client)
            inbox = await client.get("/inbox")
            assert inbox.status_code == 200
        with local.env.db.session() as s:
            user = s.scalar(select(User).where(User.saml_subject.is_not(None)))
            assert user is not None and user.username == "anna.handlaggare" and user.password_hash is None
            rows = s.scalars(select(UserRole).where(UserRole.user_id == user.id)).all()
            assert {(r.role, r.tenant, r.queue, r.source) for r in rows} == {
                (Role.case_worker, "1081", "ronney.review", GrantSource.idp)
            }
            session = s.scalar(select(WebSession).where(WebSession.user_id == user.id))
            assert session is not None and session.method == "saml" and session.idp_session_index
            changed = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.idp_grants_changed")).all()
            assert [e.details["added"] for e in changed] == [["case_worker:1081:ronney.review"]]

    async def test_password_only_is_refused_when_mfa_is_required(self, local: Local) -> None:
        async with web_client(local.env.app) as client:
            login = await start(client, local)
            response = await post(client, local.idp.response(local.base, login, "sara.drift", mfa=False))
            assert response.status_code == 403 and "andra faktor" in response.text
            assert not signed_in(client)


class TestRefused:
    """Every forged or stale answer is refused, and nobody is signed in."""

    async def _refused(self, local: Local, make: object) -> None:
        async with web_client(local.env.app) as client:
            login = await start(client, local)
            xml = make(login)  # type: ignore[operator]
            response = await post(client, xml)
            assert response.status_code == 400 and "kunde inte slutföras" in response.text
            assert not signed_in(client)
        with local.env.db.session() as s:
            assert s.scalar(select(User).where(User.saml_subject.is_not(None))) is None

    async def test_unsigned_assertion(self, local: Local) -> None:
        await self._refused(
            local, lambda login: local.idp.response(local.base, login, "sara.drift", sign_assertion=False)
        )

    async def test_signed_response_around_an_unsigned_assertion(self, local: Local) -> None:
        await self._refused(
            local,
            lambda login: local.idp.response(local.base, login, "sara.drift", sign_assertion=False, sign_response=True),
        )

    async def test_wrong_audience(self, local: Local) -> None:
        def for_another_sp(login: PendingLogin) -> str:
            # Another SP known to the IdP, with our ACS: the assertion is for its audience, not ours.
            ours = local.idp.sps[login.sp]
            local.idp.register(ours.replace(f'entityID="{login.sp}"', 'entityID="https://other.example/sp"'))
            return local.idp.response(local.base, login, "sara.drift", audience="https://other.example/sp")

        await self._refused(local, for_another_sp)

    async def test_expired_assertion(self, local: Local) -> None:
        await self._refused(
            local, lambda login: local.idp.response(local.base, login, "sara.drift", lifetime_seconds=-600)
        )

    async def test_unsolicited_response(self, local: Local) -> None:
        def unsolicited(login: PendingLogin) -> str:
            other = PendingLogin("id-" + "0" * 32, login.sp, login.acs, "", login.created)
            return local.idp.response(local.base, other, "sara.drift")

        await self._refused(local, unsolicited)

    async def test_tampered_assertion(self, local: Local) -> None:
        def tampered(login: PendingLogin) -> str:
            xml = local.idp.response(local.base, login, "sara.drift", sign_response=False)
            return xml.replace("Kollega Ronneby Drift", "Kollega Ronneby IT")

        await self._refused(local, tampered)

    async def test_replayed_response(self, local: Local) -> None:
        async with web_client(local.env.app) as client:
            login = await start(client, local)
            xml = local.idp.response(local.base, login, "sara.drift")
            assert (await post(client, xml)).status_code == 303
        async with web_client(local.env.app) as other:
            await start(other, local)
            replay = await post(other, xml)
            assert replay.status_code == 400 and not signed_in(other)

    async def test_response_from_another_browser(self, local: Local) -> None:
        async with web_client(local.env.app) as client:
            login = await start(client, local)
        async with web_client(local.env.app) as other:
            response = await post(other, local.idp.response(local.base, login, "sara.drift"))
            assert response.status_code == 400 and not signed_in(other)


def _wrap(xml: str, how: str) -> str:
    """Signature-wrapping variants (XSW): an evil assertion beside or around the signed one."""
    import xml.etree.ElementTree as ET

    ET.register_namespace("saml", SAML)
    ET.register_namespace("samlp", SAMLP)
    ET.register_namespace("ds", "http://www.w3.org/2000/09/xmldsig#")
    root = SafeET.fromstring(xml.encode())
    original = root.find(f"{{{SAML}}}Assertion")
    assert original is not None
    evil = copy.deepcopy(original)
    for signature in evil.findall("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        evil.remove(signature)
    name_id = evil.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID")
    assert name_id is not None
    name_id.text = "u-evil"
    for value in evil.iter(f"{{{SAML}}}AttributeValue"):
        if value.text == "sara.drift":
            value.text = "johan.it"
        if value.text == "Kollega Ronneby Drift":
            value.text = "Kollega Ronneby Handläggare EKB"
    index = list(root).index(original)
    if how == "evil-first":  # a new ID, placed before the signed one
        evil.set("ID", "_evil" + "1" * 32)
        root.insert(index, evil)
    elif how == "same-id-first":  # the same ID, so a lookup by ID may find the evil one
        root.insert(index, evil)
    elif how == "original-inside-evil":  # the signed one hidden inside the evil one's Subject
        root.remove(original)
        subject = evil.find(f"{{{SAML}}}Subject")
        assert subject is not None
        subject.append(original)
        root.insert(index, evil)
    elif how == "original-in-extensions":  # the signed one moved to Extensions, evil in its place
        root.remove(original)
        extensions = ET.Element(f"{{{SAMLP}}}Extensions")
        extensions.append(original)
        root.insert(1, extensions)
        root.insert(index + 1, evil)
    else:
        raise AssertionError(how)
    return ET.tostring(root, encoding="unicode")


@pytest.mark.parametrize("how", ["evil-first", "same-id-first", "original-inside-evil", "original-in-extensions"])
async def test_signature_wrapping_is_refused(local: Local, how: str) -> None:
    async with web_client(local.env.app) as client:
        login = await start(client, local)
        xml = local.idp.response(local.base, login, "sara.drift", sign_response=False)
        response = await post(client, _wrap(xml, how))
        assert response.status_code in (400, 403) and not signed_in(client)
    with local.env.db.session() as s:
        assert s.scalar(select(User).where(User.saml_subject == "u-evil")) is None
        assert s.scalar(select(User).where(User.username == "johan.it")) is None


async def test_sp_metadata_is_served_at_its_stable_url(local: Local) -> None:
    async with web_client(local.env.app) as client:
        response = await client.get("/auth/saml/metadata")
    assert response.status_code == 200
    root = SafeET.fromstring(response.content)
    assert root.get("entityID") == f"{PUBLIC}/auth/saml/metadata"
    text = response.text
    assert 'WantAssertionsSigned="true"' in text and 'AuthnRequestsSigned="true"' in text
    assert ACS in text and f"{PUBLIC}/auth/saml/slo" in text and "X509Certificate" in text


def test_a_group_mapping_to_a_municipality_not_served_is_refused(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="1082"):
        make_web_env(
            db,
            tmp_path,
            settings_overrides={"tenants": [RONNEBY]},
            idp_groups=[IdpGroupGrant(group="Kollega Karlshamn Handläggare EKB", role=Role.operations, tenant="1082")],
        )


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with running_sandbox(seed=3) as base_url:
        yield base_url


async def test_sign_in_and_single_logout_through_the_sandbox_idp(
    db: Database, tmp_path: Path, sandbox_url: str
) -> None:
    """Over real HTTP: metadata by URL, the IdP's pages, the POST back, then single logout."""
    env = make_web_env(
        db,
        tmp_path,
        clock=FakeClock(datetime.now(UTC)),
        settings_overrides={"tenants": [RONNEBY]},
        public_url=PUBLIC,
        saml=saml_settings(tmp_path, idp_metadata_url=f"{sandbox_url}/saml/metadata"),
        idp_groups=GROUPS,
    )
    async with web_client(env.app) as client:
        sp_metadata = (await client.get("/auth/saml/metadata")).text
        with httpx.Client(timeout=10) as browser:
            assert browser.post(f"{sandbox_url}/saml/sp", content=sp_metadata).status_code == 200
            login = await client.get("/auth/saml/login?next=/ops")
            page = browser.get(login.headers["location"])
            assert page.status_code == 200, page.text
            tx = re.search(r'name="tx" value="([^"]+)"', page.text)
            assert tx
            answer = browser.post(f"{sandbox_url}/saml/sso", data={"tx": tx.group(1), "username": "sara.drift"})
            assert answer.status_code == 200 and f'action="{ACS}"' in answer.text
            saml_response = re.search(r'name="SAMLResponse" value="([^"]+)"', answer.text)
            assert saml_response
        response = await client.post("/auth/saml/acs", data={"SAMLResponse": saml_response.group(1)})
        assert response.status_code == 303 and response.headers["location"] == "/ops"
        me = await client.get("/me")
        assert me.status_code == 200
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', me.text)
        assert csrf
        out = await client.post("/logout", data={"csrf_token": csrf.group(1)})
        assert out.status_code == 200 and not client.cookies.get("__Host-kollega_session")
        found = re.search(r'url=(http[^"]+)"', out.text)
        assert found and found.group(1).startswith(f"{sandbox_url}/saml/slo?")
        with httpx.Client(timeout=10) as browser:
            back = browser.get(found.group(1).replace("&amp;", "&"))
        assert back.status_code == 303 and back.headers["location"].startswith(f"{PUBLIC}/auth/saml/slo?")
        done = await client.get("/auth/saml/slo", params=query_of(back.headers["location"]))
        assert done.status_code == 303 and done.headers["location"] == "/login?out=1"
        again = await client.get("/auth/saml/slo", params=query_of(back.headers["location"]))
        assert again.status_code == 400  # a LogoutResponse is accepted once


async def test_unsolicited_sign_in_when_allowed_is_still_never_replayed(db: Database, tmp_path: Path) -> None:
    """IdP-initiated sign-in (allow_unsolicited): accepted once; the same assertion again is refused."""
    idp = SamlIdp(seed=5)
    (tmp_path / "idp.xml").write_text(idp.metadata("http://idp.test"), encoding="utf-8")
    saml = saml_settings(tmp_path, idp_metadata_file=tmp_path / "idp.xml").model_copy(
        update={"allow_unsolicited": True}
    )
    env = make_web_env(
        db,
        tmp_path,
        clock=FakeClock(datetime.now(UTC)),
        settings_overrides={"tenants": [RONNEBY]},
        public_url=PUBLIC,
        saml=saml,
        idp_groups=GROUPS,
    )
    local = Local(env, idp)
    async with web_client(env.app) as client:
        login = await start(client, local)
        unsolicited = PendingLogin("id-" + "1" * 32, login.sp, login.acs, "", login.created)
        xml = idp.response(local.base, unsolicited, "sara.drift")
        first = await post(client, xml)
        assert first.status_code == 303 and signed_in(client)
    async with web_client(env.app) as other:
        replay = await post(other, xml)
        assert replay.status_code == 400 and not signed_in(other)


@pytest.mark.parametrize("signed", [True, False])
async def test_logout_started_by_the_idp(local: Local, signed: bool) -> None:
    """A signed LogoutRequest from the IdP ends the person's session and is answered; an unsigned one is refused."""
    from saml2 import BINDING_HTTP_REDIRECT

    async with web_client(local.env.app) as client:
        login = await start(client, local)
        assert (await post(client, local.idp.response(local.base, login, "sara.drift"))).status_code == 303
        _sp, username, session_index = local.idp.issued[-1]
        server = local.idp.server(local.base)
        slo = server.metadata.single_logout_service(login.sp, BINDING_HTTP_REDIRECT, "spsso")[0]["location"]
        user = local.idp.users[username]
        _id, request = server.create_logout_request(
            slo, login.sp, name_id=local.idp.name_id(local.base, login.sp, user), session_indexes=[session_index]
        )
        info = server.apply_binding(BINDING_HTTP_REDIRECT, str(request), slo, "", sign=signed)
        query = query_of(dict(info["headers"])["Location"])
        answer = await client.get("/auth/saml/slo", params=query)
        me = await client.get("/me")
    if signed:
        assert answer.status_code == 303 and answer.headers["location"].startswith(f"{local.base}/saml/slo?")
        assert "SAMLResponse=" in answer.headers["location"] and "Signature=" in answer.headers["location"]
        assert me.status_code == 303  # the session has ended
    else:
        assert answer.status_code == 400 and me.status_code == 200


async def test_an_assertion_from_another_idp_of_the_same_metadata_is_refused(db: Database, tmp_path: Path) -> None:
    """A federation's metadata lists several IdPs: only the configured one may sign people in."""
    ours, other = SamlIdp(seed=5), SamlIdp(seed=3)
    federation = (
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        + ours.metadata("http://idp.test")
        + other.metadata("http://idp2.test")
        + "</md:EntitiesDescriptor>"
    )
    (tmp_path / "federation.xml").write_text(federation, encoding="utf-8")
    saml = saml_settings(tmp_path, idp_metadata_file=tmp_path / "federation.xml").model_copy(
        update={"idp_entity_id": "http://idp.test/saml/metadata"}
    )
    env = make_web_env(
        db,
        tmp_path,
        clock=FakeClock(datetime.now(UTC)),
        settings_overrides={"tenants": [RONNEBY]},
        public_url=PUBLIC,
        saml=saml,
        idp_groups=GROUPS,
    )
    async with web_client(env.app) as client:
        login = await start(client, Local(env, ours))
        other.register(ours.sps[login.sp])
        response = await post(client, other.response("http://idp2.test", login, "sara.drift"))
        assert response.status_code == 400 and not signed_in(client)
