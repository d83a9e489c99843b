"""The sandbox in a background thread, for integration tests and the demo.

::

    with running_sandbox(seed=7, applications=50) as base_url:
        httpx.get(f"{base_url}/eservice/applications")

The server listens on a free port of 127.0.0.1 (the socket is bound before the thread
starts, so no other process can take the port in between), the context is entered once
the server accepts requests, and leaving it stops the server and joins the thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from sandbox.server import uvicorn_config

__all__ = ["running_sandbox"]


@contextmanager
def running_sandbox(seed: int = 1, startup_timeout: float = 30.0, **options: Any) -> Iterator[str]:
    """Start a sandbox (``options``: :class:`sandbox.state.SandboxOptions` fields); yields its base URL."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so (else +40 ms a request)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(seed, "127.0.0.1", port, **options))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"sandbox-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError("the sandbox server did not start") from (failure[0] if failure else None)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sandbox did not start within {startup_timeout} s")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()
