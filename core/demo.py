"""``kollega demo``: the built-in sandbox, one full night of every robot, then the inbox.

Everything runs on this machine: the sandbox plays the municipality's external systems
over real HTTP, the robots work against it on the embedded SQLite database, and the web
app serves the review inbox and the operations dashboard afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from core.settings import Settings
from core.storage.db import Database
from core.storage.web_models import Role, User

#: The municipality the sandbox plays (Ronneby).
SANDBOX_TENANT = "1081"

#: The systems a sandbox plays, by connector section name (= the sandbox's path prefix).
SANDBOX_SYSTEMS = ("eservice", "registers", "staffing", "sms", "homecare", "scheduling", "payroll")


@dataclass(frozen=True)
class DemoUser:
    """A demo account printed for the newcomer."""

    username: str
    password: str
    role: Role
    tenant: str
    queue: str = ""


#: The sandbox payroll application's demo password for HaRry (a sandbox credential, not a secret).
SANDBOX_HARRY_PASSWORD = "sandlada-harry"  # noqa: S105 - the sandbox's published demo login


def point_connectors_at(settings: Settings, base_url: str, tenant: str | None = None) -> None:
    """Point every sandbox system's connector section at a running sandbox.

    Without ``tenant`` the deployment's sections (``[connectors.<system>]``) change; with
    it, that municipality's own sections, as a second municipality on one deployment has.
    """
    # HaRry's password is a reference to this variable (config/kollega.toml); the sandbox's
    # demo password fills it unless the operator set one.
    os.environ.setdefault("KOLLEGA_HARRY_PASSWORD", SANDBOX_HARRY_PASSWORD)
    own = next((t for t in settings.tenants if t.code == tenant), None) if tenant else None
    if tenant and own is None:
        raise ValueError(f"no tenant {tenant} in the settings")
    for system in SANDBOX_SYSTEMS:
        # The SMS client's paths already start with the gateway's own prefix.
        suffix = "" if system == "sms" else system
        url = f"{base_url.rstrip('/')}/{suffix}"
        if own is not None:
            own.connectors[system] = {**own.connectors.get(system, {}), "base_url": url}
        else:
            settings.connectors[system] = {**settings.connectors.get(system, {}), "base_url": url}


#: The size of each demo municipality (sandbox options); every robot gets a full night's kinds of work.
DEMO_SIZE: dict[str, int] = {"employees": 60, "applications": 300}

#: Lena's search time per home-care group in the demo (a real night gives her 60 s).
DEMO_LENA_SECONDS = 20.0


@contextmanager
def sandbox(seed: int, tenant: str = SANDBOX_TENANT) -> Iterator[str]:
    """A sandbox playing ``tenant``'s systems on a free local port; yields its base URL."""
    from sandbox.testing import running_sandbox

    # The sandbox's "today" is the real date, so the robots' own notion of "the coming
    # month" or "tomorrow" matches its data.
    # A demo-sized municipality: the sandbox's defaults (800 employees for HaRry) model a
    # whole night, which takes longer than a newcomer should wait.
    with running_sandbox(seed=seed, today=date.today(), tenant=tenant, **DEMO_SIZE) as base_url:
        yield base_url


@contextmanager
def sandboxes(settings: Settings, seed: int) -> Iterator[dict[str, str]]:
    """One sandbox per configured municipality (a different seed each), connectors pointed at them.

    The first municipality's systems are the deployment's ``[connectors.*]`` sections; every
    other municipality gets its own sections, as two municipalities sharing one deployment
    would. Yields kommunkod → sandbox URL.
    """
    codes = [t.code for t in settings.tenants] or [SANDBOX_TENANT]
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        for i, code in enumerate(codes):
            urls[code] = stack.enter_context(sandbox(seed + i, code))
            point_connectors_at(settings, urls[code], tenant=code if i else None)
        yield urls


def demo_users(db: Database, tenants: list[str], queues: dict[str, list[str]]) -> list[DemoUser]:
    """Create one account per role and tenant (once; later demos reuse them with new passwords)."""
    from core import audit
    from core.web.auth import Grant, create_user, hash_password

    made: list[DemoUser] = []
    for tenant in tenants:
        specs = [
            ("handlaggare", Role.case_worker, ""),
            ("samordnare", Role.coordinator, ""),
            ("drift", Role.operations, ""),
            ("it", Role.it_admin, ""),
            ("revisor", Role.auditor, ""),
        ]
        for prefix, role, _unused in specs:
            username = f"{prefix}.{tenant}"
            password = secrets.token_urlsafe(9)
            grants = (
                {Grant(role, tenant, q) for q in queues.get(tenant, [])}
                if role == Role.case_worker
                else {Grant(role, tenant)}
            )
            with db.session() as s:
                row = s.scalar(select(User).where(User.username == username))
                if row is not None:
                    row.password_hash, row.failed_logins, row.locked_until = hash_password(password), 0, None
                    audit.append(s, actor="system:demo", action="user.password_set", subject=f"user:{username}")
            if row is None:
                create_user(db, username, display_name=f"Demo {prefix} {tenant}", password=password, grants=grants)
            made.append(DemoUser(username, password, role, tenant))
    return made
