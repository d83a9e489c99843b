"""Checkpoints of the audit chain's head, kept where an intruder in the database cannot reach.

A checkpoint is the chain's head (seq and hash) at one moment. Written outside the
database, it makes a rewrite of the whole chain visible: the rewritten chain's event at
the checkpoint's seq no longer has the checkpointed hash (:func:`core.audit.verify`).

When: every ``[audit] checkpoint_every`` events and at the end of every run (so at the
end of every night), written right after the transaction that appended the event commits,
never before (a rolled-back event must not be checkpointed). Where (``[audit]``):

- a file: append-only JSON lines, flushed and fsynced (put it on another volume, or a
  file system with the append-only attribute, ``chattr +a``); ``kollega audit verify``
  and the auditors' page check against its latest line;
- a mail to the auditors (over ``[connectors.mail]``);
- an HTTP endpoint: ``POST`` of the checkpoint as JSON (a log collector, a WORM store).

A sink that fails is logged and never fails the work whose event was checkpointed.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict
from sqlalchemy import event
from sqlalchemy.orm import Session

from core.errors import ConfigError
from core.logging import get_logger, redact_text
from core.settings import SecretRef, Settings

log = get_logger("kollega.audit.checkpoint")

#: session.info keys: the head this transaction appended, and whether it wants a checkpoint.
HEAD_KEY = "kollega_audit_head"
DUE_KEY = "kollega_audit_checkpoint_due"


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment."""

    seq: int
    hash: str
    time: str
    reason: str

    def as_json(self) -> str:
        """One JSON line."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


class Sink(Protocol):
    """Somewhere a checkpoint is written."""

    name: str

    def write(self, cp: Checkpoint) -> None:
        """Write one checkpoint; raise on failure."""


class FileSink:
    """Append-only JSON lines, flushed and fsynced before the write counts as done."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, cp: Checkpoint) -> None:
        """Append one line (O_APPEND: concurrent writers never overwrite each other)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (cp.as_json() + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


class _MailSettings(BaseModel):
    """The parts of ``[connectors.mail]`` a checkpoint mail needs."""

    model_config = ConfigDict(extra="ignore")

    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: SecretRef | None = None
    password: SecretRef | None = None
    sender: str
    timeout_seconds: float = 30
    validate_certs: bool = True


class MailSink:
    """A short mail to the auditors per checkpoint (the seq and hash, nothing personal)."""

    name = "mail"

    def __init__(self, to: list[str], mail: dict[str, Any], timeout: float) -> None:
        self.to = to
        self.smtp = _MailSettings.model_validate(mail)
        self.timeout = min(timeout, self.smtp.timeout_seconds)

    def write(self, cp: Checkpoint) -> None:
        """Send the checkpoint over SMTP."""
        msg = EmailMessage()
        msg["From"], msg["To"] = self.smtp.sender, ", ".join(self.to)
        msg["Subject"] = f"Kollega: kontrollpunkt för loggkedjan, händelse {cp.seq}"
        msg["Message-ID"] = make_msgid(domain=self.smtp.sender.rpartition("@")[2] or None)
        msg.set_content(
            "Kontrollpunkt för Kollegas åtkomstlogg. Spara meddelandet: med det kan en omskriven "
            "logg upptäckas (kollega audit verify --checkpoint).\n\n"
            f"händelse (seq): {cp.seq}\nhash: {cp.hash}\ntid: {cp.time}\norsak: {cp.reason}\n\n"
            f"{cp.as_json()}\n"
        )
        context = ssl.create_default_context()
        if not self.smtp.validate_certs:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        smtp_cls = smtplib.SMTP_SSL if self.smtp.security == "tls" else smtplib.SMTP
        kwargs: dict[str, Any] = {"context": context} if self.smtp.security == "tls" else {}
        with smtp_cls(self.smtp.host, self.smtp.port, timeout=self.timeout, **kwargs) as client:
            if self.smtp.security == "starttls":
                client.starttls(context=context)
            if self.smtp.username and self.smtp.password:
                client.login(self.smtp.username.resolve(), self.smtp.password.resolve())
            client.send_message(msg)


class HttpSink:
    """``POST`` of the checkpoint as JSON; any 2xx answer counts as written."""

    name = "http"

    def __init__(self, url: str, token: SecretRef | None, timeout: float) -> None:
        self.url, self.token, self.timeout = url, token, timeout

    def write(self, cp: Checkpoint) -> None:
        """Post the checkpoint; raise on a non-2xx answer."""
        headers = {"Authorization": f"Bearer {self.token.resolve()}"} if self.token else {}
        response = httpx.post(self.url, json=asdict(cp), headers=headers, timeout=self.timeout)
        response.raise_for_status()


class Checkpointer:
    """Writes checkpoints to every configured sink; counts failures instead of raising."""

    def __init__(self, sinks: list[Sink], every: int, at_run_end: bool) -> None:
        self.sinks, self.every, self.at_run_end = sinks, every, at_run_end
        self.failures = 0
        self._lock = threading.Lock()

    def due(self, seq: int) -> bool:
        """Whether event ``seq`` is one the every-N rule checkpoints."""
        return self.every > 0 and seq % self.every == 0

    def write(self, seq: int, digest: str, reason: str, now: datetime | None = None) -> Checkpoint:
        """Write (seq, digest) to every sink; a failing sink is logged, the others still get it."""
        cp = Checkpoint(seq, digest, (now or datetime.now(UTC)).astimezone(UTC).isoformat(), reason)
        with self._lock:  # one checkpoint at a time: the file's lines stay in order
            for sink in self.sinks:
                try:
                    sink.write(cp)
                except Exception as exc:  # a sink's trouble must never fail the audited work
                    self.failures += 1
                    log.error(
                        "audit.checkpoint_failed",
                        sink=sink.name,
                        seq=seq,
                        error=redact_text(f"{type(exc).__name__}: {exc}"),
                    )
        return cp


def checkpoint_file(settings: Settings) -> Path:
    """Where the file sink writes (and verification reads) checkpoints."""
    return settings.audit.checkpoint_file or settings.var_dir / "audit-checkpoints.jsonl"


def build(settings: Settings) -> Checkpointer:
    """The checkpointer the settings describe (the file sink always; mail and HTTP when set)."""
    cfg = settings.audit
    sinks: list[Sink] = [FileSink(checkpoint_file(settings))]
    if cfg.checkpoint_mail_to:
        mail = settings.connectors.get("mail")
        if not mail:
            raise ConfigError("audit.checkpoint_mail_to needs [connectors.mail] to send with")
        sinks.append(MailSink(cfg.checkpoint_mail_to, mail, cfg.checkpoint_timeout_seconds))
    if cfg.checkpoint_url:
        sinks.append(HttpSink(cfg.checkpoint_url, cfg.checkpoint_url_token, cfg.checkpoint_timeout_seconds))
    return Checkpointer(sinks, cfg.checkpoint_every, cfg.checkpoint_at_run_end)


_active: Checkpointer | None = None


def configure(checkpointer: Checkpointer | None) -> None:
    """Use ``checkpointer`` for this process's automatic checkpoints (None: none are taken)."""
    global _active
    _active = checkpointer


