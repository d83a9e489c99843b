"""Alert mail: one alert that cannot be mailed never stops the others (review finding H2).

A run error with line breaks once went into the mail's Subject; the header refused it with
ValueError outside the try, the pass aborted, and the next pass met the same alert first,
so no municipality got alert mail again. Mail goes to a local aiosmtpd server.
"""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from core.logging import PERSONNUMMER_MASK
from core.runs import SqlRunStore
from core.storage.db import Database
from core.storage.models import RunStatus, Tenant
from core.storage.web_models import Alert
from core.testing import FakeClock
from core.web import alerts
from core.web.settings import AlertSettings

MULTI_LINE_ERROR = "collect failed:\nline two\r\nBcc: intruder@evil.example\r\n\r\nperson 19121212-1212"


class Inbox:
    """An aiosmtpd handler keeping what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=email.policy.default))
        )
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_inbox() -> Iterator[tuple[alerts.AlertMailSettings, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings = alerts.mail_settings(
            {"mail": {"host": "127.0.0.1", "port": controller.port, "security": "none", "sender": "k@test.example"}}
        )
        assert settings is not None
        yield settings, inbox
    finally:
        controller.stop()


def failed_run(runs: SqlRunStore, tenant: str, error: str) -> None:
    run_id = runs.create(robot="example", tenant=tenant, trigger="schedule")
    assert run_id is not None
    runs.finish(run_id, RunStatus.failed, {}, error=error)


class TestAlertMail:
    """Every alert is mailed on its own; a broken one is recorded and skipped."""

    async def test_multi_line_error_is_mailed_and_blocks_nobody(
        self, db: Database, clock: FakeClock, smtp_inbox: tuple[alerts.AlertMailSettings, Inbox]
    ) -> None:
        smtp, inbox = smtp_inbox
        runs = SqlRunStore(db, clock)
        runs.ensure_tenant("0000", "Testkommun", "drift@test.example")
        runs.ensure_tenant("9999", "Andra kommunen", "drift@andra.example")
        runs.ensure_tenant("1111", "Trasiga kommunen", "drift@trasig.example")
        failed_run(runs, "1111", "boom")  # first in line, and its address will be unusable
        failed_run(runs, "0000", MULTI_LINE_ERROR)
        failed_run(runs, "9999", "boom")
        with db.session() as s:
            # An address no mail header accepts (as a mistyped setting could give).
            s.execute(update(Tenant).where(Tenant.code == "1111").values(ops_email="drift@x.example\nBcc: y@z"))
        assert alerts.detect(db, AlertSettings(), clock.now()) == 3

        sent = await alerts.mail_new(db, smtp, clock.now(), "https://kollega.test")
        again = await alerts.mail_new(db, smtp, clock.now(), "https://kollega.test")

        assert (sent, again) == (2, 0)
        by_rcpt = {rcpt[0]: msg for rcpt, msg in inbox.messages}
        assert sorted(by_rcpt) == ["drift@andra.example", "drift@test.example"]
        msg = by_rcpt["drift@test.example"]
        subject = str(msg["Subject"])
        assert "\n" not in subject and "\r" not in subject
        assert "intruder" not in subject and "Bcc" not in subject  # the run's error stays out of the subject
        assert msg["Bcc"] is None
        assert subject.startswith("Kollega: körning misslyckades")
        body = msg.get_body(preferencelist=("plain",))
        assert body is not None
        content = body.get_content()
        assert "line two" in content  # the whole error is in the body …
        assert PERSONNUMMER_MASK in content and "19121212-1212" not in content  # … redacted
        with db.session() as s:
            rows = {a.tenant: a for a in s.scalars(select(Alert))}
        assert rows["0000"].mailed_at is not None and rows["9999"].mailed_at is not None
        broken = rows["1111"]
        assert broken.mailed_at is None
        assert broken.mail_error and "ValueError" in broken.mail_error

    async def test_unreachable_server_is_tried_again(self, db: Database, clock: FakeClock) -> None:
        runs = SqlRunStore(db, clock)
        runs.ensure_tenant("0000", "Testkommun", "drift@test.example")
        failed_run(runs, "0000", "boom")
        alerts.detect(db, AlertSettings(), clock.now())
        smtp = alerts.mail_settings(
            {"mail": {"host": "127.0.0.1", "port": free_port(), "security": "none", "sender": "k@test.example"}}
        )
        assert smtp is not None
        assert await alerts.mail_new(db, smtp, clock.now(), "https://kollega.test") == 0
        with db.session() as s:
            (alert,) = s.scalars(select(Alert))
        assert alert.mail_error is None and alert.mailed_at is None  # left for the next check
