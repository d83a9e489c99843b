"""``kollega ronney …``: the norm calculation from the command line, and the norm tables' status.

``kollega ronney calc FILE [--json]`` computes one household from a JSON file (the contract
of issue 4, item 3, extended by issue 18; ``-`` reads standard input). Bad input exits 2 with
one line per problem on standard error, each naming the field (``costs.rent: Input should be
greater than or equal to 0``). ``kollega ronney norms [--json]`` lists the riksnorm tables the
deployment uses, official or not; ``kollega ronney norms add FILE`` checks a year's complete
table and installs it into the deployment's folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from core.api import ConfigError, load_settings
from robots.ronney.norm import Household, NormResult, calculate, describe_errors
from robots.ronney.settings import RonneySettings
from robots.ronney.tables import (
    DATA_DIR,
    TableInfo,
    deployment_dir,
    find_table,
    install_table,
    list_tables,
    search_dirs,
)

__all__ = ["build_cli"]

_SECTION_NAMES = {"personal": "riksnorm", "household": "riksnorm", "cost": "skälig kostnad", "income": "inkomst"}


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(2)


def _read_household(file: str) -> Household:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"{file}: cannot be read ({exc.strerror or type(exc).__name__})")
    except UnicodeDecodeError:
        _fail(f"{file}: is not UTF-8 text")
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{file}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    if not isinstance(data, dict):
        _fail(f"{file}: must hold one JSON object, a household (see `kollega ronney calc --help`)")
    try:
        return Household.model_validate(data)
    except ValidationError as exc:
        _fail(describe_errors(exc))


def _kr(amount: int) -> str:
    return f"{amount:,}".replace(",", " ") + " kr"


def _print_result(console: Console, result: NormResult) -> None:
    assert result.table is not None and result.norm is not None and result.support is not None
    table = Table(title=f"Försörjningsstöd, riksnorm {result.table.year}", show_lines=False)
    table.add_column("Post")
    table.add_column("Belopp", justify="right")
    table.add_column("Källa", overflow="fold")
    for line in result.lines:
        table.add_row(line.label, _kr(line.amount), line.source)
    table.add_section()
    table.add_row(
        "Riksnorm",
        _kr(result.norm.total),
        f"personliga {_kr(result.norm.personal_costs)} + gemensamma {_kr(result.norm.household_costs)}",
    )
    table.add_row("Skäliga kostnader", _kr(result.reasonable_costs), "")
    table.add_row("Inkomster", _kr(-result.income), "")
    table.add_row("[bold]Försörjningsstöd[/bold]", f"[bold]{_kr(result.support)}[/bold]", "lägst 0 kr")
    console.print(table)
    for warning in result.warnings:
        console.print(f"[bold red]OBS:[/bold red] {warning}")


def _deployment() -> tuple[Path, bool]:
    """The deployment's table folder and whether sandbox tables are allowed, from its settings."""
    settings = load_settings()
    raw = settings.robots.get("ronney", {})
    try:
        cfg = RonneySettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"[robots.ronney]: {describe_errors(exc)}") from None
    return deployment_dir(cfg.norm_tables_dir, settings.var_dir), cfg.sandbox_tables


