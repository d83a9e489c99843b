"""``kollega serve``: the web app (inbox, operations dashboard, audit viewer, JSON API)."""

from __future__ import annotations

import socket
from typing import Any

import typer

from core.cli.common import console, load_cli_settings, open_database, registry


def register(app: typer.Typer) -> None:
    """Add ``kollega serve`` to ``app``."""
    app.command("serve")(serve_command)


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (put a TLS-terminating proxy in front)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port."),
    forwarded_allow_ips: str = typer.Option(
        "127.0.0.1", "--forwarded-allow-ips", help="Proxies whose X-Forwarded-* headers are trusted."
    ),
    alerts: bool = typer.Option(True, "--alerts/--no-alerts", help="Check for alerts and mail them."),
    access_log: bool = typer.Option(
        True,
        "--access-log/--no-access-log",
        help="A log line per request (at INFO; about 0.3 ms of CPU each). Off when the proxy in front logs them.",
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="Worker processes (PostgreSQL; about one per CPU). Sessions, throttles and login state are in "
        "the database, so any worker serves any request; the alert checks run once, in the supervising process.",
    ),
) -> None:
    """Serve the web app: inbox, operations dashboard, audit viewer, JSON API, /metrics."""
    import uvicorn

    from core.web.app import create_app

    settings = load_cli_settings()
    db = open_database(settings)
    options = uvicorn_options(
        host=host,
        port=port,
        forwarded_allow_ips=forwarded_allow_ips,
        level=settings.logging.level,
        access_log=access_log,
    )
    console.print(f"Kollega web on http://{host}:{port}/ (API description: /api/v1/openapi.json)")
    if workers == 1:
        uvicorn.run(create_app(settings, db, registry(), run_alert_loop=alerts, warm_dashboard=True), **options)
        return
    if db.is_sqlite:
        console.print("[red]--workers needs PostgreSQL: SQLite serialises every write through one file.[/red]")
        raise typer.Exit(2)
    # Each worker builds its own app from the same settings (uvicorn starts them afresh);
    # this process supervises them and runs the one alert loop.
    checker = AlertChecker(create_app(settings, db, registry(), run_alert_loop=False)) if alerts else None
    try:
        serve_workers(workers, options)
    finally:
        if checker is not None:
            checker.stop()


def serve_workers(workers: int, options: dict[str, Any]) -> None:
    """``workers`` uvicorn processes under uvicorn's own supervisor (restarts, signals, health checks).

    Where the system has ``SO_REUSEPORT`` (Linux), each worker listens on a socket of its own
    on the same address and the kernel spreads new connections over them; with uvicorn's one
    shared socket, whichever worker's accept loop woke first took a whole burst, and one worker
    served 26–32 of the morning rush's 32 kept-alive clients while the other idled
    (docs/benchmarks.md, "Fifth pass"). The supervisor keeps a bound, not listening, socket
    on the address, so that a port in use fails at once instead of in every worker.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("core.cli.web:app_from_settings", factory=True, workers=workers, **options)
    if not hasattr(socket, "SO_REUSEPORT"):
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    try:
        reserved = _reuseport_socket(config.host, config.port)
    except OSError as exc:
        console.print(f"[red]Cannot listen on {config.host}:{config.port}: {exc.strerror or exc}[/red]")
        raise typer.Exit(1) from None
    with reserved:  # the supervisor handles SIGINT and SIGTERM itself
        Multiprocess(config, sockets=OwnListeners(config.host, config.port, config.backlog)).run()


class OwnListeners(list[socket.socket]):
    """The ``sockets`` argument of uvicorn's supervisor that gives every worker a listener of its own.

    uvicorn starts each worker with ``spawn`` and pickles its arguments; this empty list is
    pickled as "a list of one new listening ``SO_REUSEPORT`` socket on host:port", made in the
    worker as it unpickles it. A restarted worker makes a new one the same way.
    """

    def __init__(self, host: str, port: int, backlog: int) -> None:
        super().__init__()
        self.host, self.port, self.backlog = host, port, backlog

    def __reduce__(self) -> tuple[Any, tuple[str, int, int]]:
        return (_own_listener, (self.host, self.port, self.backlog))


def _reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port with ``SO_REUSEADDR`` and ``SO_REUSEPORT``, not yet listening."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _own_listener(host: str, port: int, backlog: int) -> list[socket.socket]:
    """In a worker: its own listening socket on host:port (see :class:`OwnListeners`)."""
    sock = _reuseport_socket(host, port)
    sock.listen(backlog)
    return [sock]


class AlertChecker:
    """The alert loop of ``kollega serve --workers N``, in a thread of the supervising process."""

    def __init__(self, app: Any) -> None:
        import asyncio
        import threading

        from core.web.app import alert_loop

        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        ctx = app.state.kollega

        def run() -> None:
            self._loop.run_until_complete(alert_loop(ctx, self._stop))

        self._thread = threading.Thread(target=run, name="kollega-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the loop after its current check."""
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


def uvicorn_options(
    *, host: str, port: int, forwarded_allow_ips: str, level: str, access_log: bool = True
) -> dict[str, Any]:
    """uvicorn's configuration for ``kollega serve``: its logs go through Kollega's redaction.

    ``log_config=None`` keeps uvicorn from installing its own handlers, which would print
    access lines (paths, query strings) and tracebacks unredacted; its loggers propagate
    to the root handler that :func:`core.logging.configure_logging` set up.
    """
    from core.logging import route_uvicorn_logs

    route_uvicorn_logs()
    return {
        "host": host,
        "port": port,
        "proxy_headers": True,
        "forwarded_allow_ips": forwarded_allow_ips,
        "server_header": False,
        "log_level": level.lower(),
        "log_config": None,
        "access_log": access_log,
    }


def app_from_settings() -> Any:
    """The app of one ``kollega serve --workers N`` worker: the deployment's settings, database and robots.

    Without the alert loop: the supervising process runs that once for all workers.
    """
    from core.logging import route_uvicorn_logs
    from core.web.app import create_app

    settings = load_cli_settings()
    route_uvicorn_logs()
    return create_app(settings, open_database(settings), registry(), run_alert_loop=False, warm_dashboard=True)
