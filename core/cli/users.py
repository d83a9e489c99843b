"""``kollega users …``: the people who use the web app, their roles and API tokens."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import typer
from rich.table import Table
from sqlalchemy import delete, select

from core import audit
from core.cli.common import console, emit_json, load_cli_settings, open_database
from core.errors import ConfigError
from core.storage.db import Database
from core.storage.web_models import GrantSource, RecoveryCode, Role, User, UserRole
from core.web.auth import Grant, create_token, create_user, end_all_sessions
from core.web.useradmin import one_time_password

users_app = typer.Typer(no_args_is_help=True, help="People who use the web app: accounts, roles, API tokens.")
ROLE_HELP = "Role: " + ", ".join(r.value for r in Role) + "."


def register(app: typer.Typer) -> None:
    """Add ``kollega users …`` to ``app``."""
    app.add_typer(users_app, name="users")


def _grants(roles: list[str], tenants: list[str], queues: list[str], specs: list[str]) -> set[Grant]:
    """Grants from --role × --tenant (× --queue) and from role:tenant[:queue] specs."""
    out: set[Grant] = set()
    for spec in specs:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise ConfigError(f"--grant {spec!r}: use role:tenant or role:tenant:queue")
        roles_, tenants_, queues_ = [parts[0]], [parts[1]], [parts[2]] if len(parts) == 3 else []
        out |= _grants(roles_, tenants_, queues_, [])
    for role in roles:
        if role not in Role.__members__:
            raise ConfigError(f"unknown role {role!r}; {ROLE_HELP}")
        if not tenants:
            raise ConfigError("--tenant is required with --role")
        for tenant in tenants:
            if not (len(tenant) == 4 and tenant.isdigit()):
                raise ConfigError(f"{tenant!r} is not a four-digit kommunkod")
            if Role(role) == Role.case_worker and not queues:
                raise ConfigError("a case worker needs at least one --queue (e.g. ronney.review)")
            if Role(role) in (Role.case_worker, Role.coordinator) and queues:
                out |= {Grant(Role(role), tenant, q) for q in queues}
            else:
                out.add(Grant(Role(role), tenant))
    return out


def _password(stdin: bool) -> str:
    if stdin:
        value = sys.stdin.readline().rstrip("\n")
    else:
        value = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(value) < 12:
        raise ConfigError("a password needs at least 12 characters")
    return value


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Log-in name, e.g. anna.lind."),
    role: list[str] = typer.Option([], "--role", help=ROLE_HELP),
    tenant: list[str] = typer.Option([], "--tenant", help="Kommunkod the roles apply in (repeatable)."),
    queue: list[str] = typer.Option([], "--queue", help="Review queue for case workers/coordinators (repeatable)."),
    grant: list[str] = typer.Option([], "--grant", help="role:tenant[:queue] (repeatable), for mixed grants."),
    name: str = typer.Option("", "--name", help="Display name."),
    email: str | None = typer.Option(None, "--email", help="E-mail address."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    no_password: bool = typer.Option(False, "--no-password", help="No password: logs in through OpenID Connect."),
) -> None:
    """Create a local account with roles scoped to tenants."""
    grants = _grants(role, tenant, queue, grant)
    settings = load_cli_settings()
    db = open_database(settings)
    with db.session() as s:
        if s.scalar(select(User.id).where(User.username == username)) is not None:
            raise ConfigError(f"user {username!r} already exists")
    password = None if no_password else _password(password_stdin)
    user_id = create_user(db, username, display_name=name, email=email, password=password, grants=grants)
    if password is not None:
        with db.session() as s:
            row = s.get(User, user_id)
            assert row is not None
            row.must_change_password = True  # the operator typed it: the person replaces it at first login
    console.print(
        f"user {username} created with {len(grants)} grant(s)"
        + ("; the password is one-time (changed at first login)" if password is not None else "")
    )


def _user(db: Database, username: str) -> User:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise ConfigError(f"no user {username!r}")
    return user


@users_app.command("list")
def users_list(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Users and their grants."""
    db = open_database(load_cli_settings())
    with db.session() as s:
        users = s.scalars(select(User).order_by(User.username)).all()
        grants = s.scalars(select(UserRole).order_by(UserRole.tenant, UserRole.role)).all()
    rows = [
        {
            "username": u.username,
            "name": u.display_name,
            "active": u.active,
            "login": "oidc" if u.oidc_subject else "saml" if u.saml_subject else "password",
            # IdP grants (set at each sign-in) are marked: `users grant --revoke` changes local ones (--idp: the IdP's).
            "grants": [
                f"{g.role.value}:{g.tenant}"
                + (f":{g.queue}" if g.queue else "")
                + (" (idp)" if g.source == GrantSource.idp else "")
                for g in grants
                if g.user_id == u.id
            ],
        }
        for u in users
    ]
    if as_json:
        emit_json(rows)
        return
    table = Table("User", "Name", "Login", "Active", "Grants")
    for r in rows:
        table.add_row(
            str(r["username"]), str(r["name"]), str(r["login"]), "yes" if r["active"] else "no", _joined(r["grants"])
        )
    console.print(table)


