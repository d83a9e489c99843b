"""Core knows no robot and no sandbox: nothing under core/ imports them.

The demo's wiring lives in the sandbox package and reaches the command line through the
entry-point group ``kollega.commands``; robots are found through ``kollega.robots``. A
module of core that imported either would make a third-party robot or a deployment
without the sandbox second-class.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

FORBIDDEN = {"sandbox", "robots"}
CORE_MODULES = sorted((PROJECT_ROOT / "core").rglob("*.py"))


def _imported(path: Path) -> set[str]:
    """The top-level packages a module imports (absolute imports, at any depth of the code)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_there_are_core_modules_to_check() -> None:
    assert len(CORE_MODULES) > 20


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_core_imports_no_robot_and_no_sandbox(path: Path) -> None:
    assert _imported(path) & FORBIDDEN == set(), (
        f"{path.relative_to(PROJECT_ROOT)} imports {_imported(path) & FORBIDDEN}"
    )


def test_no_string_import_of_them_either() -> None:
    """import_module("sandbox…") or an entry-point target in core would be the same dependency."""
    for path in CORE_MODULES:
        text = path.read_text(encoding="utf-8")
        for name in FORBIDDEN:
            for quote in ('"', "'"):
                assert f"import_module({quote}{name}" not in text, f"{path} imports {name} by name"
