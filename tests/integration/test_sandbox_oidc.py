"""The sandbox OpenID Connect provider: code flow with PKCE S256, signed ID tokens, one-time codes."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from sandbox.oidc import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, OidcProvider, router, s256, signing_key
from sandbox.state import SandboxData, SandboxOptions, SandboxState
from sandbox.testing import running_sandbox

ISSUER = "http://testserver/oidc"
REDIRECT = "http://127.0.0.1:8000/auth/callback"


class Clock:
    """A settable clock for code expiry."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(clock: Clock) -> OidcProvider:
    return OidcProvider(seed=5, clock=clock)


@pytest.fixture
async def client(provider: OidcProvider) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(router)
    app.state.oidc = provider
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def auth_params(challenge: str | None, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid profile email",
        "state": "st-123",
        "nonce": "n-456",
        **extra,
    }
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    return params


async def authorize(
    client: httpx.AsyncClient, challenge: str, username: str = "anna.handlaggare", **extra: str
) -> dict[str, list[str]]:
    """Run the browser half of the flow: the login page, then the chosen user; returns the callback query."""
    page = await client.get("/oidc/authorize", params=auth_params(challenge, **extra))
    assert page.status_code == 200, page.text
    tx = re.search(r'name="tx" value="([^"]+)"', page.text)
    assert tx is not None
    response = await client.post("/oidc/authorize", data={"tx": tx.group(1), "username": username})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def redeem(client: httpx.AsyncClient, code: str, verifier: str, *, basic: bool = True) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    if basic:
        return await client.post("/oidc/token", data=data, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET))
    return await client.post(
        "/oidc/token", data={**data, "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
    )


class TestDiscovery:
    """The discovery document and the key set."""

    async def test_discovery_document(self, client: httpx.AsyncClient) -> None:
        doc = (await client.get("/oidc/.well-known/openid-configuration")).json()
        assert doc["issuer"] == ISSUER
        assert doc["authorization_endpoint"] == f"{ISSUER}/authorize"
        assert doc["token_endpoint"] == f"{ISSUER}/token"
        assert doc["jwks_uri"] == f"{ISSUER}/jwks"
        assert doc["userinfo_endpoint"] == f"{ISSUER}/userinfo"
        assert doc["code_challenge_methods_supported"] == ["S256"]
        assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
        assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}

    async def test_jwks_is_public_and_deterministic_per_seed(self, client: httpx.AsyncClient) -> None:
        keys = (await client.get("/oidc/jwks")).json()["keys"]
        assert len(keys) == 1
        assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["use"] == "sig"
        assert "d" not in keys[0] and "p" not in keys[0]
        assert keys[0]["kid"] == signing_key(5).kid
        assert signing_key(5).as_dict() == OidcProvider(seed=5).key.as_dict()
        assert signing_key(6).kid != signing_key(5).kid


