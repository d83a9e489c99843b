"""Fault injection: an ASGI middleware keyed on the first path segment (the system's prefix).

For a request to ``/<system>/…`` it applies that system's :class:`sandbox.state.FaultSettings`
in this order: maintenance page (503, HTML) → hang (no answer until the client gives up,
else 504 after ``hang_seconds``) → latency (fixed + uniform jitter) → error before the
handler → handler → error after the handler (the write happened, the client sees a
failure: the case a robot must check before retrying). Random choices come from the
system's fault RNG, seeded from the sandbox seed and reseeded whenever faults are set, and
three numbers are drawn per request whatever the settings, so a sequence of requests meets
the same faults on every run. ``/admin`` and everything outside a system is never faulted.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.state import SYSTEMS, FaultRuntime, FaultSettings, SandboxState

__all__ = ["MAINTENANCE_HTML", "FaultMiddleware"]

HTML_SYSTEMS = frozenset({"payroll", "oidc", "saml"})

MAINTENANCE_HTML = """<!doctype html>
<html lang="sv"><head><meta charset="utf-8"><title>Underhåll pågår</title></head>
<body><main><h1>Systemet är tillfälligt stängt för underhåll</h1>
<p>Vi arbetar med att förbättra tjänsten. Försök igen om en stund.</p>
<p class="maintenance-id">Sandbox: {system}</p></main></body></html>
"""


def _applies(settings: FaultSettings, system: str, method: str, path: str) -> bool:
    if settings.methods is not None and method not in settings.methods:
        return False
    return settings.path_prefix is None or path.startswith(f"/{system}{settings.path_prefix}")


def _wants_html(scope: Scope, system: str) -> bool:
    if system in HTML_SYSTEMS:
        return True
    accept = dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1")
    return "text/html" in accept and "json" not in accept


async def _respond(send: Send, status: int, body: bytes, content_type: str, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, scope: Scope, system: str, settings: FaultSettings, status: int, kind: str) -> None:
    extra = [(b"x-sandbox-fault", kind.encode())]
    if settings.retry_after_seconds is not None:
        extra.append((b"retry-after", str(settings.retry_after_seconds).encode()))
    if _wants_html(scope, system):
        body = (
            f'<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>Fel {status}</title></head>'
            f"<body><h1>Ett tekniskt fel har uppstått ({status})</h1></body></html>"
        ).encode()
        await _respond(send, status, body, "text/html; charset=utf-8", extra)
    else:
        body = json.dumps({"error": "injected_fault", "kind": kind, "status": status, "system": system}).encode()
        await _respond(send, status, body, "application/json", extra)


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class FaultMiddleware:
    """Applies each system's fault settings to its requests (see the module docstring)."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        system = path.split("/", 2)[1] if path.count("/") >= 1 else ""
        if system not in SYSTEMS:
            await self.app(scope, receive, send)
            return
        state = self.state
        runtime = state.faults[system]
        settings = runtime.settings
        if not _applies(settings, system, scope["method"], path):
            state.count_request(system, "handled")
            await self.app(scope, receive, send)
            return
        u_hang, u_jitter, u_error = runtime.rng.random(), runtime.rng.random(), runtime.rng.random()
        if settings.maintenance:
            self._count(runtime, system, "maintenance")
            retry = str(settings.retry_after_seconds if settings.retry_after_seconds is not None else 300).encode()
            body = MAINTENANCE_HTML.format(system=system).encode()
            await _respond(
                send,
                503,
                body,
                "text/html; charset=utf-8",
                [(b"retry-after", retry), (b"x-sandbox-fault", b"maintenance")],
            )
            return
        if self._take(runtime, "hang_next") or u_hang < settings.hang_rate:
            self._count(runtime, system, "hang")
            try:
                await asyncio.wait_for(_wait_for_disconnect(receive), timeout=settings.hang_seconds)
                return  # the client gave up: nobody to answer
            except TimeoutError:
                await _error(send, scope, system, settings, 504, "hang")
                return
        delay = settings.latency_ms + u_jitter * settings.jitter_ms
        if delay > 0:
            runtime.stats["delayed"] += 1
            await asyncio.sleep(delay / 1000)
        if self._take(runtime, "fail_next") or u_error < settings.error_rate:
            self._count(runtime, system, "error")
            await _error(send, scope, system, settings, settings.error_status, "error")
            return
        if self._take(runtime, "fail_after_processing_next"):
            self._count(runtime, system, "error_after_processing")
            await self._run_then_fail(scope, receive, system, settings, send)
            return
        state.count_request(system, "handled")
        await self.app(scope, receive, send)

    async def _run_then_fail(
        self, scope: Scope, receive: Receive, system: str, settings: FaultSettings, send: Send
    ) -> None:
        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        await _error(send, scope, system, settings, settings.error_status, "error_after_processing")

    @staticmethod
    def _take(runtime: FaultRuntime, counter: str) -> bool:
        remaining: int = getattr(runtime, counter)
        if remaining > 0:
            setattr(runtime, counter, remaining - 1)
            return True
        return False

    def _count(self, runtime: FaultRuntime, system: str, outcome: str) -> None:
        runtime.stats[outcome] += 1
        self.state.count_request(system, outcome)


def describe_all(state: SandboxState) -> dict[str, Any]:
    """Every system's faults, for the admin API."""
    return {system: runtime.describe() for system, runtime in state.faults.items()}
