"""Commands that packages contribute (``kollega.commands``), and the CLI's place in the error tree."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from core.cli.common import Exit
from core.cli.plugins import COMMANDS_GROUP, mount_commands
from core.errors import KollegaError
from tests.helpers.commands import declared_commands


def app_with(*commands: str) -> typer.Typer:
    """A command tree with core-like commands already taken."""
    app = typer.Typer(no_args_is_help=True)

    @app.command("run")
    def run() -> None:
        """Taken by core."""

    for name in commands:
        app.command(name)(lambda: None)
    return app


class TestCommandPlugins:
    """The sandbox's commands arrive through an entry point, as a third party's would."""

    def test_pyproject_declares_demo_and_sandbox(self) -> None:
        assert {ep.name: ep.value for ep in declared_commands()} == {
            "demo": "sandbox.commands:demo_command",
            "sandbox": "sandbox.commands:sandbox_app",
        }

    def test_they_mount_as_a_command_and_a_group(self) -> None:
        app = app_with()
        assert mount_commands(app, declared_commands()) == []
        runner = CliRunner()
        demo = runner.invoke(app, ["demo", "--help"])
        assert demo.exit_code == 0 and "--no-serve" in demo.output
        sandbox = runner.invoke(app, ["sandbox", "serve", "--help"])
        assert sandbox.exit_code == 0 and "--seed" in sandbox.output

    def test_mounting_twice_is_harmless(self) -> None:
        app = app_with()
        assert mount_commands(app, declared_commands()) == []
        assert mount_commands(app, declared_commands()) == []

    def test_a_broken_plugin_is_reported_and_the_others_still_work(self, capsys: pytest.CaptureFixture[str]) -> None:
        app = app_with()
        broken = [
            EntryPoint("missing", "no_such_package.commands:app", COMMANDS_GROUP),
            EntryPoint("notcallable", "core.cli.plugins:COMMANDS_GROUP", COMMANDS_GROUP),
            EntryPoint("run", "sandbox.commands:demo_command", COMMANDS_GROUP),
        ]
        reported = mount_commands(app, [*broken, *declared_commands()])
        assert {b.name: b.error for b in reported} == {
            "missing": "import failed: ModuleNotFoundError: No module named 'no_such_package'",
            "notcallable": "neither a typer.Typer nor a function",
            "run": "the command name is already taken",
        }
        assert "command missing (no_such_package.commands:app) could not be loaded" in capsys.readouterr().err
        assert CliRunner().invoke(app, ["demo", "--help"]).exit_code == 0


class TestMain:
    """``kollega`` with command plugins given explicitly (as when the group is not installed)."""

    def test_a_broken_command_plugin_is_not_fatal(self, capsys: pytest.CaptureFixture[str]) -> None:
        from core.cli import main

        bad = EntryPoint("fortune", "no_such_package:cmd", COMMANDS_GROUP)
        assert main(["new-robot", "--help"], commands=[bad, *declared_commands()]) == 0
        assert "command fortune (no_such_package:cmd) could not be loaded" in capsys.readouterr().err

    def test_the_demo_refuses_a_missing_settings_file_before_it_starts(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from core.cli import main

        monkeypatch.setenv("KOLLEGA_VAR_DIR", str(tmp_path / "var"))
        monkeypatch.delenv("KOLLEGA_DATABASE_URL", raising=False)
        missing = tmp_path / "demo.toml"
        assert main(["demo", "--no-serve", "--demo-config", str(missing)], commands=declared_commands()) == 2
        assert f"the demo's settings file {missing} does not exist" in capsys.readouterr().err
        assert not (tmp_path / "var").exists()


def test_the_cli_exit_is_a_kollega_error_with_a_stable_code() -> None:
    exc = Exit(1)
    assert isinstance(exc, KollegaError)
    assert (exc.code, exc.exit_code) == ("cli_exit", 1)
