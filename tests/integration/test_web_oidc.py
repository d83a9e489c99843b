"""OpenID Connect login against the sandbox's provider over real HTTP (the app through ASGITransport)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from core.settings import SecretRef, TenantSettings
from core.storage.db import Database
from core.storage.models import AuditEvent
from core.storage.web_models import LoginState, Role, User, UserRole
from core.testing import FakeClock, temporary_database
from core.testing.web import WebEnv, make_web_env, web_client
from core.web.settings import OidcSettings
from sandbox.oidc import DEMO_CLIENT_ID
from sandbox.testing import running_sandbox

REDIRECT = "http://127.0.0.1:8000/auth/oidc/callback"
#: The deployment serves Ronneby only: the provider's grants in Karlshamn (1082) are dropped.
TENANTS = [TenantSettings(code="1081", name="Ronneby kommun")]


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """The sandbox, serving its OpenID Connect provider over HTTP on a free port."""
    with running_sandbox(seed=3) as base_url:
        yield base_url


@pytest.fixture
def env(provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebEnv]:
    monkeypatch.setenv("KOLLEGA_TEST_OIDC_SECRET", "sandbox-kollega-web-secret")
    oidc = OidcSettings(
        issuer=f"{provider}/oidc",
        client_id=DEMO_CLIENT_ID,
        client_secret=SecretRef(env="KOLLEGA_TEST_OIDC_SECRET"),
        redirect_uri=REDIRECT,
    )
    with temporary_database(tmp_path) as db:
        # ID tokens carry real time: the app judges them by a clock starting now.
        yield make_web_env(
            db, tmp_path, clock=FakeClock(datetime.now(UTC)), settings_overrides={"tenants": TENANTS}, oidc=oidc
        )


async def start(client: httpx.AsyncClient) -> str:
    """The app sends the browser to the provider; returns the authorization URL."""
    response = await client.get("/auth/oidc/login")
    assert response.status_code == 303
    return response.headers["location"]


def provider_login(authorize_url: str, username: str) -> dict[str, str]:
    """The browser's part at the provider, over real HTTP: pick the user; returns the callback's query."""
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        page = browser.get(authorize_url)
        assert page.status_code == 200, page.text
        tx = re.search(r'name="tx" value="([^"]+)"', page.text)
        assert tx
        answer = browser.post(authorize_url.split("?")[0], data={"tx": tx.group(1), "username": username})
        assert answer.status_code == 303
        location = answer.headers["location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def callback(client: httpx.AsyncClient, query: dict[str, str]) -> httpx.Response:
    return await client.get("/auth/oidc/callback", params=query)


class TestOidcLogin:
    """Authorization code + PKCE S256; state, browser binding, issuer, nonce and signature checked."""

    async def test_login_provisions_user_with_grants(self, env: WebEnv, provider: str) -> None:
        async with web_client(env.app) as client:
            url = await start(client)
            params = parse_qs(urlsplit(url).query)
            assert params["code_challenge_method"] == ["S256"] and params["redirect_uri"] == [REDIRECT]
            assert len(params["state"][0]) >= 32 and len(params["nonce"][0]) >= 32
            assert "kollega_oidc" in client.cookies
            query = provider_login(url, "anna.handlaggare")
            response = await callback(client, query)
            assert response.status_code == 303 and response.headers["location"] == "/"
            assert client.cookies.get("__Host-kollega_session")
            inbox = await client.get("/inbox")
            assert inbox.status_code == 200 and "ronney.review" in inbox.text
            # The state is used once: replaying the callback fails.
            replay = await callback(client, query)
            assert replay.status_code == 400 and "kunde inte slutföras" in replay.text
        with env.db.session() as s:
            user = s.scalar(select(User).where(User.oidc_subject.is_not(None)))
            assert user is not None and user.username == "anna.handlaggare" and user.password_hash is None
            grants = {
                (r.role, r.tenant, r.queue) for r in s.scalars(select(UserRole).where(UserRole.user_id == user.id))
            }
        assert grants == {(Role.case_worker, "1081", "ronney.review")}

    async def test_callback_in_another_browser_is_refused(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            url = await start(client)
        query = provider_login(url, "sara.drift")
        async with web_client(env.app) as other:
            response = await callback(other, query)
            assert response.status_code == 400 and not other.cookies.get("__Host-kollega_session")

    async def test_forged_state_is_refused(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            url = await start(client)
            query = provider_login(url, "sara.drift")
            response = await callback(client, {**query, "state": "forged-" + query["state"]})
            assert response.status_code == 400

    async def test_wrong_issuer_parameter_is_refused(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            url = await start(client)
            query = provider_login(url, "sara.drift")
            response = await callback(client, {**query, "iss": "http://evil.example/oidc"})
            assert response.status_code == 400

    async def test_nonce_mismatch_is_refused(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            url = await start(client)
            query = provider_login(url, "sara.drift")
            with env.db.session() as s:
                s.execute(update(LoginState).values(nonce="another-nonce"))
            response = await callback(client, query)
            assert response.status_code == 400 and not client.cookies.get("__Host-kollega_session")

    async def test_pkce_verifier_is_checked_by_the_provider(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            url = await start(client)
            query = provider_login(url, "sara.drift")
            with env.db.session() as s:
                s.execute(update(LoginState).values(code_verifier="x" * 64))
            response = await callback(client, query)
            assert response.status_code == 400

    async def test_provider_error_and_login_page_button(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            page = await client.get("/login")
            assert 'href="/auth/oidc/login"' in page.text
            url = await start(client)
            state = parse_qs(urlsplit(url).query)["state"][0]
            response = await callback(client, {"error": "access_denied", "state": state})
            assert response.status_code == 400


class TestGroupsToGrants:
    """[[web.idp_groups]]: groups become IdP grants at each sign-in, kept apart from local grants, audited."""

    async def test_groups_are_mapped_and_local_grants_are_kept(
        self, provider: str, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("KOLLEGA_TEST_OIDC_SECRET", "sandbox-kollega-web-secret")
        from core.audit import AuditEvent
        from core.storage.web_models import GrantSource
        from core.web.auth import Grant
        from core.web.settings import IdpGroupGrant

        mapping = [
            IdpGroupGrant(group="Kollega Ronneby Drift", role=Role.operations, tenant="1081"),
            IdpGroupGrant(group="Kollega Ronneby Drift", role=Role.auditor, tenant="1081"),
        ]
        oidc = OidcSettings(
            issuer=f"{provider}/oidc",
            client_id=DEMO_CLIENT_ID,
            client_secret=SecretRef(env="KOLLEGA_TEST_OIDC_SECRET"),
            redirect_uri=REDIRECT,
        )
        env = make_web_env(
            db,
            tmp_path,
            clock=FakeClock(datetime.now(UTC)),
            settings_overrides={"tenants": TENANTS},
            oidc=oidc,
            idp_groups=mapping,
        )
        async with web_client(env.app) as client:
            assert (await callback(client, provider_login(await start(client), "sara.drift"))).status_code == 303
        with env.db.session() as s:
            user = s.scalar(select(User).where(User.username == "sara.drift"))
            assert user is not None
            # An admin's local grant beside the IdP's.
            s.add(UserRole(user_id=user.id, role=Role.coordinator, tenant="1081", queue="", source="local"))
            # A stale IdP grant the provider no longer gives.
            s.add(UserRole(user_id=user.id, role=Role.it_admin, tenant="1081", queue="", source="idp"))
        async with web_client(env.app) as client:
            assert (await callback(client, provider_login(await start(client), "sara.drift"))).status_code == 303
        with env.db.session() as s:
            rows = s.scalars(select(UserRole).where(UserRole.user_id == user.id)).all()
            held = {(Grant(Role(r.role), r.tenant, r.queue), r.source) for r in rows}
            events = s.scalars(
                select(AuditEvent).where(AuditEvent.action == "user.idp_grants_changed").order_by(AuditEvent.seq)
            ).all()
        assert held == {
            (Grant(Role.operations, "1081"), GrantSource.idp),
            (Grant(Role.auditor, "1081"), GrantSource.idp),
            (Grant(Role.coordinator, "1081"), GrantSource.local),
        }
        assert [(e.tenant, e.details["added"], e.details["removed"]) for e in events] == [
            ("1081", ["auditor:1081:", "operations:1081:"], []),
            ("1081", [], ["it_admin:1081:"]),
        ]

    async def test_a_tenant_the_deployment_does_not_serve_is_never_granted(
        self, provider: str, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("KOLLEGA_TEST_OIDC_SECRET", "sandbox-kollega-web-secret")
        from core.audit import AuditEvent

        oidc = OidcSettings(
            issuer=f"{provider}/oidc",
            client_id=DEMO_CLIENT_ID,
            client_secret=SecretRef(env="KOLLEGA_TEST_OIDC_SECRET"),
            redirect_uri=REDIRECT,
        )
        env = make_web_env(
            db, tmp_path, clock=FakeClock(datetime.now(UTC)), settings_overrides={"tenants": TENANTS}, oidc=oidc
        )
        async with web_client(env.app) as client:
            # Karin's claims grant Karlshamn (1082), which this deployment does not serve.
            assert (await callback(client, provider_login(await start(client), "karin.karlshamn"))).status_code == 303
        with env.db.session() as s:
            user = s.scalar(select(User).where(User.username == "karin.karlshamn"))
            assert user is not None
            assert s.scalars(select(UserRole).where(UserRole.user_id == user.id)).all() == []
            ignored = s.scalar(select(AuditEvent).where(AuditEvent.action == "user.idp_grants_ignored"))
            assert ignored is not None and ignored.details["unknown_tenants"] == ["1082"]


def oidc_env(provider: str, tmp_path: Path, **oidc: object) -> OidcSettings:
    return OidcSettings(
        issuer=f"{provider}/oidc",
        client_id=DEMO_CLIENT_ID,
        client_secret=SecretRef(env="KOLLEGA_TEST_OIDC_SECRET"),
        redirect_uri=REDIRECT,
        **oidc,  # type: ignore[arg-type]
    )


def refusals(env: WebEnv) -> list[AuditEvent]:
    with env.db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "user.login_refused")))


class TestOidcSecondFactor:
    """Every role can open personal data: the provider must assert a second factor (acr or amr, RFC 8176)."""

    async def test_password_only_login_is_refused_in_swedish_and_audited(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            query = provider_login(await start(client), "olof.losenord")
            response = await callback(client, query)
            assert response.status_code == 403
            assert "intygade inte att du loggade in med två faktorer" in response.text
            assert not client.cookies.get("__Host-kollega_session")
            assert (await client.get("/ops", follow_redirects=False)).status_code in (302, 303, 307)
        with env.db.session() as s:
            assert s.scalar(select(User).where(User.oidc_subject.is_not(None))) is None  # nothing provisioned
        (event,) = refusals(env)
        assert event.subject == "user:olof.losenord" and event.actor == "system:web"
        assert event.details == {"via": "oidc", "reason": "no_second_factor", "acr": None, "amr": ["pwd"]}

    async def test_otp_login_is_let_in(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            response = await callback(client, provider_login(await start(client), "sara.drift"))
            assert response.status_code == 303 and client.cookies.get("__Host-kollega_session")
        assert refusals(env) == []

    async def test_acr_values_are_asked_for_and_accepted(
        self, provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("KOLLEGA_TEST_OIDC_SECRET", "sandbox-kollega-web-secret")
        loa3 = "http://id.sambi.se/loa/loa3"
        oidc = oidc_env(provider, tmp_path, mfa_acr_values=[loa3], mfa_amr_values=[])
        with temporary_database(tmp_path) as db:
            env = make_web_env(db, tmp_path, clock=FakeClock(datetime.now(UTC)), oidc=oidc)
            async with web_client(env.app) as client:
                url = await start(client)
                assert parse_qs(urlsplit(url).query)["acr_values"] == [loa3]
                response = await callback(client, provider_login(url, "lisa.siths"))
                assert response.status_code == 303 and client.cookies.get("__Host-kollega_session")
            async with web_client(env.app) as client:
                # amr "otp" no longer counts: this deployment trusts the provider's acr only.
                response = await callback(client, provider_login(await start(client), "anna.handlaggare"))
                assert response.status_code == 403
            assert [e.subject for e in refusals(env)] == ["user:anna.handlaggare"]

    async def test_not_required_when_second_factors_are_off(
        self, provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("KOLLEGA_TEST_OIDC_SECRET", "sandbox-kollega-web-secret")
        with temporary_database(tmp_path) as db:
            env = make_web_env(
                db, tmp_path, clock=FakeClock(datetime.now(UTC)), oidc=oidc_env(provider, tmp_path), mfa_required=False
            )
            async with web_client(env.app) as client:
                response = await callback(client, provider_login(await start(client), "olof.losenord"))
                assert response.status_code == 303