def build_cli(tables_dir: Path | None = None) -> typer.Typer:
    """The typer app mounted as ``kollega ronney``; ``tables_dir`` overrides the deployment's folder."""
    app = typer.Typer(no_args_is_help=True, help="Ronney: ekonomiskt bistånd (income support).")

    def folder_and_sandbox(option: Path | None) -> tuple[Path, bool]:
        if option is not None or tables_dir is not None:
            return option or tables_dir or DATA_DIR, False
        return _deployment()

    def where(option: Path | None) -> tuple[Path, list[Path], bool]:
        # An explicit --tables folder is the only one looked in; otherwise the deployment's,
        # then the shipped tables (and the sandbox's where the settings allow them).
        folder, sandbox = folder_and_sandbox(option)
        if option is not None or tables_dir is not None:
            return folder, [folder], False
        return folder, search_dirs(folder, sandbox=sandbox), sandbox

    @app.command("calc")
    def calc_cmd(
        file: str = typer.Argument(..., help="JSON file with one household ('-' = standard input)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
        tables: Path | None = typer.Option(None, "--tables", help="Folder of norm-YYYY.toml tables to use."),
    ) -> None:
        """Compute försörjningsstöd for one household from a JSON file.

        The file: {"year": 2021, "adults": [{"age": 35}], "cohabiting": false, "children": [{"age": 16,
        "lunch_at_home": true, "in_school": true, "work_income": 2000, "work_income_year_to_date": 8000}],
        "other_household_members": 0, "costs": {"rent": 6500, …}, "incomes": {"child_allowance": 1250, …},
        "months_on_support": 7, "job_stimulus_months_used": 3, "max_rent": null}. Missing sections mean zero;
        without months_on_support and job_stimulus_months_used, "job_stimulus_active" decides jobbstimulans.
        """
        household = _read_household(file)
        try:
            _folder, dirs, sandbox = where(tables)
            table = find_table(household.year, dirs, allow_sandbox=sandbox)
            if table is None:
                raise ConfigError(
                    f"no riksnorm table for {household.year}: install norm-{household.year}.toml with "
                    "`kollega ronney norms add FILE`"
                )
            result = calculate(household, table)
        except ConfigError as exc:
            _fail(exc.message)
        if as_json:
            typer.echo(json.dumps(result.to_contract_json(), ensure_ascii=False, indent=2))
            return
        _print_result(Console(), result)

    norms = typer.Typer(
        invoke_without_command=True, help="The riksnorm tables: list them, or install a year's (norms add FILE)."
    )
    app.add_typer(norms, name="norms")

    @norms.callback()
    def norms_cmd(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print the tables as JSON."),
        tables: Path | None = typer.Option(None, "--tables", help="Folder of norm-YYYY.toml tables to list."),
    ) -> None:
        """List the riksnorm tables the deployment uses: year, official or not, complete, SFS, source."""
        if ctx.invoked_subcommand is not None:
            return
        try:
            folder, dirs, _sandbox = where(tables)
            infos: dict[int, TableInfo] = {}
            for directory in reversed(dirs):
                if directory.is_dir():
                    infos.update({i.year: i for i in list_tables(directory)})  # the first folder wins
        except ConfigError as exc:
            _fail(exc.message)
        rows = [infos[y] for y in sorted(infos)]
        if as_json:
            typer.echo(json.dumps([i.model_dump(mode="json") for i in rows], ensure_ascii=False, indent=2))
            return
        table = Table(title=f"Riksnormtabeller ({folder})")
        table.add_column("År", justify="right")
        table.add_column("Officiell")
        table.add_column("Komplett")
        table.add_column("SFS")
        table.add_column("Gäller från")
        table.add_column("Källa", overflow="fold")
        table.add_column("Fil", overflow="fold")
        for info in rows:
            table.add_row(
                str(info.year),
                "ja"
                if info.official
                else ("[bold red]NEJ (sandlåda)[/bold red]" if info.sandbox else "[bold red]NEJ[/bold red]"),
                "ja" if info.complete else "nej",
                info.sfs or "–",
                info.in_force.isoformat() if info.in_force else "–",
                info.source,
                info.file,
            )
        Console().print(table)
        if any(not i.official for i in rows):
            Console().print("Beräkningar med en tabell som inte är officiell säger det till handläggaren.")

    @norms.command("add")
    def norms_add_cmd(
        file: Path = typer.Argument(..., help="The year's table, norm-YYYY.toml layout (see robots/ronney/data)."),
        tables: Path | None = typer.Option(None, "--tables", help="Install into this folder instead."),
    ) -> None:
        """Check a year's complete riksnorm table and install it into the deployment's folder."""
        try:
            folder, _sandbox = folder_and_sandbox(tables)
            table = install_table(file, folder)
        except ConfigError as exc:
            _fail(exc.message)
        typer.echo(
            f"installed the riksnorm table for {table.year} (SFS {table.sfs}, in force {table.in_force}, "
            f"official: {'yes' if table.official else 'NO'}) into {folder}"
        )

    return app
