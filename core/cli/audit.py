"""``kollega audit verify | checkpoint``: the hash-chained audit and access log."""

from __future__ import annotations

from pathlib import Path

import typer

from core import audit as audit_mod
from core import audit_checkpoint
from core.cli.common import Exit, console, emit_json, err_console, load_cli_settings, open_database

audit_app = typer.Typer(no_args_is_help=True, help="The audit and access log.")


def register(app: typer.Typer) -> None:
    """Add ``kollega audit …`` to ``app``."""
    app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        help="A checkpoint file (default: [audit] checkpoint_file): detects truncation and a rewritten chain.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Verify the hash chain against the latest checkpoint; exit 1 naming the first bad seq."""
    settings = load_cli_settings()
    db = open_database(settings)
    if checkpoint is not None:
        cp: tuple[int, str] | None = audit_mod.read_checkpoint(checkpoint)
        source = checkpoint
    else:
        source = audit_checkpoint.checkpoint_file(settings)
        latest = audit_checkpoint.read_latest(source)
        cp = (latest.seq, latest.hash) if latest else None
    with db.session() as s:
        result = audit_mod.verify(s, cp)
    if as_json:
        emit_json({**result.__dict__, "checkpoint_file": str(source)})
    elif result.ok:
        against = (
            f", checked against checkpoint seq {result.checkpoint_seq} in {source}"
            if result.checkpoint_seq is not None
            else f"; no checkpoint yet in {source}"
        )
        console.print(f"audit chain intact: {result.events} events, last seq {result.last_seq}{against}")
    else:
        err_console.print(f"audit chain BROKEN at seq {result.bad_seq}: {result.problem}")
    if not result.ok:
        raise Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint_command(
    append: Path | None = typer.Option(None, "--append", help="Also append the checkpoint to this file."),
) -> None:
    """Print the latest seq and hash and write them to every configured sink ([audit])."""
    settings = load_cli_settings()
    db = open_database(settings)
    with db.session() as s:
        seq, digest = audit_mod.latest(s)
    console.print(f"{seq} {digest}")
    checkpointer = audit_checkpoint.active()
    if checkpointer is not None:
        checkpointer.write(seq, digest, "manual")
        if checkpointer.failures:
            err_console.print("a checkpoint sink failed: see the log")
            raise Exit(1)
    if append:
        audit_mod.write_checkpoint(append, seq, digest)
