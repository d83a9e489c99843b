"""Login hardening (issue 17): throttles with exponential delay, password policy and change,
resets that end sessions and tokens, and the second factor (TOTP, recovery codes)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from core.storage.db import Database
from core.storage.models import AuditEvent
from core.storage.web_models import ApiToken, User, WebSession
from core.testing import temporary_database
from core.testing.web import (
    PASSWORD,
    TOTP_SECRET,
    WebEnv,
    csrf_from,
    login,
    make_web_env,
    web_client,
)
from core.web import throttle
from core.web.auth import create_token
from core.web.mfa import code_at
from core.web.passwords import PasswordPolicyError, check_new_password, common_passwords

NEW = "en helt egen och lång mening"


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    """The app on the backend under test (SQLite and PostgreSQL)."""
    return make_web_env(db, tmp_path)


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[WebEnv]:
    """The app on SQLite only."""
    with temporary_database(tmp_path) as database:
        yield make_web_env(database, tmp_path)


def _from(app: object, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


async def _try(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await client.get("/login")
    token = client.cookies.get("kollega_login_csrf") or csrf_from(page.text)
    return await client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def actions(env: WebEnv) -> list[str]:
    with env.db.session() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


class TestThrottle:
    """Failures slow down an address (and everyone) exponentially; waiting never gets longer by trying."""

    def test_delay_doubles_and_is_capped(self) -> None:
        from datetime import timedelta

        rule = throttle.Rule(free=3, base_seconds=1, cap_seconds=60, window=timedelta(minutes=15))
        assert [throttle.delay(rule, n) for n in range(1, 11)] == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60]

    async def test_address_is_throttled_not_the_account_for_ever(self, tmp_path: Path) -> None:
        with temporary_database(tmp_path) as db:
            env = make_web_env(db, tmp_path, address_free_attempts=3, max_failed_logins=50)
            async with _from(env.app, "198.51.100.9") as attacker, _from(env.app, "192.0.2.4") as anna:
                for _ in range(3):
                    assert (await _try(attacker, "anna", "fel")).status_code == 401
                blocked = await _try(attacker, "anna", PASSWORD)
                assert blocked.status_code == 429 and blocked.headers["retry-after"] == "2"
                # Trying while blocked does not extend the block …
                for _ in range(20):
                    assert (await _try(attacker, "anna", "fel")).status_code == 429
                # … and Anna, from her own address, is not locked out by the attacker.
                assert (await _try(anna, "anna", PASSWORD)).status_code == 303
                env.clock.advance(2)
                # One more failure after the block doubles the next one.
                assert (await _try(attacker, "anna", "fel")).status_code == 401
                again = await _try(attacker, "anna", "fel")
                assert again.status_code == 429 and again.headers["retry-after"] == "3"  # 2 s block, +1 rounding
            assert "user.login_throttled" in actions(env)

    async def test_account_delay_is_not_extended_by_attempts_during_it(self, lite: WebEnv) -> None:
        async with _from(lite.app, "198.51.100.10") as client:
            for _ in range(5):
                await _try(client, "bertil", "fel")
            with lite.db.session() as s:
                user = s.scalar(select(User).where(User.username == "bertil"))
                assert user is not None and user.locked_until is not None
                until = user.locked_until
            for _ in range(10):
                assert (await _try(client, "bertil", "fel")).status_code == 429
            with lite.db.session() as s:
                user = s.scalar(select(User).where(User.username == "bertil"))
                assert user is not None and user.locked_until == until  # not moved by the ten tries
            lite.clock.advance(2)
            assert (await _try(client, "bertil", PASSWORD)).status_code == 303

    async def test_global_throttle_slows_everyone(self, tmp_path: Path) -> None:
        with temporary_database(tmp_path) as db:
            env = make_web_env(db, tmp_path, global_free_attempts=4, address_free_attempts=100)
            for n in range(4):
                async with _from(env.app, f"198.51.100.{n + 20}") as client:
                    assert (await _try(client, "nobody", "fel")).status_code == 401
            async with _from(env.app, "192.0.2.99") as innocent:
                assert (await _try(innocent, "anna", PASSWORD)).status_code == 429
                env.clock.advance(2)
                assert (await _try(innocent, "anna", PASSWORD)).status_code == 303


class TestPasswordPolicy:
    """Minimum length and a local list of common and breached passwords."""

    def test_the_shipped_list_is_real_and_large(self) -> None:
        words = common_passwords()
        assert len(words) > 19000 and {"password", "123456", "qwerty"} <= words

    @pytest.mark.parametrize(
        ("password", "why"),
        [("kort", "minst 12"), ("password1234", "för vanligt"), ("aaaaaaaaaaaaaaa", "för vanligt")],
    )
    def test_refused(self, password: str, why: str) -> None:
        with pytest.raises(PasswordPolicyError, match=why):
            check_new_password(password)

    def test_user_name_refused_and_a_sentence_accepted(self) -> None:
        with pytest.raises(PasswordPolicyError, match="användarnamn"):
            check_new_password("annaannaanna-2026", username="anna")
        check_new_password(NEW, username="anna")


class TestChangeOwnPassword:
    """A person changes their own password; their other sessions and tokens end."""

    async def test_change_ends_other_sessions_and_tokens(self, env: WebEnv) -> None:
        token = create_token(env.db, "anna", "script")
        async with web_client(env.app) as other:
            await login(other, "anna")
            async with web_client(env.app) as client:
                csrf = await login(client, "anna")
                weak = await client.post(
                    "/account/password",
                    data={"csrf_token": csrf, "current": PASSWORD, "new": "password1234", "repeat": "password1234"},
                )
                assert weak.status_code == 400 and "för vanligt" in weak.text
                wrong = await client.post(
                    "/account/password", data={"csrf_token": csrf, "current": "fel", "new": NEW, "repeat": NEW}
                )
                assert wrong.status_code == 400 and "nuvarande lösenordet" in wrong.text
                ok = await client.post(
                    "/account/password", data={"csrf_token": csrf, "current": PASSWORD, "new": NEW, "repeat": NEW}
                )
                assert ok.status_code == 303
                assert (await client.get("/me")).status_code == 200  # this session goes on
            assert (await other.get("/me")).status_code == 303  # the other one ended
        async with web_client(env.app) as api:
            answer = await api.get("/api/v1/reviews", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401
        async with web_client(env.app) as client:
            await login(client, "anna", NEW)
        assert "user.password_changed" in actions(env)


class TestAdminReset:
    """A reset gives a one-time password, ends sessions and tokens, and the person must change it."""

    async def test_reset_ends_sessions_and_tokens_and_forces_a_change(self, env: WebEnv) -> None:
        token = create_token(env.db, "bertil", "script")
        async with web_client(env.app) as bertil:
            await login(bertil, "bertil")
            async with web_client(env.app) as admin:
                csrf = await login(admin, "johan")
                page = await admin.post("/admin/users/bertil/password", data={"csrf_token": csrf})
                one_time = re.search(r"<code>([^<]+)</code>", page.text)
                assert page.status_code == 200 and one_time is not None
            assert (await bertil.get("/me")).status_code == 303  # session ended
        with env.db.session() as s:
            row = s.scalar(select(ApiToken).where(ApiToken.name == "script"))
            assert row is not None and row.revoked
            assert not s.scalars(select(WebSession).where(WebSession.user_id == env.users["bertil"])).all()
        async with web_client(env.app) as api:
            assert (await api.get("/api/v1/reviews", headers={"Authorization": f"Bearer {token}"})).status_code == 401
        async with web_client(env.app) as client:
            answer = await _try(client, "bertil", one_time.group(1))
            assert answer.headers["location"] == "/account/password"
            assert (await client.get("/inbox")).headers["location"] == "/account/password"
            form = await client.get("/account/password")
            assert "engångslösenord" in form.text.lower()
            changed = await client.post(
                "/account/password",
                data={"csrf_token": csrf_from(form.text), "current": one_time.group(1), "new": NEW, "repeat": NEW},
            )
            # The second factor is still owed after the new password.
            assert changed.headers["location"] == "/login/mfa"
        with env.db.session() as s:
            event = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.password_reset")).one()
            assert event.actor == "user:johan" and one_time.group(1) not in str(event.details)


class TestSecondFactor:
    """Local accounts must pass TOTP (or a recovery code); nothing else answers before."""

    async def test_password_alone_reaches_nothing(self, env: WebEnv) -> None:
        async with web_client(env.app) as client:
            answer = await _try(client, "anna", PASSWORD)
            assert answer.headers["location"] == "/login/mfa"
            for path in ("/inbox", "/me", "/audit", "/ops"):
                assert (await client.get(path)).headers["location"] == "/login/mfa"
            form = await client.get("/login/mfa")
            wrong = await client.post("/login/mfa", data={"code": "000000", "csrf_token": csrf_from(form.text)})
            assert wrong.status_code == 401
            right = code_at(TOTP_SECRET, env.clock.now())
            ok = await client.post("/login/mfa", data={"code": right, "csrf_token": csrf_from(form.text)})
            assert ok.status_code == 303
            assert (await client.get("/inbox")).status_code == 200
        # The same code is never accepted twice (RFC 6238 §5.2).
        async with web_client(env.app) as client:
            await _try(client, "anna", PASSWORD)
            form = await client.get("/login/mfa")
            again = await client.post("/login/mfa", data={"code": right, "csrf_token": csrf_from(form.text)})
            assert again.status_code == 401
        assert {"user.mfa_failed", "user.mfa_passed"} <= set(actions(env))

    async def test_api_refuses_a_half_logged_in_session(self, lite: WebEnv) -> None:
        async with web_client(lite.app) as client:
            await _try(client, "anna", PASSWORD)
            assert (await client.get("/api/v1/reviews")).status_code == 401

    async def test_enrolment_qr_and_single_use_recovery_codes(self, lite: WebEnv) -> None:
        with lite.db.session() as s:
            user = s.scalar(select(User).where(User.username == "erik"))
            assert user is not None
            user.totp_secret = user.totp_confirmed_at = None
        async with web_client(lite.app) as client:
            answer = await _try(client, "erik", PASSWORD)
            assert answer.headers["location"] == "/login/mfa/enrol"
            page = await client.get("/login/mfa/enrol")
            assert "<svg" in page.text and "otpauth://totp/Kollega:erik?secret=" in page.text
            secret = re.search(r'id="totp-secret">([^<]+)<', page.text)
            assert secret is not None
            key = secret.group(1).replace(" ", "")
            codes_page = await client.post(
                "/login/mfa/enrol", data={"code": code_at(key, lite.clock.now()), "csrf_token": csrf_from(page.text)}
            )
            codes = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", codes_page.text)
            assert len(codes) == 10
            assert (await client.get("/inbox")).status_code == 200
        with lite.db.session() as s:
            stored = str(s.scalar(select(User.id).where(User.username == "erik")))
            assert codes[0] not in str(s.execute(select(AuditEvent.details)).all()) and stored
        for attempt, expected in ((codes[0], 303), (codes[0], 401)):  # a recovery code works once
            async with web_client(lite.app) as client:
                await _try(client, "erik", PASSWORD)
                form = await client.get("/login/mfa")
                answer = await client.post("/login/mfa", data={"code": attempt, "csrf_token": csrf_from(form.text)})
                assert answer.status_code == expected

    async def test_wrong_codes_are_throttled(self, tmp_path: Path) -> None:
        with temporary_database(tmp_path) as db:
            env = make_web_env(db, tmp_path, address_free_attempts=3)
            async with _from(env.app, "198.51.100.77") as client:
                await _try(client, "anna", PASSWORD)
                form = await client.get("/login/mfa")
                statuses = [
                    (
                        await client.post("/login/mfa", data={"code": "123456", "csrf_token": csrf_from(form.text)})
                    ).status_code
                    for _ in range(4)
                ]
                assert statuses[:2] == [401, 401] and statuses[-1] == 429
                # Even the right code waits out the block.
                right = code_at(TOTP_SECRET, env.clock.now())
                late = await client.post("/login/mfa", data={"code": right, "csrf_token": csrf_from(form.text)})
                assert late.status_code == 429

    async def test_demo_switch_shows_a_banner(self, tmp_path: Path) -> None:
        with temporary_database(tmp_path) as db:
            env = make_web_env(db, tmp_path, mfa_required=False)
            async with web_client(env.app) as client:
                answer = await _try(client, "anna", PASSWORD)
                assert answer.headers["location"] == "/"
                page = await client.get("/inbox")
                assert page.status_code == 200 and 'id="mfa-off"' in page.text
