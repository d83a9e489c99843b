"""CI enforces the quality gates: lint, format and types are checked before the tests run."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GATES = [".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"]


def _commands(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if not line.strip().startswith("#")]


def test_ci_runs_every_gate_before_the_tests() -> None:
    script = ROOT / ".ci" / "run"
    commands = _commands(script)
    assert "set -euo pipefail" in commands  # a failing gate stops the script
    tests = commands.index("make test")
    for gate in GATES:
        assert gate in commands, f".ci/run does not run {gate!r}"
        assert commands.index(gate) < tests, f".ci/run runs {gate!r} after the tests"
        assert commands.index("make setup") < commands.index(gate), f".ci/run runs {gate!r} before make setup"


def test_make_check_runs_the_same_gates() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    rules = {
        m[1]: (m[2].split(), m[3])
        for m in re.finditer(r"^([a-z-]+):([^#\n]*)[^\n]*\n((?:\t[^\n]*\n)*)", makefile, re.M)
    }
    assert rules["check"][0] == ["lint", "typecheck"]
    gates = rules["lint"][1] + rules["typecheck"][1]
    for gate in GATES:
        assert gate.replace(".venv/bin/", "$(BIN)/") in gates, f"make check does not run {gate!r}"


def test_mypy_covers_the_packages() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["strict"] is True
    assert {"core", "connectors", "sandbox"} <= set(config["packages"])
