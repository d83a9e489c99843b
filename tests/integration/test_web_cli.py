"""`kollega users …` and `kollega serve` (core/cli/users.py, core/cli/web.py), mounted as core/cli mounts them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from core.cli.users import users_app
from core.cli.web import serve_command
from core.storage.db import Database
from core.storage.web_models import ApiToken, Role, User, UserRole
from core.testing import temporary_database
from core.web.auth import check_password


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[typer.Typer, Database]]:
    with temporary_database(tmp_path) as db:
        monkeypatch.setenv("KOLLEGA_DATABASE_URL", db.url)
        app = typer.Typer()
        app.command("serve")(serve_command)
        app.add_typer(users_app, name="users")
        yield app, db


def test_users_add_list_grant_token(cli: tuple[typer.Typer, Database]) -> None:
    app, db = cli
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "users",
            "add",
            "anna",
            "--role",
            "case_worker",
            "--tenant",
            "1081",
            "--queue",
            "ronney.review",
            "--name",
            "Anna Lind",
            "--password-stdin",
        ],
        input="ett-långt-lösenord\n",
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["users", "list", "--json"])
    assert json.loads(listed.stdout) == [
        {
            "username": "anna",
            "name": "Anna Lind",
            "active": True,
            "login": "password",
            "grants": ["case_worker:1081:ronney.review"],
        }
    ]
    granted = runner.invoke(app, ["users", "grant", "anna", "--grant", "auditor:1081"])
    assert granted.exit_code == 0, granted.output
    token = runner.invoke(app, ["users", "token", "anna", "--name", "script"])
    assert token.exit_code == 0 and "kol_" in token.stdout
    bad = runner.invoke(app, ["users", "add", "bo", "--role", "case_worker", "--tenant", "1081", "--no-password"])
    assert bad.exit_code != 0  # a case worker needs a queue
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == "anna"))
        assert user is not None and check_password(user.password_hash, "ett-långt-lösenord")
        roles = {(r.role, r.queue) for r in s.scalars(select(UserRole))}
        assert roles == {(Role.case_worker, "ronney.review"), (Role.auditor, "")}
        assert s.scalar(select(ApiToken.name)) == "script"


def test_serve_help(cli: tuple[typer.Typer, Database]) -> None:
    result = CliRunner().invoke(cli[0], ["serve", "--help"])
    assert result.exit_code == 0 and "--port" in result.stdout


def test_serve_with_several_workers_needs_postgresql(cli: tuple[typer.Typer, Database]) -> None:
    result = CliRunner().invoke(cli[0], ["serve", "--workers", "2"])
    assert result.exit_code == 2 and "PostgreSQL" in result.stdout


@pytest.mark.postgres
def test_serve_with_two_workers_answers_from_both(tmp_path: Path, pg_url: str) -> None:
    """`kollega serve --workers 2`: two worker processes build the app from the settings and serve it."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with temporary_database(tmp_path, pg_url) as db, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        env = {**os.environ, "KOLLEGA_DATABASE_URL": db.url, "KOLLEGA_LOGGING__LEVEL": "WARNING"}
        log = tmp_path / "serve.log"
        with log.open("wb") as sink:
            server = subprocess.Popen(
                [sys.executable, "-m", "core.cli", "serve", "--port", str(port), "--workers", "2", "--no-alerts"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        try:
            deadline = time.monotonic() + 300  # a hang guard: starting two workers is slow on a busy machine
            answers: list[int] = []
            while len(answers) < 10:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the workers did not answer"
                try:
                    answers.append(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code)
                except httpx.TransportError:
                    time.sleep(0.5)
            assert answers == [200] * 10
            workers = [p for p in Path("/proc").glob("[0-9]*/status") if f"\nPPid:\t{server.pid}\n" in _read(p)]
            assert len(workers) >= 2
            if hasattr(socket, "SO_REUSEPORT"):
                # Each worker listens on its own socket, so kept-alive clients that connect at the
                # same moment are spread over both (with one shared socket one worker took them all).
                while _listeners(port) < 2:
                    assert time.monotonic() < deadline, "the second worker never listened"
                    time.sleep(0.2)
                clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) for _ in range(16)]
                try:
                    assert all(c.get("/healthz").status_code == 200 for c in clients)
                    held = _connections_per_process(port, [int(w.parent.name) for w in workers])
                finally:
                    for c in clients:
                        c.close()
                assert sum(held.values()) == 16 and len(held) == 2, held
        finally:
            server.terminate()
            server.wait(timeout=60)


