"""``kollega effects --tenant K --month YYYY-MM [--json | --csv]``: the effects ledger from the command line.

Every installed robot's measures, the outcomes that replaced manual work and the time
saved (minus measured review time) for one municipality and month; the same figures as
the web page ``/effekter`` (docs/effects.md explains them). Exit code 1 when the
municipality's ``effect_minutes`` name outcomes no robot declares (they are not counted).
"""

from __future__ import annotations

import sys
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from core import effects_report
from core.cli.common import Exit, chosen_tenants, console, emit_json, err_console, load_cli_settings, open_database
from core.cli.common import registry as installed_robots


def register(app: typer.Typer) -> None:
    """Add ``effects`` to ``app``."""
    app.command("effects")(effects_cmd)


def effects_cmd(
    tenant: str = typer.Option(..., "--tenant", help="The municipality's kommunkod (four digits)."),
    month: str | None = typer.Option(None, "--month", help="YYYY-MM, local time (default: this month)."),
    months: int = typer.Option(1, "--months", min=1, max=36, help="With --csv: this many months ending --month."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV, as the web page's download (Swedish column names)."),
) -> None:
    """One municipality's measured effects for a month: every robot's measures and the time it saved."""
    settings = load_cli_settings()
    chosen_tenants(settings, tenant)  # ConfigError (exit 2) for a municipality not configured
    if month is None:
        from core.clock import SystemClock

        month = f"{SystemClock().now().astimezone(ZoneInfo(settings.timezone)):%Y-%m}"
    chosen = effects_report.parse_month(month)
    db = open_database(settings)
    robots = installed_robots().robots
    try:
        if as_csv:
            wanted = effects_report.recent_months(chosen, months)
            sys.stdout.write(effects_report.csv_text(effects_report.series(db, robots, settings, tenant, wanted)))
            return
        rep = effects_report.report(db, robots, settings, tenant, chosen)
    finally:
        db.dispose()
    if as_json:
        emit_json(effects_report.report_json(rep))
    else:
        console.print(f"[bold]{rep.tenant_name}[/bold] {rep.month}: {rep.saved_minutes / 60:.1f} h saved")
        for r in rep.robots:
            table = Table("Measure", "Value", "Unit", "Basis", title=r.display_name, title_justify="left")
            for m in r.declaration.measures if r.declaration else ():
                value = r.measured.values.get(m.key)
                basis = r.measured.bases.get(m.key)
                table.add_row(
                    m.key,
                    "-" if value is None else f"{value:.{m.decimals}f}",
                    m.unit,
                    "-" if basis is None else str(basis),
                )
            for t in r.time_lines:
                note = "measured" if t.measured else "estimate"
                table.add_row(f"outcome {t.key}", str(t.count), f"× {t.minutes_each:g} min ({note})", "")
            table.add_row("review time", f"{r.review_minutes:.1f}", "min", str(r.reviews_timed))
            table.add_row("time saved", f"{r.saved_minutes:.1f}", "min", "estimate" if r.estimated else "measured")
            console.print(table)
    if rep.unknown_baselines:
        err_console.print(
            "warning: effect_minutes names outcomes no installed robot declares (not counted): "
            + ", ".join(rep.unknown_baselines),
            markup=False,
            highlight=False,
        )
        raise Exit(1)
