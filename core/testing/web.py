"""Test kit for the web app: users with roles, a logged-in httpx client, CSRF tokens from pages.

::

    env = make_web_env(db, tmp_path)
    async with web_client(env.app) as client:
        await login(client, "anna", PASSWORD)
        page = await client.get("/inbox")

:func:`log_in_page` logs in through the form in a real browser (see :mod:`core.testing.browser`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from core.registry import Registry
from core.robot import Robot
from core.runs import SqlRunStore
from core.settings import Settings
from core.storage.db import Database
from core.storage.web_models import Role, User
from core.testing import ExampleRobot, FakeClock, make_settings
from core.web.app import create_app
from core.web.auth import Grant, create_user, hash_password
from core.web.mfa import code_at
from core.web.settings import web_settings

#: The password of every test user (long enough for the CLI's rule).
PASSWORD = "rätt-häftklammer-häst"  # noqa: S105 - a published test value
#: The TOTP secret every test user is enrolled with (RFC 6238's second factor).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 - a published test value
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def enrol_totp(db: Database, username: str, secret: str = TOTP_SECRET) -> None:
    """Enrol a user's second factor with a known secret, as if they had scanned the QR code."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            raise LookupError(username)
        user.totp_secret, user.totp_confirmed_at, user.totp_last_step = secret, datetime.now(UTC), None


def forget_totp_step(db: Database, username: str) -> None:
    """Test shortcut: forget the last accepted TOTP step, so a test may log one person in twice within 30 s.

    (The app never accepts one code twice; a test's frozen clock would otherwise make the
    second login of the same person impossible.)
    """
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is not None:
            user.totp_last_step = None


def log_in_page(
    page: Any,
    base_url: str,
    username: str,
    password: str = PASSWORD,
    *,
    totp_secret: str = TOTP_SECRET,
    at: datetime | None = None,
    db: Database | None = None,
) -> None:
    """Log in through the login form in a real browser (a Playwright sync ``Page``), as a person does.

    When the app asks for the second factor, the code of ``totp_secret`` at ``at`` (the
    server's time; now by default) is typed in; ``db``: forget the last used step first.
    """
    if db is not None:
        forget_totp_step(db, username)
    page.goto(f"{base_url}/login")
    page.get_by_label("Användarnamn").fill(username)
    page.get_by_label("Lösenord").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login" not in url or "/login/mfa" in url)
    if "/login/mfa" in page.url:
        page.get_by_label("Kod").fill(code_at(totp_secret, at or datetime.now(UTC)))
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/login" not in url)


def add_test_users(
    db: Database, tenant: str = "0000", other_tenant: str = "9999", queue: str = "example.review"
) -> dict[str, int]:
    """One user per role in ``tenant`` (plus a case worker of ``other_tenant``); name → id."""
    specs: dict[str, set[Grant]] = {
        "anna": {
            Grant(Role.case_worker, tenant, queue),
            Grant(Role.case_worker, tenant, queue.split(".")[0] + ".exceptions"),
        },
        "bertil": {Grant(Role.case_worker, tenant, queue)},
        "erik": {Grant(Role.coordinator, tenant)},
        "sara": {Grant(Role.operations, tenant)},
        "johan": {Grant(Role.it_admin, tenant)},
        "maria": {Grant(Role.auditor, tenant)},
        "karin": {Grant(Role.case_worker, other_tenant, queue)},
        "olle": {Grant(Role.operations, other_tenant), Grant(Role.auditor, other_tenant)},
    }
    ids = {
        name: create_user(db, name, display_name=name.capitalize(), password_hash=_password_hash(), grants=grants)
        for name, grants in specs.items()
    }
    for name in ids:
        enrol_totp(db, name)
    return ids


@lru_cache(maxsize=1)
def _password_hash() -> str:
    # One real argon2id hash shared by the test users: hashing is slow on purpose.
    return hash_password(PASSWORD)


@asynccontextmanager
async def web_client(app: FastAPI, base_url: str = "https://testserver") -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to ``app`` in process (HTTPS, so Secure cookies are kept)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, follow_redirects=False) as client:
        yield client


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    if match is None:
        raise AssertionError("no csrf_token on the page")
    return match.group(1)


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, *, totp_secret: str = TOTP_SECRET
) -> str:
    """Log in through the login form (and the second factor, at the app's clock); returns the CSRF token."""
    page = await client.get("/login")
    response = await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf_from(page.text)}
    )
    if response.status_code != 303:
        raise AssertionError(f"login of {username} failed: {response.status_code}")
    if response.headers["location"].startswith("/login/mfa"):
        ctx = _app_context(client)
        if ctx is not None:
            forget_totp_step(ctx.db, username)
        when = ctx.clock() if ctx is not None else datetime.now(UTC)
        form = await client.get("/login/mfa")
        response = await client.post(
            "/login/mfa", data={"code": code_at(totp_secret, when), "csrf_token": csrf_from(form.text)}
        )
        if response.status_code != 303:
            raise AssertionError(f"second factor of {username} failed: {response.status_code}")
    home = await client.get("/me")
    return csrf_from(home.text)


def _app_context(client: httpx.AsyncClient) -> Any:
    """The in-process app's context (its clock and database), when the client talks to one."""
    app = getattr(getattr(client, "_transport", None), "app", None)
    return getattr(getattr(app, "state", None), "kollega", None)


@dataclass
class WebEnv:
    """An app over a test database, with its clock and test users."""

    app: FastAPI
    db: Database
    settings: Settings
    clock: FakeClock
    users: dict[str, int]
    registry: Registry


def make_web_env(
    db: Database,
    tmp_path: Path,
    *,
    robots: dict[str, type[Robot]] | None = None,
    clock: FakeClock | None = None,
    users: bool = True,
    settings_overrides: dict[str, Any] | None = None,
    **web_overrides: Any,
) -> WebEnv:
    """Test settings (tenant 0000, or ``settings_overrides``), the test users, and an app whose clock the test moves."""
    settings = make_settings(tmp_path, **(settings_overrides or {}))
    clock = clock or FakeClock()
    registry = Registry(robots=dict(robots or {"example": ExampleRobot}))
    SqlRunStore(db, clock).ensure_tenant("9999", "Andra kommunen", "drift@andra.example")
    SqlRunStore(db, clock).ensure_tenant("0000", "Testkommun", "drift@test.example")
    ids = add_test_users(db) if users else {}
    web = web_settings(settings, **web_overrides)
    app = create_app(settings, db, registry, web=web, clock=clock)
    return WebEnv(app, db, settings, clock, ids, registry)
