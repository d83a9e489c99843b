"""Test kit for connectors: a local server over real HTTP, a recording context, a real RunContext.

Used by Kollega's connector tests and by robot authors who test their own use of a
connector::

    with serve_app(my_fastapi_app) as base_url:
        ...  # real HTTP on 127.0.0.1, a free port

    ctx = RecordingContext()            # unit tests: records writes, accesses, artifacts
    ctx = run_context(db, tmp_path)     # integration tests: a real RunContext (audit, artifacts)
    browser = launch_chromium(pw)       # Playwright's sync API: the connector's browser and flags
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Playwright

from connectors.browser import CI_LAUNCH_ARGS, find_browser
from core.context import RunContext
from core.errors import DryRunRefusal


def launch_chromium(pw: Playwright) -> Browser:
    """Headless Chromium for tests and scripts on Playwright's sync API, found and flagged as the connector does."""
    return pw.chromium.launch(
        executable_path=find_browser(None, pw.chromium.executable_path), headless=True, args=list(CI_LAUNCH_ARGS)
    )


@contextmanager
def serve_app(app: Any, *, host: str = "127.0.0.1", graceful_seconds: int = 1) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a background thread; yields its base URL (``http://127.0.0.1:PORT``)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws="none",
        access_log=False,
        timeout_graceful_shutdown=graceful_seconds,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class RecordingContext:
    """A stand-in for RunContext in unit tests: records refused writes, accesses, audit events and artifacts."""

    tenant: str = "0000"
    dry_run: bool = False
    robot: str = "test"
    run_id: int | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    refused_writes: list[dict[str, str]] = field(default_factory=list)
    writes_checked: list[dict[str, str]] = field(default_factory=list)
    accesses: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    app_settings: Any = None

    def check_write(self, system: str, what: str) -> None:
        """Record the write; refuse it in a dry run like RunContext does."""
        self.writes_checked.append({"system": system, "what": what})
        if self.dry_run:
            self.refused_writes.append({"system": system, "what": what})
            raise DryRunRefusal(f"dry run: write to {system} refused ({what})")

    def record_access(self, *, subject: str, system: str, purpose: str, details: dict[str, Any] | None = None) -> int:
        """Record a data access; returns its position."""
        self.accesses.append({"subject": subject, "system": system, "purpose": purpose, "details": details or {}})
        return len(self.accesses)

    def record(
        self,
        action: str,
        *,
        subject: str | None = None,
        purpose: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Record an audit event; returns its position."""
        self.events.append({"action": action, "subject": subject, "purpose": purpose, "details": details or {}})
        return len(self.events)

    def save_artifact(
        self,
        *,
        work_item_id: int | None,
        kind: str,
        filename: str,
        content_type: str,
        data: bytes,
        sensitive: bool = True,
    ) -> int:
        """Keep the artifact in memory; returns its position."""
        self.artifacts.append(
            {
                "work_item_id": work_item_id,
                "kind": kind,
                "filename": filename,
                "content_type": content_type,
                "data": data,
                "sensitive": sensitive,
            }
        )
        return len(self.artifacts)


def run_context(
    db: Any,
    tmp_path: Path,
    *,
    dry_run: bool = False,
    connectors: dict[str, dict[str, Any]] | None = None,
    clock: Any = None,
    tenant: str | None = None,
) -> RunContext:
    """A real RunContext (audit log, artifact store) on ``db`` for the test tenant, as the engine builds it."""
    from core.engine import Engine
    from core.registry import Registry
    from core.testing import TEST_TENANT, ExampleRobot, FakeClock, make_settings

    settings = make_settings(tmp_path, connectors=connectors or {})
    engine = Engine.from_database(
        db, settings, Registry(robots={ExampleRobot.name: ExampleRobot}), clock=clock or FakeClock()
    )
    return engine.context(ExampleRobot(), tenant or TEST_TENANT.code, None, dry_run)
