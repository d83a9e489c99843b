"""Small helpers shared by the system modules: dates, pagination, idempotency, error bodies."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from core.errors import KollegaError
from sandbox.state import TZ

__all__ = [
    "ApiError",
    "IdempotencyStore",
    "add_months",
    "content_hash",
    "error",
    "first_of_month",
    "idempotency_key",
    "local",
    "month_end",
    "month_key",
    "not_found",
    "paginate",
    "parse_month",
    "replay_response",
]

MAX_PAGE = 1000


class ApiError(KollegaError):
    """An error answer of a simulated system: ``{"error": code, "message": message, **extra}``.

    The sandbox's app turns it into a JSON response with ``status``; the instance's ``code``
    is the answer's ``error`` field (``not_found``, ``conflict`` …).
    """

    code = "sandbox_api"

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message, code=code, **extra)
        self.status = status
        self.extra = extra

    def response(self) -> JSONResponse:
        """The JSON response for this error."""
        return error(self.status, self.code, self.message, **self.extra)


def not_found(what: str) -> ApiError:
    """A 404 naming what is missing."""
    return ApiError(404, "not_found", f"no {what}")


def first_of_month(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    return add_months(day, 1) - timedelta(days=1)


def month_key(day: date) -> str:
    """``YYYY-MM``."""
    return f"{day:%Y-%m}"


def parse_month(value: str) -> date:
    """``YYYY-MM`` → the first day of that month; HTTP 400 if malformed."""
    try:
        year, month = value.split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        raise ApiError(400, "bad_month", f"month must be YYYY-MM, got {value!r}") from None


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """An aware local (Europe/Stockholm) time on ``day``."""
    return datetime.combine(day, time(hour, minute), TZ)


def paginate(items: list[Any], offset: int, limit: int) -> dict[str, Any]:
    """``{"total", "offset", "limit", "items"}`` for one page of ``items``."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    return {"total": len(items), "offset": offset, "limit": limit, "items": items[offset : offset + limit]}


def content_hash(payload: Any) -> str:
    """SHA-256 of the canonical JSON of ``payload``."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """A JSON error body ``{"error": code, "message": ..., **extra}``."""
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def replay_response(body: dict[str, Any], status: int = 200) -> JSONResponse:
    """The stored answer to an idempotent request seen before, marked as a replay."""
    return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true"})


def idempotency_key(request: Request, body_key: str | None, required: bool = True) -> str | None:
    """The client's idempotency key: the ``Idempotency-Key`` header or the body's ``idempotency_key``.

    Both given and different → HTTP 400; none given and ``required`` → HTTP 400.
    """
    header = request.headers.get("idempotency-key")
    if header and body_key and header != body_key:
        raise ApiError(400, "idempotency_key_mismatch", "Idempotency-Key header and body idempotency_key differ")
    key = header or body_key
    if required and not key:
        raise ApiError(
            400,
            "idempotency_key_required",
            "an idempotency key is required (Idempotency-Key header or idempotency_key)",
        )
    return key


@dataclass
class IdempotencyStore:
    """Answers to idempotent writes, by (scope, key); a key reused with other content is refused."""

    seen: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def check(self, scope: str, key: str, payload: Any) -> JSONResponse | None:
        """A replay (200) or a refusal (422) if ``key`` was used in ``scope``; None if new."""
        found = self.seen.get((scope, key))
        if found is None:
            return None
        fingerprint, body = found
        if fingerprint != content_hash(payload):
            return error(
                422,
                "idempotency_key_reused",
                "this idempotency key was used with a different request",
                idempotency_key=key,
            )
        return replay_response(body)

    def remember(self, scope: str, key: str, payload: Any, body: dict[str, Any]) -> None:
        """Store the answer to a new write."""
        self.seen[(scope, key)] = (content_hash(payload), body)
