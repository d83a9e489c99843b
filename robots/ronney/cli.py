"""``kollega ronney …``: the norm calculation from the command line, and the norm tables' status.

``kollega ronney calc FILE [--json]`` computes one household from a JSON file (the contract
of issue 4, item 3; ``-`` reads standard input). Bad input exits 2 with one line per problem
on standard error, each naming the field (``costs.rent: Input should be greater than or equal
to 0``). ``kollega ronney norms [--json]`` lists the riksnorm tables, verified or not.
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

from core.api import ConfigError
from robots.ronney.norm import Household, NormResult, calculate, describe_errors
from robots.ronney.tables import DATA_DIR, list_tables, load_table

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


def build_cli(tables_dir: Path | None = None) -> typer.Typer:
    """The typer app mounted as ``kollega ronney``; ``tables_dir`` overrides the shipped tables."""
    app = typer.Typer(no_args_is_help=True, help="Ronney: ekonomiskt bistånd (income support).")
    default_dir = tables_dir

    @app.command("calc")
    def calc_cmd(
        file: str = typer.Argument(..., help="JSON file with one household ('-' = standard input)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
        tables: Path | None = typer.Option(None, "--tables", help="Folder of norm-YYYY.toml tables to use."),
    ) -> None:
        """Compute försörjningsstöd for one household from a JSON file.

        The file: {"year": 2021, "adults": [{"age": 35}], "cohabiting": false, "children": [{"age": 4,
        "lunch_at_home": false}], "other_household_members": 0, "costs": {"rent": 6500, …},
        "incomes": {"child_allowance": 1250, …}, "job_stimulus_active": false, "max_rent": null}.
        Missing sections mean zero.
        """
        household = _read_household(file)
        try:
            table = load_table(household.year, tables or default_dir)
            result = calculate(household, table)
        except ConfigError as exc:
            _fail(exc.message)
        if as_json:
            typer.echo(json.dumps(result.to_contract_json(), ensure_ascii=False, indent=2))
            return
        _print_result(Console(), result)

    @app.command("norms")
    def norms_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print the tables as JSON."),
        tables: Path | None = typer.Option(None, "--tables", help="Folder of norm-YYYY.toml tables to list."),
    ) -> None:
        """List the riksnorm tables: year, verified against the förordning or not, complete, source."""
        folder = tables or default_dir or DATA_DIR
        try:
            infos = list_tables(folder)
        except ConfigError as exc:
            _fail(exc.message)
        if as_json:
            typer.echo(json.dumps([i.model_dump(mode="json") for i in infos], ensure_ascii=False, indent=2))
            return
        table = Table(title=f"Riksnormtabeller ({folder})")
        table.add_column("År", justify="right")
        table.add_column("Verifierad")
        table.add_column("Komplett")
        table.add_column("Källa", overflow="fold")
        table.add_column("Fil", overflow="fold")
        for info in infos:
            table.add_row(
                str(info.year),
                "ja" if info.verified else "[bold red]NEJ[/bold red]",
                "ja" if info.complete else "nej",
                info.source,
                Path(info.file).name,
            )
        Console().print(table)
        if any(not i.verified for i in infos):
            Console().print("Beräkningar med en overifierad tabell säger det till handläggaren.")

    return app
