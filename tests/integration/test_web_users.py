"""The IT admin's user pages: create accounts, grant and revoke roles, disable, reset passwords — in their own tenants only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from core.storage.db import Database
from core.storage.models import AuditEvent
from core.storage.web_models import Role, User, UserRole
from core.testing.web import WebEnv, csrf_from, login, make_web_env, web_client


@pytest.fixture
def env(db: Database, tmp_path: Path) -> WebEnv:
    return make_web_env(db, tmp_path)


def grants(env: WebEnv, username: str) -> set[tuple[str, str, str]]:
    with env.db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None
        return {
            (g.role.value, g.tenant, g.queue) for g in s.scalars(select(UserRole).where(UserRole.user_id == user.id))
        }


async def test_it_admin_creates_an_account_whose_one_time_password_works(env: WebEnv) -> None:
    async with web_client(env.app) as client:
        csrf = await login(client, "johan")
        page = await client.post(
            "/admin/users",
            data={
                "csrf_token": csrf,
                "username": "Lisa.Berg",
                "display_name": "Lisa Berg",
                "role": "case_worker",
                "tenant": "0000",
                "queue": "example.review",
            },
        )
        assert page.status_code == 200
        password = re.search(r"<code>([^<]+)</code>", page.text)
        assert password is not None and "visas bara nu" in page.text
    assert grants(env, "lisa.berg") == {("case_worker", "0000", "example.review")}
    async with web_client(env.app) as client:
        answer = await client.post(
            "/login",
            data={"username": "lisa.berg", "password": password.group(1), "csrf_token": await _login_csrf(client)},
        )
        # Logged in with the one-time password, which must be replaced first (issue 17):
        # the admin who saw it never knows the password Lisa goes on to use.
        assert answer.status_code == 303 and answer.headers["location"] == "/account/password"
        assert (await client.get("/me")).headers["location"] == "/account/password"
        form = await client.get("/account/password")
        changed = await client.post(
            "/account/password",
            data={
                "csrf_token": csrf_from(form.text),
                "current": password.group(1),
                "new": "lisas egen långa mening",
                "repeat": "lisas egen långa mening",
            },
        )
        assert changed.status_code == 303 and changed.headers["location"] == "/login/mfa/enrol"
    with env.db.session() as s:
        created = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.created")).all()
        assert created[-1].actor == "user:johan" and password.group(1) not in str(created[-1].details)


async def test_grant_revoke_disable_and_reset_within_the_admins_tenant(env: WebEnv) -> None:
    async with web_client(env.app) as client:
        csrf = await login(client, "johan")
        await client.post(
            "/admin/users/grants",
            data={"csrf_token": csrf, "username": "bertil", "role": "coordinator", "tenant": "0000"},
        )
        assert ("coordinator", "0000", "") in grants(env, "bertil")
        await client.post(
            "/admin/users/grants",
            data={
                "csrf_token": csrf,
                "username": "bertil",
                "role": "case_worker",
                "tenant": "0000",
                "queue": "example.review",
                "action": "revoke",
            },
        )
        assert grants(env, "bertil") == {("coordinator", "0000", "")}
        await client.post("/admin/users/bertil/active", data={"csrf_token": csrf, "active": "false"})
        reset = await client.post("/admin/users/bertil/password", data={"csrf_token": csrf})
        assert reset.status_code == 200 and "<code>" in reset.text
        page = await client.get("/admin/users")
        assert "avstängd" in page.text and "Nytt konto" in page.text
    with env.db.session() as s:
        bertil = s.scalar(select(User).where(User.username == "bertil"))
        assert bertil is not None and not bertil.active
    async with web_client(env.app) as client:  # a disabled account cannot log in
        with pytest.raises(AssertionError):
            await login(client, "bertil")


async def test_nothing_outside_the_admins_tenants(env: WebEnv) -> None:
    async with web_client(env.app) as client:
        csrf = await login(client, "johan")  # IT admin of 0000 only
        other = await client.post(
            "/admin/users/grants", data={"csrf_token": csrf, "username": "bertil", "role": "it_admin", "tenant": "9999"}
        )
        assert other.status_code == 403
        hidden = await client.post("/admin/users/karin/active", data={"csrf_token": csrf, "active": "false"})
        assert hidden.status_code == 404  # a case worker of the other municipality
        page = await client.get("/admin/users")
        assert "karin" not in page.text
        self_lockout = await client.post(
            "/admin/users/johan/active", data={"csrf_token": csrf, "active": "false"}, follow_redirects=True
        )
        assert "ditt eget konto" in self_lockout.text
        no_csrf = await client.post("/admin/users/bertil/active", data={"active": "false"})
        assert no_csrf.status_code in (400, 403)
    assert grants(env, "karin") == {("case_worker", "9999", "example.review")}
    async with web_client(env.app) as client:
        csrf = await login(client, "sara")  # operations, not IT admin
        assert (await client.get("/admin/users")).status_code == 403
        refused = await client.post(
            "/admin/users", data={"csrf_token": csrf, "username": "x1", "role": "auditor", "tenant": "0000"}
        )
        assert refused.status_code == 403
    with env.db.session() as s:
        assert s.scalar(select(User).where(User.username == "x1")) is None
        assert s.scalar(select(User.active).where(User.username == "johan")) is True
    assert Role.it_admin.value == "it_admin"


async def _login_csrf(client: object) -> str:
    page = await client.get("/login")  # type: ignore[attr-defined]
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


async def test_idp_grants_are_shown_apart_and_left_to_the_idp(env: WebEnv) -> None:
    """A grant from the identity provider is listed on its own and cannot be revoked here; a local one beside it can."""
    from core.storage.web_models import GrantSource

    with env.db.session() as s:
        bertil = s.scalar(select(User).where(User.username == "bertil"))
        assert bertil is not None
        s.add(UserRole(user_id=bertil.id, role=Role.operations, tenant="0000", queue="", source=GrantSource.idp))
    async with web_client(env.app) as client:
        csrf = await login(client, "johan")
        page = await client.get("/admin/users")
        assert "Från kommunens inloggning" in page.text and "Behörigheter i Kollega" in page.text
        row = page.text[page.text.index(">bertil<") :]
        row = row[: row.index("</tr>")]
        local_cell, idp_cell = row.split('<td><ul class="plain">')[1:3]
        assert "Handläggare" in local_cell and "Ta bort" in local_cell
        assert "Drift" in idp_cell and "Ta bort" not in idp_cell
        refused = await client.post(
            "/admin/users/grants",
            data={"csrf_token": csrf, "username": "bertil", "role": "operations", "tenant": "0000", "action": "revoke"},
            follow_redirects=True,
        )
        assert "ändras i kommunens katalog" in refused.text
    with env.db.session() as s:
        sources = {(r.role.value, r.source) for r in s.scalars(select(UserRole).where(UserRole.user_id == bertil.id))}
    assert ("operations", "idp") in sources and ("case_worker", "local") in sources