class TestCodeFlow:
    """Authorization code + PKCE S256, end to end."""

    @pytest.mark.parametrize("basic", [True, False], ids=["client_secret_basic", "client_secret_post"])
    async def test_full_flow(self, client: httpx.AsyncClient, basic: bool) -> None:
        verifier, challenge = pkce()
        callback = await authorize(client, challenge)
        assert callback["state"] == ["st-123"]
        assert callback["iss"] == [ISSUER]
        response = await redeem(client, callback["code"][0], verifier, basic=basic)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        tokens = response.json()
        assert tokens["token_type"] == "Bearer"

        jwks = KeySet.import_key_set((await client.get("/oidc/jwks")).json())
        token = jwt.decode(tokens["id_token"], jwks, algorithms=["RS256"])
        assert token.header["alg"] == "RS256"
        claims = token.claims
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": DEMO_CLIENT_ID},
            nonce={"essential": True, "value": "n-456"},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            now=int(datetime(2026, 11, 23, 7, 31, tzinfo=UTC).timestamp()),
        )
        registry.validate(claims)
        assert claims["name"] == "Anna Lind"
        assert claims["roles"] == ["case_worker"]
        assert claims["tenants"] == ["1081"]
        assert claims["queues"] == ["ronney.review"]
        expected_at_hash = (
            base64.urlsafe_b64encode(hashlib.sha256(tokens["access_token"].encode()).digest()[:16])
            .rstrip(b"=")
            .decode()
        )
        assert claims["at_hash"] == expected_at_hash

        info = await client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 200
        assert info.json()["sub"] == claims["sub"]
        assert info.json()["email"] == "anna.lind@ronneby.example"

    async def test_signature_is_checked(self, client: httpx.AsyncClient) -> None:
        verifier, challenge = pkce()
        callback = await authorize(client, challenge)
        id_token = (await redeem(client, callback["code"][0], verifier)).json()["id_token"]
        other = KeySet.import_key_set({"keys": [signing_key(99).as_dict(private=False)]})
        with pytest.raises(BadSignatureError):
            jwt.decode(id_token, other.keys[0], algorithms=["RS256"])

    async def test_users_of_other_roles_and_tenants(self, client: httpx.AsyncClient) -> None:
        page = (await client.get("/oidc/authorize", params=auth_params(pkce()[1]))).text
        for name in ("Anna Lind", "Erik Berg", "Sara Holm", "Johan Ek", "Maria Sjö", "Karin Ström"):
            assert f"Logga in som {name}" in page
        verifier, challenge = pkce()
        callback = await authorize(client, challenge, username="karin.karlshamn")
        claims = jwt.decode(
            (await redeem(client, callback["code"][0], verifier)).json()["id_token"], signing_key(5)
        ).claims
        assert claims["tenants"] == ["1082"]
        verifier, challenge = pkce()
        callback = await authorize(client, challenge, username="maria.revisor")
        claims = jwt.decode(
            (await redeem(client, callback["code"][0], verifier)).json()["id_token"], signing_key(5)
        ).claims
        assert claims["roles"] == ["auditor"]

    async def test_without_nonce_there_is_no_nonce_claim(self, client: httpx.AsyncClient) -> None:
        verifier, challenge = pkce()
        params = auth_params(challenge)
        del params["nonce"]
        page = await client.get("/oidc/authorize", params=params)
        tx = re.search(r'name="tx" value="([^"]+)"', page.text)
        assert tx is not None
        location = await client.post("/oidc/authorize", data={"tx": tx.group(1), "username": "sara.drift"})
        code = parse_qs(urlsplit(location.headers["location"]).query)["code"][0]
        claims = jwt.decode((await redeem(client, code, verifier)).json()["id_token"], signing_key(5)).claims
        assert "nonce" not in claims


