"""Mail connector: sending e-mail over SMTP with aiosmtplib (async).

A send is a write: refused in a dry run, audited (``external.write``: how many recipients,
the reference, the message id — never the addresses or the text). aiosmtplib's errors are
translated at this boundary::

    ConnectorUnavailable   cannot connect, timeout, disconnected, a 4xx (try again later)
    ConnectorAuthError     the server refused our user name and password
    BusinessError          every recipient refused (5xx): the address is wrong, a person must look
    ConnectorError         any other SMTP failure
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.base import connector_settings, record_write
from core.errors import BusinessError, ConfigError, ConnectorAuthError, ConnectorError, ConnectorUnavailable
from core.interfaces import ConnectorContext
from core.logging import get_logger, redact_text
from core.settings import SecretRef

log = get_logger("kollega.connectors.mail")


class MailSettings(BaseModel):
    """The section ``[connectors.mail]``: the SMTP server and who the mail is from."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="SMTP server host name.")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP port (587 submission, 465 implicit TLS, 25).")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (port 587), tls (implicit, port 465) or none (a local relay)."
    )
    username: SecretRef | None = Field(default=None, description="SMTP user name, by reference.")
    password: SecretRef | None = Field(default=None, description="SMTP password, by reference.")
    sender: str = Field(description="The From address, e.g. robot@kommun.se.")
    sender_name: str | None = Field(default=None, description="The From name, e.g. 'Kollega, Ronneby kommun'.")
    reply_to: str | None = Field(default=None, description="Where replies go (a functional mailbox people read).")
    timeout_seconds: float = Field(default=30, gt=0, description="Timeout of connecting and of each SMTP command.")
    validate_certs: bool = Field(default=True, description="Verify the server's certificate.")
    ca_file: Path | None = Field(default=None, description="PEM bundle of CAs to trust.")
    audit_sends: bool = Field(default=True, description="Write an external.write audit event for every mail sent.")

    @model_validator(mode="after")
    def _credentials_together(self) -> MailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be given together")
        return self


@dataclass(frozen=True)
class Attachment:
    """A file attached to a mail."""

    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


def build_message(
    settings: MailSettings,
    to: Sequence[str],
    subject: str,
    text: str,
    *,
    html: str | None = None,
    cc: Sequence[str] = (),
    attachments: Sequence[Attachment] = (),
    reference: str | None = None,
) -> EmailMessage:
    """The MIME message (plain text, optional HTML alternative, attachments), with a fresh Message-ID."""
    if not to:
        raise BusinessError("E-postmeddelandet saknar mottagare", code="mail_no_recipient")
    msg = EmailMessage()
    msg["From"] = formataddr((settings.sender_name, settings.sender)) if settings.sender_name else settings.sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if settings.reply_to:
        msg["Reply-To"] = settings.reply_to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    if reference:
        msg["X-Kollega-Reference"] = reference
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for att in attachments:
        maintype, _, subtype = att.content_type.partition("/")
        msg.add_attachment(att.data, maintype=maintype, subtype=subtype or "octet-stream", filename=att.filename)
    return msg


class Mailer:
    """Sends mail through one SMTP server during one run."""

    def __init__(self, ctx: ConnectorContext, settings: MailSettings, *, system: str = "mail") -> None:
        self.ctx = ctx
        self.settings = settings
        self.system = system

    @classmethod
    def for_run(cls, ctx: ConnectorContext, system: str = "mail") -> Mailer:
        """The run's mailer from ``[connectors.<system>]``."""
        key = f"mail:{system}"
        existing = ctx.resources.get(key)
        if isinstance(existing, Mailer):
            return existing
        mailer = cls(ctx, connector_settings(ctx, system, MailSettings), system=system)
        ctx.resources[key] = mailer
        return mailer

    def _tls_context(self) -> ssl.SSLContext | None:
        s = self.settings
        if s.security == "none" or (s.ca_file is None and s.validate_certs):
            return None
        context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
        if not s.validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def send(
        self,
        to: str | Sequence[str],
        subject: str,
        text: str,
        *,
        html: str | None = None,
        cc: Sequence[str] = (),
        attachments: Sequence[Attachment] = (),
        reference: str | None = None,
        what: str | None = None,
    ) -> str:
        """Send one mail; returns its Message-ID. Refused in a dry run (reported as ``what``)."""
        recipients = [to] if isinstance(to, str) else list(to)
        description = (
            what or f"mail{' for ' + reference if reference else ''} to {len(recipients) + len(cc)} recipient(s)"
        )
        self.ctx.check_write(self.system, description)
        message = build_message(
            self.settings, recipients, subject, text, html=html, cc=cc, attachments=attachments, reference=reference
        )
        await self._deliver(message, [*recipients, *cc])
        message_id = str(message["Message-ID"])
        log.info("mail sent", system=self.system, recipients=len(recipients) + len(cc), reference=reference)
        if self.settings.audit_sends:
            await record_write(
                self.ctx,
                system=self.system,
                what=description,
                details={"message_id": message_id, "reference": reference, "recipients": len(recipients) + len(cc)},
            )
        return message_id

    async def _deliver(self, message: EmailMessage, recipients: list[str]) -> None:
        s = self.settings
        username = s.username.resolve() if s.username else None
        password = s.password.resolve() if s.password else None
        try:
            _responses, _text = await aiosmtplib.send(
                message,
                recipients=recipients,
                hostname=s.host,
                port=s.port,
                username=username,
                password=password,
                use_tls=s.security == "tls",
                start_tls=s.security == "starttls",
                validate_certs=s.validate_certs,
                tls_context=self._tls_context(),
                timeout=s.timeout_seconds,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise ConnectorAuthError(
                f"{self.system}: the SMTP server refused our credentials ({exc.code})", system=self.system
            ) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({r.code for r in exc.recipients})
            if all(500 <= c < 600 for c in codes):
                raise BusinessError(
                    f"E-postservern tog inte emot någon av mottagarna (svarskod {', '.join(map(str, codes))})",
                    code="mail_recipient_refused",
                ) from exc
            raise ConnectorUnavailable(
                f"{self.system}: recipients temporarily refused ({codes})", system=self.system
            ) from exc
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected) as exc:
            raise ConnectorUnavailable(
                f"{self.system}: SMTP server {s.host}:{s.port} unavailable ({type(exc).__name__})", system=self.system
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            message_text = redact_text(str(exc.message).splitlines()[0] if exc.message else "")
            if 400 <= exc.code < 500:
                raise ConnectorUnavailable(
                    f"{self.system}: SMTP server answered {exc.code} {message_text}", system=self.system
                ) from exc
            raise ConnectorError(
                f"{self.system}: SMTP server answered {exc.code} {message_text}", code="smtp", system=self.system
            ) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            raise ConfigError(
                f"connectors.{self.system}: the server does not support what we asked ({redact_text(str(exc))})"
            ) from exc
        except aiosmtplib.SMTPException as exc:
            if "not supported" in str(exc):  # e.g. STARTTLS asked for, the server does not offer it
                raise ConfigError(f"connectors.{self.system}: {redact_text(str(exc))}") from exc
            raise ConnectorError(
                f"{self.system}: sending failed ({type(exc).__name__})", code="smtp", system=self.system
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectorUnavailable(
                f"{self.system}: SMTP server {s.host}:{s.port} unavailable ({type(exc).__name__})", system=self.system
            ) from exc
