"""``kollega audit verify | checkpoint``: the hash-chained audit and access log."""

from __future__ import annotations

from pathlib import Path

import typer

from core import audit as audit_mod
from core.cli.common import Exit, console, emit_json, err_console, load_cli_settings, open_database

audit_app = typer.Typer(no_args_is_help=True, help="The audit and access log.")


def register(app: typer.Typer) -> None:
    """Add ``kollega audit …`` to ``app``."""
    app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="A checkpoint file: detects truncation."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Verify the hash chain; exit 1 naming the first bad seq."""
    settings = load_cli_settings()
    db = open_database(settings)
    cp = audit_mod.read_checkpoint(checkpoint) if checkpoint else None
    with db.session() as s:
        result = audit_mod.verify(s, cp)
    if as_json:
        emit_json(result.__dict__)
    elif result.ok:
        console.print(f"audit chain intact: {result.events} events, last seq {result.last_seq}")
    else:
        err_console.print(f"audit chain BROKEN at seq {result.bad_seq}: {result.problem}")
    if not result.ok:
        raise Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    append: Path | None = typer.Option(None, "--append", help="Also append the checkpoint to this file."),
) -> None:
    """Print the latest seq and hash (keep them outside the database to detect truncation)."""
    settings = load_cli_settings()
    db = open_database(settings)
    with db.session() as s:
        seq, digest = audit_mod.latest(s)
    console.print(f"{seq} {digest}")
    if append:
        audit_mod.write_checkpoint(append, seq, digest)
