"""Plugins in the command: ``kollega robots``, ``kollega new-robot``, and mounting what plugins bring.

Two kinds of plugin add commands, both found through entry points and both loaded only
when :func:`mount_plugins` is called (never as an import side effect):

- a package's commands, under the entry-point group ``kollega.commands``: the entry
  point's name is the command's name, its object a ``typer.Typer`` (mounted as a group)
  or a function (mounted as one command). The sandbox contributes ``kollega demo`` and
  ``kollega sandbox …`` this way; core does not know it.
- a robot's own commands, ``Robot.cli()``, mounted as ``kollega <robot> …``.

A plugin that fails to load, or wants a name already taken, is reported on standard
error and skipped; the other commands keep working.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from rich.table import Table

from core.cli.common import Exit, console, emit_json, err_console, registry
from core.logging import redact_text
from core.settings import SecretRef

#: The entry-point group through which packages contribute top-level commands.
COMMANDS_GROUP = "kollega.commands"


def register(app: typer.Typer) -> None:
    """Add ``kollega robots`` and ``kollega new-robot`` to ``app``."""
    app.command("robots")(robots_cmd)
    app.command("new-robot")(new_robot)


def robots_cmd(
    strict: bool = typer.Option(False, "--strict", help="Exit 2 if any plugin is broken (for CI)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    tenant: str | None = typer.Option(
        None, "--tenant", help="Show each robot's effective settings for this kommunkod (secrets masked)."
    ),
) -> None:
    """List installed robots (name, version, description, health) and broken plugins.

    With ``--tenant K``: each robot's effective settings for municipality K, the
    deployment's ``[robots.<name>]`` with K's own keys over them, secrets shown masked.
    """
    reg = registry()
    if tenant is not None:
        _effective_settings(tenant, as_json)
        return
    rows = [
        {
            "name": n,
            "version": reg.versions.get(n, ""),
            "display_name": c.display_name,
            "description": c.description,
            "health": "ok",
        }
        for n, c in sorted(reg.robots.items())
    ]
    rows += [
        {"name": b.name, "version": "", "display_name": "", "description": b.target, "health": f"broken: {b.error}"}
        for b in reg.broken
    ]
    if as_json:
        emit_json(rows)
    else:
        table = Table("Robot", "Version", "Name", "Description", "Health")
        for r in rows:
            table.add_row(
                r["name"],
                r["version"],
                r["display_name"],
                r["description"],
                r["health"] if r["health"] == "ok" else f"[red]{r['health']}[/red]",
            )
        console.print(table)
    if reg.broken:
        raise Exit(2 if strict else 1)


def _effective_settings(tenant: str, as_json: bool) -> None:
    """Print every installed robot's effective settings for ``tenant``; exit 2 on bad settings."""
    from core.cli.common import chosen_tenants, load_cli_settings
    from core.errors import ConfigError

    settings = load_cli_settings()
    chosen_tenants(settings, tenant)  # an unknown kommunkod is bad input, named
    reg = registry()
    found = settings.tenant(tenant)
    rows: list[dict[str, Any]] = []
    for name, cls in sorted(reg.robots.items()):
        overridden = sorted((found.robots.get(name, {}) if found else {}).keys())
        row: dict[str, Any] = {
            "name": name,
            "display_name": settings.robot_display_name(name, tenant, cls.display_name),
            "tenant": tenant,
            "overridden": overridden,
        }
        try:
            model = settings.robot_settings(name, cls.settings_model, tenant)
        except ConfigError as exc:
            row["error"] = exc.message
        else:
            row["settings"] = masked_settings(model)
        rows.append(row)
    if as_json:
        emit_json(rows)
    else:
        for row in rows:
            table = Table("Key", "Value", "From", title=f"{row['name']} ({row['display_name']}) for {tenant}")
            if "error" in row:
                err_console.print(f"[red]{row['name']}: {row['error']}[/red]")
                continue
            for key, value in row["settings"].items():
                origin = f"tenants.{tenant}" if key in row["overridden"] else "deployment"
                table.add_row(key, json.dumps(value, ensure_ascii=False, default=str), origin)
            console.print(table)
    if any("error" in r for r in rows):
        raise Exit(2)


