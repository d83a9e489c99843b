"""Login throttling: per client address and for the whole deployment, with exponential delay.

Each failed attempt (password or second factor) counts against the client's address and
against the key ``global``. After ``free`` failures within the window, the key is blocked
for ``base · 2^(n − free)`` seconds, capped at ``cap``; an attempt while blocked is refused
before any password is checked and **does not** extend the block, so nobody can keep an
address, the deployment or an account blocked for ever by trying. A success clears the
address's count (not the global one, which decays with the window).

Addresses are stored as a SHA-256 (the table needs no personal data to work). Behind a
reverse proxy, run uvicorn with ``--proxy-headers --forwarded-allow-ips=<proxy>`` so the
address is the client's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from core.storage.web_models import LoginThrottle

GLOBAL = "global"


@dataclass(frozen=True)
class Rule:
    """How many failures are free, and the delay after that."""

    free: int
    base_seconds: float
    cap_seconds: float
    window: timedelta


def delay(rule: Rule, failures: int) -> float:
    """Seconds of block after ``failures`` failures (0 while still free)."""
    if failures < rule.free:
        return 0.0
    return float(min(rule.cap_seconds, rule.base_seconds * 2 ** (failures - rule.free)))


def address_key(address: str | None) -> str:
    """The throttle key of a client address (hashed)."""
    return "addr:" + hashlib.sha256((address or "unknown").encode()).hexdigest()[:40]


def blocked_for(s: Session, keys: list[str], now: datetime) -> float:
    """Seconds until every key is free again (0 = go ahead)."""
    longest = 0.0
    for key in keys:
        row = s.get(LoginThrottle, key)
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            longest = max(longest, (row.blocked_until - now).total_seconds())
    return longest


def record_failure(s: Session, key: str, rule: Rule, now: datetime) -> None:
    """Count one failure for ``key``; block it when past the free attempts."""
    # Keys quiet for a window and no longer blocked are forgotten, so the table stays small.
    s.execute(
        delete(LoginThrottle).where(
            LoginThrottle.key != key,
            LoginThrottle.last_failure_at < now - rule.window,
            or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until < now),
        )
    )
    row = s.get(LoginThrottle, key)
    if row is None:
        row = LoginThrottle(key=key, failures=0, last_failure_at=now)
        s.add(row)
    elif now - row.last_failure_at > rule.window:
        row.failures = 0  # a quiet window forgives
    row.failures += 1
    row.last_failure_at = now
    seconds = delay(rule, row.failures)
    if seconds:
        row.blocked_until = now + timedelta(seconds=seconds)


def record_success(s: Session, key: str) -> None:
    """Forget an address's failures after a successful login."""
    row = s.get(LoginThrottle, key)
    if row is not None:
        s.delete(row)
