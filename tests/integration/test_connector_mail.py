"""The mail connector against a local aiosmtpd server."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from connectors.mail import Attachment, Mailer, MailSettings
from core.errors import BusinessError, ConnectorAuthError, ConnectorUnavailable, DryRunRefusal
from core.testing import RecordingContext


class Inbox:
    """An aiosmtpd handler keeping what it receives; refuses recipients at nowhere.example."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address.endswith("@nowhere.example"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=email.policy.default))
        )
        return "250 Message accepted"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"robot", b"hemligt")
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_required=False,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


def settings(port: int, **extra: Any) -> MailSettings:
    return MailSettings.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "sender": "kollega@ronneby.example",
            "sender_name": "Kollega, Ronneby kommun",
            "reply_to": "bistand@ronneby.example",
            "timeout_seconds": 5,
            **extra,
        }
    )


class TestSend:
    """A mail arrives with its parts; the send is audited without addresses."""

    async def test_text_html_and_attachment(self, smtp: tuple[int, Inbox]) -> None:
        port, inbox = smtp
        ctx = RecordingContext()
        message_id = await Mailer(ctx, settings(port)).send(
            ["handlaggare@ronneby.example"],
            "Underlag klart: ärende 17",
            "Hej!\nUnderlaget är klart.",
            html="<p>Hej!</p>",
            cc=["chef@ronneby.example"],
            reference="case-17",
            attachments=[Attachment("underlag.pdf", b"%PDF-1.4 test", "application/pdf")],
        )
        ((rcpts, msg),) = inbox.messages
        assert rcpts == ["handlaggare@ronneby.example", "chef@ronneby.example"]
        assert msg["Subject"] == "Underlag klart: ärende 17"
        assert msg["Message-ID"] == message_id
        assert msg["Reply-To"] == "bistand@ronneby.example"
        assert "Kollega, Ronneby kommun" in msg["From"]
        parts = [p.get_content_type() for p in msg.walk()]
        assert {"text/plain", "text/html", "application/pdf"} <= set(parts)
        assert ctx.events[0]["action"] == "external.write"
        assert ctx.events[0]["details"]["recipients"] == 2
        assert "handlaggare" not in str(ctx.events[0]) and "chef@" not in str(ctx.events[0])

    async def test_login(self, smtp: tuple[int, Inbox], monkeypatch: pytest.MonkeyPatch) -> None:
        port, inbox = smtp
        monkeypatch.setenv("SMTP_USER", "robot")
        monkeypatch.setenv("SMTP_PASSWORD", "hemligt")
        creds = {"username": {"env": "SMTP_USER"}, "password": {"env": "SMTP_PASSWORD"}}
        await Mailer(RecordingContext(), settings(port, **creds)).send("a@ronneby.example", "Test", "Text")
        assert len(inbox.messages) == 1
        monkeypatch.setenv("SMTP_PASSWORD", "fel")
        with pytest.raises(ConnectorAuthError):
            await Mailer(RecordingContext(), settings(port, **creds)).send("a@ronneby.example", "Test", "Text")


class TestFailures:
    """Dry run refuses; refused recipients and a dead server are translated."""

    async def test_dry_run_refuses_sending(self, smtp: tuple[int, Inbox]) -> None:
        port, inbox = smtp
        ctx = RecordingContext(dry_run=True)
        with pytest.raises(DryRunRefusal):
            await Mailer(ctx, settings(port)).send("a@ronneby.example", "Test", "Text", reference="case-3")
        assert inbox.messages == []
        assert ctx.refused_writes == [{"system": "mail", "what": "mail for case-3 to 1 recipient(s)"}]

    async def test_refused_recipient_is_a_business_error(self, smtp: tuple[int, Inbox]) -> None:
        port, _inbox = smtp
        with pytest.raises(BusinessError) as err:
            await Mailer(RecordingContext(), settings(port)).send("x@nowhere.example", "Test", "Text")
        assert err.value.code == "mail_recipient_refused"

    async def test_no_server_is_unavailable(self) -> None:
        with pytest.raises(ConnectorUnavailable) as err:
            await Mailer(RecordingContext(), settings(free_port())).send("a@ronneby.example", "Test", "Text")
        assert err.value.__cause__ is not None

    async def test_starttls_not_offered_is_a_config_error(self, smtp: tuple[int, Inbox]) -> None:
        port, _inbox = smtp
        from core.errors import ConfigError

        with pytest.raises(ConfigError):
            await Mailer(RecordingContext(), settings(port, security="starttls")).send("a@r.example", "T", "x")
