"""Web app logins and sessions: argon2id, new session id at login, timeouts, logout, CSRF, cookie flags."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from core.storage.db import Database
from core.storage.models import AuditEvent
from core.storage.web_models import User, WebSession
from core.testing import temporary_database
from core.testing.web import PASSWORD, WebEnv, csrf_from, login, make_web_env, web_client
from core.web.auth import PASSWORD_HASHER, create_token, sha256


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    """The app on the backend under test (SQLite and PostgreSQL)."""
    return make_web_env(db, tmp_path)


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[WebEnv]:
    """The app on SQLite only, for behaviour that does not depend on the backend."""
    with temporary_database(tmp_path) as database:
        yield make_web_env(database, tmp_path)


def _session_cookie(set_cookie: str) -> str:
    match = re.search(r"__Host-kollega_session=([^;]+)", set_cookie)
    assert match, set_cookie
    return match.group(1)


class TestPasswords:
    """Local accounts store argon2id hashes with OWASP's parameters."""

    def test_hash_is_argon2id_with_owasp_parameters(self, lite: WebEnv) -> None:
        with lite.db.session() as s:
            stored = s.scalar(select(User.password_hash).where(User.username == "anna"))
        assert stored is not None and stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert PASSWORD_HASHER.verify(stored, PASSWORD)

    async def test_wrong_password_is_refused_and_audited(self, lite: WebEnv) -> None:
        async with web_client(lite.app) as client:
            page = await client.get("/login")
            response = await client.post(
                "/login", data={"username": "anna", "password": "fel", "csrf_token": csrf_from(page.text)}
            )
            assert response.status_code == 401
            assert "Fel användarnamn eller lösenord" in response.text
        with lite.db.session() as s:
            assert s.scalar(select(AuditEvent.action).where(AuditEvent.action == "user.login_failed"))

    async def test_account_locks_after_repeated_failures(self, lite: WebEnv) -> None:
        async with web_client(lite.app) as client:
            page = await client.get("/login")
            token = csrf_from(page.text)
            for _ in range(5):
                await client.post("/login", data={"username": "anna", "password": "fel", "csrf_token": token})
            locked = await client.post("/login", data={"username": "anna", "password": PASSWORD, "csrf_token": token})
            # Refused even with the right password, told to wait (429 + Retry-After since issue 17).
            assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
            assert "sekunder" in locked.text and "session" not in str(client.cookies).lower()
            lite.clock.advance(16 * 60)
            assert (
                await client.post("/login", data={"username": "anna", "password": PASSWORD, "csrf_token": token})
            ).status_code == 303


