"""Serving the sandbox: ``serve()`` for ``kollega sandbox serve``, blocking until stopped."""

from __future__ import annotations

from typing import Any

import uvicorn

from sandbox.app import create_app
from sandbox.state import SandboxOptions

__all__ = ["serve", "uvicorn_config"]


def uvicorn_config(seed: int, host: str, port: int, log_level: str = "warning", **options: Any) -> uvicorn.Config:
    """The uvicorn configuration of a sandbox (``options`` are :class:`SandboxOptions` fields)."""
    app = create_app(seed, SandboxOptions(**options))
    # h11 and no websockets: nothing else is needed, and fewer imports mean fewer surprises.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        http="h11",
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )


def serve(seed: int = 1, host: str = "127.0.0.1", port: int = 8765, **options: Any) -> None:
    """Run the sandbox until interrupted (Ctrl-C). Binds to localhost by default: it has no authentication."""
    uvicorn.Server(uvicorn_config(seed, host, port, log_level="info", **options)).run()
