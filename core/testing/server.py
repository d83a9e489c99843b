"""An ASGI app served over real HTTP on 127.0.0.1, for tests of connectors and of the web app.

::

    with serve_app(my_fastapi_app) as base_url:
        ...  # real HTTP on 127.0.0.1, a free port

The sandbox as a whole has its own (``sandbox.testing.running_sandbox``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal


@contextmanager
def serve_app(
    app: Any, *, host: str = "127.0.0.1", graceful_seconds: int = 1, lifespan: Literal["on", "off"] = "off"
) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a background thread; yields its base URL (``http://127.0.0.1:PORT``).

    ``lifespan="on"`` runs the app's startup and shutdown (the web app's, as ``kollega serve`` does).
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan=lifespan,
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
