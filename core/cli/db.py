"""``kollega db upgrade | current``: the database schema."""

from __future__ import annotations

import typer

from core.cli.common import console, load_cli_settings, open_database
from core.storage.db import redact_url

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")


def register(app: typer.Typer) -> None:
    """Add ``kollega db …`` to ``app``."""
    app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (creates the SQLite file on first use)."""
    settings = load_cli_settings()
    db = open_database(settings, migrated=False)
    db.upgrade()
    console.print(f"database {redact_url(db.url)} is at revision {db.current_revision()}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and of the code."""
    settings = load_cli_settings()
    db = open_database(settings, migrated=False)
    console.print(f"database: {db.current_revision() or 'not migrated'}; code: {db.head_revision()}")
