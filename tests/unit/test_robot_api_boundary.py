"""Robots reach core through one door: every module under robots/ imports only ``core.api`` from core.

A robot's own modules, ``connectors``, the standard library and third-party packages are
free; anything else under ``core`` (the engine, the stores, the settings loader, the test
kit …) is not, so that the kernel can change behind ``core.api`` without breaking a robot.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROBOTS = ROOT / "robots"
ALLOWED = "core.api"


def core_imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a ``core`` module other than ``core.api``, anywhere in the module."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from core import engine`` names a submodule as well as a name.
            modules = [f"{node.module}.{a.name}" for a in node.names] if node.module == "core" else [node.module]
        else:
            continue
        for module in modules:
            if (module == "core" or module.startswith("core.")) and module != ALLOWED:
                found.append((node.lineno, module))
    return found


def robot_modules() -> list[Path]:
    return sorted(ROBOTS.rglob("*.py"))


def test_there_are_robot_modules_to_check() -> None:
    assert len(robot_modules()) > 20


@pytest.mark.parametrize("path", robot_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_robot_module_imports_only_core_api_from_core(path: Path) -> None:
    bad = core_imports(path.read_text(encoding="utf-8"))
    assert not bad, f"{path.relative_to(ROOT)} imports core beyond core.api: " + ", ".join(
        f"line {line}: {module}" for line, module in bad
    )


@pytest.mark.parametrize(
    "source",
    [
        "from core.engine import Engine",
        "import core.settings",
        "from core import engine",
        "from core.records import WorkItemView",
        "import typing\nif typing.TYPE_CHECKING:\n    from core.context import RunContext",
        "def f():\n    from core.testing import run_robot",
    ],
)
def test_the_check_catches_every_form_of_import_beyond_the_api(source: str) -> None:
    assert core_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        "from core.api import Robot",
        "import core.api",
        "from core import api",
        "from connectors.http import HttpConnector",
        "from . import rules",
        "import corestuff",
    ],
)
def test_the_api_itself_and_everything_outside_core_pass(source: str) -> None:
    assert core_imports(source) == []
