"""End to end in real Chromium: a case worker signs in through the sandbox's SAML IdP and signs out again."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import select

from core.settings import SecretRef, TenantSettings
from core.storage.web_models import GrantSource, User, UserRole
from core.testing import FakeClock, temporary_database
from core.testing.browser import launch_chromium
from core.testing.saml import make_key_pair
from core.testing.web import WebEnv, make_web_env
from core.web.settings import IdpGroupGrant, SamlSettings
from sandbox.testing import running_sandbox

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _served(env_for: object) -> Iterator[tuple[WebEnv, str]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env: WebEnv = env_for(base_url)  # type: ignore[operator]
    server = uvicorn.Server(uvicorn.Config(env.app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the web app did not start"
        time.sleep(0.02)
    try:
        yield env, base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebEnv, str, str]]:
    tmp: Path = tmp_path_factory.mktemp("saml-e2e")
    key, cert = make_key_pair(tmp / "sp")
    with running_sandbox(seed=4) as idp_url, temporary_database(tmp) as db:

        def env_for(base_url: str) -> WebEnv:
            return make_web_env(
                db,
                tmp,
                clock=FakeClock(datetime.now(UTC)),
                users=False,
                settings_overrides={"tenants": [TenantSettings(code="1081", name="Ronneby kommun")]},
                public_url=base_url,
                local_login=False,
                saml=SamlSettings(
                    idp_metadata_url=f"{idp_url}/saml/metadata", sp_key=SecretRef(file=key), sp_cert_file=cert
                ),
                idp_groups=[
                    IdpGroupGrant(
                        group="Kollega Ronneby Handläggare EKB",
                        role="case_worker",  # type: ignore[arg-type]
                        tenant="1081",
                        queues=["ronney.review"],
                    )
                ],
            )

        for env, base_url in _served(env_for):
            yield env, base_url, idp_url


def test_case_worker_signs_in_with_saml_and_out_again(served: tuple[WebEnv, str, str]) -> None:
    env, base_url, idp_url = served
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        context = browser.new_context(locale="sv-SE")
        try:
            page = context.new_page()
            page.goto(f"{base_url}/login")
            page.get_by_role("link", name="Logga in med SAML (kommunens IdP)").click()
            page.wait_for_url(lambda url: url.startswith(f"{idp_url}/saml/sso"))
            page.get_by_role("button", name="Logga in som Anna Lind").click()
            page.get_by_role("button", name="Fortsätt till tjänsten").click()
            page.wait_for_url(f"{base_url}/inbox")
            expect(page.get_by_role("heading", name="Inkorg")).to_be_visible()
            page.goto(f"{base_url}/me")
            page.get_by_role("button", name="Logga ut").first.click()
            page.wait_for_url(lambda url: url.startswith(f"{base_url}/login"))
            expect(page.get_by_text("Du är utloggad.")).to_be_visible()
            page.goto(f"{base_url}/inbox")
            page.wait_for_url(lambda url: "/login" in url)
        finally:
            context.close()
            browser.close()
    with env.db.session() as s:
        user = s.scalar(select(User).where(User.username == "anna.handlaggare"))
        assert user is not None and user.saml_subject
        grants = {(r.role.value, r.tenant, r.queue, r.source) for r in s.scalars(select(UserRole))}
    assert grants == {("case_worker", "1081", "ronney.review", GrantSource.idp.value)}
