"""Checkpoints of the audit chain outside the database (review finding M6, item 2).

Every N events and at the end of every run the chain's head goes to a file (JSON lines,
fsynced), the auditors' mail and an HTTP endpoint; `kollega audit verify` and the auditors'
page check the chain against the latest one, so a rewrite of the WHOLE chain (every hash
and the head recomputed, as an intruder with write access could) is caught.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, text

from core import audit, audit_checkpoint
from core.audit import Auditor
from core.audit_checkpoint import Checkpointer, FileSink, HttpSink, MailSink
from core.runs import SqlRunStore
from core.settings import SecretRef
from core.storage.db import Database
from core.storage.models import AuditEvent, RunStatus
from core.testing import ExampleRobot, FakeClock, make_settings, run_robot
from core.testing.web import login, make_web_env, web_client


@pytest.fixture
def checkpoints(tmp_path: Path) -> Iterator[Path]:
    """A file-sink checkpointer active for the test: every 5 events and at each run's end."""
    path = tmp_path / "other-volume" / "audit-checkpoints.jsonl"
    audit_checkpoint.configure(Checkpointer([FileSink(path)], every=5, at_run_end=True))
    try:
        yield path
    finally:
        audit_checkpoint.configure(None)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def head(db: Database) -> tuple[int, str]:
    with db.session() as s:
        return audit.latest(s)


def rewrite_whole_chain(db: Database) -> None:
    """Change event 1 and recompute every hash and the head: the chain verifies on its own."""
    with db.session() as s:
        if db.dialect == "postgresql":  # past the append-only guard, as a superuser could
            s.execute(text("SET LOCAL session_replication_role = replica"))
        prev = audit.GENESIS_HASH
        for ev in s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all():
            actor = "user:mallory" if ev.seq == 1 else ev.actor
            digest = audit.event_hash(
                seq=ev.seq,
                time=ev.time,
                tenant=ev.tenant,
                actor=actor,
                action=ev.action,
                subject=ev.subject,
                purpose=ev.purpose,
                details=ev.details,
                prev_hash=prev,
            )
            s.execute(
                text("UPDATE audit_events SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"a": actor, "p": prev, "h": digest, "s": ev.seq},
            )
            prev = digest
        s.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})


