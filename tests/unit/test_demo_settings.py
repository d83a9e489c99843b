"""The demo's settings (config/demo.toml) laid under the deployment's, for every robot alike."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.registry import Registry, load_robots
from core.settings import Settings, TenantSettings
from core.testing import ExampleRobot, make_settings
from sandbox.demo import DemoSettings, apply_demo_settings, load_demo_settings, point_connectors_at


def demo(**fields: Any) -> DemoSettings:
    return DemoSettings.model_validate(fields)


class TestShippedFile:
    """What core used to hard-code now lives in config/demo.toml."""

    def test_it_loads_and_holds_the_demo_specifics(self) -> None:
        shipped = load_demo_settings()
        assert shipped.robots["lena"]["time_limit_seconds"] == 20.0
        assert shipped.passwords["harry"]["password"] == "sandlada-harry"
        assert shipped.sandbox.tenant == "1081"
        assert shipped.sandbox.options == {"employees": 60, "applications": 300}
        assert set(shipped.sandbox.systems) == {
            "eservice",
            "registers",
            "staffing",
            "sms",
            "homecare",
            "scheduling",
            "payroll",
        }
        assert shipped.backoff_base_seconds == 1.0

    def test_every_installed_robots_settings_validate_with_it(self, tmp_path: Path) -> None:
        settings = Settings(var_dir=tmp_path / "var")
        registry = load_robots()
        apply_demo_settings(settings, load_demo_settings(), registry)
        for name, cls in registry.robots.items():
            settings.robot_settings(name, cls.settings_model)  # raises naming the key

    def test_the_demo_switches_the_second_factor_off_and_a_deployment_can_keep_it(self, tmp_path: Path) -> None:
        from core.web.settings import web_settings

        shipped = load_demo_settings()
        assert shipped.web == {"mfa_required": False}
        settings = Settings(var_dir=tmp_path / "var")
        assert web_settings(settings).mfa_required  # on by default
        apply_demo_settings(settings, shipped, Registry(robots={}))
        assert not web_settings(settings).mfa_required
        strict = Settings(var_dir=tmp_path / "var", web={"mfa_required": True})
        apply_demo_settings(strict, shipped, Registry(robots={}))
        assert web_settings(strict).mfa_required  # the deployment's own key wins

    def test_a_missing_or_wrong_file_is_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            load_demo_settings(tmp_path / "nowhere.toml")
        bad = tmp_path / "demo.toml"
        bad.write_text("[sandbox]\nseed = 3\n")
        with pytest.raises(ConfigError, match=r"sandbox\.seed"):
            load_demo_settings(bad)


class TestApply:
    """Every robot takes part on the same terms: its demo section if it has one, defaults otherwise."""

    def registry(self) -> Registry:
        return Registry(robots={"example": ExampleRobot})

    def test_a_robot_with_a_section_gets_it_under_the_deployments_keys(self, tmp_path: Path) -> None:
        settings = make_settings(tmp_path, robots={"example": {"items": 5}})
        apply_demo_settings(settings, demo(robots={"example": {"items": 3, "review_every": 0}}), self.registry())
        assert settings.robots["example"] == {"items": 5, "review_every": 0}

    def test_a_robot_without_a_section_keeps_its_own_settings(self, tmp_path: Path) -> None:
        settings = make_settings(tmp_path)
        apply_demo_settings(settings, demo(robots={"lena": {"time_limit_seconds": 20}}), self.registry())
        assert "example" not in settings.robots and "lena" not in settings.robots  # lena is not installed here

    def test_retries_are_seconds_apart(self, tmp_path: Path) -> None:
        settings = make_settings(tmp_path)
        settings.worker = settings.worker.model_copy(update={"backoff_base_seconds": 30})
        apply_demo_settings(settings, demo(backoff_base_seconds=1.0), self.registry())
        assert settings.worker.backoff_base_seconds == 1.0

    def test_a_sandbox_password_goes_through_a_file_not_the_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("KOLLEGA_DEMO_TEST_SECRET", raising=False)
        settings = make_settings(tmp_path, robots={"example": {"secret": {"env": "KOLLEGA_DEMO_TEST_SECRET"}}})
        before = dict(os.environ)
        apply_demo_settings(settings, demo(passwords={"example": {"secret": "sandlada"}}), self.registry())
        assert dict(os.environ) == before
        path = Path(settings.robots["example"]["secret"]["file"])
        assert path.read_text() == "sandlada" and path.is_relative_to(settings.var_dir)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_a_password_the_operator_set_is_kept(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("KOLLEGA_DEMO_TEST_SECRET", "operator's own")
        settings = make_settings(tmp_path, robots={"example": {"secret": {"env": "KOLLEGA_DEMO_TEST_SECRET"}}})
        apply_demo_settings(settings, demo(passwords={"example": {"secret": "sandlada"}}), self.registry())
        assert settings.robots["example"]["secret"] == {"env": "KOLLEGA_DEMO_TEST_SECRET"}


def test_connectors_point_at_each_municipalitys_sandbox(tmp_path: Path) -> None:
    tenants = [TenantSettings(code="1081", name="Ronneby"), TenantSettings(code="1082", name="Karlshamn")]
    settings = make_settings(tmp_path, tenants=tenants, connectors={"sms": {"timeout_seconds": 5}})
    systems = {"eservice": "eservice", "sms": ""}
    point_connectors_at(settings, "http://127.0.0.1:1111/", systems, tenant="1081")
    point_connectors_at(settings, "http://127.0.0.1:2222", systems, tenant="1082")
    # Each municipality's systems are declared as its own sections, the deployment's keys copied in.
    assert tenants[0].connectors["eservice"] == {"base_url": "http://127.0.0.1:1111/eservice"}
    assert settings.connector_section("eservice", "1081") == {"base_url": "http://127.0.0.1:1111/eservice"}
    assert settings.connector_section("sms", "1081") == {"timeout_seconds": 5, "base_url": "http://127.0.0.1:1111/"}
    assert settings.connector_section("eservice", "1082") == {"base_url": "http://127.0.0.1:2222/eservice"}
    assert settings.connector_section("sms", "1082") == {"timeout_seconds": 5, "base_url": "http://127.0.0.1:2222/"}
    assert "eservice" not in settings.connectors  # nothing the other municipality could fall back on
    with pytest.raises(ConfigError, match="9999"):
        point_connectors_at(settings, "http://x", systems, tenant="9999")


def test_without_tenants_the_deployments_sections_point_at_the_sandbox(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tenants=[])
    point_connectors_at(settings, "http://127.0.0.1:1111/", {"payroll": "payroll"})
    assert settings.connector_section("payroll", "1081") == {"base_url": "http://127.0.0.1:1111/payroll"}