class TestSessions:
    """A login creates a new session; timeouts and logout end it on the server."""

    async def test_cookie_flags_and_new_session_id_at_login(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            await login(client, "anna")
            first = client.cookies.get("__Host-kollega_session")
            page = await client.get("/login")
            assert page.status_code == 303  # already logged in
            # Logging in again (e.g. another user on the same browser) rotates the id.
            await client.post("/logout", data={"csrf_token": csrf_from((await client.get("/me")).text)})
            login_page = await client.get("/login")
            response = await client.post(
                "/login", data={"username": "bertil", "password": PASSWORD, "csrf_token": csrf_from(login_page.text)}
            )
            set_cookie = response.headers["set-cookie"]
            assert "HttpOnly" in set_cookie and "Secure" in set_cookie and "SameSite=lax" in set_cookie
            assert "Path=/" in set_cookie and "Domain" not in set_cookie
            second = _session_cookie(set_cookie)
            assert second != first
        with env.db.session() as s:
            ids = set(s.scalars(select(WebSession.id)))
        assert sha256(second) in ids and first is not None and sha256(first) not in ids
        assert second not in ids  # only the hash is stored

    def test_login_replaces_the_browsers_previous_session(self, env: WebEnv) -> None:
        auth = env.app.state.kollega.auth
        with env.db.session() as s:
            anna = s.scalar(select(User).where(User.username == "anna"))
        assert anna is not None
        planted = auth.start_session(anna, method="password", lang="sv")
        fresh = auth.start_session(anna, method="password", lang="sv", old_token=planted)
        with env.db.session() as s:
            assert s.get(WebSession, sha256(planted)) is None
            assert s.get(WebSession, sha256(fresh)) is not None

    async def test_logout_deletes_the_session_on_the_server(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            csrf = await login(client, "anna")
            cookie = client.cookies.get("__Host-kollega_session") or ""
            response = await client.post("/logout", data={"csrf_token": csrf})
            assert response.status_code == 303 and response.headers["location"] == "/login?out=1"
        async with web_client(env.app) as replay:
            replay.cookies.set("__Host-kollega_session", cookie, domain="testserver")
            again = await replay.get("/inbox")
            assert again.status_code == 303 and again.headers["location"].startswith("/login")
        with env.db.session() as s:
            assert s.scalar(select(WebSession).where(WebSession.id == sha256(cookie))) is None

    async def test_idle_timeout(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            await login(client, "anna")
            env.clock.advance(29 * 60)
            assert (await client.get("/inbox")).status_code == 200
            env.clock.advance(31 * 60)
            response = await client.get("/inbox")
            assert response.status_code == 303 and response.headers["location"] == "/login?expired=1"
            page = await client.get("/login?expired=1")
            assert "sessionen tog slut" in page.text

    async def test_activity_is_written_once_a_minute_and_keeps_the_session(self, env: WebEnv) -> None:
        """A page view within the minute writes nothing; a session in steady use does not time out."""

        def last_seen() -> object:
            with env.db.session() as s:
                return s.scalar(select(WebSession.last_seen_at).where(WebSession.id == sha256(cookie)))

        async with web_client(env.app) as client:
            await login(client, "anna")
            cookie = client.cookies.get("__Host-kollega_session") or ""
            seen = last_seen()
            env.clock.advance(30)
            assert (await client.get("/inbox")).status_code == 200
            assert last_seen() == seen
            env.clock.advance(31)
            assert (await client.get("/inbox")).status_code == 200
            assert last_seen() == env.clock.now()
            for _ in range(4):  # a view every 20 minutes for 80 minutes, past the 30 min idle limit
                env.clock.advance(20 * 60)
                assert (await client.get("/inbox")).status_code == 200

    async def test_absolute_timeout(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            await login(client, "anna")
            for _ in range(29):  # active every 20 minutes: 9 h 40 min
                env.clock.advance(20 * 60)
                assert (await client.get("/inbox")).status_code == 200
            env.clock.advance(21 * 60)
            response = await client.get("/inbox")
            assert response.status_code == 303 and "expired" in response.headers["location"]

    async def test_api_without_login_is_401(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            response = await client.get("/api/v1/reviews")
            assert response.status_code == 401


class TestCsrf:
    """Every state-changing request needs the token; API tokens need none (no cookies)."""

    async def test_login_without_token_is_refused(self, lite: WebEnv) -> None:
        async with web_client(lite.app) as client:
            await client.get("/login")
            response = await client.post("/login", data={"username": "anna", "password": PASSWORD})
            assert response.status_code == 403 and "Formuläret har gått ut" in response.text

    async def test_every_state_changing_route_refuses_a_missing_or_wrong_token(self, lite: WebEnv) -> None:
        from core.web.routes import api, audit, auth, inbox, ops

        routes = [
            r
            for module in (api, audit, auth, inbox, ops)
            for r in module.router.routes
            if isinstance(r, APIRoute) and r.methods & {"POST", "PUT", "PATCH", "DELETE"}
        ]
        assert len(routes) > 15
        async with web_client(lite.app) as client:
            csrf = await login(client, "johan")
            for route in routes:
                path = re.sub(r"\{[^}]+\}", "1", route.path)
                for headers in ({}, {"X-CSRF-Token": "wrong"}):
                    response = await client.post(path, data={"x": "1"}, headers=headers)
                    assert response.status_code == 403, (route.path, headers, response.status_code)
            # The right token from another origin is refused too.
            foreign = await client.post(
                "/lang", data={"lang": "en", "csrf_token": csrf}, headers={"Origin": "https://evil.example"}
            )
            assert foreign.status_code == 403
            ok = await client.post(
                "/lang", data={"lang": "en", "csrf_token": csrf}, headers={"Origin": "https://testserver"}
            )
            assert ok.status_code == 303

    async def test_bearer_token_needs_no_csrf_and_session_json_needs_the_header(self, lite: WebEnv) -> None:
        token = create_token(lite.db, "sara", "test")
        async with web_client(lite.app) as client:
            response = await client.post(
                "/api/v1/runs",
                json={"robot": "example", "tenant": "0000"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 201 and response.json()["trigger"] == "manual"
            bad = await client.get("/api/v1/me", headers={"Authorization": "Bearer kol_nope"})
            assert bad.status_code == 401
        async with web_client(lite.app) as client:
            csrf = await login(client, "sara")
            refused = await client.post("/api/v1/runs", json={"robot": "example", "tenant": "0000"})
            assert refused.status_code == 403
            allowed = await client.post(
                "/api/v1/runs", json={"robot": "example", "tenant": "0000"}, headers={"X-CSRF-Token": csrf}
            )
            assert allowed.status_code == 201


class TestLanguage:
    """Swedish by default; English through the switch, kept in the session and a cookie."""

    async def test_switch_to_english(self, lite: WebEnv) -> None:
        async with web_client(lite.app) as client:
            login_page = await client.get("/login")
            assert '<html lang="sv">' in login_page.text and "Logga in i Kollega" in login_page.text
            csrf = await login(client, "anna")
            response = await client.post("/lang", data={"lang": "en", "next": "/inbox", "csrf_token": csrf})
            assert response.headers["location"] == "/inbox"
            page = await client.get("/inbox")
            assert '<html lang="en">' in page.text and "My queues" in page.text
            assert client.cookies.get("kollega_lang") == "en"

    def test_every_swedish_text_has_an_english_translation(self) -> None:
        from core.web.i18n import STATE_LABELS
        from core.web.messages_en import EN

        root = Path(__file__).resolve().parents[2] / "core" / "web"
        pattern = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
        missing = set()
        for path in [*root.rglob("*.html"), *root.rglob("*.py")]:
            for m in pattern.finditer(path.read_text(encoding="utf-8")):
                text = m.group(1) or m.group(2)
                if text and text not in EN and text != "login required":
                    missing.add(text)
        missing |= {v for v in STATE_LABELS.values() if v not in EN}
        assert not missing, sorted(missing)

    @pytest.mark.parametrize("robot", ["ronney", "bosse", "lena", "harry"])
    def test_every_text_a_robot_shows_has_an_english_translation(self, robot: str) -> None:
        # A robot brings its own English (Robot.messages): the web app's table is only the fallback.
        from core.registry import load_robots
        from core.web.deps import queue_label
        from core.web.i18n import robot_translator
        from core.web.messages_en import EN

        cls = load_robots(strict=True).get(robot)
        english = robot_translator(cls, "en")
        root = Path(__file__).resolve().parents[2] / "robots" / robot
        pattern = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
        texts = {
            m.group(1) or m.group(2)
            for path in [*root.rglob("*.html"), *root.rglob("*.py")]
            for m in pattern.finditer(path.read_text(encoding="utf-8"))
        } | set(cls.queue_labels.values())
        missing = {t for t in texts if t and t not in cls.messages.get("en", {}) and t not in EN}
        assert not missing, sorted(missing)
        settings = SimpleNamespace(robot_display_name=lambda name, tenant, default: default)
        registry = SimpleNamespace(robots={robot: cls})
        for queue, text in cls.queue_labels.items():
            assert queue_label(registry, settings, queue, None, "en") == f"{cls.display_name}: {english(text)}"  # type: ignore[arg-type]
            assert queue_label(registry, settings, queue, None, "sv") == f"{cls.display_name}: {text}"  # type: ignore[arg-type]