def test_serve_with_workers_on_a_port_in_use_says_so(tmp_path: Path, pg_url: str) -> None:
    import os
    import socket
    import subprocess
    import sys

    with temporary_database(tmp_path, pg_url) as db, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**os.environ, "KOLLEGA_DATABASE_URL": db.url, "KOLLEGA_LOGGING__LEVEL": "WARNING"}
        port = str(taken.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-m", "core.cli", "serve", "--port", port, "--workers", "2", "--no-alerts"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode != 0
    if hasattr(socket, "SO_REUSEPORT"):
        assert f"Cannot listen on 127.0.0.1:{port}" in done.stdout, done.stdout + done.stderr


def _tcp_rows(port: int, state: str) -> list[list[str]]:
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in _read(Path(table)).splitlines()[1:]:
            cols = line.split()
            if cols[3] == state and int(cols[1].rpartition(":")[2], 16) == port:
                rows.append(cols)
    return rows


def _listeners(port: int) -> int:
    return len(_tcp_rows(port, "0A"))  # LISTEN


def _connections_per_process(port: int, pids: list[int]) -> dict[int, int]:
    """Established connections to ``port`` (server side) held by each of ``pids``."""
    inodes = {cols[9] for cols in _tcp_rows(port, "01")}  # ESTABLISHED, local port = the server's
    held = {}
    for pid in pids:
        try:
            links = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        if n := sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in inodes):
            held[pid] = n
    return held


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_users_passwd_sets_a_one_time_password_and_mfa_reset_forgets_the_factor(
    cli: tuple[typer.Typer, Database],
) -> None:
    """Issue 17: the operator's password is one-time; sessions and tokens end; a lost phone re-enrols."""
    from core.web.auth import create_token

    app, db = cli
    runner = CliRunner()
    added = runner.invoke(
        app,
        ["users", "add", "anna", "--role", "auditor", "--tenant", "1081", "--password-stdin"],
        input="ett-långt-lösenord\n",
    )
    assert added.exit_code == 0, added.output
    with db.session() as s:
        assert s.scalar(select(User.must_change_password).where(User.username == "anna"))  # the operator knew it
    create_token(db, "anna", "script")
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == "anna"))
        assert user is not None
        user.totp_secret, user.totp_last_step = "JBSWY3DPEHPK3PXP", 5
    changed = runner.invoke(app, ["users", "passwd", "anna", "--password-stdin"], input="ett-annat-långt-lösenord\n")
    assert changed.exit_code == 0, changed.output
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == "anna"))
        assert user is not None and user.must_change_password
        assert check_password(user.password_hash, "ett-annat-långt-lösenord")
        assert all(t.revoked for t in s.scalars(select(ApiToken)))
    reset = runner.invoke(app, ["users", "mfa-reset", "anna"])
    assert reset.exit_code == 0, reset.output
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == "anna"))
        assert user is not None and user.totp_secret is None and user.totp_confirmed_at is None


def test_users_grant_changes_local_grants_and_removes_an_idp_grant_only_when_asked(
    cli: tuple[typer.Typer, Database],
) -> None:
    from core.storage.web_models import GrantSource

    app, db = cli
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "sara", "--role", "operations", "--tenant", "1081", "--no-password"])
    assert added.exit_code == 0, added.output
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == "sara"))
        assert user is not None
        s.add(UserRole(user_id=user.id, role=Role.operations, tenant="1081", queue="", source=GrantSource.idp))
    listed = json.loads(runner.invoke(app, ["users", "list", "--json"]).stdout)
    assert sorted(listed[0]["grants"]) == ["operations:1081", "operations:1081 (idp)"]
    assert runner.invoke(app, ["users", "grant", "sara", "--grant", "operations:1081", "--idp"]).exit_code != 0
    local = runner.invoke(app, ["users", "grant", "sara", "--grant", "operations:1081", "--revoke"])
    assert local.exit_code == 0, local.output
    with db.session() as s:
        assert [r.source for r in s.scalars(select(UserRole))] == ["idp"]
    idp = runner.invoke(app, ["users", "grant", "sara", "--grant", "operations:1081", "--revoke", "--idp"])
    assert idp.exit_code == 0, idp.output
    with db.session() as s:
        assert s.scalars(select(UserRole)).all() == []
