"""Keeping data no longer than allowed: ``kollega artifacts purge`` and ``kollega purge``."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from core.cli.common import console, emit_json, load_cli_settings, open_database
from core.clock import SystemClock
from core.errors import ConfigError

artifacts_app = typer.Typer(no_args_is_help=True, help="Screenshots and page snapshots saved when items fail.")


def register(app: typer.Typer) -> None:
    """Add ``kollega artifacts …`` and ``kollega purge`` to ``app``."""
    app.add_typer(artifacts_app, name="artifacts")
    app.command("purge")(purge_cmd)


@artifacts_app.command("purge")
def artifacts_purge(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Delete artifacts past artifact_retention_days now (workers also do it every hour)."""
    from core.artifacts import FileArtifactStore

    settings = load_cli_settings()
    db = open_database(settings)
    store = FileArtifactStore(db, settings.var_dir / "artifacts", settings.artifact_retention_days, SystemClock())
    purged = store.purge_expired()
    if as_json:
        print(json.dumps({"deleted": purged, "retention_days": settings.artifact_retention_days}))
    else:
        console.print(f"{purged} expired artifact(s) deleted (retention {settings.artifact_retention_days} days)")


def purge_cmd(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this kommunkod."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be cleared; change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Clear personal data in finished work past each tenant's retention periods ([retention])."""
    from core.retention import purge

    settings = load_cli_settings()
    db = open_database(settings)
    chosen = [t for t in settings.tenants if tenant is None or t.code == tenant]
    if tenant is not None and not chosen:
        raise ConfigError(f"no tenant with kommunkod {tenant} in the configuration")
    results = purge(db, settings, SystemClock().now(), dry_run=dry_run, actor="cli:purge", tenants=chosen)
    if as_json:
        emit_json([r.as_dict() for r in results])
        return
    table = Table("Tenant", "Work items", "Review items", "Artifacts", "Periods (days: items / reviews / artifacts)")
    for r in results:
        table.add_row(
            r.tenant,
            str(r.work_items),
            str(r.review_items),
            str(r.artifacts),
            f"{r.work_item_days or 'kept'} / {r.review_days or 'kept'} / {r.artifact_days}",
        )
    console.print(table)
    if dry_run:
        console.print("Dry run: nothing was changed.")