def masked_settings(model: BaseModel) -> dict[str, Any]:
    """A settings model as plain data with every secret shown masked (``•••• (vault p#k)``), never read."""

    def walk(value: Any) -> Any:
        if isinstance(value, SecretRef):
            return value.masked()
        if isinstance(value, BaseModel):
            return {name: walk(getattr(value, name)) for name in type(value).model_fields}
        if isinstance(value, dict):
            return {str(k): walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    result = walk(model)
    assert isinstance(result, dict)
    return result


def new_robot(
    name: str = typer.Argument(..., help="The robot's name: lower case, digits, underscores (e.g. invoice_check)."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to create the package folder."),
    display: str | None = typer.Option(None, "--display-name", help="Name shown to people (default: from NAME)."),
) -> None:
    """Write a new robot package (robot, settings, rules, review template, tests, entry point)."""
    from core.newrobot import scaffold

    folder = scaffold(name, directory, display=display)
    console.print(f"Created {folder}")
    console.print(f"Next: pip install -e {folder}  &&  kollega robots  &&  pytest {folder / 'tests'}")


# -- mounting --------------------------------------------------------------------------
@dataclass(frozen=True)
class BrokenCommand:
    """A command plugin that could not be mounted, and why."""

    name: str
    target: str
    error: str


#: (app, command name) → the entry point's target it was mounted from.
_MOUNTED: dict[tuple[int, str], str] = {}


def _taken(app: typer.Typer) -> set[str]:
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    return {n for n in names if n}


def mount_commands(app: typer.Typer, eps: Iterable[EntryPoint] | None = None) -> list[BrokenCommand]:
    """Mount the commands packages register under ``kollega.commands``; returns the broken ones.

    ``eps`` replaces the installed entry points (tests build them without installing).
    """
    found = list(entry_points(group=COMMANDS_GROUP)) if eps is None else list(eps)
    broken: list[BrokenCommand] = []
    for ep in sorted(found, key=lambda e: e.name):
        if ep.name in _taken(app):
            # Mounting twice (tests) finds its own command: only another target is a clash.
            if _MOUNTED.get((id(app), ep.name)) != ep.value:
                broken.append(BrokenCommand(ep.name, ep.value, "the command name is already taken"))
            continue
        try:
            obj = ep.load()
        except Exception as exc:  # any import-time failure of a third-party plugin
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            broken.append(BrokenCommand(ep.name, ep.value, f"import failed: {redact_text(last)}"))
            continue
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=ep.name)
        elif callable(obj):
            app.command(ep.name)(obj)
        else:
            broken.append(BrokenCommand(ep.name, ep.value, "neither a typer.Typer nor a function"))
            continue
        _MOUNTED[(id(app), ep.name)] = ep.value
    for b in broken:
        err_console.print(f"command {b.name} ({b.target}) could not be loaded: {b.error}", markup=False)
    return broken


def mount_robot_commands(app: typer.Typer) -> None:
    """Mount each installed robot's own commands (``Robot.cli()``) as ``kollega <robot> …``."""
    taken = _taken(app)
    for name, cls in sorted(registry().robots.items()):
        if name in taken:
            continue
        try:
            sub = cls(cls.settings_model.model_construct()).cli()
        except Exception as exc:  # a robot's CLI must not take the others down
            err_console.print(f"robot {name}: its commands could not be loaded: {exc}")
            continue
        if sub is not None:
            app.add_typer(sub, name=name, help=f"{cls.display_name}: {cls.description}")


def mount_plugins(app: typer.Typer, commands: Iterable[EntryPoint] | None = None) -> list[BrokenCommand]:
    """Mount the packages' commands, then the robots' (a robot cannot take a command's name)."""
    broken = mount_commands(app, commands)
    mount_robot_commands(app)
    return broken


def command_entry_points(declared: dict[str, str]) -> list[EntryPoint]:
    """Entry points of ``kollega.commands`` from ``{name: "module:object"}`` (for tests, without installing)."""
    return [EntryPoint(name, value, COMMANDS_GROUP) for name, value in declared.items()]
