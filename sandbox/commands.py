"""``kollega demo`` and ``kollega sandbox serve``: the sandbox's commands.

Core does not know them: pyproject.toml registers them under the entry-point group
``kollega.commands`` and ``kollega`` mounts them the way it finds robots
(:mod:`core.cli.plugins`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from core.cli.common import Exit, console, load_cli_settings, open_database, registry
from core.cli.runs import summaries_table
from core.clock import Clock, SystemClock, local_today
from core.storage.db import redact_url
from sandbox.demo import DEMO_CONFIG, demo_night, demo_users, load_demo_settings, worker_beside

#: The sandbox plays a Swedish municipality: its "today" is the date in Stockholm.
SANDBOX_TIMEZONE = ZoneInfo("Europe/Stockholm")


def stockholm_today(clock: Clock | None = None) -> date:
    """Today's date in Europe/Stockholm by ``clock`` (at 00:43 local time already the new day, unlike UTC).

    The same :func:`core.clock.local_today` the robots count their days with.
    """
    return local_today(clock or SystemClock(), SANDBOX_TIMEZONE)


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


sandbox_app = typer.Typer(no_args_is_help=True, help="The simulated municipality the robots work against.")


@sandbox_app.command("serve")
def sandbox_serve(
    seed: int = typer.Option(1, "--seed", help="Same seed, same synthetic municipality."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (the sandbox has no authentication)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535),
    today: str | None = typer.Option(
        None,
        "--today",
        callback=lambda value: _parse_day(value) and value,
        help="The sandbox's day (YYYY-MM-DD); default today's date in Europe/Stockholm, as the robots count it.",
    ),
    tenant: str = typer.Option("1081", "--tenant", help="Kommunkod of the municipality the sandbox plays."),
) -> None:
    """Serve the sandbox's external systems over HTTP until interrupted."""
    from sandbox.server import serve

    day = _parse_day(today) or stockholm_today()
    console.print(
        f"sandbox (seed {seed}, {tenant}, today {day.isoformat()}) on http://{host}:{port}/ - API in sandbox/API.md"
    )
    serve(seed=seed, host=host, port=port, today=day, tenant=tenant)


def demo_command(
    no_serve: bool = typer.Option(False, "--no-serve", help="Stop after the night's summary."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port of the inbox afterwards."),
    seed: int = typer.Option(1, "--seed", help="The sandbox municipality's seed."),
    demo_config: Path = typer.Option(
        DEMO_CONFIG,
        "--demo-config",
        envvar="KOLLEGA_DEMO_CONFIG",
        help="The demo's own settings file (an installed image has no config/ beside the code).",
    ),
) -> None:
    """The sandbox, one full night of every robot on the embedded database, then the review inbox with a worker beside it."""
    from core.review import ReviewQueue

    settings = load_cli_settings()
    demo = load_demo_settings(demo_config)
    db = open_database(settings, migrated=False)
    db.upgrade()
    reg = registry()

    def announce(urls: dict[str, str], jobs: list[tuple[str, str]]) -> None:
        console.print(
            "[bold]Kollega demo[/bold]: "
            + ", ".join(f"sandbox for {code} at {url}" for code, url in urls.items())
            + f"; {len(jobs)} robot run(s) on {redact_url(db.url)}"
        )

    with demo_night(settings, db, reg, demo, seed=seed, on_ready=announce) as night:
        console.print(summaries_table(night.summaries, reg))
        if any(s.status.value == "interrupted" for s in night.summaries):
            # SIGTERM or Ctrl-C during the night: the person wants the demo to stop, not to serve.
            console.print("The night was stopped by a signal; its runs are recorded as interrupted.")
            raise Exit(1)
        open_items = ReviewQueue(db).list()
        queues: dict[str, list[str]] = {}
        for r in open_items:
            queues.setdefault(r.tenant, [])
            if r.queue not in queues[r.tenant]:
                queues[r.tenant].append(r.queue)
        console.print(f"\n[bold]Review inbox[/bold]: {len(open_items)} item(s) waiting for a decision")
        if no_serve:
            raise Exit(1 if night.failed else 0)
        users = demo_users(db, [t.code for t in settings.tenants], queues)
        table = Table("User", "Password", "Role", "Tenant")
        for u in users:
            table.add_row(u.username, u.password, u.role.value, u.tenant)
        console.print(table)
        import uvicorn

        from core.web.app import create_app

        assert night.engine is not None
        console.print(f"[bold]Inbox and dashboard: http://127.0.0.1:{port}/[/bold]  (Ctrl-C stops)")
        console.print("A worker runs beside the inbox: decisions made there are carried out within seconds.")
        with worker_beside(night.engine):
            uvicorn.run(
                create_app(settings, db, reg), host="127.0.0.1", port=port, server_header=False, log_level="warning"
            )
        console.print("Inbox and worker stopped.")