class TestWhenCheckpointsAreTaken:
    """Every N events, at the end of every run, only after the commit."""

    def test_every_n_events(self, db: Database, clock: FakeClock, checkpoints: Path) -> None:
        auditor = Auditor(db.session, clock)
        for i in range(12):
            auditor.record(actor="user:anna", action="review.opened", details={"i": i})
        got = lines(checkpoints)
        assert [cp["seq"] for cp in got] == [5, 10]
        assert all(cp["reason"] == "every_n" for cp in got)
        with db.session() as s:
            assert s.get(AuditEvent, 10).hash == got[-1]["hash"]  # type: ignore[union-attr]

    def test_rolled_back_event_is_never_checkpointed(self, db: Database, clock: FakeClock, checkpoints: Path) -> None:
        auditor = Auditor(db.session, clock)
        for _ in range(4):
            auditor.record(actor="user:anna", action="review.opened")
        with pytest.raises(RuntimeError), db.session() as s:
            audit.append(s, actor="user:anna", action="review.opened", now=clock.now())  # seq 5 …
            raise RuntimeError("… rolled back")
        assert not checkpoints.exists()
        auditor.record(actor="user:anna", action="review.opened")  # the real seq 5
        assert [cp["seq"] for cp in lines(checkpoints)] == [5]
        assert audit_checkpoint.read_latest(checkpoints).hash == head(db)[1]  # type: ignore[union-attr]

    def test_end_of_every_run(self, db: Database, clock: FakeClock, checkpoints: Path) -> None:
        runs = SqlRunStore(db, clock)
        runs.ensure_tenant("0000", "Testkommun")
        run_id = runs.create(robot="example", tenant="0000", trigger="schedule")
        assert run_id is not None
        runs.finish(run_id, RunStatus.succeeded, {"collected": 0})
        (cp,) = lines(checkpoints)
        assert cp["reason"] == "run_end" and (cp["seq"], cp["hash"]) == head(db)

    def test_a_night_ends_with_its_head_checkpointed(
        self, db: Database, tmp_path: Path, clock: FakeClock, checkpoints: Path
    ) -> None:
        run_robot(ExampleRobot, db=db, tmp_path=tmp_path, clock=clock)
        latest = audit_checkpoint.read_latest(checkpoints)
        assert latest is not None and (latest.seq, latest.hash) == head(db)
        assert latest.reason == "run_end"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector(BaseHTTPRequestHandler):
    """A log collector: keeps what is POSTed, with its Authorization header."""

    received: list[tuple[str | None, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.headers.get("Authorization"), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class TestSinks:
    """The file, the auditors' mail, an HTTP endpoint; a failing sink fails nothing else."""

    def test_mail_http_and_file(
        self, db: Database, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        inbox = Inbox()
        smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
        smtp.start()
        http = HTTPServer(("127.0.0.1", 0), Collector)
        Collector.received = []
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        monkeypatch.setenv("KOLLEGA_TEST_CP_TOKEN", "cp-token-1")
        file = tmp_path / "cp.jsonl"
        sinks = [
            FileSink(file),
            MailSink(
                ["revisor@test.example"],
                {"host": "127.0.0.1", "port": smtp.port, "security": "none", "sender": "k@test.example"},
                timeout=5,
            ),
            HttpSink(f"http://127.0.0.1:{http.server_port}/checkpoints", SecretRef(env="KOLLEGA_TEST_CP_TOKEN"), 5),
        ]
        audit_checkpoint.configure(Checkpointer(sinks, every=3, at_run_end=True))
        try:
            auditor = Auditor(db.session, clock)
            for _ in range(3):
                auditor.record(actor="user:anna", action="review.opened")
        finally:
            audit_checkpoint.configure(None)
            smtp.stop()
            http.shutdown()
            http.server_close()
        seq, digest = head(db)
        assert seq == 3
        assert [(cp["seq"], cp["hash"]) for cp in lines(file)] == [(3, digest)]
        (msg,) = inbox.messages
        assert msg["To"] == "revisor@test.example" and "händelse 3" in str(msg["Subject"])
        body = msg.get_body(preferencelist=("plain",))
        assert body is not None and digest in body.get_content()
        ((auth, posted),) = Collector.received
        assert auth == "Bearer cp-token-1"
        assert (posted["seq"], posted["hash"], posted["reason"]) == (3, digest, "every_n")

    def test_failing_sink_fails_nothing_else(self, db: Database, clock: FakeClock, tmp_path: Path) -> None:
        file = tmp_path / "cp.jsonl"
        dead = HttpSink(f"http://127.0.0.1:{free_port()}/", None, 2)
        checkpointer = Checkpointer([dead, FileSink(file)], every=1, at_run_end=True)
        audit_checkpoint.configure(checkpointer)
        try:
            seq = Auditor(db.session, clock).record(actor="user:anna", action="review.opened")
        finally:
            audit_checkpoint.configure(None)
        assert seq == 1 and head(db)[0] == 1  # the event is there …
        assert [cp["seq"] for cp in lines(file)] == [1]  # … the other sink got it …
        assert checkpointer.failures == 1  # … and the failure was counted (and logged)

    def test_settings_build_the_sinks(self, tmp_path: Path) -> None:
        settings = make_settings(
            tmp_path,
            audit={"checkpoint_mail_to": ["revisor@test.example"], "checkpoint_url": "https://logs.test/cp"},
            connectors={"mail": {"host": "smtp.test", "sender": "k@test.example"}},
        )
        built = audit_checkpoint.build(settings)
        assert [s.name for s in built.sinks] == ["file", "mail", "http"]
        assert audit_checkpoint.checkpoint_file(settings) == settings.var_dir / "audit-checkpoints.jsonl"

    def test_torn_last_line_and_old_format(self, tmp_path: Path) -> None:
        path = tmp_path / "cp"
        path.write_text(f"4 {'a' * 64} 2026-11-23T01:00:00Z\n" + '{"seq": 9, "hash": "b', encoding="utf-8")
        latest = audit_checkpoint.read_latest(path)
        assert latest is not None and (latest.seq, latest.hash) == (4, "a" * 64)
        assert audit_checkpoint.read_latest(tmp_path / "none") is None


class TestVerifyAgainstTheLatestCheckpoint:
    """A rewrite of the whole chain passes the chain's own checks; the checkpoint catches it."""

    def test_rewrite_caught_only_with_the_checkpoint(self, db: Database, clock: FakeClock, checkpoints: Path) -> None:
        auditor = Auditor(db.session, clock)
        for _ in range(7):
            auditor.record(actor="user:anna", action="review.opened")
        rewrite_whole_chain(db)
        with db.session() as s:
            assert audit.verify(s).ok  # the chain alone looks whole
            cp = audit_checkpoint.read_latest(checkpoints)
            assert cp is not None
            result = audit.verify(s, (cp.seq, cp.hash))
        assert not result.ok and result.bad_seq == 5

    async def test_auditors_page_checks_against_the_checkpoint(self, db: Database, tmp_path: Path) -> None:
        env = make_web_env(db, tmp_path)
        path = audit_checkpoint.checkpoint_file(env.settings)
        audit_checkpoint.configure(audit_checkpoint.build(env.settings))
        try:
            runs = env.app.state.kollega.runs
            run_id = runs.create(robot="example", tenant="0000", trigger="manual")
            runs.finish(run_id, RunStatus.succeeded, {})
        finally:
            audit_checkpoint.configure(None)
        cp = audit_checkpoint.read_latest(path)
        assert cp is not None
        async with web_client(env.app) as client:
            await login(client, "maria")
            page = await client.get("/audit")
            assert 'data-chain="ok"' in page.text and f'data-checkpoint="{cp.seq}"' in page.text
            rewrite_whole_chain(db)
            page = await client.get("/audit")
            assert 'data-chain="broken"' in page.text
            assert f"Kedjan är bruten vid händelse {cp.seq}" in page.text
            chain = (await client.get("/api/v1/audit/chain")).json()
            assert chain["ok"] is False and chain["bad_seq"] == cp.seq


def kollega(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KOLLEGA_VAR_DIR": str(tmp_path / "var"), "KOLLEGA_LOGGING__LEVEL": "WARNING"}
    env.pop("KOLLEGA_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


class TestCli:
    """`kollega run` checkpoints at its end; `kollega audit verify` checks against it."""

    def test_run_then_verify_then_rewrite(self, tmp_path: Path) -> None:
        assert kollega(tmp_path, "db", "upgrade").returncode == 0
        out = kollega(tmp_path, "run", "example", "--tenant", "1081", "--json")
        assert out.returncode in (0, 1), out.stderr
        cp_file = tmp_path / "var" / "audit-checkpoints.jsonl"
        latest = audit_checkpoint.read_latest(cp_file)
        assert latest is not None and latest.reason == "run_end"
        out = kollega(tmp_path, "audit", "verify", "--json")
        assert out.returncode == 0, out.stderr
        verdict = json.loads(out.stdout)
        assert verdict["ok"] is True and verdict["checkpoint_seq"] == latest.seq == verdict["last_seq"]

        db = Database(f"sqlite:///{tmp_path / 'var' / 'kollega.db'}")
        try:
            rewrite_whole_chain(db)
        finally:
            db.dispose()
        out = kollega(tmp_path, "audit", "verify")
        assert out.returncode == 1
        assert f"BROKEN at seq {latest.seq}" in out.stderr and "rewritten" in out.stderr