class TestRefusals:
    """PKCE, one-time codes, client authentication and redirect URIs."""

    async def test_wrong_verifier_is_refused(self, client: httpx.AsyncClient) -> None:
        verifier, challenge = pkce()
        callback = await authorize(client, challenge)
        response = await redeem(client, callback["code"][0], pkce()[0])
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        # The code was spent by the failed attempt.
        assert (await redeem(client, callback["code"][0], verifier)).json()["error"] == "invalid_grant"

    async def test_missing_verifier_is_refused(self, client: httpx.AsyncClient) -> None:
        callback = await authorize(client, pkce()[1])
        response = await client.post(
            "/oidc/token",
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
            data={"grant_type": "authorization_code", "code": callback["code"][0], "redirect_uri": REDIRECT},
        )
        assert response.json()["error"] == "invalid_grant"

    async def test_code_reuse_is_refused_and_revokes_the_tokens(self, client: httpx.AsyncClient) -> None:
        verifier, challenge = pkce()
        code = (await authorize(client, challenge))["code"][0]
        first = await redeem(client, code, verifier)
        assert first.status_code == 200
        second = await redeem(client, code, verifier)
        assert second.status_code == 400
        assert second.json()["error"] == "invalid_grant"
        info = await client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {first.json()['access_token']}"})
        assert info.status_code == 401

    @pytest.mark.parametrize(
        ("params", "description"),
        [
            ({"code_challenge_method": "plain"}, "S256"),
            ({"code_challenge_method": ""}, "S256"),
            ({"code_challenge": ""}, "code_challenge is missing"),
        ],
        ids=["plain", "method-missing", "challenge-missing"],
    )
    async def test_pkce_must_be_s256(self, client: httpx.AsyncClient, params: dict[str, str], description: str) -> None:
        query = {**auth_params(pkce()[1]), **params}
        query = {k: v for k, v in query.items() if v}
        response = await client.get("/oidc/authorize", params=query)
        assert response.status_code == 303
        callback = parse_qs(urlsplit(response.headers["location"]).query)
        assert callback["error"] == ["invalid_request"]
        assert description in callback["error_description"][0]
        assert callback["state"] == ["st-123"]

    async def test_unknown_client_and_foreign_redirect_are_not_redirected(self, client: httpx.AsyncClient) -> None:
        for params in ({"client_id": "nobody"}, {"redirect_uri": "https://evil.example/cb"}):
            response = await client.get("/oidc/authorize", params={**auth_params(pkce()[1]), **params})
            assert response.status_code == 400
            assert "location" not in response.headers

    async def test_openid_scope_and_code_response_type_required(self, client: httpx.AsyncClient) -> None:
        for params, error in (
            ({"scope": "profile"}, "invalid_scope"),
            ({"response_type": "token"}, "unsupported_response_type"),
        ):
            response = await client.get("/oidc/authorize", params={**auth_params(pkce()[1]), **params})
            assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == [error]

    async def test_client_authentication(self, client: httpx.AsyncClient) -> None:
        verifier, challenge = pkce()
        code = (await authorize(client, challenge))["code"][0]
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
        wrong = await client.post("/oidc/token", data=data, auth=(DEMO_CLIENT_ID, "wrong"))
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_client"
        assert (await client.post("/oidc/token", data=data)).status_code == 401
        assert (await redeem(client, code, verifier)).status_code == 200  # failed client auth did not spend the code

    async def test_redirect_uri_must_match(self, client: httpx.AsyncClient) -> None:
        verifier, challenge = pkce()
        code = (await authorize(client, challenge))["code"][0]
        response = await client.post(
            "/oidc/token",
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "http://127.0.0.1:9/other",
                "code_verifier": verifier,
            },
        )
        assert response.json()["error"] == "invalid_grant"

    async def test_expired_code(self, client: httpx.AsyncClient, clock: Clock) -> None:
        verifier, challenge = pkce()
        code = (await authorize(client, challenge))["code"][0]
        clock.now += timedelta(minutes=5)
        assert (await redeem(client, code, verifier)).json()[
            "error_description"
        ] == "The authorization code has expired."

    async def test_cancel_returns_access_denied(self, client: httpx.AsyncClient) -> None:
        page = await client.get("/oidc/authorize", params=auth_params(pkce()[1]))
        tx = re.search(r'name="tx" value="([^"]+)"', page.text)
        assert tx is not None
        response = await client.post("/oidc/authorize", data={"tx": tx.group(1), "cancel": "1"})
        callback = parse_qs(urlsplit(response.headers["location"]).query)
        assert callback["error"] == ["access_denied"] and callback["state"] == ["st-123"]

    async def test_userinfo_needs_a_valid_token(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/oidc/userinfo", headers={"Authorization": "Bearer nonsense"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'

    def test_s256_matches_rfc_7636_appendix_b(self) -> None:
        assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


class TestSharedState:
    """Mounted in the sandbox, the provider takes its key from the sandbox seed and starts afresh on reset."""

    async def test_key_follows_the_seed_and_reset_forgets_codes(self) -> None:
        state = SandboxState(12, SandboxOptions(), lambda seed, options: SandboxData())
        app = FastAPI()
        app.include_router(router)
        app.state.sandbox = state
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            assert (await c.get("/oidc/jwks")).json()["keys"][0]["kid"] == signing_key(12).kid
            verifier, challenge = pkce()
            code = (await authorize(c, challenge))["code"][0]
            state.reset()
            assert (await redeem(c, code, verifier)).json()["error"] == "invalid_grant"
            state.reset(seed=13)
            assert (await c.get("/oidc/jwks")).json()["keys"][0]["kid"] == signing_key(13).kid


async def test_code_flow_over_real_http_in_the_sandbox() -> None:
    """create_app mounts the provider: discovery, login page, token and JWKS over real HTTP on a free port."""
    with running_sandbox(
        seed=8, employees=3, applications=2, substitutes=2, open_shifts=1, homecare_visits=2, homecare_staff=1
    ) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            doc = (await c.get("/oidc/.well-known/openid-configuration")).json()
            assert doc["issuer"] == f"{base}/oidc"
            verifier, challenge = pkce()
            callback = await authorize(c, challenge, username="johan.it")
            assert callback["iss"] == [doc["issuer"]] and callback["state"] == ["st-123"]
            response = await redeem(c, callback["code"][0], verifier)
            jwks = KeySet.import_key_set((await c.get(doc["jwks_uri"])).json())
            claims = jwt.decode(response.json()["id_token"], jwks, algorithms=["RS256"]).claims
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": doc["issuer"]},
                aud={"essential": True, "value": DEMO_CLIENT_ID},
                nonce={"essential": True, "value": "n-456"},
            ).validate(claims)
            assert claims["roles"] == ["it_admin"]
            assert (await c.get("/admin/state/oidc")).json()["codes_redeemed"] == 1
