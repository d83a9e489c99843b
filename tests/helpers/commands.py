"""The ``kollega.commands`` entry points as pyproject.toml declares them, without installing.

An entry-point group takes effect only when the distribution is (re)installed; tests build
the command tree from the declaration, so they see the commands this tree declares even
in an environment installed from an older checkout.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint

from core.cli.plugins import COMMANDS_GROUP, command_entry_points
from core.settings import PROJECT_ROOT


def declared_commands() -> list[EntryPoint]:
    """The entry points of ``kollega.commands`` in pyproject.toml."""
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    return command_entry_points(project["entry-points"][COMMANDS_GROUP])
