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
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from core.registry import Registry
from core.robot import Robot
from core.runs import SqlRunStore
from core.settings import Settings
from core.storage.db import Database
from core.storage.web_models import Role
from core.testing import ExampleRobot, FakeClock, make_settings
from core.web.app import create_app
from core.web.auth import Grant, create_user, hash_password
from core.web.settings import web_settings

#: The password of every test user (long enough for the CLI's rule).
PASSWORD = "rätt-häftklammer-häst"  # noqa: S105 - a published test value
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def log_in_page(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Log in through the login form in a real browser (a Playwright sync ``Page``), as a person does."""
    page.goto(f"{base_url}/login")
    page.get_by_label("Användarnamn").fill(username)
    page.get_by_label("Lösenord").fill(password)
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
    return {
        name: create_user(db, name, display_name=name.capitalize(), password_hash=_password_hash(), grants=grants)
        for name, grants in specs.items()
    }


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


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the login form; returns the session's CSRF token."""
    page = await client.get("/login")
    response = await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf_from(page.text)}
    )
    if response.status_code != 303:
        raise AssertionError(f"login of {username} failed: {response.status_code}")
    home = await client.get("/me")
    return csrf_from(home.text)


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
    **web_overrides: Any,
) -> WebEnv:
    """Test settings (tenant 0000), the test users, and an app whose clock the test moves."""
    settings = make_settings(tmp_path)
    clock = clock or FakeClock()
    registry = Registry(robots=dict(robots or {"example": ExampleRobot}))
    SqlRunStore(db, clock).ensure_tenant("9999", "Andra kommunen", "drift@andra.example")
    SqlRunStore(db, clock).ensure_tenant("0000", "Testkommun", "drift@test.example")
    ids = add_test_users(db) if users else {}
    web = web_settings(settings, **web_overrides)
    app = create_app(settings, db, registry, web=web, clock=clock)
    return WebEnv(app, db, settings, clock, ids, registry)