def active() -> Checkpointer | None:
    """The process's checkpointer, if configured."""
    return _active


def note_append(session: Session, seq: int, digest: str) -> None:
    """Called by :func:`core.audit.append`: remember the head; mark every N-th event due."""
    session.info[HEAD_KEY] = (seq, digest)
    if _active is not None and _active.due(seq):
        session.info.setdefault(DUE_KEY, "every_n")


def request(session: Session, reason: str = "run_end") -> None:
    """Checkpoint this transaction's head once it commits (the end of a run)."""
    if _active is not None and (_active.at_run_end or reason != "run_end"):
        session.info[DUE_KEY] = reason


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    due = session.info.pop(DUE_KEY, None)
    head = session.info.pop(HEAD_KEY, None)
    if due and head is not None and _active is not None:
        _active.write(head[0], head[1], due)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(DUE_KEY, None)
    session.info.pop(HEAD_KEY, None)


def read_latest(path: Path) -> Checkpoint | None:
    """The last complete checkpoint in a file (JSON lines, or the older ``SEQ HASH TIME``); None if none yet."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"checkpoint file {path} cannot be read: {exc.strerror}") from None
    for line in reversed(lines):
        cp = _parse(line.strip())
        if cp is not None:
            return cp
    return None


def _parse(line: str) -> Checkpoint | None:
    # A torn last line (a crash mid-write) is skipped: the one before it still holds.
    if not line:
        return None
    if line.startswith("{"):
        try:
            data = json.loads(line)
            return Checkpoint(
                int(data["seq"]), str(data["hash"]), str(data.get("time", "")), str(data.get("reason", ""))
            )
        except (ValueError, KeyError, TypeError):
            return None
    parts = line.split()
    if len(parts) >= 2 and parts[0].isdigit() and len(parts[1]) == 64:
        return Checkpoint(int(parts[0]), parts[1], parts[2] if len(parts) > 2 else "", "manual")
    return None
