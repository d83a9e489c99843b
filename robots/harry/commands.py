"""HaRry's own commands: ``kollega harry check-export FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from connectors.files import FileFormatError
from robots.harry.exports import read_export


def build_cli() -> typer.Typer:
    """The typer app mounted as ``kollega harry``."""
    app = typer.Typer(no_args_is_help=True, help="HaRry: schedules into the payroll system.")

    @app.callback()
    def harry() -> None:
        """HaRry: approved schedules into the payroll system (a group, so that commands keep their names)."""

    @app.command("check-export")
    def check_export(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A CSV export from the scheduling system."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Read an export as HaRry would: its schedules (with their references) and its broken ones."""
        try:
            contents = read_export(file.read_bytes(), file.name)
        except FileFormatError as exc:
            typer.echo(f"{file.name}: kan inte läsas: {exc.message}", err=True)
            raise typer.Exit(2) from None
        report: dict[str, Any] = {
            "file": contents.file,
            "sha256": contents.sha256,
            "schedules": [
                {
                    "reference": s.reference,
                    "employee_id": s.employee_id,
                    "period": s.period,
                    "version": s.version,
                    "rows": len(s.rows),
                }
                for s in contents.schedules
            ],
            "broken": [{"reference": b.reference, "problems": list(b.problems)} for b in contents.broken],
            "superseded": contents.superseded,
        }
        if as_json:
            typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            typer.echo(
                f"{contents.file}: {len(contents.schedules)} scheman, {len(contents.broken)} med fel, "
                f"{contents.superseded} ersatta av en nyare version i samma fil"
            )
            for s in report["schedules"]:
                typer.echo(f"  {s['reference']}  ({s['rows']} rader)")
            for b in contents.broken:
                typer.echo(f"  FEL {b.reference}: {'; '.join(b.problems[:3])}")
        if contents.broken:
            raise typer.Exit(1)

    return app
