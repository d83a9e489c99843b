"""Robot plugins through the entry-point group: broken ones reported and skipped, strict mode raises."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from core.errors import ConfigError, PluginError
from core.registry import GROUP, load_robots
from core.robot import Robot
from core.testing import ExampleRobot

GOOD = """
from core.robot import Done, Robot

class GoodRobot(Robot):
    name = "{name}"
    display_name = "Good"

    def collect(self, ctx):
        return []

    async def process(self, ctx, item):
        return Done()
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a plugin module under tmp_path (importable); returns its unique module name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(source: str) -> str:
        module = f"kt_plugin_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        created.append(module)
        return module

    yield make
    for module in created:
        sys.modules.pop(module, None)


def ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=GROUP)


class TestLoading:
    """One broken plugin is reported (name, error) and skipped; the others load."""

    def test_good_plugin_loads(self, plugin_dir: Callable[[str], str]) -> None:
        mod = plugin_dir(GOOD.format(name="good"))
        reg = load_robots(eps=[ep("good", f"{mod}:GoodRobot")])
        assert list(reg.robots) == ["good"]
        assert issubclass(reg.robots["good"], Robot)
        assert reg.broken == []
        assert reg.get("good") is reg.robots["good"]

    @pytest.fixture
    def mixed(self, plugin_dir: Callable[[str], str]) -> list[EntryPoint]:
        good = plugin_dir(GOOD.format(name="good"))
        explodes = plugin_dir("raise RuntimeError('the vendor SDK is missing')\n")
        not_robot = plugin_dir("class NotARobot:\n    name = 'notrobot'\n")
        nameless = plugin_dir("""
            from core.robot import Done, Robot

            class Nameless(Robot):
                def collect(self, ctx):
                    return []

                async def process(self, ctx, item):
                    return Done()
        """)
        mismatch = plugin_dir(GOOD.format(name="othername"))
        abstract = plugin_dir("""
            from core.robot import Robot

            class Half(Robot):
                name = "half"
                display_name = "Half"

                def collect(self, ctx):
                    return []
        """)
        return [
            ep("good", f"{good}:GoodRobot"),
            ep("explodes", f"{explodes}:Robot"),
            ep("notrobot", f"{not_robot}:NotARobot"),
            ep("nameless", f"{nameless}:Nameless"),
            ep("mismatch", f"{mismatch}:GoodRobot"),
            ep("half", f"{abstract}:Half"),
            ep("absent", "kt_no_such_module_anywhere:Robot"),
            ep("noattr", f"{good}:NoSuchClass"),
        ]

    def test_broken_plugins_reported_and_skipped(self, mixed: list[EntryPoint]) -> None:
        reg = load_robots(eps=mixed)
        assert list(reg.robots) == ["good"]
        errors = {b.name: b.error for b in reg.broken}
        assert set(errors) == {"explodes", "notrobot", "nameless", "mismatch", "half", "absent", "noattr"}
        assert "import failed" in errors["explodes"]
        assert "the vendor SDK is missing" in errors["explodes"]
        assert "not a subclass of core.robot.Robot" in errors["notrobot"]
        assert "'name'" in errors["nameless"]
        assert "'display_name'" in errors["nameless"]
        assert "othername" in errors["mismatch"] and "'mismatch'" in errors["mismatch"]
        assert "abstract methods not implemented: process" in errors["half"]
        assert "kt_no_such_module_anywhere" in errors["absent"]
        assert "import failed" in errors["noattr"]
        targets = {b.name: b.target for b in reg.broken}
        assert targets["notrobot"].endswith(":NotARobot")

    def test_strict_raises_listing_every_broken_plugin(self, mixed: list[EntryPoint]) -> None:
        with pytest.raises(PluginError) as info:
            load_robots(eps=mixed, strict=True)
        message = str(info.value)
        for name in ("explodes", "notrobot", "nameless", "mismatch", "half", "absent", "noattr"):
            assert f"{name} (" in message
        assert "good (" not in message

    def test_strict_is_quiet_when_all_load(self, plugin_dir: Callable[[str], str]) -> None:
        mod = plugin_dir(GOOD.format(name="good"))
        assert list(load_robots(eps=[ep("good", f"{mod}:GoodRobot")], strict=True).robots) == ["good"]

    def test_import_error_text_is_redacted(self, plugin_dir: Callable[[str], str]) -> None:
        mod = plugin_dir("raise ValueError('bad row for 19121212-1212 password=hunter2')\n")
        reg = load_robots(eps=[ep("leaky", f"{mod}:X")])
        (broken,) = reg.broken
        assert "19121212-1212" not in broken.error
        assert "hunter2" not in broken.error

    def test_same_name_twice(self, plugin_dir: Callable[[str], str]) -> None:
        first = plugin_dir(GOOD.format(name="good"))
        second = plugin_dir(GOOD.format(name="good"))
        reg = load_robots(eps=[ep("good", f"{first}:GoodRobot"), ep("good", f"{second}:GoodRobot")])
        assert list(reg.robots) == ["good"]
        assert [b.name for b in reg.broken] == ["good"]
        assert "already registered" in reg.broken[0].error

    def test_plugins_are_imported_only_by_load_robots(self, plugin_dir: Callable[[str], str]) -> None:
        mod = plugin_dir(GOOD.format(name="good"))
        entry = ep("good", f"{mod}:GoodRobot")
        assert mod not in sys.modules  # describing the entry point imports nothing
        load_robots(eps=[entry])
        assert mod in sys.modules


class TestGet:
    """Registry.get names what is installed, and why a plugin is unavailable."""

    def test_unknown_robot(self, plugin_dir: Callable[[str], str]) -> None:
        mod = plugin_dir(GOOD.format(name="good"))
        reg = load_robots(eps=[ep("good", f"{mod}:GoodRobot")])
        with pytest.raises(ConfigError, match="unknown robot 'nobody'; installed robots: good"):
            reg.get("nobody")

    def test_broken_robot(self, plugin_dir: Callable[[str], str]) -> None:
        mod = plugin_dir("raise RuntimeError('vendor SDK missing')\n")
        reg = load_robots(eps=[ep("explodes", f"{mod}:Robot")])
        with pytest.raises(ConfigError, match="installed but broken: import failed"):
            reg.get("explodes")


class TestInstalled:
    """The installed distribution registers its robots under kollega.robots."""

    def test_example_robot_loads_from_the_distribution(self) -> None:
        reg = load_robots()
        assert reg.robots.get("example") is ExampleRobot
        assert "example" not in {b.name for b in reg.broken}
        assert reg.versions["example"]  # the distribution's version is known