def _joined(value: object) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


@users_app.command("grant")
def users_grant(
    username: str = typer.Argument(...),
    role: list[str] = typer.Option([], "--role", help=ROLE_HELP),
    tenant: list[str] = typer.Option([], "--tenant"),
    queue: list[str] = typer.Option([], "--queue"),
    grant: list[str] = typer.Option([], "--grant", help="role:tenant[:queue] (repeatable)."),
    revoke: bool = typer.Option(False, "--revoke", help="Remove these grants instead."),
    idp: bool = typer.Option(
        False,
        "--idp",
        help="With --revoke: remove the identity provider's grant instead of the local one "
        "(it comes back at the next sign-in if the IdP still gives it).",
    ),
) -> None:
    """Add (or with --revoke remove) local grants; IdP grants are set at each sign-in."""
    if idp and not revoke:
        raise typer.BadParameter("--idp only goes with --revoke: IdP grants are given by the IdP", param_hint="--idp")
    source = GrantSource.idp if idp else GrantSource.local
    grants = _grants(role, tenant, queue, grant)
    db = open_database(load_cli_settings())
    user = _user(db, username)
    with db.session() as s:
        for g in grants:
            s.execute(
                delete(UserRole).where(
                    UserRole.user_id == user.id,
                    UserRole.role == g.role,
                    UserRole.tenant == g.tenant,
                    UserRole.queue == g.queue,
                    UserRole.source == source,
                )
            )
            if not revoke:
                s.add(UserRole(user_id=user.id, role=g.role, tenant=g.tenant, queue=g.queue))
        audit.append(
            s,
            actor="system:cli",
            action="user.revoked" if revoke else "user.granted",
            subject=f"user:{username}",
            details={
                "grants": sorted(f"{g.role.value}:{g.tenant}:{g.queue}" for g in grants),
                "source": source.value,
            },
        )
    console.print(f"{'revoked' if revoke else 'granted'} {len(grants)} grant(s) for {username}")


@users_app.command("passwd")
def users_passwd(
    username: str = typer.Argument(...), password_stdin: bool = typer.Option(False, "--password-stdin")
) -> None:
    """Set a one-time password: the account is unlocked, its sessions and API tokens end, and the
    person must choose their own password at the next login (the operator never knows it)."""
    db = open_database(load_cli_settings())
    user = _user(db, username)
    password = _password(password_stdin)
    with db.session() as s:
        row = s.get(User, user.id)
        assert row is not None
        one_time_password(s, row, password)
        ended = end_all_sessions(s, row.id)
        audit.append(
            s,
            actor="system:cli",
            action="user.password_reset",
            subject=f"user:{username}",
            details={"sessions_ended": ended, "tokens_revoked": True, "must_change": True},
        )
    console.print(f"one-time password of {username} set; sessions and API tokens ended; to be changed at next login")


@users_app.command("mfa-reset")
def users_mfa_reset(username: str = typer.Argument(...)) -> None:
    """Forget a person's second factor (lost phone): they enrol again at the next login; sessions end."""
    db = open_database(load_cli_settings())
    user = _user(db, username)
    with db.session() as s:
        row = s.get(User, user.id)
        assert row is not None
        row.totp_secret, row.totp_confirmed_at, row.totp_last_step = None, None, None
        s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == row.id))
        ended = end_all_sessions(s, row.id)
        audit.append(
            s,
            actor="system:cli",
            action="user.mfa_reset",
            subject=f"user:{username}",
            details={"sessions_ended": ended},
        )
    console.print(f"second factor of {username} reset; enrolment at the next login")


@users_app.command("disable")
def users_disable(
    username: str = typer.Argument(...),
    enable: bool = typer.Option(False, "--enable", help="Enable the account again."),
) -> None:
    """Disable an account (its sessions and tokens stop working at once), or enable it again."""
    db = open_database(load_cli_settings())
    user = _user(db, username)
    with db.session() as s:
        row = s.get(User, user.id)
        assert row is not None
        row.active = enable
        audit.append(
            s, actor="system:cli", action="user.enabled" if enable else "user.disabled", subject=f"user:{username}"
        )
    console.print(f"{username} {'enabled' if enable else 'disabled'}")


@users_app.command("token")
def users_token(
    username: str = typer.Argument(...),
    name: str = typer.Option(..., "--name", help="What the token is for, e.g. 'report-script'."),
    days: int = typer.Option(90, "--days", min=1, max=3650, help="Days until the token expires."),
) -> None:
    """Create an API token (printed once; only its hash is stored)."""
    db = open_database(load_cli_settings())
    token = create_token(db, username, name, expires_at=datetime.now(UTC) + timedelta(days=days))
    console.print("API token (shown once, keep it secret):", style="bold")
    sys.stdout.write(token + "\n")
