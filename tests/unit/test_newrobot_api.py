"""The plugin kit's generated robot uses the public robot API: core.api only, generic over its settings."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.api import Robot
from core.newrobot import scaffold
from tests.unit.test_robot_api_boundary import core_imports


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[Path]:
    """``kollega new-robot api_probe`` in a temporary folder, importable for the test."""
    folder = scaffold("api_probe", tmp_path, display="Probe")
    sys.path.insert(0, str(folder))
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == "kollega_api_probe" or m.startswith("kollega_api_probe.")]:
            del sys.modules[name]


def test_the_generated_robot_imports_only_core_api_from_core(generated: Path) -> None:
    for path in (generated / "kollega_api_probe").rglob("*.py"):
        assert core_imports(path.read_text(encoding="utf-8")) == [], path.name


def test_the_generated_robot_is_generic_over_its_settings_and_valid(generated: Path) -> None:
    module = importlib.import_module("kollega_api_probe.robot")
    robot_class = module.ApiProbeRobot
    assert issubclass(robot_class, Robot)
    assert robot_class.settings_model is module.ApiProbeRobotSettings
    assert robot_class.validate_class() == []
    robot = robot_class(module.ApiProbeRobotSettings(auto_limit=10))
    assert robot.settings.auto_limit == 10
    assert robot_class().settings.auto_limit == 5000
