"""The second factor of local accounts: TOTP (RFC 6238) through pyotp, and recovery codes.

A person enrols once: Kollega draws a secret, shows it as an ``otpauth://`` URI, a QR code
(an SVG drawn by segno) and as text, and the person confirms with a first code from their
authenticator app. They then get ten recovery codes, shown once; only their SHA-256 is kept
and each works once. A code is accepted for the current 30-second step and one step either
side (clock drift), and never twice: the last accepted step is stored.

Accounts that log in through OpenID Connect or SAML get their second factor from the
identity provider; Kollega does not ask them for one. A SAML IdP must say so: its
AuthnContextClassRef must be one of ``[web.saml] mfa_authn_contexts`` (core.web.saml).
"""

from __future__ import annotations

import hashlib
import io
import secrets
from datetime import datetime

import pyotp
import segno
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.storage.web_models import RecoveryCode, User

ISSUER = "Kollega"
STEP_SECONDS = 30
RECOVERY_CODES = 10


def new_secret() -> str:
    """A fresh random base32 secret (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://totp/…`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (no external request, fits the strict CSP)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, xmldecl=False, svgns=True, title="QR")
    return out.getvalue().decode()


def code_at(secret: str, when: datetime) -> str:
    """The TOTP code of ``secret`` at ``when`` (tests and the test kit use this)."""
    return pyotp.TOTP(secret).at(when)


def _normalise(code: str) -> str:
    return "".join(ch for ch in code if ch.isalnum()).lower()


def check_totp(user: User, code: str, now: datetime, *, secret: str | None = None) -> bool:
    """Accept ``code`` for the user's secret (or ``secret`` during enrolment) once; records the step."""
    key = secret or user.totp_secret
    code = _normalise(code)
    if not key or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(key)
    step = int(now.timestamp()) // STEP_SECONDS
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            if user.totp_last_step is not None and candidate <= user.totp_last_step:
                return False  # replayed: this code (or a later one) was already used
            user.totp_last_step = candidate
            return True
    return False


def _hash(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def new_recovery_codes(s: Session, user_id: int, now: datetime) -> list[str]:
    """Replace the user's recovery codes with ten new ones; returns them (shown once)."""
    for row in s.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user_id)):
        s.delete(row)
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(5)
        code = f"{raw[:5]}-{raw[5:]}"
        codes.append(code)
        s.add(RecoveryCode(user_id=user_id, code_hash=_hash(code), created_at=now))
    return codes


def use_recovery_code(s: Session, user_id: int, code: str, now: datetime) -> bool:
    """Spend one recovery code; False when unknown or already used."""
    row = s.scalar(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user_id, RecoveryCode.code_hash == _hash(code), RecoveryCode.used_at.is_(None)
        )
    )
    if row is None:
        return False
    row.used_at = now
    return True


def recovery_codes_left(s: Session, user_id: int) -> int:
    """How many unused recovery codes the user has."""
    return len(
        s.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))).all()
    )
