"""Per-municipality robot settings: [tenants.robots.<name>] over [robots.<name>], display names, masking."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from core.cli import app, main
from core.cli.common import use_registry
from core.errors import ConfigError
from core.registry import Registry
from core.robot import Done, NewItem, Robot
from core.settings import SecretRef, load_settings

CONFIG = """
[[tenants]]
code = "1081"
name = "Ronneby kommun"

[tenants.robots.lonerobot]
display_name = "Lönelisa"
password = { vault = "kollega/1081/harry#password" }
contexts = 5

[[tenants]]
code = "1082"
name = "Karlshamns kommun"

[robots.lonerobot]
username = "robot.harry"
password = { env = "KOLLEGA_HARRY_PASSWORD" }
"""


class LoneSettings(BaseModel):
    """Settings of a payroll-like test robot."""

    username: str = Field(default="robot", description="User name.")
    password: SecretRef = Field(description="Password by reference.")
    contexts: int = Field(default=3, ge=1, le=16, description="Browser contexts.")


class LoneRobot(Robot[LoneSettings]):
    """A robot whose settings differ by municipality."""

    name = "lonerobot"
    display_name = "Lönerobot"

    def collect(self, ctx: object) -> list[NewItem]:
        return []

    async def process(self, ctx: object, item: object) -> Done:
        return Done({})


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "kollega.toml"
    path.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("KOLLEGA_CONFIG", str(path))
    monkeypatch.setenv("KOLLEGA_HARRY_PASSWORD", "the-deployments-value")
    use_registry(Registry(robots={"lonerobot": LoneRobot}))
    yield path
    use_registry(None)


class TestEffectiveSettings:
    """A municipality's keys replace the deployment's; the rest stay; display_name is no setting."""

    def test_the_tenants_keys_lie_over_the_deployments(self, config: Path) -> None:
        settings = load_settings(config)
        ronneby = settings.robot_settings("lonerobot", LoneSettings, "1081")
        karlshamn = settings.robot_settings("lonerobot", LoneSettings, "1082")
        assert isinstance(ronneby, LoneSettings) and isinstance(karlshamn, LoneSettings)
        assert (ronneby.username, ronneby.contexts, ronneby.password.vault) == (
            "robot.harry",
            5,
            "kollega/1081/harry#password",
        )
        assert (karlshamn.contexts, karlshamn.password.env) == (3, "KOLLEGA_HARRY_PASSWORD")

    def test_display_names_per_municipality(self, config: Path) -> None:
        settings = load_settings(config)
        assert settings.robot_display_name("lonerobot", "1081", "Lönerobot") == "Lönelisa"
        assert settings.robot_display_name("lonerobot", "1082", "Lönerobot") == "Lönerobot"

    def test_a_bad_key_is_named_with_its_municipality(self, config: Path) -> None:
        config.write_text(CONFIG.replace("contexts = 5", "contexts = 99"), encoding="utf-8")
        settings = load_settings(config)
        with pytest.raises(ConfigError, match=r"tenants\.1081\.robots\.lonerobot\.contexts: .*less than or equal"):
            settings.check_robot_sections({"lonerobot": LoneSettings})

    def test_a_bad_deployment_key_is_named_as_the_deployments(self, config: Path) -> None:
        config.write_text(CONFIG.replace('username = "robot.harry"', "username = 5"), encoding="utf-8")
        settings = load_settings(config)
        with pytest.raises(ConfigError, match=r"robots\.lonerobot\.username") as caught:
            settings.robot_settings("lonerobot", LoneSettings, "1081")
        assert "tenants.1081" not in caught.value.message  # Ronneby overrides other keys, not this one

    def test_an_empty_display_name_is_refused(self, config: Path) -> None:
        config.write_text(CONFIG.replace('"Lönelisa"', '" "'), encoding="utf-8")
        with pytest.raises(ConfigError, match=r"tenants\.1081\.robots\.lonerobot\.display_name"):
            load_settings(config).check_robot_sections({"lonerobot": LoneSettings})


class TestRobotsCommand:
    """`kollega robots --tenant K` shows what K's runs get, secrets masked and never read."""

    def test_json_shows_effective_values_and_masks_secrets(self, config: Path) -> None:
        result = CliRunner().invoke(app, ["robots", "--tenant", "1082", "--json"])
        assert result.exit_code == 0, result.output
        [row] = json.loads(result.stdout)
        assert row["settings"]["password"] == "•••• (env KOLLEGA_HARRY_PASSWORD)"
        assert "the-deployments-value" not in result.output
        assert row["settings"]["username"] == "robot.harry" and row["overridden"] == []
        result = CliRunner().invoke(app, ["robots", "--tenant", "1081", "--json"])
        [row] = json.loads(result.stdout)
        assert row["display_name"] == "Lönelisa" and row["overridden"] == ["contexts", "display_name", "password"]
        assert row["settings"]["password"] == "•••• (vault kollega/1081/harry#password)"

    def test_table_shows_where_each_value_comes_from(self, config: Path) -> None:
        result = CliRunner().invoke(app, ["robots", "--tenant", "1081"])
        assert result.exit_code == 0 and "Lönelisa" in result.output and "tenants.1081" in result.output

    def test_invalid_settings_exit_2_naming_the_key(self, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        config.write_text(CONFIG.replace("contexts = 5", "contexts = 0"), encoding="utf-8")
        assert main(["robots", "--tenant", "1081"]) == 2
        assert "tenants.1081.robots.lonerobot.contexts" in capsys.readouterr().err


def test_an_unknown_tenant_exits_2(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["robots", "--tenant", "9999"]) == 2
    assert "unknown tenant '9999'" in capsys.readouterr().err
