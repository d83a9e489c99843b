"""``kollega serve``: the web app (inbox, operations dashboard, audit viewer, JSON API)."""

from __future__ import annotations

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
        uvicorn.run(create_app(settings, db, registry(), run_alert_loop=alerts), **options)
        return
    if db.is_sqlite:
        console.print("[red]--workers needs PostgreSQL: SQLite serialises every write through one file.[/red]")
        raise typer.Exit(2)
    # Each worker builds its own app from the same settings (uvicorn starts them afresh);
    # this process supervises them and runs the one alert loop.
    checker = AlertChecker(create_app(settings, db, registry(), run_alert_loop=False)) if alerts else None
    try:
        uvicorn.run("core.cli.web:app_from_settings", factory=True, workers=workers, **options)
    finally:
        if checker is not None:
            checker.stop()


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
    return create_app(settings, open_database(settings), registry(), run_alert_loop=False)
