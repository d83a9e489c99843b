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
) -> None:
    """Serve the web app: inbox, operations dashboard, audit viewer, JSON API, /metrics."""
    import uvicorn

    from core.web.app import create_app

    settings = load_cli_settings()
    db = open_database(settings)
    app = create_app(settings, db, registry(), run_alert_loop=alerts)
    console.print(f"Kollega web on http://{host}:{port}/ (API description: /api/v1/openapi.json)")
    uvicorn.run(
        app,
        **uvicorn_options(host=host, port=port, forwarded_allow_ips=forwarded_allow_ips, level=settings.logging.level),
    )


def uvicorn_options(*, host: str, port: int, forwarded_allow_ips: str, level: str) -> dict[str, Any]:
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
    }
